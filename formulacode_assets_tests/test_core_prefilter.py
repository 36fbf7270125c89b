"""The recall-first pre-filter on real-looking commit messages, in both directions."""

import pytest

from formulacode_assets.core.classification.prefilter import (
    PrefilterLimits,
    maintenance_signal,
    performance_signal,
    prefilter,
)

# pandas' PR template: full of "tests" and "linting", present in almost every pandas PR body.
PANDAS_TEMPLATE = """\
- [ ] closes #xxxx (Replace xxxx with the GitHub issue number)
- [x] [Tests added and passed](https://pandas.pydata.org/docs/dev/development/contributing_codebase.html\
#writing-tests) if fixing a bug or adding a new feature
- [x] All [code checks passed](https://pandas.pydata.org/docs/dev/development/contributing_codebase.html#pre-commit).
- [ ] Added [type annotations](https://pandas.pydata.org/docs/dev/development/contributing_codebase.html#type-hints) \
to new arguments/methods/functions.
- [x] Added an entry in the latest `doc/source/whatsnew/vX.X.X.rst` file if fixing a bug or adding a new feature."""


def change(title: str, body: str = "", **overrides) -> dict:
    row = {
        "title": title,
        "body": body,
        "status": "ok",
        "reason": None,
        "n_files": 2,
        "additions": 40,
        "deletions": 12,
        "patch": "diff --git a/pkg/core.py b/pkg/core.py\n",
        "patch_chars": 1_500,
        "docs_only": False,
        "bench_only": False,
        "touches_core": True,
    }
    return row | overrides


# Titles of real performance PRs (numpy / pandas / scipy / scikit-learn style): all must pass.
PERFORMANCE_TITLES = [
    "PERF: faster groupby.rank for large groups",
    "PERF: Avoid unnecessary copy in DataFrame.__getitem__ with a boolean mask",
    "BUG/PERF: fix quadratic behaviour in Series.isin",
    "ENH: Release the GIL in scipy.spatial.cKDTree.query",
    "ENH: vectorize np.unique for object arrays",
    "ENH: Cythonize rolling window aggregations",
    "scipy.sparse: reduce memory usage of csr_matrix.sum",
    "PERF: cache the result of _get_codes",
    "MAINT: speed up np.median on small arrays",
    "BLD: enable -O3 optimization flags for the C extensions",
    "ENH: use SIMD intrinsics for np.sort on AVX512",
    "ENH: parallelize pairwise_distances with threadpoolctl",
    "Reduce import time of scipy.stats by loading distributions lazily",
    "Lower latency of read_parquet on many small row groups",
    "Remove redundant validation in Index.get_loc hot path",
    "Use Numba JIT for the rolling apply engine",
    "GPU support for kmeans via CUDA kernels",
    "Fix O(n^2) behaviour in MultiIndex.from_tuples",
    "Improve throughput of the CSV tokenizer",
    "Avoid allocations in Series.map when the mapper is a dict",
    "DOC: explain the performance characteristics of np.einsum",  # maintenance title, but a perf signal
]

# Perf PRs whose titles carry no keyword at all: they pass because nothing says "maintenance".
UNMARKED_TITLES = [
    "Use collections.Counter in word_counts",
    "MAINT: use PyArray_MultiplyList in reshape",
    "REF: use np.searchsorted in IntervalIndex.get_indexer",
    "Only visit the 8 candidate cells in neighbours()",
]

MAINTENANCE_TITLES = [
    "DOC: fix typo in read_csv docstring",
    "Fix typo in README",
    "TST: add tests for GH#51234",
    "Add regression tests for merge_asof with by keys",
    "CI: pin pytest to <8 on the 32-bit job",
    "Bump version to 1.26.0",
    "REL: prepare 1.12.0 release notes",
    "MAINT: bump actions/checkout from 3 to 4",
    "STY: apply ruff format to pandas/core",
    'Revert "ENH: add engine keyword to to_csv"',
    "chore: update pre-commit hooks",
    "BLD: update pyproject.toml build requirements",
    "Merge branch 'main' into feature-x",
    "Fix flaky test_rolling_apply on windows",
    "Update changelog for v2.1",
    "DEPS: drop support for Python 3.9",
    "Trigger CI",
]


