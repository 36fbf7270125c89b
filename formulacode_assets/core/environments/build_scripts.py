"""Candidate ``build_env.sh`` scripts: the registry's nearest earlier one, a template, then a DSPy agent.

The script contract (the same for every candidate and every validator):

* it runs with ``bash`` in the repository root, checked out at the base commit (a git checkout whose
  branch is the one asv records against);
* the validator sets ``FC_VENV`` (where the environment must be created), ``FC_PYTHON`` (the
  interpreter to build it from), ``FC_EXCLUDE_NEWER`` (the commit date: install nothing newer),
  ``FC_ASV_CONF`` (the asv config, relative to the root) and ``FC_ASV_REQUIREMENT`` (the asv
  harness to install, e.g. ``asv>=0.6``); ``uv`` is on ``PATH``;
* afterwards ``$FC_VENV/bin/python`` imports the project and ``$FC_VENV/bin/asv`` exists.

The validator, not the script, then runs asv (machine setup, discovery, a quick run): a script
cannot make itself pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from formulacode_assets.core.environments.install_analysis import InstallAnalysis

TEMPLATE_VERSION = "1"
SOURCES = ("registry", "template", "agent")
_TAIL_FOR_PROMPT = 3000


@dataclass(frozen=True)
class Candidate:
    source: str  # registry / template / agent
    script: str
    origin: str  # where it came from, for the attempt log

    @property
    def digest(self) -> str:
        return script_digest(self.script)


def script_digest(script: str) -> str:
    return hashlib.sha256(script.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# The template
# ---------------------------------------------------------------------------------------------

_TEMPLATE = """\
#!/usr/bin/env bash
# build_env.sh for {repo_name} at {sha}
# template v{version}: Python {python_version} ({python_reason})
# dependencies resolved as of {cutoff} (step: {step}, can_install={can_install})
set -euo pipefail
: "${{FC_VENV:?the validator sets FC_VENV}}"
PYTHON="${{FC_PYTHON:-python{python_minor}}}"
CUTOFF="${{FC_EXCLUDE_NEWER:-{cutoff}}}"
export UV_PYTHON_DOWNLOADS=never
uv venv --quiet --python "$PYTHON" "$FC_VENV"
PY="$FC_VENV/bin/python"
{pins_block}uv pip install --python "$PY" --exclude-newer "$CUTOFF" {requirement_args}{project_target}
uv pip install --python "$PY" "${{FC_ASV_REQUIREMENT:-asv>=0.6}}"
"$FC_VENV/bin/asv" --version
"""

_PINS_BLOCK = """\
PINS="$(mktemp)"
cat > "$PINS" <<'FC_PINS'
{pins}
FC_PINS
"""


def render_template(analysis: InstallAnalysis) -> str:
    """The plain recipe: a uv venv from the chosen Python, the resolved pins plus the project, then asv."""
    asv = analysis.settings
    pins = [p for p in analysis.pins if p.strip() and p.strip() != "FC_PINS"]
    pins_block = _PINS_BLOCK.format(pins="\n".join(pins)) if pins else ""
    requirement_args = '-r "$PINS" ' if pins else ""
    project_target = f'"./{asv.project_dir}"' if asv.project_dir else "."
    return _TEMPLATE.format(
        repo_name=analysis.repo_name,
        sha=analysis.sha,
        version=TEMPLATE_VERSION,
        python_version=analysis.python_version,
        python_reason=analysis.python_reason.replace("\n", " "),
        python_minor=".".join(analysis.python_version.split(".")[:2]),
        cutoff=analysis.resolution_cutoff,
        step=analysis.resolution_step,
        can_install=analysis.can_install,
        pins_block=pins_block,
        requirement_args=requirement_args,
        project_target=project_target,
    )


class RegistryContext(Protocol):
    repo_name: str
    sha: str
    build_env_sh: str
    validator: str


def initial_candidates(analysis: InstallAnalysis, nearest: RegistryContext | None) -> list[Candidate]:
    """The nearest earlier validated script of the repository (if any), then the template; no duplicates."""
    candidates = []
    if nearest is not None:
        candidates.append(
            Candidate(
                "registry",
                nearest.build_env_sh,
                f"registry: validated for {nearest.repo_name}@{nearest.sha[:12]} ({nearest.validator})",
            )
        )
    template = render_template(analysis)
    if not candidates or candidates[0].digest != script_digest(template):
        candidates.append(Candidate("template", template, f"template v{TEMPLATE_VERSION}"))
    return candidates


# ---------------------------------------------------------------------------------------------
# The agent
# ---------------------------------------------------------------------------------------------

AGENT_INSTRUCTIONS = """\
You repair build_env.sh, the bash script that builds a Python environment in which airspeed
velocity (asv) can run a repository's benchmarks at one historical commit.

