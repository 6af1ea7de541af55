"""``python -m signedws`` and the ``signedws`` console script."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> int:
    """Run the command line with ``sys.argv``; returns the exit status."""
    from .cli import main as cli_main  # noqa: PLC0415 - `import signedws.__main__` stays light

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
