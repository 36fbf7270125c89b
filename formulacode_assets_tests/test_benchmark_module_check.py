"""Discovery that survives one benchmark module needing the network: the module is set aside, the rest validate."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

from formulacode_assets.core.environments.local_validator import LocalValidator
from formulacode_assets.core.environments.module_check import (
    IMPORT_DRIVER,
    benchmark_modules,
    failing_modules,
    set_aside,
)
from formulacode_assets.core.environments.registry import ContextRegistry
from formulacode_assets.core.environments.synthesis import ContextSynthesizer, ContextTarget, SynthesisSettings
from formulacode_assets_tests.docker_fixtures import available_interpreters, mirror_of, tiny_asv_repo

# Downloads its data at import, as a networkx benchmark module did: there is no network here.
NEEDS_NETWORK = (
    "import urllib.request\n\n"
    "DATA = urllib.request.urlopen('http://nonexistent.invalid/graph.txt', timeout=5).read()\n\n\n"
    "def time_on_downloaded_data():\n    len(DATA)\n"
)
GOOD = "from tiny import add\n\n\ndef time_add():\n    add(1, 2)\n\n\ndef time_add_more():\n    add(3, 4)\n"


def test_modules_are_listed_like_asv_imports_them_and_failing_ones_are_moved_aside(tmp_path):
    root = tmp_path / "repo" / "benchmarks"
    (root / "sub").mkdir(parents=True)
    (root / "not_a_package").mkdir()
    files = {
        "__init__.py": "",
        "good.py": "X = 1\n",
        "bad.py": "raise ImportError('needs the network\\nsecond line')\n",
        "sub/__init__.py": "raise RuntimeError('broken sub-package')\n",
        "sub/inner.py": "Y = 2\n",
        "not_a_package/ignored.py": "raise SystemExit(1)\n",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    names = [m.name for m in benchmark_modules(root)]
    assert names == ["benchmarks.bad", "benchmarks.good", "benchmarks.sub", "benchmarks.sub.inner"]

    tried = []

    def import_one(module):
        tried.append(module)
        proc = subprocess.run(
            [sys.executable, "-c", IMPORT_DRIVER, str(root), module], capture_output=True, text=True, timeout=60
        )
        return proc.returncode == 0, proc.stdout

    failing, unchecked = failing_modules(root, import_one, time_left=lambda: 60)
    assert failing == {
        "benchmarks.bad": "ImportError: needs the network second line",  # one line for the row
        "benchmarks.sub": "RuntimeError: broken sub-package",
    }
    assert unchecked == [] and "benchmarks.sub.inner" not in tried  # its package failed already
    excluded = set_aside(root, failing, tmp_path / "aside")
    assert excluded == [
        "benchmarks/bad.py: ImportError: needs the network second line",
        "benchmarks/sub: RuntimeError: broken sub-package",
    ]
    assert [m.name for m in benchmark_modules(root)] == ["benchmarks.good"]
    assert (tmp_path / "aside" / "benchmarks" / "bad.py").exists()

    _, unchecked = failing_modules(root, import_one, time_left=lambda: 0)
    assert unchecked == ["benchmarks.good"]  # out of time: nothing imported, nothing excluded


def test_a_suite_with_a_module_that_needs_the_network_validates_on_the_other_modules(tmp_path):
    repo, sha = tiny_asv_repo(
        tmp_path / "tiny", bench=GOOD, extra={"benchmarks/bench_download.py": NEEDS_NETWORK}, packaged=True
    )
    merge = repo.commit(
        "perf: add", {"tiny/__init__.py": "def add(a, b):\n    return b + a\n"}, date="2024-01-11T00:00:00Z"
    )
    synthesizer = ContextSynthesizer(
        registry=ContextRegistry(tmp_path / "registry.sqlite"),
        validator=LocalValidator(work_root=tmp_path / "work", module_import_timeout=60),
        mirror_path=lambda name: mirror_of(repo),
        interpreters=available_interpreters(),
        settings=SynthesisSettings(repeats=2, max_agent_attempts=0),
    )
    target = ContextTarget("test/tiny", sha, (merge,), (1,), datetime(2024, 1, 11, tzinfo=UTC))
    row = synthesizer.context_row("2024-01-01", target)
    assert row["status"] == "ok", (row["reason"], row.get("stdout_tail", "")[-1500:])
    assert row["benchmarks"] == ["bench_tiny.time_add", "bench_tiny.time_add_more"]
    assert len(row["benchmarks_excluded"]) == 1
    excluded = row["benchmarks_excluded"][0]
    assert excluded.startswith("benchmarks/bench_download.py: URLError") and "\n" not in excluded
    steps = json.loads(row["step_times"])
    assert {"discovery-1", "module-imports", "discovery-1-without-excluded", "run-1", "run-2"} <= set(steps)
