"""What decides whether a change is a performance improvement: the DSPy programs (judge, classify, problem).

Three DSPy programs with typed signatures (ChatAdapter, ``[[ ## field ## ]]`` format):

- ``judge``: is the change performance-improving (runtime or memory of real workloads)? + reasoning;
- ``classify``: one category of :data:`CATEGORIES` and a difficulty (easy/medium/hard) + reasoning;
- ``problem``: the problem statement, extracted near-verbatim from the PR text; an extraction that
  drifts from the source text (see :func:`text_overlap`) is replaced by the PR title and body.

The prompts are the module-level constants below: editing one changes :func:`program_version` (so
cached completions of the old prompt are not reused) and this module's source (so the asset's
``code_version`` changes and old months show as stale).

DSPy is imported lazily (:func:`llm_programs`): importing it costs about a second, which every
process that loads the Dagster definitions would pay, and heuristic mode does not need it.

Long inputs are cut to a token budget, approximating one token as four characters (close for
English text and code with OpenAI-style tokenizers; good enough for a budget, not for billing).
"""

import functools
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

CATEGORIES: tuple[str, ...] = (
    "better algorithm",
    "better data structure or layout",
    "lower-level system",
    "less precise but faster",
    "parallelization",
    "remove or reduce work",
    "cache and reuse",
    "do it earlier / batch / throttle",
    "scale platform",
    "database and storage tuning",
    "micro-optimizations",
    "I/O and latency hiding",
    "higher-level system",
    "uncategorized",
)
DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")
Category = Literal[CATEGORIES]  # the typed output of the classify program
Difficulty = Literal[DIFFICULTIES]
CHARS_PER_TOKEN = 4

# --- the prompts -------------------------------------------------------------------------------

JUDGE_INSTRUCTIONS = """\
You review a change merged into an open-source Python project that tracks its performance with \
airspeed velocity (asv) benchmarks. Decide whether the change is performance-improving: its purpose \
and effect is to make real workloads of the project run faster or use less memory (for example a \
better algorithm, avoiding redundant work, caching, vectorization, moving work to compiled code). \
Changes that only touch tests, benchmarks, CI, documentation, packaging or code style, refactors \
without a performance motive, new features and bug fixes are not performance-improving, even when \
their text mentions speed. Judge from the pull request text and the diff; the diff may be truncated."""

CLASSIFY_INSTRUCTIONS = """\
Classify a performance-improving change by the kind of optimization it makes (exactly one category) \
and by how hard it would be for an experienced engineer who knows the code before the change to find \
and implement it: easy (a local, almost mechanical change), medium (needs understanding of one \
component), hard (spans components, or needs a new algorithm or low-level work).
Categories:
- better algorithm: lower asymptotic complexity or a smarter method;
- better data structure or layout: containers, memory layout or dtypes that fit the access pattern;
- lower-level system: move work to C, Cython, Numba, vectorized NumPy or SIMD;
- less precise but faster: approximation, lower precision, sampling;
- parallelization: threads, processes, GPU kernels;
- remove or reduce work: skip unnecessary computation, copies, checks or conversions;
- cache and reuse: memoize, reuse buffers, objects or results;
- do it earlier / batch / throttle: precompute, batch calls, amortize, rate-limit;
- scale platform: more or better hardware, a distributed backend;
- database and storage tuning: queries, indexes, file formats, compression;
- micro-optimizations: constant-factor tweaks (attribute lookups, inlining, cheaper built-ins);
- I/O and latency hiding: buffering, streaming, asynchronous or overlapped I/O, fewer round trips;
- higher-level system: use a better library or framework facility;
- uncategorized: none of the above fits."""

PROBLEM_INSTRUCTIONS = """\
Extract the problem statement of a performance-improving pull request from its text: what is slow \
or uses too much memory, for which inputs or workloads, with any numbers the text gives. Copy the \
author's own sentences as closely as possible (near-verbatim). Do not describe how the change fixes \
it and do not add facts that are not in the text. If the text says nothing beyond its title, return \
the title."""

_CHANGE_INPUTS = {
    "repo_name": "repository (owner/name)",
    "title": "pull request title",
    "description": "pull request description (may be empty or truncated)",
    "changed_files": "markdown table of the files the change touches",
    "patch": "unified diff of the change against its base (may be truncated)",
}


