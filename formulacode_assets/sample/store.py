"""Embedded sample store: small, real, deterministic git repositories for offline runs.

`ensure_sample_store(root)` builds four bare "origin" repositories under
``root/<SAMPLE_STORE_VERSION>/origins/<owner>/<name>.git`` with the real ``git`` binary and
returns the path of a CSV (``repo_name,url,default_branch``) listing them.  Every author,
committer and date is fixed and no user/system git configuration is read, so the commit SHAs
are identical on every machine and every run.

`SAMPLE_CHANGES` describes every first-parent commit on each ``main`` branch, so tests of
other modules can check what the pipeline should find without running git themselves.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "SAMPLE_CHANGES",
    "SAMPLE_REPOS",
    "SAMPLE_STORE_VERSION",
    "SampleChange",
    "ensure_sample_store",
]

# Bump whenever the generated history (files, messages, dates, people) changes.
SAMPLE_STORE_VERSION = "v1"

CSV_NAME = "repos.csv"
CSV_COLUMNS = ("repo_name", "url", "default_branch")
DEFAULT_BRANCH = "main"


# --------------------------------------------------------------------------------------------
# Public manifest
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# History specification (private)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    name: str
    email: str


ALICE = _Person("Alice Liddell", "alice@example.com")
BOB = _Person("Bob Builder", "bob@example.com")
CAROL = _Person("Carol Danvers", "carol@example.com")
DAVE = _Person("Dave Lister", "dave@example.com")
GITHUB = _Person("GitHub", "noreply@github.com")


@dataclass(frozen=True, eq=False)
class _Commit:
    message: str
    author: _Person
    authored: str  # ISO 8601 with offset
    files: Mapping[str, str] = field(default_factory=dict)
    committed: str | None = None  # defaults to `authored`
    committer: _Person | None = None  # defaults to `author`
    allow_empty: bool = False


@dataclass(frozen=True, eq=False)
class _Step:
    """One first-parent commit on main: a plain commit, or a --no-ff merge of a branch."""

    kind: str
    commit: _Commit  # for merges: the merge commit itself (its `files` must be empty)
    pr_number: int | None = None
    branch: str | None = None
    branch_commits: tuple[_Commit, ...] = ()


@dataclass(frozen=True, eq=False)
class _RepoSpec:
    name: str
    steps: tuple[_Step, ...]


def _d(text: str) -> str:
    """Dedent a triple-quoted literal and drop the newline right after its opening quotes."""
    text = textwrap.dedent(text)
    return text[1:] if text.startswith("\n") else text


def _pyproject(name: str, version: str, description: str) -> str:
    return _d(
        f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "{version}"
        description = "{description}"
        readme = "README.md"
        requires-python = ">=3.8"
        dependencies = []

        [tool.setuptools]
        packages = ["{name}"]
        """
    )


_GITIGNORE = _d(
    """
    __pycache__/
    *.egg-info/
    build/
    dist/
    .asv/
    env/
    results/
    html/
    """
)


# ---- sample-org/fastmath --------------------------------------------------------------------

_FASTMATH_PRIMES_V1 = _d(
    '''
    """Prime number helpers."""


    def primes_below(n):
        """Return the list of primes strictly below ``n`` (naive trial division)."""
        primes = []
        for candidate in range(2, n):
            is_prime = True
            for divisor in range(2, candidate):
                if candidate % divisor == 0:
                    is_prime = False
                    break
            if is_prime:
                primes.append(candidate)
        return primes
    '''
)

_FASTMATH_IS_PRIME = _d(
    '''


    def is_prime(n):
        """Return True if ``n`` is a prime number."""
        if n < 2:
            return False
        divisor = 2
        while divisor * divisor <= n:
            if n % divisor == 0:
                return False
            divisor += 1
        return True
    '''
)

_FASTMATH_PRIMES_V2 = _FASTMATH_PRIMES_V1 + _FASTMATH_IS_PRIME

_FASTMATH_PRIMES_V3 = (
    _d(
        '''
    """Prime number helpers."""


    def primes_below(n):
        """Return the list of primes strictly below ``n``.

        Uses a sieve of Eratosthenes: O(n log log n) instead of trial division.
        """
        if n < 3:
            return []
        sieve = bytearray([1]) * n
        sieve[0] = sieve[1] = 0
        for p in range(2, int(n**0.5) + 1):
            if sieve[p]:
                sieve[p * p :: p] = bytes(len(range(p * p, n, p)))
        return [i for i, flag in enumerate(sieve) if flag]
    '''
    )
    + _FASTMATH_IS_PRIME
)


