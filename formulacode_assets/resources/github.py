"""The GitHub API resource: tokens, endpoint, pacing, retries, the response cache and repository filters."""

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from formulacode_assets.core.github.client import GitHubClientPool, GitHubSettings
from formulacode_assets.core.github.response_cache import ResponseCache
from formulacode_assets.core.github.source import GitHubSource
from formulacode_assets.resources.errors import SettingsError


class GitHubResource(ConfigurableResource):
    """GitHub REST API through PyGithub. ``tokens`` is a secret: bind it with ``EnvVar("GH_TOKENS")``."""

    tokens: str | None = Field(default=None, description="comma-separated tokens (GH_TOKENS); rotated per call")
    base_url: str = Field(default="https://api.github.com", description="API root (GitHub Enterprise: .../api/v3)")
    seconds_between_requests: float = Field(default=0.25, description="pacing for GitHub's secondary limits")
    timeout: int = Field(default=30, description="seconds per HTTP request")
    max_retries: int = Field(default=8, description="retries of 403-rate-limit / 429 / 5xx answers")
    backoff_factor: float = Field(default=2.0, description="exponential back-off base for 5xx retries, seconds")
    secondary_rate_wait: float = Field(
        default=60.0, description="wait after a secondary rate limit without Retry-After"
    )
    min_stars: int = Field(default=500, description="repositories with fewer stars are skipped")
    refresh: bool = Field(default=False, description="refetch closed months instead of using the response cache")
    cache_dir: str = Field(description="responses for closed months are cached under <cache_dir>/github")

    def token_list(self) -> tuple[str, ...]:
        return tuple(t.strip() for t in (self.tokens or "").split(",") if t.strip())

    def source(self, log=lambda _message: None) -> GitHubSource:
        # Without a token GitHub allows 60 requests an hour and code search not at all: fail at once
        # instead of waiting out rate limits in silence.
        if not self.token_list():
            raise SettingsError(
                "the GitHub source needs a token: set GH_TOKENS (comma-separated; GH_TOKEN works too), "
                "e.g. in .env or an env file loaded before the run"
            )
        settings = GitHubSettings(
            base_url=self.base_url,
            tokens=self.token_list(),
            seconds_between_requests=self.seconds_between_requests,
            timeout=self.timeout,
            max_retries=self.max_retries,
            backoff_factor=self.backoff_factor,
            secondary_rate_wait=self.secondary_rate_wait,
        )
        cache = ResponseCache(Path(self.cache_dir) / "github", refresh=self.refresh)
        return GitHubSource(GitHubClientPool(settings), cache, log=log)
