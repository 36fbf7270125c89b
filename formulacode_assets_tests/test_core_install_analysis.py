"""Install analysis: asv settings, package metadata without running code, Python choice, resolution as of a date."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from formulacode_assets.core.environments.install_analysis import (
    AnalysisError,
    Interpreter,
    analyze_install,
    asv_settings,
    choose_python,
    read_package_metadata,
    relaxation_steps,
    resolve_as_of,
)
from formulacode_assets.core.mining.git import run_git
from formulacode_assets.sample import SAMPLE_CHANGES, ensure_sample_store
from formulacode_assets_tests.docker_fixtures import mirror_of, tiny_asv_repo

PYTHONS = [
    Interpreter(v, f"/opt/py/{v}/bin/python") for v in ("2.7.18", "3.6.15", "3.8.18", "3.9.18", "3.11.7", "3.12.1")
]


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


# --- Python ------------------------------------------------------------------------------------


def test_python_is_the_newest_released_well_before_the_commit():
    chosen, why = choose_python(PYTHONS, _at("2024-01-17"), requires_python=">=3.8")
    assert chosen.version == "3.11.7"  # 3.12 came out 3.5 months before: not yet plausible
    assert "released before 2023-07-21" in why
    assert choose_python(PYTHONS, _at("2024-06-01"), requires_python=None)[0].version == "3.12.1"
    assert choose_python(PYTHONS, _at("2021-03-01"), requires_python=None)[0].version == "3.8.18"


def test_python_respects_requires_python_and_asv_pythons():
    assert choose_python(PYTHONS, _at("2024-06-01"), requires_python="<3.10")[0].version == "3.9.18"
    assert choose_python(PYTHONS, _at("2024-06-01"), requires_python=None, asv_pythons=["3.8"])[0].version == "3.8.18"
    chosen, why = choose_python(PYTHONS, _at("2024-06-01"), requires_python=None, asv_pythons=["3.5"])
    assert chosen.version == "3.12.1" and "not available" in why
    # Older than asv supports, or nothing acceptable: an analysis failure with the reason.
    with pytest.raises(AnalysisError, match="requires-python"):
        choose_python(PYTHONS, _at("2024-06-01"), requires_python=">=3.13")
    early, why = choose_python(PYTHONS, _at("2017-01-01"), requires_python=None)
    assert early.version == "3.8.18" and "oldest accepted" in why  # 2.7 / 3.6 are below asv's minimum


# --- metadata ---------------------------------------------------------------------------------


def test_package_metadata_from_pyproject_setup_cfg_and_literal_setup_py(tmp_path):
    meta = read_package_metadata(
        {
            "pyproject.toml": '[build-system]\nrequires = ["setuptools", "cython<3"]\n'
            '[project]\nname = "p"\nrequires-python = ">=3.9"\ndependencies = ["numpy>=1.20", "attrs"]\n',
        }
    )
    assert (meta.name, meta.requires_python) == ("p", ">=3.9")
    assert meta.dependencies == ["numpy>=1.20", "attrs"] and meta.build_requires == ["setuptools", "cython<3"]

    cfg = read_package_metadata(
        {
            "setup.cfg": "[metadata]\nname = q\n[options]\npython_requires = >=3.7\n"
            "install_requires =\n  six\n  pyyaml>=5\n"
        }
    )
    assert (cfg.name, cfg.requires_python, cfg.dependencies) == ("q", ">=3.7", ["six", "pyyaml>=5"])

    marker = tmp_path / "setup_py_ran"
    setup_py = (
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\n"
        "REQUIRES = ['scipy>=1.5', 'numpy']\n"
        "from setuptools import setup\n"
        "setup(name='r', install_requires=REQUIRES, python_requires='>=3.8', extras_require={'x': ['y']})\n"
    )
    meta = read_package_metadata({"setup.py": setup_py})
    assert (meta.name, meta.requires_python, meta.dependencies) == ("r", ">=3.8", ["scipy>=1.5", "numpy"])
    assert not marker.exists(), "setup.py is parsed, never executed"

    dynamic = read_package_metadata({"setup.py": "from setuptools import setup\nsetup(install_requires=deps())\n"})
    assert dynamic.dependencies == [] and "not a literal list" in " ".join(dynamic.notes)
    nothing = read_package_metadata({})
    assert "no packaging metadata" in " ".join(nothing.notes)


def test_asv_settings_read_matrix_repo_and_defaults():
    legacy = asv_settings(
        "asv_bench/asv.conf.json", "asv_bench/benchmarks", {"repo": "..", "matrix": {"numpy": ["1.22"]}}
    )
    assert legacy.project_dir == "" and legacy.matrix == {"numpy": "1.22"}
    assert legacy.results_dir == "asv_bench/results" and legacy.branch == "master"  # asv's defaults
    modern = asv_settings(
        "asv.conf.json",
        "benchmarks",
        {
            "branches": ["main"],
            "repo_subdir": "python",
            "results_dir": ".asv/results",
            "matrix": {"req": {"pip+cython": [], "numpy": [""], "scipy": [None]}, "env": {"X": ["1"]}},
        },
    )
    assert modern.project_dir == "python" and modern.branch == "main" and modern.results_dir == ".asv/results"
    assert modern.matrix == {"cython": "", "numpy": "", "scipy": None}  # asv: [] means [""]


def test_relaxation_goes_from_wheels_only_to_a_later_cutoff():
    steps = relaxation_steps(["numpy>=1.20"], {"scipy": "1.5.4"}, _at("2021-01-01"))
    assert [s[0] for s in steps] == ["wheels", "sdists", "matrix-unpinned", "no-matrix", "unbounded", "later-cutoff"]
    assert steps[0][1] == ["numpy>=1.20", "scipy==1.5.4"] and steps[0][2] == ["--no-build"]
    assert steps[2][1] == ["numpy>=1.20", "scipy"] and steps[3][1] == ["numpy>=1.20"]
    assert steps[4][1] == ["numpy"] and steps[5][3] == _at("2022-01-01")
    # Without a matrix the "matrix-unpinned" step would repeat "sdists": it is dropped.
    assert [s[0] for s in relaxation_steps(["attrs"], {}, _at("2021-01-01"))] == ["wheels", "sdists", "later-cutoff"]


# --- resolution (PyPI) ------------------------------------------------------------------------


def test_dependencies_resolve_as_of_the_commit_date_and_are_cached(tmp_path):
    when = _at("2021-01-01")
    resolution = resolve_as_of(["attrs", "six"], {}, "3.9.18", when, cache_dir=tmp_path)
    assert resolution.ok and resolution.step == "wheels", resolution.log
    assert resolution.pins == ["attrs==20.3.0", "six==1.15.0"]  # the releases current on 2021-01-01
    again = resolve_as_of(["attrs", "six"], {}, "3.9.18", when, cache_dir=tmp_path, uv="/nonexistent/uv")
    assert again.pins == resolution.pins, "the second call is answered from the cache"


def test_unsatisfiable_constraints_are_relaxed_step_by_step(tmp_path):
    resolution = resolve_as_of(["attrs>=99"], {}, "3.9.18", _at("2021-01-01"), cache_dir=tmp_path)
    assert resolution.ok and resolution.step == "unbounded"
    assert resolution.pins == ["attrs==20.3.0"] and resolution.requirements == ["attrs"]
    assert "step wheels: failed" in resolution.log and "step sdists: failed" in resolution.log


# --- whole analysis ---------------------------------------------------------------------------


def test_analysis_of_a_sample_speedup_base(tmp_path):
    csv = ensure_sample_store(tmp_path / "store")
    origin = Path(csv).parent / "origins" / "sample-org" / "gridlib.git"
    (change,) = [c for c in SAMPLE_CHANGES if c.repo_name == "sample-org/gridlib" and c.kind == "speedup"]
    base = run_git(origin, ["rev-list", "-n1", "--first-parent", f"--before={change.committed_at}", "main"])
    base = base.decode().strip()  # the commit before the speed-up landed
    analysis = analyze_install(origin, "sample-org/gridlib", base, interpreters=PYTHONS, cache_dir=tmp_path / "cache")
    assert analysis.settings.conf_path == "benchmarks/asv.conf.json"  # the one with // comments
    assert analysis.settings.benchmark_dir == "benchmarks/benchmarks" and analysis.settings.branch == "main"
    assert analysis.python_version == "3.11.7" and analysis.can_install
    assert analysis.package["requires_python"] == ">=3.8" and analysis.resolution_step == "nothing-to-resolve"
    cached = analyze_install(origin, "sample-org/gridlib", base, interpreters=PYTHONS, cache_dir=tmp_path / "cache")
    assert cached == analysis
    assert "gridlib" in analysis.summary()


def test_commit_without_asv_config_is_an_analysis_error(tmp_path):
    repo, _ = tiny_asv_repo(tmp_path / "tiny")
    sha = repo.commit("Drop asv", {"asv.conf.json": None}, date="2024-02-01T00:00:00Z")
    with pytest.raises(AnalysisError, match="no asv.conf.json"):
        analyze_install(mirror_of(repo), "t/tiny", sha, interpreters=PYTHONS)
    with pytest.raises(AnalysisError, match="cannot read"):
        analyze_install(mirror_of(repo), "t/tiny", "0" * 40, interpreters=PYTHONS)
