"""Benchmark of build-context synthesis on the sample store: seconds per validated context.

Run ``python benchmarks/bench_contexts.py [--validator local|docker|both] [--json PATH]`` (see
benchmarks/README_contexts.md).

For the February 2024 speed-ups of the sample store (3 repositories, 3 base commits) it times,
per context, with the same code the ``contexts`` asset runs (``ContextSynthesizer``):

1. **first run**: empty registry and empty caches (install analysis, uv's package cache);
2. **re-run**: the same month again: every (repo, sha) must come from the registry, unvalidated;
3. **re-validation**: registry reuse switched off, caches warm: the cost of validation itself.

The exit status is 1 when a context fails, when the re-run validates anything, or when the re-run
costs more than ``--max-rerun-share`` of the first run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from formulacode_assets.core.environments.docker_validator import DockerValidator
from formulacode_assets.core.environments.install_analysis import default_pyenv_root, discover_interpreters
from formulacode_assets.core.environments.local_validator import LocalValidator
from formulacode_assets.core.environments.registry import ContextRegistry
from formulacode_assets.core.environments.synthesis import (
    ContextSynthesizer,
    ContextTarget,
    SynthesisSettings,
    attempts_of,
)
from formulacode_assets.core.environments.validation import Validator
from formulacode_assets.core.mining.git import run_git
from formulacode_assets.core.mining.mirror import sync_mirror
from formulacode_assets.core.mining.repos import read_repo_list
from formulacode_assets.sample import SAMPLE_CHANGES, ensure_sample_store

ROOT = Path(__file__).resolve().parents[1]
MONTH = "2024-02-01"


def speedup_targets(cache: Path) -> list[ContextTarget]:
    """The February speed-ups' (repo, base sha), read from mirrors of the sample store."""
    specs = {s.repo_name: s for s in read_repo_list(ensure_sample_store(cache / "sample-store"))}
    targets = []
    for change in SAMPLE_CHANGES:
        if change.kind != "speedup" or change.month != MONTH[:7]:
            continue
        mirror = sync_mirror(cache, change.repo_name, specs[change.repo_name].url, "main").path
        log = run_git(mirror, ["log", "--first-parent", "--format=%H %P %cI", "main"]).decode().splitlines()
        for line in log:
            parts = line.split()  # sha, parents..., date (a root commit has no parent)
            if len(parts) >= 3 and parts[-1].replace("+00:00", "Z") == change.committed_at:
                sha, parent = parts[0], parts[1]
                targets.append(ContextTarget(change.repo_name, parent, (sha,), (change.pr_number,), None))
    return targets


def make_validator(kind: str, args, work: Path) -> Validator:
    if kind == "local":
        return LocalValidator(work_root=work / "validate", uv_cache_dir=work / "cache" / "uv")
    import docker

    client = docker.DockerClient(base_url=args.docker_host, version="auto", timeout=2000)
    cafile = ssl.get_default_verify_paths().cafile
    return DockerValidator(client, base_image=args.base_image, extra_ca_certs=Path(cafile) if cafile else None)


def run_case(kind: str, args, work: Path, targets: list[ContextTarget], *, reuse: bool) -> dict:
    synthesizer = ContextSynthesizer(
        registry=ContextRegistry(work / "registry.sqlite"),
        validator=make_validator(kind, args, work),
        mirror_path=lambda name: work / "cache" / "mirrors" / f"{name}.git",
        interpreters=discover_interpreters(default_pyenv_root()),
        settings=SynthesisSettings(repeats=args.repeats, reuse_validated=reuse),
        cache_dir=work / "cache",
    )
    started = time.perf_counter()
    rows = synthesizer.rows_for_month(MONTH, targets)
    elapsed = time.perf_counter() - started
    steps: dict[str, float] = {}
    for row in rows:
        for attempt in attempts_of(row):
            for step in attempt.get("steps", []):
                name = step["name"].split("-")[0]
                steps[name] = steps.get(name, 0.0) + (step.get("duration_s") or 0.0)
    return {
        "step_seconds_per_context": {k: round(v / max(1, len(rows)), 3) for k, v in steps.items()},
        "seconds": round(elapsed, 3),
        "per_context": round(elapsed / max(1, len(rows)), 3),
        "per_context_rows": {r["repo_name"]: r["duration_s"] for r in rows},
        "statuses": sorted({r["status"] for r in rows}),
        "reused": sum(1 for r in rows if r.get("reused")),
        "validated": sum(1 for r in rows if (r.get("attempts") or 0) > 0),
        "failed": [(r["repo_name"], r.get("stage_failed"), r.get("reason")) for r in rows if r["status"] != "ok"],
    }


