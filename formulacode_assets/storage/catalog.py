"""The DuckDB query surface: one view per asset over every month's parquet file.

DuckDB allows one writer per database file. The catalog is therefore never edited in place:
under an exclusive file lock, a fresh database is written next to it and renamed over it, so
concurrent runs never write the same file and readers (``duckdb -readonly catalog.duckdb``)
always see a complete catalog.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from pathlib import Path

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Filtered views that are queries over an asset's view, created when that asset has data.
DERIVED_VIEWS = {
    "performance_commits": ("perf_commits", "SELECT * FROM perf_commits WHERE is_performance"),
}


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _glob_literal(path: str) -> str:
    """``path`` as a DuckDB glob that matches only itself: ``[``, ``*`` and ``?`` become one-character classes."""
    return re.sub(r"([\[*?])", r"[\1]", path)


def asset_folders(data_dir: Path) -> dict[str, Path]:
    """Asset folders that hold at least one parquet partition, by view name."""
    found = {}
    if data_dir.is_dir():
        for folder in sorted(p for p in data_dir.iterdir() if p.is_dir()):
            if _IDENTIFIER.match(folder.name) and any(folder.glob("*.parquet")):
                found[folder.name] = folder
    return found


def refresh_catalog(data_dir: Path, catalog_path: Path) -> list[str]:
    """Rebuild the catalog's views from the parquet folders under ``data_dir``; return the view names."""
    import duckdb  # imported here: only a run that writes parquet needs it, not the CLI or the UI

    data_dir, catalog_path = Path(data_dir).resolve(), Path(catalog_path).resolve()
    catalog_path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = catalog_path.with_name(catalog_path.name + ".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Every writer holds this lock while its temporary database exists: any other is a dead one's.
        for leftover in catalog_path.parent.glob(".catalog-*.duckdb*"):
            leftover.unlink(missing_ok=True)
        folders = asset_folders(data_dir)
        fd, tmp_name = tempfile.mkstemp(prefix=".catalog-", suffix=".duckdb", dir=catalog_path.parent)
        os.close(fd)
        os.unlink(tmp_name)  # duckdb wants to create the file itself
        try:
            with duckdb.connect(tmp_name) as con:
                for view, folder in folders.items():
                    glob = _sql_string(_glob_literal(str(folder)) + "/*.parquet")
                    con.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet({glob}, union_by_name = true)")
                for view, (base, query) in DERIVED_VIEWS.items():
                    if base in folders:
                        con.execute(f"CREATE VIEW {view} AS {query}")
            os.replace(tmp_name, catalog_path)
        finally:
            for leftover in (tmp_name, tmp_name + ".wal"):
                if os.path.exists(leftover):
                    os.unlink(leftover)
    return [*folders, *(v for v, (base, _q) in DERIVED_VIEWS.items() if base in folders)]