def _fastmath_init(version: str, with_is_prime: bool) -> str:
    names = "is_prime, primes_below" if with_is_prime else "primes_below"
    return _d(
        f'''
        """fastmath: small prime-number helpers."""

        from fastmath.primes import {names}

        __version__ = "{version}"
        '''
    )


_FASTMATH_ASV = _d(
    """
    {
        "version": 1,
        "project": "fastmath",
        "project_url": "https://github.com/sample-org/fastmath",
        "repo": ".",
        "branches": ["main"],
        "environment_type": "virtualenv",
        "benchmark_dir": "benchmarks",
        "env_dir": ".asv/env",
        "results_dir": ".asv/results",
        "html_dir": ".asv/html"
    }
    """
)

_FASTMATH_BENCH_V1 = _d(
    """
    from fastmath.primes import primes_below


    class PrimesSuite:
        def setup(self):
            self.n = 20000

        def time_primes_below(self):
            primes_below(self.n)
    """
)

_FASTMATH_BENCH_V2 = _FASTMATH_BENCH_V1.replace(
    "from fastmath.primes import primes_below", "from fastmath.primes import is_prime, primes_below"
) + ("\n    def time_is_prime(self):\n        is_prime(1_000_003)\n")

_FASTMATH_TESTS = _d(
    """
    from fastmath.primes import primes_below


    def test_primes_below():
        assert primes_below(2) == []
        assert primes_below(30) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    """
)

_FASTMATH_README_TYPO = _d(
    """
    # fastmath

    Fast prime numbre helpers for Python.

        pip install .

    Benchmarks use [airspeed velocity](https://asv.readthedocs.io): run `asv run` in the
    repository root.  See `docs/` for more.
    """
)
_FASTMATH_README = _FASTMATH_README_TYPO.replace("numbre", "number")

_FASTMATH_DOCS_TYPO = _d(
    """
    # fastmath documenation

    `primes_below(n)` returns every prime strictly below `n`.
    """
)
_FASTMATH_DOCS = _FASTMATH_DOCS_TYPO.replace("documenation", "documentation")

_FASTMATH = _RepoSpec(
    name="sample-org/fastmath",
    steps=(
        _Step(
            kind="initial",
            commit=_Commit(
                message="Initial commit",
                author=ALICE,
                authored="2024-01-03T10:00:00+00:00",
                files={
                    ".gitignore": _GITIGNORE,
                    "README.md": _FASTMATH_README_TYPO,
                    "docs/index.md": _FASTMATH_DOCS_TYPO,
                    "pyproject.toml": _pyproject("fastmath", "0.1.0", "Small prime-number helpers."),
                    "asv.conf.json": _FASTMATH_ASV,
                    "fastmath/__init__.py": _fastmath_init("0.1.0", with_is_prime=False),
                    "fastmath/primes.py": _FASTMATH_PRIMES_V1,
                    "benchmarks/__init__.py": "",
                    "benchmarks/bench_primes.py": _FASTMATH_BENCH_V1,
                    "tests/test_primes.py": _FASTMATH_TESTS,
                },
            ),
        ),
        _Step(
            kind="feature",
            pr_number=1,
            commit=_Commit(
                message="Add is_prime helper (#1)\n\n* Add is_prime\n* Benchmark is_prime\n",
                author=BOB,
                authored="2024-01-16T15:20:00+00:00",
                committer=GITHUB,
                committed="2024-01-17T09:00:00+00:00",
                files={
                    "fastmath/primes.py": _FASTMATH_PRIMES_V2,
                    "fastmath/__init__.py": _fastmath_init("0.1.0", with_is_prime=True),
                    "benchmarks/bench_primes.py": _FASTMATH_BENCH_V2,
                },
            ),
        ),
        _Step(
            kind="speedup",
            pr_number=2,
            commit=_Commit(
                message=(
                    "Speed up primes_below with a sieve of Eratosthenes (#2)\n\n"
                    "primes_below used naive trial division, testing every candidate\n"
                    "against every smaller number (quadratic).  Replace it with a sieve of\n"
                    "Eratosthenes: the results are identical but primes_below(20000) is\n"
                    "more than 100x faster.\n"
                ),
                author=CAROL,
                authored="2024-02-06T18:45:00+00:00",
                committer=GITHUB,
                committed="2024-02-07T14:00:00+00:00",
                files={"fastmath/primes.py": _FASTMATH_PRIMES_V3},
            ),
        ),
        _Step(
            kind="empty",
            commit=_Commit(
                message="Trigger CI",
                author=ALICE,
                authored="2024-02-12T08:30:00+00:00",
                allow_empty=True,
            ),
        ),
        _Step(
            kind="docs_only",
            pr_number=3,
            commit=_Commit(
                message="Fix typo in README (#3)",
                author=DAVE,
                authored="2024-02-20T11:00:00+00:00",
                committer=GITHUB,
                committed="2024-02-21T10:15:00+00:00",
                files={"README.md": _FASTMATH_README, "docs/index.md": _FASTMATH_DOCS},
            ),
        ),
        _Step(
            kind="maintenance",
            commit=_Commit(
                message="Bump version to 0.2.0",
                author=ALICE,
                authored="2024-03-05T16:00:00+00:00",
                files={
                    "pyproject.toml": _pyproject("fastmath", "0.2.0", "Small prime-number helpers."),
                    "fastmath/__init__.py": _fastmath_init("0.2.0", with_is_prime=True),
                },
            ),
        ),
    ),
)


