"""Benchmark of the perf_commits LLM stage: achieved vs ideal throughput against a loopback endpoint.

Run ``python benchmarks/bench_llm.py [--changes 500] [--latency 0.1] [--concurrency 8 32] [--json PATH]``
(see benchmarks/README_llm.md).

1. Starts the loopback OpenAI-compatible server (``formulacode_assets_tests/openai_server.py``) in a
   child process, answering every request after a fixed latency (default 100 ms), like a remote
   LM whose time per answer does not depend on load. A separate process keeps the server's work
   off the judged process's GIL, as with a real endpoint.
2. Judges ``--changes`` synthetic ``patches`` rows with the production path (``judge_changes`` with
   the ``LLMJudge``: DSPy ChatAdapter programs, the SQLite completion cache, bounded thread pool).
   About 40% are answered "performance-improving" and then make two more calls (classify, problem).
3. Reports LM calls per second against the ideal ``concurrency / latency`` and the efficiency
   (target: at least 80%), then re-runs the month on the warm cache (target: zero calls).

The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_EFFICIENCY = 0.80
MONTH = "2024-02-01"
_TOPICS = ("groupby", "merge", "read_csv", "rolling", "sort_values", "unique", "concat", "pivot", "resample")


def serve(latency: float) -> None:
    """Child-process mode: run the loopback server, print its URL, serve until stdin closes."""
    from formulacode_assets_tests.openai_server import OpenAIServer, dspy_input, dspy_reply, requested_fields

    def responder(body: dict) -> str:
        fields = requested_fields(body)
        title = dspy_input(body, "title")
        if "is_performance" in fields:
            return dspy_reply(reasoning="loopback verdict", is_performance=title.startswith("PERF"))
        if "category" in fields:
            return dspy_reply(reasoning="loopback classification", category="remove or reduce work", difficulty="easy")
        return dspy_reply(problem_statement=dspy_input(body, "description") or title)

    with OpenAIServer(responder, latency=latency) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()  # the parent closes stdin (or exits) to stop us


def synthetic_changes(n: int) -> list[dict]:
    """``patches`` rows that all pass the pre-filter; every 5th and 5th+2 is a performance change."""
    from formulacode_assets.core.contracts import PATCHES

    rows = []
    for i in range(n):
        topic = _TOPICS[i % len(_TOPICS)]
        perf = i % 5 in (0, 2)
        title = (
            f"PERF: faster {topic} on wide frames ({i})" if perf else f"ENH: support keyword arguments in {topic} ({i})"
        )
        body = f"{topic} spent most of its time re-validating inputs for every chunk; case {i}."
        patch = "".join(f"+    value_{j} = compute_{topic}(chunk, {j})\n" for j in range(40))
        sha = hashlib.sha1(title.encode()).hexdigest()
        rows.append(
            {name: None for name in PATCHES.names}
            | {
                "month": MONTH,
                "repo_name": "bench-org/frames",
                "merge_commit_sha": sha,
                "base_sha": sha[::-1],
                "title": title,
                "body": body,
                "patch": f"diff --git a/frames/{topic}.py b/frames/{topic}.py\n{patch}",
                "patch_chars": len(patch) + 60,
                "n_files": 1,
                "additions": 40,
                "deletions": 12,
                "file_change_summary": f"| `frames/{topic}.py` | modified | core | 40 | 12 |",
                "bench_only": False,
                "docs_only": False,
                "touches_core": True,
                "status": "ok",
            }
        )
    return rows


def judge_month(base_url: str, cache_dir: Path, rows: list[dict], concurrency: int, latency: float, model: str) -> dict:
    from formulacode_assets.core.classification.judging import JudgeSettings, LLMEndpoint, judge_changes, make_judge

    settings = JudgeSettings(concurrency=concurrency, max_retries=2, backoff_seconds=0.05, progress_every=10**9)
    endpoint = LLMEndpoint(model, api_base=base_url, api_key="sk-bench", timeout_seconds=30)
    judge = make_judge(endpoint, settings, str(cache_dir))
    started = time.perf_counter()
    try:
        judged = judge_changes(rows, judge, settings)
    finally:
        judge.close()
    seconds = time.perf_counter() - started
    failed = [r for r in judged.rows if r["status"] != "ok"]
    if failed:
        raise SystemExit(f"{len(failed)} rows failed, e.g. {failed[0]['reason']}")
    calls = judged.summary["llm_calls"]
    ideal_rate = concurrency / latency
    return {
        "concurrency": concurrency,
        "changes": len(rows),
        "performance": judged.summary["is_performance"],
        "llm_calls": calls,
        "cache_hits": judged.summary["cache_hits"],
        "seconds": round(seconds, 3),
        "calls_per_second": round(calls / seconds, 1) if calls else 0.0,
        "ideal_calls_per_second": round(ideal_rate, 1),
        "efficiency": round(calls / seconds / ideal_rate, 3) if calls else None,
        "ideal_seconds": round(calls * latency / concurrency, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.1, help="server latency per request, seconds")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8], help="worker counts to measure")
    parser.add_argument(
        "--model",
        default="bench-model",
        help="model name sent to the server; DSPy's price lookup costs more CPU for names it does not know",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if args.serve:
        serve(args.latency)
        return 0

    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--latency", str(args.latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = child.stdout.readline().strip()
        if not base_url.startswith("http://127.0.0.1:"):
            raise SystemExit(f"loopback server did not start: {base_url!r}")
        rows = synthetic_changes(args.changes)
        results = []
        ok = True
        for concurrency in args.concurrency:
            with tempfile.TemporaryDirectory(prefix="fc-bench-llm-") as cache_dir:
                cold = judge_month(base_url, Path(cache_dir), rows, concurrency, args.latency, args.model)
                warm = judge_month(base_url, Path(cache_dir), rows, concurrency, args.latency, args.model)
            met = cold["efficiency"] >= TARGET_EFFICIENCY and warm["llm_calls"] == 0
            ok &= met
            results.append({"cold": cold, "warm": warm, "target_met": met})
            print(
                f"concurrency {concurrency:>3}: {cold['changes']} changes, {cold['llm_calls']} LM calls in "
                f"{cold['seconds']:.2f} s (ideal {cold['ideal_seconds']:.2f} s) = {cold['calls_per_second']:.1f} "
                f"calls/s vs ideal {cold['ideal_calls_per_second']:.1f} -> {cold['efficiency']:.1%} "
                f"[{'ok' if cold['efficiency'] >= TARGET_EFFICIENCY else 'MISSED'} >= {TARGET_EFFICIENCY:.0%}]; "
                f"re-run: {warm['llm_calls']} calls, {warm['cache_hits']} cache hits, {warm['seconds']:.2f} s"
            )
    finally:
        child.stdin.close()
        child.wait(timeout=10)
    if args.json:
        machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
        args.json.write_text(
            json.dumps({"latency": args.latency, "model": args.model, "machine": machine, "runs": results}, indent=2)
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
