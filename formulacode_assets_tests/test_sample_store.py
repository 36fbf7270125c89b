"""Tests for the embedded sample store (real git repositories, offline)."""

from __future__ import annotations

import ast
import csv
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from formulacode_assets.sample import (
    SAMPLE_CHANGES,
    SAMPLE_REPOS,
    SAMPLE_STORE_VERSION,
    builder,
    ensure_sample_store,
)


def _git(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    result = subprocess.run(["git", *args], check=True, capture_output=True, text=True, env=env)
    return result.stdout


@pytest.fixture(scope="module")
def store_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_sample_store(tmp_path_factory.mktemp("sample-store"))


@pytest.fixture(scope="module")
def origins(store_csv: Path) -> dict[str, Path]:
    with store_csv.open(newline="") as handle:
        return {row["repo_name"]: Path(row["url"]) for row in csv.DictReader(handle)}


def _main_shas(csv_path: Path) -> dict[str, str]:
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {row["repo_name"]: _git("-C", row["url"], "rev-parse", "main").strip() for row in rows}


def _first_parent_log(bare: Path) -> list[dict]:
    """Oldest first: sha, parents, subject, UTC committer/author datetimes, committer %ci."""
    out = _git(
        "-C", str(bare), "log", "--first-parent", "--reverse",
        "--format=%H%x1f%P%x1f%s%x1f%ct%x1f%at%x1f%ci%x1e", "main",
    )  # fmt: skip
    commits = []
    for record in out.split("\x1e"):
        if not record.strip():
            continue
        sha, parents, subject, ct, at, ci = record.strip("\n").split("\x1f")
        commits.append(
            {
                "sha": sha,
                "parents": parents.split(),
                "subject": subject,
                "committed": datetime.fromtimestamp(int(ct), UTC),
                "authored": datetime.fromtimestamp(int(at), UTC),
                "ci": ci,
            }
        )
    return commits


def _changes_by_repo() -> dict[str, list]:
    grouped = defaultdict(list)
    for change in SAMPLE_CHANGES:
        grouped[change.repo_name].append(change)
    return grouped


def _load_module_at(bare: Path, sha: str, path: str, tmp_path: Path, label: str):
    source = _git("-C", str(bare), "show", f"{sha}:{path}")
    file = tmp_path / f"{label}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(f"sample_{label}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _best_time(func, *args, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        func(*args)
        best = min(best, time.perf_counter() - start)
    return best


def _commit_by_subject(repo: str, subject_prefix: str, origins: dict[str, Path]) -> dict:
    commits = _first_parent_log(origins[repo])
    return next(c for c in commits if c["subject"].startswith(subject_prefix))


# --------------------------------------------------------------------------------------------


def test_csv_lists_four_bare_origins(store_csv: Path, origins: dict[str, Path]) -> None:
    assert store_csv.name == "repos.csv"
    assert store_csv.parent.name == SAMPLE_STORE_VERSION
    lines = store_csv.read_text().splitlines()
    assert lines[0] == "repo_name,url,default_branch"
    with store_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert tuple(row["repo_name"] for row in rows) == SAMPLE_REPOS
    assert {row["default_branch"] for row in rows} == {"main"}
    for row in rows:
        url = Path(row["url"])
        assert url.is_absolute() and url.name.endswith(".git")
        assert url.is_relative_to(store_csv.parent)
        assert _git("-C", str(url), "rev-parse", "--is-bare-repository").strip() == "true"
        assert re.fullmatch(r"[0-9a-f]{40}", _git("-C", str(url), "rev-parse", "main").strip())
        # Only `main` is published, and nothing points back at the build directory.
        assert _git("-C", str(url), "for-each-ref", "--format=%(refname)").split() == ["refs/heads/main"]
        assert _git("-C", str(url), "remote").strip() == ""
    # No leftovers from the build next to the store.
    assert [p.name for p in store_csv.parent.parent.iterdir()] == [SAMPLE_STORE_VERSION]


def test_clone_of_origin_works(origins: dict[str, Path], tmp_path: Path) -> None:
    clone = tmp_path / "fastmath"
    _git("clone", "--quiet", str(origins["sample-org/fastmath"]), str(clone))
    assert (clone / "asv.conf.json").is_file()
    assert _git("-C", str(clone), "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"


def test_deterministic_shas(store_csv: Path, tmp_path: Path) -> None:
    other = ensure_sample_store(tmp_path / "elsewhere")
    assert other != store_csv
    first, second = _main_shas(store_csv), _main_shas(other)
    assert set(first) == set(SAMPLE_REPOS)
    assert first == second


def test_idempotent_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv_path = ensure_sample_store(tmp_path)
    marker = csv_path.stat().st_mtime_ns

    def no_git(*args, **kwargs):
        raise AssertionError("the sample store was rebuilt")

    monkeypatch.setattr(builder.subprocess, "run", no_git)
    start = time.perf_counter()
    again = ensure_sample_store(tmp_path)
    assert time.perf_counter() - start < 0.5
    assert again == csv_path
    assert csv_path.stat().st_mtime_ns == marker


def test_concurrent_builds_agree(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: ensure_sample_store(tmp_path), range(3)))
    assert len(set(results)) == 1
    assert results[0].is_file()
    assert [p.name for p in tmp_path.iterdir()] == [SAMPLE_STORE_VERSION]


def test_generation_is_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    ensure_sample_store(tmp_path)
    assert time.perf_counter() - start < 5


def test_broken_store_directory_is_replaced(tmp_path: Path) -> None:
    (tmp_path / SAMPLE_STORE_VERSION / "junk").mkdir(parents=True)
    csv_path = ensure_sample_store(tmp_path)
    assert csv_path.is_file()
    assert not (tmp_path / SAMPLE_STORE_VERSION / "junk").exists()


# --------------------------------------------------------------------------------------------


def test_manifest_matches_git(origins: dict[str, Path]) -> None:
    grouped = _changes_by_repo()
    assert tuple(grouped) == SAMPLE_REPOS
    for repo, changes in grouped.items():
        commits = _first_parent_log(origins[repo])
        assert [c["subject"] for c in commits] == [c.subject for c in changes], repo
        for commit, change in zip(commits, changes, strict=True):
            assert len(commit["parents"]) == (2 if change.merge_style == "merge" else 1) or (
                change.kind == "initial" and not commit["parents"]
            )
            assert commit["committed"].strftime("%Y-%m") == change.month
            assert commit["committed"].strftime("%Y-%m-%dT%H:%M:%SZ") == change.committed_at
            assert commit["authored"].strftime("%Y-%m-%dT%H:%M:%SZ") == change.authored_at
            # merge_style / pr_number follow the documented rules.
            squash = re.search(r"\(#(\d+)\)$", change.subject)
            merge = re.match(r"Merge pull request #(\d+) from ", change.subject)
            if len(commit["parents"]) == 2:
                expected_style = "merge"
            elif squash:
                expected_style = "squash"
            else:
                expected_style = "direct"
            assert change.merge_style == expected_style, change
            match = merge or squash
            assert change.pr_number == (int(match.group(1)) if match else None), change
            # Paths changed relative to the first parent.
            diff_args = ["-C", str(origins[repo]), "diff-tree", "-r", "--name-only"]
            if commit["parents"]:
                diff_args += [commit["parents"][0], commit["sha"]]
            else:
                diff_args += ["--root", "--no-commit-id", commit["sha"]]
            assert tuple(sorted(_git(*diff_args).split())) == change.paths, change


def test_committer_dates_monotonic_and_branches_before_merges(origins: dict[str, Path]) -> None:
    for repo, bare in origins.items():
        commits = _first_parent_log(bare)
        dates = [c["committed"] for c in commits]
        assert dates == sorted(dates) and len(set(dates)) == len(dates), repo
        for commit in commits:
            if len(commit["parents"]) != 2:
                continue
            first, second = commit["parents"]
            branch = _git("-C", str(bare), "log", "--format=%ct", f"{first}..{second}").split()
            assert branch, commit["subject"]
            assert all(int(ct) < commit["committed"].timestamp() for ct in branch)


def test_expected_history_shape() -> None:
    months = defaultdict(list)
    for change in SAMPLE_CHANGES:
        months[(change.repo_name, change.month)].append(change)
    fm = {c.subject: c for c in SAMPLE_CHANGES if c.repo_name == "sample-org/fastmath"}
    assert fm["Speed up primes_below with a sieve of Eratosthenes (#2)"].month == "2024-02"
    assert fm["Speed up primes_below with a sieve of Eratosthenes (#2)"].kind == "speedup"
    assert fm["Fix typo in README (#3)"].paths == ("README.md", "docs/index.md")
    assert fm["Trigger CI"].kind == "empty" and fm["Trigger CI"].paths == ()
    assert fm["Bump version to 0.2.0"].month == "2024-03"
    assert fm["Initial commit"].pr_number is None
    feb_textkit = months[("sample-org/textkit", "2024-02")]
    assert {c.kind for c in feb_textkit} == {"speedup", "docs_only", "fix"}
    grid = {c.subject: c for c in SAMPLE_CHANGES if c.repo_name == "sample-org/gridlib"}
    assert grid["Add benchmark for neighbours (#7)"].kind == "bench_only"
    assert all(p.startswith("benchmarks/benchmarks/") for p in grid["Add benchmark for neighbours (#7)"].paths)
    assert grid["Vectorise neighbour lookup (#8)"].merge_style == "merge"
    assert grid["Tidy imports"].merge_style == "direct"
    assert grid["Add grid transpose (#9)"].month == "2024-04"


def test_month_boundary_commits(origins: dict[str, Path]) -> None:
    textkit = _commit_by_subject("sample-org/textkit", "Handle empty input (#6)", origins)
    assert textkit["authored"] == datetime(2024, 3, 1, 0, 30, tzinfo=UTC)
    assert textkit["committed"] == datetime(2024, 2, 29, 23, 30, tzinfo=UTC)
    assert len(textkit["parents"]) == 1
    grid = _commit_by_subject("sample-org/gridlib", "Document coordinate convention", origins)
    assert grid["ci"] == "2024-03-01 01:30:00 +0200"
    assert grid["committed"] == datetime(2024, 2, 29, 23, 30, tzinfo=UTC)


def test_merge_messages(origins: dict[str, Path]) -> None:
    bare = str(origins["sample-org/textkit"])
    sha = _commit_by_subject("sample-org/textkit", "Merge pull request #4", origins)["sha"]
    message = _git("-C", bare, "log", "-1", "--format=%B", sha)
    assert message.rstrip("\n") == (
        "Merge pull request #4 from alice/faster-counts\n\nUse collections.Counter in word_counts"
    )
    assert _git("-C", bare, "log", "-1", "--format=%an <%ae>|%cn <%ce>", sha).strip() == (
        "Bob Builder <bob@example.com>|GitHub <noreply@github.com>"
    )
    speed = _commit_by_subject("sample-org/fastmath", "Speed up primes_below", origins)
    body = _git("-C", str(origins["sample-org/fastmath"]), "log", "-1", "--format=%b", speed["sha"])
    assert "sieve of" in body and "trial division" in body


# --------------------------------------------------------------------------------------------


def _tree(bare: Path, rev: str = "main") -> list[str]:
    return _git("-C", str(bare), "ls-tree", "-r", "--name-only", rev).split()


def test_asv_configs(origins: dict[str, Path]) -> None:
    fastmath = json.loads(_git("-C", str(origins["sample-org/fastmath"]), "show", "main:asv.conf.json"))
    assert fastmath["benchmark_dir"] == "benchmarks" and fastmath["repo"] == "."
    assert fastmath["branches"] == ["main"] and fastmath["project"] == "fastmath"
    assert fastmath["environment_type"] == "virtualenv" and fastmath["version"] == 1

    textkit_bare = origins["sample-org/textkit"]
    textkit = json.loads(_git("-C", str(textkit_bare), "show", "main:asv_bench/asv.conf.json"))
    assert textkit["benchmark_dir"] == "benchmarks" and textkit["repo"] == ".."
    assert "asv_bench/benchmarks/bench_words.py" in _tree(textkit_bare)

    grid_bare = origins["sample-org/gridlib"]
    raw = _git("-C", str(grid_bare), "show", "main:benchmarks/asv.conf.json")
    assert "benchmark_dir" not in raw
    assert re.search(r"^\s*//", raw, re.M), "expected whole-line // comments"
    assert re.search(r'"[^"]*",\s*//', raw), "expected // comments after values"
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    # Strip // comments outside strings, then trailing commas: valid JSON.
    stripped = re.sub(r'("(?:\\.|[^"\\])*")|//[^\n]*', lambda m: m.group(1) or "", raw)
    stripped = re.sub(r",(\s*[}\]])", r"\1", stripped)
    grid = json.loads(stripped)
    assert grid["repo"] == ".." and grid["project"] == "gridlib"
    assert grid["project_url"] == "https://github.com/sample-org/gridlib"
    assert "benchmarks/benchmarks/bench_grid.py" in _tree(grid_bare)

    notes = origins["sample-org/notes"]
    for sha in _git("-C", str(notes), "rev-list", "main").split():
        assert not any(p.endswith("asv.conf.json") for p in _tree(notes, sha))


def test_every_python_file_parses_and_packages_are_installable(origins: dict[str, Path]) -> None:
    for repo in ("sample-org/fastmath", "sample-org/textkit", "sample-org/gridlib"):
        bare = origins[repo]
        package = repo.split("/")[1]
        for commit in _first_parent_log(bare):
            for path in _tree(bare, commit["sha"]):
                if path.endswith(".py"):
                    ast.parse(_git("-C", str(bare), "show", f"{commit['sha']}:{path}"), path)
        files = _tree(bare)
        assert "README.md" in files and any(p.startswith("docs/") for p in files)
        pyproject = _git("-C", str(bare), "show", "main:pyproject.toml")
        assert 'requires = ["setuptools>=61"]' in pyproject
        assert 'build-backend = "setuptools.build_meta"' in pyproject
        assert f'name = "{package}"' in pyproject and 'requires-python = ">=3.8"' in pyproject
        assert "dependencies = []" in pyproject
        bench_sources = [
            _git("-C", str(bare), "show", f"main:{p}") for p in files if "benchmarks/bench_" in p and p.endswith(".py")
        ]
        assert bench_sources and any(re.search(r"def time_\w+", s) for s in bench_sources)


def test_fastmath_speedup_is_genuine(origins: dict[str, Path], tmp_path: Path) -> None:
    bare = origins["sample-org/fastmath"]
    after = _commit_by_subject("sample-org/fastmath", "Speed up primes_below", origins)
    before_sha = after["parents"][0]
    old = _load_module_at(bare, before_sha, "fastmath/primes.py", tmp_path, "primes_old")
    new = _load_module_at(bare, after["sha"], "fastmath/primes.py", tmp_path, "primes_new")
    assert old.primes_below(5000) == new.primes_below(5000)
    assert len(new.primes_below(5000)) == 669
    for n in (0, 1, 2, 3, 4, 30):
        assert old.primes_below(n) == new.primes_below(n)
    slow, fast = _best_time(old.primes_below, 5000), _best_time(new.primes_below, 5000)
    assert fast * 5 <= slow, (slow, fast)


def test_textkit_speedup_is_genuine(origins: dict[str, Path], tmp_path: Path) -> None:
    bare = origins["sample-org/textkit"]
    merge = _commit_by_subject("sample-org/textkit", "Merge pull request #4", origins)
    old = _load_module_at(bare, merge["parents"][0], "textkit/words.py", tmp_path, "words_old")
    new = _load_module_at(bare, merge["sha"], "textkit/words.py", tmp_path, "words_new")
    text = " ".join(f"Word{i % 300}." for i in range(6000))
    assert old.word_counts(text) == new.word_counts(text)
    assert _best_time(new.word_counts, text) * 5 <= _best_time(old.word_counts, text)


def test_gridlib_speedup_is_genuine(origins: dict[str, Path], tmp_path: Path) -> None:
    bare = origins["sample-org/gridlib"]
    merge = _commit_by_subject("sample-org/gridlib", "Vectorise neighbour lookup (#8)", origins)
    old = _load_module_at(bare, merge["parents"][0], "gridlib/grid.py", tmp_path, "grid_old")
    new = _load_module_at(bare, merge["sha"], "gridlib/grid.py", tmp_path, "grid_new")
    grid = [[r * 100 + c for c in range(60)] for r in range(50)]
    for row, col in [(0, 0), (0, 59), (49, 0), (49, 59), (10, 10), (0, 30), (25, 59)]:
        assert old.neighbours(grid, row, col) == new.neighbours(grid, row, col)
    assert _best_time(new.neighbours, grid, 25, 25) * 5 <= _best_time(old.neighbours, grid, 25, 25)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths")
def test_store_directory_is_readable(store_csv: Path) -> None:
    assert store_csv.parent.stat().st_mode & 0o755 == 0o755
