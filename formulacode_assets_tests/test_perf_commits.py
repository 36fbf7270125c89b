"""perf_commits against a real OpenAI-compatible server on 127.0.0.1, and on the sample store.

Core tests drive :func:`judge_changes` directly (fast); stage tests materialize the asset on the
embedded sample store, with the heuristic and with the loopback LM.
"""

import hashlib
import logging
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetSpec, DagsterInstance, materialize

from formulacode_assets.assets._monthly import code_version_of
from formulacode_assets.assets.merge_commits import merge_commits
from formulacode_assets.assets.patches import patches
from formulacode_assets.assets.perf_commits import perf_commits
from formulacode_assets.assets.repos_discovered import repos_discovered
from formulacode_assets.assets.repos_valid import repos_valid
from formulacode_assets.core.classification import heuristic as core_heuristic
from formulacode_assets.core.classification import judging as core_perf_commits
from formulacode_assets.core.classification import prefilter as core_prefilter
from formulacode_assets.core.classification import programs as core_judge
from formulacode_assets.core.classification.judging import (
    JudgeSettings,
    LLMEndpoint,
    judge_changes,
    make_judge,
)
from formulacode_assets.core.contracts import PATCHES, PERF_COMMITS
from formulacode_assets.partitions import monthly_partitions
from formulacode_assets.resources import GitSourceResource
from formulacode_assets.resources.github import GitHubResource
from formulacode_assets.resources.llm import LLMResource
from formulacode_assets.sample import SAMPLE_CHANGES
from formulacode_assets.storage import ParquetIOManager
from formulacode_assets_tests.openai_server import (
    Delay,
    OpenAIServer,
    Reply,
    Status,
    dspy_input,
    dspy_reply,
    requested_fields,
)

KEY = "sk-fc-loopback-7f3a9c1e-DO-NOT-LEAK"
MONTH = "2024-02-01"
NOT_PERFORMANCE = re.compile(r"Tidy imports|Handle empty input|Refactor", re.IGNORECASE)


def loopback_model(body: dict) -> str:
    """A scripted 'model': answers whichever program asks, in DSPy's ChatAdapter format."""
    fields = requested_fields(body)
    title = dspy_input(body, "title")
    if "is_performance" in fields:
        perf = not NOT_PERFORMANCE.search(title)
        return dspy_reply(reasoning=f"loopback: {title!r} {'speeds up' if perf else 'does not speed up'} code",
                          is_performance=perf)  # fmt: skip
    if "category" in fields:
        return dspy_reply(reasoning="loopback: fewer operations", category="better algorithm", difficulty="medium")
    if "problem_statement" in fields:
        description = dspy_input(body, "description")
        return dspy_reply(problem_statement=description.split("\n\n")[0] if description else title)
    return "not a DSPy request"


@pytest.fixture
def server():
    with OpenAIServer(loopback_model) as running:
        yield running


def change(title: str, body: str = "", **overrides) -> dict:
    """A ``patches`` row (every PATCHES column) for a small change to library code."""
    sha = hashlib.sha1(title.encode()).hexdigest()
    row = {name: None for name in PATCHES.names} | {
        "month": MONTH,
        "repo_name": "sample-org/lib",
        "merge_commit_sha": sha,
        "base_sha": sha[::-1],
        "title": title,
        "body": body,
        "patch": f"diff --git a/lib/core.py b/lib/core.py\n+# {title}\n",
        "patch_chars": 60,
        "patch_truncated": False,
        "files_changed": ["lib/core.py"],
        "n_files": 1,
        "additions": 8,
        "deletions": 3,
        "file_change_summary": "| `lib/core.py` | modified | core | 8 | 3 |",
        "bench_only": False,
        "docs_only": False,
        "touches_asv_conf": False,
        "touches_core": True,
        "status": "ok",
    }
    return row | overrides


