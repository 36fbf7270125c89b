"""Data model of the sample store: the planned history of each sample repository.

A sample repository is a `RepoSpec`: an ordered list of `Step`s, one per first-parent commit on
``main``.  The repositories' content lives in `formulacode_assets.sample.repositories`; the
builder turns specs into git repositories and into the public `SampleChange` manifest.  Every
field is part of what the commit SHAs are computed from, so the specs are plain, frozen data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Commit", "Person", "RepoSpec", "SampleChange", "Step"]


@dataclass(frozen=True)
class SampleChange:
    """One first-parent commit on ``main`` of a sample repository."""

    repo_name: str  # "sample-org/fastmath"
    subject: str  # first line of the commit message
    month: str  # "2024-02", by UTC committer date
    pr_number: int | None
    merge_style: str  # "merge" (2 parents) | "squash" (subject ends with "(#N)") | "direct"
    kind: str  # initial|feature|speedup|fix|docs_only|bench_only|empty|maintenance
    committed_at: str  # UTC committer date, "2024-02-07T14:00:00Z"
    authored_at: str  # UTC author date, same format
    # Paths changed relative to the first parent (all files for a root commit), sorted.
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class Person:
    """A commit author or committer (name and email go into the commit object verbatim)."""

    name: str
    email: str


@dataclass(frozen=True, eq=False)
class Commit:
    """One git commit: its message, people, dates and the files it writes (full contents)."""

    message: str
    author: Person
    authored: str  # ISO 8601 with offset
    files: Mapping[str, str] = field(default_factory=dict)
    committed: str | None = None  # defaults to `authored`
    committer: Person | None = None  # defaults to `author`
    allow_empty: bool = False


@dataclass(frozen=True, eq=False)
class Step:
    """One first-parent commit on main: a plain commit, or a --no-ff merge of a branch."""

    kind: str  # SampleChange.kind
    commit: Commit  # for merges: the merge commit itself (its `files` must be empty)
    pr_number: int | None = None
    branch: str | None = None
    branch_commits: tuple[Commit, ...] = ()


@dataclass(frozen=True, eq=False)
class RepoSpec:
    """A sample repository: its ``owner/name`` and the steps of its ``main`` branch, oldest first."""

    name: str
    steps: tuple[Step, ...]
