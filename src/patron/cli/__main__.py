"""``python -m patron.cli``: the same command line as ``patron``."""

from patron.cli.commands import main

if __name__ == "__main__":  # pragma: no cover - entry point
    main()
