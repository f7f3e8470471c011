"""Student benchmarks on Europarl-NER (logic: core.student.bench).

    python bench/student.py student --source en --target de --json
    python bench/student.py queue --source en --target es --json

Same as ``python -m core.cli bench student|queue ...``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cli.bench import run_script  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_script(None))
