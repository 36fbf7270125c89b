"""The build context of a published image as a deterministic tar: same inputs, same bytes.

The repository goes in as ``git archive`` of the base sha plus a minimal shallow ``.git`` made of
loose objects (asv's ``--set-commit-hash`` needs a real repository; a clone's index and reflog
carry timestamps and would change the bytes every time). Every entry has mtime 0, uid/gid 0 and a
normalised mode, in sorted order.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from formulacode_assets.core.environments.docker_validator import MACHINE, REPO_ROOT, VENV, _quote_env
from formulacode_assets.core.mining.git import run_git

LABEL_PREFIX = "org.formulacode"
BENCHMARKS_FILE = "/fc/benchmarks.json"

# The validator's stages (repository → build_env.sh → asv machine) plus `final`, which records the
# benchmark list in a label and a file.
DOCKERFILE = """\
FROM {toolchain} AS repository
COPY repo/ {repo_root}/
WORKDIR {repo_root}
# The tar carries objects and refs but no index (it holds timestamps): tools reading it need one.
RUN git reset --quiet

FROM repository AS environment
COPY build_env.sh /fc/build_env.sh
ENV FC_VENV={venv} FC_PYTHON={python} FC_EXCLUDE_NEWER={cutoff} FC_ASV_CONF={conf} \\
    FC_ASV_REQUIREMENT="{asv_requirement}" FC_REPO_NAME={repo_name} FC_BASE_SHA={sha}
RUN timeout --kill-after=10 {build_timeout} bash /fc/build_env.sh
RUN test -x {venv}/bin/asv

FROM environment AS asv-ready
RUN {venv}/bin/asv machine --yes --machine {machine} --config {conf}

FROM asv-ready AS final
COPY benchmarks.json {benchmarks_file}
LABEL {labels}
"""


@dataclass(frozen=True)
class ImageRecipe:
    """What decides an image: the context row's script and settings, the toolchain it builds on."""

    repo_name: str
    base_sha: str
    branch: str
    build_env_sh: str
    asv_conf_path: str
    exclude_newer: str
    benchmarks: tuple[str, ...]
    toolchain: str
    python: str = "python3"
    asv_requirement: str = "asv>=0.6"
    build_timeout_s: int = 1800

    def labels(self) -> dict[str, str]:
        return {
            f"{LABEL_PREFIX}.repo": self.repo_name,
            f"{LABEL_PREFIX}.base_sha": self.base_sha,
            f"{LABEL_PREFIX}.benchmarks": json.dumps(list(self.benchmarks)),
        }

    def dockerfile(self) -> str:
        labels = " \\\n      ".join(f"{key}={json.dumps(value)}" for key, value in sorted(self.labels().items()))
        return DOCKERFILE.format(
            toolchain=self.toolchain,
            repo_root=REPO_ROOT,
            venv=VENV,
            python=_quote_env(self.python),
            cutoff=_quote_env(self.exclude_newer),
            conf=self.asv_conf_path,
            asv_requirement=self.asv_requirement.replace('"', ""),
            repo_name=_quote_env(self.repo_name),
            sha=self.base_sha,
            build_timeout=int(self.build_timeout_s),
            machine=MACHINE,
            benchmarks_file=BENCHMARKS_FILE,
            labels=labels,
        )


def _info(name: str, *, kind: bytes = tarfile.REGTYPE, size: int = 0, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = kind, size, mode
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


class _Tar:
    """Entries collected by name, written sorted (directories implied by their files)."""

    def __init__(self):
        self.entries: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}

    def file(self, name: str, data: bytes, executable: bool = False) -> None:
        self._parents(name)
        self.entries[name] = (_info(name, size=len(data), mode=0o755 if executable else 0o644), data)

    def symlink(self, name: str, target: str) -> None:
        self._parents(name)
        info = _info(name, kind=tarfile.SYMTYPE, mode=0o777)
        info.linkname = target
        self.entries[name] = (info, None)

    def _parents(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folder = "/".join(parts[:i])
            self.entries.setdefault(folder, (_info(folder, kind=tarfile.DIRTYPE, mode=0o755), None))

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self.entries):
                info, data = self.entries[name]
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return buffer.getvalue()


def _add_worktree(tar: _Tar, mirror: Path, sha: str, prefix: str) -> None:
    archive = run_git(mirror, ["archive", "--format=tar", sha], timeout=600)
    with tarfile.open(fileobj=io.BytesIO(archive)) as source:
        for member in source.getmembers():
            name = f"{prefix}/{member.name.rstrip('/')}"
            if member.issym():
                tar.symlink(name, member.linkname)
            elif member.isfile():
                tar.file(name, source.extractfile(member).read(), executable=bool(member.mode & 0o111))


def _add_shallow_git(tar: _Tar, mirror: Path, sha: str, branch: str, prefix: str) -> None:
    """A shallow repository holding exactly the base commit, its trees and blobs, as loose objects."""
    listing = run_git(mirror, ["ls-tree", "-r", "-t", "-z", sha], timeout=600).decode()
    heads = [entry.split("\t", 1)[0].split() for entry in listing.split("\0") if entry]
    # Submodule entries are commits of other repositories: not objects of this one.
    root_tree = run_git(mirror, ["rev-parse", f"{sha}^{{tree}}"], timeout=60).decode().strip()
    ids = [sha, root_tree, *sorted({oid for _mode, kind, oid in heads if kind != "commit"} - {root_tree})]
    batch = run_git(mirror, ["cat-file", "--batch"], input="\n".join(ids).encode() + b"\n", timeout=600)
    stream = io.BytesIO(batch)
    git = f"{prefix}/.git"
    while header := stream.readline():
        oid, kind, size = header.decode().split()
        if kind == "missing":
            continue
        body = stream.read(int(size))
        stream.read(1)  # the newline after each object
        loose = zlib.compress(f"{kind} {len(body)}\0".encode() + body, 1)
        tar.file(f"{git}/objects/{oid[:2]}/{oid[2:]}", loose)
    tar.file(f"{git}/HEAD", f"ref: refs/heads/{branch}\n".encode())
    tar.file(f"{git}/refs/heads/{branch}", f"{sha}\n".encode())
    tar.file(f"{git}/shallow", f"{sha}\n".encode())
    tar.file(f"{git}/config", b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n")


def render_build_context(recipe: ImageRecipe, mirror: Path) -> bytes:
    """The build context tar of ``recipe`` with the repository read from the bare ``mirror``."""
    tar = _Tar()
    _add_worktree(tar, mirror, recipe.base_sha, "repo")
    _add_shallow_git(tar, mirror, recipe.base_sha, recipe.branch, "repo")
    tar.file("Dockerfile", recipe.dockerfile().encode())
    tar.file("build_env.sh", recipe.build_env_sh.encode(), executable=True)
    tar.file("benchmarks.json", (json.dumps(list(recipe.benchmarks), indent=1) + "\n").encode())
    return tar.to_bytes()


def context_digest(tar_bytes: bytes) -> str:
    return "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
