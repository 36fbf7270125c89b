"""sample-org/textkit: word statistics; asv config under ``asv_bench/`` (``"repo": ".."``).

History: ``--no-ff`` merges of PR branches (a genuine speed-up via ``collections.Counter``, a
docs-only PR, a feature) and a squash-merged fix authored in March but committed in February.
"""

from __future__ import annotations

from formulacode_assets.sample.plan import Commit, RepoSpec, Step
from formulacode_assets.sample.repositories.common import ALICE, BOB, CAROL, GITHUB, GITIGNORE, dedent, pyproject

_TOKENIZE = dedent(
    '''
    """Word statistics."""

    PUNCTUATION = ".,;:!?\\"'()"


    def tokenize(text):
        """Split ``text`` into lower-case words."""
        return [word.strip(PUNCTUATION).lower() for word in text.split()]
    '''
)

_WORDS_V1 = _TOKENIZE + dedent(
    '''


    def word_counts(text):
        """Return a dict mapping each word of ``text`` to its number of occurrences."""
        counts = []  # [word, count] pairs, scanned linearly for every word
        for word in tokenize(text):
            for pair in counts:
                if pair[0] == word:
                    pair[1] += 1
                    break
            else:
                counts.append([word, 1])
        return dict(counts)
    '''
)

_WORDS_V2A = _TOKENIZE.replace(
    '"""Word statistics."""\n', '"""Word statistics."""\n\nfrom collections import Counter\n'
) + dedent(
    '''


    def word_counts(text):
        """Return a dict mapping each word of ``text`` to its number of occurrences."""
        return dict(Counter(tokenize(text)))
    '''
)

_WORDS_V2 = _WORDS_V2A.replace(
    'its number of occurrences."""',
    'its number of occurrences.\n\n    Linear time: uses collections.Counter.\n    """',
)

_WORDS_V3 = _WORDS_V2.replace(
    "    return [word.strip(PUNCTUATION).lower() for word in text.split()]\n",
    '    words = (word.strip(PUNCTUATION).lower() for word in (text or "").split())\n'
    "    return [word for word in words if word]\n",
)

_SENTENCES_V1 = dedent(
    '''
    """Sentence statistics."""

    import re

    _END = re.compile(r"[.!?]+")


    def sentence_count(text):
        """Return the number of sentences in ``text``."""
        return len([part for part in _END.split(text) if part.strip()])
    '''
)
_SENTENCES_V2 = _SENTENCES_V1.replace("    return len(", "    if not text:\n        return 0\n    return len(")

_INIT_V1 = dedent(
    '''
    """textkit: tiny text statistics."""

    from textkit.words import tokenize, word_counts

    __version__ = "0.1.0"
    '''
)
_INIT_V2 = _INIT_V1.replace("from textkit.words", "from textkit.sentences import sentence_count\nfrom textkit.words")

_ASV = dedent(
    """
    {
        "version": 1,
        "project": "textkit",
        "project_url": "https://github.com/sample-org/textkit",
        "repo": "..",
        "branches": ["main"],
        "environment_type": "virtualenv",
        "benchmark_dir": "benchmarks",
        "env_dir": "env",
        "results_dir": "results",
        "html_dir": "html"
    }
    """
)

_BENCH_V1 = dedent(
    """
    from textkit.words import word_counts


    class WordCounts:
        def setup(self):
            self.text = " ".join(f"word{i % 500}" for i in range(10000))

        def time_word_counts(self):
            word_counts(self.text)
    """
)
_BENCH_V2 = dedent(
    """
    from textkit.sentences import sentence_count
    from textkit.words import word_counts


    class WordCounts:
        def setup(self):
            self.text = " ".join(f"word{i % 500}" for i in range(10000))

        def time_word_counts(self):
            word_counts(self.text)


    def time_sentence_count():
        sentence_count("One. Two! Three? " * 1000)
    """
)

