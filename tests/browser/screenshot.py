"""Refresh the README screenshot: seed the demo into a throw-away database, project its
spans with the default pipeline (a minute or two on a CPU), run the app, open Review on a
demo item with a picture and save the page as a PNG.

    .venv/bin/python tests/browser/screenshot.py            # writes docs/review.png
    .venv/bin/python tests/browser/screenshot.py --out x.png --item d29 --project "Demo (en→de)"

Needs /usr/bin/chromium (apt-get install -y chromium) and the playwright package.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from db import projects
from services.app_runner import CHROMIUM, REPO_ROOT, app_env, chromium_page, running_app, wait_for_app  # noqa: E402

sys.path.insert(0, str(REPO_ROOT))


def seed(data_dir: Path, project_name: str, external_id: str, projection: bool = True) -> tuple[int, int]:
    """Seed the demo with the app's environment and project the shown project's spans with
    the default pipeline; return (project id, item id)."""
    os.environ.update({k: v for k, v in app_env(data_dir).items() if k.startswith("LABELBRIDGE_")})
    from core.demo import DEMO_PROJECTS
    from db.engine import init_db, session_scope
    from db.items import find_item
    from services.demo import project_demo, seed_demo

    init_db()
    with session_scope() as s:
        seed_demo(s, projection="none")
        if projection:
            for line in project_demo(s, projects=[d for d in DEMO_PROJECTS if d.name == project_name]):
                print(line)
    with session_scope() as s:
        project = projects.get_project(s, project_name)
        item_id = find_item(s, project.id, external_id)
        if item_id is None:
            raise SystemExit(f"no demo item {external_id!r} in {project_name!r}")
        return project.id, item_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO_ROOT / "docs" / "review.png"))
    parser.add_argument("--project", default="Demo (en→es)")
    parser.add_argument("--item", default="d01", help="external id of the demo item to show")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1100)
    parser.add_argument("--no-projection", action="store_true", help="skip the projection pipeline (faster)")
    args = parser.parse_args(argv)
    if not CHROMIUM.is_file():
        print(f"error: {CHROMIUM} not found (apt-get install -y chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="labelbridge-screenshot-") as tmp:
        data_dir = Path(tmp) / "data"
        project_id, item_id = seed(data_dir, args.project, args.item, projection=not args.no_projection)
        with running_app(data_dir) as url, chromium_page(args.width, args.height) as page:
            page.goto(f"{url}/review?project={project_id}&item={item_id}")
            wait_for_app(page)
            page.locator('[data-testid="span-editor"] .thumb').first.wait_for()
            page.get_by_role("button", name="Accept & next").wait_for()
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
