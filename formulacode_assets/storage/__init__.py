from formulacode_assets.storage.catalog import refresh_catalog
from formulacode_assets.storage.parquet_io_manager import ParquetIOManager, ParquetUPathIOManager

__all__ = ["ParquetIOManager", "ParquetUPathIOManager", "refresh_catalog"]