# ---- sample-org/textkit ---------------------------------------------------------------------

_TEXTKIT_TOKENIZE = _d(
    '''
    """Word statistics."""

    PUNCTUATION = ".,;:!?\\"'()"


    def tokenize(text):
        """Split ``text`` into lower-case words."""
        return [word.strip(PUNCTUATION).lower() for word in text.split()]
    '''
)

_TEXTKIT_WORDS_V1 = _TEXTKIT_TOKENIZE + _d(
    '''


    def word_counts(text):
        """Return a dict mapping each word of ``text`` to its number of occurrences."""
        counts = []  # [word, count] pairs, scanned linearly for every word
        for word in tokenize(text):
            for pair in counts:
                if pair[0] == word:
                    pair[1] += 1
                    break
            else:
                counts.append([word, 1])
        return dict(counts)
    '''
)

_TEXTKIT_WORDS_V2A = _TEXTKIT_TOKENIZE.replace(
    '"""Word statistics."""\n', '"""Word statistics."""\n\nfrom collections import Counter\n'
) + _d(
    '''


    def word_counts(text):
        """Return a dict mapping each word of ``text`` to its number of occurrences."""
        return dict(Counter(tokenize(text)))
    '''
)

_TEXTKIT_WORDS_V2 = _TEXTKIT_WORDS_V2A.replace(
    'its number of occurrences."""',
    'its number of occurrences.\n\n    Linear time: uses collections.Counter.\n    """',
)

_TEXTKIT_WORDS_V3 = _TEXTKIT_WORDS_V2.replace(
    "    return [word.strip(PUNCTUATION).lower() for word in text.split()]\n",
    '    words = (word.strip(PUNCTUATION).lower() for word in (text or "").split())\n'
    "    return [word for word in words if word]\n",
)

_TEXTKIT_SENTENCES_V1 = _d(
    '''
    """Sentence statistics."""

    import re

    _END = re.compile(r"[.!?]+")


    def sentence_count(text):
        """Return the number of sentences in ``text``."""
        return len([part for part in _END.split(text) if part.strip()])
    '''
)
_TEXTKIT_SENTENCES_V2 = _TEXTKIT_SENTENCES_V1.replace(
    "    return len(", "    if not text:\n        return 0\n    return len("
)

_TEXTKIT_INIT_V1 = _d(
    '''
    """textkit: tiny text statistics."""

    from textkit.words import tokenize, word_counts

    __version__ = "0.1.0"
    '''
)
_TEXTKIT_INIT_V2 = _TEXTKIT_INIT_V1.replace(
    "from textkit.words", "from textkit.sentences import sentence_count\nfrom textkit.words"
)

