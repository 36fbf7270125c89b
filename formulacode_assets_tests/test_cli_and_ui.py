"""The deployment surface: the CLI backfill, `dagster definitions validate`, and the webserver's asset graph."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _env(tmp_path: Path) -> dict:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FORMULACODE_DATA_DIR": str(tmp_path / "data"),
        "FORMULACODE_CACHE_DIR": str(tmp_path / "cache"),
    }


def test_two_month_backfill_through_the_cli(tmp_path):
    proc = subprocess.run(
        [
            str(BIN / "dagster"),
            "asset",
            "materialize",
            "-m",
            "formulacode_assets.definitions",
            # --partition-range needs single-run backfills: every stage up to perf_commits (contexts
            # builds environments, one run per month: backfill it through the daemon).
            "--select",
            "*perf_commits",
            "--partition-range",
            "2024-01-01...2024-02-01",
        ],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=1200,  # ~60 s idle; a loaded 2-core machine stretches it several times
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RUN_SUCCESS" in proc.stderr
    for asset in ("repos_discovered", "repos_valid", "merge_commits", "patches", "perf_commits"):
        assert sorted(p.name for p in (tmp_path / "data" / asset).glob("*.parquet")) == [
            "2024-01.parquet",
            "2024-02.parquet",
        ]
    query = subprocess.run(
        [
            str(BIN / "duckdb"),
            "-readonly",
            "-csv",
            "-noheader",
            str(tmp_path / "data" / "catalog.duckdb"),
            "select month, count(*) from patches group by month order by month",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert query.stdout.split() == ["2024-01-01,4", "2024-02-01,10"]


def test_definitions_validate(tmp_path):
    proc = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Validation successful" in proc.stdout + proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


ASSET_GRAPH_QUERY = """
{
  assetNodes {
    assetKey { path }
    dependencyKeys { path }
    groupName
    isPartitioned
    partitionDefinition { description }
    hasAssetChecks
  }
}
"""


def test_webserver_serves_the_asset_graph(tmp_path):
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline, nodes = time.monotonic() + 300, None
        while time.monotonic() < deadline:
            try:
                nodes = _graphql(port, ASSET_GRAPH_QUERY)["data"]["assetNodes"]
                if nodes:
                    break
            except (OSError, KeyError, TypeError):
                pass
            time.sleep(1)
        assert nodes, "the webserver did not serve the asset graph within 300 s"
        graph = {
            "/".join(n["assetKey"]["path"]): sorted("/".join(d["path"]) for d in n["dependencyKeys"]) for n in nodes
        }
        assert graph == {
            "repos_discovered": [],
            "repos_valid": ["repos_discovered"],
            "merge_commits": ["repos_valid"],
            "patches": ["merge_commits", "repos_valid"],
            "perf_commits": ["patches"],
            "contexts": ["perf_commits", "repos_valid"],
            "dataset_overview": ["contexts", "merge_commits", "patches", "perf_commits", "repos_valid"],
            "images": ["contexts"],
            "tasks": ["contexts", "images", "perf_commits"],
            "dataset": ["tasks"],
            "human_speedups": ["contexts"],
        }
        monthly = [n for n in nodes if n["assetKey"]["path"] != ["dataset_overview"]]
        assert all(n["isPartitioned"] and n["hasAssetChecks"] for n in monthly)
        assert {n["assetKey"]["path"][-1]: n["groupName"] for n in nodes}["perf_commits"] == "classification"
        assert "Monthly" in nodes[0]["partitionDefinition"]["description"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
