"""Every validated build context, across all months: a SQLite database safe under concurrent runs.

Upstream kept one JSON file rewritten by many threads and read back with ``eval``. Here each
write is one SQLite transaction (``BEGIN IMMEDIATE``, WAL journal, a busy timeout), every call
opens its own connection, and readers never block writers, so several runs (months) and threads
can validate and register contexts at once. The file must live on a local disk (SQLite locking
does not work on network file systems); the parquet ``contexts`` partitions stay the record of
each month's attempts.

One context per (repository, sha, validator): a context validated in a throw-away local
environment says nothing about the Docker image, so the two are kept apart; :meth:`get` prefers
``docker`` when asked for any validator.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from formulacode_assets.core.sqlite_files import ensure_wal

SCHEMA_VERSION = 1
_VALIDATOR_PREFERENCE = ("docker", "local")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS contexts (
    repo_name      TEXT NOT NULL,
    sha            TEXT NOT NULL,
    validator      TEXT NOT NULL,
    commit_date    TEXT NOT NULL,   -- ISO 8601, UTC: orders the commits of a repository
    build_env_sh   TEXT NOT NULL,
    script_sha256  TEXT NOT NULL,
    source         TEXT NOT NULL,   -- registry / template / agent: where the script came from
    python_version TEXT,
    pins           TEXT NOT NULL,   -- JSON list
    benchmarks     TEXT NOT NULL,   -- JSON list
    benchmarks_stable INTEGER,
    month          TEXT,            -- the partition that validated it
    created_at     TEXT NOT NULL,
    validated_at   TEXT NOT NULL,
    validations    INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (repo_name, sha, validator)
);
CREATE INDEX IF NOT EXISTS contexts_by_repo_date ON contexts (repo_name, commit_date);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class RegisteredContext:
    repo_name: str
    sha: str
    validator: str
    commit_date: str
    build_env_sh: str
    script_sha256: str
    source: str
    python_version: str | None
    pins: list[str] = field(default_factory=list)
    benchmarks: list[str] = field(default_factory=list)
    benchmarks_stable: bool | None = None
    month: str | None = None
    created_at: str = ""
    validated_at: str = ""
    validations: int = 1


_COLUMNS = tuple(RegisteredContext.__dataclass_fields__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _from_row(row: sqlite3.Row) -> RegisteredContext:
    data = dict(row)
    data["pins"] = json.loads(data["pins"])
    data["benchmarks"] = json.loads(data["benchmarks"])
    if data["benchmarks_stable"] is not None:
        data["benchmarks_stable"] = bool(data["benchmarks_stable"])
    return RegisteredContext(**data)


class ContextRegistry:
    """``register`` / ``get`` / ``nearest_earlier`` over one SQLite file (created on first use)."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 120.0):
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ensure_wal(self.path, self.busy_timeout_s)
        with self._transaction() as con:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    con.execute(statement)
            con.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            con.execute("PRAGMA synchronous = NORMAL")
            yield con
        finally:
            con.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock up front (no upgrade deadlocks)."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def register(self, context: RegisteredContext) -> RegisteredContext:
        """Insert or replace the context of (repo, sha, validator); ``created_at`` survives re-validation."""
        now = _now()
        row = asdict(context)
        row["pins"] = json.dumps(list(context.pins))
        row["benchmarks"] = json.dumps(sorted(context.benchmarks))
        row["benchmarks_stable"] = None if context.benchmarks_stable is None else int(context.benchmarks_stable)
        row["commit_date"] = normalise_commit_date(context.commit_date)
        row["validations"] = 1
        row["created_at"] = context.created_at or now
        row["validated_at"] = context.validated_at or now
        names = ", ".join(_COLUMNS)
        placeholders = ", ".join(f":{c}" for c in _COLUMNS)
        updates = ", ".join(
            f"{c} = excluded.{c}"
            for c in _COLUMNS
            if c not in ("repo_name", "sha", "validator", "created_at", "validations")
        )
        with self._transaction() as con:
            con.execute(
                f"INSERT INTO contexts ({names}) VALUES ({placeholders}) "
                f"ON CONFLICT (repo_name, sha, validator) DO UPDATE SET {updates}, "
                "validations = contexts.validations + 1",
                row,
            )
            stored = con.execute(
                "SELECT * FROM contexts WHERE repo_name = ? AND sha = ? AND validator = ?",
                (context.repo_name, context.sha, context.validator),
            ).fetchone()
        return _from_row(stored)

    def get(self, repo_name: str, sha: str, validator: str | None = None) -> RegisteredContext | None:
        """The context of (repo, sha) for ``validator``, or for any validator (docker first)."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT * FROM contexts WHERE repo_name = ? AND sha = ?" + (" AND validator = ?" if validator else ""),
                (repo_name, sha, validator) if validator else (repo_name, sha),
            ).fetchall()
        return _preferred([_from_row(r) for r in rows])

    def nearest_earlier(
        self,
        repo_name: str,
        commit_date: datetime | str,
        *,
        exclude_sha: str | None = None,
        validator: str | None = None,
    ) -> RegisteredContext | None:
        """The validated context of the same repository whose commit is the latest before ``commit_date``.

        With ``validator``, only contexts that kind of sandbox validated: a script validated in Docker
        is never replayed on the host.
        """
        when = commit_date if isinstance(commit_date, str) else commit_date.astimezone(UTC).isoformat()
        with self._connect() as con:
            rows = con.execute(
                "SELECT * FROM contexts WHERE repo_name = ? AND commit_date < ? AND sha != ? "
                + ("AND validator = ? " if validator else "")
                + "ORDER BY commit_date DESC LIMIT 8",
                (repo_name, normalise_commit_date(when), exclude_sha or "", *((validator,) if validator else ())),
            ).fetchall()
        if not rows:
            return None
        newest = rows[0]["commit_date"]
        return _preferred([_from_row(r) for r in rows if r["commit_date"] == newest])

    def all(self, repo_name: str | None = None) -> list[RegisteredContext]:
        with self._connect() as con:
            query = "SELECT * FROM contexts" + (" WHERE repo_name = ?" if repo_name else "")
            rows = con.execute(query + " ORDER BY repo_name, commit_date, validator", (repo_name,) if repo_name else ())
            return [_from_row(r) for r in rows.fetchall()]

    def to_table(self) -> pa.Table:
        """Every context as a table (for DuckDB queries or an export)."""
        rows = [asdict(c) for c in self.all()]
        return pa.Table.from_pylist(rows) if rows else pa.table({c: pa.array([], pa.string()) for c in _COLUMNS})


def normalise_commit_date(iso: str) -> str:
    """Commit dates are stored as UTC ISO strings so that string order is time order."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).isoformat()


def _preferred(contexts: Sequence[RegisteredContext]) -> RegisteredContext | None:
    if not contexts:
        return None
    rank = {name: i for i, name in enumerate(_VALIDATOR_PREFERENCE)}
    return min(contexts, key=lambda c: rank.get(c.validator, len(rank)))
