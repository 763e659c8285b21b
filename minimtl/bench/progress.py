"""Progress lines on stderr, and the one-line error texts that results record."""

from __future__ import annotations

import os
import sys

from .machine import REPO

__all__ = ["log", "error_text"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def error_text(e: BaseException) -> str:
    """One line naming the exception, with local paths shortened (results get committed)."""
    text = f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__
    for path, short in ((str(REPO), "."), (os.path.expanduser("~"), "~")):
        if len(path) > 1:
            text = text.replace(path, short)
    return text[:300]
