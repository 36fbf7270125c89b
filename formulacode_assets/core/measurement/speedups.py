"""The human speed-up of a task: stored interleaved timings, verdicts, and the row of ``human_speedups``.

Every timing (benchmark, side, round) goes into a SQLite :class:`TimingStore` keyed by the task
and the environment (the script's digest). A re-run of the month finds them and measures
nothing (``benchmark_runs == 0``, ``timings_reused``) unless forced; a run that stopped half-way
measures only the missing rounds.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from formulacode_assets.core.measurement.harness import Environments, HarnessSettings
from formulacode_assets.core.measurement.statistics import VerdictSettings, judge_all, summarize
from formulacode_assets.core.sqlite_files import ensure_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS timings (
    repo_name TEXT NOT NULL, base_sha TEXT NOT NULL, merge_sha TEXT NOT NULL, env_digest TEXT NOT NULL,
    benchmark TEXT NOT NULL, side TEXT NOT NULL, round INTEGER NOT NULL,
    samples TEXT NOT NULL, number INTEGER, error TEXT, measured_at TEXT NOT NULL,
    PRIMARY KEY (repo_name, base_sha, merge_sha, env_digest, benchmark, side, round)
)
"""


@dataclass(frozen=True)
class TaskKey:
    repo_name: str
    base_sha: str
    merge_sha: str
    env_digest: str  # hash of the build script: other environments time differently


def env_digest(script: str, settings: HarnessSettings) -> str:
    basis = json.dumps([script, settings.samples, settings.min_sample_s, settings.cpu])
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


class TimingStore:
    """Every stored timing; safe for concurrent runs (WAL, one short transaction per side of a round)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ensure_wal(self.path)
        with self._connect() as con:
            con.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=120)

    def put(self, key: TaskKey, side: str, round_: int, rows: dict[str, dict]) -> None:
        now = datetime.now(UTC).isoformat()
        with self._connect() as con:
            con.executemany(
                "INSERT OR REPLACE INTO timings VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        key.repo_name,
                        key.base_sha,
                        key.merge_sha,
                        key.env_digest,
                        name,
                        side,
                        round_,
                        json.dumps(row.get("samples") or []),
                        row.get("number"),
                        row.get("error"),
                        now,
                    )
                    for name, row in rows.items()
                ],
            )

    def get(self, key: TaskKey) -> dict[tuple[str, str, int], dict]:
        """``{(benchmark, side, round): {"samples", "number", "error"}}`` stored for a task."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT benchmark, side, round, samples, number, error FROM timings "
                "WHERE repo_name=? AND base_sha=? AND merge_sha=? AND env_digest=?",
                (key.repo_name, key.base_sha, key.merge_sha, key.env_digest),
            ).fetchall()
        return {(b, s, r): {"samples": json.loads(x), "number": n, "error": e} for b, s, r, x, n, e in rows}

    def forget(self, key: TaskKey) -> None:
        with self._connect() as con:
            con.execute(
                "DELETE FROM timings WHERE repo_name=? AND base_sha=? AND merge_sha=? AND env_digest=?",
                (key.repo_name, key.base_sha, key.merge_sha, key.env_digest),
            )


def missing_rounds(stored: dict, benchmarks: Sequence[str], rounds: int) -> list[int]:
    """Rounds lacking a timing of some benchmark on some side (those are measured again, both sides)."""
    return [
        r for r in range(rounds) if any((b, side, r) not in stored for b in benchmarks for side in ("base", "merged"))
    ]


@dataclass
class Measurement:
    verdicts: list  # BenchmarkVerdict
    timings: dict[str, dict[str, list[list[float]]]]
    benchmark_runs: int  # benchmark sides timed this run (0: everything came from the store)
    reused: bool
    errors: dict[str, str]


