"""The probe-based benchmark selection runs inside Docker too: a 300-benchmark suite, a one-function change."""

from __future__ import annotations

import time

from formulacode_assets.core.environments.build_scripts import render_template
from formulacode_assets.core.environments.install_analysis import Interpreter, analyze_install
from formulacode_assets.core.environments.validation import ValidationRequest
from formulacode_assets.core.measurement.selection import SelectionSettings, changed_lines
from formulacode_assets.resources.docker_engine import DockerEngineResource
from formulacode_assets_tests.docker_fixtures import (  # noqa: F401 - docker_host is a fixture
    BASE_IMAGE,
    docker_host,
    host_ca_bundle,
    mirror_of,
)
from formulacode_assets_tests.test_measurement_selection import big_repo


def test_docker_selects_the_changed_functions_benchmark_by_coverage_and_times_only_the_selection(
    tmp_path,
    docker_host,  # noqa: F811 - pytest fixture injection
):
    engine = DockerEngineResource(
        base_url=docker_host, base_image=BASE_IMAGE, extra_ca_certs=host_ca_bundle(), step_timeout_s=240
    )
    validator = engine.validator()
    validator.benchmark_timeout = 30
    validator.selection = SelectionSettings(budget_s=30)  # the name-matched module is probed first
    try:
        (version,) = validator.toolchain_pythons(validator.toolchain_image("3")).values()
        repo, base, merge = big_repo(tmp_path / "big")
        analysis = analyze_install(mirror_of(repo), "test/big", base, interpreters=[Interpreter(version, "python3")])
        request = ValidationRequest(
            repo_name="test/big",
            sha=base,
            mirror=mirror_of(repo),
            script=render_template(analysis),
            python_version=analysis.python_version,
            python_path=analysis.python_path,
            asv=analysis.settings,
            exclude_newer=analysis.resolution_cutoff,
            changed_lines=changed_lines(mirror_of(repo), base, [merge]),
        )
        started = time.monotonic()
        result = validator.validate(request, repeats=1)
        elapsed = time.monotonic() - started
    finally:
        validator.client.close()
    assert result.ok, (result.stage_failed, result.reason, result.stdout_tail[-2000:])
    assert len(result.benchmarks) == 300
    assert result.selection["rule"] == "coverage"
    assert result.selection["rules"]["bench_mod_007.time_f3"] == "coverage"
    assert "bench_mod_007.time_f3" in result.benchmarks_with_results
    assert (
        set(result.benchmarks_with_results) <= set(result.benchmarks_selected) and len(result.benchmarks_selected) < 30
    )
    steps = {s["name"]: s["duration_s"] for s in result.steps}
    assert steps["select"] < 60, "the probe stops at its budget"
    print(f"\ndocker selection validation {elapsed:.1f} s: {steps}; selected {result.benchmarks_selected}")
    assert elapsed < 200, "300 benchmarks of >= 1 s each would take over 300 s to run whole"
