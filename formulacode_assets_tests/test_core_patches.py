"""Diffs, stats and bench/docs/core flags on real repositories, including unreadable objects."""

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from formulacode_assets.core.mining.merged_changes import merge_commit_rows
from formulacode_assets.core.mining.mirror import sync_mirror
from formulacode_assets.core.mining.patches import classify_change, diffs_against_base, file_category, patch_rows

FEB = (datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))


def _history(repo):
    """A repository with asv under benchmarks/ and one change of each kind in February."""
    repo.commit(
        "Initial",
        {
            "pkg/core.py": "def f():\n    return 1\n",
            "README.md": "hi\n",
            "asv.conf.json": "{}\n",
            "benchmarks/bench.py": "def time_f(): pass\n",
            "docs/index.rst": "Docs\n",
        },
        date="2024-01-05T00:00:00Z",
    )
    repo.commit(
        "Faster f (#1)",
        {"pkg/core.py": "def f():\n    return 2\n", "tests/test_core.py": "x\n"},
        date="2024-02-02T00:00:00Z",
    )
    repo.commit("Docs typo (#2)", {"README.md": "hello\n", "docs/index.rst": "Docs!\n"}, date="2024-02-03T00:00:00Z")
    repo.commit("Add benchmark (#3)", {"benchmarks/bench2.py": "def time_g(): pass\n"}, date="2024-02-04T00:00:00Z")
    repo.commit("Trigger CI", date="2024-02-05T00:00:00Z")
    repo.commit("Tune asv (#4)", {"asv.conf.json": '{"x": 1}\n'}, date="2024-02-06T00:00:00Z")
    repo.commit("Remove docs page (#5)", {"docs/index.rst": None}, date="2024-02-07T00:00:00Z")


def _rows(git_dir: Path):
    changes = merge_commit_rows(git_dir, "o/r", "main", "2024-02-01", *FEB)
    return {r["title"]: r for r in patch_rows(git_dir, changes, "benchmarks", "asv.conf.json")}


def test_patch_stats_and_flags(repo):
    _history(repo)
    rows = _rows(repo.path / ".git")
    speed = rows["Faster f"]
    assert speed["status"] == "ok"
    assert speed["files_changed"] == ["pkg/core.py", "tests/test_core.py"]
    assert (speed["n_files"], speed["additions"], speed["deletions"]) == (2, 2, 1)
    assert speed["touches_core"] and not speed["docs_only"] and not speed["bench_only"]
    assert "-    return 1\n+    return 2" in speed["patch"]
    assert "| `pkg/core.py` | modified | core | 1 | 1 |" in speed["file_change_summary"]
    assert "| `tests/test_core.py` | added | tests | 1 | 0 |" in speed["file_change_summary"]

    docs = rows["Docs typo"]
    assert docs["docs_only"] and not docs["touches_core"] and not docs["bench_only"]

    bench = rows["Add benchmark"]
    assert bench["bench_only"] and not bench["touches_core"] and not bench["docs_only"]

    empty = rows["Trigger CI"]
    assert (empty["n_files"], empty["patch"], empty["status"]) == (0, "", "ok")
    assert not (empty["bench_only"] or empty["docs_only"] or empty["touches_core"])

    conf = rows["Tune asv"]
    assert conf["touches_asv_conf"] and conf["bench_only"]

    removed = rows["Remove docs page"]
    assert removed["deletions"] == 1 and "deleted" in removed["file_change_summary"]


def test_one_batched_diff_matches_git_show_per_commit(repo):
    _history(repo)
    git_dir = repo.path / ".git"
    shas = repo.git("rev-list", "--first-parent", "main").split()
    pairs = [(sha, repo.git("rev-parse", f"{sha}^1") if i < len(shas) - 1 else None) for i, sha in enumerate(shas)]
    diffs = diffs_against_base(git_dir, pairs)
    for sha, base in pairs[:-1]:
        expected = repo.git("diff", "--no-renames", base, sha)
        assert diffs[sha].patch.strip() == expected.strip()