_README_V1 = dedent(
    """
    # textkit

    Tiny text statistics for Python.

        pip install .

    Benchmarks live in `asv_bench/` (airspeed velocity): `cd asv_bench && asv run`.
    """
)
_README_V2 = _README_V1 + dedent(
    """

    ## Usage

        >>> from textkit import word_counts
        >>> word_counts("the cat and the hat")
        {'the': 2, 'cat': 1, 'and': 1, 'hat': 1}
    """
)
_DOCS_V1 = "# textkit\n\nSee `word_counts` in `textkit/words.py`.\n"
_DOCS_USAGE = dedent(
    """
    # Usage

    `word_counts(text)` lower-cases words and strips surrounding punctuation.
    """
)

SPEC = RepoSpec(
    name="sample-org/textkit",
    steps=(
        Step(
            kind="initial",
            commit=Commit(
                message="Initial commit",
                author=ALICE,
                authored="2024-01-05T09:00:00+00:00",
                files={
                    ".gitignore": GITIGNORE,
                    "README.md": _README_V1,
                    "docs/index.md": _DOCS_V1,
                    "pyproject.toml": pyproject("textkit", "0.1.0", "Tiny text statistics."),
                    "textkit/__init__.py": _INIT_V1,
                    "textkit/words.py": _WORDS_V1,
                    "asv_bench/asv.conf.json": _ASV,
                    "asv_bench/benchmarks/__init__.py": "",
                    "asv_bench/benchmarks/bench_words.py": _BENCH_V1,
                },
            ),
        ),
        Step(
            kind="speedup",
            pr_number=4,
            branch="alice/faster-counts",
            branch_commits=(
                Commit(
                    message="Use collections.Counter in word_counts",
                    author=ALICE,
                    authored="2024-02-01T10:00:00+00:00",
                    files={"textkit/words.py": _WORDS_V2A},
                ),
                Commit(
                    message="Document complexity of word_counts",
                    author=ALICE,
                    authored="2024-02-02T11:30:00+00:00",
                    files={"textkit/words.py": _WORDS_V2},
                ),
            ),
            commit=Commit(
                message=("Merge pull request #4 from alice/faster-counts\n\nUse collections.Counter in word_counts\n"),
                author=BOB,
                authored="2024-02-06T15:00:00+00:00",
                committer=GITHUB,
            ),
        ),
        Step(
            kind="docs_only",
            pr_number=5,
            branch="bob/usage-docs",
            branch_commits=(
                Commit(
                    message="Add usage section",
                    author=BOB,
                    authored="2024-02-09T13:00:00+00:00",
                    files={"README.md": _README_V2, "docs/usage.md": _DOCS_USAGE},
                ),
            ),
            commit=Commit(
                message="Merge pull request #5 from bob/usage-docs\n\nDocument word_counts usage\n",
                author=ALICE,
                authored="2024-02-13T17:00:00+00:00",
                committer=GITHUB,
            ),
        ),
        Step(
            kind="fix",
            pr_number=6,
            commit=Commit(
                message="Handle empty input (#6)\n\ntokenize() now drops empty tokens and accepts None.\n",
                author=CAROL,
                authored="2024-03-01T00:30:00+00:00",
                committer=GITHUB,
                committed="2024-02-29T23:30:00+00:00",
                files={"textkit/words.py": _WORDS_V3},
            ),
        ),
        Step(
            kind="feature",
            pr_number=10,
            branch="carol/sentence-count",
            branch_commits=(
                Commit(
                    message="Add sentence_count",
                    author=CAROL,
                    authored="2024-03-08T10:00:00+00:00",
                    files={
                        "textkit/sentences.py": _SENTENCES_V1,
                        "textkit/__init__.py": _INIT_V2,
                    },
                ),
                Commit(
                    message="Benchmark sentence_count and handle empty text",
                    author=CAROL,
                    authored="2024-03-11T09:15:00+00:00",
                    files={
                        "textkit/sentences.py": _SENTENCES_V2,
                        "asv_bench/benchmarks/bench_words.py": _BENCH_V2,
                    },
                ),
            ),
            commit=Commit(
                message=("Merge pull request #10 from carol/sentence-count\n\nAdd sentence_count helper\n"),
                author=ALICE,
                authored="2024-03-12T12:00:00+00:00",
                committer=GITHUB,
            ),
        ),
    ),
)
