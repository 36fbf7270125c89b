"""The repository list, and whether a repository is fit to mine in a month (asv config on its default branch)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from formulacode_assets.core.mining.asv_config import AsvConfigError, find_asv_config
from formulacode_assets.core.mining.git import GitError
from formulacode_assets.core.mining.merged_changes import last_commit_before
from formulacode_assets.core.mining.mirror import MirrorSync
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
    except Exception as exc:  # whatever a hostile config does, it stays on this repository's row
        return RepoValidity("failed", f"cannot read asv.conf.json: {type(exc).__name__}: {exc}"[:300], head_sha=head)
    if location is None:
        return RepoValidity("skipped", "no asv.conf.json on the default branch", head_sha=head)
    return RepoValidity("ok", None, head, location.conf_path, location.benchmark_dir)


ASV_ITSELF = "airspeed-velocity/asv"


def discovered_rows(
    month: str, listed: list[RepoSpec], listed_by: str, search_hits: list[dict] | None = None
) -> list[dict]:
    """``repos_discovered`` rows: the repository list, united with code-search hits when there are any."""
    rows: dict[str, dict] = {}
    for spec in listed:
        rows[spec.repo_name] = {
            "month": month,
            "repo_name": spec.repo_name,
            "url": spec.url,
            "default_branch": spec.default_branch,
            "discovered_by": listed_by,
            "status": "failed" if spec.problem else "ok",
            "reason": spec.problem,
        }
    for hit in search_hits or []:
        name = hit["repo_name"]
        try:
            validate_repo_name(name)
            problem = None
        except InvalidRepoName as exc:
            problem = str(exc)
        if name in rows:
            rows[name]["discovered_by"] = f"search+{listed_by}"
            rows[name]["asv_conf_path"] = hit.get("asv_conf_path")
            continue
        rows[name] = {
            "month": month,
            "repo_name": name,
            "discovered_by": "search",
            "asv_conf_path": hit.get("asv_conf_path"),
            "status": "failed" if problem else "ok",
            "reason": problem,
        }
    return [rows[name] for name in sorted(rows)]


def specs_from_discovered(rows: list[dict]) -> list[RepoSpec]:
    """The repositories to check this month; discovery failures keep their reason."""
    return [
        RepoSpec(
            r["repo_name"], r.get("url"), r.get("default_branch"), problem=r["reason"] if r["status"] != "ok" else None
        )
        for r in rows
    ]


def github_exclusion(metadata: dict, min_stars: int) -> str | None:
    """Why a repository is not mined (None when it is kept): inaccessible, fork, archived, disabled, asv, stars."""
    if metadata.get("status") != "ok":
        return metadata.get("reason") or "not accessible"
    if metadata["full_name"].lower() == ASV_ITSELF:
        return "asv itself is not a benchmark target"
    if metadata["is_fork"]:
        return f"fork of {metadata.get('fork_parent') or 'another repository'}"
    if metadata["is_archived"]:
        return "archived"
    if metadata["is_disabled"]:
        return "disabled"
    if (metadata.get("stars") or 0) < min_stars:
        return f"{metadata.get('stars') or 0} stars < {min_stars}"
    return None


def github_spec(spec: RepoSpec, metadata: dict) -> RepoSpec:
    """The spec to mirror: GitHub's current name (after a rename), clone URL and default branch."""
    name = metadata.get("full_name") or spec.repo_name
    try:
        validate_repo_name(name)
    except InvalidRepoName as exc:
        return RepoSpec(spec.repo_name, spec.url, spec.default_branch, problem=f"GitHub returned {exc}")
    return RepoSpec(name, metadata.get("clone_url") or spec.url, spec.default_branch or metadata.get("default_branch"))


def mirror_candidates(specs: list[RepoSpec], github: dict[str, dict] | None, min_stars: int) -> list[RepoSpec]:
    """The repositories worth mirroring: usable lines, and (GitHub source) only those GitHub keeps."""
    usable = [s for s in specs if s.problem is None]
    if github is None:
        return usable
    kept = []
    for spec in usable:
        metadata = github.get(spec.repo_name)
        if metadata and github_exclusion(metadata, min_stars) is None:
            kept.append(github_spec(spec, metadata))
    return kept


_GITHUB_FIELDS = ("stars", "watchers", "is_fork", "fork_parent", "is_archived", "is_disabled")


def repos_valid_rows(
    specs: list[RepoSpec],
    mirrors: dict[str, MirrorSync | str],
    source: str,
    month: str,
    month_end: datetime,
    github: dict[str, dict] | None = None,
    min_stars: int = 0,
) -> list[dict]:
    """One ``repos_valid`` row per discovered repository: ok, or skipped/failed with the reason.

    ``github`` maps a listed name to its GitHub metadata (GitHub source); a repository GitHub
    excludes (fork, archived, too few stars, ...) is ``skipped`` with the reason and is not mirrored.
    """
    rows = []
    for listed in specs:
        spec, extra, excluded = listed, {}, None
        if github is not None and listed.problem is None:
            metadata = github.get(listed.repo_name, {"status": "failed", "reason": "no metadata"})
            extra = {k: metadata.get(k) for k in _GITHUB_FIELDS}
            excluded = github_exclusion(metadata, min_stars)
            if excluded is None:
                spec = github_spec(listed, metadata)
                if spec.repo_name != listed.repo_name:
                    extra["renamed_from"] = listed.repo_name
        mirror = mirrors.get(spec.repo_name)
        branch = spec.default_branch
        if spec.problem is not None:
            validity = RepoValidity("failed", spec.problem)
        elif excluded is not None:
            failed = github is not None and github.get(listed.repo_name, {}).get("status") != "ok"
            validity = RepoValidity("failed" if failed else "skipped", excluded)
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
                **extra,
                "status": validity.status,
                "reason": validity.reason,
            }
        )
    return sorted(rows, key=lambda r: r["repo_name"])
