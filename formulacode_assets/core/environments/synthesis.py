"""Build contexts per (repository, base sha): analyse, try candidate scripts, validate, register.

For each base commit of the month's performance changes:

1. a context already validated for this (repo, sha) by the same validator is **reused** without
   re-validation (row ``status="ok"``, ``reused=True``, ``attempts=0``): it is as usable downstream
   as a fresh one, and re-running a month costs nothing;
2. otherwise the install analysis runs (a failure there is ``failed`` / ``stage_failed="analysis"``);
3. candidates are validated in order — the nearest earlier validated script of the repository
   (registry), the template, then up to ``max_agent_attempts`` revisions by the DSPy agent — until
   one passes; every attempt is kept (script, return code, output tails, duration);
4. a passing context is registered; when every candidate fails the row is ``failed`` with the
   stage and reason of the last attempt.

Rows are ``skipped`` only when no sandbox may run the scripts (Docker unreachable and local
validation not enabled). Nothing here imports Dagster.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from formulacode_assets.core.environments.build_scripts import (
    Candidate,
    FailedAttempt,
    ScriptAgent,
    initial_candidates,
    script_digest,
)
from formulacode_assets.core.environments.install_analysis import (
    AnalysisError,
    InstallAnalysis,
    Interpreter,
    analyze_install,
    resolver_at,
)
from formulacode_assets.core.environments.pin_dates import flag_old_pins, guard_old_pins, pin_dates
from formulacode_assets.core.environments.registry import ContextRegistry, RegisteredContext
from formulacode_assets.core.environments.system_packages import system_packages_for_analysis
from formulacode_assets.core.environments.validation import ValidationRequest, ValidationResult, Validator
from formulacode_assets.core.measurement.selection import changed_lines
from formulacode_assets.core.mining.git import GitError

_ATTEMPT_TAIL = 2000


@dataclass(frozen=True)
class ContextTarget:
    repo_name: str
    base_sha: str
    merge_commit_shas: tuple[str, ...]
    pr_numbers: tuple[int, ...]
    merged_at: datetime | None


@dataclass(frozen=True)
class SynthesisSettings:
    repeats: int = 2
    max_agent_attempts: int = 3
    reuse_validated: bool = True
    python_lag_days: int = 180
    min_python: str = "3.7"
    resolve_timeout_s: float = 300
    asv_requirement: str = "asv>=0.6"
    max_workers: int = 1  # repositories in parallel (commits of one repository run in order)
    pin_index_url: str | None = None  # JSON simple API for pin release dates (None: no date lookups)
    max_pin_age_days: int = 730
    floor_old_pins: bool = True  # floor an old pin that had a newer release and re-resolve (not only flag it)


def targets_from_perf_commits(rows: Iterable[Mapping]) -> list[ContextTarget]:
    """One target per (repo, base_sha) of the rows judged performance-improving with status ok."""
    grouped: dict[tuple[str, str], list[Mapping]] = defaultdict(list)
    for row in rows:
        if row.get("is_performance") and row.get("status") == "ok" and row.get("base_sha"):
            grouped[(row["repo_name"], row["base_sha"])].append(row)
    targets = []
    for (repo, sha), changes in grouped.items():
        changes.sort(key=lambda r: (r.get("merged_at") or datetime.max.replace(tzinfo=UTC), r["merge_commit_sha"]))
        targets.append(
            ContextTarget(
                repo_name=repo,
                base_sha=sha,
                merge_commit_shas=tuple(r["merge_commit_sha"] for r in changes),
                pr_numbers=tuple(r["pr_number"] for r in changes if r.get("pr_number") is not None),
                merged_at=changes[0].get("merged_at"),
            )
        )
    return sorted(targets, key=lambda t: (t.repo_name, t.merged_at or datetime.max.replace(tzinfo=UTC)))


def repo_problems(repos_valid_rows: Iterable[Mapping], repo_names: Iterable[str]) -> dict[str, str]:
    """Why a repository's contexts cannot be built this month (not valid / not listed), by name."""
    status = {r["repo_name"]: r for r in repos_valid_rows}
    problems = {}
    for name in repo_names:
        row = status.get(name)
        if row is None:
            problems[name] = "repository not listed in repos_valid this month"
        elif row["status"] != "ok":
            problems[name] = f"repository not valid this month: {row.get('reason') or row['status']}"
    return problems


