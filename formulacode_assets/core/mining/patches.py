"""A change's diff against its base: one batched ``git diff-tree`` per repo-month, parsed and classified."""

from __future__ import annotations

import codecs
import json
import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from formulacode_assets.core.mining.git import GitError, run_git

# Patches above this many characters are stored truncated (flagged); the stats stay exact.
MAX_PATCH_CHARS = 2_000_000
# Each change's output starts with this line. Diff text cannot start a line with \x01: content
# lines carry a +/-/space prefix and headers start with a keyword.
_RECORD_FORMAT = "%x01FCREC %H"
_RECORD = re.compile(r"^\x01FCREC ([0-9a-f]{40,64})\n", re.MULTILINE)


@dataclass(frozen=True)
class FileChange:
    path: str
    additions: int
    deletions: int
    binary: bool
    change: str = "modified"  # added | deleted | modified | mode


@dataclass(frozen=True)
class ChangeDiff:
    sha: str
    files: tuple[FileChange, ...]
    patch: str
    patch_chars: int
    patch_truncated: bool

    @property
    def additions(self) -> int:
        return sum(f.additions for f in self.files)

    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)


@dataclass(frozen=True)
class DiffFailure:
    sha: str
    reason: str


_DIFF_HEADER = re.compile(r"^diff --git a/(.*?) b/(.*)$")


def _change_kinds(patch: str) -> dict[str, str]:
    kinds: dict[str, str] = {}
    current: str | None = None
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            match = _DIFF_HEADER.match(line)
            current = match.group(2) if match else None
            if current is not None:
                kinds[current] = "modified"
        elif current is not None and line.startswith("new file mode"):
            kinds[current] = "added"
        elif current is not None and line.startswith("deleted file mode"):
            kinds[current] = "deleted"
        elif current is not None and line.startswith("old mode") and kinds[current] == "modified":
            kinds[current] = "mode"
        elif line.startswith("@@") or line.startswith("Binary files"):
            if current is not None and kinds[current] == "mode":
                kinds[current] = "modified"
            current = None
    return kinds


def _unquote_path(path: str) -> str:
    """git C-quotes paths with control characters, quotes or backslashes (core.quotepath=off)."""
    if len(path) >= 2 and path[0] == path[-1] == '"':
        raw = codecs.escape_decode(path[1:-1].encode("utf-8"))[0]
        return raw.decode("utf-8", "replace")
    return path


def _parse_record(sha: str, body: str) -> ChangeDiff:
    stats, patch = [], ""
    lines = body.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("diff --git "):
            patch = "\n".join(lines[i:])
            break
        if line:
            stats.append(line)
    kinds = _change_kinds(patch)
    files = []
    for entry in stats:
        added, deleted, raw_path = entry.split("\t", 2)
        path = _unquote_path(raw_path)
        binary = added == "-"
        files.append(
            FileChange(
                path=path,
                additions=0 if binary else int(added),
                deletions=0 if binary else int(deleted),
                binary=binary,
                change=kinds.get(path, "modified"),
            )
        )
    return ChangeDiff(
        sha=sha,
        files=tuple(files),
        patch=patch[:MAX_PATCH_CHARS],
        patch_chars=len(patch),
        patch_truncated=len(patch) > MAX_PATCH_CHARS,
    )


def _diff_tree(git_dir: Path, pairs: Sequence[tuple[str, str | None]]) -> list[ChangeDiff]:
    stdin = "".join(f"{sha} {base}\n" if base else f"{sha}\n" for sha, base in pairs)
    out = run_git(
        git_dir,
        [
            "diff-tree",
            "--stdin",
            "--always",
            "--root",
            "--no-renames",
            "--no-ext-diff",
            "--no-textconv",
            "-p",
            "--numstat",
            f"--format={_RECORD_FORMAT}",
        ],
        input=stdin.encode(),
    )
    pieces = _RECORD.split(out.decode("utf-8", "replace"))
    # pieces: [preamble, sha1, body1, sha2, body2, ...]
    return [_parse_record(pieces[i], pieces[i + 1]) for i in range(1, len(pieces), 2)]


