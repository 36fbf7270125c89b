"""A content-keyed cache of LLM program outputs, so re-running a finished month makes no LLM calls.

One SQLite file (``<cache_dir>/llm/completions.sqlite3``) in WAL mode: many readers and one writer
at a time across threads *and* processes (concurrent runs, the multiprocess executor), with a busy
timeout instead of lock errors. Each thread opens its own connection (SQLite connections must not
be shared between threads).

A key is a hash of (model, program name, program version, inputs): changing a prompt changes the
program version and so misses the cache, while an unchanged program on unchanged inputs always
hits. Only parsed, successful outputs are stored — never requests, headers or credentials.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from formulacode_assets.core.sqlite_files import ensure_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    program TEXT NOT NULL,
    program_version TEXT NOT NULL,
    created_at TEXT NOT NULL,
    outputs TEXT NOT NULL
)
"""


def completion_key(model: str, program: str, program_version: str, inputs: Mapping[str, object]) -> str:
    """The cache key of one program call: stable across runs, processes and machines."""
    input_hash = hashlib.sha256(json.dumps(inputs, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return hashlib.sha256(json.dumps([model, program, program_version, input_hash]).encode()).hexdigest()


class CompletionCache:
    """Program outputs by :func:`completion_key`; safe to share between threads of one process."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        ensure_wal(self.path)
        with self._connection() as con:
            con.execute(_SCHEMA)

    @classmethod
    def in_cache_dir(cls, cache_dir: Path | str) -> CompletionCache:
        return cls(Path(cache_dir) / "llm" / "completions.sqlite3")

    def _connection(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            con.execute("PRAGMA synchronous=NORMAL")
            self._local.con = con
            with self._lock:
                self._connections.append(con)
        return con

    def get(self, key: str) -> dict | None:
        row = self._connection().execute("SELECT outputs FROM completions WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, outputs: Mapping[str, object], *, model: str, program: str, program_version: str) -> None:
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with self._connection() as con:  # commits (or rolls back) the one statement
            con.execute(
                "INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?, ?)",
                (key, model, program, program_version, created, json.dumps(outputs, sort_keys=True)),
            )

    def __len__(self) -> int:
        return self._connection().execute("SELECT count(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        """Close every thread's connection (call once the worker threads are done)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for con in connections:
            con.close()
        self._local = threading.local()
