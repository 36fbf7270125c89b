"""Contexts on a real asv project: how many validate, time per context, first vs later commits.

Usage (a bare mirror from the ``fetch`` tool; a handful of commits, oldest first):

    uv run python benchmarks/bench_real_contexts.py /work/.mirror/networkx+networkx/repo networkx/networkx \
        c1c468d5... f77c3b68... 7f7afab1...

Each commit's context is built at its first parent with the local validator (selection + budget),
sharing one uv cache and one registry, so the second commit starts from the first one's script.
Prints a markdown table row per context.

With ``FORMULACODE_DOCKER_HOST`` set (e.g. ``unix:///tmp/fc-docker/docker.sock``) the Docker
validator is used instead, on ``FC_BASE_IMAGE`` (default the local ``fc-debian:bookworm``) with the
interpreters that image carries, a fresh uv cache volume and a cold system-packages image, so the
first commit's build is the cold one; "s build" is then system packages + repository + build_env.sh.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from formulacode_assets.core.environments.install_analysis import default_pyenv_root, discover_interpreters
from formulacode_assets.core.environments.local_validator import LocalValidator
from formulacode_assets.core.environments.registry import ContextRegistry
from formulacode_assets.core.environments.synthesis import ContextSynthesizer, ContextTarget, SynthesisSettings


def _docker(host: str):
    """The Docker validator on the local base, its interpreters, a fresh uv cache volume (cold start)."""
    import uuid

    from formulacode_assets.core.environments.install_analysis import Interpreter
    from formulacode_assets.resources.docker_engine import DockerEngineResource

    volume = f"fc-uv-cache-bench-{uuid.uuid4().hex[:8]}"
    base = os.environ.get("FC_BASE_IMAGE", "fc-debian:bookworm")
    validator = DockerEngineResource(base_url=host, base_image=base, uv_cache_volume=volume).validator(
        log=lambda m: print(m, file=sys.stderr, flush=True)
    )
    toolchain = validator.toolchain_image("3")
    for image in validator.client.images.list(name="fc-system"):  # cold: no system-packages image
        validator.client.images.remove(image.id, force=True)
    pythons = validator.toolchain_pythons(toolchain)
    return validator, [Interpreter(version, f"/usr/bin/python{minor}") for minor, version in pythons.items()]


def main(mirror: str, repo_name: str, shas: list[str]) -> None:
    work = Path(tempfile.mkdtemp(prefix="fc-bench-contexts-"))
    host = os.environ.get("FORMULACODE_DOCKER_HOST")
    if host:
        validator, interpreters = _docker(host)
        atexit.register(lambda: validator.client.volumes.get(validator.uv_cache_volume).remove(force=True))
    else:
        validator = LocalValidator(work_root=work / "work", uv_cache_dir=work / "uv", validation_budget=600)
        interpreters = discover_interpreters(default_pyenv_root())
    synthesizer = ContextSynthesizer(
        registry=ContextRegistry(work / "registry.sqlite"),
        validator=validator,
        mirror_path=lambda name: Path(mirror),
        interpreters=interpreters,
        # Release dates of the pins (and floors for old ones) from PyPI's JSON API; "" turns them off.
        settings=SynthesisSettings(
            repeats=1,
            max_agent_attempts=0,
            pin_index_url=os.environ.get("FC_PIN_INDEX", "https://pypi.org/simple") or None,
        ),
        cache_dir=work / "cache",
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(
        "| commit | status | stage | s total | s build | benchmarks | selected | rule | apt | excluded "
        "| floored | reason |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows_file = os.environ.get("FC_BENCH_ROWS")  # every row as JSON lines, for the write-up
    for sha in shas:
        parent = subprocess.run(
            ["git", f"--git-dir={mirror}", "rev-parse", f"{sha}^1"], capture_output=True, text=True, check=True
        ).stdout.strip()
        target = ContextTarget(repo_name, parent, (sha,), (), datetime.now(UTC))
        started = time.monotonic()
        row = synthesizer.context_row("bench", target)
        steps = json.loads(row.get("step_times") or "{}")
        build = sum(steps.get(name, 0) for name in ("system-packages", "repository", "build"))
        if row["status"] != "ok":
            print(f"--- {sha[:10]} output tails:\n{(row.get('stdout_tail') or '')[-1500:]}\n"
                  f"{(row.get('stderr_tail') or '')[-1500:]}", file=sys.stderr)  # fmt: skip
        print(
            f"| {sha[:10]} | {row['status']} | {row.get('stage_failed') or ''} | {time.monotonic() - started:.0f} "
            f"| {build:.0f} | {row.get('n_benchmarks')} | {len(row.get('benchmarks_selected') or [])} "
            f"| {row.get('selection_rule')} | {row.get('system_packages')} "
            f"| {len(row.get('benchmarks_excluded') or [])} "
            f"| {', '.join(row.get('pins_floored') or []) or '–'} | {(row.get('reason') or '')[:80]} |",
            flush=True,
        )
        if rows_file:
            with open(rows_file, "a") as out:
                out.write(json.dumps({"elapsed_s": round(time.monotonic() - started, 1), **row}, default=str) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
