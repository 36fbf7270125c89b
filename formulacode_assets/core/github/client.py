"""The PyGithub client pool: one client per token, rotated by remaining quota.

PyGithub does the HTTP work: pagination, retries (``GithubRetry``: 403 secondary limits honour
``Retry-After``, primary limits wait for the reset, 5xx back off) and pacing
(``seconds_between_requests``). Tokens live only inside the clients: never in keys, records, logs
or exception text (:func:`request_error` keeps status and message only).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from github import Github

# PyGithub (with cryptography, jwt, nacl, requests) takes ~0.5 s to import: it is imported where a
# client is built, so loading the definitions (the CLI, the UI) does not pay for it.


class GitHubRequestError(RuntimeError):
    """A request failed after PyGithub's retries; the message never includes credentials."""

    def __init__(self, what: str, status: int | None, message: str):
        self.status = status
        self.reason = f"{what}: HTTP {status} {message}".strip() if status else f"{what}: {message}"
        super().__init__(self.reason)


# Every token a pool was built with. A server may echo a token back in its error body (or a proxy in
# its error page): whatever it says, text that leaves this module passes through :func:`redact`.
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
REDACTED = "[redacted]"


def register_secrets(secrets) -> None:
    with _SECRETS_LOCK:
        _SECRETS.update(s for s in secrets if s and len(s) >= 4)


def redact(text: str) -> str:
    """``text`` with every configured secret replaced (longest first, so no secret leaves a tail)."""
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class _RedactingFilter(logging.Filter):
    """Redacts records of PyGithub's and urllib3's loggers (which Dagster may capture into its event log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = _RedactingFilter()
# Filters of a logger do not apply to its children's records, so each logger that logs is named.
for _name in ("github", "github.Requester", "github.GithubRetry", "urllib3", "urllib3.connectionpool"):
    if _FILTER not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_FILTER)


def github_exception() -> type[Exception]:
    """PyGithub's error class, imported on first use."""
    from github import GithubException

    return GithubException


def request_error(what: str, exc: Exception) -> GitHubRequestError:
    if isinstance(exc, github_exception()):
        data = exc.data if isinstance(exc.data, dict) else {}
        return GitHubRequestError(redact(what), exc.status, redact(str(data.get("message", "")))[:200])
    # Retry exhaustion (urllib3 MaxRetryError), timeouts, connection errors: keep the class name and
    # a short text, redacted like everything else.
    return GitHubRequestError(redact(what), None, redact(f"{type(exc).__name__}: {str(exc)}")[:200])


@dataclass(frozen=True)
class GitHubSettings:
    base_url: str = "https://api.github.com"
    tokens: tuple[str, ...] = ()
    per_page: int = 100
    seconds_between_requests: float = 0.25
    timeout: int = 30
    max_retries: int = 8
    backoff_factor: float = 2.0
    secondary_rate_wait: float = 60.0
    max_rate_limit_wait: float = 3600.0


class GitHubClientPool:
    """One PyGithub client per token; each call takes the client with the most remaining quota."""

    def __init__(self, settings: GitHubSettings):
        from github import Auth, Github, GithubRetry

        self.settings = settings
        retry = GithubRetry(
            total=settings.max_retries,
            backoff_factor=settings.backoff_factor,
            secondary_rate_wait=settings.secondary_rate_wait,
            max_rate_limit_wait=settings.max_rate_limit_wait,
        )
        register_secrets(settings.tokens)
        auths = [Auth.Token(t) for t in settings.tokens] or [None]
        self._clients = [
            Github(
                auth=auth,
                base_url=settings.base_url.rstrip("/"),
                per_page=settings.per_page,
                timeout=settings.timeout,
                retry=retry,
                seconds_between_requests=settings.seconds_between_requests or None,
                seconds_between_writes=None,
                # Objects are fetched when first read: get_repo(...).get_pull(n) costs one request.
                lazy=True,
            )
            for auth in auths
        ]
        self._lock = threading.Lock()
        self._turn = 0

    @property
    def size(self) -> int:
        return len(self._clients)

    def client(self) -> Github:
        """Round-robin, preferring clients whose last response reported quota left."""
        with self._lock:
            self._turn += 1
            order = self._clients[self._turn % len(self._clients) :] + self._clients[: self._turn % len(self._clients)]
            # rate_limiting is (-1, -1) until a response was seen; unknown counts as available.
            for gh in order:
                remaining, _limit = gh.requester.rate_limiting  # from the last response; makes no request
                if remaining != 0:
                    return gh
            return order[0]
