"""The recall-first pre-filter on real-looking commit messages, in both directions."""

import pytest

from formulacode_assets.core.classification.prefilter import (
    DOCS_RULE,
    PrefilterLimits,
    is_library_path,
    library_size,
    maintenance_signal,
    patch_for_judge,
    performance_signal,
    prefilter,
)
from formulacode_assets.core.mining.patches import classify_change, file_category

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


def make_patch(files: dict[str, int]) -> str:
    """A unified diff adding ``n`` lines to each path, in the order given."""
    parts = []
    for path, n in files.items():
        lines = "".join(f"+line {i} of {path}\n" for i in range(n))
        parts.append(f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -0,0 +1,{n} @@\n{lines}")
    return "".join(parts)


def sized(title: str, files: dict[str, int]) -> dict:
    patch = make_patch(files)
    return change(
        title,
        patch=patch,
        patch_chars=len(patch),
        n_files=len(files),
        additions=sum(files.values()),
        deletions=0,
        files_changed=list(files),
    )


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"pkg/join.py": 4_000}, "4000 changed lines of library code"),
        ({f"pkg/mod{i}.py": 1 for i in range(500)}, "500 library files"),
    ],
)
def test_default_size_limits_are_exclusive_and_count_library_code(files, fragment):
    result = prefilter(sized("PERF: faster join", files))
    assert not result.passed and fragment in result.reason and result.reason.startswith("too large to judge")
    just_below = {path: n - 1 for path, n in files.items()} if len(files) == 1 else dict(list(files.items())[:499])
    assert prefilter(sized("PERF: faster join", just_below)).passed


def test_tests_data_docs_and_generated_files_do_not_count_toward_the_size():
    files = {
        "pkg/tests/test_join.py": 3_000,
        "pkg/tests/data/expected.csv": 3_000,
        "docs/join.rst": 2_000,
        "pkg/data/lookup.json": 2_000,
        "pkg/_vendor/fastjoin.py": 2_000,
        "pkg/_join_pb2.py": 2_000,
        "asv_bench/benchmarks/join.py": 2_000,
        "pkg/join.py": 40,
    }
    size = library_size(sized("PERF: faster join", files))
    assert (size.lines, size.files) == (40, 1) and size.all_lines == 16_040
    assert prefilter(sized("PERF: faster join", files)).passed


def test_a_long_patch_is_never_skipped_for_its_length():
    row = sized("PERF: faster join", {"pkg/tests/test_join.py": 2_500, "pkg/join.py": 30})
    assert row["patch_chars"] > 60_000
    assert prefilter(row).passed


def test_size_limits_are_configurable():
    big = sized("PERF: faster join", {"pkg/join.py": 5_000})
    assert not prefilter(big).passed
    assert prefilter(big, PrefilterLimits(max_changed_lines=10_000, max_files=1_000)).passed
    small = sized("PERF: faster join", {"pkg/join.py": 100})
    assert not prefilter(small, PrefilterLimits(max_changed_lines=100)).passed


def test_without_a_patch_the_file_list_decides_what_counts():
    only_tests = change("PERF: faster join", patch=None, additions=9_000, files_changed=["tests/test_join.py"])
    assert library_size(only_tests).lines == 0 and prefilter(only_tests).passed
    library = change("PERF: faster join", patch=None, additions=9_000, files_changed=["pkg/join.py"])
    assert not prefilter(library).passed  # the row's totals stand in: an over-estimate, never an under-count


def test_the_judge_reads_library_files_first_within_the_budget():
    patch = make_patch({"pkg/tests/test_join.py": 2_000, "pkg/data/big.csv": 1_000, "pkg/join.py": 5})
    text, truncated = patch_for_judge(patch, 2_000)
    assert truncated and len(text) <= 2_000
    assert text.startswith("diff --git a/pkg/join.py") and "+line 4 of pkg/join.py" in text
    assert text.endswith(f"[... truncated: {len(patch)} characters in all]")
    assert patch_for_judge(patch, len(patch)) == (patch, False)  # fits: untouched, same order


# --- the docs rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "kind", "why"), DOCS_RULE, ids=[row[0] for row in DOCS_RULE])
def test_docs_rule(path, kind, why):
    assert file_category(path, None) == kind, why


def test_license_only_change_is_docs_and_never_judged():
    flags = classify_change(["LICENSE"], None, None)
    assert flags.docs_only and not flags.touches_core
    assert prefilter(change("Update LICENSE year", docs_only=True)).reason == "docs-only change"


def test_txt_under_tests_data_is_test_data_not_docs():
    flags = classify_change(["pkg/tests/data/expected.txt", "tests/data/input.txt"], None, None)
    assert not flags.docs_only and flags.categories == {"tests": 2}


def test_markdown_pr_template_under_github_is_docs_and_workflows_are_ci():
    assert classify_change([".github/PULL_REQUEST_TEMPLATE.md"], None, None).docs_only
    flags = classify_change([".github/PULL_REQUEST_TEMPLATE.md", ".github/workflows/tests.yml"], None, None)
    assert not flags.docs_only and flags.categories == {"ci": 1, "docs": 1}


def test_package_data_txt_is_library_content_but_not_counted_as_code_size():
    assert file_category("skimage/data/orb_descriptor_positions.txt", None) == "core"
    assert not is_library_path("skimage/data/orb_descriptor_positions.txt")
    assert is_library_path("skimage/feature/orb.py")


def test_signals_name_what_matched():
    assert performance_signal("Speed up primes_below with a sieve") == "speed: 'Speed up'"
    assert performance_signal("Vectorise neighbour lookup") == "vectorize: 'Vectorise'"
    assert maintenance_signal("Bump version to 0.2.0") == "version bump: 'Bump'"
    assert performance_signal(None) is None and maintenance_signal("") is None
    # Words that merely contain a signal do not count.
    assert performance_signal("Update copyright header; add Copyright year") is None
    assert maintenance_signal("Support docstring_parser objects in the registry") is None