@dataclass(frozen=True)
class Verdict:
    """What one change was judged to be; ``category``/``difficulty``/``problem_*`` only for performance."""

    is_performance: bool
    reasoning: str
    category: str | None = None
    difficulty: str | None = None
    problem_statement: str | None = None
    problem_statement_source: str | None = None  # "extracted" (LM) or "pr_text" (title + body)
    evidence: str | None = None  # the heuristic's deciding words (null for LM verdicts)


# --- inputs ------------------------------------------------------------------------------------


def truncate_to_tokens(text: str | None, max_tokens: int) -> str:
    """Cut ``text`` to about ``max_tokens`` tokens (4 characters each), saying how much was cut."""
    text = text or ""
    limit = max(0, max_tokens) * CHARS_PER_TOKEN
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... truncated: {len(text) - limit} more characters]"


def pr_text(change: Mapping) -> str:
    """The PR's own words: title, then body."""
    return "\n\n".join(part.strip() for part in (change.get("title"), change.get("body")) if part and part.strip())


def program_inputs(change: Mapping, *, max_patch_tokens: int, max_text_tokens: int) -> dict[str, dict[str, str]]:
    """Inputs of each program for one ``patches`` row, already cut to the token budgets."""
    described = {
        "repo_name": change.get("repo_name") or "",
        "title": change.get("title") or "",
        "description": truncate_to_tokens(change.get("body"), max_text_tokens),
        "changed_files": truncate_to_tokens(change.get("file_change_summary"), max_text_tokens),
        "patch": truncate_to_tokens(change.get("patch"), max_patch_tokens),
    }
    return {
        "judge": described,
        "classify": described,
        "problem": {"title": described["title"], "description": described["description"]},
    }


# --- near-verbatim check -----------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


def text_overlap(extracted: str | None, source: str | None) -> float:
    """Share of the extraction's words that occur in the source (1.0 = every word is the author's).

    Token containment rather than ``difflib`` ratio: a faithful extraction is a *subset* of a longer
    PR text, which a symmetric ratio would punish.
    """
    words = [w.lower() for w in _WORD.findall(extracted or "")]
    if not words:
        return 0.0
    vocabulary = {w.lower() for w in _WORD.findall(source or "")}
    return sum(w in vocabulary for w in words) / len(words)


def problem_statement_or_fallback(extracted: str | None, change: Mapping, min_overlap: float) -> tuple[str, str]:
    """``(statement, source)``: the extraction when near-verbatim, else the PR title and body."""
    source = pr_text(change)
    extracted = (extracted or "").strip()
    if extracted and text_overlap(extracted, source) >= min_overlap:
        return extracted, "extracted"
    return source, "pr_text"


# --- the DSPy programs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Program:
    """One DSPy program: its name, the hash of its prompt, and the module that runs it."""

    name: str
    version: str
    module: Any  # dspy.Module
    outputs: tuple[str, ...]


def _dspy():
    # Without this, litellm (imported by some DSPy paths) downloads a model-cost map from the internet.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import dspy

    return dspy


def _signature_fingerprint(module, adapter) -> str:
    """Hash of everything that shapes the prompt: instructions, fields (names, types, descriptions)."""
    parts: list[Any] = [type(module).__name__, type(adapter).__name__]
    for name, predictor in module.named_predictors():
        signature = predictor.signature
        fields = [
            (field_name, str(info.annotation), json.dumps(info.json_schema_extra or {}, sort_keys=True, default=str))
            for field_name, info in signature.fields.items()
        ]
        parts.append([name, signature.instructions, fields])
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:12]