Contract: the script runs with bash in the repository root (a git checkout of the commit). The
environment variables FC_VENV (create the virtual environment exactly there), FC_PYTHON (the
interpreter to create it from), FC_EXCLUDE_NEWER (the commit date: never install packages released
after it; pass it to uv as --exclude-newer), FC_ASV_CONF (path of asv.conf.json) and
FC_ASV_REQUIREMENT (the asv requirement to install) are set; `uv` is on PATH and Python
downloads are disabled. When the script ends, "$FC_VENV/bin/python" must import the project and
"$FC_VENV/bin/asv" must exist. Use `uv venv` and `uv pip install --python "$FC_VENV/bin/python"`.
Do not run asv yourself, do not fake results, do not use sudo or apt. Prefer binary wheels and
versions contemporary with the commit; pin or cap packages when the failure shows the resolver
picked an incompatible release. Return the complete revised script, nothing else.
"""


def _dspy():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no model-cost download
    import dspy

    return dspy


_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n(.*?)\n```\s*$", re.DOTALL)


def clean_script(text: str) -> str:
    """The script inside a model's answer: markdown fences removed, a bash shebang guaranteed."""
    text = text.strip()
    match = _FENCE.match(text)
    if match:
        text = match.group(1).strip()
    if not text.startswith("#!"):
        text = "#!/usr/bin/env bash\n" + text
    return text + "\n"


@dataclass(frozen=True)
class FailedAttempt:
    """What the agent is shown about the last failure."""

    script: str
    stage: str | None
    reason: str | None
    stdout_tail: str
    stderr_tail: str


class ScriptAgent:
    """A DSPy program that reads the failing script and the validator's output and writes a revision.

    Answers are cached on disk by the hash of the prompt inputs, so re-running a month asks the LM
    nothing it was already asked.
    """

    def __init__(self, lm: Any, *, model: str, cache_dir: Path | None = None, adapter: Any = None):
        dspy = _dspy()

        class ReviseBuildScript(dspy.Signature):
            __doc__ = AGENT_INSTRUCTIONS
            repository: str = dspy.InputField(desc="install analysis: asv config, package metadata, Python, pins")
            failing_script: str = dspy.InputField(desc="the build_env.sh that failed")
            failure: str = dspy.InputField(desc="the stage that failed and the validator's reason")
            stdout_tail: str = dspy.InputField(desc="end of the failing step's standard output")
            stderr_tail: str = dspy.InputField(desc="end of the failing step's standard error")
            previous_attempts: str = dspy.InputField(desc="earlier attempts for this commit and how they failed")
            build_env_sh: str = dspy.OutputField(desc="the complete revised bash script")

        self._program = dspy.Predict(ReviseBuildScript)
        self._lm = lm
        self._adapter = adapter if adapter is not None else dspy.ChatAdapter(use_json_adapter_fallback=False)
        self.model = model
        self._cache_dir = Path(cache_dir) / "build-agent" if cache_dir else None
        self.calls = 0
        self.cache_hits = 0

    @classmethod
    def from_endpoint(
        cls,
        model_name: str,
        *,
        api_base: str | None,
        api_key: str | None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        timeout: float = 120.0,
        cache_dir: Path | None = None,
    ) -> ScriptAgent:
        """An agent on an OpenAI-compatible endpoint, built like the judge's LM (one way to make an LM)."""
        from formulacode_assets.core.classification.programs import chat_adapter, make_lm

        model = model_name if model_name.startswith("openai/") or not api_base else f"openai/{model_name}"
        lm = make_lm(
            model,
            api_base=api_base,
            api_key=api_key or ("EMPTY" if api_base else None),
            temperature=temperature,
            max_tokens=max_tokens,
            timeout=timeout,
        )
        return cls(lm, model=model_name, cache_dir=cache_dir, adapter=chat_adapter())

    def revise(self, analysis_summary: str, failure: FailedAttempt, history: Sequence[str]) -> str:
        inputs = {
            "repository": analysis_summary,
            "failing_script": failure.script,
            "failure": f"stage: {failure.stage}; reason: {failure.reason}",
            "stdout_tail": failure.stdout_tail[-_TAIL_FOR_PROMPT:] or "(empty)",
            "stderr_tail": failure.stderr_tail[-_TAIL_FOR_PROMPT:] or "(empty)",
            "previous_attempts": "\n".join(history) or "(none)",
        }
        key = hashlib.sha256(json.dumps([AGENT_INSTRUCTIONS, self.model, inputs], sort_keys=True).encode()).hexdigest()
        cached = self._cache_dir / f"{key}.sh" if self._cache_dir else None
        if cached and cached.exists():
            self.cache_hits += 1
            return cached.read_text()
        dspy = _dspy()
        self.calls += 1
        with dspy.context(lm=self._lm, adapter=self._adapter, trace=None, disable_history=True):
            prediction = self._program(**inputs)
        script = clean_script(str(prediction.build_env_sh))
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(script)
            os.replace(tmp, cached)
        return script
