"""Embedded sample store: deterministic local git repositories for offline pipeline runs.

`plan` is the data model, `repositories` the content of each sample repository, and `builder`
writes them into git (`ensure_sample_store`) and derives the manifest (`SAMPLE_CHANGES`).
"""

from formulacode_assets.sample.builder import SAMPLE_CHANGES, SAMPLE_STORE_VERSION, ensure_sample_store
from formulacode_assets.sample.plan import SampleChange
from formulacode_assets.sample.repositories import SAMPLE_REPOS

__all__ = [
    "SAMPLE_CHANGES",
    "SAMPLE_REPOS",
    "SAMPLE_STORE_VERSION",
    "SampleChange",
    "ensure_sample_store",
]