def _attempt_record(n: int, candidate: Candidate, result: ValidationResult) -> dict:
    return {
        "n": n,
        "source": candidate.source,
        "origin": candidate.origin,
        "script_sha256": candidate.digest,
        "script": candidate.script,
        "ok": result.ok,
        "stage_failed": result.stage_failed,
        "reason": result.reason,
        "returncode": result.returncode,
        "duration_s": result.duration_s,
        "stdout_tail": result.stdout_tail[-_ATTEMPT_TAIL:],
        "stderr_tail": result.stderr_tail[-_ATTEMPT_TAIL:],
        "steps": result.steps,
        "n_benchmarks": len(result.benchmarks),
        "benchmarks_selected": result.benchmarks_selected,
        "selection": result.selection,
    }


def _selection_columns(result: ValidationResult) -> dict:
    """What a validation learnt, success or not: discovered and selected benchmarks, step times."""
    return {
        "benchmarks": result.benchmarks,
        "n_benchmarks": len(result.benchmarks),
        "benchmarks_selected": result.benchmarks_selected,
        "selection_rule": (result.selection or {}).get("rule"),
        "selection": json.dumps(result.selection) if result.selection is not None else None,
        "step_times": json.dumps({s["name"]: s["duration_s"] for s in result.steps}),
        "system_packages": result.system_packages,
        "benchmarks_excluded": result.benchmarks_excluded,
    }


def _benchmarks_too_slow(result: ValidationResult) -> bool:
    """The environment built and discovered benchmarks, then the budget ran out timing them.

    Another script (the template after the registry's, an agent revision) builds the same
    environment and runs out of the same budget: trying it only burns another budget.
    """
    return not result.ok and result.stage_failed == "timeout" and bool(result.benchmarks)


def _base_row(month: str, target: ContextTarget) -> dict:
    return {
        "month": month,
        "repo_name": target.repo_name,
        "base_sha": target.base_sha,
        "merge_commit_shas": list(target.merge_commit_shas),
        "pr_numbers": list(target.pr_numbers),
    }


def _analysis_columns(analysis: InstallAnalysis) -> dict:
    asv = analysis.settings
    return {
        "commit_date": analysis.commit_datetime,
        "asv_conf_path": asv.conf_path,
        "benchmark_dir": asv.benchmark_dir,
        "python_version": analysis.python_version,
        "requirements": analysis.dependencies,
        "dependencies": analysis.pins,
        "can_install": analysis.can_install,
        "resolution_step": analysis.resolution_step,
        "resolution_log_tail": analysis.log_tail,
    }


def _reused_row(month: str, target: ContextTarget, context: RegisteredContext) -> dict:
    return {
        **_base_row(month, target),
        "commit_date": datetime.fromisoformat(context.commit_date),
        "python_version": context.python_version,
        "python_version_built": context.python_version,
        "dependencies": context.pins,
        "build_env_sh": context.build_env_sh,
        "script_source": context.source,
        "reused": True,
        "validator": context.validator,
        "attempts": 0,
        "attempt_log": "[]",
        "benchmarks": context.benchmarks,
        "n_benchmarks": len(context.benchmarks),
        "benchmarks_stable": context.benchmarks_stable,
        "validations": 0,
        "duration_s": 0.0,
        "validated_at": datetime.fromisoformat(context.validated_at),
        "status": "ok",
        "reason": None,
    }


