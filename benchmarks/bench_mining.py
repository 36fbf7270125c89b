"""Benchmark of the monthly mining cost: ``merge_commit_rows`` + ``patch_rows`` on a bare mirror.

Run ``python benchmarks/bench_mining.py [--quick] [--json PATH]`` (see benchmarks/README.md).

1. Generates two synthetic Python-package histories with one ``git fast-import`` process each
   (deterministic, cached under ``--workdir``): a "large" one (default 20,000 first-parent commits
   over 5 years) and a "small" one at the same commit density ending on the same day.
2. Mirrors them with ``sync_mirror`` so the pipeline reads exactly what production reads.
3. Times the pipeline's per-repo-month work against a ``git log --first-parent -p --numstat``
   baseline for the same window, and the same month on the large vs the small mirror.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import platform
import pstats
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from unittest import mock

from formulacode_assets.core.mining import merged_changes, patches
from formulacode_assets.core.mining.git import git_env, run_git
from formulacode_assets.core.mining.mirror import sync_mirror

# Bump when the generator changes so cached repositories are rebuilt.
GENERATOR_VERSION = 4
BRANCH = "main"
BENCHMARK_DIR = "benchmarks"
ASV_CONF = "asv.conf.json"
YEAR_SECONDS = 365.25 * 86400
TARGET_PIPELINE_OVER_BASELINE = 2.0
TARGET_LARGE_OVER_SMALL = 1.5

# --- synthetic repositories -----------------------------------------------------------------------

_WORDS_TEXT = (
    "data frame index array value column row key item node graph tree edge path cache buffer "
    "chunk block offset count size shape dtype axis group label name token parser reader writer "
    "stream config option result state context handler batch window series table record field "
    "schema"
)
_WORDS = _WORDS_TEXT.split()
_PROSE_TEXT = (
    "the a this that each when while returns computes updates handles supports allows uses "
    "makes faster slower memory large small input output performance behaviour default optional "
    "new old"
)
_PROSE = _PROSE_TEXT.split()
_TZ_OFFSETS = ("+0000", "-0800", "-0700", "-0500", "-0400", "-0300", "+0100", "+0200", "+0530", "+0800", "+0900")
_SUBJECT_VERBS = ("Fix", "Add", "Speed up", "Refactor", "Document", "Remove", "Support", "Avoid", "Use", "Improve")
_COMMIT_KIND_WEIGHTS = {"squash": 55, "merge": 25, "direct": 20}
# Real-shaped (pydata/xarray first-parent, 2023-06..2024-05): files per change p50 2, p90 8, max 61;
# changed lines p50 28, p90 254, p99 1451; message p50 228, p90 935, max 7477 characters.
_FILES_PER_COMMIT = ((1, 2, 3, 4, 5, 6, 8, 12, 20, 40, 60), (30, 24, 12, 8, 6, 5, 5, 4, 3, 2, 1))
_HUNKS_PER_FILE = ((1, 2, 3, 4, 6, 10), (40, 25, 14, 10, 7, 4))
_LINES_PER_HUNK = ((1, 2, 3, 4, 8, 16, 40, 120), (22, 20, 16, 14, 12, 9, 5, 2))
_BODY_MEDIAN_CHARS, _BODY_SIGMA, _BODY_MAX_CHARS = 228, 1.1, 8000
_PR_TEMPLATE = ("- [x] Closes #{n}", "- [x] Tests added", "- [x] User visible changes documented in whats-new.rst")


@dataclass(frozen=True)
class RepoSpec:
    """Everything that decides a generated history; its key names the cache folder."""

    label: str
    commits: int  # first-parent commits, the root included
    interval: float  # mean seconds between first-parent commits
    end: int  # unix time of the last possible commit
    files: int
    seed: int

    @property
    def key(self) -> str:
        digest = hashlib.sha256(json.dumps([GENERATOR_VERSION, asdict(self)], sort_keys=True).encode())
        return f"{self.label}-{self.commits}c-{self.files}f-{digest.hexdigest()[:10]}"


def _ident(rng: random.Random) -> str:
    return f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}{rng.randint(0, 99)}"


def _py_line(rng: random.Random) -> str:
    indent = "    " * rng.choice((1, 1, 1, 2, 2, 3))
    r = rng.random()
    if r < 0.08:
        return ""
    if r < 0.18:
        return f"{indent}# {' '.join(rng.choices(_PROSE, k=rng.randint(3, 9)))}"
    if r < 0.26:
        return f"def {_ident(rng)}({rng.choice(_WORDS)}, {rng.choice(_WORDS)}=None):"
    if r < 0.40:
        return f"{indent}return {_ident(rng)}({rng.choice(_WORDS)}, axis={rng.randint(0, 3)})"
    if r < 0.52:
        return f"{indent}if {rng.choice(_WORDS)} is None or len({rng.choice(_WORDS)}) > {rng.randint(1, 999)}:"
    if r < 0.60:
        return f"{indent}for {rng.choice(_WORDS)} in self.{_ident(rng)}():"
    return f"{indent}{_ident(rng)} = {rng.choice(_WORDS)}.{_ident(rng)}({rng.choice(_WORDS)}[{rng.randint(0, 64)}])"


def _text_line(rng: random.Random) -> str:
    if rng.random() < 0.12:
        return ""
    return " ".join(rng.choices(_PROSE + _WORDS, k=rng.randint(4, 14))).capitalize() + "."


def _asv_conf() -> list[str]:
    body = {
        "version": 1,
        "project": "pkg",
        "repo": ".",
        "branches": [BRANCH],
        "environment_type": "virtualenv",
        "benchmark_dir": BENCHMARK_DIR,
        "pythons": ["3.11"],
        "matrix": {"numpy": [""]},
    }
    return json.dumps(body, indent=4).splitlines()


class _Tree:
    """The current files of the generated package, mutated by small edits."""

    def __init__(self, rng: random.Random, n_files: int):
        self.rng = rng
        self.files: dict[str, list[str] | bytes] = {}
        self.kind: dict[str, str] = {}
        self.target: dict[str, int] = {}  # edits keep each file near its initial length: a stationary tree
        self._serial = 0
        fixed = {
            ASV_CONF: ("conf", _asv_conf()),
            "README.md": ("docs", self._text(30, 80)),
            "CHANGELOG.md": ("docs", self._text(40, 120)),
            "pyproject.toml": (
                "misc",
                [f'{_ident(rng)} = "{rng.randint(0, 9)}.{rng.randint(0, 20)}"' for _ in range(40)],
            ),
            "tox.ini": ("misc", self._text(10, 30)),
            ".github/workflows/ci.yml": ("misc", self._text(30, 60)),
            "src/pkg/__init__.py": ("core", self._py(10, 40)),
            "benchmarks/__init__.py": ("bench", [""]),
        }
        fixed["docs/_static/logo.png"] = ("binary", rng.randbytes(3000))
        for path, (kind, content) in fixed.items():
            self._put(path, kind, content)
        while len(self.files) < n_files:
            self.add_file()

    def _put(self, path: str, kind: str, content: list[str] | bytes) -> None:
        self.files[path], self.kind[path], self.target[path] = content, kind, len(content)

    def _py(self, lo: int, hi: int) -> list[str]:
        return [_py_line(self.rng) for _ in range(self.rng.randint(lo, hi))]

    def _text(self, lo: int, hi: int) -> list[str]:
        return [_text_line(self.rng) for _ in range(self.rng.randint(lo, hi))]

    def add_file(self) -> str:
        rng = self.rng
        self._serial += 1
        kind = rng.choices(("core", "tests", "docs", "bench"), weights=(50, 25, 17, 8))[0]
        name = f"{rng.choice(_WORDS)}_{self._serial}"
        if kind == "core":
            sub = rng.choice(("", "core/", "io/", "algorithms/", "_libs/"))
            path, lines = f"src/pkg/{sub}{name}.py", self._py(60, 450)
        elif kind == "tests":
            sub = rng.choice(("", "io/", "core/"))
            path, lines = f"tests/{sub}test_{name}.py", self._py(40, 350)
        elif kind == "docs":
            path, lines = f"docs/{rng.choice(('', 'api/', 'user_guide/'))}{name}.rst", self._text(20, 160)
        else:
            path, lines = f"{BENCHMARK_DIR}/bench_{name}.py", self._py(20, 150)
        self._put(path, kind, lines)
        return path

    def delete_file(self) -> str | None:
        candidates = [p for p, k in self.kind.items() if k in ("core", "tests", "docs")]
        if len(candidates) < 20:
            return None
        path = self.rng.choice(sorted(candidates))
        del self.files[path], self.kind[path], self.target[path]
        return path

    def pick_paths(self, n: int) -> list[str]:
        weights = {"core": 10, "tests": 6, "docs": 3, "bench": 2, "misc": 1, "conf": 0.15, "binary": 0.1}
        paths = sorted(self.files)
        chosen = self.rng.choices(paths, weights=[weights[self.kind[p]] for p in paths], k=n * 2)
        return list(dict.fromkeys(chosen))[:n]

    def edit(self, path: str) -> None:
        """A few changed lines: 1-3 hunks, each replacing, inserting or deleting 1-4 lines."""
        rng = self.rng
        content = self.files[path]
        if isinstance(content, bytes):
            self.files[path] = rng.randbytes(len(content) + rng.randint(-200, 200))
            return
        new_line = _text_line if self.kind[path] in ("docs", "misc") else _py_line
        if self.kind[path] == "conf":
            new_line = lambda r: f'    "{_ident(r)}": "{r.randint(0, 99)}",'  # noqa: E731
        target = self.target[path]
        for _ in range(rng.choices(*_HUNKS_PER_FILE)[0]):
            at = rng.randrange(len(content) + 1)
            k = rng.choices(*_LINES_PER_HUNK)[0]
            if rng.random() < 0.5 and at < len(content):
                k = min(k, len(content) - at)
                content[at : at + k] = [new_line(rng) for _ in range(k)]
            elif len(content) < target:
                content[at:at] = [new_line(rng) for _ in range(k)]
            else:
                del content[at : at + k]

    def blob(self, path: str) -> bytes:
        content = self.files[path]
        return content if isinstance(content, bytes) else ("\n".join(content) + "\n").encode()


class _Stream:
    """A fast-import stream written straight into the ``git fast-import`` process's stdin."""

    def __init__(self, sink: BinaryIO):
        self.sink = sink
        self.parts: list[bytes] = []
        self.size = 0
        self.mark = 0

    def write(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)
        if self.size > 1 << 20:
            self.flush()

    def flush(self) -> None:
        self.sink.write(b"".join(self.parts))
        self.parts, self.size = [], 0

    def next_mark(self) -> int:
        self.mark += 1
        return self.mark

    def blob(self, data: bytes) -> int:
        mark = self.next_mark()
        self.write(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(data), data))
        return mark

    def commit(
        self,
        ref: str,
        author: tuple[str, int, str],
        committer: tuple[str, int, str],
        message: str,
        parents: list[int],
        changes: dict[str, int | None],
    ) -> int:
        mark = self.next_mark()
        msg = message.encode()
        lines = [
            f"commit {ref}",
            f"mark :{mark}",
            "author {} {} {}".format(*author),
            "committer {} {} {}".format(*committer),
            f"data {len(msg)}",
        ]
        head = ("\n".join(lines) + "\n").encode() + msg + b"\n"
        tail = []
        if parents:
            tail.append(f"from :{parents[0]}")
            tail.extend(f"merge :{p}" for p in parents[1:])
        for path, blob in changes.items():
            tail.append(f"D {path}" if blob is None else f"M 100644 :{blob} {path}")
        self.write(head + ("\n".join(tail) + "\n\n").encode())
        return mark