def llm_judge(server: OpenAIServer, tmp_path: Path, timeout: float = 5.0, **settings):
    endpoint = LLMEndpoint("loopback-model", api_base=server.base_url, api_key=KEY, timeout_seconds=timeout)
    defaults = {"concurrency": 4, "backoff_seconds": 0.01, "max_retries": 2}
    return make_judge(endpoint, JudgeSettings(**(defaults | settings)), str(tmp_path / "cache"))


def run(judge, rows, **settings):
    defaults = {"concurrency": 4, "backoff_seconds": 0.01, "max_retries": 2}
    try:
        return judge_changes(rows, judge, JudgeSettings(**(defaults | settings)))
    finally:
        judge.close()


def by_title(rows):
    return {r["title"]: r for r in rows}


# --- core: labels, failures, retries, cache -----------------------------------------------------


def test_labels_land_in_their_columns(server, tmp_path):
    rows = [
        change("PERF: speed up rank", "rank sorted every group twice; 12 s on 10M rows.\n\nNow sorts once."),
        change("Tidy imports"),
        change("Fix typo in README", docs_only=True, touches_core=False),
        change("Speed up join", status="failed", reason="unreadable objects: missing blob"),
    ]
    judged = run(llm_judge(server, tmp_path), rows)
    table = PERF_COMMITS.to_table(judged.rows)
    assert not PERF_COMMITS.violations(table)
    got = by_title(table.to_pylist())
    assert [r["title"] for r in judged.rows] == [r["title"] for r in rows]  # order kept

    perf = got["PERF: speed up rank"]
    assert perf["prefilter_pass"] and perf["prefilter_reason"] == "performance signal (speed: 'speed up')"
    assert perf["is_performance"] is True and perf["status"] == "ok" and perf["reason"] is None
    assert (perf["category"], perf["difficulty"]) == ("better algorithm", "medium")
    assert "speeds up" in perf["reasoning"] and "classification: loopback: fewer operations" in perf["reasoning"]
    assert perf["problem_statement"] == "rank sorted every group twice; 12 s on 10M rows."
    assert perf["problem_statement_source"] == "extracted"
    assert (perf["classifier"], perf["model"]) == ("loopback-model", "openai/loopback-model")
    assert perf["prompt_version"] == core_judge.prompt_version()
    assert perf["patch"] == rows[0]["patch"]  # carried for contexts/tasks
    assert perf["heuristic_evidence"] is None and perf["judge_patch_truncated"] is False  # LM rows: no evidence

    tidy = got["Tidy imports"]
    assert tidy["prefilter_pass"] and tidy["is_performance"] is False and tidy["status"] == "ok"
    assert tidy["category"] is None and tidy["problem_statement"] is None and "does not speed up" in tidy["reasoning"]

    docs = got["Fix typo in README"]
    assert (docs["prefilter_pass"], docs["is_performance"], docs["status"]) == (False, False, "skipped")
    assert docs["reason"] == docs["prefilter_reason"] == "docs-only change"
    assert docs["heuristic_evidence"] is None and docs["judge_patch_truncated"] is None  # not judged

    broken = got["Speed up join"]
    assert (broken["status"], broken["reason"]) == ("failed", "unreadable objects: missing blob")
    assert broken["is_performance"] is None and not broken["prefilter_pass"]
    assert all(r["classifier"] == "loopback-model" for r in got.values())

    assert server.request_count == 4  # judge + classify + problem for the speed-up, judge for "Tidy imports"
    assert all(r.authorization == f"Bearer {KEY}" for r in server.requests)
    assert judged.summary["llm_calls"] == 4 and judged.summary["is_performance"] == 1


def test_garbage_answer_is_a_failed_row_and_the_month_goes_on(server, tmp_path):
    server.responder = lambda body: "I think so!" if "garbage" in dspy_input(body, "title") else loopback_model(body)
    judged = run(llm_judge(server, tmp_path), [change("PERF: garbage answer"), change("PERF: faster parse")])
    got = by_title(judged.rows)
    bad = got["PERF: garbage answer"]
    assert bad["status"] == "failed" and bad["is_performance"] is None
    assert bad["reason"] == "judge: unparsable LM answer: 'I think so!'"
    assert got["PERF: faster parse"]["status"] == "ok" and got["PERF: faster parse"]["is_performance"] is True
    # Not retried, and no second (JSON-adapter) request: one call for the bad row, three for the good one.
    assert server.request_count == 4 and judged.summary["judge_failed"] == 1


