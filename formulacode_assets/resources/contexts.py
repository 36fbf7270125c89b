"""How build contexts are synthesized: which sandbox validates, the registry, limits and the agent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from formulacode_assets.core.environments.build_scripts import ScriptAgent
from formulacode_assets.core.environments.install_analysis import default_pyenv_root, discover_interpreters
from formulacode_assets.core.environments.local_validator import LocalValidator
from formulacode_assets.core.environments.registry import ContextRegistry
from formulacode_assets.core.environments.synthesis import ContextSynthesizer, SynthesisSettings
from formulacode_assets.core.environments.validation import Validator
from formulacode_assets.core.measurement.selection import SelectionSettings
from formulacode_assets.resources.docker_engine import DockerEngineResource

VALIDATORS = ("auto", "docker", "local")


class ContextSynthesisResource(ConfigurableResource):
    """Validator choice (``auto`` = Docker when reachable, else local if enabled), registry and limits."""

    cache_dir: str = Field(description="analysis / resolution / agent caches live under <cache_dir>")
    registry_path: str | None = Field(
        default=None,
        description="SQLite context registry on a local disk; default <cache_dir>/contexts/registry.sqlite",
    )
    validator: str = Field(default="auto", description="auto / docker / local")
    allow_local: bool = Field(
        default=False,
        description="allow the local (non-Docker) validator: only for trusted sources such as the sample store",
    )
    local_agent_scripts: bool = Field(
        default=False,
        description="let the local validator run LLM-written scripts (FORMULACODE_LOCAL_VALIDATION explicitly on)",
    )
    pyenv_root: str | None = Field(default=None, description="interpreters under <root>/versions; default pyenv root")
    repeats: int = Field(default=2, description="discovery + quick run repeats per validation (stability check)")
    max_agent_attempts: int = Field(default=3, description="DSPy agent revisions after registry + template fail")
    build_timeout_s: float = Field(default=900, description="local validator: build_env.sh limit")
    step_timeout_s: float = Field(default=600, description="local validator: limit per asv step")
    resolve_timeout_s: float = Field(default=300, description="limit per uv pip compile step")
    validation_budget_s: float = Field(default=600, description="local validator: the whole validation of a context")
    benchmark_timeout_s: float = Field(default=60, description="asv's per-benchmark timeout in the quick run")
    selection_budget_s: float = Field(
        default=120, description="the coverage probe choosing a change's benchmarks (setup + one call each)"
    )
    python_lag_days: int = Field(default=180, description="a Python counts as plausible this long after its release")
    min_python: str = Field(default="3.7", description="oldest Python considered (asv 0.6 needs 3.7+)")
    asv_requirement: str = Field(default="asv>=0.6", description="the asv harness installed in every environment")
    reuse_validated: bool = Field(
        default=True, description="reuse a registered (repo, sha) context without re-validating"
    )
    max_workers: int = Field(default=1, description="repositories validated in parallel")
    pin_index_url: str | None = Field(
        default=None,
        description="package index (JSON simple API) for pin release dates, e.g. https://pypi.org/simple; "
        "None = no lookups",
    )
    measure_rounds: int = Field(default=3, description="human speed-up: interleaved A/B rounds")
    measure_samples: int = Field(default=5, description="human speed-up: samples per benchmark, side and round")
    measure_cpu: int | None = Field(default=0, description="human speed-up: pin timing to this CPU (None: no pin)")
    speedup_threshold: float = Field(default=1.05, description="a benchmark improves from this ratio on")
    speedup_alpha: float = Field(default=0.01, description="Mann-Whitney significance level")
    force_measure: bool = Field(default=False, description="re-time tasks even when stored timings exist")

    def registry(self) -> ContextRegistry:
        path = Path(self.registry_path) if self.registry_path else Path(self.cache_dir) / "contexts" / "registry.sqlite"
        return ContextRegistry(path)

    def settings(self) -> SynthesisSettings:
        return SynthesisSettings(
            repeats=self.repeats,
            max_agent_attempts=self.max_agent_attempts,
            reuse_validated=self.reuse_validated,
            python_lag_days=self.python_lag_days,
            min_python=self.min_python,
            resolve_timeout_s=self.resolve_timeout_s,
            asv_requirement=self.asv_requirement,
            max_workers=self.max_workers,
            pin_index_url=self.pin_index_url,
        )

    def choose_validator(
        self, docker_engine: DockerEngineResource, log: Callable[[str], None] | None = None
    ) -> tuple[Validator | None, str]:
        """``(validator, why)``; ``None`` when no allowed sandbox is available (rows are then skipped)."""
        if self.validator not in VALIDATORS:
            raise ValueError(f"validator must be one of {VALIDATORS}, got {self.validator!r}")
        about = ""
        if self.validator in ("auto", "docker"):
            ok, about = docker_engine.reachable()
            if ok:
                docker = docker_engine.validator(log=log)
                docker.benchmark_timeout = self.benchmark_timeout_s
                docker.selection = SelectionSettings(budget_s=self.selection_budget_s)
                return docker, f"docker validator ({about})"
            if self.validator == "docker":
                return None, about
        if not self.allow_local:
            why = "local validation is not enabled (allow_local=False)"
            return None, why if self.validator == "local" else f"{about}; {why}"
        local = LocalValidator(
            work_root=Path(self.cache_dir) / "contexts" / "work",
            uv_cache_dir=Path(self.cache_dir) / "uv",
            build_timeout=self.build_timeout_s,
            step_timeout=self.step_timeout_s,
            validation_budget=self.validation_budget_s,
            benchmark_timeout=self.benchmark_timeout_s,
            selection=SelectionSettings(budget_s=self.selection_budget_s),
        )
        # Where Docker is not needed (auto, local allowed), its absence is a note, not an error text.
        return local, "local validator (trusted source, throw-away virtual environments)" + (
            f"; no Docker engine at {docker_engine.base_url}" if self.validator == "auto" else ""
        )

    def agent(self, llm) -> ScriptAgent | None:
        """The DSPy script agent on the pipeline's LM (an ``LLMResource``); None when no model is configured."""
        model = (getattr(llm, "model_name", None) or "").strip()
        if not model:
            return None
        return ScriptAgent.from_endpoint(
            model,
            api_base=llm.api_base or None,
            api_key=llm.api_key or None,
            temperature=llm.temperature,
            max_tokens=llm.max_tokens,
            timeout=llm.timeout_seconds,
            cache_dir=Path(self.cache_dir),
        )

    def interpreters(self):
        root = Path(self.pyenv_root) if self.pyenv_root else default_pyenv_root()
        return discover_interpreters(root)

    def synthesizer(
        self,
        validator: Validator | None,
        why: str,
        *,
        mirror_path: Callable[[str], Path],
        agent: ScriptAgent | None,
        log: Callable[[str], None] | None = None,
    ) -> ContextSynthesizer:
        if validator is not None and validator.name != "docker" and not self.local_agent_scripts:
            if agent is not None and log is not None:
                log("contexts: agent off for the local validator (FORMULACODE_LOCAL_VALIDATION is not explicitly on)")
            agent = None
        return ContextSynthesizer(
            registry=self.registry(),
            validator=validator,
            mirror_path=mirror_path,
            interpreters=self.interpreters(),
            settings=self.settings(),
            agent=agent,
            cache_dir=Path(self.cache_dir),
            unavailable_reason=why,
            log=log,
        )
