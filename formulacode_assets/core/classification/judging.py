"""Which merged changes improve performance: pre-filter, then judge, classify and describe each one.

Rows in (a month of ``patches``), rows out (the same rows with their labels): the full table is the
record, and downstream stages select ``is_performance``. Every row says what happened to it:

- ``ok``: judged (by the LM or the heuristic);
- ``skipped``: the pre-filter rejected it (``reason`` = the pre-filter's reason); ``is_performance`` false;
- ``failed``: the LM failed or answered unparsably for this row (after retries), or the row had already
  failed upstream (carried forward with its reason); ``is_performance`` null.

LM calls go through :class:`LLMJudge`: a content-keyed cache first (a re-run makes no calls), then the
endpoint with bounded retries and exponential back-off on rate limits, timeouts, 5xx and connection
errors. Changes are judged concurrently by a bounded thread pool.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Protocol

from formulacode_assets.core.classification import heuristic, programs
from formulacode_assets.core.classification.completion_cache import CompletionCache, completion_key
from formulacode_assets.core.classification.prefilter import PrefilterLimits, patch_for_judge, prefilter

HEURISTIC = "heuristic"


@dataclass(frozen=True)
class JudgeSettings:
    """How a month is judged: concurrency, retries, token budgets, pre-filter limits."""

    concurrency: int = 8
    max_retries: int = 4
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    max_patch_tokens: int = 6_000
    max_text_tokens: int = 1_500
    min_problem_overlap: float = 0.8
    limits: PrefilterLimits = field(default_factory=PrefilterLimits)
    progress_every: int = 50


@dataclass(frozen=True)
class LLMEndpoint:
    """An OpenAI-compatible endpoint. ``api_key`` is a secret: excluded from repr, never recorded."""

    model_name: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    temperature: float = 0.0
    max_tokens: int | None = None
    timeout_seconds: float = 120.0

    @property
    def routed_model(self) -> str:
        """``openai/<name>`` for an OpenAI-compatible URL (names like ``org/model`` stay whole)."""
        if self.model_name.startswith("openai/") or not self.api_base:
            return self.model_name
        return f"openai/{self.model_name}"


class JudgeFailure(Exception):
    """One row could not be judged; the message is the row's reason."""


class Judge(Protocol):
    classifier: str
    model: str | None
    prompt_version: str

    def verdict(self, change: Mapping) -> programs.Verdict: ...

    def stats(self) -> dict[str, int]: ...

    def close(self) -> None: ...


