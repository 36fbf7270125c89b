"""Docker builds of compiled projects: a C extension linking GEOS, system packages from the mapping, reuse.

A generated two-commit repository whose asv matrix names the conda library ``geos`` and whose C
extension includes ``geos_c.h`` and calls ``GEOSversion()``. Both commits go through the context
synthesizer with the Docker validator (the locally bootstrapped Debian base): the first starts
cold (no system-packages image, an empty uv cache volume), the second reuses what the first left.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from dataclasses import replace

import pytest

from formulacode_assets.core.contracts import CONTEXTS
from formulacode_assets.core.environments.build_scripts import render_template
from formulacode_assets.core.environments.docker_validator import system_image_tag
from formulacode_assets.core.environments.install_analysis import Interpreter, analyze_install
from formulacode_assets.core.environments.registry import ContextRegistry
from formulacode_assets.core.environments.synthesis import ContextSynthesizer, ContextTarget, SynthesisSettings
from formulacode_assets.core.environments.system_packages import system_packages_for_analysis
from formulacode_assets.core.environments.validation import ValidationRequest
from formulacode_assets.core.publishing.builder import ImagePublisher, PublishSettings
from formulacode_assets.resources.docker_engine import DockerEngineResource
from formulacode_assets_tests.docker_fixtures import (  # noqa: F401 - docker_host is a fixture
    BASE_IMAGE,
    docker_host,
    host_ca_bundle,
    mirror_of,
)
from formulacode_assets_tests.gitbuilder import RepoBuilder

REPO = "test/geoslib"
PACKAGES = ["libgeos-dev", "libhdf5-dev"]  # from the matrix keys geos, hdf5
BUILD_STEPS = ("system-packages", "repository", "build")  # the toolchain is built before timing

ASV_CONF = """\
{
    "version": 1,
    "project": "geoslib",
    "repo": ".",
    "branches": ["main"],
    "environment_type": "conda",
    // conda libraries: PyPI's "geos" is an unrelated web app; hdf5 is not used by the extension, it
    // makes the apt layer the second commit reuses weigh more than the compile's noise on a busy machine
    "matrix": {"geos": [""], "hdf5": [""]},
    "benchmark_dir": "benchmarks",
    "env_dir": ".asv/env",
    "results_dir": ".asv/results",
}
"""

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "geoslib"
version = "0.1.0"
requires-python = ">=3.8"
dependencies = []

[tool.setuptools]
packages = ["geoslib"]
"""

SETUP_PY = """\
from setuptools import Extension, setup

setup(ext_modules=[Extension("geoslib._geos", ["src/geosmodule.c"], libraries=["geos_c"])])
"""

C_SOURCE = """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <geos_c.h>

static PyObject *geos_version(PyObject *self, PyObject *unused) {
    return PyUnicode_FromString(GEOSversion());
}
%(extra_function)s
static PyMethodDef methods[] = {
    {"geos_version", geos_version, METH_NOARGS, "the linked GEOS version"},
    %(extra_entry)s
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_geos", NULL, -1, methods};

PyMODINIT_FUNC PyInit__geos(void) { return PyModule_Create(&module); }
"""

EXTRA_FUNCTION = """\
static PyObject *geos_major(PyObject *self, PyObject *unused) {
    return PyLong_FromLong(GEOS_VERSION_MAJOR);
}
"""

BENCH = """\
from geoslib import geos_version


def time_geos_version():
    geos_version()


def track_geos_version_length():
    return len(geos_version())
"""


def _sources(second: bool) -> dict[str, str]:
    extra = {"extra_function": EXTRA_FUNCTION, "extra_entry": '{"geos_major", geos_major, METH_NOARGS, "major"},'}
    plain = {"extra_function": "", "extra_entry": ""}
    return {
        "asv.conf.json": ASV_CONF,
        "pyproject.toml": PYPROJECT,
        "setup.py": SETUP_PY,
        "src/geosmodule.c": C_SOURCE % (extra if second else plain),
        "geoslib/__init__.py": "from geoslib._geos import geos_version\n"
        + ("from geoslib._geos import geos_major\n" if second else ""),
        "benchmarks/__init__.py": "",
        "benchmarks/bench_geos.py": BENCH,
    }


def _validator(docker_host, **settings):  # noqa: F811 - pytest fixture injection
    engine = DockerEngineResource(
        base_url=docker_host, base_image=BASE_IMAGE, extra_ca_certs=host_ca_bundle(), step_timeout_s=180, **settings
    )
    return engine.validator()


def _build_seconds(row: dict) -> float:
    steps = json.loads(row["step_times"])
    return sum(steps.get(name, 0.0) for name in BUILD_STEPS)


