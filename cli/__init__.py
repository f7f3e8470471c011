"""The command line, ``python -m core.cli <command> ...``: one module per command group,
each a ``register(subparsers)`` over plain functions of core/ and services/ (the model is
spaCy's ``spacy/cli/``). The database URL enters here and opens the one session factory."""
