"""The cheap, recall-first filter that decides which changes are worth an LLM call.

A change passes when its PR text shows a performance signal **or** its title shows no maintenance
signal, and it is small enough to judge. Changes that cannot be performance work by construction
(docs-only, benchmark-only, empty, failed upstream) never pass. Upstream measured ~99.5% recall on
confirmed performance PRs with a rule this loose: widen it freely, tighten it only with evidence.

Where each signal is looked for, and why:

- performance signals in the title **and** body: a perf PR often says so only in its description;
- maintenance signals in the **title only**: PR bodies are full of template boilerplate ("Tests
  added and passed", "linting") that would otherwise reject almost every PR of some projects.

What counts as docs (``docs_only`` changes never pass; the kind of each path is decided by
:func:`formulacode_assets.core.mining.patches.file_category`, first rule that applies; every row of
:data:`DOCS_RULE` is a tested example):

- markup (``.md``, ``.rst``, ``.adoc``, ``.ipynb``) anywhere outside tests, CI and packaging folders,
  and every file of a docs folder (``doc/``, ``docs/``, ``changelog.d/``, ``whatsnew/``, ...);
- legal and project text files by name, with or without ``.txt``: ``LICENSE``, ``COPYING``,
  ``NOTICE``, ``README``, ``CHANGELOG``, ``AUTHORS``, ``TODO``, ... (a licence-only change is text for
  people, never code); any ``.txt`` at the top level;
- markdown under ``.github/`` (PR and issue templates, contributing guides) is docs; the rest of
  ``.github/`` (workflows, dependabot) is CI;
- NOT docs: a ``.txt`` in a test folder (``tests/data/expected.txt`` is test data), a ``.txt``
  inside the package (``skimage/data/orb_descriptor_positions.txt`` is data the library reads),
  ``requirements*.txt`` (packaging), a ``news.py`` module (code, whatever its name).

Size is measured on the lines that matter (:func:`library_size`): library code only, not tests,
docs, examples, CI, packaging, benchmarks, data (``.csv``, ``.json``, ``.txt``, ``.npy``, files under
``data/`` or ``fixtures/``), vendored or generated files (lock files, ``*_pb2.py``, minified JS,
Cython-generated C). A change with a long patch is never skipped for its length: the judge reads
:func:`patch_for_judge` (library files first, cut to the token budget), and the row records
``judge_patch_truncated``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass

from formulacode_assets.core.mining.patches import file_category

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


# (path, kind it gets, why): the docs rule by example; test_core_prefilter checks each row.
DOCS_RULE: tuple[tuple[str, str, str], ...] = (
    ("README.md", "docs", "markup"),
    ("docs/api/index.rst", "docs", "a docs folder"),
    ("doc/whats-new.rst", "docs", "a docs folder"),
    ("LICENSE", "docs", "legal text by name"),
    ("LICENSE.txt", "docs", "legal text by name"),
    ("skimage/_shared/LICENSE.txt", "docs", "legal text by name, wherever it sits"),
    ("TODO.txt", "docs", "project text by name"),
    ("DEPENDS.txt", "docs", "a .txt at the top level"),
    ("docs/notes.txt", "docs", "a .txt in a docs folder"),
    (".github/PULL_REQUEST_TEMPLATE.md", "docs", "markdown under .github/ is text for people"),
    (".github/ISSUE_TEMPLATE/bug_report.md", "docs", "markdown under .github/ is text for people"),
    (".github/workflows/tests.yml", "ci", "the rest of .github/ is CI"),
    ("tests/data/expected.txt", "tests", "a .txt in a test folder is test data"),
    ("pkg/tests/data/labels.txt", "tests", "a .txt in a test folder is test data"),
    ("testdata/sample.txt", "tests", "testdata/ is a test folder"),
    ("skimage/data/orb_descriptor_positions.txt", "core", "a .txt inside the package is data it reads"),
    ("requirements/build.txt", "packaging", "requirements files are packaging"),
    ("optional_requirements.txt", "packaging", "requirements files are packaging"),
    ("pkg/news.py", "core", "a module named like a docs file is still code"),
)

# Paths that count toward a change's size: library code, not data, generated or vendored files.
_DATA_EXTS = {
    ".csv", ".tsv", ".json", ".jsonl", ".txt", ".dat", ".npy", ".npz", ".h5", ".hdf5", ".nc", ".parquet",
    ".pkl", ".pickle", ".xml", ".svg", ".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".bin", ".gz",
    ".zip", ".lock", ".map", ".yml", ".yaml", ".toml", ".cfg", ".ini",
}  # fmt: skip
_NOT_LIBRARY_DIRS = {
    "data", "fixtures", "testdata", "vendor", "_vendor", "vendored", "third_party", "thirdparty", "externals",
    "generated", "_generated", "benchmarks", "benchmark", "asv_bench", "bench",
}  # fmt: skip
_GENERATED = re.compile(r"(?:_pb2(?:_grpc)?\.pyi?|\.min\.js|\.min\.css|_version\.py|\.generated\.\w+)$", re.I)
_DIFF_HEADER = re.compile(r"^diff --git a/(.*?) b/(.*)$", re.MULTILINE)
_CYTHON_C = re.compile(r"^/\* Generated by Cython", re.MULTILINE)


def is_library_path(path: str) -> bool:
    """Whether a changed path counts toward the size that decides if a change is too large to judge."""
    parts = path.lower().split("/")
    name = parts[-1]
    if file_category(path, None) != "core" or any(p in _NOT_LIBRARY_DIRS for p in parts[:-1]):
        return False
    return posixpath.splitext(name)[1] not in _DATA_EXTS and not _GENERATED.search(name)


def patch_sections(patch: str | None) -> list[tuple[str, str]]:
    """``(path, text)`` of each file's part of a unified diff, in order."""
    patch = patch or ""
    heads = list(_DIFF_HEADER.finditer(patch))
    return [
        (m.group(2), patch[m.start() : heads[i + 1].start() if i + 1 < len(heads) else len(patch)])
        for i, m in enumerate(heads)
    ]