_TEXTKIT_ASV = _d(
    """
    {
        "version": 1,
        "project": "textkit",
        "project_url": "https://github.com/sample-org/textkit",
        "repo": "..",
        "branches": ["main"],
        "environment_type": "virtualenv",
        "benchmark_dir": "benchmarks",
        "env_dir": "env",
        "results_dir": "results",
        "html_dir": "html"
    }
    """
)

_TEXTKIT_BENCH_V1 = _d(
    """
    from textkit.words import word_counts


    class WordCounts:
        def setup(self):
            self.text = " ".join(f"word{i % 500}" for i in range(10000))

        def time_word_counts(self):
            word_counts(self.text)
    """
)
_TEXTKIT_BENCH_V2 = _d(
    """
    from textkit.sentences import sentence_count
    from textkit.words import word_counts


    class WordCounts:
        def setup(self):
            self.text = " ".join(f"word{i % 500}" for i in range(10000))

        def time_word_counts(self):
            word_counts(self.text)


    def time_sentence_count():
        sentence_count("One. Two! Three? " * 1000)
    """
)

_TEXTKIT_README_V1 = _d(
    """
    # textkit

    Tiny text statistics for Python.

        pip install .

    Benchmarks live in `asv_bench/` (airspeed velocity): `cd asv_bench && asv run`.
    """
)
_TEXTKIT_README_V2 = _TEXTKIT_README_V1 + _d(
    """

    ## Usage

        >>> from textkit import word_counts
        >>> word_counts("the cat and the hat")
        {'the': 2, 'cat': 1, 'and': 1, 'hat': 1}
    """
)
_TEXTKIT_DOCS_V1 = "# textkit\n\nSee `word_counts` in `textkit/words.py`.\n"
_TEXTKIT_DOCS_USAGE = _d(
    """
    # Usage

    `word_counts(text)` lower-cases words and strips surrounding punctuation.
    """
)

_TEXTKIT = _RepoSpec(
    name="sample-org/textkit",
    steps=(
        _Step(
            kind="initial",
            commit=_Commit(
                message="Initial commit",
                author=ALICE,
                authored="2024-01-05T09:00:00+00:00",
                files={
                    ".gitignore": _GITIGNORE,
                    "README.md": _TEXTKIT_README_V1,
                    "docs/index.md": _TEXTKIT_DOCS_V1,
                    "pyproject.toml": _pyproject("textkit", "0.1.0", "Tiny text statistics."),
                    "textkit/__init__.py": _TEXTKIT_INIT_V1,
                    "textkit/words.py": _TEXTKIT_WORDS_V1,
                    "asv_bench/asv.conf.json": _TEXTKIT_ASV,
                    "asv_bench/benchmarks/__init__.py": "",
                    "asv_bench/benchmarks/bench_words.py": _TEXTKIT_BENCH_V1,
                },
            ),
        ),
        _Step(
            kind="speedup",
            pr_number=4,
            branch="alice/faster-counts",
            branch_commits=(
                _Commit(
                    message="Use collections.Counter in word_counts",
                    author=ALICE,
                    authored="2024-02-01T10:00:00+00:00",
                    files={"textkit/words.py": _TEXTKIT_WORDS_V2A},
                ),
                _Commit(
                    message="Document complexity of word_counts",
                    author=ALICE,
                    authored="2024-02-02T11:30:00+00:00",
                    files={"textkit/words.py": _TEXTKIT_WORDS_V2},
                ),
            ),
            commit=_Commit(
                message=("Merge pull request #4 from alice/faster-counts\n\nUse collections.Counter in word_counts\n"),
                author=BOB,
                authored="2024-02-06T15:00:00+00:00",
                committer=GITHUB,
            ),
        ),
        _Step(
            kind="docs_only",
            pr_number=5,
            branch="bob/usage-docs",
            branch_commits=(
                _Commit(
                    message="Add usage section",
                    author=BOB,
                    authored="2024-02-09T13:00:00+00:00",
                    files={"README.md": _TEXTKIT_README_V2, "docs/usage.md": _TEXTKIT_DOCS_USAGE},
                ),
            ),
            commit=_Commit(
                message="Merge pull request #5 from bob/usage-docs\n\nDocument word_counts usage\n",
                author=ALICE,
                authored="2024-02-13T17:00:00+00:00",
                committer=GITHUB,
            ),
        ),
        _Step(
            kind="fix",
            pr_number=6,
            commit=_Commit(
                message="Handle empty input (#6)\n\ntokenize() now drops empty tokens and accepts None.\n",
                author=CAROL,
                authored="2024-03-01T00:30:00+00:00",
                committer=GITHUB,
                committed="2024-02-29T23:30:00+00:00",
                files={"textkit/words.py": _TEXTKIT_WORDS_V3},
            ),
        ),
        _Step(
            kind="feature",
            pr_number=10,
            branch="carol/sentence-count",
            branch_commits=(
                _Commit(
                    message="Add sentence_count",
                    author=CAROL,
                    authored="2024-03-08T10:00:00+00:00",
                    files={
                        "textkit/sentences.py": _TEXTKIT_SENTENCES_V1,
                        "textkit/__init__.py": _TEXTKIT_INIT_V2,
                    },
                ),
                _Commit(
                    message="Benchmark sentence_count and handle empty text",
                    author=CAROL,
                    authored="2024-03-11T09:15:00+00:00",
                    files={
                        "textkit/sentences.py": _TEXTKIT_SENTENCES_V2,
                        "asv_bench/benchmarks/bench_words.py": _TEXTKIT_BENCH_V2,
                    },
                ),
            ),
            commit=_Commit(
                message=("Merge pull request #10 from carol/sentence-count\n\nAdd sentence_count helper\n"),
                author=ALICE,
                authored="2024-03-12T12:00:00+00:00",
                committer=GITHUB,
            ),
        ),
    ),
)


