"""SQLite files shared by concurrent runs (the context registry, the LLM completion cache)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def ensure_wal(path: Path, timeout_s: float = 120.0) -> None:
    """Switch the database file to WAL once (the mode persists in the file).

    SQLite does not apply the busy timeout to a journal-mode change, so concurrent first openers of
    a fresh file would fail with "database is locked"; they retry here until ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            con = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
            try:
                if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    con.execute("PRAGMA journal_mode = WAL")
                return
            finally:
                con.close()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
