"""The parquet IO manager's atomic writes and the DuckDB catalog under concurrent refreshes."""

import threading

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from formulacode_assets.storage.catalog import refresh_catalog


def _write(folder, name, table):
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / name)


def test_catalog_has_a_view_per_asset_over_all_months(tmp_path):
    data = tmp_path / "data"
    _write(data / "patches", "2024-01.parquet", pa.table({"month": ["2024-01-01"], "n": [1]}))
    _write(data / "patches", "2024-02.parquet", pa.table({"month": ["2024-02-01", "2024-02-01"], "n": [2, 3]}))
    (data / "empty_asset").mkdir()
    (data / "bad-name").mkdir()
    _write(data / "bad-name", "2024-01.parquet", pa.table({"x": [1]}))
    views = refresh_catalog(data, data / "catalog.duckdb")
    assert views == ["patches"]
    with duckdb.connect(str(data / "catalog.duckdb"), read_only=True) as con:
        assert con.sql("select month, sum(n) from patches group by month order by month").fetchall() == [
            ("2024-01-01", 1),
            ("2024-02-01", 5),
        ]


def test_derived_view_of_performance_commits(tmp_path):
    data = tmp_path / "data"
    _write(data / "perf_commits", "2024-02.parquet", pa.table({"is_performance": [True, False, True]}))
    assert refresh_catalog(data, data / "catalog.duckdb") == ["perf_commits", "performance_commits"]
    with duckdb.connect(str(data / "catalog.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from performance_commits").fetchone() == (2,)


def test_concurrent_refreshes_never_break_the_catalog(tmp_path):
    data = tmp_path / "data"
    _write(data / "a", "2024-01.parquet", pa.table({"x": [1]}))
    errors = []

    def refresh():
        try:
            for _ in range(5):
                refresh_catalog(data, data / "catalog.duckdb")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert not [p.name for p in data.iterdir() if p.name.startswith(".catalog-")]
    with duckdb.connect(str(data / "catalog.duckdb"), read_only=True) as con:
        assert con.sql("select count(*) from a").fetchone() == (1,)
