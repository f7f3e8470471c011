"""``python -m core`` is the same as ``python -m core.cli``."""

if __name__ == "__main__":
    import sys

    from cli.main import main

    sys.exit(main())