def _body(rng: random.Random, pr: int) -> str:
    """A PR description of real length: log-normal around the real median, sometimes a template."""
    want = min(_BODY_MAX_CHARS, int(rng.lognormvariate(0, _BODY_SIGMA) * _BODY_MEDIAN_CHARS))
    lines: list[str] = []
    while sum(len(line) + 1 for line in lines) < want:
        lines.append(_text_line(rng))
    if rng.random() < 0.4:
        lines += ["", *(t.format(n=pr - rng.randint(1, 50)) for t in _PR_TEMPLATE)]
    return "\n".join(lines).strip("\n")


def _first_parent_times(spec: RepoSpec, rng: random.Random) -> list[int]:
    """Evenly spaced committer times with jitter: strictly increasing, the same density for any size."""
    times = []
    for i in range(spec.commits):
        base = spec.end - (spec.commits - i) * spec.interval
        times.append(int(base + rng.uniform(-0.45, 0.45) * spec.interval))
    return times


def _generate_stream(spec: RepoSpec, stream: _Stream) -> int:
    """Write the whole history; returns the number of commits (side-branch commits included)."""
    rng = random.Random(f"fc-bench-{spec.seed}-{spec.label}-{spec.commits}")
    people = [(f"{_ident(rng).replace('_', ' ').title()}", rng.choice(_TZ_OFFSETS)) for _ in range(60)]
    github = "GitHub <noreply@github.com>"

    def who(person: tuple[str, str]) -> str:
        name = person[0]
        return f"{name} <{name.lower().replace(' ', '.')}@example.com>"

    tree = _Tree(rng, spec.files)
    times = _first_parent_times(spec, rng)
    root_changes = {path: stream.blob(tree.blob(path)) for path in sorted(tree.files)}
    founder = people[0]
    sig = (who(founder), times[0], founder[1])
    recent = [stream.commit(f"refs/heads/{BRANCH}", sig, sig, "Initial commit", [], root_changes)]
    total, pr = 1, 100

    def edit_paths(paths: list[str]) -> dict[str, int | None]:
        for path in paths:
            tree.edit(path)
        return {path: stream.blob(tree.blob(path)) for path in paths}

    def n_files() -> int:
        return rng.choices(*_FILES_PER_COMMIT)[0]

    for i in range(1, spec.commits):
        when = times[i]
        pr += rng.randint(1, 4)
        kind = rng.choices(list(_COMMIT_KIND_WEIGHTS), weights=list(_COMMIT_KIND_WEIGHTS.values()))[0]
        author = rng.choice(people)
        title = f"{rng.choice(_SUBJECT_VERBS)} {' '.join(rng.choices(_WORDS + _PROSE, k=rng.randint(2, 7)))}"
        body = _body(rng, pr)
        authored = when - rng.randint(60, 14 * 86400)
        if kind == "merge":
            # A 1-3 commit side branch forked from a recent mainline commit, merged with --no-ff.
            fork = recent[-1 - rng.randint(0, min(10, len(recent) - 1))]
            side_changes: dict[str, int | None] = {}
            parent = fork
            side_times = sorted(rng.randint(authored, when - 1) for _ in range(rng.randint(1, 3)))
            for t in side_times:
                changed = edit_paths(tree.pick_paths(n_files()))
                side_changes.update(changed)
                sig = (who(author), t, author[1])
                parent = stream.commit("refs/heads/_side", sig, sig, title, [parent], changed)
                total += 1
            branch = f"{author[0].split()[0].lower()}/{'-'.join(title.lower().split()[:3])}"
            message = f"Merge pull request #{pr} from {branch}\n\n{title}\n\n{body}\n"
            committer = (github, when, "+0000")
            mark = stream.commit(
                f"refs/heads/{BRANCH}",
                (who(author), when, author[1]),
                committer,
                message,
                [recent[-1], parent],
                side_changes,
            )
        else:
            changes = edit_paths(tree.pick_paths(n_files()))
            # Files come and go (~2% of commits) around a stationary count.
            if rng.random() < 0.02:
                if len(tree.files) < spec.files + rng.randint(-10, 10):
                    new = tree.add_file()
                    changes[new] = stream.blob(tree.blob(new))
                elif (gone := tree.delete_file()) is not None:
                    changes[gone] = None
            if kind == "squash":
                message = f"{title} (#{pr})\n\n{body}\n" if body else f"{title} (#{pr})\n"
                if rng.random() < 0.3:
                    maintainer = rng.choice(people[:8])
                    committer = (who(maintainer), when, maintainer[1])
                else:
                    committer = (github, when, "+0000")
                author_sig = (who(author), authored, author[1])  # the PR was written before it merged
            else:
                message = f"{title}\n\n{body}\n" if body else f"{title}\n"
                committer = author_sig = (who(author), when, author[1])
            mark = stream.commit(f"refs/heads/{BRANCH}", author_sig, committer, message, [recent[-1]], changes)
        total += 1
        recent.append(mark)
        del recent[:-16]
    stream.write(b"done\n")
    stream.flush()
    return total