# ---- sample-org/gridlib ---------------------------------------------------------------------

_GRIDLIB_GRID_HEAD = _d(
    '''
    """Tiny 2-D grid helpers (grids are lists of rows)."""


    def make_grid(rows, cols, fill=0):
        """Return a ``rows`` x ``cols`` grid filled with ``fill``."""
        return [[fill] * cols for _ in range(rows)]
    '''
)

_GRIDLIB_NEIGHBOURS_V1 = _d(
    '''


    def neighbours(grid, row, col):
        """Return the values of the (up to 8) cells adjacent to ``(row, col)``."""
        result = []
        for r in range(len(grid)):
            for c in range(len(grid[r])):
                if (r, c) != (row, col) and abs(r - row) <= 1 and abs(c - col) <= 1:
                    result.append(grid[r][c])
        return result
    '''
)

_GRIDLIB_NEIGHBOURS_V2A = _d(
    '''


    _OFFSETS = tuple((dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0))


    def neighbours(grid, row, col):
        """Return the values of the (up to 8) cells adjacent to ``(row, col)``."""
        result = []
        for r in range(len(grid)):
            for c in range(len(grid[r])):
                if (r - row, c - col) in _OFFSETS:
                    result.append(grid[r][c])
        return result
    '''
)

_GRIDLIB_NEIGHBOURS_V2 = _d(
    '''


    _OFFSETS = tuple((dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0))


    def neighbours(grid, row, col):
        """Return the values of the (up to 8) cells adjacent to ``(row, col)``.

        Only the 8 candidate positions are visited instead of scanning the whole grid.
        """
        rows = len(grid)
        candidates = ((row + dr, col + dc) for dr, dc in _OFFSETS)
        return [grid[r][c] for r, c in candidates if 0 <= r < rows and 0 <= c < len(grid[r])]
    '''
)

_GRIDLIB_TRANSPOSE = _d(
    '''


    def transpose(grid):
        """Return the transpose of a rectangular ``grid``."""
        return [list(column) for column in zip(*grid)]
    '''
)

_GRIDLIB_INIT_V1 = _d(
    '''
    """gridlib: tiny 2-D grid helpers."""
    import sys  # noqa: F401
    from gridlib.grid import *  # noqa: F401,F403
    import os  # noqa: F401

    __version__ = "0.1.0"
    '''
)
_GRIDLIB_INIT_V2 = _d(
    '''
    """gridlib: tiny 2-D grid helpers."""

    from gridlib.grid import make_grid, neighbours

    __all__ = ["make_grid", "neighbours"]
    __version__ = "0.1.0"
    '''
)
_GRIDLIB_INIT_V3 = _d(
    '''
    """gridlib: tiny 2-D grid helpers."""

    from gridlib.grid import make_grid, neighbours, transpose

    __all__ = ["make_grid", "neighbours", "transpose"]
    __version__ = "0.1.0"
    '''
)