def round_order(round_index: int, base, merged) -> tuple[tuple[str, object], tuple[str, object]]:
    """A, B in even rounds and B, A in odd ones: whatever the second slot of a round costs on a busy
    machine (a burner's time slice, a cold cache) falls on both sides instead of biasing one."""
    sides = (("base", base), ("merged", merged))
    return sides if round_index % 2 == 0 else sides[::-1]


def measure(
    key: TaskKey,
    benchmarks: Sequence[str],
    store: TimingStore,
    environments: Callable[[], Environments],
    *,
    settings: HarnessSettings | None = None,
    verdict_settings: VerdictSettings | None = None,
    force: bool = False,
) -> Measurement:
    """Interleaved A/B rounds of the benchmarks (only the missing ones unless ``force``), then verdicts.

    ``environments`` builds the two environments; it is called only when something must be timed.
    """
    settings, verdict_settings = settings or HarnessSettings(), verdict_settings or VerdictSettings()
    benchmarks = sorted(set(benchmarks))
    if force:
        store.forget(key)
    stored = store.get(key)
    todo = missing_rounds(stored, benchmarks, settings.rounds)
    runs = 0
    if todo:
        envs = environments()
        before = envs.runs
        try:
            for r in todo:
                for side_name, side in round_order(r, envs.base, envs.merged):
                    rows = envs.time_side(side, benchmarks, f"r{r}-{side_name}")
                    store.put(key, side_name, r, rows)
            runs = envs.runs - before
        finally:
            envs.close()
        stored = store.get(key)
    timings: dict[str, dict[str, list[list[float]]]] = {}
    errors: dict[str, str] = {}
    for b in benchmarks:
        timings[b] = {side: [] for side in ("base", "merged")}
        for r in range(settings.rounds):
            for side in ("base", "merged"):
                row = stored.get((b, side, r)) or {}
                if row.get("error"):
                    errors.setdefault(b, f"{side} round {r}: {row['error']}")
                timings[b][side].append(list(row.get("samples") or []))
    verdicts = judge_all(timings, verdict_settings)
    return Measurement(verdicts, timings, runs, reused=not todo, errors=errors)


def speedup_row(
    month: str,
    context_row: dict,
    merge_sha: str,
    pr_number: int | None,
    measurement: Measurement | None,
    *,
    selection_rule: str | None,
    settings: HarnessSettings,
    verdict_settings: VerdictSettings,
    started: float,
    status: str = "ok",
    reason: str | None = None,
) -> dict:
    """A ``HUMAN_SPEEDUPS`` row."""
    row = {
        "month": month,
        "repo_name": context_row["repo_name"],
        "base_sha": context_row["base_sha"],
        "merge_commit_sha": merge_sha,
        "pr_number": pr_number,
        "selection_rule": selection_rule,
        "rounds": settings.rounds,
        "samples_per_round": settings.samples,
        "threshold": verdict_settings.threshold,
        "alpha": verdict_settings.alpha,
        "status": status,
        "reason": reason,
    }
    if measurement is not None:
        summary = summarize(measurement.verdicts)
        row.update(
            {
                "benchmarks": [v.benchmark for v in measurement.verdicts],
                "verdicts": json.dumps([v.as_dict() for v in measurement.verdicts]),
                "timings": json.dumps(measurement.timings),
                "improved": summary.improved,
                "n_improved": len(summary.improved),
                "verdict_counts": json.dumps(summary.verdict_counts),
                "human_speedup": summary.human_speedup,
                "oracle_ok": summary.oracle_ok,
                "benchmark_runs": measurement.benchmark_runs,
                "timings_reused": measurement.reused,
                "measured_at": datetime.now(UTC),
            }
        )
    row["duration_s"] = round(time.monotonic() - started, 3)
    return row


