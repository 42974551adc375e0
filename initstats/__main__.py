"""``python -m initstats``: the same command line as the ``initstats`` script."""

from .cli import main

if __name__ == "__main__":
    main()