# JSON with `//` comments (some after values) and a trailing comma, and no benchmark dir key:
# asv then uses its default, "benchmarks" relative to this file -> benchmarks/benchmarks/.
# The "https://" URLs are a trap for naive comment strippers, as in real asv configs.
_GRIDLIB_ASV = _d(
    """
    // airspeed velocity configuration for gridlib.
    {
        // The version of the config file format.  Do not change.
        "version": 1,

        // The name of the project being benchmarked.
        "project": "gridlib",

        // The project's homepage.
        "project_url": "https://github.com/sample-org/gridlib",

        // The URL or local path of the repository, relative to this file.
        "repo": "..",

        "branches": ["main"], // only benchmark main

        "environment_type": "virtualenv",  // no conda here

        "show_commit_url": "https://github.com/sample-org/gridlib/commit/",
        "env_dir": "env",
        "results_dir": "results",
        "html_dir": "html", // trailing comma on purpose
    }
    """
)

_GRIDLIB_BENCH_V1 = _d(
    """
    from gridlib.grid import make_grid


    class GridSuite:
        def time_make_grid(self):
            make_grid(300, 300)
    """
)
_GRIDLIB_BENCH_V2 = _d(
    """
    from gridlib.grid import make_grid, neighbours


    class GridSuite:
        def setup(self):
            self.grid = make_grid(200, 200, fill=1)

        def time_make_grid(self):
            make_grid(300, 300)

        def time_neighbours(self):
            neighbours(self.grid, 100, 100)
    """
)
_GRIDLIB_BENCH_V3 = _GRIDLIB_BENCH_V2.replace(
    "import make_grid, neighbours", "import make_grid, neighbours, transpose"
) + ("\n    def time_transpose(self):\n        transpose(self.grid)\n")

_GRIDLIB_README = _d(
    """
    # gridlib

    Tiny 2-D grid helpers for Python.

        pip install .

    Benchmarks: `cd benchmarks && asv run` (config in `benchmarks/asv.conf.json`).
    """
)
_GRIDLIB_DOCS_V1 = "# gridlib\n\n`neighbours(grid, row, col)` returns adjacent cell values.\n"
_GRIDLIB_DOCS_V2 = _GRIDLIB_DOCS_V1 + _d(
    """

    ## Coordinates

    Cells are addressed as `(row, col)`, starting at `(0, 0)` in the top-left corner.
    """
)

