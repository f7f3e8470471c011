"""``python -m core.cli``: the documented entry point of the command line, kept under this
name; the commands live in the top-level ``cli`` package (the outermost layer). Nothing in
core imports this module."""

if __name__ == "__main__":
    import sys

    from cli.main import main

    sys.exit(main())
