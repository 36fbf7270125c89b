"""Recovering after a killed run: mark its run failed, remove what it left behind.

A kill -9 of a run started from the CLI leaves the run ``STARTED`` in the run storage forever (the
default run launcher cannot check a worker's health, so Dagster's run monitoring only catches runs
that never start or exceed ``max_runtime_seconds``). :func:`recover_dead_runs` reads the pid each run
worker logged ("Executing steps in process (pid: N)") and fails the runs whose worker is gone. It
runs at the start of every run (``repos_discovered``) and from the command line:

    uv run python -m formulacode_assets.recover      # uses DAGSTER_HOME and the FORMULACODE_* settings

The command also sweeps temporary files of dead processes (parquet, catalog, validation work dirs,
mirror clones and git locks); the pipeline does the same on its own as it writes.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from formulacode_assets.core.leftovers import pid_alive, sweep_dead
from formulacode_assets.core.mining.mirror import recover_after_dead_writers

_LIVE_STATUSES = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.CANCELING]


def _process_started_at(pid: int) -> float | None:
    """Start time (epoch seconds) of ``pid`` from /proc, or None when unknown."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _worker_pid(instance: DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, when it was logged) of the run's worker, from its first engine event that names a pid."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        pid = (data.metadata or {}).get("pid") if data else None
        if pid is not None:
            try:
                return int(getattr(pid, "value", pid)), entry.timestamp
            except (TypeError, ValueError):
                continue
    return None


def worker_is_dead(pid: int, logged_at: float) -> bool:
    """Gone, a zombie, or a newer process that reuses the pid."""
    if not pid_alive(pid):
        return True
    started = _process_started_at(pid)
    return started is not None and started > logged_at + 2


def local_run_storage(instance: DagsterInstance) -> bool:
    """SQLite run storage: every run of this instance ran on this machine, so its pids are ours to judge."""
    from dagster._core.storage.runs import SqliteRunStorage

    return isinstance(instance.run_storage, SqliteRunStorage)


def recover_dead_runs(instance: DagsterInstance, log: Callable[[str], None] = print) -> list[str]:
    """Fail every started run whose worker process is dead; return their run ids.

    Only for an instance whose run storage is local (SQLite): with a shared database (the compose
    deployment's Postgres) a worker may live on another machine, and Dagster's run monitoring applies.
    """
    failed: list[str] = []
    if not local_run_storage(instance):
        return failed
    for record in instance.get_run_records(filters=RunsFilter(statuses=_LIVE_STATUSES)):
        run = record.dagster_run
        worker = _worker_pid(instance, run.run_id)
        if worker is None or not worker_is_dead(*worker):
            continue  # not started here yet, or still running
        message = f"run worker (pid {worker[0]}) is gone: the run was killed; marked failed by recovery"
        instance.report_run_failed(run, message=message)
        log(f"run {run.run_id}: {message}")
        failed.append(run.run_id)
    return failed


def sweep_folders(data_dir: Path | None, cache_dir: Path | None) -> list[str]:
    """Temporary files of dead processes under the data and cache folders, and stale mirror locks."""
    removed: list[str] = []
    if data_dir and Path(data_dir).is_dir():
        for folder in [Path(data_dir), *(p for p in Path(data_dir).iterdir() if p.is_dir())]:
            # ".2024-02.parquet.<pid>-<hex>.tmp" is a temporary of "2024-02.parquet"
            targets = {p.name[1 : p.name.index(".parquet.") + 8] for p in folder.glob(".*.parquet.*.tmp")}
            for target in sorted(targets):
                removed += [str(p) for p in sweep_dead(folder, f".{target}.")]
    if cache_dir:
        work = Path(cache_dir) / "contexts" / "work"
        removed += [str(p) for p in sweep_dead(work, "fc-validate-")]
        mirrors = Path(cache_dir) / "mirrors"
        for git_dir in mirrors.glob("*/*.git") if mirrors.is_dir() else ():
            with open(git_dir.with_name(git_dir.name + ".lock"), "w") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live run is syncing it
                removed += [f"{git_dir}/{name}" for name in recover_after_dead_writers(git_dir)]
    return removed


def _value(setting) -> str:
    """A resource setting as text (settings read from the environment are ``EnvVar``)."""
    return setting.get_value() if hasattr(setting, "get_value") else str(setting)


def main() -> None:
    from formulacode_assets.resources.settings import build_resources

    resources = build_resources()
    instance = DagsterInstance.get()
    failed = recover_dead_runs(instance)
    data, cache = (_value(resources["io_manager"].base_path), _value(resources["git_source"].cache_dir))
    removed = sweep_folders(None if "://" in data else Path(data), Path(cache))
    print(f"recovery: {len(failed)} dead run(s) marked failed, {len(removed)} leftover(s) removed")
    for path in removed:
        print(f"  removed {path}")


if __name__ == "__main__":
    main()
