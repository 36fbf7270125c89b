"""Fixtures for validation tests: a real Docker engine, and tiny asv repositories.

The engine is ``FORMULACODE_DOCKER_HOST`` when set (a running engine), otherwise the private one of
``scripts/docker_engine.sh`` (its own socket and data root, no host networking changes, a local
Debian base image). An engine this fixture started is stopped by the script (by PID) at the end
of the session; one that was already running is left alone. Tests that need it skip, saying why,
when it cannot start. ``FORMULACODE_DOCKER=0`` skips them outright.

Use it by importing the fixture into a test module (``from ...docker_fixtures import docker_host``).
"""

from __future__ import annotations

import json
import os
import platform
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from formulacode_assets.core.environments.install_analysis import Interpreter, default_pyenv_root, discover_interpreters
from formulacode_assets_tests.gitbuilder import RepoBuilder

ROOT = Path(__file__).resolve().parents[1]
ENGINE_SCRIPT = ROOT / "scripts" / "docker_engine.sh"
BASE_IMAGE = os.environ.get("FC_BASE_IMAGE", "fc-debian:bookworm")


def host_ca_bundle() -> str | None:
    """The host's CA bundle (what ``ssl`` trusts): builds behind TLS-inspecting proxies need it."""
    cafile = ssl.get_default_verify_paths().cafile
    return cafile if cafile and Path(cafile).exists() else None


def _engine_answers(host: str) -> tuple[bool, str]:
    try:
        import docker

        client = docker.DockerClient(base_url=host, version="auto", timeout=10)
        try:
            return True, client.version().get("Version", "?")
        finally:
            client.close()
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def docker_host():
    """``unix://...`` of a reachable engine with the base image, or skip."""
    if os.environ.get("FORMULACODE_DOCKER") == "0":
        pytest.skip("FORMULACODE_DOCKER=0: Docker tests disabled")
    given = os.environ.get("FORMULACODE_DOCKER_HOST")
    if given:
        ok, about = _engine_answers(given)
        if not ok:
            pytest.skip(f"FORMULACODE_DOCKER_HOST={given} does not answer: {about}")
        yield given
        return
    was_running = (
        subprocess.run(["bash", str(ENGINE_SCRIPT), "status"], capture_output=True, timeout=30).returncode == 0
    )
    try:
        started = subprocess.run(
            ["bash", str(ENGINE_SCRIPT), "start"], capture_output=True, text=True, timeout=1200, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.skip("scripts/docker_engine.sh start did not finish within 20 minutes")
    if started.returncode != 0:
        pytest.skip(f"Docker engine could not start (scripts/docker_engine.sh): {started.stderr.strip()[-800:]}")
    host = started.stdout.strip().splitlines()[-1]
    try:
        yield host
    finally:
        if not was_running:
            subprocess.run(["bash", str(ENGINE_SCRIPT), "stop"], capture_output=True, timeout=120, check=False)


# ---------------------------------------------------------------------------------------------
# Tiny asv repositories
# ---------------------------------------------------------------------------------------------

TINY_ASV_CONF = """\
// asv config of a tiny test package (comments and a trailing comma, as real configs have)
{
    "version": 1,
    "project": "tiny",
    "repo": ".",
    "branches": ["main"],
    "environment_type": "virtualenv",
    "benchmark_dir": "benchmarks",
    "env_dir": ".asv/env",
    "results_dir": ".asv/results",
}
"""

TINY_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "tiny"
version = "0.1.0"
requires-python = ">=3.8"
dependencies = []

[tool.setuptools]
packages = ["tiny"]
"""

TINY_BENCH = """\
from tiny import add


def time_add():
    add(1, 2)


class Suite:
    def time_sum(self):
        sum(add(i, i) for i in range(100))
"""


def tiny_asv_repo(
    path: Path,
    *,
    packaged: bool = True,
    bench: str = TINY_BENCH,
    date: str = "2024-01-10T12:00:00Z",
    extra: dict[str, str] | None = None,
) -> tuple[RepoBuilder, str]:
    """A one-commit repository with an asv benchmark of a tiny package; returns ``(builder, sha)``.

    ``packaged=False`` leaves out pyproject.toml: the package is importable from the checkout but
    cannot be pip-installed (the template's recipe fails; a script must put the root on sys.path).
    """
    repo = RepoBuilder(path)
    files = {
        "asv.conf.json": TINY_ASV_CONF,
        "tiny/__init__.py": "def add(a, b):\n    return a + b\n",
        "benchmarks/__init__.py": "",
        "benchmarks/bench_tiny.py": bench,
        **(extra or {}),
    }
    if packaged:
        files["pyproject.toml"] = TINY_PYPROJECT
    sha = repo.commit("Initial commit", files, date=date)
    return repo, sha


def mirror_of(repo: RepoBuilder) -> Path:
    """A working repository's git dir serves as the 'mirror' (it is only read)."""
    return repo.path / ".git"


# Scripts an agent might write for the unpackaged tiny repository: the first forgets the project
# (discovery cannot import it), the second puts the checkout on sys.path.
AGENT_BROKEN_SCRIPT = """\
#!/usr/bin/env bash
set -euo pipefail
uv venv --quiet --python "$FC_PYTHON" "$FC_VENV"
uv pip install --python "$FC_VENV/bin/python" "$FC_ASV_REQUIREMENT"
"""

AGENT_FIXED_SCRIPT = """\
#!/usr/bin/env bash
set -euo pipefail
uv venv --quiet --python "$FC_PYTHON" "$FC_VENV"
uv pip install --python "$FC_VENV/bin/python" "$FC_ASV_REQUIREMENT"
# The project has no packaging metadata: make the checkout importable instead.
SITE="$("$FC_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$PWD" > "$SITE/project-root.pth"
"$FC_VENV/bin/python" -c "import tiny"
"""


def available_interpreters() -> list[Interpreter]:
    """pyenv's interpreters, or at least the one running the tests."""
    return discover_interpreters(default_pyenv_root()) or [Interpreter(platform.python_version(), sys.executable)]


def dump(obj) -> str:
    return json.dumps(obj, indent=2, default=str)
