"""The catalog when the parquet lives in a bucket: DuckDB views over ``s3://`` (or any fsspec URL).

The local catalog file (:mod:`.catalog`) is rebuilt after every write; with the data on S3 there is
no shared disk to keep it on, and the views are cheap to create, so a reader makes them on the fly:

- Python, anywhere (works behind proxies, no DuckDB extension): :func:`open_catalog` registers the
  fsspec filesystem (s3fs, which reads ``AWS_ENDPOINT_URL`` and the usual AWS credentials) with
  DuckDB and creates one view per asset folder, plus the derived views::

      con = open_catalog("s3://formulacode/data")
      con.sql("select month, count(*) from patches group by month").df()

- DuckDB alone, where its ``httpfs`` extension can be installed: :func:`httpfs_setup_sql` prints
  the ``CREATE SECRET`` and ``CREATE VIEW`` statements to paste into ``duckdb``.

From a shell: ``python -m formulacode_assets.storage.remote_catalog s3://bucket/data "select ..."``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from urllib.parse import urlparse

import duckdb
import fsspec

from formulacode_assets.storage.catalog import _IDENTIFIER, DERIVED_VIEWS, _sql_string


def asset_globs(data_dir: str, storage_options: Mapping | None = None) -> dict[str, str]:
    """``{view: "s3://bucket/prefix/<asset>/*.parquet"}`` for each asset folder holding parquet."""
    fs, root = fsspec.core.url_to_fs(data_dir, **(storage_options or {}))
    protocol = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
    globs = {}
    try:
        entries = fs.ls(root, detail=True, refresh=True) if protocol != "file" else fs.ls(root, detail=True)
    except FileNotFoundError:
        return globs
    for entry in sorted(entries, key=lambda e: e["name"]):
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if entry["type"] == "directory" and _IDENTIFIER.match(name) and fs.glob(f"{entry['name']}/*.parquet"):
            location = entry["name"].rstrip("/")
            globs[name] = f"{protocol}://{location}/*.parquet" if protocol != "file" else f"{location}/*.parquet"
    return globs


def _view_statements(globs: Mapping[str, str]) -> list[str]:
    statements = [
        f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet({_sql_string(glob)}, union_by_name = true)"
        for view, glob in globs.items()
    ]
    statements += [
        f"CREATE OR REPLACE VIEW {view} AS {query}" for view, (base, query) in DERIVED_VIEWS.items() if base in globs
    ]
    return statements


def open_catalog(data_dir: str, storage_options: Mapping | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per asset over every month in ``data_dir`` (local or remote)."""
    con = duckdb.connect()
    if "://" in data_dir and not data_dir.startswith("file://"):
        fs, _ = fsspec.core.url_to_fs(data_dir, **(storage_options or {}))
        con.register_filesystem(fs)
    for statement in _view_statements(asset_globs(data_dir, storage_options)):
        con.execute(statement)
    return con


def httpfs_setup_sql(data_dir: str, environ: Mapping[str, str] | None = None) -> str:
    """SQL for the DuckDB CLI with ``httpfs``: an S3 secret from the AWS variables, then the views.

    The secret names the variables' values (``KEY_ID`` / ``SECRET``): paste it into a session, do
    not save it in a file.
    """
    environ = os.environ if environ is None else environ
    options = ["TYPE s3", "PROVIDER credential_chain"]
    endpoint = environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        url = urlparse(endpoint)
        options = ["TYPE s3", f"ENDPOINT {_sql_string(url.netloc)}", "URL_STYLE 'path'"]
        options.append(f"USE_SSL {'true' if url.scheme == 'https' else 'false'}")
        if environ.get("AWS_ACCESS_KEY_ID"):
            options.append(f"KEY_ID {_sql_string(environ['AWS_ACCESS_KEY_ID'])}")
            options.append(f"SECRET {_sql_string(environ.get('AWS_SECRET_ACCESS_KEY', ''))}")
    if environ.get("AWS_DEFAULT_REGION") or environ.get("AWS_REGION"):
        options.append(f"REGION {_sql_string(environ.get('AWS_REGION') or environ['AWS_DEFAULT_REGION'])}")
    lines = ["INSTALL httpfs;", "LOAD httpfs;", f"CREATE OR REPLACE SECRET formulacode ({', '.join(options)});"]
    lines += [s + ";" for s in _view_statements(asset_globs(data_dir))]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: python -m formulacode_assets.storage.remote_catalog DATA_DIR [SQL | --httpfs-sql]")
        return 2
    data_dir, *rest = argv
    if rest == ["--httpfs-sql"]:
        print(httpfs_setup_sql(data_dir))
        return 0
    con = open_catalog(data_dir)
    if not rest:
        print(
            "\n".join(row[0] for row in con.sql("select view_name from duckdb_views() where not internal").fetchall())
        )
        return 0
    con.sql(" ".join(rest)).show(max_rows=100)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
