"""Whole-definition tests: the definitions load and hold the expected graph, job, schedule and checks."""

from datetime import UTC, datetime
from pathlib import Path

import yaml
from dagster import (
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    EnvVar,
    build_schedule_context,
    in_process_executor,
    multiprocess_executor,
)
from dagster._core.instance.ref import InstanceRef

from formulacode_assets.definitions import defs
from formulacode_assets.partitions import monthly_partitions
from formulacode_assets.resources import build_executor, build_resources

EXPECTED_ASSETS = {
    "repos_discovered",
    "repos_valid",
    "merge_commits",
    "patches",
    "perf_commits",
    "contexts",
    "images",
    "tasks",
    "dataset",
    "human_speedups",
}


def test_definitions_load_with_the_expected_graph():
    graph = defs.resolve_asset_graph()
    assert {k.path[-1] for k in graph.get_all_asset_keys()} == EXPECTED_ASSETS | {"dataset_overview"}
    assert graph.get(AssetKey("repos_valid")).parent_keys == {AssetKey("repos_discovered")}
    assert graph.get(AssetKey("merge_commits")).parent_keys == {AssetKey("repos_valid")}
    assert graph.get(AssetKey("patches")).parent_keys == {AssetKey("merge_commits"), AssetKey("repos_valid")}
    assert graph.get(AssetKey("perf_commits")).parent_keys == {AssetKey("patches")}
    assert graph.get(AssetKey("contexts")).parent_keys == {AssetKey("perf_commits"), AssetKey("repos_valid")}
    assert graph.get(AssetKey("images")).parent_keys == {AssetKey("contexts")}
    assert graph.get(AssetKey("tasks")).parent_keys == {
        AssetKey("images"),
        AssetKey("contexts"),
        AssetKey("perf_commits"),
    }
    assert graph.get(AssetKey("dataset")).parent_keys == {AssetKey("tasks")}
    for name in EXPECTED_ASSETS:
        node = graph.get(AssetKey(name))
        assert node.partitions_def == monthly_partitions
        # Cheap stages backfill a range in one run; builds one run per month.
        policy = BackfillPolicy.multi_run(1) if name in ("contexts", "images") else BackfillPolicy.single_run()
        assert node.backfill_policy == policy
        assert node.code_version
    overview = graph.get(AssetKey("dataset_overview"))
    assert overview.partitions_def is None and overview.code_version
    checks = {(k.asset_key.path[-1], k.name) for k in graph.asset_check_keys}
    per_stage = ("unique_keys", "contract", "failure_rate")
    windowed = {"merge_commits", "patches", "perf_commits", "tasks"}
    assert checks == {(a, c) for a in EXPECTED_ASSETS for c in per_stage} | {
        (a, "merged_at_in_window") for a in windowed
    } | {("images", "images_exist"), ("tasks", "decontamination")}


def test_every_asset_has_owners_and_a_description_and_every_monthly_stage_its_checks():
    """Also covers stages added later: each must use ``checks.monthly_check_specs`` (or ``monthly_asset``)."""
    graph = defs.resolve_asset_graph()
    checks = {}
    for key in graph.asset_check_keys:
        checks.setdefault(key.asset_key, set()).add(key.name)
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners and (node.description or "").strip(), key
        if node.partitions_def == monthly_partitions:
            assert {"unique_keys", "contract", "failure_rate"} <= checks.get(key, set()), key


def test_monthly_partitions_are_utc_months_from_2024():
    assert monthly_partitions.get_first_partition_key() == "2024-01-01"
    window = monthly_partitions.time_window_for_partition_key("2024-02-01")
    assert (window.start, window.end) == (datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))


def test_schedule_runs_the_month_that_just_closed():
    schedule = defs.get_schedule_def("monthly_assets_schedule")
    assert schedule.cron_schedule == "0 3 2 * *"
    job = defs.resolve_job_def("monthly_assets")
    assert job.partitions_def == monthly_partitions
    context = build_schedule_context(scheduled_execution_time=datetime(2024, 3, 2, 3, 0, tzinfo=UTC))
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2024-02-01"


def test_resources_follow_environment_variables(tmp_path):
    csv = tmp_path / "repos.csv"
    environ = {
        "FORMULACODE_DATA_DIR": str(tmp_path / "d"),
        "FORMULACODE_REPOS_CSV": str(csv),
        "CACHE_LOCATION": str(tmp_path / "c"),
    }
    resources = build_resources(environ)
    git_source = resources["git_source"]
    # Set variables are bound as EnvVar (the UI shows their origin); a CSV implies the git source.
    assert isinstance(git_source.repos_csv, EnvVar) and git_source.repos_csv.env_var_name == "FORMULACODE_REPOS_CSV"
    assert git_source.cache_dir.env_var_name == "CACHE_LOCATION"
    assert git_source.source == "git"
    assert resources["io_manager"].catalog_path == str(tmp_path / "d" / "catalog.duckdb")
    assert build_resources({"GH_TOKEN": "x"})["github_api"].tokens.env_var_name == "GH_TOKEN"
    defaults = build_resources({})
    assert defaults["github_api"].tokens is None
    assert defaults["llm"].uses_heuristic
    llm = build_resources({"DSPY_MODEL_NAME": "m", "DSPY_API_KEY": "k", "DSPY_TEMPERATURE": "0.3"})["llm"]
    assert llm.api_key.env_var_name == "DSPY_API_KEY" and llm.temperature == 0.3
    assert defaults["context_synthesis"].allow_local, "the sample store may validate on the host"
    assert not build_resources({"FORMULACODE_SOURCE": "github"})["context_synthesis"].allow_local
    assert defaults["git_source"].source == "sample"
    assert build_executor({}) is in_process_executor
    assert build_executor({"FORMULACODE_EXECUTOR": "multiprocess"}) is multiprocess_executor


def test_instance_configs_load(tmp_path):
    root = Path(__file__).resolve().parents[1]
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path), config_dir=str(root))) as instance:
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 2
    deploy = yaml.safe_load((root / "deploy" / "dagster.yaml").read_text())
    assert deploy["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_POSTGRES_PASSWORD"}
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    assert {"postgres", "user_code", "webserver", "daemon"} <= set(compose["services"])


def test_loading_the_definitions_imports_no_heavy_library_it_does_not_use():
    """CLI start-up: PyGithub, DSPy, Docker, DuckDB, pandas and upath load where they are used."""
    import subprocess
    import sys

    heavy = ("github", "dspy", "docker", "duckdb", "pandas", "upath", "fsspec", "litellm", "openai")
    probe = f"import sys, formulacode_assets.definitions; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    assert proc.stdout.strip() == ""