class HeuristicJudge:
    """Keyword rules (see :func:`.heuristic.heuristic_verdict`) for when no LM is configured."""

    classifier = HEURISTIC
    model = None
    prompt_version = heuristic.HEURISTIC_VERSION

    def verdict(self, change: Mapping) -> programs.Verdict:
        return heuristic.heuristic_verdict(change)

    def stats(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        pass


class LLMJudge:
    """The three DSPy programs behind the completion cache, with retries; safe to call from many threads."""

    def __init__(self, endpoint: LLMEndpoint, settings: JudgeSettings, cache: CompletionCache):
        self.endpoint = endpoint
        self.settings = settings
        self.cache = cache
        self.classifier = endpoint.model_name
        self.model = endpoint.routed_model
        self.programs = programs.llm_programs()
        self.prompt_version = programs.prompt_version()
        self._lm = programs.make_lm(
            self.model,
            api_base=endpoint.api_base,
            # Local OpenAI-compatible servers (vLLM, llama.cpp) take any key; the client insists on one.
            api_key=endpoint.api_key or ("EMPTY" if endpoint.api_base else None),
            temperature=endpoint.temperature,
            max_tokens=endpoint.max_tokens,
            timeout=endpoint.timeout_seconds,
        )
        self._adapter = programs.chat_adapter()
        # Temperature changes the completions, so it is part of the cache identity of the model.
        self._cache_model = f"{self.model}@t={endpoint.temperature}"
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {k: self._counts[k] for k in ("llm_calls", "cache_hits", "retries", "llm_failures")}

    def _redact(self, text: str) -> str:
        key = self.endpoint.api_key
        return text.replace(key, "***") if key else text

    def _delay(self, exc: BaseException, attempt: int) -> float:
        hint = getattr(exc, "retry_after", None)
        if isinstance(hint, int | float) and hint > 0:
            return min(float(hint), self.settings.max_backoff_seconds)
        ceiling = min(self.settings.max_backoff_seconds, self.settings.backoff_seconds * 2**attempt)
        return ceiling * random.uniform(0.5, 1.0)  # jitter: concurrent workers do not retry in lockstep

    def call(self, name: str, inputs: Mapping[str, str]) -> dict[str, Any]:
        """One program's outputs: from the cache, else from the LM (retrying transient failures)."""
        program = self.programs[name]
        key = completion_key(self._cache_model, name, program.version, inputs)
        cached = self.cache.get(key)
        if cached is not None:
            self._count("cache_hits")
            return cached
        attempts = self.settings.max_retries + 1
        for attempt in range(attempts):
            self._count("llm_calls")
            try:
                outputs = programs.run_program(program, inputs, self._lm, self._adapter)
                break
            except Exception as exc:
                if not programs.is_llm_failure(exc):
                    raise
                if programs.is_transient(exc) and attempt + 1 < attempts:
                    self._count("retries")
                    time.sleep(self._delay(exc, attempt))
                    continue
                self._count("llm_failures")
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise JudgeFailure(self._redact(f"{name}: {programs.describe_failure(exc)}{tries}")) from None
        self.cache.put(key, outputs, model=self._cache_model, program=name, program_version=program.version)
        return outputs

    def verdict(self, change: Mapping) -> programs.Verdict:
        inputs = programs.program_inputs(
            change, max_patch_tokens=self.settings.max_patch_tokens, max_text_tokens=self.settings.max_text_tokens
        )
        judged = self.call("judge", inputs["judge"])
        if not judged["is_performance"]:
            return programs.Verdict(False, judged["reasoning"])
        classified = self.call("classify", inputs["classify"])
        extracted = self.call("problem", inputs["problem"])
        statement, source = programs.problem_statement_or_fallback(
            extracted["problem_statement"], change, self.settings.min_problem_overlap
        )
        return programs.Verdict(
            True,
            f"{judged['reasoning']}\n\nclassification: {classified['reasoning']}",
            category=classified["category"],
            difficulty=classified["difficulty"],
            problem_statement=statement,
            problem_statement_source=source,
        )

    def close(self) -> None:
        self.cache.close()


def make_judge(endpoint: LLMEndpoint | None, settings: JudgeSettings, cache_dir: str) -> Judge:
    """The LLM judge when an endpoint is configured, else the heuristic."""
    if endpoint is None:
        return HeuristicJudge()
    return LLMJudge(endpoint, settings, CompletionCache.in_cache_dir(cache_dir))


@dataclass
class JudgedMonth:
    rows: list[dict]
    summary: dict[str, Any]


def _label_row(change: Mapping, judge: Judge, passed: bool, prefilter_reason: str) -> dict:
    return {
        **change,
        "prefilter_pass": passed,
        "prefilter_reason": prefilter_reason,
        "classifier": judge.classifier,
        "model": judge.model,
        "prompt_version": judge.prompt_version,
    }


def _judged(row: dict, judge: Judge, max_patch_tokens: int) -> dict:
    """One verdict; the judge reads the patch cut to the token budget, library files first."""
    patch, truncated = patch_for_judge(row.get("patch"), max_patch_tokens * programs.CHARS_PER_TOKEN)
    row = {**row, "judge_patch_truncated": truncated}
    try:
        verdict = judge.verdict({**row, "patch": patch})
    except JudgeFailure as exc:
        return {**row, "is_performance": None, "status": "failed", "reason": str(exc)}
    return {
        **row,
        "heuristic_evidence": verdict.evidence,
        "is_performance": verdict.is_performance,
        "category": verdict.category,
        "difficulty": verdict.difficulty,
        "reasoning": verdict.reasoning,
        "problem_statement": verdict.problem_statement,
        "problem_statement_source": verdict.problem_statement_source,
        "status": "ok",
        "reason": None,
    }


def judge_changes(
    changes: Iterable[Mapping],
    judge: Judge,
    settings: JudgeSettings = JudgeSettings(),
    log: Callable[[str], None] | None = None,
) -> JudgedMonth:
    """Pre-filter and judge one month of ``patches`` rows; every input row comes out, in order."""
    log = log or (lambda message: None)
    started = time.monotonic()
    before = judge.stats()
    rows: list[dict] = []
    to_judge: list[int] = []
    for change in changes:
        result = prefilter(change, settings.limits)
        row = _label_row(change, judge, result.passed, result.reason)
        if result.passed:
            to_judge.append(len(rows))
        elif (change.get("status") or "ok") == "ok":
            row.update(is_performance=False, status="skipped", reason=result.reason)
        rows.append(row)

    log(f"pre-filter: {len(to_judge)} of {len(rows)} changes go to the {judge.classifier} judge")
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, settings.concurrency), thread_name_prefix="judge") as pool:
        futures = {pool.submit(_judged, rows[i], judge, settings.max_patch_tokens): i for i in to_judge}
        for future in as_completed(futures):
            rows[futures[future]] = future.result()
            done += 1
            if done % max(1, settings.progress_every) == 0 and done < len(to_judge):
                log(f"judged {done}/{len(to_judge)} changes ({_rate(done, started)})")

    judged = [rows[i] for i in to_judge]
    stats = {k: v - before.get(k, 0) for k, v in judge.stats().items()}
    summary = {
        "classifier": judge.classifier,
        "model": judge.model,
        "prompt_version": judge.prompt_version,
        "changes": len(rows),
        "prefilter_pass": len(to_judge),
        "is_performance": sum(1 for r in rows if r.get("is_performance")),
        "judge_failed": sum(1 for r in judged if r["status"] == "failed"),
        "judge_patch_truncated": sum(1 for r in judged if r.get("judge_patch_truncated")),
        "categories": dict(Counter(r["category"] for r in rows if r.get("category")).most_common()),
        "seconds": round(time.monotonic() - started, 2),
        **stats,
    }
    log(
        f"judged {len(to_judge)} changes with {judge.classifier}: {summary['is_performance']} performance-improving, "
        f"{summary['judge_failed']} failed"
        + (
            f"; {stats['llm_calls']} LM calls, {stats['cache_hits']} cache hits, {stats['retries']} retries"
            if stats
            else ""
        )
        + f" ({summary['seconds']} s)"
    )
    return JudgedMonth(rows, summary)


def _rate(done: int, started: float) -> str:
    elapsed = max(time.monotonic() - started, 1e-9)
    return f"{done / elapsed:.1f} changes/s"