def bench(kind: str, args) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"fc-bench-contexts-{kind}-", dir=args.workdir))
    try:
        (work / "cache").mkdir()
        targets = speedup_targets(work / "cache")
        results = {"contexts": len(targets)}
        results["first_run"] = run_case(kind, args, work, targets, reuse=True)
        results["rerun"] = run_case(kind, args, work, targets, reuse=True)
        results["revalidation"] = run_case(kind, args, work, targets, reuse=False)
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def docker_reachable(host: str) -> bool:
    try:
        import docker

        client = docker.DockerClient(base_url=host, version="auto", timeout=10)
        client.version()
        client.close()
        return True
    except Exception:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--validator", choices=("local", "docker", "both"), default="local")
    parser.add_argument("--docker-host", default=None, help="engine address; default: scripts/docker_engine.sh start")
    parser.add_argument("--base-image", default="fc-debian:bookworm")
    parser.add_argument("--repeats", type=int, default=2, help="discovery + quick-run repeats per validation")
    parser.add_argument("--workdir", default=None, help="parent of the throw-away folders (default: system temp)")
    parser.add_argument("--max-rerun-share", type=float, default=0.05, help="re-run / first run must stay below")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    kinds = ["local", "docker"] if args.validator == "both" else [args.validator]
    if "docker" in kinds and not args.docker_host:
        started = subprocess.run(
            ["bash", str(ROOT / "scripts" / "docker_engine.sh"), "start"], capture_output=True, text=True, timeout=1200
        )
        if started.returncode != 0:
            print(f"docker engine unavailable: {started.stderr.strip()[-500:]}", file=sys.stderr)
            return 1
        args.docker_host = started.stdout.strip().splitlines()[-1]
    if "docker" in kinds and not docker_reachable(args.docker_host):
        print(f"docker engine at {args.docker_host} does not answer", file=sys.stderr)
        return 1

    report = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()}, "results": {}}
    ok = True
    print(f"{'validator':<9} {'case':<13} {'total s':>8} {'s/context':>10} {'validated':>9} {'reused':>6}  status")
    for kind in kinds:
        results = bench(kind, args)
        report["results"][kind] = results
        for case in ("first_run", "rerun", "revalidation"):
            r = results[case]
            print(
                f"{kind:<9} {case:<13} {r['seconds']:>8.2f} {r['per_context']:>10.2f} "
                f"{r['validated']:>9} {r['reused']:>6}  {','.join(r['statuses'])}"
            )
            if r["step_seconds_per_context"]:
                print("  per context: " + ", ".join(f"{k} {v:.2f} s" for k, v in r["step_seconds_per_context"].items()))
            if r["failed"]:
                ok = False
                print(f"  failures: {r['failed']}")
        share = results["rerun"]["seconds"] / results["first_run"]["seconds"]
        results["rerun_share"] = round(share, 4)
        per_context = statistics.median(results["first_run"]["per_context_rows"].values())
        print(f"{kind}: median first-run seconds per context {per_context:.2f}; re-run / first run = {share:.3%}")
        if results["rerun"]["validated"] or results["rerun"]["reused"] != results["contexts"]:
            ok = False
            print(f"{kind}: the re-run validated contexts again (expected all {results['contexts']} reused)")
        if share > args.max_rerun_share:
            ok = False
            print(f"{kind}: re-run costs {share:.1%} of the first run (target <= {args.max_rerun_share:.0%})")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
