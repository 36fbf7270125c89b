"""Issue 12: faults, hostile inputs and crashes that used to break a repository, a month or the instance.

Each ``test_point_N_*`` covers point N of the issue and failed before its fix.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from formulacode_assets.core.mining.asv_config import load_asv_json
from formulacode_assets.core.mining.git import GitError
from formulacode_assets.core.mining.mirror import sync_mirror
from formulacode_assets.core.mining.repos import RepoSpec, repos_valid_rows
from formulacode_assets.storage.catalog import refresh_catalog
from formulacode_assets_tests.docker_fixtures import docker_host  # noqa: F401 - a pytest fixture

MONTH_END = datetime(2024, 3, 1, tzinfo=UTC)


def _asv_repo(repo, conf: str) -> None:
    repo.commit("init", {"asv.conf.json": conf, "pkg/__init__.py": ""}, date="2024-01-10T10:00:00Z")


# --- point 6: a hostile asv.conf.json stays on its repository's row ---------------------------------


def test_point_6_deep_or_huge_asv_conf_is_one_failed_row_and_stripping_is_linear(repo, tmp_path):
    _asv_repo(repo, "[" * 100_000 + "]" * 100_000)
    deep = sync_mirror(tmp_path / "cache", "hostile/deep", str(repo.path), default_branch="main")
    good_repo = type(repo)(tmp_path / "good")
    _asv_repo(good_repo, '{"version": 1, // comment\n "benchmark_dir": "benchmarks",}')
    good = sync_mirror(tmp_path / "cache", "fine/good", str(good_repo.path), default_branch="main")

    specs = [RepoSpec("hostile/deep", str(repo.path)), RepoSpec("fine/good", str(good_repo.path))]
    rows = {
        r["repo_name"]: r
        for r in repos_valid_rows(specs, {"hostile/deep": deep, "fine/good": good}, "git", "2024-02-01", MONTH_END)
    }
    assert rows["hostile/deep"]["status"] == "failed" and "nested too deeply" in rows["hostile/deep"]["reason"]
    assert rows["fine/good"]["status"] == "ok" and rows["fine/good"]["benchmark_dir"] == "benchmarks"

    # Linear comment stripping: 300 KB of unterminated comments and strings used to take ~90 s.
    hostile = '{"a": 1, ' + "/* x" * 75_000  # every unterminated comment rescanned the rest: 91 s before
    started = time.monotonic()
    with pytest.raises(ValueError):
        load_asv_json(hostile)
    assert time.monotonic() - started < 5
    assert load_asv_json('{"u": "http://x//y", /* c */ "l": [1, 2,], // t\n}') == {"u": "http://x//y", "l": [1, 2]}


# --- point 7: glob characters in the data folder ----------------------------------------------------


def test_point_7_catalog_rebuild_with_glob_characters_in_the_data_path(tmp_path):
    data = tmp_path / "data[1]*?"
    (data / "patches").mkdir(parents=True)
    pq.write_table(pa.table({"month": ["2024-02-01"], "n": [3]}), data / "patches" / "2024-02.parquet")
    catalog = tmp_path / "cat[1]" / "catalog.duckdb"
    assert refresh_catalog(data, catalog) == ["patches"]
    with duckdb.connect(str(catalog), read_only=True) as con:
        assert con.sql("select n from patches").fetchall() == [(3,)]


# --- point 9: the ext:: transport and the parent's GIT_* environment --------------------------------


def test_point_9_ext_transport_is_refused_even_when_the_parent_allows_it(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "ext:file")
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'protocol.ext.allow'='always'")
    url = f"ext::sh -c touch% {marker}% >&2"
    with pytest.raises(GitError):
        sync_mirror(tmp_path / "cache", "evil/ext", url, default_branch="main")
    assert not marker.exists()
    # git gets an allow-list of the parent's environment: no GIT_* of the parent, no token.
    from formulacode_assets.core.mining.git import git_env

    monkeypatch.setenv("GIT_SSH_COMMAND", f"touch {marker}")
    monkeypatch.setenv("GH_TOKEN", "ghp_never_for_git")
    env = git_env()
    assert env["GIT_ALLOW_PROTOCOL"] == "file:git:http:https:ssh"
    assert "GIT_SSH_COMMAND" not in env and "GIT_CONFIG_PARAMETERS" not in env and "GH_TOKEN" not in env


# --- point 11: a token echoed back by the server ---------------------------------------------------


def test_point_11_a_token_echoed_in_an_error_body_is_redacted_everywhere(tmp_path, caplog):
    import logging

    from formulacode_assets.core.github.client import GitHubClientPool, GitHubSettings
    from formulacode_assets.core.github.response_cache import ResponseCache
    from formulacode_assets.core.github.source import GitHubSource
    from formulacode_assets_tests.github_server import FakeGitHub, Fault

    token = "ghp_echoedSecret0123456789"
    server = FakeGitHub().start()
    try:
        echo = {"message": f"Bad credentials: token {token} is not valid"}
        server.add_repo("octo/lib", "/nowhere")
        server.faults.append(Fault(r"^/repos/octo/lib$", 422, body=echo, times=100))
        server.faults.append(Fault(r"^/search/issues$", 422, body=echo, times=100))
        settings = GitHubSettings(base_url=server.url, tokens=(token,), seconds_between_requests=0, max_retries=0)
        logs: list[str] = []
        source = GitHubSource(GitHubClientPool(settings), ResponseCache(tmp_path / "gh"), log=logs.append)
        with caplog.at_level(logging.DEBUG):
            record = source.repository("octo/lib", closed=True, month="2024-02-01")
            with pytest.raises(Exception) as raised:
                source._search_page_once("issues", "is:pr", 0)
            logging.getLogger("github.Requester").debug("echo %s", token)
            source.log(f"something about {token}")
    finally:
        server.stop()
    assert record["status"] == "failed" and "Bad credentials" in record["reason"]
    texts = [record["reason"], str(raised.value), *logs, *(r.getMessage() for r in caplog.records)]
    assert "[redacted]" in record["reason"] and "[redacted]" in str(raised.value)
    assert not any(token in text for text in texts)


# --- point 10: registry scripts stay with their kind of sandbox; agent scripts stay off the host ----


def test_point_10_docker_scripts_are_not_replayed_locally_and_agent_scripts_need_explicit_local(tmp_path):
    from formulacode_assets.core.environments.registry import ContextRegistry, RegisteredContext
    from formulacode_assets.resources.contexts import ContextSynthesisResource
    from formulacode_assets.resources.settings import build_resources

    registry = ContextRegistry(tmp_path / "registry.sqlite")
    for validator, date in (("docker", "2024-01-20T00:00:00+00:00"), ("local", "2024-01-05T00:00:00+00:00")):
        registry.register(
            RegisteredContext(
                repo_name="o/r",
                sha=validator * 5,
                validator=validator,
                commit_date=date,
                build_env_sh=f"echo {validator}",
                script_sha256="x",
                source="agent",
                python_version="3.11.9",
            )
        )
    when = datetime(2024, 2, 1, tzinfo=UTC)
    assert registry.nearest_earlier("o/r", when, validator="local").build_env_sh == "echo local"
    assert registry.nearest_earlier("o/r", when, validator="docker").build_env_sh == "echo docker"
    assert registry.nearest_earlier("o/r", datetime(2024, 1, 10, tzinfo=UTC), validator="docker") is None

    # The sample source allows local validation by default, but not LLM-written scripts on the host.
    implicit = build_resources({"FORMULACODE_SOURCE": "sample"})["context_synthesis"]
    explicit = build_resources({"FORMULACODE_SOURCE": "sample", "FORMULACODE_LOCAL_VALIDATION": "1"})[
        "context_synthesis"
    ]
    assert implicit.allow_local and not implicit.local_agent_scripts and explicit.local_agent_scripts

    class Named:
        def __init__(self, name):
            self.name = name

    agent = object()
    for resource, validator, keeps_agent in (
        (implicit, "local", False),
        (explicit, "local", True),
        (implicit, "docker", True),
    ):
        resource = ContextSynthesisResource(
            **{**resource.model_dump(), "cache_dir": str(tmp_path), "registry_path": str(tmp_path / "reg.sqlite")}
        )
        synth = resource.synthesizer(Named(validator), "why", mirror_path=lambda n: tmp_path, agent=agent)
        assert (synth.agent is agent) is keeps_agent, (validator, resource.local_agent_scripts)


# --- point 12: re-running contexts is idempotent -----------------------------------------------------

# Columns that describe this run's work, not the context: they differ between a fresh and a reused row.
PER_RUN_COLUMNS = {
    "reused",
    "attempts",
    "attempt_log",
    "stdout_tail",
    "stderr_tail",
    "validations",
    "duration_s",
    "benchmarks_failed",
    # How this run validated (issue 9): the benchmark selection and step times; a reused row did not
    # validate, so it has none.
    "benchmarks_selected",
    "selection_rule",
    "selection",
    "step_times",
    "benchmarks_excluded",  # modules set aside by this run's import check
}


def test_point_12_reused_context_rows_carry_the_same_columns_as_fresh_ones(tmp_path):
    from formulacode_assets.core.contracts import CONTEXTS
    from formulacode_assets.core.environments.registry import ContextRegistry
    from formulacode_assets.core.environments.synthesis import ContextSynthesizer, ContextTarget, SynthesisSettings
    from formulacode_assets.core.environments.validation import ValidationResult, Validator
    from formulacode_assets_tests.docker_fixtures import available_interpreters, mirror_of, tiny_asv_repo

    class InstantValidator(Validator):
        """Accepts every script at once: the point is the row, not the build."""

        name = "local"

        def validate(self, request, *, repeats=2):
            return ValidationResult(
                ok=True, validator="local", python_version="3.11.9", benchmarks=["b.time_x"], repeats=1, stable=True
            )

    repo, sha = tiny_asv_repo(tmp_path / "tiny")
    synthesizer = ContextSynthesizer(
        registry=ContextRegistry(tmp_path / "registry.sqlite"),
        validator=InstantValidator(),
        mirror_path=lambda name: mirror_of(repo),
        interpreters=available_interpreters(),
        settings=SynthesisSettings(repeats=1),
        cache_dir=tmp_path / "cache",
    )
    target = ContextTarget("test/tiny", sha, ("m",), (), None)
    fresh = synthesizer.context_row("2024-02-01", target)
    reused = synthesizer.context_row("2024-02-01", target)
    assert fresh["status"] == "ok" and fresh["reused"] is False and reused["reused"] is True
    assert fresh["asv_conf_path"] == "asv.conf.json" and fresh["requirements"] is not None
    same = [c.name for c in CONTEXTS.columns if c.name not in PER_RUN_COLUMNS]
    assert {c: reused.get(c) for c in same} == {c: fresh.get(c) for c in same}


# --- point 1: git locks of a killed process ----------------------------------------------------------


def _killed_while_holding(paths) -> None:
    """A real process creates ``paths`` the way git does (O_EXCL), then dies by SIGKILL."""
    code = (
        "import os, sys, time\n"
        "for p in sys.argv[1:]:\n"
        "    os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY))\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, paths)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    proc.kill()
    assert proc.wait(timeout=30) == -signal.SIGKILL


def test_point_1_stale_git_locks_of_a_killed_process_are_recovered(repo, tmp_path):
    _asv_repo(repo, '{"version": 1}')
    cache = tmp_path / "cache"
    first = sync_mirror(cache, "o/lib", str(repo.path), default_branch="main")
    git_dir = first.path
    leftovers = [
        git_dir / "commit-graph.lock",
        git_dir / "packed-refs.lock",
        git_dir / "refs" / "heads" / "main.lock",
        git_dir / "objects" / "pack" / "tmp_pack_abc123",
    ]
    _killed_while_holding(leftovers)
    clone_leftover = git_dir.parent / ".clone-lib.git+dead"
    clone_leftover.mkdir()
    other_repo_clone = git_dir.parent / ".clone-lib-other.git+live"  # another repository's: not ours to remove
    other_repo_clone.mkdir()
    repo.commit("more", {"a.py": "x = 1\n"}, date="2024-02-10T10:00:00Z")

    again = sync_mirror(cache, "o/lib", str(repo.path), default_branch="main")
    assert again.action == "fetched"
    assert not any(p.exists() for p in leftovers) and not clone_leftover.exists()
    assert other_repo_clone.exists()
    assert (git_dir / "commit-graph").exists() or (git_dir / "objects" / "info" / "commit-graph").exists()


# --- point 8: a local partial snapshot ---------------------------------------------------------------


def test_point_8_a_local_source_with_missing_blobs_fails_only_the_changes_that_need_them(repo, tmp_path):
    from formulacode_assets.core.mining.merged_changes import merged_changes_in_window
    from formulacode_assets.core.mining.patches import DiffFailure, diffs_against_base

    repo.commit("Initial", {"asv.conf.json": "{}\n", "pkg/a.py": "a = 1\n"}, date="2024-01-05T00:00:00Z")
    broken = repo.commit("Broken blob", {"pkg/b.py": "b = 2\n"}, date="2024-02-05T00:00:00Z")
    fine = repo.commit("Fine change", {"pkg/a.py": "a = 3\n"}, date="2024-02-06T00:00:00Z")
    blob = repo.git("rev-parse", f"{broken}:pkg/b.py")
    (repo.path / ".git" / "objects" / blob[:2] / blob[2:]).unlink()  # a partial snapshot

    mirror = sync_mirror(tmp_path / "cache", "o/partial", str(repo.path), default_branch="main")
    changes = merged_changes_in_window(
        mirror.path, "main", datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)
    )
    assert {c.merge_commit_sha for c in changes} == {broken, fine}
    diffs = diffs_against_base(mirror.path, [(c.merge_commit_sha, c.base_sha) for c in changes])
    assert isinstance(diffs[broken], DiffFailure)
    assert not isinstance(diffs[fine], DiffFailure) and "a = 3" in diffs[fine].patch
    # The next month's sync works the same way (fetch fails, refs are shared again).
    assert sync_mirror(tmp_path / "cache", "o/partial", str(repo.path), default_branch="main").action == "fetched"


# --- point 4: build steps and containers die with the run --------------------------------------------


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _start_pipeline(code: str) -> subprocess.Popen:
    """A stand-in for the pipeline process, in its own process group so the test can kill it whole."""
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)


def _kill_pipeline(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_point_4_a_build_step_dies_with_a_killed_pipeline(tmp_path):
    pids = tmp_path / "pids"
    script = f"sleep 300 & echo $! > {pids}.tmp; echo $$ >> {pids}.tmp; mv {pids}.tmp {pids}; wait"
    code = (
        "import os\n"
        "from pathlib import Path\n"
        "from formulacode_assets.core.environments.local_validator import run_step\n"
        f"run_step(['bash', '-c', {script!r}], cwd=Path({str(tmp_path)!r}), env={{'PATH': os.environ['PATH']}},"
        f" timeout=600, logs=Path({str(tmp_path / 'logs')!r}))\n"
    )
    pipeline = _start_pipeline(code)
    try:
        _wait_for(pids.exists, 60, "the build step to start")
        step_pids = [int(p) for p in pids.read_text().split()]
        assert all(_alive(p) for p in step_pids)
    finally:
        _kill_pipeline(pipeline)
    _wait_for(lambda: not any(_alive(p) for p in step_pids), 30, "the build step to die with the pipeline")


def test_point_4_a_validation_container_is_removed_when_the_pipeline_is_killed(docker_host):  # noqa: F811 - pytest fixture injection
    import docker

    from formulacode_assets.core.process_guard import OWNER_LABEL
    from formulacode_assets_tests.docker_fixtures import BASE_IMAGE

    client = docker.DockerClient(base_url=docker_host, version="auto", timeout=60)
    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"base image {BASE_IMAGE} is not in the engine")
    code = (
        "import docker\n"
        "from formulacode_assets.core.environments.docker_validator import DockerValidator\n"
        "from formulacode_assets.core.environments.validation import ValidationResult\n"
        f"client = docker.DockerClient(base_url={docker_host!r}, version='auto', timeout=900)\n"
        "DockerValidator(client)._container(ValidationResult(ok=False, validator='docker'), 'sleep',"
        f" {BASE_IMAGE!r}, ['sleep', '300'], 600)\n"
    )
    pipeline = _start_pipeline(code)
    label = {"label": f"{OWNER_LABEL}={pipeline.pid}"}
    try:
        _wait_for(lambda: client.containers.list(filters={**label, "status": "running"}), 120, "the container")
    finally:
        _kill_pipeline(pipeline)
    try:
        _wait_for(lambda: not client.containers.list(all=True, filters=label), 60, "the container to be removed")
    finally:
        for leftover in client.containers.list(all=True, filters=label):
            leftover.remove(force=True)
        client.close()


# --- point 3: what a killed run leaves behind --------------------------------------------------------

_BLOCKING_RUN = """\
import sys, time
from pathlib import Path
from dagster import DagsterInstance, asset, materialize

