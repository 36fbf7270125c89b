"""The repository list, and whether a repository is fit to mine in a month (asv config on its default branch)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from formulacode_assets.core.asv_config import AsvConfigError, find_asv_config
from formulacode_assets.core.git import GitError
from formulacode_assets.core.merged_changes import last_commit_before
from formulacode_assets.core.mirror import MirrorSync
from formulacode_assets.core.repo_names import InvalidRepoName, validate_repo_name


@dataclass(frozen=True)
class RepoSpec:
    """One line of the repository list. ``problem`` is set when the line cannot be used."""

    repo_name: str
    url: str | None
    default_branch: str | None = None
    problem: str | None = None


def read_repo_list(csv_path: Path) -> list[RepoSpec]:
    """Read a CSV with ``repo_name`` and ``url`` (optional ``default_branch``); keep bad lines with a problem.

    ``url`` may be any git URL or a local path; relative paths are read relative to the CSV.
    Without a ``url`` column, ``https://github.com/<repo_name>`` is assumed (the upstream CSVs).
    """
    specs: dict[str, RepoSpec] = {}
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "repo_name" not in reader.fieldnames:
            raise ValueError(f"{csv_path}: the repository list needs a repo_name column")
        for line_no, row in enumerate(reader, start=2):
            name = (row.get("repo_name") or "").strip()
            url = (row.get("url") or "").strip() or f"https://github.com/{name}"
            branch = (row.get("default_branch") or "").strip() or None
            try:
                validate_repo_name(name)
            except InvalidRepoName as exc:
                key = name or f"<line {line_no}>"
                specs.setdefault(key, RepoSpec(key, url, branch, problem=str(exc)))
                continue
            if "://" not in url and not url.startswith("git@"):
                url = str((Path(csv_path).parent / url).resolve())
            specs.setdefault(name, RepoSpec(name, url, branch))
    return sorted(specs.values(), key=lambda s: s.repo_name)


@dataclass(frozen=True)
class RepoValidity:
    status: str  # ok | skipped | failed
    reason: str | None
    head_sha: str | None = None
    asv_conf_path: str | None = None
    benchmark_dir: str | None = None


def repo_validity_at(git_dir: Path, branch: str, month_end: datetime) -> RepoValidity:
    """Is there an ``asv.conf.json`` on ``branch`` as it stood at ``month_end``?"""
    try:
        head = last_commit_before(git_dir, branch, month_end)
    except GitError as exc:
        return RepoValidity("failed", f"cannot read branch {branch}: {exc.reason}")
    if head is None:
        return RepoValidity("skipped", f"no commits on {branch} before {month_end:%Y-%m-%d}")
    try:
        location = find_asv_config(git_dir, head)
    except AsvConfigError as exc:
        return RepoValidity("failed", str(exc), head_sha=head)
    except GitError as exc:
        return RepoValidity("failed", f"cannot read tree: {exc.reason}", head_sha=head)
    if location is None:
        return RepoValidity("skipped", "no asv.conf.json on the default branch", head_sha=head)
    return RepoValidity("ok", None, head, location.conf_path, location.benchmark_dir)


def repos_valid_rows(
    specs: list[RepoSpec], mirrors: dict[str, MirrorSync | str], source: str, month: str, month_end: datetime
) -> list[dict]:
    """One ``repos_valid`` row per listed repository: ok, or skipped/failed with the reason."""
    rows = []
    for spec in specs:
        mirror = mirrors.get(spec.repo_name)
        branch = spec.default_branch
        if spec.problem is not None:
            validity = RepoValidity("failed", spec.problem)
        elif isinstance(mirror, MirrorSync):
            branch = mirror.default_branch
            validity = repo_validity_at(mirror.path, branch, month_end)
        else:
            validity = RepoValidity("failed", mirror or "repository was not synced")
        rows.append(
            {
                "month": month,
                "repo_name": spec.repo_name,
                "url": spec.url,
                "source": source,
                "default_branch": branch,
                "head_sha": validity.head_sha,
                "asv_conf_path": validity.asv_conf_path,
                "benchmark_dir": validity.benchmark_dir,
                "status": validity.status,
                "reason": validity.reason,
            }
        )
    return rows
