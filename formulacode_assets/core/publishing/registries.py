"""Registries an image is published to: any OCI registry, AWS ECR, Docker Hub.

Each answers two questions the same way: which digest does a tag have (a manifest lookup over the
distribution API, asked *before* building so an existing tag is never rebuilt), and which
credentials does ``docker push`` need. Token auth (``WWW-Authenticate: Bearer``, Docker Hub's
scheme), Basic auth, 429 with ``Retry-After`` and transient errors are handled here once.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from formulacode_assets.core.publishing.image_names import ImageName

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


class RegistryError(RuntimeError):
    """The registry could not answer (after retries); the message names the image."""


@dataclass(kw_only=True)
class Registry:
    """An OCI distribution registry at ``url`` (``http://127.0.0.1:5000``, ``https://ghcr.io``).

    ``namespace`` is the path images go under; the image namespace given to
    :func:`~formulacode_assets.core.publishing.image_names.image_name` prefixes it with the host.
    """

    url: str
    namespace: str
    username: str | None = None
    password: str | None = None
    timeout_s: float = 30.0
    max_retries: int = 4
    max_wait_s: float = 60.0  # longest Retry-After honoured (DOCKERHUB_RATE_LIMIT_WAIT)
    sleep: Callable[[float], None] = time.sleep
    kind: str = "oci"
    waits: list[float] = field(default_factory=list)  # Retry-After waits taken (for logs and tests)
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)
    _session: requests.Session = field(default_factory=requests.Session, repr=False)

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def image_namespace(self) -> str:
        return f"{self.host}/{self.namespace.strip('/')}"

    def describe(self) -> str:
        return f"{self.kind} {self.url}"

    def prepare(self, image: ImageName) -> None:
        """Make ``image``'s repository ready for a push (ECR creates it); default: nothing to do."""

    def auth_config(self) -> dict | None:
        """Credentials for ``docker push`` (None: anonymous)."""
        if self.username and self.password:
            return {"username": self.username, "password": self.password}
        return None

    def relogin(self) -> bool:
        """Renew expired credentials after a 401; True when there is something new to try."""
        return False

    # --- the distribution API ------------------------------------------------------------------

    def manifest_digest(self, image: ImageName) -> str | None:
        """The digest the registry reports for ``image``'s tag, or None when the tag does not exist."""
        url = f"{self.url.rstrip('/')}/v2/{image.path}/manifests/{image.tag}"
        response = self._request("HEAD", url, scope=f"repository:{image.path}:pull", image=image)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RegistryError(f"{image}: manifest lookup answered HTTP {response.status_code}")
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:  # some registries answer HEAD without it: GET and ask again
            response = self._request("GET", url, scope=f"repository:{image.path}:pull", image=image)
            digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            raise RegistryError(f"{image}: the registry reports no digest for the tag")
        return digest

    def _request(self, method: str, url: str, *, scope: str, image: ImageName) -> requests.Response:
        relogged = False
        failures = 0
        while True:
            headers = {"Accept": MANIFEST_TYPES, **self._authorization(scope)}
            try:
                response = self._session.request(method, url, headers=headers, timeout=self.timeout_s)
            except requests.RequestException as exc:
                failures += 1
                if failures > self.max_retries:
                    raise RegistryError(f"{image}: registry {self.host} unreachable: {exc}") from exc
                self.sleep(min(2**failures * 0.25, self.max_wait_s))
                continue
            if response.status_code == 401:
                challenge = response.headers.get("WWW-Authenticate", "")
                if challenge.lower().startswith("bearer") and scope not in self._tokens:
                    self._tokens[scope] = self._bearer_token(challenge, scope, image)
                    continue
                if not relogged and self.relogin():
                    relogged = True
                    self._tokens.pop(scope, None)
                    continue
                raise RegistryError(f"{image}: registry {self.host} refused the credentials (HTTP 401)")
            if response.status_code == 429 or response.status_code >= 500:
                failures += 1
                if failures > self.max_retries:
                    raise RegistryError(f"{image}: registry {self.host} answered HTTP {response.status_code}")
                wait = _retry_after(response) if response.status_code == 429 else None
                wait = min(wait if wait is not None else 2**failures * 0.25, self.max_wait_s)
                self.waits.append(wait)
                self.sleep(wait)
                continue
            return response

    def _authorization(self, scope: str) -> dict[str, str]:
        if scope in self._tokens:
            return {"Authorization": f"Bearer {self._tokens[scope]}"}
        if self.username and self.password:
            raw = f"{self.username}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def _bearer_token(self, challenge: str, scope: str, image: ImageName) -> str:
        params = _challenge_params(challenge)
        realm = params.pop("realm", None)
        if not realm:
            raise RegistryError(f"{image}: registry {self.host} sent a Bearer challenge without a realm")
        params.setdefault("scope", scope)
        auth = (self.username, self.password) if self.username and self.password else None
        response = self._session.get(realm, params=params, auth=auth, timeout=self.timeout_s)
        if response.status_code != 200:
            raise RegistryError(f"{image}: token service answered HTTP {response.status_code}")
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"{image}: token service returned no token")
        return token


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to the back-off


def _challenge_params(challenge: str) -> dict[str, str]:
    _, _, rest = challenge.partition(" ")
    params = {}
    for part in rest.split(","):
        key, _, value = part.strip().partition("=")
        if key:
            params[key.strip()] = value.strip().strip('"')
    return params


@dataclass(kw_only=True)
class DockerHubRegistry(Registry):
    """Docker Hub: images named ``<DOCKERHUB_NAMESPACE>/...`` (no host), token auth, 429 back-off."""

    url: str = "https://registry-1.docker.io"
    kind: str = "dockerhub"

    @property
    def image_namespace(self) -> str:
        return self.namespace.strip("/")


@dataclass(kw_only=True)
class EcrRegistry(Registry):
    """AWS ECR: repositories created when missing, registry login from an authorization token.

    ``ecr`` is a boto3 ECR client (any endpoint, e.g. moto). The registry URL comes from the token's
    proxy endpoint unless ``url`` is given. A 401 from the registry renews the token once.
    """

    url: str = ""
    ecr: Any = None
    kind: str = "ecr"
    logins: int = 0
    repositories_created: list[str] = field(default_factory=list)
    _known_repositories: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self):
        if self.ecr is None:
            raise ValueError("EcrRegistry needs a boto3 ECR client")
        self.login()

    def login(self) -> None:
        data = self.ecr.get_authorization_token()["authorizationData"][0]
        self.username, _, self.password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        if not self.url:
            self.url = data["proxyEndpoint"]
        self.logins += 1

    def relogin(self) -> bool:
        self.login()
        return True

    def prepare(self, image: ImageName) -> None:
        if image.path in self._known_repositories:
            return
        errors = self.ecr.exceptions
        try:
            self.ecr.describe_repositories(repositoryNames=[image.path])
        except errors.RepositoryNotFoundException:
            try:
                self.ecr.create_repository(repositoryName=image.path)
                self.repositories_created.append(image.path)
            except errors.RepositoryAlreadyExistsException:
                pass  # a concurrent run created it
        self._known_repositories.add(image.path)
