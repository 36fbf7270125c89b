"""Embedded sample store: deterministic local git repositories for offline pipeline runs."""

from formulacode_assets.sample.store import (
    SAMPLE_CHANGES,
    SAMPLE_REPOS,
    SAMPLE_STORE_VERSION,
    SampleChange,
    ensure_sample_store,
)

__all__ = [
    "SAMPLE_CHANGES",
    "SAMPLE_REPOS",
    "SAMPLE_STORE_VERSION",
    "SampleChange",
    "ensure_sample_store",
]