def test_unusual_paths_and_binary_files(repo):
    repo.commit("Initial", {"a.py": "1\n"}, date="2024-01-05T00:00:00Z")
    (repo.path / "data.bin").write_bytes(b"\x00\x01\x02")
    repo.git("add", "data.bin")
    repo.commit(
        "Odd paths (#1)",
        {"src/tab\tname.py": "x\n", "src/ünï cödé.py": "y\n", 'q"uote.py': "z\n"},
        date="2024-02-02T00:00:00Z",
    )
    (row,) = _rows(repo.path / ".git").values()
    assert sorted(row["files_changed"]) == sorted(["data.bin", 'q"uote.py', "src/tab\tname.py", "src/ünï cödé.py"])
    assert "| `data.bin` | added | core | bin | bin |" in row["file_change_summary"]
    assert row["additions"] == 3


def test_missing_blob_fails_only_that_change(repo, tmp_path):
    _history(repo)
    mirror = sync_mirror(tmp_path / "cache", "o/r", str(repo.path)).path
    # Corrupt the mirror: unpack it, then delete the blob that "Docs typo" introduced.
    docs_sha = repo.git("log", "--format=%H", "--grep", "Docs typo", "main")
    blob = repo.git("rev-parse", f"{docs_sha}:README.md")
    packs = list((mirror / "objects" / "pack").glob("*.pack"))
    for pack in packs:
        moved = pack.rename(tmp_path / pack.name)
        subprocess.run(["git", f"--git-dir={mirror}", "unpack-objects", "-q"], stdin=moved.open("rb"), check=True)
        pack.with_suffix(".idx").unlink()
    (mirror / "objects" / blob[:2] / blob[2:]).unlink()

    rows = _rows(mirror)
    assert rows["Docs typo"]["status"] == "failed"
    assert "unreadable objects" in rows["Docs typo"]["reason"] and blob[:7] in rows["Docs typo"]["reason"]
    assert rows["Docs typo"].get("patch") is None
    others = [r for title, r in rows.items() if title != "Docs typo"]
    assert len(others) == 5 and all(r["status"] == "ok" for r in others)
    assert rows["Faster f"]["touches_core"]


@pytest.mark.parametrize(
    ("path", "category"),
    [
        ("pkg/core.py", "core"),
        ("src/pkg/_speedups.pyx", "core"),
        ("benchmarks/bench_x.py", "bench"),
        ("asv_bench/asv.conf.json", "bench"),
        ("docs/api.rst", "docs"),
        ("README.md", "docs"),
        ("CHANGELOG", "docs"),
        ("doc/source/conf.py", "docs"),
        ("tests/test_x.py", "tests"),
        ("pkg/tests/test_y.py", "tests"),
        ("pkg/conftest.py", "tests"),
        ("examples/demo.py", "examples"),
        (".github/workflows/ci.yml", "ci"),
        ("tox.ini", "ci"),
        (".gitignore", "ci"),
        ("pyproject.toml", "packaging"),
        ("requirements-dev.txt", "packaging"),
        ("setup.py", "packaging"),
        ("build/lib/pkg/core.py", "build"),
        ("pkg.egg-info/PKG-INFO", "build"),
    ],
)
def test_file_category(path, category):
    assert file_category(path, "benchmarks") == category


def test_classify_change_mixed_and_root_benchmark_dir():
    flags = classify_change(["docs/a.rst", "pkg/x.py"], "benchmarks", "asv.conf.json")
    assert flags.touches_core and not flags.docs_only
    assert flags.categories == {"core": 1, "docs": 1}
    # benchmark_dir may be nested (pandas: asv_bench/benchmarks)
    assert classify_change(["asv_bench/benchmarks/x.py"], "asv_bench/benchmarks", None).bench_only
    assert not classify_change([], "benchmarks", None).bench_only
