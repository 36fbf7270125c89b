"""The sample repositories' content: one module per repository, each exposing its `SPEC`.

To add a repository, add a module here and append its spec to `SPECS`; to extend one (e.g. a
new month), append steps to its spec.  Either changes the generated history, so bump
`formulacode_assets.sample.builder.SAMPLE_STORE_VERSION` too.
"""

from __future__ import annotations

from formulacode_assets.sample.plan import RepoSpec
from formulacode_assets.sample.repositories import fastmath, gridlib, notes, textkit

__all__ = ["SAMPLE_REPOS", "SPECS"]

# Order matters: it is the row order of repos.csv and of SAMPLE_CHANGES.
SPECS: tuple[RepoSpec, ...] = (fastmath.SPEC, textkit.SPEC, gridlib.SPEC, notes.SPEC)

SAMPLE_REPOS: tuple[str, ...] = tuple(spec.name for spec in SPECS)
