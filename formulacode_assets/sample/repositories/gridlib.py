"""sample-org/gridlib: 2-D grid helpers; ``benchmarks/asv.conf.json`` is JSON with comments.

History: a benchmark-only PR, a merged genuine speed-up of ``neighbours``, a direct maintenance
commit, a docs commit whose committer offset puts it in March locally but February in UTC, and
a feature in April.
"""

from __future__ import annotations

from formulacode_assets.sample.plan import Commit, RepoSpec, Step
from formulacode_assets.sample.repositories.common import ALICE, BOB, CAROL, DAVE, GITHUB, GITIGNORE, dedent, pyproject

_GRID_HEAD = dedent(
    '''
    """Tiny 2-D grid helpers (grids are lists of rows)."""


    def make_grid(rows, cols, fill=0):
        """Return a ``rows`` x ``cols`` grid filled with ``fill``."""
        return [[fill] * cols for _ in range(rows)]
    '''
)

_NEIGHBOURS_V1 = dedent(
    '''


    def neighbours(grid, row, col):
        """Return the values of the (up to 8) cells adjacent to ``(row, col)``."""
        result = []
        for r in range(len(grid)):
            for c in range(len(grid[r])):
                if (r, c) != (row, col) and abs(r - row) <= 1 and abs(c - col) <= 1:
                    result.append(grid[r][c])
        return result
    '''
)

_NEIGHBOURS_V2A = dedent(
    '''


    _OFFSETS = tuple((dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0))


    def neighbours(grid, row, col):
        """Return the values of the (up to 8) cells adjacent to ``(row, col)``."""
        result = []
        for r in range(len(grid)):
            for c in range(len(grid[r])):
                if (r - row, c - col) in _OFFSETS:
                    result.append(grid[r][c])
        return result
    '''
)

_NEIGHBOURS_V2 = dedent(
    '''


    _OFFSETS = tuple((dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0))


    def neighbours(grid, row, col):
        """Return the values of the (up to 8) cells adjacent to ``(row, col)``.

        Only the 8 candidate positions are visited instead of scanning the whole grid.
        """
        rows = len(grid)
        candidates = ((row + dr, col + dc) for dr, dc in _OFFSETS)
        return [grid[r][c] for r, c in candidates if 0 <= r < rows and 0 <= c < len(grid[r])]
    '''
)

_TRANSPOSE = dedent(
    '''


    def transpose(grid):
        """Return the transpose of a rectangular ``grid``."""
        return [list(column) for column in zip(*grid)]
    '''
)

_INIT_V1 = dedent(
    '''
    """gridlib: tiny 2-D grid helpers."""
    import sys  # noqa: F401
    from gridlib.grid import *  # noqa: F401,F403
    import os  # noqa: F401

    __version__ = "0.1.0"
    '''
)
_INIT_V2 = dedent(
    '''
    """gridlib: tiny 2-D grid helpers."""

    from gridlib.grid import make_grid, neighbours

    __all__ = ["make_grid", "neighbours"]
    __version__ = "0.1.0"
    '''
)
_INIT_V3 = dedent(
    '''
    """gridlib: tiny 2-D grid helpers."""

    from gridlib.grid import make_grid, neighbours, transpose

    __all__ = ["make_grid", "neighbours", "transpose"]
    __version__ = "0.1.0"
    '''
)

# JSON with `//` comments (some after values) and a trailing comma, and no benchmark dir key:
# asv then uses its default, "benchmarks" relative to this file -> benchmarks/benchmarks/.
# The "https://" URLs are a trap for naive comment strippers, as in real asv configs.
_ASV = dedent(
    """
    // airspeed velocity configuration for gridlib.
    {
        // The version of the config file format.  Do not change.
        "version": 1,

        // The name of the project being benchmarked.
        "project": "gridlib",

        // The project's homepage.
        "project_url": "https://github.com/sample-org/gridlib",

        // The URL or local path of the repository, relative to this file.
        "repo": "..",

        "branches": ["main"], // only benchmark main

        "environment_type": "virtualenv",  // no conda here

        "show_commit_url": "https://github.com/sample-org/gridlib/commit/",
        "env_dir": "env",
        "results_dir": "results",
        "html_dir": "html", // trailing comma on purpose
    }
    """
)