def diffs_against_base(git_dir: Path, pairs: Sequence[tuple[str, str | None]]) -> dict[str, ChangeDiff | DiffFailure]:
    """Diff each ``(sha, base_sha)`` with one git process; isolate unreadable commits on failure.

    When the batch fails (a missing blob, a corrupt pack) each change is retried alone so that only
    the broken ones become :class:`DiffFailure` rows with git's reason.
    """
    if not pairs:
        return {}
    try:
        return {d.sha: d for d in _diff_tree(git_dir, pairs)}
    except GitError:
        results: dict[str, ChangeDiff | DiffFailure] = {}
        for sha, base in pairs:
            try:
                (diff,) = _diff_tree(git_dir, [(sha, base)])
                results[sha] = diff
            except GitError as exc:
                results[sha] = DiffFailure(sha=sha, reason=f"unreadable objects: {exc.reason}")
        return results


# --- classifying changed files -----------------------------------------------------------------

# The docs rule, written out with examples in formulacode_assets.core.classification.prefilter.DOCS_RULE
# (and tested there): markup anywhere is docs; a `.txt` is docs only in a docs folder, at the top
# level or under a documentation name (README.txt, LICENSE.txt); any other `.txt` is data.
_DOC_DIRS = {"doc", "docs", "documentation", "site", "changelog.d", "changes", "news", "whatsnew"}
_DOC_EXTS = {".md", ".rst", ".adoc", ".ipynb"}
_DOC_NAMES = {
    "readme",
    "changelog",
    "changes",
    "history",
    "news",
    "authors",
    "contributors",
    "license",
    "licence",
    "copying",
    "notice",
    "citation.cff",
    "code_of_conduct",
    "contributing",
    "install",
    "todo",
    "thanks",
}
_TEST_DIRS = {"test", "tests", "testing", "unittests", "testdata", "test_data"}
_EXAMPLE_DIRS = {"example", "examples", "tutorials", "notebooks", "gallery"}
_CI_DIRS = {
    ".github",
    ".circleci",
    ".ci",
    "ci",
    ".azure-pipelines",
    ".gitlab",
    ".buildkite",
    ".devcontainer",
    ".binder",
}
_CI_FILES = {
    ".travis.yml",
    "azure-pipelines.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    "tox.ini",
    "noxfile.py",
    ".pre-commit-config.yaml",
    "codecov.yml",
    ".codecov.yml",
    ".coveragerc",
    ".readthedocs.yml",
    ".readthedocs.yaml",
    ".gitignore",
    ".gitattributes",
    ".mailmap",
    ".editorconfig",
    ".flake8",
    ".pylintrc",
    "ruff.toml",
    ".git-blame-ignore-revs",
    "pytest.ini",
    "mypy.ini",
    ".zenodo.json",
    ".git_archival.txt",
}
_BUILD_DIRS = {"build", "dist", "__pycache__", ".eggs"}
_PACKAGING_FILES = {
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "manifest.in",
    "pipfile",
    "pipfile.lock",
    "poetry.lock",
    "uv.lock",
    "environment.yml",
    "environment.yaml",
    "meta.yaml",
    "requirements.txt",
    "pixi.toml",
    "pixi.lock",
}


def file_category(path: str, benchmark_dir: str | None) -> str:
    """One of bench, docs, tests, examples, ci, build, packaging, core (the first that applies)."""
    lowered = path.lower()
    parts = lowered.split("/")
    name = parts[-1]
    stem, ext = posixpath.splitext(name)
    bench = (benchmark_dir or "").strip("/").lower()
    if name == "asv.conf.json" or (bench and (lowered + "/").startswith(bench + "/")):
        return "bench"
    if any(p in _BUILD_DIRS or p.endswith(".egg-info") for p in parts[:-1]) or ext in {".pyc", ".pyo", ".so", ".whl"}:
        return "build"
    if parts[0] == ".github" and ext in _DOC_EXTS:
        return "docs"  # PR/issue templates, contributing guides: text for people, not CI configuration
    if any(p in _CI_DIRS for p in parts[:-1]) or name in _CI_FILES:
        return "ci"
    if (
        name in _PACKAGING_FILES
        or ("requirements" in stem and ext in {".txt", ".in"})
        or any(p in {"requirements", "conda-recipe", "recipe"} for p in parts[:-1])
    ):
        return "packaging"
    if any(p in _TEST_DIRS for p in parts[:-1]) or (
        ext == ".py" and (stem.startswith("test_") or stem.endswith("_test") or stem == "conftest")
    ):
        return "tests"
    if any(p in _DOC_DIRS for p in parts[:-1]) or ext in _DOC_EXTS or name in _DOC_NAMES:
        return "docs"
    if ext in {"", ".txt"} and (stem in _DOC_NAMES or (ext == ".txt" and len(parts) == 1)):
        return "docs"  # README.txt, LICENSE, TODO.txt anywhere; any other .txt only at the top level
    if any(p in _EXAMPLE_DIRS for p in parts[:-1]):
        return "examples"
    return "core"


