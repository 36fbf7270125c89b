"""sample-org/fastmath: prime helpers; ``asv.conf.json`` at the repository root.

History: squash-merged PRs (``(#N)`` subjects), a genuine speed-up (trial division -> sieve of
Eratosthenes), an empty "Trigger CI" commit, a docs-only typo fix and a version bump.
"""

from __future__ import annotations

from formulacode_assets.sample.plan import Commit, RepoSpec, Step
from formulacode_assets.sample.repositories.common import ALICE, BOB, CAROL, DAVE, GITHUB, GITIGNORE, dedent, pyproject

_PRIMES_V1 = dedent(
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

_IS_PRIME = dedent(
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

_PRIMES_V2 = _PRIMES_V1 + _IS_PRIME

_PRIMES_V3 = (
    dedent(
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
    + _IS_PRIME
)


def _package_init(version: str, with_is_prime: bool) -> str:
    names = "is_prime, primes_below" if with_is_prime else "primes_below"
    return dedent(
        f'''
        """fastmath: small prime-number helpers."""

        from fastmath.primes import {names}

        __version__ = "{version}"
        '''
    )


_ASV = dedent(
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

_BENCH_V1 = dedent(
    """
    from fastmath.primes import primes_below


    class PrimesSuite:
        def setup(self):
            self.n = 20000

        def time_primes_below(self):
            primes_below(self.n)
    """
)

_BENCH_V2 = _BENCH_V1.replace(
    "from fastmath.primes import primes_below", "from fastmath.primes import is_prime, primes_below"
) + ("\n    def time_is_prime(self):\n        is_prime(1_000_003)\n")

_TESTS = dedent(
    """
    from fastmath.primes import primes_below


    def test_primes_below():
        assert primes_below(2) == []
        assert primes_below(30) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    """
)

_README_TYPO = dedent(
    """
    # fastmath

    Fast prime numbre helpers for Python.

        pip install .

    Benchmarks use [airspeed velocity](https://asv.readthedocs.io): run `asv run` in the
    repository root.  See `docs/` for more.
    """
)
_README = _README_TYPO.replace("numbre", "number")

_DOCS_TYPO = dedent(
    """
    # fastmath documenation

    `primes_below(n)` returns every prime strictly below `n`.
    """
)
_DOCS = _DOCS_TYPO.replace("documenation", "documentation")

SPEC = RepoSpec(
    name="sample-org/fastmath",
    steps=(
        Step(
            kind="initial",
            commit=Commit(
                message="Initial commit",
                author=ALICE,
                authored="2024-01-03T10:00:00+00:00",
                files={
                    ".gitignore": GITIGNORE,
                    "README.md": _README_TYPO,
                    "docs/index.md": _DOCS_TYPO,
                    "pyproject.toml": pyproject("fastmath", "0.1.0", "Small prime-number helpers."),
                    "asv.conf.json": _ASV,
                    "fastmath/__init__.py": _package_init("0.1.0", with_is_prime=False),
                    "fastmath/primes.py": _PRIMES_V1,
                    "benchmarks/__init__.py": "",
                    "benchmarks/bench_primes.py": _BENCH_V1,
                    "tests/test_primes.py": _TESTS,
                },
            ),
        ),
        Step(
            kind="feature",
            pr_number=1,
            commit=Commit(
                message="Add is_prime helper (#1)\n\n* Add is_prime\n* Benchmark is_prime\n",
                author=BOB,
                authored="2024-01-16T15:20:00+00:00",
                committer=GITHUB,
                committed="2024-01-17T09:00:00+00:00",
                files={
                    "fastmath/primes.py": _PRIMES_V2,
                    "fastmath/__init__.py": _package_init("0.1.0", with_is_prime=True),
                    "benchmarks/bench_primes.py": _BENCH_V2,
                },
            ),
        ),
        Step(
            kind="speedup",
            pr_number=2,
            commit=Commit(
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
                files={"fastmath/primes.py": _PRIMES_V3},
            ),
        ),
        Step(
            kind="empty",
            commit=Commit(
                message="Trigger CI",
                author=ALICE,
                authored="2024-02-12T08:30:00+00:00",
                allow_empty=True,
            ),
        ),
        Step(
            kind="docs_only",
            pr_number=3,
            commit=Commit(
                message="Fix typo in README (#3)",
                author=DAVE,
                authored="2024-02-20T11:00:00+00:00",
                committer=GITHUB,
                committed="2024-02-21T10:15:00+00:00",
                files={"README.md": _README, "docs/index.md": _DOCS},
            ),
        ),
        Step(
            kind="maintenance",
            commit=Commit(
                message="Bump version to 0.2.0",
                author=ALICE,
                authored="2024-03-05T16:00:00+00:00",
                files={
                    "pyproject.toml": pyproject("fastmath", "0.2.0", "Small prime-number helpers."),
                    "fastmath/__init__.py": _package_init("0.2.0", with_is_prime=True),
                },
            ),
        ),
    ),
)
