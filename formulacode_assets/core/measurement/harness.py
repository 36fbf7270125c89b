"""Timing benchmarks at the base and at the merged commit: two environments, interleaved rounds.

Both environments come from the context's validated ``build_env.sh`` (one at the base commit,
one at the merged commit; the same commit builds one environment for both sides, as an A/A run
does). A round times every benchmark once per side, in the order A, B, and the next round B, A
(``speedups.round_order``): on a loaded machine A/B/A/B alone let the second slot's cost bias one
side (a 20-run A/A test under two CPU burners gave one ``improved``). A side of
a round is one process of the environment's own Python running :data:`TIMING_DRIVER`: per
benchmark its setup, a warm-up call, then ``samples`` timed samples of ``number`` calls (enough
calls to last ``min_sample_s``), pinned to a fixed CPU where the machine allows, with a
per-benchmark timeout. Only ``time_*`` benchmarks are timed.

The sandbox is the local one (trusted sources, like :class:`~..environments.local_validator.LocalValidator`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from formulacode_assets.core.environments.install_analysis import AsvSettings
from formulacode_assets.core.environments.local_validator import run_step, sandbox_environment
from formulacode_assets.core.environments.validation import ValidationRequest, checkout_commit
from formulacode_assets.core.mining.git import GitError

TIMING_DRIVER = r"""
import json, math, os, signal, sys, time, timeit
spec = json.loads(sys.argv[1])
if spec.get("cpu") is not None and hasattr(os, "sched_setaffinity"):
    try:
        os.sched_setaffinity(0, {int(spec["cpu"])})
    except OSError:
        pass
from asv_runner.discovery import get_benchmark_from_name

class Timeout(Exception):
    pass

def on_alarm(signum, frame):
    raise Timeout()

signal.signal(signal.SIGALRM, on_alarm)
clock = timeit.default_timer
root = os.path.abspath(spec["benchmark_dir"])
out = open(spec["out"], "a", buffering=1)
for name in spec["names"]:
    row = {"name": name, "samples": [], "number": 0, "error": None}
    signal.setitimer(signal.ITIMER_REAL, spec["timeout"])
    try:
        bench = get_benchmark_from_name(root, name)
        if type(bench).__name__ != "TimeBenchmark":
            raise TypeError("not a time benchmark")
        if getattr(bench, "_params", None):
            bench.set_param_idx(0)
        bench.set_cache(bench.do_setup_cache() if bench.setup_cache_key is not None else None)
        if bench.do_setup():
            raise RuntimeError("skipped by its setup")
        try:
            func, args = bench.func, bench._build_params()
            started = clock()
            func(*args)  # warm-up, and the size of one call
            once = max(clock() - started, 1e-7)
            number = max(1, min(10000, int(math.ceil(spec["min_sample_s"] / once))))
            for _ in range(spec["samples"]):
                started = clock()
                for _ in range(number):
                    func(*args)
                row["samples"].append((clock() - started) / number)
            row["number"] = number
        finally:
            bench.do_teardown()
    except Timeout:
        row["error"] = "timeout"
    except BaseException as exc:
        row["error"] = (type(exc).__name__ + ": " + str(exc))[:300]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    out.write(json.dumps(row) + "\n")
"""


@dataclass(frozen=True)
class HarnessSettings:
    rounds: int = 3
    samples: int = 5  # per benchmark, side and round
    min_sample_s: float = 0.01
    benchmark_timeout_s: float = 120
    build_timeout_s: float = 900
    cpu: int | None = 0  # pin the timing process to this CPU (None: no pinning)


class MeasurementError(Exception):
    """An environment for the measurement could not be built (the reason says which side and why)."""


@dataclass
class Side:
    sha: str
    repo: Path
    python: Path
    build_seconds: float


@dataclass
class Environments:
    """The base and merged environments of one measurement; ``runs`` counts timed benchmark sides."""

    base: Side
    merged: Side
    benchmark_dir: str
    settings: HarnessSettings
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    runs: int = 0
    owned: bool = True  # close() deletes the environments (False: the caller reuses them)

    def time_side(self, side: Side, names: Sequence[str], tag: str) -> dict[str, dict]:
        """One side of one round: ``{benchmark: {"samples": [...], "number": n, "error": str | None}}``."""
        out = self.root / f"timings-{tag}.jsonl"
        out.unlink(missing_ok=True)
        spec = json.dumps(
            {
                "benchmark_dir": self.benchmark_dir,
                "names": list(names),
                "samples": self.settings.samples,
                "min_sample_s": self.settings.min_sample_s,
                "timeout": self.settings.benchmark_timeout_s,
                "cpu": self.settings.cpu,
                "out": str(out),
            }
        )
        limit = self.settings.benchmark_timeout_s * max(1, len(names)) + 60
        run_step(
            [str(side.python), "-c", TIMING_DRIVER, spec],
            cwd=side.repo,
            env=self.env,
            timeout=limit,
            logs=self.root / "logs" / tag,
        )
        self.runs += len(names)
        found = {}
        if out.exists():
            for line in out.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                found[row["name"]] = row
        for name in names:
            found.setdefault(name, {"name": name, "samples": [], "number": 0, "error": "no output (killed?)"})
        return found

    def close(self, force: bool = False) -> None:
        if self.owned or force:
            shutil.rmtree(self.root, ignore_errors=True)


def build_environments(
    *,
    mirror: Path,
    repo_name: str,
    base_sha: str,
    merge_sha: str,
    script: str,
    python_path: str,
    asv: AsvSettings,
    exclude_newer: str,
    settings: HarnessSettings = HarnessSettings(),
    work_root: Path | None = None,
    uv_cache_dir: Path | None = None,
) -> Environments:
    """Build the base and merged environments with the validated script (one when the shas are equal)."""
    if work_root:
        work_root.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="fc-measure-", dir=work_root))
    request = ValidationRequest(repo_name, base_sha, mirror, script, "", python_path, asv, exclude_newer)
    extra = {"UV_CACHE_DIR": str(uv_cache_dir)} if uv_cache_dir else {}
    env = sandbox_environment(
        home=root / "home", venv=root / "unused", request=request, python=python_path, extra=extra
    )
    try:
        sides = {}
        for label, sha in (("base", base_sha), ("merged", merge_sha)):
            if label == "merged" and merge_sha == base_sha:
                sides[label] = sides["base"]
                continue
            repo, venv = root / label / "repo", root / label / "env"
            try:
                checkout_commit(mirror, sha, repo, asv.branch)
            except GitError as exc:
                raise MeasurementError(f"{label}: cannot check out {sha[:12]}: {exc.reason}") from None
            (root / label / "build_env.sh").write_text(script)
            side_env = {**env, "FC_VENV": str(venv), "FC_BASE_SHA": sha}
            started = time.monotonic()
            step = run_step(
                ["bash", str(root / label / "build_env.sh")],
                cwd=repo,
                env=side_env,
                timeout=settings.build_timeout_s,
                logs=root / "logs" / f"build-{label}",
            )
            if step.returncode != 0 or not (venv / "bin" / "python").exists():
                raise MeasurementError(
                    f"{label}: build_env.sh failed at {sha[:12]} ({step.returncode}): {step.stderr[-500:]}"
                )
            sides[label] = Side(sha, repo, venv / "bin" / "python", round(time.monotonic() - started, 3))
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return Environments(sides["base"], sides["merged"], asv.benchmark_dir, settings, root, env)
