"""Start the real app (``streamlit run serve.py``) on a free port and drive it with Chromium.

Shared by the browser benchmark (``bench review-browser``), the browser tests and
``tests/browser/screenshot.py``. The app gets its own LABELBRIDGE_DATA/LABELBRIDGE_DB, so
nothing touches the person's database.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from core.config import REPO_ROOT

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "REPO_ROOT", "app_env", "chromium_page", "free_port", "running_app", "wait_for_app"]

CHROMIUM = Path(os.environ.get("LABELBRIDGE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(data_dir: Path) -> dict[str, str]:
    """The environment of an app that keeps everything under ``data_dir``."""
    env = dict(os.environ)
    env["LABELBRIDGE_DATA"] = str(data_dir)
    env["LABELBRIDGE_DB"] = f"sqlite:///{data_dir / 'labelbridge.db'}"
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    prepared = REPO_ROOT / "data" / "models" / "multilingual-e5-small"
    if (prepared / "config.json").is_file():  # reuse the encoder `make setup` converted
        env.setdefault("LABELBRIDGE_ENCODER", str(prepared))
    return env


def _wait_until_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}; log:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"streamlit did not answer at {url} within {timeout:.0f} s; log:\n{log.read_text(errors='replace')}")


@contextmanager
def running_app(data_dir: Path, timeout: float = 90.0) -> Iterator[str]:
    """Run the app headless with its data in ``data_dir``; yield its base URL."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = data_dir / "streamlit.log"
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "serve.py"),
        "--server.headless=true",
        f"--server.port={port}",
        "--server.address=127.0.0.1",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        "--global.developmentMode=false",
    ]  # fmt: skip
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=app_env(data_dir), stdout=log_fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(url, proc, log, timeout)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000) -> Iterator["object"]:
    """A Playwright page in headless Chromium (the system's /usr/bin/chromium)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def wait_for_app(page, timeout_ms: int = 60_000) -> None:  # noqa: ANN001 (playwright Page)
    """Wait until a page of the app has rendered (its title) and the script has stopped running."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=timeout_ms)
    page.wait_for_function(
        """() => {
            const status = document.querySelector('[data-testid="stStatusWidget"]');
            return !status || !/Running|Connecting/.test(status.innerText);
        }""",
        timeout=timeout_ms,
    )
