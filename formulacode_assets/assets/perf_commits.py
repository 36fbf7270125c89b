from dagster import AssetExecutionContext, MetadataValue

from formulacode_assets.assets._monthly import (
    MonthlyInput,
    monthly_asset,
    monthly_output,
    months_of_run,
    tables_by_month,
)
from formulacode_assets.core.classification import heuristic, judging, prefilter, programs
from formulacode_assets.core.contracts import PERF_COMMITS
from formulacode_assets.resources.llm import LLMResource


# code_version hashes the modules holding the prompts, the heuristic and the filter: editing a prompt
# marks every month stale.
@monthly_asset(
    PERF_COMMITS,
    versioned_by=(prefilter, programs, heuristic, judging),
    group_name="classification",
    kinds={"dspy"},
    pool="llm",
)
def perf_commits(context: AssetExecutionContext, llm: LLMResource, patches: MonthlyInput):
    """Every change of the month with its verdict: performance-improving or not, category, difficulty, problem.

    A keyword/size pre-filter picks what is worth judging; the DSPy judge (or, with no LM configured,
    the keyword heuristic) labels the rest. Completions are cached, so re-running a month makes no LLM
    calls; an LM failure on one change becomes a failed row, never a failed month.
    """
    judge = llm.make_judge()
    if judge.classifier == judging.HEURISTIC:
        context.log.warning(
            "No LM configured (DSPY_MODEL_NAME unset): judging with the keyword heuristic instead of DSPy; "
            "every row records classifier='heuristic'."
        )
    else:
        context.log.info(
            f"Judging with {judge.model} (prompt version {judge.prompt_version}, {llm.concurrency} workers)"
        )
    changes_by_month = tables_by_month(context, patches)
    tables, summaries = {}, {}
    try:
        for month, _start, _end in months_of_run(context):
            judged = judging.judge_changes(
                changes_by_month[month].to_pylist(),
                judge,
                llm.judge_settings(),
                log=lambda message, month=month: context.log.info(f"{month}: {message}"),
            )
            tables[month], summaries[month] = PERF_COMMITS.to_table(judged.rows), judged.summary
    finally:
        judge.close()
    metadata = {
        "classifier": MetadataValue.text(judge.classifier),
        "prompt_version": MetadataValue.text(judge.prompt_version),
    }
    by_month = {
        month: {
            "is_performance": MetadataValue.int(s["is_performance"]),
            "prefilter_pass": MetadataValue.int(s["prefilter_pass"]),
            "judge_failed": MetadataValue.int(s.get("judge_failed", 0)),
            "llm_calls": MetadataValue.int(s.get("llm_calls", 0)),
            "cache_hits": MetadataValue.int(s.get("cache_hits", 0)),
            "judge_summary": MetadataValue.json(s),
        }
        for month, s in summaries.items()
    }
    yield from monthly_output(context, PERF_COMMITS, tables, metadata, by_month)
