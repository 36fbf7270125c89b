"""The sample month in a process of its own, optionally stopped inside one stage (for the crash matrix).

``python -m formulacode_assets_tests.crash_runner STAGE SIGNAL_DIR``: with a stage other than
``none``, the stage's real code runs up to a point where a crash does damage (a lock or a temporary
file exists, a build step runs in its own session), writes ``SIGNAL_DIR/at-STAGE`` and waits there
for the test's kill -9. Settings come from the environment (FORMULACODE_*, DAGSTER_HOME).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

STAGES = ("mirror", "merge_commits", "patches", "parquet", "catalog", "contexts")


def _arrived(signal_dir: Path, stage: str) -> None:
    (signal_dir / f"at-{stage}").write_text(str(os.getpid()))


def _wait_for_the_kill(signal_dir: Path, stage: str) -> None:
    _arrived(signal_dir, stage)
    time.sleep(600)
    raise SystemExit(f"crash_runner: nobody killed the run at {stage}")


def arm(stage: str, signal_dir: Path) -> None:
    """Make ``stage`` stop (alive, mid-work) at its crash point."""
    if stage == "mirror":
        from formulacode_assets.core.mining import mirror
        from formulacode_assets.core.mining.git import run_git

        def fetch_then_stop_in_commit_graph(git_dir: Path) -> None:
            run_git(git_dir, ["fetch", "--prune", "--quiet", "--no-write-fetch-head", "origin"])
            # What `git commit-graph write` holds while it runs.
            lock = git_dir / "objects" / "info" / "commit-graph.lock"
            lock.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            _wait_for_the_kill(signal_dir, stage)

        mirror._fetch = fetch_then_stop_in_commit_graph
    elif stage == "merge_commits":
        from formulacode_assets.core.mining import merged_changes

        def stop(*args, **kwargs):
            _wait_for_the_kill(signal_dir, stage)

        merged_changes.merge_commit_rows = stop
    elif stage == "patches":
        from formulacode_assets.core.mining import patches

        def stop(*args, **kwargs):
            _wait_for_the_kill(signal_dir, stage)

        patches.patch_rows = stop
    elif stage == "parquet":
        from formulacode_assets.storage import parquet_io_manager

        real_write = parquet_io_manager.pq.write_table

        class _Parquet:
            def __getattr__(self, name):
                return getattr(parquet_io_manager.pq, name)

        def write_then_stop(table, where, **kwargs):
            real_write(table, where, **kwargs)
            if "patches" in str(where):  # the temporary file is written, not yet renamed
                _wait_for_the_kill(signal_dir, stage)

        shim = _Parquet()
        shim.write_table = write_then_stop
        shim.read_table = parquet_io_manager.pq.read_table
        parquet_io_manager.pq = shim
    elif stage == "catalog":
        import duckdb  # the catalog imports it when it writes: patch the module's connect

        real_connect = duckdb.connect

        def connect_then_stop(path, *args, **kwargs):
            con = real_connect(path, *args, **kwargs)
            if ".catalog-" in str(path) and (Path(path).parent / "patches").is_dir():
                con.execute("CREATE TABLE half_written (x INTEGER)")
                _wait_for_the_kill(signal_dir, stage)  # temporary database open, catalog lock held
            return con

        duckdb.connect = connect_then_stop
    elif stage == "contexts":
        from formulacode_assets.core.environments import local_validator

        real_run_step = local_validator.run_step

        def build_that_hangs(cmd, **kwargs):
            if cmd[:1] == ["bash"] and str(cmd[-1]).endswith("build_env.sh"):
                # A real build step in its own session, with a grandchild, still running when killed.
                script = f"sleep 600 & echo $$ $! > {signal_dir}/build.pids; echo x > {signal_dir}/at-contexts; wait"
                cmd = ["bash", "-c", script]
            return real_run_step(cmd, **kwargs)

        local_validator.run_step = build_that_hangs
    elif stage != "none":
        raise SystemExit(f"unknown stage {stage!r}; one of {STAGES} or none")


MATRIX_ASSETS = {"repos_discovered", "repos_valid", "merge_commits", "patches", "perf_commits", "contexts"}


def main(stage: str, signal_dir: str) -> None:
    arm(stage, Path(signal_dir))
    from dagster import DagsterInstance, materialize

    from formulacode_assets.definitions import defs
    from formulacode_assets.resources.settings import build_resources

    # The stages the matrix kills inside (the mining stages through contexts); the stages after
    # contexts have their own re-run tests.
    result = materialize(
        [a for a in defs.assets if a.key.path[-1] in MATRIX_ASSETS],
        partition_key="2024-02-01",
        resources=build_resources(),
        instance=DagsterInstance.get(),
        raise_on_error=False,
    )
    print("success" if result.success else "failure", flush=True)
    sys.exit(0 if result.success else 1)


if __name__ == "__main__":
    main(*sys.argv[1:3])