class SpeedupMeasurer:
    """``HUMAN_SPEEDUPS`` rows for a month's validated contexts: one per (context, merge commit)."""

    def __init__(
        self,
        *,
        store: TimingStore,
        mirror_path: Callable[[str], Path],
        interpreters: Sequence,
        settings: HarnessSettings,
        verdict_settings: VerdictSettings,
        cache_dir: Path | None = None,
        work_root: Path | None = None,
        uv_cache_dir: Path | None = None,
        force: bool = False,
        unavailable_reason: str | None = None,
        log: Callable[[str], None] | None = None,
    ):
        self.store, self.mirror_path, self.interpreters = store, mirror_path, list(interpreters)
        self.settings, self.verdict_settings = settings, verdict_settings
        self.cache_dir, self.work_root, self.uv_cache_dir = cache_dir, work_root, uv_cache_dir
        self.force, self.unavailable_reason = force, unavailable_reason
        self.log = log or (lambda message: None)
        self.benchmark_runs = 0

    def rows_for_month(self, month: str, context_rows: Sequence[dict]) -> list[dict]:
        rows = []
        for context in context_rows:
            shas = list(context.get("merge_commit_shas") or [])
            prs = list(context.get("pr_numbers") or [])
            for i, merge in enumerate(shas):
                pr = prs[i] if len(prs) == len(shas) else None
                rows.append(self.task_row(month, context, merge, pr))
        return sorted(rows, key=lambda r: (r["repo_name"], r["merge_commit_sha"]))

    def task_row(self, month: str, context: dict, merge: str, pr: int | None) -> dict:
        from formulacode_assets.core.environments.install_analysis import analyze_install
        from formulacode_assets.core.measurement.harness import build_environments
        from formulacode_assets.core.measurement.selection import select_benchmarks

        started = time.monotonic()
        common = dict(settings=self.settings, verdict_settings=self.verdict_settings, started=started)
        if context.get("status") != "ok":
            why = f"context not validated: {context.get('reason') or context.get('status')}"
            return speedup_row(
                month, context, merge, pr, None, selection_rule=None, status="skipped", reason=why, **common
            )
        if self.unavailable_reason:
            return speedup_row(
                month, context, merge, pr, None, selection_rule=None, status="skipped",
                reason=self.unavailable_reason, **common,
            )  # fmt: skip
        selected, rule = context.get("benchmarks_selected"), context.get("selection_rule")
        if not selected:  # a reused context carries no selection: the name/sample rules on its benchmarks
            chosen = select_benchmarks(context.get("benchmarks") or [], {}, None)
            selected, rule = chosen.selected, chosen.rule
        try:
            mirror = self.mirror_path(context["repo_name"])
            script = context["build_env_sh"]
            key = TaskKey(context["repo_name"], context["base_sha"], merge, env_digest(script, self.settings))

            def environments() -> Environments:
                analysis = analyze_install(
                    mirror, context["repo_name"], context["base_sha"], interpreters=self.interpreters,
                    cache_dir=self.cache_dir,
                )  # fmt: skip
                return build_environments(
                    mirror=mirror,
                    repo_name=context["repo_name"],
                    base_sha=context["base_sha"],
                    merge_sha=merge,
                    script=script,
                    python_path=analysis.python_path,
                    asv=analysis.settings,
                    exclude_newer=analysis.resolution_cutoff,
                    settings=self.settings,
                    work_root=self.work_root,
                    uv_cache_dir=self.uv_cache_dir,
                )

            result = measure(
                key, selected, self.store, environments,
                settings=self.settings, verdict_settings=self.verdict_settings, force=self.force,
            )  # fmt: skip
        except Exception as exc:  # one task never fails the month
            reason = f"{type(exc).__name__}: {exc}"[:500]
            return speedup_row(
                month, context, merge, pr, None, selection_rule=rule, status="failed", reason=reason, **common
            )
        self.benchmark_runs += result.benchmark_runs
        row = speedup_row(month, context, merge, pr, result, selection_rule=rule, **common)
        self.log(
            f"{month}: {context['repo_name']}@{merge[:12]}: oracle_ok={row['oracle_ok']} "
            f"speed-up={row['human_speedup']} runs={result.benchmark_runs}"
        )
        return row
