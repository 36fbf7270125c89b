"""Validators: real builds and real asv runs of tiny repositories, locally and (when an engine starts) in Docker."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pytest

from formulacode_assets.core.environments.build_scripts import render_template
from formulacode_assets.core.environments.docker_validator import DockerValidator
from formulacode_assets.core.environments.install_analysis import analyze_install
from formulacode_assets.core.environments.local_validator import LocalValidator, sandbox_environment
from formulacode_assets.core.environments.validation import MACHINE, ValidationRequest, read_discovery, read_run_results
from formulacode_assets.resources.docker_engine import DockerEngineResource
from formulacode_assets_tests.docker_fixtures import (  # noqa: F401 - docker_host is a fixture
    BASE_IMAGE,
    available_interpreters,
    docker_host,
    host_ca_bundle,
    mirror_of,
    tiny_asv_repo,
)

HANG_SCRIPT = """\
#!/usr/bin/env bash
echo $$ > "$HOME/../script.pid"
sleep 600 &
echo $! > "$HOME/../child.pid"
echo "waiting forever"
wait
"""


def _request(tmp_path: Path, script: str | None = None, **repo_kwargs) -> ValidationRequest:
    repo, sha = tiny_asv_repo(tmp_path / "tiny", **repo_kwargs)
    analysis = analyze_install(mirror_of(repo), "test/tiny", sha, interpreters=available_interpreters())
    return ValidationRequest(
        repo_name="test/tiny",
        sha=sha,
        mirror=mirror_of(repo),
        script=script if script is not None else render_template(analysis),
        python_version=analysis.python_version,
        python_path=analysis.python_path,
        asv=analysis.settings,
        exclude_newer=analysis.resolution_cutoff,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


# --- result files ----------------------------------------------------------------------------


def test_result_files_are_read_as_asv_writes_them(tmp_path):
    assert read_discovery(tmp_path) is None
    (tmp_path / "benchmarks.json").write_text(json.dumps({"a.time_x": {}, "a.time_y": {}, "version": 2}))
    assert read_discovery(tmp_path) == ["a.time_x", "a.time_y"]
    assert read_run_results(tmp_path, "0123456789abcdef") is None
    (tmp_path / MACHINE).mkdir()
    results = {"a.time_x": [[0.5], [], "h"], "a.time_y": [[None], [], "h"], "a.time_z": [[math.nan, 1.0], [["1", "2"]]]}
    (tmp_path / MACHINE / "01234567-existing-py.json").write_text(json.dumps({"results": results}))
    assert read_run_results(tmp_path, "0123456789abcdef") == {"a.time_x": True, "a.time_y": False, "a.time_z": True}


def test_sandbox_environment_keeps_secrets_out(tmp_path, monkeypatch):
    monkeypatch.setenv("GH_TOKENS", "ghp_secret")
    monkeypatch.setenv("DSPY_API_KEY", "sk-secret")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    request = _request(tmp_path)
    env = sandbox_environment(home=tmp_path / "home", venv=tmp_path / "env", request=request, python="python3")
    assert "GH_TOKENS" not in env and "DSPY_API_KEY" not in env
    assert env["HTTPS_PROXY"] == "http://proxy.invalid:3128"
    assert env["FC_VENV"] == str(tmp_path / "env") and env["FC_EXCLUDE_NEWER"].startswith("2024-01-10")
    assert env["HOME"] == str(tmp_path / "home") and env["UV_PYTHON_DOWNLOADS"] == "never"


# --- local validator --------------------------------------------------------------------------


def test_local_validator_builds_and_runs_the_benchmarks_twice(tmp_path):
    request = _request(tmp_path)
    result = LocalValidator(work_root=tmp_path / "work").validate(request, repeats=2)
    assert result.ok, (result.stage_failed, result.reason, result.stdout_tail, result.stderr_tail)
    assert result.benchmarks == ["bench_tiny.Suite.time_sum", "bench_tiny.time_add"]
    assert result.benchmarks_with_results == result.benchmarks and result.benchmarks_failed == []
    assert result.repeats == 2 and result.stable is True
    assert result.python_version.rsplit(".", 1)[0] == request.python_version.rsplit(".", 1)[0]
    assert [s["name"] for s in result.steps] == [
        "build",
        "python",
        "machine",
        "discovery-1",
        "run-1",
        "discovery-2",
        "run-2",
    ]
    assert not list((tmp_path / "work").iterdir()), "the throw-away folder is deleted"


def test_failing_script_is_a_build_failure_with_its_output(tmp_path):
    script = "#!/usr/bin/env bash\necho 'resolving numpy' \necho 'error: no matching distribution' >&2\nexit 7\n"
    result = LocalValidator(work_root=tmp_path / "work").validate(_request(tmp_path, script), repeats=2)
    assert not result.ok
    assert (result.stage_failed, result.returncode) == ("build", 7)
    assert "exited with 7" in result.reason
    assert "resolving numpy" in result.stdout_tail and "no matching distribution" in result.stderr_tail


def test_hanging_script_is_killed_at_the_timeout(tmp_path):
    validator = LocalValidator(work_root=tmp_path / "work", build_timeout=2, keep_workdirs=True)
    started = time.monotonic()
    result = validator.validate(_request(tmp_path, HANG_SCRIPT), repeats=2)
    elapsed = time.monotonic() - started
    assert not result.ok and result.stage_failed == "timeout"
    assert "did not finish within 2 s" in result.reason
    assert "waiting forever" in result.stdout_tail
    assert elapsed < 20
    (workdir,) = (tmp_path / "work").iterdir()
    pids = [int((workdir / name).read_text()) for name in ("script.pid", "child.pid")]
    assert not any(_alive(pid) for pid in pids), "the script and its children are killed"


def test_script_that_leaves_no_asv_fails_the_build(tmp_path):
    script = '#!/usr/bin/env bash\nset -e\nuv venv --quiet --python "$FC_PYTHON" "$FC_VENV"\n'
    result = LocalValidator(work_root=tmp_path / "work").validate(_request(tmp_path, script), repeats=1)
    assert (result.ok, result.stage_failed) == (False, "build")
    assert "bin/asv does not exist" in result.reason


def test_benchmarks_that_cannot_be_imported_fail_discovery(tmp_path):
    request = _request(tmp_path, bench="import not_installed_anywhere\n\n\ndef time_x():\n    pass\n")
    result = LocalValidator(work_root=tmp_path / "work").validate(request, repeats=2)
    assert (result.ok, result.stage_failed) == (False, "discovery")
    assert "not_installed_anywhere" in result.stdout_tail + result.stderr_tail


def test_benchmarks_that_all_raise_fail_the_run(tmp_path):
    request = _request(tmp_path, bench="def time_broken():\n    raise RuntimeError('benchmark exploded')\n")
    result = LocalValidator(work_root=tmp_path / "work").validate(request, repeats=2)
    assert (result.ok, result.stage_failed) == (False, "run")
    assert "no timing" in result.reason
    assert "benchmark exploded" in result.stdout_tail + result.stderr_tail


# --- docker validator --------------------------------------------------------------------------


@pytest.fixture
def docker_validator(docker_host):  # noqa: F811 - pytest fixture injection
    engine = DockerEngineResource(
        base_url=docker_host,
        base_image=BASE_IMAGE,
        extra_ca_certs=host_ca_bundle(),
        build_timeout_s=8,
        step_timeout_s=120,
    )
    validator = engine.validator()
    yield validator
    validator.client.close()


def test_docker_validator_builds_layers_and_runs_benchmarks_without_network(tmp_path, docker_validator):
    docker_validator.build_timeout = 300
    request = _request(tmp_path)
    result = docker_validator.validate(request, repeats=2)
    assert result.ok, (result.stage_failed, result.reason, result.stdout_tail[-2000:], result.stderr_tail)
    assert result.benchmarks == ["bench_tiny.Suite.time_sum", "bench_tiny.time_add"]
    assert result.stable is True and result.repeats == 2
    assert result.python_version.startswith("3.")
    tag = docker_validator.image_tag(request)
    assert not docker_validator.client.images.list(name=tag.split(":")[0]), "validation images are removed"
    assert docker_validator.run_network_mode == "none"


def test_docker_validator_stops_a_hanging_build_and_reports_failures(tmp_path, docker_validator):
    assert isinstance(docker_validator, DockerValidator)
    started = time.monotonic()
    hung = docker_validator.validate(_request(tmp_path, "#!/usr/bin/env bash\necho stuck\nsleep 600\n"), repeats=1)
    assert (hung.ok, hung.stage_failed) == (False, "timeout"), (hung.reason, hung.stdout_tail[-1500:])
    assert time.monotonic() - started < 90
    failed = docker_validator.validate(_request(tmp_path / "b", "#!/usr/bin/env bash\necho nope >&2\nexit 7\n"))
    assert (failed.ok, failed.stage_failed, failed.returncode) == (False, "build", 7)
    assert "nope" in failed.stdout_tail
    assert "build_env.sh exited with 7; last output: nope" in failed.reason, failed.reason