def _git(git_dir: Path, *args: str) -> str:
    proc = subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, env=git_env(), check=True)
    return proc.stdout.decode().strip()


def ensure_repo(spec: RepoSpec, workdir: Path) -> tuple[Path, dict]:
    """The generated bare repository for ``spec``, built once and cached under ``workdir``."""
    target = workdir / spec.key / "source.git"
    info_file = target.parent / "generated.json"
    if target.exists() and info_file.exists():
        return target, {**json.loads(info_file.read_text()), "cached": True}
    shutil.rmtree(target.parent, ignore_errors=True)
    target.parent.mkdir(parents=True)
    tmp = Path(tempfile.mkdtemp(prefix=".gen-", dir=target.parent))
    try:
        started = time.perf_counter()
        _git(tmp, "init", "--quiet", "--bare")
        proc = subprocess.Popen(
            ["git", f"--git-dir={tmp}", "fast-import", "--quiet", "--done"], stdin=subprocess.PIPE, env=git_env()
        )
        assert proc.stdin is not None
        try:
            total = _generate_stream(spec, _Stream(proc.stdin))
        finally:
            proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError(f"git fast-import failed ({proc.returncode})")
        _git(tmp, "update-ref", "-d", "refs/heads/_side")
        _git(tmp, "symbolic-ref", "HEAD", f"refs/heads/{BRANCH}")
        imported = time.perf_counter()
        # fast-import deltas each blob against its previous version, so the newest blobs sit at the
        # end of delta chains up to 50 deep; a server (GitHub) repacks with the newest objects as
        # bases. Repack the same way so the mirror's clone gets a production-like pack.
        _git(tmp, "repack", "-a", "-d", "-f", "-q")
        first_parent = int(_git(tmp, "rev-list", "--first-parent", "--count", BRANCH))
        assert first_parent == spec.commits, (first_parent, spec.commits)
        info = {
            "commits": total,
            "first_parent_commits": first_parent,
            "seconds": round(time.perf_counter() - started, 2),
            "fast_import_seconds": round(imported - started, 2),
            "pack_mib": round(sum(p.stat().st_size for p in (tmp / "objects" / "pack").glob("*.pack")) / 2**20, 1),
        }
        tmp.rename(target)
        info_file.write_text(json.dumps(info))
        return target, {**info, "cached": False}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- the measured work ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Month:
    key: str  # a partition key, e.g. 2024-12-01
    start: datetime
    end: datetime

    @classmethod
    def of(cls, text: str) -> Month:
        start = datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)
        end = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
        return cls(start.strftime("%Y-%m-%d"), start, end)


