"""Issue 12's crash matrix: kill -9 of the sample month inside each stage, then a re-run.

The re-run must write the same parquet as an uninterrupted run (sha256; for ``contexts`` the
columns that describe the context, not this run's work), leave no temporary file, no git lock and
no held file lock behind, no process of the killed run alive, and no run stuck in ``STARTED``.
Each run is a real process (``crash_runner``) on one working folder shared by the whole module.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from formulacode_assets_tests.crash_runner import STAGES
from formulacode_assets_tests.test_hardening import PER_RUN_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
# A sample month materializes in ~20-40 s (contexts validated) and ~10 s (contexts reused) on an
# idle machine; the limits allow a machine several times slower.
RUN_TIMEOUT_S = 600
ARRIVAL_TIMEOUT_S = 400
CONTEXT_COLUMNS_IGNORED = PER_RUN_COLUMNS | {"validated_at"}


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORMULACODE_", "DSPY_", "GH_", "DAGSTER_"))}
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "DAGSTER_HOME": str(work / "home"),
        "FORMULACODE_SOURCE": "sample",
        "FORMULACODE_DATA_DIR": str(work / "data"),
        "FORMULACODE_CACHE_DIR": str(work / "cache"),
        "FORMULACODE_VALIDATOR": "local",
        "FORMULACODE_LOCAL_VALIDATION": "1",
    }


def _start(work: Path, stage: str) -> subprocess.Popen:
    (work / "signals").mkdir(exist_ok=True)
    (work / "home").mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "formulacode_assets_tests.crash_runner", stage, str(work / "signals")],
        cwd=work,
        env=_env(work),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _run_to_the_end(work: Path) -> None:
    proc = _start(work, "none")
    out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, out[-4000:]


def _snapshot(work: Path) -> dict[str, object]:
    """sha256 of every parquet file; the context-describing columns of ``contexts``."""
    found: dict[str, object] = {}
    for path in sorted((work / "data").rglob("*.parquet")):
        rel = str(path.relative_to(work / "data"))
        if rel.startswith("contexts/"):
            rows = pq.read_table(path).to_pylist()
            found[rel] = [{k: v for k, v in r.items() if k not in CONTEXT_COLUMNS_IGNORED} for r in rows]
        else:
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _processes_under(work: Path) -> list[str]:
    """Live processes whose working folder is inside ``work`` (every child of a run starts there or below)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state != "Z" and (cwd == str(work) or cwd.startswith(str(work) + "/")):
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def _wait_until_no_processes(work: Path, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := _processes_under(work)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _leftovers(work: Path) -> list[str]:
    data, cache = work / "data", work / "cache"
    found = [str(p) for p in data.rglob(".*.tmp")] + [str(p) for p in data.glob(".catalog-*")]
    mirrors = cache / "mirrors"
    found += [str(p) for p in mirrors.glob("*/.clone-*")]
    for git_dir in mirrors.glob("*/*.git"):
        found += [str(p) for p in git_dir.rglob("*.lock")]
        found += [str(p) for p in (git_dir / "objects" / "pack").glob("tmp_*")]
    found += [str(p) for p in (cache / "contexts" / "work").glob("fc-validate-*")]
    return found


def _held_locks(work: Path) -> list[str]:
    held = []
    for lock_file in [*(work / "cache" / "mirrors").glob("*/*.git.lock"), *(work / "data").glob("*.lock")]:
        with open(lock_file) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held.append(str(lock_file))
    return held


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """One uninterrupted run: the reference every crashed-then-rerun month must match."""
    work = tmp_path_factory.mktemp("crash-matrix")
    started = time.monotonic()
    _run_to_the_end(work)
    print(f"uninterrupted sample month: {time.monotonic() - started:.1f} s")
    snapshot = _snapshot(work)
    assert "contexts/2024-02.parquet" in snapshot and "patches/2024-02.parquet" in snapshot
    return work, snapshot


@pytest.mark.parametrize("stage", STAGES)
def test_crash_matrix_kill_9_inside_a_stage_then_a_rerun_matches_a_clean_run(baseline, stage):
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    work, expected = baseline
    shutil.rmtree(work / "data")
    shutil.rmtree(work / "signals", ignore_errors=True)
    # Mine for real (the mined-month cache would skip the git calls the kill waits in); a re-run's
    # reuse of closed months has its own test (test_mined_month_cache.py).
    shutil.rmtree(work / "cache" / "mining", ignore_errors=True)
    if stage == "contexts":  # validate for real, so the kill lands in a running build step
        for registry in (work / "cache" / "contexts").glob("registry.sqlite*"):
            registry.unlink()

    crashed = _start(work, stage)
    arrival = work / "signals" / f"at-{stage}"
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    while not arrival.exists() and crashed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if not arrival.exists():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(crashed.pid, signal.SIGKILL)
        pytest.fail(f"the run never reached {stage}: {crashed.communicate(timeout=60)[0][-4000:]}")
    os.killpg(crashed.pid, signal.SIGKILL)  # the run and everything in its process group
    crashed.communicate(timeout=60)
    assert _wait_until_no_processes(work) == [], "processes of the killed run outlived it"

    rerun_started = time.monotonic()
    _run_to_the_end(work)
    print(f"{stage}: re-run after the crash {time.monotonic() - rerun_started:.1f} s")
    assert _snapshot(work) == expected
    assert _leftovers(work) == []
    assert _held_locks(work) == []
    assert _processes_under(work) == []
    instance = DagsterInstance.from_config(str(work / "home"))
    live = [DagsterRunStatus.STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.NOT_STARTED]
    assert instance.get_run_records(filters=RunsFilter(statuses=live)) == []
    instance.dispose()
