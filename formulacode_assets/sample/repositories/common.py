"""Building blocks shared by the sample repositories: the people and the common file texts."""

from __future__ import annotations

import textwrap

from formulacode_assets.sample.plan import Person

__all__ = ["ALICE", "BOB", "CAROL", "DAVE", "GITHUB", "GITIGNORE", "dedent", "pyproject"]

ALICE = Person("Alice Liddell", "alice@example.com")
BOB = Person("Bob Builder", "bob@example.com")
CAROL = Person("Carol Danvers", "carol@example.com")
DAVE = Person("Dave Lister", "dave@example.com")
GITHUB = Person("GitHub", "noreply@github.com")  # committer of PRs merged on GitHub (squash or merge)


def dedent(text: str) -> str:
    """Dedent a triple-quoted literal and drop the newline right after its opening quotes."""
    text = textwrap.dedent(text)
    return text[1:] if text.startswith("\n") else text


def pyproject(name: str, version: str, description: str) -> str:
    """A minimal setuptools ``pyproject.toml`` for the single package `name`."""
    return dedent(
        f"""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "{version}"
        description = "{description}"
        readme = "README.md"
        requires-python = ">=3.8"
        dependencies = []

        [tool.setuptools]
        packages = ["{name}"]
        """
    )


GITIGNORE = dedent(
    """
    __pycache__/
    *.egg-info/
    build/
    dist/
    .asv/
    env/
    results/
    html/
    """
)
