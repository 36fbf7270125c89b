"""A persistent cache of bare mirrors: cloned once, then only fetched.

Layout: ``<cache_dir>/mirrors/<owner>/<name>.git``. Only branches and tags are mirrored (not
``refs/pull/*``, which multiplies the size of a GitHub mirror). Each mirror has a lock file so
two runs never fetch into the same repository at once; a first clone is built in a temporary
folder and renamed into place, so a crash never leaves a half-made mirror behind.
"""

from __future__ import annotations

import fcntl
import os
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


def _clone_prefix(target: Path) -> str:
    # '+' cannot occur in a repository name, so one repository's prefix never matches another's.
    return f".clone-{target.name}+"


def recover_after_dead_writers(path: Path) -> list[str]:
    """Remove what a killed git or clone left behind; call only while holding the mirror lock.

    Every writer of a mirror holds its lock, so once we hold it, no live process owns a ``*.lock``
    file of that git dir, a ``tmp_pack_*`` or ``incoming-*`` object folder, or a ``.clone-`` folder of
    that repository: they all belong to a dead process (e.g. ``commit-graph.lock`` after a kill -9
    during ``git commit-graph write``, which otherwise fails every later fetch with "File exists").
    Returns what was removed (relative names).
    """
    removed = []
    for leftover in path.parent.glob(_clone_prefix(path) + "*"):
        shutil.rmtree(leftover, ignore_errors=True)
        removed.append(leftover.name)
    if not path.is_dir():
        return removed
    objects = path / "objects"
    for root, dirs, files in os.walk(path):
        here = Path(root)
        if here == objects:  # loose objects and packs hold no locks; only info/ and temp folders matter
            for name in list(dirs):
                if name.startswith("incoming-"):
                    shutil.rmtree(here / name, ignore_errors=True)
                    removed.append(f"objects/{name}")
            dirs[:] = [d for d in dirs if d in ("info", "pack")]
            continue
        for name in files:
            if name.endswith(".lock") or (here.name == "pack" and name.startswith("tmp_")):
                (here / name).unlink(missing_ok=True)
                removed.append(str((here / name).relative_to(path)))
    return removed


def _remote_default_branch(git_dir: Path) -> str | None:
    out = run_git(git_dir, ["ls-remote", "--symref", "origin", "HEAD"], timeout=600)
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
            return line[len("ref: refs/heads/") : -len("\tHEAD")]
    return None


def local_git_dir(url: str) -> Path | None:
    """The git dir of ``url`` when it is a repository on this machine (a work tree or a bare one)."""
    if "://" in url or url.startswith("git@") or "::" in url:
        return None
    path = Path(url)
    for candidate in (path / ".git", path):
        if (candidate / "objects").is_dir() and (candidate / "HEAD").is_file():
            return candidate.resolve()
    return None


def _share_local_refs(git_dir: Path, source: Path) -> None:
    """Mirror a local repository whose history may miss objects (a partial snapshot).

    ``git fetch`` walks every object and fails on the first missing blob, which would turn the
    whole repository into one failed row. Borrowing the source's objects (alternates) and copying
    its branch and tag refs reads no blob at all, so only the changes that need a missing blob fail.
    """
    alternates = git_dir / "objects" / "info" / "alternates"
    alternates.parent.mkdir(parents=True, exist_ok=True)
    alternates.write_text(f"{source / 'objects'}\n")
    listed = run_git(source, ["for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags"])
    wanted = dict(line.split(" ", 1)[::-1] for line in listed.decode("utf-8", "replace").splitlines() if line)
    have = run_git(git_dir, ["for-each-ref", "--format=%(refname)", "refs/heads", "refs/tags"]).decode()
    commands = [f"update {ref} {sha}\n" for ref, sha in wanted.items()]
    commands += [f"delete {ref}\n" for ref in have.splitlines() if ref and ref not in wanted]
    run_git(git_dir, ["update-ref", "--stdin"], input="".join(commands).encode())


def _fetch(git_dir: Path) -> None:
    try:
        run_git(git_dir, ["fetch", "--prune", "--quiet", "--no-write-fetch-head", "origin"])
    except GitError:
        url = run_git(git_dir, ["config", "--get", "remote.origin.url"]).decode().strip()
        source = local_git_dir(url)
        if source is None:
            raise
        _share_local_refs(git_dir, source)
    # A commit-graph makes first-parent walks and date limits cheap on long histories.
    run_git(git_dir, ["commit-graph", "write", "--reachable", "--no-progress"])


def _clone(url: str, target: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=_clone_prefix(target), dir=target.parent))
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
        recover_after_dead_writers(path)
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
