"""Judge programs (with DSPy's DummyLM), the heuristic, the near-verbatim check and the completion cache."""

import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest

from formulacode_assets.core.classification import heuristic
from formulacode_assets.core.classification import programs as judge
from formulacode_assets.core.classification.completion_cache import CompletionCache, completion_key
from formulacode_assets.core.classification.judging import HeuristicJudge, JudgeSettings, LLMEndpoint, judge_changes

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

SIEVE_PATCH = """\
diff --git a/fastmath/primes.py b/fastmath/primes.py
--- a/fastmath/primes.py
+++ b/fastmath/primes.py
@@ -2,6 +2,8 @@
 def primes_below(n):
-    primes = []
+    \"\"\"Uses a sieve of Eratosthenes: O(n log log n) instead of trial division.\"\"\"
+    sieve = bytearray([1]) * n
"""

COUNTER_PATCH = """\
diff --git a/textkit/words.py b/textkit/words.py
--- a/textkit/words.py
+++ b/textkit/words.py
@@ -9,5 +11,8 @@
-    counts = []  # [word, count] pairs, scanned linearly for every word
+    \"\"\"Linear time: uses collections.Counter.\"\"\"
+    return dict(Counter(tokenize(text)))
"""


def change(title, body="", patch="", **overrides):
    row = {
        "repo_name": "sample-org/lib",
        "title": title,
        "body": body,
        "patch": patch,
        "file_change_summary": "| file | change |",
        "n_files": 1,
        "additions": 12,
        "deletions": 11,
        "touches_core": True,
    }
    return row | overrides


# --- heuristic ---------------------------------------------------------------------------------


def test_heuristic_calls_a_titled_speedup_performance_with_category_and_the_pr_text():
    verdict = heuristic.heuristic_verdict(
        change("Speed up primes_below with a sieve of Eratosthenes", "primes_below(20000) is 100x faster.", SIEVE_PATCH)
    )
    assert verdict.is_performance
    assert verdict.category == "better algorithm" and verdict.difficulty == "easy"
    assert verdict.problem_statement.startswith("Speed up primes_below") and "100x faster" in verdict.problem_statement
    assert verdict.problem_statement_source == "pr_text"
    assert verdict.reasoning.startswith("heuristic: performance signal in the PR text (speed: 'Speed up')")


def test_heuristic_reads_complexity_remarks_in_added_lines_when_the_title_says_nothing():
    verdict = heuristic.heuristic_verdict(change("Use collections.Counter in word_counts", patch=COUNTER_PATCH))
    assert verdict.is_performance and "complexity ('Linear time')" in verdict.reasoning
    assert verdict.category == "better data structure or layout"


@pytest.mark.parametrize(
    ("row", "why"),
    [
        (change("Handle empty input", patch="+    return [w for w in words if w]\n"), "no performance signal"),
        (change("Tidy imports", patch="+from gridlib.grid import make_grid\n"), "no performance signal"),
        (change("Bump version to 0.2.0", patch=COUNTER_PATCH), "maintenance title"),
        (change("PERF: faster CI", touches_core=False), "touches no library code"),
    ],
)
def test_heuristic_rejects_changes_without_evidence(row, why):
    verdict = heuristic.heuristic_verdict(row)
    assert not verdict.is_performance and why in verdict.reasoning
    assert verdict.category is None and verdict.problem_statement is None


@pytest.mark.parametrize(
    ("additions", "n_files", "difficulty"),
    [(10, 1, "easy"), (29, 2, "easy"), (30, 2, "medium"), (200, 10, "medium"), (200, 11, "hard"), (400, 3, "hard")],
)
def test_heuristic_difficulty_follows_size(additions, n_files, difficulty):
    assert heuristic.heuristic_difficulty({"additions": additions, "deletions": 0, "n_files": n_files}) == difficulty


def test_heuristic_version_is_stable_and_marked():
    assert (
        heuristic.HEURISTIC_VERSION.startswith("heuristic-")
        and heuristic._heuristic_version() == heuristic.HEURISTIC_VERSION
    )


# --- inputs and the near-verbatim check --------------------------------------------------------


def test_truncation_uses_four_characters_per_token_and_says_so():
    assert judge.truncate_to_tokens("abc", 10) == "abc"
    cut = judge.truncate_to_tokens("x" * 1_000, 100)
    assert cut.startswith("x" * 400) and cut.endswith("[... truncated: 600 more characters]")
    assert judge.truncate_to_tokens(None, 5) == ""