_BENCH_V1 = dedent(
    """
    from gridlib.grid import make_grid


    class GridSuite:
        def time_make_grid(self):
            make_grid(300, 300)
    """
)
_BENCH_V2 = dedent(
    """
    from gridlib.grid import make_grid, neighbours


    class GridSuite:
        def setup(self):
            self.grid = make_grid(200, 200, fill=1)

        def time_make_grid(self):
            make_grid(300, 300)

        def time_neighbours(self):
            neighbours(self.grid, 100, 100)
    """
)
_BENCH_V3 = _BENCH_V2.replace("import make_grid, neighbours", "import make_grid, neighbours, transpose") + (
    "\n    def time_transpose(self):\n        transpose(self.grid)\n"
)

_README = dedent(
    """
    # gridlib

    Tiny 2-D grid helpers for Python.

        pip install .

    Benchmarks: `cd benchmarks && asv run` (config in `benchmarks/asv.conf.json`).
    """
)
_DOCS_V1 = "# gridlib\n\n`neighbours(grid, row, col)` returns adjacent cell values.\n"
_DOCS_V2 = _DOCS_V1 + dedent(
    """

    ## Coordinates

    Cells are addressed as `(row, col)`, starting at `(0, 0)` in the top-left corner.
    """
)

SPEC = RepoSpec(
    name="sample-org/gridlib",
    steps=(
        Step(
            kind="initial",
            commit=Commit(
                message="Initial commit",
                author=ALICE,
                authored="2024-01-08T12:00:00+00:00",
                files={
                    ".gitignore": GITIGNORE,
                    "README.md": _README,
                    "docs/index.md": _DOCS_V1,
                    "pyproject.toml": pyproject("gridlib", "0.1.0", "Tiny 2-D grid helpers."),
                    "gridlib/__init__.py": _INIT_V1,
                    "gridlib/grid.py": _GRID_HEAD + _NEIGHBOURS_V1,
                    "benchmarks/asv.conf.json": _ASV,
                    "benchmarks/benchmarks/__init__.py": "",
                    "benchmarks/benchmarks/bench_grid.py": _BENCH_V1,
                },
            ),
        ),
        Step(
            kind="bench_only",
            pr_number=7,
            commit=Commit(
                message="Add benchmark for neighbours (#7)",
                author=BOB,
                authored="2024-02-02T09:00:00+00:00",
                committer=GITHUB,
                committed="2024-02-05T10:00:00+00:00",
                files={"benchmarks/benchmarks/bench_grid.py": _BENCH_V2},
            ),
        ),
        Step(
            kind="speedup",
            pr_number=8,
            branch="carol/vectorise-neighbours",
            branch_commits=(
                Commit(
                    message="Precompute neighbour offsets",
                    author=CAROL,
                    authored="2024-02-08T10:00:00+00:00",
                    files={"gridlib/grid.py": _GRID_HEAD + _NEIGHBOURS_V2A},
                ),
                Commit(
                    message="Only visit the 8 candidate cells",
                    author=CAROL,
                    authored="2024-02-09T16:00:00+00:00",
                    files={"gridlib/grid.py": _GRID_HEAD + _NEIGHBOURS_V2},
                ),
            ),
            commit=Commit(
                message=(
                    "Vectorise neighbour lookup (#8)\n\n"
                    "neighbours() scanned the whole grid for every lookup; it now visits only\n"
                    "the 8 adjacent positions.\n"
                ),
                author=BOB,
                authored="2024-02-12T11:00:00+00:00",
                committer=GITHUB,
            ),
        ),
        Step(
            kind="maintenance",
            commit=Commit(
                message="Tidy imports",
                author=ALICE,
                authored="2024-02-20T08:00:00+00:00",
                files={"gridlib/__init__.py": _INIT_V2},
            ),
        ),
        Step(
            kind="docs_only",
            commit=Commit(
                message="Document coordinate convention",
                author=DAVE,
                authored="2024-03-01T01:00:00+02:00",
                committed="2024-03-01T01:30:00+02:00",  # = 2024-02-29T23:30Z: February in UTC
                files={"docs/index.md": _DOCS_V2},
            ),
        ),
        Step(
            kind="feature",
            pr_number=9,
            commit=Commit(
                message="Add grid transpose (#9)",
                author=CAROL,
                authored="2024-04-09T14:00:00+00:00",
                committer=GITHUB,
                committed="2024-04-10T09:30:00+00:00",
                files={
                    "gridlib/grid.py": (_GRID_HEAD + _NEIGHBOURS_V2 + _TRANSPOSE),
                    "gridlib/__init__.py": _INIT_V3,
                    "benchmarks/benchmarks/bench_grid.py": _BENCH_V3,
                },
            ),
        ),
    ),
)