def pipeline(mirror: Path, repo_name: str, month: Month, branch: str = BRANCH) -> list[dict]:
    """What the ``merge_commits`` and ``patches`` assets do for one repository-month."""
    rows = merged_changes.merge_commit_rows(mirror, repo_name, branch, month.key, month.start, month.end)
    return patches.patch_rows(mirror, rows, BENCHMARK_DIR, ASV_CONF)


def baseline(mirror: Path, month: Month, branch: str = BRANCH) -> bytes:
    """One plain ``git log -p --numstat`` over the same first-parent window, output read and dropped."""
    return run_git(
        mirror,
        [
            "log",
            "--first-parent",
            "--diff-merges=first-parent",
            "-p",
            "--numstat",
            "--no-renames",  # the pipeline's diff-tree uses --no-renames: the same diffs
            f"--since=@{int(month.start.timestamp())}",
            f"--until=@{int(month.end.timestamp()) - 1}",
            f"refs/heads/{branch}",
            "--",
        ],
    )


_COMMIT_LINE = re.compile(rb"^commit ([0-9a-f]{40})$", re.MULTILINE)
_NUMSTAT_LINE = re.compile(rb"^(\d+|-)\t(\d+|-)\t", re.MULTILINE)


def check_same_commits(rows: list[dict], log: bytes, label: str) -> dict:
    """The pipeline's rows must be exactly the baseline's first-parent commits, with the same line counts."""
    bad = [r for r in rows if r["status"] != "ok"]
    assert not bad, f"{label}: failed rows: {bad[:3]}"
    log_shas = [m.decode() for m in _COMMIT_LINE.findall(log)]
    row_shas = [r["merge_commit_sha"] for r in rows]
    assert len(row_shas) == len(log_shas), f"{label}: pipeline found {len(row_shas)} commits, git log {len(log_shas)}"
    assert set(row_shas) == set(log_shas), f"{label}: pipeline and git log disagree on the commits"
    numstat = [(a, d) for a, d in _NUMSTAT_LINE.findall(log) if a != b"-"]
    log_lines = sum(int(a) + int(d) for a, d in numstat)
    row_lines = sum(r["additions"] + r["deletions"] for r in rows)
    assert row_lines == log_lines, f"{label}: changed lines differ: pipeline {row_lines}, git log {log_lines}"
    styles: dict[str, int] = {}
    for r in rows:
        styles[r["merge_style"]] = styles.get(r["merge_style"], 0) + 1
    return {"commits": len(rows), "changed_lines": row_lines, "styles": dict(sorted(styles.items()))}