@functools.cache
def llm_programs() -> dict[str, Program]:
    """The judge, classify and problem programs (built once per process)."""
    dspy = _dspy()

    class JudgeChange(dspy.Signature):
        __doc__ = JUDGE_INSTRUCTIONS
        repo_name: str = dspy.InputField(desc=_CHANGE_INPUTS["repo_name"])
        title: str = dspy.InputField(desc=_CHANGE_INPUTS["title"])
        description: str = dspy.InputField(desc=_CHANGE_INPUTS["description"])
        changed_files: str = dspy.InputField(desc=_CHANGE_INPUTS["changed_files"])
        patch: str = dspy.InputField(desc=_CHANGE_INPUTS["patch"])
        is_performance: bool = dspy.OutputField(
            desc="True if the change improves runtime or memory use of real workloads, else False"
        )

    class ClassifyChange(dspy.Signature):
        __doc__ = CLASSIFY_INSTRUCTIONS
        repo_name: str = dspy.InputField(desc=_CHANGE_INPUTS["repo_name"])
        title: str = dspy.InputField(desc=_CHANGE_INPUTS["title"])
        description: str = dspy.InputField(desc=_CHANGE_INPUTS["description"])
        changed_files: str = dspy.InputField(desc=_CHANGE_INPUTS["changed_files"])
        patch: str = dspy.InputField(desc=_CHANGE_INPUTS["patch"])
        category: Category = dspy.OutputField(desc="the one category that fits best")
        difficulty: Difficulty = dspy.OutputField(desc="easy, medium or hard")

    class ExtractProblem(dspy.Signature):
        __doc__ = PROBLEM_INSTRUCTIONS
        title: str = dspy.InputField(desc="pull request title")
        description: str = dspy.InputField(desc="pull request description (may be empty or truncated)")
        problem_statement: str = dspy.OutputField(desc="the problem, in the author's words")

    adapter = chat_adapter()
    modules = {
        "judge": (dspy.ChainOfThought(JudgeChange), ("reasoning", "is_performance")),
        "classify": (dspy.ChainOfThought(ClassifyChange), ("reasoning", "category", "difficulty")),
        "problem": (dspy.Predict(ExtractProblem), ("problem_statement",)),
    }
    return {
        name: Program(name, _signature_fingerprint(module, adapter), module, outputs)
        for name, (module, outputs) in modules.items()
    }


def chat_adapter():
    """ChatAdapter without its JSON fallback: an unparsable answer is one failure, not a second paid call."""
    return _dspy().ChatAdapter(use_json_adapter_fallback=False)


def prompt_version() -> str:
    """One hash over the three programs' prompts: recorded on every LM-judged row."""
    versions = sorted((p.name, p.version) for p in llm_programs().values())
    return hashlib.sha256(json.dumps(versions).encode()).hexdigest()[:12]


def make_lm(
    model: str,
    *,
    api_base: str | None,
    api_key: str | None,
    temperature: float,
    max_tokens: int | None,
    timeout: float,
):
    """A ``dspy.LM`` for an OpenAI-compatible endpoint, with DSPy's own cache and retries off.

    Retries and caching are done by the caller (bounded back-off it controls, a cache keyed by the
    prompt version), so DSPy must neither sleep on its own schedule nor write ``~/.dspy_cache``.
    """
    dspy = _dspy()
    credentials = {"api_key": api_key} if api_key else {}  # none given: the provider's own variable, if any
    return dspy.LM(
        model,
        api_base=api_base,
        temperature=temperature,
        max_tokens=max_tokens,
        timeout=timeout,
        cache=False,
        num_retries=0,
        **credentials,
    )


def run_program(program: Program, inputs: Mapping[str, str], lm, adapter) -> dict[str, Any]:
    """Call one program on one change; returns its outputs as JSON-able values. Thread-safe."""
    dspy = _dspy()
    # trace/history off: DSPy would otherwise keep every prompt (with patches) in memory.
    with dspy.context(lm=lm, adapter=adapter, trace=None, disable_history=True):
        prediction = program.module(**inputs)
    return {name: prediction[name] for name in program.outputs}


def is_transient(exc: BaseException) -> bool:
    """Rate limits, timeouts, 5xx and connection failures: worth another attempt after a pause."""
    from dspy.utils.exceptions import is_retryable_lm_error

    return is_retryable_lm_error(exc)


def is_llm_failure(exc: BaseException) -> bool:
    """Failures that belong to one row (LM errors, unparsable answers), as opposed to bugs."""
    from dspy.utils.exceptions import DSPyError

    return isinstance(exc, DSPyError)


def describe_failure(exc: BaseException) -> str:
    """A short, single-line reason for a row (never the prompt; the caller redacts secrets)."""
    from dspy.utils.exceptions import AdapterParseError

    if isinstance(exc, AdapterParseError):
        answer = " ".join(str(exc.lm_response).split())
        return f"unparsable LM answer: {answer[:160]!r}"
    message = " ".join((getattr(exc, "message", None) or str(exc)).split())
    status = getattr(exc, "status", None)
    return f"{type(exc).__name__}{f' (HTTP {status})' if status else ''}: {message[:200]}"