@pytest.mark.parametrize(
    "fault",
    [Status(500), Status(503), Status(429, "rate limit reached"), Delay(8.0)],
    ids=["500", "503", "429", "slow"],
)
def test_transient_faults_are_retried_with_backoff(server, tmp_path, fault):
    server.script(fault)
    # A 2 s timeout: far above a loopback answer even on a loaded machine, far below the slow fault.
    judged = run(llm_judge(server, tmp_path, timeout=2.0), [change("PERF: faster parse")])
    (row,) = judged.rows
    assert row["status"] == "ok" and row["is_performance"] is True and row["category"] == "better algorithm"
    assert server.request_count == 4  # the failed attempt + judge retry + classify + problem
    assert judged.summary["retries"] == 1 and judged.summary["llm_calls"] == 4


def test_persistent_server_errors_fail_the_row_after_bounded_retries(server, tmp_path):
    server.responder = lambda body: Status(500, "upstream model crashed")
    judged = run(llm_judge(server, tmp_path), [change("PERF: faster parse")])
    (row,) = judged.rows
    assert row["status"] == "failed" and row["is_performance"] is None
    assert row["reason"].startswith("judge: LMServerError (HTTP 500):") and row["reason"].endswith("after 3 attempts")
    assert "upstream model crashed" in row["reason"]
    assert server.request_count == 3  # max_retries=2


def test_second_run_makes_no_requests(server, tmp_path):
    rows = [change("PERF: speed up rank", "rank was slow."), change("Tidy imports"), change("PERF: faster join")]
    first = run(llm_judge(server, tmp_path), rows)
    calls = server.request_count
    assert calls == 7 and first.summary["cache_hits"] == 0

    second = run(llm_judge(server, tmp_path), rows)
    assert server.request_count == calls
    assert second.summary["llm_calls"] == 0 and second.summary["cache_hits"] == 7
    assert second.rows == first.rows


def test_a_local_endpoint_without_a_key_gets_a_placeholder(server, tmp_path):
    endpoint = LLMEndpoint("local-model", api_base=server.base_url)
    judged = run(make_judge(endpoint, JudgeSettings(), str(tmp_path / "cache")), [change("Tidy imports")])
    assert judged.rows[0]["status"] == "ok"
    assert [r.authorization for r in server.requests] == ["Bearer EMPTY"]


def test_failures_are_not_cached(server, tmp_path):
    server.script(Reply("garbage"))
    first = run(llm_judge(server, tmp_path), [change("PERF: faster parse")])
    assert first.rows[0]["status"] == "failed"
    second = run(llm_judge(server, tmp_path), [change("PERF: faster parse")])
    assert second.rows[0]["status"] == "ok"


def test_drifting_problem_statement_falls_back_to_the_pr_text(server, tmp_path):
    def invents(body):
        if "problem_statement" in requested_fields(body):
            return dspy_reply(problem_statement="Quantum GPU acceleration of blockchain ledgers")
        return loopback_model(body)

    server.responder = invents
    judged = run(llm_judge(server, tmp_path), [change("PERF: speed up rank", "rank sorted every group twice.")])
    (row,) = judged.rows
    assert row["problem_statement"] == "PERF: speed up rank\n\nrank sorted every group twice."
    assert row["problem_statement_source"] == "pr_text"


