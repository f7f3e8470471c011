"""Review workbench speed: server-side "accept and next" on a generated project (logic:
services.review_bench).

    python bench/review.py --items 100000 --json

Same as ``python -m core.cli bench review ...``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cli.bench import run_script  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_script("review"))
