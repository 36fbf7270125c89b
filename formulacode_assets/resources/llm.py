"""The LLM that judges changes: an OpenAI-compatible endpoint configured by upstream's DSPY_* variables.

With no model name the stage does not silently skip classification: it runs the documented keyword
heuristic (:func:`formulacode_assets.core.classification.heuristic.heuristic_verdict`), says so in the run log and the
materialization metadata, and records ``classifier = "heuristic"`` on every row.
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from formulacode_assets.core.classification.judging import HEURISTIC, Judge, JudgeSettings, LLMEndpoint, make_judge
from formulacode_assets.core.classification.prefilter import PrefilterLimits


class LLMResource(ConfigurableResource):
    """DSPy LM settings (``DSPY_MODEL_NAME``, ``DSPY_URL``, ``DSPY_API_KEY``, ``DSPY_TEMPERATURE``) and stage limits."""

    model_name: str | None = Field(default=None, description="DSPY_MODEL_NAME; unset = keyword heuristic, no LM")
    api_base: str | None = Field(default=None, description="DSPY_URL: OpenAI-compatible base URL, e.g. http://host/v1")
    api_key: str | None = Field(
        default=None,
        repr=False,
        description="DSPY_API_KEY (secret: bind with dagster.EnvVar, never a literal); unset sends 'EMPTY' to DSPY_URL",
    )
    temperature: float = Field(default=0.0, description="DSPY_TEMPERATURE")
    max_tokens: int | None = Field(default=None, description="cap on tokens per answer (None = server default)")
    cache_dir: str = Field(description="completions are cached under <cache_dir>/llm/")
    concurrency: int = Field(default=8, description="changes judged in parallel (threads)")
    timeout_seconds: float = Field(default=120.0, description="per-request timeout")
    max_retries: int = Field(default=4, description="retries on 429 / 5xx / timeouts / connection errors")
    backoff_seconds: float = Field(default=1.0, description="first retry delay; doubles per attempt, with jitter")
    max_backoff_seconds: float = Field(default=60.0, description="longest retry delay (also caps Retry-After)")
    max_patch_tokens: int = Field(default=6_000, description="patch budget per prompt (1 token ~ 4 characters)")
    max_text_tokens: int = Field(default=1_500, description="budget for the PR body and the file summary")
    min_problem_overlap: float = Field(
        default=0.8, description="share of an extracted problem statement's words found in the PR text"
    )
    max_changed_lines: int = Field(
        default=4_000, description="pre-filter: judge changes below this many changed lines of library code"
    )
    max_files: int = Field(default=500, description="pre-filter: judge changes below this many library files")
    progress_every: int = Field(default=50, description="log progress every N judged changes")

    @property
    def uses_heuristic(self) -> bool:
        return not (self.model_name or "").strip()

    def judge_settings(self) -> JudgeSettings:
        return JudgeSettings(
            concurrency=self.concurrency,
            max_retries=self.max_retries,
            backoff_seconds=self.backoff_seconds,
            max_backoff_seconds=self.max_backoff_seconds,
            max_patch_tokens=self.max_patch_tokens,
            max_text_tokens=self.max_text_tokens,
            min_problem_overlap=self.min_problem_overlap,
            limits=PrefilterLimits(self.max_changed_lines, self.max_files),
            progress_every=self.progress_every,
        )

    def make_judge(self) -> Judge:
        """The LLM judge (cache + retries) or, with no model configured, the heuristic; close() it after use."""
        if self.uses_heuristic:
            return make_judge(None, self.judge_settings(), self.cache_dir)
        endpoint = LLMEndpoint(
            model_name=self.model_name.strip(),
            api_base=self.api_base or None,
            api_key=self.api_key or None,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            timeout_seconds=self.timeout_seconds,
        )
        return make_judge(endpoint, self.judge_settings(), self.cache_dir)


__all__ = ["HEURISTIC", "LLMResource"]
