"""sample-org/notes: meeting notes, not a Python package and no ``asv.conf.json`` anywhere.

The one sample repository without asv benchmarks: exercises the pipeline's handling of a
discovered repository that has nothing to benchmark.
"""

from __future__ import annotations

from formulacode_assets.sample.plan import Commit, RepoSpec, Step
from formulacode_assets.sample.repositories.common import BOB, CAROL

SPEC = RepoSpec(
    name="sample-org/notes",
    steps=(
        Step(
            kind="initial",
            commit=Commit(
                message="Initial commit",
                author=BOB,
                authored="2024-01-10T10:00:00+00:00",
                files={
                    "README.md": "# notes\n\nMeeting notes.  Not a Python package.\n",
                    "notes/2024-01.md": "# January 2024\n\n- Kick-off.\n",
                },
            ),
        ),
        Step(
            kind="maintenance",
            commit=Commit(
                message="Add February notes",
                author=CAROL,
                authored="2024-02-15T10:00:00+00:00",
                files={"notes/2024-02.md": "# February 2024\n\n- Benchmarks review.\n"},
            ),
        ),
    ),
)
