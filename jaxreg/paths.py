"""Where jaxreg keeps files between runs (downloaded data, compiled programs)."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """jaxreg's cache: ``$JAXREG_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxreg``,
    else ``~/.cache/jaxreg``."""
    if os.environ.get("JAXREG_CACHE_DIR"):
        return Path(os.environ["JAXREG_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "jaxreg"