@pytest.mark.parametrize("title", PERFORMANCE_TITLES)
def test_performance_prs_pass_with_their_signal(title):
    result = prefilter(change(title))
    assert result.passed, result.reason
    assert result.reason.startswith("performance signal")


@pytest.mark.parametrize("title", UNMARKED_TITLES)
def test_unmarked_prs_pass_because_nothing_says_maintenance(title):
    result = prefilter(change(title))
    assert result.passed and result.reason == "kept for judging: a code change whose title is not maintenance"


@pytest.mark.parametrize("title", MAINTENANCE_TITLES)
def test_maintenance_prs_are_rejected_with_the_signal_named(title):
    result = prefilter(change(title))
    assert not result.passed
    assert "maintenance signal in the title" in result.reason and "no performance signal" in result.reason


def test_a_performance_signal_in_the_body_is_enough():
    body = "The take path allocated a temporary per chunk; this makes take 3x faster on 1M rows."
    result = prefilter(change("CLN: rework the take implementation for nullable arrays", body))
    assert result.passed and "faster" in result.reason


def test_pr_template_boilerplate_in_the_body_does_not_reject():
    # Maintenance words are only read from the title: templates would otherwise reject every pandas PR.
    assert maintenance_signal(PANDAS_TEMPLATE)  # the template itself reads as maintenance...
    result = prefilter(change("REF: use np.searchsorted in IntervalIndex.get_indexer", PANDAS_TEMPLATE))
    assert result.passed  # ...but it is only body text


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"docs_only": True}, "docs-only change"),
        ({"bench_only": True}, "benchmark-only change"),
        ({"n_files": 0, "additions": 0, "deletions": 0, "patch": "", "patch_chars": 0}, "empty change"),
        ({"status": "failed", "reason": "unreadable objects: missing blob"}, "upstream status failed"),
    ],
)
def test_changes_that_cannot_be_performance_work_never_pass(overrides, reason):
    result = prefilter(change("PERF: 10x faster everything", **overrides))
    assert not result.passed and result.reason.startswith(reason)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"additions": 3_000, "deletions": 1_000}, "4000 changed lines"),
        ({"n_files": 500}, "500 files"),
        ({"patch_chars": 20_000}, "20000 patch characters"),
    ],
)
def test_default_size_limits_are_exclusive(overrides, fragment):
    result = prefilter(change("PERF: faster join", **overrides))
    assert not result.passed and fragment in result.reason and result.reason.startswith("too large to judge")


def test_size_limits_are_configurable():
    big = change("PERF: faster join", additions=5_000, deletions=0, n_files=600, patch_chars=90_000)
    assert not prefilter(big).passed
    assert prefilter(big, PrefilterLimits(max_changed_lines=10_000, max_files=1_000, max_patch_chars=100_000)).passed
    small = change("PERF: faster join", additions=90, deletions=10)
    assert not prefilter(small, PrefilterLimits(max_changed_lines=100)).passed


def test_patch_length_falls_back_to_the_patch_when_patch_chars_is_missing():
    row = change("PERF: faster join", patch="x" * 25_000, patch_chars=None)
    assert "25000 patch characters" in prefilter(row).reason


def test_signals_name_what_matched():
    assert performance_signal("Speed up primes_below with a sieve") == "speed: 'Speed up'"
    assert performance_signal("Vectorise neighbour lookup") == "vectorize: 'Vectorise'"
    assert maintenance_signal("Bump version to 0.2.0") == "version bump: 'Bump'"
    assert performance_signal(None) is None and maintenance_signal("") is None
    # Words that merely contain a signal do not count.
    assert performance_signal("Update copyright header; add Copyright year") is None
    assert maintenance_signal("Support docstring_parser objects in the registry") is None