def test_program_inputs_respect_the_budgets():
    row = change("PERF: faster", "b" * 10_000, "p" * 100_000)
    inputs = judge.program_inputs(row, max_patch_tokens=1_000, max_text_tokens=100)
    assert set(inputs) == {"judge", "classify", "problem"}
    assert inputs["judge"]["patch"].startswith("p" * 4_000) and len(inputs["judge"]["patch"]) < 4_100
    assert len(inputs["judge"]["description"]) < 500
    assert set(inputs["problem"]) == {"title", "description"}


def test_overlap_is_the_share_of_extracted_words_found_in_the_source():
    source = "groupby.rank was slow: 12 s on 10M rows because every group was sorted twice."
    assert judge.text_overlap("groupby.rank was slow: 12 s on 10M rows", source) == 1.0
    assert judge.text_overlap("The ranking routine suffered from excessive latency", source) < 0.3
    assert judge.text_overlap("", source) == 0.0


def test_problem_statement_falls_back_to_the_pr_text_when_the_extraction_drifts():
    row = change("PERF: faster rank", "groupby.rank was slow: 12 s on 10M rows because every group was sorted twice.")
    kept = judge.problem_statement_or_fallback("groupby.rank was slow: 12 s on 10M rows", row, 0.8)
    assert kept == ("groupby.rank was slow: 12 s on 10M rows", "extracted")
    drifted = judge.problem_statement_or_fallback("Ranking suffered from excessive latency in aggregations", row, 0.8)
    assert drifted == (judge.pr_text(row), "pr_text")
    assert drifted[0].startswith("PERF: faster rank\n\ngroupby.rank was slow")
    assert judge.problem_statement_or_fallback(None, row, 0.8)[1] == "pr_text"


# --- DSPy programs (DummyLM) -------------------------------------------------------------------


def _inputs():
    return judge.program_inputs(change("PERF: faster rank", "rank was slow"), max_patch_tokens=100, max_text_tokens=100)


def test_judge_program_parses_a_typed_verdict():
    import dspy

    lm = dspy.utils.DummyLM([{"reasoning": "sorts once instead of per group", "is_performance": "True"}])
    programs = judge.llm_programs()
    outputs = judge.run_program(programs["judge"], _inputs()["judge"], lm, judge.chat_adapter())
    assert outputs == {"reasoning": "sorts once instead of per group", "is_performance": True}


def test_classify_program_accepts_only_the_fixed_categories():
    import dspy

    programs = judge.llm_programs()
    good = dspy.utils.DummyLM([{"reasoning": "r", "category": "cache and reuse", "difficulty": "hard"}])
    outputs = judge.run_program(programs["classify"], _inputs()["classify"], good, judge.chat_adapter())
    assert outputs == {"reasoning": "r", "category": "cache and reuse", "difficulty": "hard"}

    bad = dspy.utils.DummyLM([{"reasoning": "r", "category": "made-up category", "difficulty": "hard"}])
    with pytest.raises(Exception) as caught:
        judge.run_program(programs["classify"], _inputs()["classify"], bad, judge.chat_adapter())
    assert judge.is_llm_failure(caught.value) and not judge.is_transient(caught.value)
    assert judge.describe_failure(caught.value).startswith("unparsable LM answer")


def test_program_versions_hash_the_prompts(monkeypatch):
    before = {name: p.version for name, p in judge.llm_programs().items()}
    overall = judge.prompt_version()
    assert len(set(before.values())) == 3 and all(len(v) == 12 for v in before.values())
    assert judge.prompt_version() == overall  # deterministic
    monkeypatch.setattr(judge, "CLASSIFY_INSTRUCTIONS", judge.CLASSIFY_INSTRUCTIONS + " Be brief.")
    judge.llm_programs.cache_clear()
    try:
        after = {name: p.version for name, p in judge.llm_programs().items()}
        assert after["classify"] != before["classify"]
        assert after["judge"] == before["judge"] and after["problem"] == before["problem"]
        assert judge.prompt_version() != overall
    finally:
        monkeypatch.undo()
        judge.llm_programs.cache_clear()
    assert judge.prompt_version() == overall


# --- completion cache --------------------------------------------------------------------------


