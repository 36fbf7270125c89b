"""Temporary files and folders of dead processes: named for their owner, removed once it is gone.

A killed run leaves its temporary parquet files, catalog databases and validation work dirs
behind. Each such name carries the pid of its owner (``<prefix><pid>-...``); a sweep removes
the names whose owner is no longer alive, and anything older than :data:`MAX_AGE_S` (a pid may be
reused, so a live pid keeps a name only that long). A live run's files are never touched: its pid
is alive and its files are young.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

# Longer than any step of a monthly run; after it, a temporary name is garbage whoever owns it.
MAX_AGE_S = 2 * 24 * 3600


def owned_prefix(prefix: str) -> str:
    """``prefix`` followed by this process's pid, for :func:`tempfile.mkdtemp` / ``mkstemp``."""
    return f"{prefix}{os.getpid()}-"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def sweep_dead(folder: Path, prefix: str, *, max_age_s: float = MAX_AGE_S) -> list[Path]:
    """Remove ``folder/<prefix><pid>-*`` of dead pids and any ``<prefix>*`` older than ``max_age_s``."""
    removed: list[Path] = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    owner = re.compile(re.escape(prefix) + r"(\d+)-")
    now = time.time()
    for path in folder.glob(glob_escape(prefix) + "*"):
        match = owner.match(path.name)
        try:
            old = now - path.lstat().st_mtime > max_age_s
        except FileNotFoundError:
            continue
        if old or (match is not None and not pid_alive(int(match.group(1)))):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def glob_escape(text: str) -> str:
    return re.sub(r"([\[*?])", r"[\1]", text)
