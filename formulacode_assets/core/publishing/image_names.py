"""The one image-name function: every row, build, push, check and task spells names through it.

Peer benchmarks shipped task rows naming images that did not exist because two code paths
spelled names differently; here nothing else in the package formats an image reference (a test
greps for it).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

LAYOUTS = ("single", "mirror")
MAX_TAG = 128  # the OCI distribution spec's tag limit
MAX_COMPONENT = 128  # keep each repository path component a sane length too
_HASH_CHARS = 10

_UNSAFE = re.compile(r"[^a-z0-9._-]")
_SEPARATOR_RUN = re.compile(r"[._-]{2,}")


def _clean(text: str) -> str:
    """Lowercase, characters outside ``[a-z0-9._-]`` become ``-``."""
    return _UNSAFE.sub("-", text.strip().lower())


def _component(text: str) -> str:
    """A repository path component: no separator runs, none at either end (the registry grammar)."""
    cleaned = _SEPARATOR_RUN.sub("-", _clean(text)).strip("._-")
    return _shorten(cleaned or "x", MAX_COMPONENT)


def _shorten(text: str, limit: int) -> str:
    """``text`` if it fits, else a prefix plus a hash of the whole (still unique, still readable)."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:_HASH_CHARS]
    return f"{text[: limit - _HASH_CHARS - 1].rstrip('._-')}-{digest}"


def _tag(text: str) -> str:
    tag = _clean(text).lstrip(".-") or "x"  # a tag starts with a word character
    return _shorten(tag, MAX_TAG)


@dataclass(frozen=True)
class ImageName:
    """``repository:tag``; ``repository`` may start with a registry host (``127.0.0.1:5000/ns/all``)."""

    repository: str
    tag: str

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def registry_host(self) -> str | None:
        """The host part of the repository, when it names one (Docker's rule: a dot, a colon or localhost)."""
        first, _, rest = self.repository.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            return first
        return None

    @property
    def path(self) -> str:
        """The repository as the registry API names it (without the host)."""
        host = self.registry_host
        return self.repository[len(host) + 1 :] if host else self.repository

    def __str__(self) -> str:
        return self.reference


def image_name(owner: str, repo: str, sha: str, *, namespace: str, layout: str = "single") -> ImageName:
    """The published image of a (repository, base sha).

    ``single``: ``<namespace>/all:<owner>-<repo>-<sha>--final`` (one repository for everything);
    ``mirror``: ``<namespace>/<owner>-<repo>:<sha>-final`` (one repository per project).
    ``namespace`` is ``[registry host/]path`` (e.g. ``formulacode``, ``127.0.0.1:5000/fc``,
    ``123.dkr.ecr.us-east-1.amazonaws.com/formulacode``); its path is cleaned like the rest, the
    host is kept as given.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"image layout must be one of {LAYOUTS}, got {layout!r}")
    if not sha:
        raise ValueError("an image needs the base sha")
    host, path = _split_namespace(namespace)
    prefix = "/".join(p for p in ([host] if host else []) + [_component(part) for part in path.split("/") if part])
    sha = _clean(sha)
    if layout == "single":
        return ImageName(f"{prefix}/all", _tag(f"{owner}-{repo}-{sha}--final"))
    return ImageName(f"{prefix}/{_component(f'{owner}-{repo}')}", _tag(f"{sha}-final"))


def image_name_for(repo_name: str, sha: str, *, namespace: str, layout: str = "single") -> ImageName:
    """:func:`image_name` from ``owner/name``."""
    owner, _, repo = repo_name.partition("/")
    return image_name(owner, repo, sha, namespace=namespace, layout=layout)


def _split_namespace(namespace: str) -> tuple[str | None, str]:
    namespace = namespace.strip().strip("/")
    if not namespace:
        raise ValueError("an image namespace is required")
    first, _, rest = namespace.partition("/")
    if "." in first or ":" in first or first == "localhost":
        if not rest:
            raise ValueError(f"image namespace {namespace!r} names a registry host but no path")
        return first.lower(), rest
    return None, namespace
