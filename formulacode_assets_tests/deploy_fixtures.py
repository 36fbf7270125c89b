"""A Dagster deployment on 127.0.0.1 for tests: Postgres-backed webserver and daemon processes.

The instance file is ``deploy/dagster.yaml`` itself (storage, queued coordinator, concurrency), with
its run launcher swapped as the test asks (default: runs as local processes) and compute logs in
the test's folder. Processes start in their own session and are stopped by process group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from formulacode_assets_tests.service_fixtures import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def write_instance(home: Path, run_launcher: dict | None = None) -> Path:
    config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    config.pop("run_launcher")
    if run_launcher:
        config["run_launcher"] = run_launcher
    config["compute_logs"]["config"]["base_dir"] = str(home / "compute_logs")
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home / "dagster.yaml"


def graphql(port: int, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.load(response)
    if answer.get("errors"):
        raise AssertionError(f"GraphQL errors: {answer['errors']}")
    return answer["data"]


class Deployment:
    """``dagster-webserver`` and ``dagster-daemon`` over one instance and workspace."""

    def __init__(self, env: dict[str, str], workspace: Path, logs: Path):
        self.env, self.workspace, self.logs = env, workspace, logs
        self.port = free_port()
        self.processes: list[subprocess.Popen] = []

    def _start(self, name: str, *args: str) -> None:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115  (kept open for the process)
        self.processes.append(
            subprocess.Popen(
                [str(BIN / name), *args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def start(self, daemon: bool = True) -> Deployment:
        self.logs.mkdir(parents=True, exist_ok=True)
        self._start("dagster-webserver", "-w", str(self.workspace), "-h", "127.0.0.1", "-p", str(self.port))
        if daemon:
            self._start("dagster-daemon", "run", "-w", str(self.workspace))
        return self

    def wait_for_assets(self, timeout: float = 240) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.processes:
                assert proc.poll() is None, f"{proc.args[0]} exited: {self.log_tail()}"
            try:
                nodes = graphql(self.port, "{ assetNodes { assetKey { path } isPartitioned } }", timeout=10)
                if nodes["assetNodes"]:
                    return nodes["assetNodes"]
            except (OSError, AssertionError, KeyError):
                pass
            time.sleep(1)
        raise AssertionError(f"the webserver served no assets within {timeout} s: {self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in sorted(self.logs.glob("*.log"))
        )

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
