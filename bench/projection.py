"""Projection quality: strict entity F1 of the projected source gold against the target gold.

    python bench/projection.py --source ../shared/data/europarl-ner/en-europarl.test.conll02 \
        --target ../shared/data/europarl-ner/de-europarl.test.conll02 --json

Without --method/--aligner it runs the project's default configuration. Same as
``python -m core.cli bench projection ...``; the logic is core.projection.bench.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cli.bench import run_script  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_script("projection"))