@dataclass(frozen=True)
class PatchFlags:
    bench_only: bool
    docs_only: bool
    touches_asv_conf: bool
    touches_core: bool
    categories: dict[str, int] = field(default_factory=dict)


def classify_change(paths: Iterable[str], benchmark_dir: str | None, asv_conf_path: str | None) -> PatchFlags:
    """Flags of a change from the paths it touches; an empty change is none of bench/docs/core."""
    paths = list(paths)
    categories: dict[str, int] = {}
    for path in paths:
        cat = file_category(path, benchmark_dir)
        categories[cat] = categories.get(cat, 0) + 1
    kinds = set(categories)
    return PatchFlags(
        bench_only=bool(paths) and kinds == {"bench"},
        docs_only=bool(paths) and kinds == {"docs"},
        touches_asv_conf=any(p == asv_conf_path or posixpath.basename(p) == "asv.conf.json" for p in paths),
        touches_core="core" in kinds,
        categories=dict(sorted(categories.items())),
    )


def file_change_summary(files: Sequence[FileChange], benchmark_dir: str | None) -> str:
    """A markdown table of the files a change touches, for the UI and for LLM prompts."""
    if not files:
        return "_no file changes_"
    lines = ["| file | change | kind | + | - |", "| --- | --- | --- | ---: | ---: |"]
    for f in files:
        plus, minus = ("bin", "bin") if f.binary else (str(f.additions), str(f.deletions))
        path = f.path.replace("|", "\\|")
        lines.append(f"| `{path}` | {f.change} | {file_category(f.path, benchmark_dir)} | {plus} | {minus} |")
    return "\n".join(lines)


def patch_rows(
    git_dir: Path, changes: Sequence[dict], benchmark_dir: str | None, asv_conf_path: str | None
) -> list[dict]:
    """Add the diff, stats and flags to one repository's ``merge_commits`` rows (one git process).

    Rows that already failed upstream pass through unchanged; a change whose objects cannot be
    read becomes a failed row with git's reason.
    """
    pairs = [
        (row["merge_commit_sha"], row["base_sha"])
        for row in changes
        if row["status"] == "ok" and row.get("merge_commit_sha")
    ]
    diffs = diffs_against_base(git_dir, pairs) if pairs else {}
    rows = []
    for row in changes:
        diff = diffs.get(row.get("merge_commit_sha"))
        if row["status"] != "ok" or diff is None:
            rows.append(dict(row))
            continue
        if isinstance(diff, DiffFailure):
            rows.append({**row, "status": "failed", "reason": diff.reason})
            continue
        paths = [f.path for f in diff.files]
        flags = classify_change(paths, benchmark_dir, asv_conf_path)
        rows.append(
            {
                **row,
                "patch": diff.patch,
                "patch_chars": diff.patch_chars,
                "patch_truncated": diff.patch_truncated,
                "files_changed": paths,
                "n_files": len(paths),
                "additions": diff.additions,
                "deletions": diff.deletions,
                "file_change_summary": file_change_summary(diff.files, benchmark_dir),
                "file_categories": json.dumps(flags.categories, sort_keys=True),
                "bench_only": flags.bench_only,
                "docs_only": flags.docs_only,
                "touches_asv_conf": flags.touches_asv_conf,
                "touches_core": flags.touches_core,
            }
        )
    return rows