@dataclass
class Case:
    name: str
    run: Callable[[], object]
    commits: int = 0
    times: list[float] | None = None

    def stats(self) -> dict:
        times = self.times or []
        median = statistics.median(times)
        return {
            "case": self.name,
            "commits": self.commits,
            "median_ms": round(median * 1e3, 2),
            "best_ms": round(min(times) * 1e3, 2),
            "us_per_commit": round(median * 1e6 / self.commits, 1) if self.commits else None,
            "times_ms": [round(t * 1e3, 2) for t in times],
        }


def measure(cases: list[Case], repeats: int) -> None:
    """A warm-up run of every case, then ``repeats`` rounds that run each case once (interleaved)."""
    for case in cases:
        case.run()
        case.times = []
    for _ in range(repeats):
        for case in cases:
            started = time.perf_counter()
            case.run()
            case.times.append(time.perf_counter() - started)


@contextmanager
def git_timer() -> Iterator[dict[str, float]]:
    """Time spent inside ``run_git`` (the subprocess, pipe included) per calling module."""
    spent = {"merge_commit_rows": 0.0, "patch_rows": 0.0}

    def timed(label: str) -> Callable:
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return run_git(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - started

        return wrapper

    with (
        mock.patch.object(merged_changes, "run_git", timed("merge_commit_rows")),
        mock.patch.object(patches, "run_git", timed("patch_rows")),
    ):
        yield spent


def breakdown(mirror: Path, repo_name: str, month: Month, repeats: int, branch: str = BRANCH) -> dict:
    """Median seconds of each stage, split into the git subprocess and the Python around it."""
    samples: dict[str, list[float]] = {k: [] for k in ("log_git", "log_py", "diff_git", "diff_py")}
    for _ in range(repeats):
        with git_timer() as spent:
            t0 = time.perf_counter()
            rows = merged_changes.merge_commit_rows(mirror, repo_name, branch, month.key, month.start, month.end)
            t1 = time.perf_counter()
            patches.patch_rows(mirror, rows, BENCHMARK_DIR, ASV_CONF)
            t2 = time.perf_counter()
        samples["log_git"].append(spent["merge_commit_rows"])
        samples["log_py"].append(t1 - t0 - spent["merge_commit_rows"])
        samples["diff_git"].append(spent["patch_rows"])
        samples["diff_py"].append(t2 - t1 - spent["patch_rows"])
    return {k: round(statistics.median(v) * 1e3, 2) for k, v in samples.items()}


def walked_commits(mirror: Path, month: Month, branch: str = BRANCH) -> int:
    """First-parent commits the pipeline's ``git log`` formats (its window starts WALK_SLACK early)."""
    since = int((month.start - merged_changes.WALK_SLACK).timestamp())
    out = run_git(
        mirror,
        [
            "rev-list",
            "--first-parent",
            "--count",
            f"--since=@{since}",
            f"--until=@{int(month.end.timestamp())}",
            branch,
        ],
    )
    return int(out)


# --- reporting ----------------------------------------------------------------------------------------


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(label: str, a: dict, b: dict, target: float | None) -> dict:
    median, best = a["median_ms"] / b["median_ms"], a["best_ms"] / b["best_ms"]
    ok = None if target is None else median <= target
    return {"ratio": label, "median": round(median, 2), "best": round(best, 2), "target": target, "ok": ok}


def report(stats: dict, checks: dict, ratios: list[dict], splits: dict) -> str:
    cases = markdown_table(
        ["case", "commits", "log records", "median ms", "best ms", "µs / commit"],
        [
            [
                c["case"],
                c["commits"],
                checks[name]["walked"] if c is pair[0] else c["commits"],
                c["median_ms"],
                c["best_ms"],
                c["us_per_commit"],
            ]
            for name, pair in stats.items()
            for c in pair
        ],
    )
    verdict = {True: "yes", False: "**NO**", None: "—"}
    targets = markdown_table(
        ["ratio (of medians)", "median", "best", "target", "met"],
        [
            [r["ratio"], r["median"], r["best"], "—" if r["target"] is None else f"≤ {r['target']}", verdict[r["ok"]]]
            for r in ratios
        ],
    )
    split = markdown_table(
        ["pipeline month", "git log ms", "python (log) ms", "git diff-tree ms", "python (patches) ms", "merge styles"],
        [
            [
                name,
                s["log_git"],
                s["log_py"],
                s["diff_git"],
                s["diff_py"],
                ", ".join(f"{k} {v}" for k, v in checks[name]["styles"].items()),
            ]
            for name, s in splits.items()
        ],
    )
    note = (
        f"`log records`: first-parent commits the pipeline's git log formats (its walk starts "
        f"{merged_changes.WALK_SLACK.days} days before the month). Commit shas and changed-line totals are asserted "
        "equal between the pipeline and the baseline."
    )
    return "\n\n".join([cases, targets, split, note])


def machine() -> dict:
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git": git_version,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 / 200 commits and 2 repeats (a smoke test)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fc-bench"), help="cache of generated repositories")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--repeats", type=int, help="timed runs per case (default 5, 2 with --quick)")
    parser.add_argument("--large", type=int, help="first-parent commits of the large history (default 20000)")
    parser.add_argument("--small", type=int, help="first-parent commits of the small history (default 1000)")
    parser.add_argument("--years", type=float, default=5.0, help="span of the large history (default 5)")
    parser.add_argument("--files", type=int, default=150, help="files in the initial tree (default 150)")
    parser.add_argument("--end", default="2024-12-31", help="day the histories end (default 2024-12-31)")
    parser.add_argument("--month", default="2024-12", help="the recent month measured (default 2024-12)")
    parser.add_argument("--mid-month", default="2022-06", help="the month in the middle (default 2022-06)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--real",
        action="append",
        default=[],
        metavar="NAME=PATH[:BRANCH]@YYYY-MM",
        help="also measure a real mirror month, e.g. pydata/xarray=/work/.mirror/pydata+xarray/repo:main@2024-01;\n"
        "the path is mirrored with sync_mirror first, as production does (repeatable)",
    )
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the large-mirror pipeline month")
    args = parser.parse_args(argv)
    args.large = args.large or (2000 if args.quick else 20000)
    args.small = args.small or (200 if args.quick else 1000)
    args.repeats = args.repeats or (2 if args.quick else 5)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    end = int(datetime.strptime(args.end, "%Y-%m-%d").replace(hour=23, minute=59, tzinfo=UTC).timestamp())
    interval = args.years * YEAR_SECONDS / args.large
    specs = {
        "large": RepoSpec("large", args.large, interval, end, args.files, args.seed),
        "small": RepoSpec("small", args.small, interval, end, args.files, args.seed),
    }
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"# Mining benchmark ({'quick' if args.quick else 'full'}): workdir {args.workdir}")
    print(f"machine: {json.dumps(machine())}\n")

    generation, mirrors = {}, {}
    for label, spec in specs.items():
        source, info = ensure_repo(spec, args.workdir)
        state = f"generated in {info['seconds']:.1f}s ({info['fast_import_seconds']:.1f}s of it fast-import)"
        if info["cached"]:
            state = f"cached (generated in {info['seconds']:.1f}s)"
        print(
            f"{label}: {spec.commits} first-parent commits ({info['commits']} in all), {info['pack_mib']} MiB pack, "
            f"{state} -> {source}"
        )
        started = time.perf_counter()
        synced = sync_mirror(args.workdir / spec.key / "cache", f"fcbench/{label}", str(source), BRANCH)
        info["mirror_seconds"] = round(time.perf_counter() - started, 2)
        print(f"  mirror {synced.action} in {info['mirror_seconds']:.1f}s -> {synced.path}")
        generation[label], mirrors[label] = info, synced.path

    recent, mid = Month.of(args.month), Month.of(args.mid_month)
    windows = {
        "large-recent": (mirrors["large"], "fcbench/large", recent, BRANCH),
        "small-recent": (mirrors["small"], "fcbench/small", recent, BRANCH),
        "large-mid": (mirrors["large"], "fcbench/large", mid, BRANCH),
    }
    for real in args.real:
        name, _, rest = real.partition("=")
        where, _, month_text = rest.rpartition("@")
        path, _, branch = where.partition(":")
        started = time.perf_counter()
        synced = sync_mirror(args.workdir / "real-cache", name, str(Path(path).resolve()), branch or None)
        print(f"real {name}: mirror {synced.action} in {time.perf_counter() - started:.1f}s -> {synced.path}")
        windows[f"real {name}"] = (synced.path, name, Month.of(month_text), synced.default_branch)

    # Correctness first: the pipeline finds exactly the baseline's commits and changed lines.
    checks = {}
    for name, (mirror, repo, month, branch) in windows.items():
        checks[name] = check_same_commits(pipeline(mirror, repo, month, branch), baseline(mirror, month, branch), name)
        checks[name]["walked"] = walked_commits(mirror, month, branch)
        assert checks[name]["commits"] > 0, f"{name}: no commits in {month.key}; check --month / --end"

    pairs: dict[str, tuple[Case, Case]] = {}
    for name, (mirror, repo, month, branch) in windows.items():
        n, label = checks[name]["commits"], f"{name} {month.key[:7]}"
        pairs[name] = (
            Case(f"pipeline {label}", lambda m=mirror, r=repo, w=month, b=branch: pipeline(m, r, w, b), n),
            Case(f"baseline {label}", lambda m=mirror, w=month, b=branch: baseline(m, w, b), n),
        )
    cases = [case for pair in pairs.values() for case in pair]
    print(f"\ntiming: 1 warm-up + {args.repeats} interleaved repeats of {len(cases)} cases ...")
    measure(cases, args.repeats)
    stats = {name: (p.stats(), b.stats()) for name, (p, b) in pairs.items()}
    splits = {
        name: breakdown(mirror, repo, month, args.repeats, branch)
        for name, (mirror, repo, month, branch) in windows.items()
    }
    (large_p, large_b), (small_p, small_b), (mid_p, mid_b) = (stats[k] for k in list(windows)[:3])
    rm, mm = recent.key[:7], mid.key[:7]
    ratios = [
        ratio(f"pipeline / baseline, large, {rm}", large_p, large_b, TARGET_PIPELINE_OVER_BASELINE),
        ratio(f"pipeline / baseline, large, {mm}", mid_p, mid_b, TARGET_PIPELINE_OVER_BASELINE),
        ratio(f"pipeline / baseline, small, {rm}", small_p, small_b, TARGET_PIPELINE_OVER_BASELINE),
        ratio(f"pipeline large / small, {rm}", large_p, small_p, TARGET_LARGE_OVER_SMALL),
        ratio(f"baseline large / small, {rm} (git alone, no target)", large_b, small_b, None),
    ]
    for name in list(windows)[3:]:
        real_p, real_b = stats[name]
        month_text = windows[name][2].key[:7]
        ratios.append(
            ratio(f"pipeline / baseline, {name}, {month_text}", real_p, real_b, TARGET_PIPELINE_OVER_BASELINE)
        )
    print()
    print(report(stats, checks, ratios, splits))

    if args.profile:
        mirror, repo, month, _branch = windows["large-recent"]
        profiler = cProfile.Profile()
        profiler.runcall(pipeline, mirror, repo, month)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(20)

    if args.json:
        payload = {
            "mode": "quick" if args.quick else "full",
            "machine": machine(),
            "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "generation": generation,
            "checks": checks,
            "results": [c for pair in stats.values() for c in pair],
            "ratios": ratios,
            "breakdown_ms": splits,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0 if all(r["ok"] is not False for r in ratios) else 1


if __name__ == "__main__":
    sys.exit(main())