def _changed_lines(section: str) -> int:
    return sum(
        1
        for line in section.splitlines()
        if line[:1] in "+-" and not line.startswith("+++") and not line.startswith("---")
    )


def _library_section(path: str, text: str) -> bool:
    return is_library_path(path) and not _CYTHON_C.search(text[:4_000])


@dataclass(frozen=True)
class ChangeSize:
    lines: int  # added + deleted lines in library files
    files: int  # library files touched
    all_lines: int
    all_files: int


def library_size(change: Mapping) -> ChangeSize:
    """Size of a change on the lines that matter (library code), from its patch.

    Without a patch (or with paths the patch does not show, e.g. binary files) the file list counts
    the files and the row's totals stand in for the lines, which only over-estimates.
    """
    all_lines = (change.get("additions") or 0) + (change.get("deletions") or 0)
    all_files = change.get("n_files") or 0
    sections = patch_sections(change.get("patch"))
    if not sections:
        paths = list(change.get("files_changed") or [])
        if not paths:
            return ChangeSize(all_lines, all_files, all_lines, all_files)
        library = [p for p in paths if is_library_path(p)]
        return ChangeSize(all_lines if library else 0, len(library), all_lines, all_files)
    library = [(path, text) for path, text in sections if _library_section(path, text)]
    return ChangeSize(sum(_changed_lines(text) for _, text in library), len(library), all_lines, all_files)


def patch_for_judge(patch: str | None, max_chars: int) -> tuple[str, bool]:
    """The patch a judge reads: whole when it fits, else library files first, cut to ``max_chars``.

    Returns ``(text, truncated)``. A long change is read in part rather than skipped: tests, data
    and docs make most long patches long, and the library part says what the change does.
    """
    patch = patch or ""
    if len(patch) <= max_chars:
        return patch, False
    sections = patch_sections(patch)
    if sections:
        ordered = sorted(sections, key=lambda s: not _library_section(*s))  # stable: library first
        patch = "".join(text if text.endswith("\n") else text + "\n" for _, text in ordered)
    note = f"\n[... truncated: {len(patch)} characters in all]"  # within the budget: nobody cuts it again
    return patch[: max(0, max_chars - len(note))] + note, True


@dataclass(frozen=True)
class PrefilterLimits:
    """Size caps (exclusive) on library code: larger changes are not judged (rarely one clean optimization).

    Only library lines and files count (:func:`library_size`); the patch length is no cap: a long
    patch is judged on :func:`patch_for_judge`.
    """

    max_changed_lines: int = 4_000
    max_files: int = 500


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
    size = library_size(change)
    if size.lines >= limits.max_changed_lines:
        return PrefilterResult(
            False,
            f"too large to judge: {size.lines} changed lines of library code (limit {limits.max_changed_lines}; "
            f"{size.all_lines} in all)",
        )
    if size.files >= limits.max_files:
        return PrefilterResult(
            False,
            f"too large to judge: {size.files} library files (limit {limits.max_files}; {size.all_files} in all)",
        )

    title = change.get("title") or ""
    perf = performance_signal(f"{title}\n{change.get('body') or ''}")
    if perf:
        return PrefilterResult(True, f"performance signal ({perf})")
    maintenance = maintenance_signal(title)
    if maintenance:
        return PrefilterResult(False, f"maintenance signal in the title ({maintenance}) and no performance signal")
    return PrefilterResult(True, "kept for judging: a code change whose title is not maintenance")