def test_changes_are_judged_concurrently(tmp_path):
    rows = [change(f"PERF: faster path {i}") for i in range(12)]
    with OpenAIServer(loopback_model, latency=0.2) as slow:
        judged = run(llm_judge(slow, tmp_path, concurrency=6), rows, concurrency=6)
    assert all(r["status"] == "ok" for r in judged.rows)
    # Seen by the server, not by a stopwatch (a busy machine stretches wall time): requests overlap,
    # and never more than the six workers.
    assert 2 <= slow.max_in_flight <= 6, slow.max_in_flight


def test_long_patches_are_truncated_to_the_token_budget(server, tmp_path):
    huge = change("PERF: faster parse", patch="+x = 1\n" * 2_000, patch_chars=14_000)
    run(llm_judge(server, tmp_path, max_patch_tokens=500), [huge], max_patch_tokens=500)
    sent = dspy_input(server.requests[0].body, "patch")
    assert len(sent) < 2_100 and "[... truncated: " in sent


# --- stage: the sample store ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> Path:
    """The sample store's February patches, materialized once for this module."""
    base = tmp_path_factory.mktemp("upstream")
    result = materialize(
        [repos_discovered, repos_valid, merge_commits, patches],
        partition_key=MONTH,
        resources={
            "io_manager": ParquetIOManager(base_path=str(base / "data"), catalog_path=str(base / "catalog.duckdb")),
            "git_source": GitSourceResource(cache_dir=str(base / "cache")),
            "github_api": GitHubResource(cache_dir=str(base / "cache")),
        },
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    return base


def materialize_perf_commits(tmp_path: Path, upstream: Path, llm: LLMResource, instance=None):
    if not (tmp_path / "data").exists():
        shutil.copytree(upstream / "data", tmp_path / "data")
    instance = instance or DagsterInstance.ephemeral()
    result = materialize(
        [AssetSpec("patches", partitions_def=monthly_partitions), perf_commits],  # patches: read from parquet
        partition_key=MONTH,
        resources={
            "io_manager": ParquetIOManager(
                base_path=str(tmp_path / "data"), catalog_path=str(tmp_path / "catalog.duckdb")
            ),
            "llm": llm,
        },
        instance=instance,
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    return result, event.materialization.metadata, pq.read_table(tmp_path / "data" / "perf_commits" / "2024-02.parquet")


def sample_rows_by_kind(table) -> dict[str, list[dict]]:
    rows = {(r["repo_name"], r["merged_at"].strftime("%Y-%m-%dT%H:%M:%SZ")): r for r in table.to_pylist()}
    kinds: dict[str, list[dict]] = {}
    for c in SAMPLE_CHANGES:
        if c.month == "2024-02" and c.repo_name != "sample-org/notes":
            kinds.setdefault(c.kind, []).append(rows[(c.repo_name, c.committed_at)])
    return kinds


def test_sample_speedups_are_performance_in_heuristic_mode(tmp_path, upstream):
    instance = DagsterInstance.ephemeral()
    result, metadata, table = materialize_perf_commits(
        tmp_path, upstream, LLMResource(cache_dir=str(tmp_path / "cache")), instance
    )
    assert table.schema.equals(PERF_COMMITS.schema, check_metadata=False) and table.num_rows == 10
    kinds = sample_rows_by_kind(table)
    assert len(kinds["speedup"]) == 3
    for row in kinds["speedup"]:
        assert row["is_performance"] is True and row["status"] == "ok", row["title"]
        assert row["category"] in core_judge.CATEGORIES and row["difficulty"] in core_judge.DIFFICULTIES
        assert row["problem_statement"].startswith(row["title"])
        assert row["heuristic_evidence"].startswith("+") and row["judge_patch_truncated"] is False
    for row in kinds["fix"] + kinds["maintenance"]:
        assert row["heuristic_evidence"].startswith("-"), row["title"]  # what was set aside, and why
    for kind in ("docs_only", "bench_only", "empty"):
        for row in kinds[kind]:
            assert row["is_performance"] is False and row["status"] == "skipped" and not row["prefilter_pass"]
    assert {r["prefilter_reason"] for r in kinds["bench_only"]} == {"benchmark-only change"}
    assert all(r["is_performance"] is False for r in kinds["fix"] + kinds["maintenance"])
    assert set(table.column("classifier").to_pylist()) == {"heuristic"}
    assert set(table.column("prompt_version").to_pylist()) == {core_heuristic.HEURISTIC_VERSION}

    assert metadata["classifier"].value == "heuristic" and metadata["is_performance"].value == 3
    assert metadata["llm_calls"].value == 0 and metadata["status_counts"].value == {"ok": 5, "skipped": 5}
    messages = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any("No LM configured" in m and "heuristic" in m for m in messages)
    assert all(c.passed for c in result.get_asset_check_evaluations())


def test_sample_month_with_the_loopback_llm_then_rematerialized_without_calls(tmp_path, upstream, server):
    llm = LLMResource(
        model_name="loopback-model", api_base=server.base_url, api_key=KEY, cache_dir=str(tmp_path / "cache")
    )
    _, metadata, table = materialize_perf_commits(tmp_path, upstream, llm)
    kinds = sample_rows_by_kind(table)
    assert all(r["is_performance"] and r["category"] == "better algorithm" for r in kinds["speedup"])
    assert all(r["problem_statement_source"] == "extracted" for r in kinds["speedup"])
    assert all(r["is_performance"] is False and r["status"] == "ok" for r in kinds["fix"] + kinds["maintenance"])
    assert all(r["status"] == "skipped" for r in kinds["docs_only"] + kinds["bench_only"] + kinds["empty"])
    assert set(table.column("classifier").to_pylist()) == {"loopback-model"}
    calls = server.request_count
    assert calls == 3 * 3 + 2 and metadata["llm_calls"].value == calls and metadata["cache_hits"].value == 0

    _, again, table_again = materialize_perf_commits(tmp_path, upstream, llm)
    assert server.request_count == calls  # counted on the server: zero requests
    assert again["llm_calls"].value == 0 and again["cache_hits"].value == calls
    assert table_again.equals(table)


def test_api_key_never_appears_in_logs_parquet_cache_or_metadata(tmp_path, upstream, server, caplog, capfd):
    # Exercise the error paths too: one unparsable answer, one persistent 500.
    def faulty(body):
        title = dspy_input(body, "title")
        if "Tidy imports" in title:
            return "unparsable"
        if "Handle empty input" in title:
            return Status(500, "boom")
        return loopback_model(body)

    server.responder = faulty
    caplog.set_level(logging.DEBUG)
    instance = DagsterInstance.ephemeral()
    llm = LLMResource(
        model_name="loopback-model",
        api_base=server.base_url,
        api_key=KEY,
        cache_dir=str(tmp_path / "cache"),
        backoff_seconds=0.01,
        max_retries=1,
    )
    result, metadata, table = materialize_perf_commits(tmp_path, upstream, llm, instance)
    statuses = {r["title"]: r["status"] for r in table.to_pylist()}
    assert statuses["Tidy imports"] == statuses["Handle empty input"] == "failed"
    assert any(r.authorization == f"Bearer {KEY}" for r in server.requests)  # the key was used...

    captured = capfd.readouterr()
    texts = [captured.out, captured.err, caplog.text, repr(llm), str(dict(metadata))]
    texts += [str(e) for e in instance.all_logs(result.run_id)]
    assert not [t for t in texts if KEY in t]  # ...and shown nowhere
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    files += [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite3" for p in files)
    assert not [p for p in files if KEY.encode() in p.read_bytes()]


def test_asset_declares_pool_group_kinds_and_a_prompt_derived_code_version():
    (key,) = perf_commits.keys
    assert perf_commits.node_def.pool == "llm"
    assert perf_commits.group_names_by_key[key] == "classification"
    assert perf_commits.specs_by_key[key].kinds == {"dspy", "parquet"}
    assert perf_commits.code_versions_by_key[key] == code_version_of(
        core_prefilter, core_judge, core_heuristic, core_perf_commits
    )
