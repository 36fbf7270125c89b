"""Context registry: upserts, nearest-earlier lookups, concurrent writers; reuse of the nearest earlier context."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from formulacode_assets.core.environments.local_validator import LocalValidator
from formulacode_assets.core.environments.registry import ContextRegistry, RegisteredContext
from formulacode_assets.core.environments.synthesis import (
    ContextSynthesizer,
    ContextTarget,
    SynthesisSettings,
    attempts_of,
)
from formulacode_assets_tests.docker_fixtures import available_interpreters, mirror_of, tiny_asv_repo


def _context(sha: str, date: str, validator: str = "local", repo: str = "org/pkg", **extra) -> RegisteredContext:
    return RegisteredContext(
        repo_name=repo,
        sha=sha,
        validator=validator,
        commit_date=date,
        build_env_sh=f"#!/usr/bin/env bash\n# {sha}\n",
        script_sha256="x",
        source="template",
        python_version="3.11.7",
        pins=["attrs==23.1.0"],
        benchmarks=["b.time_x"],
        benchmarks_stable=True,
        **extra,
    )


def test_register_get_and_revalidation_keep_history(tmp_path):
    registry = ContextRegistry(tmp_path / "r.sqlite")
    first = registry.register(_context("a" * 40, "2024-01-05T10:00:00+01:00", month="2024-01-01"))
    assert first.commit_date == "2024-01-05T09:00:00+00:00", "stored in UTC"
    assert first.validations == 1 and first.pins == ["attrs==23.1.0"] and first.benchmarks_stable is True
    again = registry.register(_context("a" * 40, "2024-01-05T09:00:00Z", month="2024-02-01"))
    assert again.validations == 2 and again.created_at == first.created_at and again.month == "2024-02-01"
    assert registry.get("org/pkg", "a" * 40, "docker") is None
    registry.register(_context("a" * 40, "2024-01-05T09:00:00Z", validator="docker"))
    assert registry.get("org/pkg", "a" * 40).validator == "docker", "docker is preferred when any will do"
    assert registry.get("org/pkg", "a" * 40, "local").validator == "local"
    assert len(registry.all()) == 2 and registry.to_table().num_rows == 2


def test_nearest_earlier_is_the_latest_commit_before_the_date(tmp_path):
    registry = ContextRegistry(tmp_path / "r.sqlite")
    registry.register(_context("1" * 40, "2023-12-01T00:00:00Z"))
    registry.register(_context("2" * 40, "2024-01-10T00:00:00Z"))
    registry.register(_context("3" * 40, "2024-03-01T00:00:00Z"))
    registry.register(_context("9" * 40, "2024-02-01T00:00:00Z", repo="other/repo"))
    assert registry.nearest_earlier("org/pkg", "2024-02-15T00:00:00Z").sha == "2" * 40
    assert registry.nearest_earlier("org/pkg", "2024-01-10T00:00:00Z").sha == "1" * 40, "strictly earlier"
    assert registry.nearest_earlier("org/pkg", "2023-01-01T00:00:00Z") is None
    assert registry.nearest_earlier("org/pkg", "2024-05-01T00:00:00Z", exclude_sha="3" * 40).sha == "2" * 40


def test_concurrent_threads_all_land(tmp_path):
    path = tmp_path / "r.sqlite"

    def write(i: int) -> None:
        ContextRegistry(path).register(_context(f"{i:040x}", f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(120)))
    assert len(ContextRegistry(path).all()) == 120


def _write_many(path: str, offset: int) -> None:
    registry = ContextRegistry(Path(path))
    for i in range(offset, offset + 40):
        registry.register(_context(f"{i:040x}", "2024-01-01T00:00:00Z", month=f"p{offset}"))


def test_concurrent_processes_all_land(tmp_path):
    path = str(tmp_path / "r.sqlite")
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write_many, args=(path, offset)) for offset in (0, 1000, 2000)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    contexts = ContextRegistry(Path(path)).all()
    assert len(contexts) == 120 and {c.month for c in contexts} == {"p0", "p1000", "p2000"}


def test_a_later_commit_is_first_tried_with_the_nearest_earlier_validated_script(tmp_path):
    repo, first = tiny_asv_repo(tmp_path / "tiny", date="2024-01-10T12:00:00Z")
    second = repo.commit(
        "Faster add", {"tiny/__init__.py": "def add(a, b):\n    return b + a\n"}, date="2024-02-03T00:00:00Z"
    )
    synthesizer = ContextSynthesizer(
        registry=ContextRegistry(tmp_path / "registry.sqlite"),
        validator=LocalValidator(work_root=tmp_path / "work"),
        mirror_path=lambda name: mirror_of(repo),
        interpreters=available_interpreters(),
        settings=SynthesisSettings(repeats=1),
        cache_dir=tmp_path / "cache",
    )
    january = synthesizer.context_row("2024-01-01", ContextTarget("test/tiny", first, ("x",), (), None))
    assert january["status"] == "ok" and january["script_source"] == "template"
    february = synthesizer.context_row("2024-02-01", ContextTarget("test/tiny", second, ("y",), (), None))
    assert february["status"] == "ok" and february["attempts"] == 1
    (attempt,) = attempts_of(february)
    assert attempt["source"] == "registry" and f"test/tiny@{first[:12]}" in attempt["origin"]
    assert february["build_env_sh"] == january["build_env_sh"]
    assert synthesizer.registry.get("test/tiny", second, "local").source == "registry"


def test_a_hanging_candidate_is_stopped_recorded_and_the_next_one_tried(tmp_path):
    repo, first = tiny_asv_repo(tmp_path / "tiny", date="2024-01-10T12:00:00Z")
    second = repo.commit(
        "Tweak", {"tiny/__init__.py": "def add(a, b):\n    return a + b + 0\n"}, date="2024-02-03T00:00:00Z"
    )
    target = ContextTarget("test/tiny", second, ("y",), (), None)

    def synthesizer_for(registry: ContextRegistry, build_timeout: float) -> ContextSynthesizer:
        return ContextSynthesizer(
            registry=registry,
            validator=LocalValidator(work_root=tmp_path / "work", build_timeout=build_timeout),
            mirror_path=lambda name: mirror_of(repo),
            interpreters=available_interpreters(),
            settings=SynthesisSettings(repeats=1),
            cache_dir=tmp_path / "cache",
        )

    # The timeout bounds both candidates, so it is derived from this machine's own time for the
    # template's real build (2-5 s idle, far more on a loaded machine), measured first, with a wide
    # margin; the hanging candidate sleeps far past any such bound.
    measured = synthesizer_for(ContextRegistry(tmp_path / "calibration.sqlite"), 1800).context_row("2024-02-01", target)
    assert measured["status"] == "ok", measured["reason"]
    build_timeout = max(20.0, 4 * sum(a["duration_s"] for a in attempts_of(measured)))
    registry = ContextRegistry(tmp_path / "registry.sqlite")
    hanging = "#!/usr/bin/env bash\necho 'resolving forever'\nsleep 600\n"
    registry.register(replace(_context(first, "2024-01-10T12:00:00Z", repo="test/tiny"), build_env_sh=hanging))
    row = synthesizer_for(registry, build_timeout).context_row("2024-02-01", target)
    hung, template = attempts_of(row)
    assert (hung["source"], hung["stage_failed"]) == ("registry", "timeout")
    assert (
        f"did not finish within {build_timeout:.0f} s" in hung["reason"] and "resolving forever" in hung["stdout_tail"]
    )
    assert hung["duration_s"] < build_timeout + 120  # stopped at the bound, not after the 600 s sleep
    assert (template["source"], template["ok"]) == ("template", True) and row["status"] == "ok"
