"""Review workbench speed: server-side "accept and next" on a generated project (logic:
core.review_bench).

    python bench/review.py --items 100000 --json

Same as ``python -m core.cli bench review ...``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.review_bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