@asset
def slow():
    Path(sys.argv[1]).write_text("started")
    time.sleep(600)

materialize([slow], instance=DagsterInstance.get())
"""


def test_point_3_a_killed_runs_files_are_swept_and_its_run_is_marked_failed(tmp_path):
    from dagster import DagsterInstance, DagsterRunStatus

    from formulacode_assets.recover import recover_dead_runs, sweep_folders
    from formulacode_assets.storage.parquet_io_manager import ParquetUPathIOManager

    data, work = tmp_path / "data", tmp_path / "cache" / "contexts" / "work"
    (data / "patches").mkdir(parents=True)
    work.mkdir(parents=True)
    # A real process makes temporaries named the way the pipeline names them, then dies by SIGKILL.
    code = (
        "import os, sys, time\n"
        "data, work = sys.argv[1], sys.argv[2]\n"
        "pid = os.getpid()\n"
        "open(f'{data}/patches/.2024-02.parquet.{pid}-abc.tmp', 'w').write('partial')\n"
        "open(f'{data}/.catalog-x1y2.duckdb', 'w').write('partial')\n"
        "os.makedirs(f'{work}/fc-validate-{pid}-q9/repo')\n"
        "print('made', flush=True)\n"
        "time.sleep(600)\n"
    )
    dead = subprocess.Popen([sys.executable, "-c", code, str(data), str(work)], stdout=subprocess.PIPE, text=True)
    assert dead.stdout.readline().strip() == "made"
    dead.kill()
    dead.wait(timeout=30)
    # A live run's temporaries (this process) must survive every sweep.
    live_tmp = data / "patches" / f".2024-02.parquet.{os.getpid()}-live.tmp"
    live_tmp.write_text("being written")
    live_work = work / f"fc-validate-{os.getpid()}-live"
    live_work.mkdir()

    # The next write of the month and the next catalog rebuild clean up on their own.
    class _Context:
        asset_key = None

    from upath import UPath

    io = ParquetUPathIOManager(base_path=UPath(data), catalog_path=data / "catalog.duckdb")
    io.dump_to_path(_Context(), pa.table({"n": [1]}), UPath(data / "patches" / "2024-02.parquet"))
    refresh_catalog(data, data / "catalog.duckdb")
    assert sorted(p.name for p in (data / "patches").iterdir()) == sorted(["2024-02.parquet", live_tmp.name])
    assert not list(data.glob(".catalog-*"))
    assert any("fc-validate-" in p for p in sweep_folders(data, tmp_path / "cache"))
    assert [p.name for p in work.iterdir()] == [live_work.name]

    # The run: a real run in a real instance (SQLite under DAGSTER_HOME), killed mid-step.
    home, started = tmp_path / "dagster_home", tmp_path / "started"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    run = subprocess.Popen([sys.executable, "-c", _BLOCKING_RUN, str(started)], env=env, start_new_session=True)
    try:
        _wait_for(started.exists, 120, "the run's step to start")
    finally:
        _kill_pipeline(run)
    instance = DagsterInstance.from_config(str(home))
    (record,) = instance.get_run_records()
    assert record.dagster_run.status == DagsterRunStatus.STARTED  # what a kill -9 leaves
    recovery = subprocess.run(
        [sys.executable, "-m", "formulacode_assets.recover"],
        env={**env, "FORMULACODE_DATA_DIR": str(data), "FORMULACODE_CACHE_DIR": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "1 dead run(s) marked failed" in recovery.stdout and record.dagster_run.run_id in recovery.stdout
    assert instance.get_run_by_id(record.dagster_run.run_id).status == DagsterRunStatus.FAILURE
    assert recover_dead_runs(instance, log=lambda m: None) == []
