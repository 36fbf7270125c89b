"""Closed-month re-run and CLI start-up, measured side by side in one run.

Run ``python benchmarks/bench_rerun.py --real NAME=PATH[:BRANCH] ... --month YYYY-MM`` (see
benchmarks/README.md). With a fresh data folder and cache it materializes the mining graph and the
judge (``repos_discovered`` .. ``perf_commits``, git source, no LM: the keyword heuristic) for one
closed month, twice in one process: the first run clones the mirrors and mines; the second is the
re-run of the closed month, which must cost at most 10% of the first with zero repository-months
mined (read from the materialization metadata). Then it times ``dagster asset list`` (CLI start-up)
as a fresh process, a few times.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RERUN_OVER_FIRST = 0.10
TARGET_CLI_SECONDS = 3.0


def materialize_month(root: Path, csv: Path, partition_key: str) -> dict:
    from dagster import DagsterInstance, materialize

    from formulacode_assets.assets.merge_commits import merge_commits
    from formulacode_assets.assets.patches import patches
    from formulacode_assets.assets.perf_commits import perf_commits
    from formulacode_assets.assets.repos_discovered import repos_discovered
    from formulacode_assets.assets.repos_valid import repos_valid
    from formulacode_assets.resources import GitSourceResource
    from formulacode_assets.resources.github import GitHubResource
    from formulacode_assets.resources.llm import LLMResource
    from formulacode_assets.storage import ParquetIOManager

    started = time.perf_counter()
    result = materialize(
        [repos_discovered, repos_valid, merge_commits, patches, perf_commits],
        partition_key=partition_key,
        resources={
            "io_manager": ParquetIOManager(base_path=str(root / "data"), catalog_path=str(root / "catalog.duckdb")),
            "git_source": GitSourceResource(cache_dir=str(root / "cache"), source="git", repos_csv=str(csv)),
            "github_api": GitHubResource(cache_dir=str(root / "cache")),
            "llm": LLMResource(cache_dir=str(root / "cache")),
        },
        instance=DagsterInstance.ephemeral(),
        raise_on_error=True,
    )
    seconds = time.perf_counter() - started
    meta = {
        name: {k: v.value for k, v in result.asset_materializations_for_node(name)[0].metadata.items()}
        for name in ("merge_commits", "patches", "perf_commits")
    }
    return {
        "seconds": round(seconds, 2),
        "merged_changes": meta["merge_commits"]["dagster/row_count"],
        "repo_months_mined": {n: meta[n]["repo_months_mined"] for n in ("merge_commits", "patches")},
        "repo_months_cached": {n: meta[n]["repo_months_cached"] for n in ("merge_commits", "patches")},
        "llm_calls": meta["perf_commits"]["llm_calls"],
    }


def cli_start_up(repeats: int) -> dict:
    """Wall seconds of ``dagster asset list -m formulacode_assets.definitions`` in a fresh process."""
    dagster = Path(sys.executable).with_name("dagster")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DSPY_", "FORMULACODE_"))}
    times = []
    with tempfile.TemporaryDirectory(prefix="fc-cli-") as home:
        env["DAGSTER_HOME"] = home
        for _ in range(repeats):
            started = time.perf_counter()
            proc = subprocess.run(
                [str(dagster), "asset", "list", "-m", "formulacode_assets.definitions"],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            times.append(time.perf_counter() - started)
            assert proc.returncode == 0, proc.stderr[-2000:]
    return {"median_s": round(statistics.median(times), 2), "times_s": [round(t, 2) for t in times]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", action="append", default=[], metavar="NAME=PATH[:BRANCH]", help="repeatable")
    parser.add_argument("--month", default="2024-01", help="the closed month (default 2024-01)")
    parser.add_argument("--cli-repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, metavar="PATH")
    args = parser.parse_args(argv)

    results: dict = {"month": args.month, "repositories": [r.partition("=")[0] for r in args.real]}
    if args.real:
        root = Path(tempfile.mkdtemp(prefix="fc-rerun-"))
        try:
            csv = root / "repos.csv"
            lines = ["repo_name,url,default_branch"]
            for real in args.real:
                name, _, where = real.partition("=")
                path, _, branch = where.partition(":")
                lines.append(f"{name},{Path(path).resolve()},{branch}")
            csv.write_text("\n".join(lines) + "\n")
            key = f"{args.month}-01"
            results["first_run"] = materialize_month(root, csv, key)
            results["rerun"] = materialize_month(root, csv, key)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        share = results["rerun"]["seconds"] / results["first_run"]["seconds"]
        mined = sum(results["rerun"]["repo_months_mined"].values())
        results["rerun_over_first"] = round(share, 3)
        results["rerun_ok"] = share <= TARGET_RERUN_OVER_FIRST and mined == 0
    results["cli"] = cli_start_up(args.cli_repeats)
    results["cli_ok"] = results["cli"]["median_s"] <= TARGET_CLI_SECONDS
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if results.get("rerun_ok", True) and results["cli_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
