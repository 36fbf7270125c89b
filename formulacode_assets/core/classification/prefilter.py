"""The cheap, recall-first filter that decides which changes are worth an LLM call.

A change passes when its PR text shows a performance signal **or** its title shows no maintenance
signal, and it is small enough to judge. Changes that cannot be performance work by construction
(docs-only, benchmark-only, empty, failed upstream) never pass. Upstream measured ~99.5% recall on
confirmed performance PRs with a rule this loose: widen it freely, tighten it only with evidence.

Where each signal is looked for, and why:

- performance signals in the title **and** body: a perf PR often says so only in its description;
- maintenance signals in the **title only**: PR bodies are full of template boilerplate ("Tests
  added and passed", "linting") that would otherwise reject almost every PR of some projects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_I = re.IGNORECASE | re.MULTILINE

# (label, pattern): the label is what a row's reason names. Order only decides which label is shown.
PERFORMANCE_SIGNALS: tuple[tuple[str, re.Pattern], ...] = tuple(
    (label, re.compile(pattern, _I))
    for label, pattern in (
        ("speed", r"\bspeed(?:s|ed|ing)?[- ]?ups?\b|\bspeed\b"),
        ("faster", r"\bfast(?:er|est)?\b|\bfast[- ]?path"),
        ("slow", r"\bslow(?:er|ness|downs?|est)?\b"),
        ("optimize", r"\boptimi[sz]\w*"),
        ("performance", r"\bperf(?:ormance|ormant)?\b"),
        ("efficiency", r"\b(?:in)?efficien\w*"),
        ("latency", r"\blatenc(?:y|ies)\b"),
        ("throughput", r"\bthroughput\b"),
        ("overhead", r"\boverhead\b"),
        ("memory", r"\bmemory\b|\bmem[- ]?usage\b|\bfootprint\b|\bRAM\b|\bOOM\b"),
        ("allocations", r"\b(?:re|de)?alloc(?:ate|ates|ated|ation|ations|ator|ators|s)?\b"),
        ("GIL", r"\b(?:no)?gil\b"),
        ("copies", r"\bcop(?:y|ies|ying)\b|\bzero[- ]copy\b|\bin[- ]?place\b"),
        ("cache", r"\bcach(?:e|es|ed|ing)\b|\bmemoi[sz]\w*"),
        ("vectorize", r"\bvectori[sz]\w*"),
        ("parallel", r"\bparallel\w*|\bmulti[- ]?(?:thread|process|core)|\bconcurren\w*|\bthread[- ]?pool"),
        ("JIT", r"\bjit\b|\bnumba\b|\bcython(?:ize|ized)?\b|\bpythran\b"),
        ("SIMD", r"\bsimd\b|\bavx(?:2|512)?\b|\bsse[234]?\b|\bneon\b|\bintrinsics?\b"),
        ("GPU", r"\bgpus?\b|\bcuda\b"),
        ("hot path", r"\bhot[- ]?(?:path|spot|loop)s?\b"),
        ("bottleneck", r"\bbottlenecks?\b"),
        ("complexity", r"\bO\((?:[^()]|\([^()]*\))*\)|\bquadratic\b|\b(?:linear|constant|log(?:arithmic)?)[- ]time\b"),
        ("complexity", r"\bcomplexity\b"),
        ("redundant work", r"\b(?:unnecessary|unneeded|redundant|repeated|needless)\b|\bre-?comput\w*"),
        ("precompute", r"\bpre-?comput\w*|\bshort[- ]circuit|\bearly[- ](?:exit|return)"),
        ("lazy", r"\blaz(?:y|ily)\b"),
        ("scalability", r"\bscalab\w*"),
        ("import time", r"\bimport[- ]time\b|\bstartup\b"),
        ("benchmark result", r"\b\d+(?:\.\d+)?\s?[x×]\s+(?:faster|speed)"),
    )
)

MAINTENANCE_SIGNALS: tuple[tuple[str, re.Pattern], ...] = tuple(
    (label, re.compile(pattern, _I))
    for label, pattern in (
        ("release", r"^\s*(?:REL|RLS)\b|^\s*release\s+v?\d|\brelease notes?\b"),
        ("release", r"\bprepare (?:for )?(?:the )?(?:v?\d|release)"),
        ("version bump", r"\bbump(?:s|ed|ing)?\b|\bversion bump\b|\bset version\b|^\s*v?\d+\.\d+(?:\.\d+)*\s*$"),
        ("docs", r"^\s*DOCS?\b|\bdocs?\b|\bdoc-?strings?\b|\bdocumentation\b|^\s*document(?:s|ed|ing)?\b"),
        ("docs", r"\breadme\b|\bchangelog\b|\bwhat'?s ?new\b|\bnews ?fragment"),
        ("typo", r"\btypos?\b|\bspelling\b|\bmisspell\w*"),
        ("lint/format", r"^\s*(?:STY|STYLE|LINT|FMT)\b|\blint(?:s|ing|er)?\b|\bre-?format\w*"),
        ("lint/format", r"\b(?:black|ruff|isort|flake8|pylint|codespell|autopep8|yapf|pre-commit)\b|\bcode style\b"),
        ("lint/format", r"\bwhitespace\b|\bformatting\b"),
        ("CI", r"^\s*CI\b|\bci\b|\bgithub actions?\b|\b(?:gh|github|ci) workflows?\b|\btravis\b|\bappveyor\b"),
        ("CI", r"\bcircleci\b|\bazure[- ]pipelines?\b|\bcodecov\b"),
        ("tests only", r"^\s*(?:TST|TESTS?|TESTING)\b|\bflaky\b|\bxfail\w*"),
        (
            "tests only",
            r"^\s*(?:add|adds|added|adding|fix|fixes|fixed|update|updates|improve|extend|expand|more|increase|skip)"
            r"\s+(?:\w+\s+){0,3}?(?:tests?|testing|test suite|coverage)\b",
        ),
        (
            "dependency pins",
            r"\b(?:un)?pin(?:s|ned|ning)?\b|\bdependabot\b|^\s*DEPS\b|\bdependency (?:pins?|versions?)\b",
        ),
        (
            "dependency pins",
            r"\b(?:update|upgrade|bump|add|drop|remove|require)\w*\s+(?:\w+\s+)?dependenc(?:y|ies)\b"
            r"|\brequirements(?:[-\w]*\.txt|\.in)\b|\bupdate requirements\b",
        ),
        ("packaging", r"^\s*(?:BLD|BUILD)\b|\bpackaging\b|\bwheels?\b|\bsdist\b|\bmanifest\.in\b|\bpypi\b"),
        ("packaging", r"\bsetup\.(?:py|cfg)\b|\bpyproject(?:\.toml)?\b|\bconda[- ](?:recipe|forge|env)"),
        ("revert", r"^\s*revert\b|\breverts?\b|\breverted\b"),
        ("chore", r"^\s*chore\b|\bchores?\b|\bhousekeeping\b|\bauthors\b|\bmailmap\b|\bgitignore\b"),
        ("chore", r"\btrigger (?:ci|build)\b|^\s*merge (?:branch|remote-tracking branch|tag)\b"),
    )
)


def performance_signal(text: str | None) -> str | None:
    """The first performance signal found in ``text`` (as ``label: 'match'``), else None."""
    return _first_signal(PERFORMANCE_SIGNALS, text)


def maintenance_signal(text: str | None) -> str | None:
    """The first maintenance signal found in ``text`` (as ``label: 'match'``), else None."""
    return _first_signal(MAINTENANCE_SIGNALS, text)


def _first_signal(signals: tuple[tuple[str, re.Pattern], ...], text: str | None) -> str | None:
    if not text:
        return None
    for label, pattern in signals:
        match = pattern.search(text)
        if match:
            return f"{label}: {match.group(0).strip()!r}"
    return None


@dataclass(frozen=True)
class PrefilterLimits:
    """Size caps (exclusive): larger changes are not judged (too costly, rarely a single clean optimization)."""

    max_changed_lines: int = 4_000
    max_files: int = 500
    max_patch_chars: int = 20_000


@dataclass(frozen=True)
class PrefilterResult:
    passed: bool
    reason: str


def prefilter(change: Mapping, limits: PrefilterLimits = PrefilterLimits()) -> PrefilterResult:
    """Decide whether one ``patches`` row goes to the judge; the reason is kept on every row."""
    status = change.get("status") or "ok"
    if status != "ok":
        return PrefilterResult(False, f"upstream status {status}")
    n_files = change.get("n_files") or 0
    if n_files == 0:
        return PrefilterResult(False, "empty change (no files changed)")
    if change.get("docs_only"):
        return PrefilterResult(False, "docs-only change")
    if change.get("bench_only"):
        return PrefilterResult(False, "benchmark-only change")
    changed_lines = (change.get("additions") or 0) + (change.get("deletions") or 0)
    if changed_lines >= limits.max_changed_lines:
        return PrefilterResult(
            False, f"too large to judge: {changed_lines} changed lines (limit {limits.max_changed_lines})"
        )
    if n_files >= limits.max_files:
        return PrefilterResult(False, f"too large to judge: {n_files} files (limit {limits.max_files})")
    patch_chars = change.get("patch_chars")
    if patch_chars is None:
        patch_chars = len(change.get("patch") or "")
    if patch_chars >= limits.max_patch_chars:
        return PrefilterResult(
            False, f"too large to judge: {patch_chars} patch characters (limit {limits.max_patch_chars})"
        )

    title = change.get("title") or ""
    perf = performance_signal(f"{title}\n{change.get('body') or ''}")
    if perf:
        return PrefilterResult(True, f"performance signal ({perf})")
    maintenance = maintenance_signal(title)
    if maintenance:
        return PrefilterResult(False, f"maintenance signal in the title ({maintenance}) and no performance signal")
    return PrefilterResult(True, "kept for judging: a code change whose title is not maintenance")
