"""A newcomer's first runs: README command 1 lands in the instance the UI reads, quietly; first runs may overlap."""

import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from formulacode_assets.instance import prepare_instance

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow

STAGES = {"repos_discovered", "repos_valid", "merge_commits", "patches", "perf_commits", "contexts"}
# Dagster's warning classes that the project's own use of its APIs must not trigger.
NOISY = re.compile(r"(DeprecationWarning|BetaWarning|PreviewWarning|SupersessionWarning)")


def _readme_command_1() -> list[str]:
    """README command 1 without its install steps, run with this environment's executables."""
    readme = (ROOT / "README.md").read_text()
    (line,) = [x for x in readme.splitlines() if "asset materialize" in x and "pip install uv" in x]
    steps = [s.strip() for s in line.split("&&")]
    runnable = [s for s in steps if not s.startswith(("pip install", "uv sync"))]
    assert runnable and all(s.startswith("uv run ") for s in runnable), runnable
    return [shlex.split(s.removeprefix("uv run ").replace("python ", f"{sys.executable} ", 1)) for s in runnable]


def _env(tmp_path: Path, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORMULACODE_", "GH_", "DSPY_"))}
    return {
        **env,
        "DAGSTER_HOME": str(home),  # "export DAGSTER_HOME to move it" (README): here, a fresh folder
        "FORMULACODE_DATA_DIR": str(tmp_path / "data"),
        "FORMULACODE_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONUNBUFFERED": "1",
    }


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


MATERIALIZED = """
{
  assetNodes {
    assetKey { path }
    assetMaterializations(partitions: ["2024-02-01"]) {
      partition
      metadataEntries { label ... on IntMetadataEntry { intValue } }
    }
    assetChecksOrError {
      ... on AssetChecks { checks { name executionForLatestMaterialization { status evaluation { partition } } } }
    }
  }
}
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readme_command_1_is_quiet_and_its_month_is_what_the_webserver_shows(tmp_path):
    home = tmp_path / "dagster_home"
    env = _env(tmp_path, home)
    output = ""
    for command in _readme_command_1():
        proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        output += proc.stdout + proc.stderr
        assert proc.returncode == 0, output[-3000:]
    # A clean log: no warnings from the project's use of Dagster, no DEBUG flood, no Docker noise.
    assert not [x for x in output.splitlines() if NOISY.search(x)], output[:3000]
    assert " - DEBUG - " not in output and "DockerException" not in output
    assert (home / "dagster.yaml").resolve() == (ROOT / "dagster.yaml").resolve()

    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline, nodes = time.monotonic() + 300, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                nodes = _graphql(port, MATERIALIZED)["data"]["assetNodes"]
                if nodes:
                    break
            except (OSError, KeyError, TypeError):
                pass
            time.sleep(0.5)
        assert nodes, "the webserver did not answer within 300 s"
        seen = {}
        for node in nodes:
            if not node["assetMaterializations"] and node["assetKey"]["path"] == ["dataset_overview"]:
                continue  # unpartitioned: the summary of all months is not part of a month's run
            (materialization,) = node["assetMaterializations"]
            entries = {e["label"]: e.get("intValue") for e in materialization["metadataEntries"]}
            seen[node["assetKey"]["path"][-1]] = (materialization["partition"], entries["dagster/row_count"])
        assert set(seen) >= STAGES
        assert all(partition == "2024-02-01" for partition, _ in seen.values())
        assert seen["patches"][1] == 10 and seen["repos_discovered"][1] == 4
        # ... and every stage's checks with February's own result.
        for node in nodes:
            checks = {c["name"]: c["executionForLatestMaterialization"] for c in node["assetChecksOrError"]["checks"]}
            if node["assetKey"]["path"] == ["dataset_overview"]:
                continue  # unpartitioned: no monthly checks
            assert {"unique_keys", "contract", "failure_rate"} <= set(checks), node["assetKey"]
            for name, execution in checks.items():
                assert execution and execution["status"] == "SUCCEEDED", (node["assetKey"], name, execution)
                assert execution["evaluation"]["partition"] == "2024-02-01"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def _alembic_heads(home: Path) -> list[str]:
    with sqlite3.connect(home / "history" / "runs.db") as con:
        return [r[0] for r in con.execute("select version_num from alembic_version")]


def test_three_concurrent_first_runs_on_a_fresh_home_all_succeed(tmp_path):
    """Issue 12.2: three first runs at once used to fail one run and leave two alembic heads."""
    home = tmp_path / "dagster_home"
    env = _env(tmp_path, home)
    months = ("2024-01-01", "2024-02-01", "2024-03-01")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "formulacode_assets", "asset", "materialize"]
            + ["-m", "formulacode_assets.definitions", "--select", "repos_discovered", "--partition", month],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        for month in months
    ]
    try:
        outputs = [p.communicate(timeout=600)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    assert [p.returncode for p in procs] == [0, 0, 0], "\n---\n".join(o[-2000:] for o in outputs)
    assert len(_alembic_heads(home)) == 1
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
    from dagster._core.instance.ref import InstanceRef

    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))
        assert len(runs) == 3
    assert sorted(p.name for p in (tmp_path / "data" / "repos_discovered").glob("*.parquet")) == [
        "2024-01.parquet",
        "2024-02.parquet",
        "2024-03.parquet",
    ]


def test_prepare_instance_is_idempotent_and_links_the_repository_config(tmp_path):
    home = prepare_instance(tmp_path / "home")
    assert (home / "dagster.yaml").is_symlink() and _alembic_heads(home)
    before = (home / "history" / "runs.db").stat().st_mtime_ns
    assert prepare_instance(home) == home
    assert (home / "history" / "runs.db").stat().st_mtime_ns == before  # the ready marker short-cuts it