class ContextSynthesizer:
    """Turns targets into ``CONTEXTS`` rows with one validator, one registry and an optional agent."""

    def __init__(
        self,
        *,
        registry: ContextRegistry,
        validator: Validator | None,
        mirror_path: Callable[[str], Path],
        interpreters: Sequence[Interpreter],
        settings: SynthesisSettings = SynthesisSettings(),
        agent: ScriptAgent | None = None,
        cache_dir: Path | None = None,
        unavailable_reason: str | None = None,
        log: Callable[[str], None] | None = None,
    ):
        self.registry = registry
        self.validator = validator
        self.mirror_path = mirror_path
        self.interpreters = list(interpreters)
        self.settings = settings
        self.agent = agent
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.unavailable_reason = unavailable_reason or "no validator available"
        self.log = log or (lambda message: None)

    # --- one month -----------------------------------------------------------------------------

    def rows_for_month(
        self, month: str, targets: Sequence[ContextTarget], repo_problems: Mapping[str, str] | None = None
    ) -> list[dict]:
        """Every target's row; repositories in parallel (``max_workers``), each one's commits in date order.

        Targets of a repository in ``repo_problems`` (e.g. not valid this month) are skipped with that reason.
        """
        repo_problems = repo_problems or {}
        skipped = [
            {**_base_row(month, t), "status": "skipped", "reason": repo_problems[t.repo_name]}
            for t in targets
            if t.repo_name in repo_problems
        ]
        targets = [t for t in targets if t.repo_name not in repo_problems]
        by_repo: dict[str, list[ContextTarget]] = defaultdict(list)
        for target in targets:
            by_repo[target.repo_name].append(target)
        total = len(targets)
        done = [0]
        lock = threading.Lock()

        def one_repo(repo_targets: list[ContextTarget]) -> list[dict]:
            rows = []
            for target in repo_targets:
                row = self.context_row(month, target)
                with lock:
                    done[0] += 1
                    position = done[0]
                outcome = row["status"] if row["status"] != "failed" else f"failed at {row.get('stage_failed')}"
                self.log(
                    f"{month}: [{position}/{total}] {target.repo_name}@{target.base_sha[:12]}: {outcome}"
                    + (f" ({row['reason']})" if row.get("reason") else "")
                    + (f", {row['n_benchmarks']} benchmarks" if row["status"] == "ok" else "")
                )
                rows.append(row)
            return rows

        groups = list(by_repo.values())
        with ThreadPoolExecutor(max_workers=max(1, self.settings.max_workers)) as pool:
            per_repo = list(pool.map(one_repo, groups))
        rows = [row for repo_rows in per_repo for row in repo_rows] + skipped
        return sorted(rows, key=lambda r: (r["repo_name"], r["base_sha"]))

    # --- one (repo, sha) ----------------------------------------------------------------------

    def context_row(self, month: str, target: ContextTarget) -> dict:
        started = time.monotonic()
        try:
            row = self._context_row(month, target)
        except Exception as exc:  # one bad commit never fails the month
            row = {
                **_base_row(month, target),
                "status": "failed",
                "stage_failed": "internal",
                "reason": f"{type(exc).__name__}: {exc}"[:500],
            }
        if row.get("duration_s") is None:
            row["duration_s"] = round(time.monotonic() - started, 3)
        return row

    def _context_row(self, month: str, target: ContextTarget) -> dict:
        started = time.monotonic()
        if self.validator is None:
            return {**_base_row(month, target), "status": "skipped", "reason": self.unavailable_reason}
        validator = self.validator
        if self.settings.reuse_validated:
            known = self.registry.get(target.repo_name, target.base_sha, validator.name)
            if known is not None:
                return self._reused(month, target, known)

        mirror = self.mirror_path(target.repo_name)
        try:
            analysis = analyze_install(
                mirror,
                target.repo_name,
                target.base_sha,
                interpreters=self.interpreters,
                cache_dir=self.cache_dir,
                resolve_timeout=self.settings.resolve_timeout_s,
                python_lag_days=self.settings.python_lag_days,
                min_python=self.settings.min_python,
            )
        except AnalysisError as exc:
            return {
                **_base_row(month, target),
                "validator": validator.name,
                "attempts": 0,
                "attempt_log": "[]",
                "status": "failed",
                "stage_failed": "analysis",
                "reason": str(exc),
            }
        self.log(
            f"{target.repo_name}@{target.base_sha[:12]}: Python {analysis.python_version}, {len(analysis.pins)} pins "
            f"as of {analysis.resolution_cutoff} (resolution step {analysis.resolution_step}, "
            f"can_install={analysis.can_install})"
        )
        row = {**_base_row(month, target), **_analysis_columns(analysis), "validator": validator.name}
        if self.settings.pin_index_url and analysis.pins and not self.settings.floor_old_pins:
            dates = pin_dates(analysis.pins, self.settings.pin_index_url)
            row["pin_release_dates"] = json.dumps(dates)
            row["pins_flagged"] = flag_old_pins(dates, analysis.commit_datetime, self.settings.max_pin_age_days)
            if row["pins_flagged"]:
                self.log(f"{target.repo_name}@{target.base_sha[:12]}: old pins {row['pins_flagged']}")
        elif self.settings.pin_index_url and analysis.pins:
            guard = guard_old_pins(
                analysis.pins,
                analysis.dependencies,
                analysis.commit_datetime,
                self.settings.pin_index_url,
                resolver_at(
                    analysis.python_version,
                    analysis.resolution_cutoff,
                    analysis.resolution_step,
                    timeout=self.settings.resolve_timeout_s,
                ),
                max_age_days=self.settings.max_pin_age_days,
            )
            if guard.floored:  # the build installs the floored resolution
                analysis = replace(analysis, pins=guard.pins, dependencies=guard.requirements)
                row.update(_analysis_columns(analysis))
                self.log(f"{target.repo_name}@{target.base_sha[:12]}: floored old pins {guard.floored}")
            row["pin_release_dates"] = json.dumps(guard.dates)
            row["pins_flagged"], row["pins_floored"] = guard.flagged, guard.floored
            if guard.flagged:
                self.log(f"{target.repo_name}@{target.base_sha[:12]}: old pins {guard.flagged}")
        nearest = self.registry.nearest_earlier(
            target.repo_name, analysis.commit_date, exclude_sha=target.base_sha, validator=validator.name
        )
        attempts: list[dict] = []
        history: list[str] = []

        def attempt(candidate: Candidate) -> ValidationResult:
            self.log(f"{target.repo_name}@{target.base_sha[:12]}: validating {candidate.origin} with {validator.name}")
            request = self._request(analysis, candidate, mirror, changed)
            result = validator.validate(request, repeats=self.settings.repeats)
            attempts.append(_attempt_record(len(attempts) + 1, candidate, result))
            history.append(f"attempt {len(attempts)} ({candidate.source}): {result.stage_failed}: {result.reason}")
            return result

        try:
            changed = changed_lines(mirror, target.base_sha, target.merge_commit_shas)
        except GitError as exc:  # a missing merge commit: select without it (the sample rule)
            self.log(f"{target.repo_name}@{target.base_sha[:12]}: no changed lines ({exc.reason[:200]})")
            changed = {}
        tried: set[str] = set()
        for candidate in initial_candidates(analysis, nearest):
            tried.add(candidate.digest)
            result = attempt(candidate)
            last = (candidate, result)
            if result.ok:
                return self._validated(row, analysis, candidate, result, attempts, month, started)
            if _benchmarks_too_slow(result):
                break

        if self.agent is not None and not _benchmarks_too_slow(last[1]):
            for i in range(self.settings.max_agent_attempts):
                failing, failure = last
                try:
                    script = self.agent.revise(
                        analysis.summary(),
                        FailedAttempt(
                            failing.script,
                            failure.stage_failed,
                            failure.reason,
                            failure.stdout_tail,
                            failure.stderr_tail,
                        ),
                        history,
                    )
                except Exception as exc:  # the LM is down or answered nonsense: this attempt fails
                    attempts.append(
                        {
                            "n": len(attempts) + 1,
                            "source": "agent",
                            "origin": f"agent revision {i + 1} ({self.agent.model})",
                            "ok": False,
                            "stage_failed": "agent",
                            "reason": f"LM call failed: {type(exc).__name__}: {exc}"[:500],
                        }
                    )
                    history.append(f"attempt {len(attempts)} (agent): the LM call failed")
                    continue
                candidate = Candidate("agent", script, f"agent revision {i + 1} ({self.agent.model})")
                if candidate.digest in tried:
                    history.append(f"agent revision {i + 1} repeated an earlier script; not re-validated")
                    attempts.append(
                        {
                            "n": len(attempts) + 1,
                            "source": "agent",
                            "origin": candidate.origin,
                            "script_sha256": candidate.digest,
                            "ok": False,
                            "stage_failed": "agent",
                            "reason": "the agent returned a script that already failed",
                        }
                    )
                    continue
                tried.add(candidate.digest)
                result = attempt(candidate)
                last = (candidate, result)
                if result.ok:
                    return self._validated(row, analysis, candidate, result, attempts, month, started)

        # ``last`` is the last script that was actually validated: its stage and output explain the
        # failure better than a later agent call that produced nothing new.
        candidate, result = last
        validated = [a for a in attempts if "script" in a]
        final = validated[-1]
        reason = f"{len(validated)} candidate script(s) failed; last ({final['source']}): {final['reason']}"
        if attempts[-1] is not final:
            reason += f"; then {attempts[-1]['origin']}: {attempts[-1]['reason']}"
        return {
            **row,
            **_selection_columns(result),
            "build_env_sh": candidate.script,
            "script_source": candidate.source,
            "reused": False,
            "attempts": len(attempts),
            "attempt_log": json.dumps(attempts),
            "stage_failed": final["stage_failed"],
            "stdout_tail": result.stdout_tail,
            "stderr_tail": result.stderr_tail,
            "duration_s": round(time.monotonic() - started, 3),
            "status": "failed",
            "reason": reason[:1000],
        }

    def _reused(self, month: str, target: ContextTarget, known: RegisteredContext) -> dict:
        """A reused row with the same analysis columns as a fresh one (the analysis is cached, so cheap).

        Without them a crashed-then-rerun month would differ from a clean one.
        """
        row = _reused_row(month, target, known)
        try:
            analysis = analyze_install(
                self.mirror_path(target.repo_name),
                target.repo_name,
                target.base_sha,
                interpreters=self.interpreters,
                cache_dir=self.cache_dir,
                resolve_timeout=self.settings.resolve_timeout_s,
                python_lag_days=self.settings.python_lag_days,
                min_python=self.settings.min_python,
            )
        except AnalysisError:
            return row
        # The pins are what was built (floored by the pin guard, maybe), not the cached analysis's.
        return {**row, **_analysis_columns(analysis), "dependencies": known.pins}

    def _request(
        self, analysis: InstallAnalysis, candidate: Candidate, mirror: Path, changed: dict | None = None
    ) -> ValidationRequest:
        return ValidationRequest(
            repo_name=analysis.repo_name,
            sha=analysis.sha,
            mirror=mirror,
            script=candidate.script,
            python_version=analysis.python_version,
            python_path=analysis.python_path,
            asv=analysis.settings,
            exclude_newer=analysis.resolution_cutoff,
            asv_requirement=self.settings.asv_requirement,
            changed_lines=changed or {},
            system_packages=system_packages_for_analysis(analysis).packages,
        )

    def _validated(
        self,
        row: dict,
        analysis: InstallAnalysis,
        candidate: Candidate,
        result: ValidationResult,
        attempts: list[dict],
        month: str,
        started: float,
    ) -> dict:
        stored = self.registry.register(
            RegisteredContext(
                repo_name=analysis.repo_name,
                sha=analysis.sha,
                validator=result.validator,
                commit_date=analysis.commit_date,
                build_env_sh=candidate.script,
                script_sha256=script_digest(candidate.script),
                source=candidate.source,
                python_version=result.python_version or analysis.python_version,
                pins=analysis.pins,
                benchmarks=result.benchmarks,
                benchmarks_stable=result.stable,
                month=month,
            )
        )
        return {
            **row,
            **_selection_columns(result),
            "python_version_built": result.python_version,
            "build_env_sh": candidate.script,
            "script_source": candidate.source,
            "reused": False,
            "attempts": len(attempts),
            "attempt_log": json.dumps(attempts),
            "stdout_tail": result.stdout_tail,
            "stderr_tail": result.stderr_tail,
            "benchmarks_failed": result.benchmarks_failed,
            "benchmarks_stable": result.stable,
            "validations": result.repeats,
            "duration_s": round(time.monotonic() - started, 3),
            "validated_at": datetime.fromisoformat(stored.validated_at),
            "status": "ok",
            "reason": None,
        }


def attempts_of(row: Mapping) -> list[dict]:
    """The attempt log of a ``CONTEXTS`` row, parsed."""
    return json.loads(row.get("attempt_log") or "[]")