@pytest.fixture(scope="module")
def geos_run(docker_host, tmp_path_factory):  # noqa: F811 - pytest fixture injection
    """Both commits through the synthesizer, the first one cold; ``(rows, image Python, timings)``."""
    import docker.errors

    tmp = tmp_path_factory.mktemp("geos")
    volume = f"fc-uv-cache-test-{uuid.uuid4().hex[:8]}"  # an empty cache: the first commit starts cold
    validator = _validator(docker_host, build_timeout_s=600, uv_cache_volume=volume)
    started = time.monotonic()
    toolchain = validator.toolchain_image("3")
    toolchain_s = time.monotonic() - started
    ((minor, version),) = validator.toolchain_pythons(toolchain).items()  # the Debian base has one python3
    with contextlib.suppress(docker.errors.ImageNotFound):  # the apt layer too: built by the first commit
        validator.client.images.remove(system_image_tag(toolchain, PACKAGES), force=True)

    repo = RepoBuilder(tmp / "geoslib")
    first = repo.commit("C extension linking GEOS", _sources(False), date="2024-01-10T12:00:00Z")
    second = repo.commit("Expose the GEOS major version", _sources(True), date="2024-01-20T12:00:00Z")
    synthesizer = ContextSynthesizer(
        registry=ContextRegistry(tmp / "registry.sqlite"),
        validator=validator,
        mirror_path=lambda name: mirror_of(repo),
        interpreters=[Interpreter(version, f"/usr/bin/python{minor}")],  # what the image has
        settings=SynthesisSettings(repeats=1, max_agent_attempts=0),
        cache_dir=tmp / "cache",
    )
    targets = [ContextTarget(REPO, sha, (), (), None) for sha in (first, second)]
    try:
        by_sha = {row["base_sha"]: row for row in synthesizer.rows_for_month("2024-01-01", targets)}
        # The published image of the first context builds on the same system-packages image.
        publisher = ImagePublisher(
            client=validator.client,
            unavailable_reason=None,
            toolchains=validator,
            registry=None,
            context_dir=tmp / "image-contexts",
            mirror_path=lambda name: mirror_of(repo),
            settings=PublishSettings(build_timeout_s=600, local_namespace="fc-test-geos"),
        )
        (image_row,) = publisher.rows_for_month("2024-01-01", [by_sha[first]])
        with contextlib.suppress(docker.errors.APIError):
            validator.client.images.remove(image_row["image_name"], force=True)
        cached = validator.client.containers.run(
            BASE_IMAGE,
            ["bash", "-c", "find /cache -type f | wc -l"],
            volumes={volume: {"bind": "/cache", "mode": "ro"}},
            network_mode="none",
            remove=True,
        )
    finally:
        validator.client.volumes.get(volume).remove(force=True)
        validator.client.close()
    rows = [by_sha[first], by_sha[second]]  # in commit order
    timings = {"toolchain_s": round(toolchain_s, 1), "uv_cache_files": int(cached.decode().strip())}
    yield rows, version, timings, image_row


def test_a_c_extension_needing_a_system_library_builds_with_it_from_the_mapping(geos_run):
    rows, version, _, image_row = geos_run
    assert len(rows) == 2
    for row in rows:
        assert row["status"] == "ok", (row["stage_failed"], row["reason"], row["stdout_tail"][-2500:])
        assert row["validator"] == "docker"
        assert row["system_packages"] == PACKAGES, "installed from the mapping and recorded on the row"
        assert row["python_version"] == version and row["python_version_built"] == version
        assert "bench_geos.time_geos_version" in row["benchmarks"]
        # the conda key never reached pip (PyPI's "geos" would have pulled in flask)
        assert not any(pin.split("==")[0].lower() in ("geos", "flask") for pin in row["dependencies"] or [])
    assert image_row["status"] == "built", (image_row.get("reason"), image_row.get("build_log_tail", "")[-1500:])
    stored = CONTEXTS.to_table(rows)  # the rows fit the contract: the column is stored
    assert stored.column("system_packages").to_pylist() == [PACKAGES, PACKAGES]


def test_the_second_commit_of_a_repository_reuses_the_toolchain_system_packages_and_uv_cache(geos_run):
    rows, _, timings, _ = geos_run
    assert all(row["status"] == "ok" for row in rows), [(r["stage_failed"], r["reason"]) for r in rows]
    first, second = (_build_seconds(row) for row in rows)
    steps = [json.loads(row["step_times"]) for row in rows]
    print(f"\ntoolchain {timings['toolchain_s']} s; first commit build {first:.1f} s {steps[0]}")
    print(f"second commit build {second:.1f} s {steps[1]}; uv cache files {timings['uv_cache_files']}")
    assert timings["uv_cache_files"] > 100, "the builds filled the shared uv cache volume"
    assert steps[0]["system-packages"] > 1.0 and steps[1]["system-packages"] < 1.0, "the apt layer is built once"
    # The apt layer (libgeos-dev + libhdf5-dev) is reused; the compile (3-14 s, noisy under load) is not.
    assert second <= 0.6 * first, (first, second)


def test_a_python_version_the_image_lacks_fails_with_a_reason_naming_it(docker_host, tmp_path):  # noqa: F811
    repo = RepoBuilder(tmp_path / "geoslib")
    sha = repo.commit("C extension linking GEOS", _sources(False), date="2024-01-10T12:00:00Z")
    validator = _validator(docker_host, build_timeout_s=600)
    try:
        toolchain = validator.toolchain_image("3")
        pythons = validator.toolchain_pythons(toolchain)
        (own,) = pythons.values()
        analysis = analyze_install(mirror_of(repo), REPO, sha, interpreters=[Interpreter("3.8.18", "/usr/bin/none")])
        assert system_packages_for_analysis(analysis).packages == tuple(PACKAGES)
        request = ValidationRequest(
            repo_name=REPO,
            sha=sha,
            mirror=mirror_of(repo),
            script=render_template(analysis),
            python_version="3.8.18",
            python_path="/usr/bin/none",
            asv=analysis.settings,
            exclude_newer=analysis.resolution_cutoff,
            system_packages=tuple(PACKAGES),
        )
        for wanted, minor in (("3.8.18", "3.8"), ("3.99.0", "3.99")):
            result = validator.validate(replace(request, python_version=wanted), repeats=1)
            assert (result.ok, result.stage_failed) == (False, "sandbox")
            assert f"Python {minor} (chosen by the install analysis) is not available in image {BASE_IMAGE}" in (
                result.reason
            )
            assert own in result.reason, "the reason says what the image has instead"
            assert [s["name"] for s in result.steps] == ["toolchain"], "nothing was built with another Python"
    finally:
        validator.client.close()