def test_cache_key_depends_on_model_program_version_and_inputs():
    base = completion_key("openai/m@t=0.0", "judge", "v1", {"title": "a"})
    assert base == completion_key("openai/m@t=0.0", "judge", "v1", {"title": "a"})
    others = {
        completion_key("openai/n@t=0.0", "judge", "v1", {"title": "a"}),
        completion_key("openai/m@t=0.0", "classify", "v1", {"title": "a"}),
        completion_key("openai/m@t=0.0", "judge", "v2", {"title": "a"}),
        completion_key("openai/m@t=0.0", "judge", "v1", {"title": "b"}),
    }
    assert base not in others and len(others) == 4


def test_cache_persists_across_instances_and_is_thread_safe(tmp_path):
    cache = CompletionCache.in_cache_dir(tmp_path)
    assert cache.path == tmp_path / "llm" / "completions.sqlite3"

    def write(i):
        key = completion_key("m", "judge", "v", {"i": i})
        cache.put(
            key, {"is_performance": i % 2 == 0, "reasoning": f"r{i}"}, model="m", program="judge", program_version="v"
        )
        return cache.get(key)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(write, range(200)))
    assert results[3] == {"is_performance": False, "reasoning": "r3"}
    cache.close()

    reopened = CompletionCache.in_cache_dir(tmp_path)
    assert len(reopened) == 200
    assert reopened.get(completion_key("m", "judge", "v", {"i": 4})) == {"is_performance": True, "reasoning": "r4"}
    assert reopened.get(completion_key("m", "judge", "v", {"i": 999})) is None
    reopened.close()
    with sqlite3.connect(tmp_path / "llm" / "completions.sqlite3") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_endpoint_hides_its_key_and_routes_openai_compatible_names():
    endpoint = LLMEndpoint("meta-llama/Llama-3-8B", api_base="http://127.0.0.1:1/v1", api_key="sk-hidden-123")
    assert "sk-hidden-123" not in repr(endpoint)
    assert endpoint.routed_model == "openai/meta-llama/Llama-3-8B"
    assert LLMEndpoint("openai/gpt-4o-mini", api_base="http://x/v1").routed_model == "openai/gpt-4o-mini"
    assert LLMEndpoint("anthropic/claude-x").routed_model == "anthropic/claude-x"


# --- long patches: judged on a truncated patch, never skipped ------------------------------------


def _file_diff(path: str, lines: list[str]) -> str:
    body = "".join(f"+{line}\n" for line in lines)
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n{body}"


def test_a_60000_character_performance_change_is_judged_on_a_truncated_patch():
    # Mostly tests and data; the library change (whose docstring says what it does) comes last.
    tests = _file_diff(
        "fastmath/tests/test_primes.py",
        [f"def test_primes_below_{i}():\n+    assert primes_below({i}) == expected[{i}]" for i in range(700)],
    )
    data = _file_diff("fastmath/tests/data/primes.csv", [f"{i},{i * 7 % 13}" for i in range(3_000)])
    library = SIEVE_PATCH
    patch = tests + data + library
    assert len(patch) >= 60_000
    row = change("Use a sieve in primes_below", patch=patch, n_files=3, additions=4_400, deletions=1) | {
        "status": "ok",
        "patch_chars": len(patch),
        "files_changed": ["fastmath/tests/test_primes.py", "fastmath/tests/data/primes.csv", "fastmath/primes.py"],
        "docs_only": False,
        "bench_only": False,
    }
    settings = JudgeSettings(max_patch_tokens=6_000)  # the default budget: 24,000 characters
    (judged,) = judge_changes([row], HeuristicJudge(), settings).rows
    assert judged["prefilter_pass"] and judged["status"] == "ok"
    assert judged["judge_patch_truncated"] is True
    assert judged["is_performance"] is True and judged["category"] == "better algorithm"
    # The title says nothing: the library hunk decided, so the judge read it although it came last.
    assert "+remark on complexity 'O(n log log n)' (diff)" in judged["heuristic_evidence"]
    assert judged["patch"] == patch  # the row keeps the whole patch


def test_a_patch_within_the_budget_is_read_whole_and_says_so():
    row = change("Speed up primes_below", patch=SIEVE_PATCH) | {"status": "ok", "docs_only": False}
    (judged,) = judge_changes([row], HeuristicJudge()).rows
    assert judged["judge_patch_truncated"] is False and judged["heuristic_evidence"].startswith("+speed")
