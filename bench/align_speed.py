"""Batched SimAlign aligner vs the simalign package: pairs/second and link agreement.

    python bench/align_speed.py --source ../shared/data/europarl-ner/en-europarl.test.conll02 \
        --target ../shared/data/europarl-ner/de-europarl.test.conll02 --limit 200 --method itermax --json

Same as ``python -m core.cli bench align-speed ...``; the logic is core.align.bench.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cli.bench import run_script  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_script("align-speed"))
