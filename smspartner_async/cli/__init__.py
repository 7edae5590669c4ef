"""`smspartner-status`, the command line (needs the `cli` extra: click and rich).

click and rich are imported only when the command runs, so that the library
itself never needs them, and their absence gives an install hint rather than
a traceback.
"""

from __future__ import annotations

import sys

__all__ = ["main"]

_EXTRA_HINT = (
    "smspartner-status needs the 'cli' extra ({missing} is missing): "
    "pip install 'smspartner-async[cli]'\n"
)


def main(argv: list[str] | None = None) -> None:
    """The console script's entry point."""
    try:
        from ._commands import cli
    except ImportError as exc:
        if exc.name not in ("click", "rich"):
            raise
        sys.stderr.write(_EXTRA_HINT.format(missing=exc.name))
        sys.exit(1)
    cli.main(args=argv, prog_name="smspartner-status")
