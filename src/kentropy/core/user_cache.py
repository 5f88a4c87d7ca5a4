"""This user's cache for kentropy: what is slow to compute and depends only on installed or checked-out files
(lm-eval's task index, the code's syntax digests), shared by every checkout and run."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache(*parts: str) -> Path:
    """``$XDG_CACHE_HOME/kentropy/<parts>`` (default ``~/.cache/kentropy``); not created here."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "kentropy", *parts)