_GRIDLIB = _RepoSpec(
    name="sample-org/gridlib",
    steps=(
        _Step(
            kind="initial",
            commit=_Commit(
                message="Initial commit",
                author=ALICE,
                authored="2024-01-08T12:00:00+00:00",
                files={
                    ".gitignore": _GITIGNORE,
                    "README.md": _GRIDLIB_README,
                    "docs/index.md": _GRIDLIB_DOCS_V1,
                    "pyproject.toml": _pyproject("gridlib", "0.1.0", "Tiny 2-D grid helpers."),
                    "gridlib/__init__.py": _GRIDLIB_INIT_V1,
                    "gridlib/grid.py": _GRIDLIB_GRID_HEAD + _GRIDLIB_NEIGHBOURS_V1,
                    "benchmarks/asv.conf.json": _GRIDLIB_ASV,
                    "benchmarks/benchmarks/__init__.py": "",
                    "benchmarks/benchmarks/bench_grid.py": _GRIDLIB_BENCH_V1,
                },
            ),
        ),
        _Step(
            kind="bench_only",
            pr_number=7,
            commit=_Commit(
                message="Add benchmark for neighbours (#7)",
                author=BOB,
                authored="2024-02-02T09:00:00+00:00",
                committer=GITHUB,
                committed="2024-02-05T10:00:00+00:00",
                files={"benchmarks/benchmarks/bench_grid.py": _GRIDLIB_BENCH_V2},
            ),
        ),
        _Step(
            kind="speedup",
            pr_number=8,
            branch="carol/vectorise-neighbours",
            branch_commits=(
                _Commit(
                    message="Precompute neighbour offsets",
                    author=CAROL,
                    authored="2024-02-08T10:00:00+00:00",
                    files={"gridlib/grid.py": _GRIDLIB_GRID_HEAD + _GRIDLIB_NEIGHBOURS_V2A},
                ),
                _Commit(
                    message="Only visit the 8 candidate cells",
                    author=CAROL,
                    authored="2024-02-09T16:00:00+00:00",
                    files={"gridlib/grid.py": _GRIDLIB_GRID_HEAD + _GRIDLIB_NEIGHBOURS_V2},
                ),
            ),
            commit=_Commit(
                message=(
                    "Vectorise neighbour lookup (#8)\n\n"
                    "neighbours() scanned the whole grid for every lookup; it now visits only\n"
                    "the 8 adjacent positions.\n"
                ),
                author=BOB,
                authored="2024-02-12T11:00:00+00:00",
                committer=GITHUB,
            ),
        ),
        _Step(
            kind="maintenance",
            commit=_Commit(
                message="Tidy imports",
                author=ALICE,
                authored="2024-02-20T08:00:00+00:00",
                files={"gridlib/__init__.py": _GRIDLIB_INIT_V2},
            ),
        ),
        _Step(
            kind="docs_only",
            commit=_Commit(
                message="Document coordinate convention",
                author=DAVE,
                authored="2024-03-01T01:00:00+02:00",
                committed="2024-03-01T01:30:00+02:00",  # = 2024-02-29T23:30Z: February in UTC
                files={"docs/index.md": _GRIDLIB_DOCS_V2},
            ),
        ),
        _Step(
            kind="feature",
            pr_number=9,
            commit=_Commit(
                message="Add grid transpose (#9)",
                author=CAROL,
                authored="2024-04-09T14:00:00+00:00",
                committer=GITHUB,
                committed="2024-04-10T09:30:00+00:00",
                files={
                    "gridlib/grid.py": (_GRIDLIB_GRID_HEAD + _GRIDLIB_NEIGHBOURS_V2 + _GRIDLIB_TRANSPOSE),
                    "gridlib/__init__.py": _GRIDLIB_INIT_V3,
                    "benchmarks/benchmarks/bench_grid.py": _GRIDLIB_BENCH_V3,
                },
            ),
        ),
    ),
)


# ---- sample-org/notes (no asv.conf.json anywhere) --------------------------------------------

_NOTES = _RepoSpec(
    name="sample-org/notes",
    steps=(
        _Step(
            kind="initial",
            commit=_Commit(
                message="Initial commit",
                author=BOB,
                authored="2024-01-10T10:00:00+00:00",
                files={
                    "README.md": "# notes\n\nMeeting notes.  Not a Python package.\n",
                    "notes/2024-01.md": "# January 2024\n\n- Kick-off.\n",
                },
            ),
        ),
        _Step(
            kind="maintenance",
            commit=_Commit(
                message="Add February notes",
                author=CAROL,
                authored="2024-02-15T10:00:00+00:00",
                files={"notes/2024-02.md": "# February 2024\n\n- Benchmarks review.\n"},
            ),
        ),
    ),
)

_SPECS: tuple[_RepoSpec, ...] = (_FASTMATH, _TEXTKIT, _GRIDLIB, _NOTES)

SAMPLE_REPOS: tuple[str, ...] = tuple(spec.name for spec in _SPECS)


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


def _committed(commit: _Commit) -> str:
    return commit.committed or commit.authored


def _merge_style(step: _Step) -> str:
    if step.branch is not None:
        return "merge"
    return "squash" if _SQUASH_RE.search(_subject(step.commit.message)) else "direct"


def _build_manifest() -> tuple[SampleChange, ...]:
    changes = []
    for spec in _SPECS:
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
    for spec in _SPECS:
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


def _commit_env(base: Mapping[str, str], commit: _Commit) -> dict[str, str]:
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


def _make_commit(work: Path, commit: _Commit, base_env: Mapping[str, str]) -> None:
    env = _commit_env(base_env, commit)
    _write_files(work, commit.files)
    _git(work, ["add", "--all"], env)
    args = ["commit", "--quiet", "--no-verify", "--cleanup=whitespace", "-m", commit.message]
    if commit.allow_empty:
        args.insert(1, "--allow-empty")
    _git(work, args, env)


def _build_origin(spec: _RepoSpec, work: Path, bare: Path, base_env: Mapping[str, str]) -> None:
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
    for spec in _SPECS:
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
        for spec in _SPECS:
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
