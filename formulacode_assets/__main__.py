"""``python -m formulacode_assets ARGS`` is ``dagster ARGS`` on the project's one instance.

``DAGSTER_HOME`` defaults to the repository's ``dagster_home/`` (ignored by git), set up and
migrated once under a lock (``formulacode_assets.instance``), so the CLI's runs, ``dev`` (webserver
and daemon) and their materializations and check results are the same history. Export
``DAGSTER_HOME`` to move it; plain ``dagster`` works the same once it is exported and set up.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path


class _LinkedConfigNote(logging.Filter):
    """Drops `dagster dev`'s "dagster.yaml in the current folder will not be used": it is, linked."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Found a dagster instance configuration value" not in record.getMessage()


def main(argv: list[str] | None = None) -> int:
    from formulacode_assets.instance import PROJECT_HOME, prepare_instance

    argv = sys.argv[1:] if argv is None else argv
    os.environ["DAGSTER_HOME"] = str(prepare_instance(os.environ.get("DAGSTER_HOME") or PROJECT_HOME))
    from dagster import BetaWarning, SupersessionWarning
    from dagster._cli import main as dagster_main

    # `dagster asset materialize` is "superseded" by `dg launch`, which needs the separate dg CLI;
    # the command itself is supported, so its notice is not shown to every newcomer.
    warnings.filterwarnings("ignore", category=SupersessionWarning)
    # Dagster's own parser of `--select` calls a beta parameter; nothing a user can change.
    warnings.filterwarnings(
        "ignore", category=BetaWarning, module=r"dagster\._core\.definitions\.antlr_asset_selection"
    )
    home_config, cwd_config = Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml", Path.cwd() / "dagster.yaml"
    if home_config.exists() and cwd_config.exists() and home_config.resolve() == cwd_config.resolve():
        logging.getLogger("dagster").addFilter(_LinkedConfigNote())
    sys.argv = ["dagster", *argv]
    return dagster_main()


if __name__ == "__main__":
    sys.exit(main())
