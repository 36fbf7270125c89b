"""Parquet files, one per asset per month, through ``UPathIOManager`` (a local folder or ``s3://``).

Layout: ``<base>/<asset>/<YYYY-MM>.parquet``. Tables are ``pyarrow.Table`` typed by the stage's
contract, so an empty month still has its columns and types. Writes are atomic: a temporary file
renamed into place on local disks; on object stores a single PUT is already atomic.

A single-run backfill materializes several months in one output; the asset then returns
``{partition_key: table}`` and each month is written to its own file.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import (
    ConfigurableIOManagerFactory,
    InputContext,
    OutputContext,
    UPathIOManager,
)
from dagster import _check as check

from formulacode_assets.core.leftovers import sweep_dead
from formulacode_assets.storage.catalog import refresh_catalog

if TYPE_CHECKING:
    from upath import UPath  # imported when an IO manager is built, not when the definitions load

_LOCAL_PROTOCOLS = {"", "file", "local"}


def _is_local(path: UPath) -> bool:
    return getattr(path, "protocol", "") in _LOCAL_PROTOCOLS


class ParquetUPathIOManager(UPathIOManager):
    extension = ".parquet"

    def __init__(self, base_path: UPath, catalog_path: Path | None = None):
        super().__init__(base_path=base_path)
        self._catalog_path = catalog_path

    def get_path_for_partition(self, context, path: UPath, partition: str) -> UPath:
        # Monthly keys are YYYY-MM-01; the file is named for the month.
        name = partition[:7] if len(partition) == 10 and partition.endswith("-01") else partition
        return self.make_safe_partition_path(path, name)

    def dump_to_path(self, context: OutputContext, obj: pa.Table, path: UPath) -> None:
        if not isinstance(obj, pa.Table):
            raise TypeError(f"{context.asset_key.to_user_string()} must return a pyarrow.Table, got {type(obj)}")
        if _is_local(path):
            target = Path(path.path)
            # The temporary name carries our pid: a killed writer's file is removed by the next write.
            sweep_dead(target.parent, f".{target.name}.")
            tmp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex}.tmp")
            try:
                pq.write_table(obj, tmp, compression="zstd")
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        else:
            with path.open("wb") as handle:
                pq.write_table(obj, handle, compression="zstd")

    def load_from_path(self, context: InputContext, path: UPath) -> pa.Table:
        if _is_local(path):
            return pq.read_table(Path(path.path))
        with path.open("rb") as handle:
            return pq.read_table(handle)

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if not (context.has_asset_partitions and isinstance(obj, dict)):
            super().handle_output(context, obj)
        else:
            paths = self._get_paths_for_partitions(context)
            check.invariant(
                set(obj) == set(paths),
                f"output months {sorted(obj)} do not match the run's partitions {sorted(paths)}",
            )
            for key, path in paths.items():
                self.make_directory(path.parent)
                context.log.debug(self.get_writing_output_log_message(path))
                self.dump_to_path(context=context, obj=obj[key], path=path)
            # No range-wide ``paths`` entry: output metadata lands on every month of the run, and
            # each month's own ``file`` is already in its metadata (``monthly_output``).
        if self._catalog_path is not None and _is_local(self._base_path):
            views = refresh_catalog(Path(self._base_path.path), self._catalog_path)
            context.log.debug(f"DuckDB catalog {self._catalog_path} has views {views}")


class ParquetIOManager(ConfigurableIOManagerFactory):
    """Monthly parquet files under ``base_path`` plus a DuckDB catalog of views over them."""

    base_path: str
    catalog_path: str | None = None

    def create_io_manager(self, context) -> ParquetUPathIOManager:
        from upath import UPath

        base = UPath(self.base_path)
        if _is_local(base):
            base = UPath(Path(base.path).resolve())
        catalog = Path(self.catalog_path) if self.catalog_path else None
        return ParquetUPathIOManager(base_path=base, catalog_path=catalog)
