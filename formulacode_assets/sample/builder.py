"""Sample store builder: writes the sample repositories' specs into real git repositories.

`ensure_sample_store(root)` builds one bare "origin" repository per spec in
`formulacode_assets.sample.repositories.SPECS` under
``root/<SAMPLE_STORE_VERSION>/origins/<owner>/<name>.git`` with the real ``git`` binary and
returns the path of a CSV (``repo_name,url,default_branch``) listing them.  Every author,
committer and date comes from the specs and no user/system git configuration is read, so the
commit SHAs are identical on every machine and every run.

`SAMPLE_CHANGES` is derived from the same specs: every first-parent commit on each ``main``
branch, so tests of other modules can check what the pipeline should find without running git.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from formulacode_assets.sample.plan import Commit, RepoSpec, SampleChange, Step
from formulacode_assets.sample.repositories import SPECS

__all__ = ["SAMPLE_CHANGES", "SAMPLE_STORE_VERSION", "ensure_sample_store"]

# Bump whenever the generated history (files, messages, dates, people) changes: a store
# already built under root/<version> is reused as is.
SAMPLE_STORE_VERSION = "v1"

CSV_NAME = "repos.csv"
CSV_COLUMNS = ("repo_name", "url", "default_branch")
DEFAULT_BRANCH = "main"


# --------------------------------------------------------------------------------------------
# Manifest derived from the specification
# --------------------------------------------------------------------------------------------

_SQUASH_RE = re.compile(r"\(#(\d+)\)$")
_MERGE_RE = re.compile(r"^Merge pull request #(\d+) from ")


def _parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _utc_iso(iso: str) -> str:
    return _parse(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git_date(iso: str) -> str:
    """ISO 8601 with offset -> git's raw "<epoch> <+hhmm>" format (unambiguous)."""
    moment = _parse(iso)
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"date without a UTC offset: {iso}")
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{int(moment.timestamp())} {sign}{minutes // 60:02d}{minutes % 60:02d}"


def _subject(message: str) -> str:
    return message.split("\n", 1)[0]


def _committed(commit: Commit) -> str:
    return commit.committed or commit.authored


def _merge_style(step: Step) -> str:
    if step.branch is not None:
        return "merge"
    return "squash" if _SQUASH_RE.search(_subject(step.commit.message)) else "direct"


def _build_manifest() -> tuple[SampleChange, ...]:
    changes = []
    for spec in SPECS:
        tree: dict[str, str] = {}
        for step in spec.steps:
            touched: set[str] = set()
            for commit in (*step.branch_commits, step.commit):
                for path, content in commit.files.items():
                    if tree.get(path) != content:
                        touched.add(path)
                    tree[path] = content
            # A path modified then reverted on a branch is not part of the net change; the
            # spec never does that, and the tests compare these paths against git.
            committed = _committed(step.commit)
            changes.append(
                SampleChange(
                    repo_name=spec.name,
                    subject=_subject(step.commit.message),
                    month=_utc_iso(committed)[:7],
                    pr_number=step.pr_number,
                    merge_style=_merge_style(step),
                    kind=step.kind,
                    committed_at=_utc_iso(committed),
                    authored_at=_utc_iso(step.commit.authored),
                    paths=tuple(sorted(touched)),
                )
            )
    return tuple(changes)


SAMPLE_CHANGES: tuple[SampleChange, ...] = _build_manifest()


def _validate_specs() -> None:
    """Invariants the pipeline relies on (checked before every build)."""
    for spec in SPECS:
        previous: datetime | None = None
        for step in spec.steps:
            subject = _subject(step.commit.message)
            when = _parse(_committed(step.commit))
            if previous is not None and when <= previous:
                raise ValueError(f"{spec.name}: committer dates not increasing at {subject!r}")
            if step.branch is not None:
                if step.commit.files or not step.branch_commits:
                    raise ValueError(f"{spec.name}: bad merge step {subject!r}")
                branch_previous = previous
                for commit in step.branch_commits:
                    branch_when = _parse(_committed(commit))
                    if branch_previous is not None and branch_when <= branch_previous:
                        raise ValueError(f"{spec.name}: branch dates not increasing ({subject})")
                    branch_previous = branch_when
                if branch_previous is not None and branch_previous >= when:
                    raise ValueError(f"{spec.name}: branch commits after merge {subject!r}")
            match = _MERGE_RE.match(subject) or _SQUASH_RE.search(subject)
            parsed = int(match.group(1)) if match else None
            if parsed != step.pr_number:
                raise ValueError(f"{spec.name}: PR number mismatch in {subject!r}")
            previous = when


# --------------------------------------------------------------------------------------------
# Building the repositories
# --------------------------------------------------------------------------------------------

_GIT_SETTINGS = (
    "commit.gpgsign=false",
    "tag.gpgsign=false",
    f"init.defaultBranch={DEFAULT_BRANCH}",
    "core.autocrlf=false",
    "core.hooksPath=/dev/null",
    "gc.auto=0",
    "maintenance.auto=false",
    "advice.detachedHead=false",
)
_GIT_CONFIG = tuple(arg for setting in _GIT_SETTINGS for arg in ("-c", setting))


def _base_env() -> dict[str, str]:
    # Drop every inherited GIT_* variable (GIT_DIR, GIT_CONFIG_*, GIT_AUTHOR_* ...).
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(
        {
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
            "TZ": "UTC",
        }
    )
    return env


def _commit_env(base: Mapping[str, str], commit: Commit) -> dict[str, str]:
    committer = commit.committer or commit.author
    return {
        **base,
        "GIT_AUTHOR_NAME": commit.author.name,
        "GIT_AUTHOR_EMAIL": commit.author.email,
        "GIT_AUTHOR_DATE": _git_date(commit.authored),
        "GIT_COMMITTER_NAME": committer.name,
        "GIT_COMMITTER_EMAIL": committer.email,
        "GIT_COMMITTER_DATE": _git_date(_committed(commit)),
    }


def _git(cwd: Path, args: list[str], env: Mapping[str, str]) -> str:
    try:
        result = subprocess.run(
            ["git", *_GIT_CONFIG, *args],
            cwd=cwd,
            env=dict(env),
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as error:
        raise RuntimeError(
            f"git {' '.join(args)} failed in {cwd} (exit {error.returncode}): {error.stderr.strip()}"
        ) from error
    return result.stdout


def _write_files(work: Path, files: Mapping[str, str]) -> None:
    for relative, content in files.items():
        path = work / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8"))


def _make_commit(work: Path, commit: Commit, base_env: Mapping[str, str]) -> None:
    env = _commit_env(base_env, commit)
    _write_files(work, commit.files)
    _git(work, ["add", "--all"], env)
    args = ["commit", "--quiet", "--no-verify", "--cleanup=whitespace", "-m", commit.message]
    if commit.allow_empty:
        args.insert(1, "--allow-empty")
    _git(work, args, env)


def _build_origin(spec: RepoSpec, work: Path, bare: Path, base_env: Mapping[str, str]) -> None:
    work.parent.mkdir(parents=True, exist_ok=True)
    _git(work.parent, ["init", "--quiet", "--template=", "-b", DEFAULT_BRANCH, work.name], base_env)
    for step in spec.steps:
        if step.branch is None:
            _make_commit(work, step.commit, base_env)
            continue
        _git(work, ["checkout", "--quiet", "-b", step.branch], base_env)
        for commit in step.branch_commits:
            _make_commit(work, commit, base_env)
        _git(work, ["checkout", "--quiet", DEFAULT_BRANCH], base_env)
        merge_env = _commit_env(base_env, step.commit)
        _git(
            work,
            ["merge", "--quiet", "--no-ff", "--no-edit", "--no-verify", "-m", step.commit.message, step.branch],
            merge_env,
        )
        # GitHub deletes merged PR branches; the origin only has `main`.
        _git(work, ["branch", "--quiet", "-D", step.branch], base_env)
    bare.parent.mkdir(parents=True, exist_ok=True)
    _git(
        bare.parent,
        ["clone", "--quiet", "--bare", "--no-local", "--template=", str(work), bare.name],
        base_env,
    )
    # The clone points back at the throw-away working repository; forget it.
    _git(bare, ["remote", "remove", "origin"], base_env)


def _origin_relpath(repo_name: str) -> Path:
    owner, name = repo_name.split("/")
    return Path("origins") / owner / f"{name}.git"


def _build_store(staging: Path, final: Path) -> None:
    """Build everything inside `staging`; URLs in the CSV point at `final`."""
    _validate_specs()
    base_env = _base_env()
    work_root = staging / "_work"
    for spec in SPECS:
        _build_origin(
            spec,
            work_root / spec.name.replace("/", "__"),
            staging / _origin_relpath(spec.name),
            base_env,
        )
    shutil.rmtree(work_root)
    with (staging / CSV_NAME).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for spec in SPECS:
            url = str(final / _origin_relpath(spec.name))
            writer.writerow((spec.name, url, DEFAULT_BRANCH))
    os.chmod(staging, 0o755)  # mkdtemp makes it 0700


def ensure_sample_store(root: Path) -> Path:
    """Create (once) the sample origin repositories under `root` and return the path of a CSV
    listing them (columns: repo_name,url,default_branch) — url is the absolute path of each
    bare origin repo."""
    root = Path(root).expanduser().resolve()
    final = root / SAMPLE_STORE_VERSION
    csv_path = final / CSV_NAME
    if csv_path.exists():
        return csv_path
    root.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
        try:
            _build_store(staging, final)
            os.rename(staging, final)
        except OSError:
            # Most likely another process renamed its finished store into place first.
            shutil.rmtree(staging, ignore_errors=True)
            if csv_path.exists():
                return csv_path
            if final.exists():
                # A directory without repos.csv is not something we produce: a leftover from
                # a manual edit.  Move it aside atomically, delete it, and try again.
                stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=root))
                with contextlib.suppress(OSError):
                    os.rename(final, stale / "old")
                shutil.rmtree(stale, ignore_errors=True)
                continue
            raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return csv_path
    raise RuntimeError(f"could not create the sample store at {final}")
