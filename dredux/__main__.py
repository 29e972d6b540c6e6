"""``python -m dredux``: the ``dredux`` command line (dredux/cli.py)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
