"""A persistent cache of bare mirrors: cloned once, then only fetched.

Layout: ``<cache_dir>/mirrors/<owner>/<name>.git``. Only branches and tags are mirrored (not
``refs/pull/*``, which multiplies the size of a GitHub mirror). Each mirror has a lock file so
two runs never fetch into the same repository at once; a first clone is built in a temporary
folder and renamed into place, so a crash never leaves a half-made mirror behind.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from formulacode_assets.core.mining.git import GitError, run_git
from formulacode_assets.core.repo_names import validate_repo_name

_FETCH_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")


@dataclass(frozen=True)
class MirrorSync:
    repo_name: str
    path: Path
    action: str  # "cloned" | "fetched"
    default_branch: str


def mirror_path(cache_dir: Path, repo_name: str) -> Path:
    owner, name = validate_repo_name(repo_name).split("/")
    return Path(cache_dir) / "mirrors" / owner / f"{name}.git"


@contextmanager
def _mirror_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remote_default_branch(git_dir: Path) -> str | None:
    out = run_git(git_dir, ["ls-remote", "--symref", "origin", "HEAD"], timeout=600)
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
            return line[len("ref: refs/heads/") : -len("\tHEAD")]
    return None


def _fetch(git_dir: Path) -> None:
    run_git(git_dir, ["fetch", "--prune", "--quiet", "--no-write-fetch-head", "origin"])
    # A commit-graph makes first-parent walks and date limits cheap on long histories.
    run_git(git_dir, ["commit-graph", "write", "--reachable", "--no-progress"])


def _clone(url: str, target: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=".clone-", dir=target.parent))
    try:
        run_git(None, ["init", "--quiet", "--bare", str(tmp)])
        run_git(tmp, ["remote", "add", "origin", "--", url])
        run_git(tmp, ["config", "--unset-all", "remote.origin.fetch"])
        for spec in _FETCH_REFSPECS:
            run_git(tmp, ["config", "--add", "remote.origin.fetch", spec])
        # Fetches trigger git's own auto-gc, so monthly packs get consolidated; never in the
        # background, where it would outlive the mirror lock.
        run_git(tmp, ["config", "gc.autoDetach", "false"])
        _fetch(tmp)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def sync_mirror(cache_dir: Path, repo_name: str, url: str, default_branch: str | None = None) -> MirrorSync:
    """Clone ``url`` into the cache on first use, ``git fetch`` afterwards; record the default branch.

    ``default_branch`` overrides the remote's HEAD (useful for remotes without a symbolic HEAD).
    Raises :class:`GitError` when the remote cannot be read.
    """
    path = mirror_path(cache_dir, repo_name)
    if url.startswith("-"):
        raise GitError(["clone"], 2, f"refusing a repository url that starts with '-': {url!r}")
    with _mirror_lock(path):
        if path.exists():
            run_git(path, ["remote", "set-url", "origin", "--", url])
            _fetch(path)
            action = "fetched"
        else:
            _clone(url, path)
            action = "cloned"
        branch = default_branch or _remote_default_branch(path)
        if branch is None:
            raise GitError(["ls-remote"], 1, "remote has no HEAD; set default_branch in the CSV")
        run_git(path, ["symbolic-ref", "HEAD", f"refs/heads/{branch}"])
    return MirrorSync(repo_name=repo_name, path=path, action=action, default_branch=branch)


def mirror_default_branch(git_dir: Path) -> str:
    """The branch the mirror's HEAD names (set from the remote at the last sync)."""
    ref = run_git(git_dir, ["symbolic-ref", "HEAD"]).decode().strip()
    return ref.removeprefix("refs/heads/")
