"""Candidate scripts: the template, the candidate order, and the DSPy agent loop against a loopback LM."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from formulacode_assets.core.environments.build_scripts import (
    ScriptAgent,
    clean_script,
    initial_candidates,
    render_template,
)
from formulacode_assets.core.environments.install_analysis import InstallAnalysis
from formulacode_assets.core.environments.local_validator import LocalValidator
from formulacode_assets.core.environments.registry import ContextRegistry
from formulacode_assets.core.environments.synthesis import (
    ContextSynthesizer,
    ContextTarget,
    SynthesisSettings,
    attempts_of,
)
from formulacode_assets_tests.docker_fixtures import (
    AGENT_BROKEN_SCRIPT,
    AGENT_FIXED_SCRIPT,
    available_interpreters,
    mirror_of,
    tiny_asv_repo,
)
from formulacode_assets_tests.openai_server import OpenAIServer, Status, dspy_input, dspy_reply, requested_fields


def _analysis(**changes) -> InstallAnalysis:
    values = {
        "repo_name": "org/pkg",
        "sha": "a" * 40,
        "commit_date": "2021-03-04T05:06:07+00:00",
        "asv": {
            "conf_path": "asv_bench/asv.conf.json",
            "conf_dir": "asv_bench",
            "benchmark_dir": "asv_bench/benchmarks",
            "results_dir": "asv_bench/results",
            "project_dir": "",
            "branches": ["main"],
            "pythons": [],
            "matrix": {},
            "build_command": None,
            "install_command": None,
            "environment_type": "virtualenv",
        },
        "package": {"name": "pkg", "requires_python": ">=3.7", "sources": ["setup.py"], "notes": []},
        "python_version": "3.8.18",
        "python_path": "/opt/py/3.8.18/bin/python",
        "python_reason": "newest accepted",
        "dependencies": ["numpy", "attrs"],
        "pins": ["attrs==20.3.0", 'numpy==1.20.1 ; python_version >= "3.7"'],
        "resolution_step": "wheels",
        "resolution_cutoff": "2021-03-04T05:06:07Z",
        "can_install": True,
        "log_tail": "",
    }
    values.update(changes)
    return InstallAnalysis(**values)


def test_template_installs_the_pins_as_of_the_commit_date_then_asv():
    script = render_template(_analysis())
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0, "valid bash"
    assert 'CUTOFF="${FC_EXCLUDE_NEWER:-2021-03-04T05:06:07Z}"' in script
    assert 'PYTHON="${FC_PYTHON:-python3.8}"' in script
    assert 'attrs==20.3.0\nnumpy==1.20.1 ; python_version >= "3.7"\nFC_PINS' in script
    install = next(line for line in script.splitlines() if line.startswith("uv pip install") and "CUTOFF" in line)
    assert install.endswith('-r "$PINS" .')
    assert script.index("--exclude-newer") < script.index("FC_ASV_REQUIREMENT")
    subdir = render_template(_analysis(pins=[], asv={**_analysis().asv, "project_dir": "python"}))
    assert "FC_PINS" not in subdir
    assert any(line.endswith('--exclude-newer "$CUTOFF" "./python"') for line in subdir.splitlines())


@dataclass
class _Registered:
    repo_name: str
    sha: str
    build_env_sh: str
    validator: str


def test_candidates_are_the_nearest_registered_script_then_the_template():
    analysis = _analysis()
    assert [c.source for c in initial_candidates(analysis, None)] == ["template"]
    nearest = _Registered("org/pkg", "b" * 40, "#!/usr/bin/env bash\necho earlier\n", "docker")
    candidates = initial_candidates(analysis, nearest)
    assert [c.source for c in candidates] == ["registry", "template"]
    assert "org/pkg@bbbbbbbbbbbb" in candidates[0].origin
    # The registry's script *is* the template: validated once, not twice.
    same = _Registered("org/pkg", "b" * 40, render_template(analysis), "local")
    assert [c.source for c in initial_candidates(analysis, same)] == ["registry"]


def test_model_answers_are_cleaned_into_scripts():
    assert clean_script("```bash\nset -e\nuv venv x\n```") == "#!/usr/bin/env bash\nset -e\nuv venv x\n"
    assert clean_script("#!/bin/bash\necho hi") == "#!/bin/bash\necho hi\n"


# --- the agent loop -------------------------------------------------------------------------------


def _synthesizer(tmp_path, repo, agent, attempts=3) -> ContextSynthesizer:
    return ContextSynthesizer(
        registry=ContextRegistry(tmp_path / "registry.sqlite"),
        validator=LocalValidator(work_root=tmp_path / "work"),
        mirror_path=lambda name: mirror_of(repo),
        interpreters=available_interpreters(),
        settings=SynthesisSettings(max_agent_attempts=attempts, repeats=1),
        agent=agent,
        cache_dir=tmp_path / "cache",
    )


def test_agent_reads_the_failure_and_its_second_script_validates(tmp_path):
    repo, sha = tiny_asv_repo(tmp_path / "tiny", packaged=False)  # the template cannot pip-install it
    answers = iter([AGENT_BROKEN_SCRIPT, AGENT_FIXED_SCRIPT])
    with OpenAIServer(lambda body: dspy_reply(build_env_sh=next(answers))) as server:
        agent = ScriptAgent.from_endpoint(
            "loopback-model", api_base=server.base_url, api_key="test-key", cache_dir=tmp_path / "cache"
        )
        synthesizer = _synthesizer(tmp_path, repo, agent)
        row = synthesizer.context_row("2024-01-01", ContextTarget("test/tiny", sha, ("m" * 40,), (1,), None))
        requests = list(server.requests)

    attempts = attempts_of(row)
    assert row["status"] == "ok", (row.get("reason"), attempts)
    assert [(a["source"], a["stage_failed"]) for a in attempts] == [
        ("template", "build"),
        ("agent", "discovery"),
        ("agent", None),
    ]
    assert row["script_source"] == "agent" and row["build_env_sh"] == AGENT_FIXED_SCRIPT
    assert row["benchmarks"] == ["bench_tiny.Suite.time_sum", "bench_tiny.time_add"]
    assert all(a["script"] and a["duration_s"] > 0 and "stderr_tail" in a for a in attempts)

    # Two LM calls; the second one was shown the first revision and why it failed.
    assert len(requests) == 2 and requests[0].authorization == "Bearer test-key"
    assert requested_fields(requests[1].body) == ["build_env_sh"]
    assert dspy_input(requests[0].body, "failure").startswith("stage: build")
    assert 'bin/python" "$FC_ASV_REQUIREMENT"' in dspy_input(requests[1].body, "failing_script")
    assert dspy_input(requests[1].body, "failure").startswith("stage: discovery")
    assert "attempt 2 (agent): discovery" in dspy_input(requests[1].body, "previous_attempts")
    assert "no packaging metadata" in dspy_input(requests[1].body, "repository")

    registered = synthesizer.registry.get("test/tiny", sha, "local")
    assert registered.source == "agent" and registered.build_env_sh == AGENT_FIXED_SCRIPT
    assert agent.calls == 2


def test_when_every_script_fails_the_row_says_where_and_why(tmp_path):
    repo, sha = tiny_asv_repo(tmp_path / "tiny", packaged=False)
    with OpenAIServer(lambda body: dspy_reply(build_env_sh=AGENT_BROKEN_SCRIPT)) as server:
        agent = ScriptAgent.from_endpoint("loopback-model", api_base=server.base_url, api_key=None)
        row = _synthesizer(tmp_path, repo, agent, attempts=2).context_row(
            "2024-01-01", ContextTarget("test/tiny", sha, ("m" * 40,), (1,), None)
        )
        assert server.request_count == 2
    assert row["status"] == "failed" and row["stage_failed"] == "discovery"
    assert row["reason"].startswith("2 candidate script(s) failed; last (agent): asv benchmark discovery")
    assert "already failed" in row["reason"], "a repeated script is not validated twice"
    assert [a["stage_failed"] for a in attempts_of(row)] == ["build", "discovery", "agent"]
    assert row["attempts"] == 3 and row["build_env_sh"] == AGENT_BROKEN_SCRIPT


def test_an_unreachable_lm_is_a_recorded_agent_failure(tmp_path):
    repo, sha = tiny_asv_repo(tmp_path / "tiny", packaged=False)
    with OpenAIServer(lambda body: Status(500, "model overloaded")) as server:
        agent = ScriptAgent.from_endpoint("loopback-model", api_base=server.base_url, api_key=None, timeout=10)
        row = _synthesizer(tmp_path, repo, agent, attempts=1).context_row(
            "2024-01-01", ContextTarget("test/tiny", sha, ("m" * 40,), (1,), None)
        )
    assert row["status"] == "failed" and row["stage_failed"] == "build"
    (template, lm) = attempts_of(row)
    assert lm["stage_failed"] == "agent" and "LM call failed" in lm["reason"]
