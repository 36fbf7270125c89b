"""The one validator for repository names before they touch a path or a command line."""

from __future__ import annotations

import re

_SEGMENT = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,99}")


class InvalidRepoName(ValueError):
    """A repository name that is not a plain ``owner/name``."""


def validate_repo_name(repo_name: str) -> str:
    """Return ``repo_name`` if it is ``owner/name`` made of safe segments, else raise.

    Each segment uses GitHub's alphabet (letters, digits, ``-``, ``_``, ``.``), may not start with
    ``-`` (it would read as a git option) and may not be ``.`` or ``..`` (path traversal).
    """
    if not isinstance(repo_name, str):
        raise InvalidRepoName(f"repository name must be a string, got {type(repo_name).__name__}")
    parts = repo_name.split("/")
    if len(parts) != 2:
        raise InvalidRepoName(f"repository name {repo_name!r} is not of the form owner/name")
    for part in parts:
        if part in {".", ".."} or not _SEGMENT.fullmatch(part) or part.endswith(".git.lock"):
            raise InvalidRepoName(f"repository name {repo_name!r} has an unsafe segment {part!r}")
    return repo_name
