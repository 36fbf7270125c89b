from dagster import AssetExecutionContext, MetadataValue

from formulacode_assets.assets._monthly import (
    BUILD_BACKFILL,
    MonthlyInput,
    monthly_asset,
    monthly_output,
    months_of_run,
    tables_by_month,
)
from formulacode_assets.core.contracts import CONTEXTS
from formulacode_assets.core.environments import (
    build_scripts,
    docker_validator,
    install_analysis,
    local_validator,
    synthesis,
    validation,
)
from formulacode_assets.core.environments.synthesis import repo_problems, targets_from_perf_commits
from formulacode_assets.resources.contexts import ContextSynthesisResource
from formulacode_assets.resources.docker_engine import DockerEngineResource
from formulacode_assets.resources.git_source import GitSourceResource
from formulacode_assets.resources.llm import LLMResource


def validation_metadata(rows: list[dict]) -> dict:
    """Numbers the UI plots across months: contexts validated, median validation time, selection rules."""
    fresh = [r for r in rows if r["status"] == "ok" and not r.get("reused")]
    times = sorted(r["duration_s"] for r in fresh if r.get("duration_s") is not None)
    median = (times[len(times) // 2] + times[(len(times) - 1) // 2]) / 2 if times else 0.0
    return {
        "contexts_validated": MetadataValue.int(sum(r["status"] == "ok" for r in rows)),
        "median_validation_s": MetadataValue.float(float(median)),
        "chosen_by_coverage": MetadataValue.int(sum(r.get("selection_rule") == "coverage" for r in rows)),
        "pins_floored": MetadataValue.int(sum(len(r.get("pins_floored") or []) for r in rows)),
        "benchmark_modules_excluded": MetadataValue.int(sum(len(r.get("benchmarks_excluded") or []) for r in rows)),
    }


# code_version hashes the analysis, the template and agent prompt, and the validators: changing how
# a context is built or judged marks every month stale.
@monthly_asset(
    CONTEXTS,
    versioned_by=(synthesis, install_analysis, build_scripts, validation, local_validator, docker_validator),
    group_name="environments",
    kinds={"docker"},
    pool="docker_build",
    backfill_policy=BUILD_BACKFILL,
)
def contexts(
    context: AssetExecutionContext,
    git_source: GitSourceResource,
    context_synthesis: ContextSynthesisResource,
    docker_engine: DockerEngineResource,
    llm: LLMResource,
    perf_commits: MonthlyInput,
    repos_valid: MonthlyInput,
):
    """A validated build environment (``build_env.sh``) per (repo, base sha) of the month's performance changes.

    Candidates — the registry's nearest earlier script, a template from the install analysis, then
    DSPy revisions — are validated for real (asv discovery + a quick run, twice) in Docker, or in
    throw-away local environments where explicitly allowed. A (repo, sha) already in the registry
    is reused (``reused=True``) without re-validation. A failing repository is a failed row with
    the stage and reason, never a failed month.
    """
    validator, why = context_synthesis.choose_validator(docker_engine, log=context.log.info)
    (context.log.info if validator else context.log.warning)(f"contexts: {why}")
    agent = context_synthesis.agent(llm)
    context.log.info(f"contexts: agent {'on ' + agent.model if agent else 'off (no LM configured)'}")
    synthesizer = context_synthesis.synthesizer(
        validator, why, mirror_path=git_source.mirror_path, agent=agent, log=context.log.info
    )
    perf_by_month = tables_by_month(context, perf_commits)
    repos_by_month = tables_by_month(context, repos_valid)
    tables = {}
    try:
        for month, _start, _end in months_of_run(context):
            targets = targets_from_perf_commits(perf_by_month[month].to_pylist())
            problems = repo_problems(repos_by_month[month].to_pylist(), {t.repo_name for t in targets})
            context.log.info(f"{month}: {len(targets)} (repo, base sha) contexts to provide")
            tables[month] = CONTEXTS.to_table(synthesizer.rows_for_month(month, targets, problems))
    finally:
        if validator is not None:
            validator.close()
    metadata = {
        "validator": MetadataValue.text(why),
        "agent_calls": MetadataValue.int(agent.calls if agent else 0),
        "registry_contexts": MetadataValue.int(len(synthesizer.registry.all())),
        **validation_metadata([r for t in tables.values() for r in t.to_pylist()]),
    }
    by_month = {}
    for month, table in tables.items():
        rows = table.select(["status", "reused"]).to_pylist()
        by_month[month] = {
            "contexts_validated": MetadataValue.int(sum(r["status"] == "ok" and not r["reused"] for r in rows)),
            "contexts_usable": MetadataValue.int(sum(r["status"] == "ok" for r in rows)),
            "reused": MetadataValue.int(sum(bool(r["reused"]) for r in rows)),
        }
    yield from monthly_output(context, CONTEXTS, tables, metadata, by_month)
