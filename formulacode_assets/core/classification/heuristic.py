"""The keyword heuristic that judges changes when no LM is configured: transparent and recall-leaning.

Every verdict names the words that decided it (``Verdict.evidence``, the row's ``heuristic_evidence``):
``+label 'match' (title)`` for a word that counted, ``-why 'match' (body)`` for one set aside by a
context rule. The rule tables and the functions' source make up :data:`HEURISTIC_VERSION`, the
``prompt_version`` of heuristic rows, so editing a rule marks old months stale the same way editing a
prompt does.

Context rules (measured on ``formulacode_assets_tests/data/heuristic_labelled.jsonl``, real PR
titles and bodies; recall stays 100% there):

- a word inside an identifier or code span does not count (``optimize_edit_paths``,
  ``DataTree.copy()``, ``flake8-perf``, ``PERF401``, anything in backticks), except memoization tools
  (``lru_cache``, ``cached_property``), which only name speed;
- a line that names a linter or a lint rule code reads as lint, not as speed ("Apply ruff/Perflint rule
  PERF401", "C409 Unnecessary `tuple` literal");
- a dependency named with a performance word (Numba, Cython, Pythran, bottleneck, numexpr, speedups,
  fast-histogram, ``actions/cache``) in a dependency context (bump, pin, update, install, requirement,
  environment, wheels, a version) is a package name; "bottleneck" counts only as "a/the bottleneck";
- speed of CI, tests, docs or builds is not speed of the library ("run tests in parallel");
- the title sets how much the rest may say: a **deprecation** title ("Deprecate …", "Remove
  deprecated …", "Expire …") or a **bug-fix** title ("Fix …", "BUG: …", "fix … when …") counts only
  a strong performance word in the title itself ("Fix performance regression in interp", "Fix
  accidentally quadratic …", "Fix drop_encoding to avoid copying data"); a **new-feature** title
  ("Add …", "Implement …") ignores weak words of the body (copy, cache, lazy, parallel, …); a
  **maintenance** title (docs, CI, lint, tests, typo, revert, release, chore) is not performance, and
  a dependency or packaging title counts only strong title words ("BLD: enable -O3 optimization").

Categories come from category-specific phrasing, read in order (title, then the body sentence by
sentence, then added lines): "parallelization" needs parallel-specific words (parallelize, in
parallel, multiprocessing, thread pool, prange, OpenMP, release the GIL), never a bare "GIL".
"""

import hashlib
import inspect
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from formulacode_assets.core.classification import prefilter
from formulacode_assets.core.classification.programs import Verdict, pr_text

_I = re.IGNORECASE

# Remarks in added lines (comments, docstrings) that say the change is about speed.
PATCH_SIGNALS: tuple[tuple[str, re.Pattern], ...] = tuple(
    (label, re.compile(pattern, _I))
    for label, pattern in (
        ("complexity", r"\bO\((?:[^()]|\([^()]*\))*\)|\bquadratic\b|\b(?:linear|constant|log(?:arithmic)?)[- ]time\b"),
        ("speed", r"\bfaster\b|\bspeed[- ]?up\b|\bperformance\b|\boptimi[sz]\w*"),
        ("avoided work", r"\binstead of (?:scanning|looping|iterating|recomputing|copying|trial)\b"),
    )
)

# Signals the pre-filter does not need (it keeps such changes anyway) but the judge does.
EXTRA_SIGNALS: tuple[tuple[str, re.Pattern], ...] = tuple(
    (label, re.compile(pattern, _I))
    for label, pattern in (
        (
            "avoided work",
            r"\b(?:avoid\w*|prevent\w*|skip\w*|no longer|reduc\w*|fewer|less)\s+(?:[\w-]+\s+){0,3}?"
            r"(?:cop(?:y|ies|ying)|load\w*|re-?comput\w*|comput\w*|alloc\w*|cast\w*|conver\w*|calls?|scans?"
            r"|imports?|passes|work|iterations?|broadcast\w*)\b",
        ),
        ("time spent", r"\b(?:significant|most of the|much of the) time\b|\btime (?:is )?spent\b"),
        ("memoization tool", r"\blru_cache\b|\bfunctools\.cache\b|\bcached_property\b"),
        ("avoided copy", r"\b(?:copy|deep)\s*=\s*False\b"),
        ("avoided work", r"\breduc\w*\s+(?:\w+\s+){0,2}?(?:graph|task|memory|array|index|intermediate)\s+sizes?\b"),
    )
)

# Words that say "speed" on their own; the others (copy, cache, lazy, parallel, ...) are weak: common
# in bug fixes and features, so they count only where the title leaves room for them.
STRONG_LABELS = frozenset(
    {
        "speed",
        "faster",
        "slow",
        "optimize",
        "performance",
        "efficiency",
        "latency",
        "throughput",
        "overhead",
        "memory use",
        "complexity",
        "benchmark result",
        "hot path",
        "bottleneck",
        "vectorize",
        "import time",
        "avoided work",
        "time spent",
        "memoization tool",
        "avoided copy",
    }
)
_MEMORY_USE = re.compile(
    r"\bmemory[- ](?:usage|use|consumption|footprint|requirements?|pressure|peak)\b"
    r"|\b(?:reduc\w*|less|lower\w*|minimi[sz]\w*|sav\w*|fewer|smaller)\s+(?:\w+\s+){0,2}?memory\b|\bpeak memory\b",
    _I,
)
_NO_IDENTIFIER_RULE = frozenset({"complexity", "benchmark result", "memoization tool", "avoided copy"})
# "owner/name" of an action, a linter's rule set or a URL: a name, not a word ("Refactor/optimize" is words).
_OWNER_PATH = re.compile(
    r"^(?:https?:|www\.|(?:actions|ruff|pypa|docker|github|codecov|dependabot|pre-commit|astral-sh|conda-forge"
    r"|scientific-python|[\w.-]*\.\w+)/)",
    _I,
)

# --- context rules -------------------------------------------------------------------------------

_LINT_LINE = re.compile(
    r"(?i:\b(?:ruff|flake8[\w-]*|pylint|perflint|pyflakes|pycodestyle|refurb|pyupgrade|bugbear|cython-lint|linters?"
    r"|linting|rule[- ]?sets?)\b)|\b[A-Z]{1,5}\d{3,4}\b|\b[A-Z]{2,5}\s+(?i:rules?)\b"
)
_PACKAGE_WORDS = re.compile(
    r"^(?:numba|cython|pythran|numexpr|bottleneck|speedups|fast-histogram|fastjsonschema|fastparquet|cachetools)$",
    _I,
)
_DEPENDENCY_LINE = re.compile(
    r"\b(?:bump\w*|pin|pinn\w*|pins|unpin\w*|upgrad\w*|updat\w*|install\w*|requir\w*|constraints?|dependenc\w*"
    r"|wheels?|conda(?:-forge)?|pip|pypi|environments?|versions?|meson|setup\.py|pyproject)\b|[<>=]=?\s*v?\d",
    _I,
)
_BOTTLENECK_MEANT = re.compile(
    r"\b(?:a|an|the|main|major|big|biggest|real|primary|performance|this|that)\s+bottleneck\b|\bbottlenecks\b"
    r"|\bbottleneck\s+(?:in|of|for|is|was|when|here)\b",
    _I,
)
_INFRASTRUCTURE = re.compile(
    r"\b(?:faster|speed\w*(?:[- ]?ups?)?|slow\w*|paralleli[sz]\w*|parallel|optimi[sz]\w*)\s+(?:[\w-]+\s+){0,2}?"
    r"(?:ci|tests?|test suite|testing|test coverage|coverage|docs|documentation|doc builds?|builds?|workflows?|jobs?)\b"
    r"|\b(?:ci|tests?|docs|builds?|test suite)\s+(?:[\w-]+\s+){0,2}?(?:faster|in parallel)\b",
    _I,
)
_MEASURE_NAME = re.compile(r"\b(?:local|global|nodal|partition|clustering)\s+efficienc\w*", _I)
_TOKEN_EDGE = "()[]{},;:!?\"'*<>`“”"

TITLE_KINDS: tuple[tuple[str, re.Pattern], ...] = (
    (
        "deprecation",
        re.compile(
            r"^\W*(?:[A-Z]+:\s*)?(?:deprecat\w*|un-?deprecat\w*|remov\w*\s+(?:the\s+)?deprecat\w*|expir\w*)", _I
        ),
    ),
    (
        "bug fix",
        re.compile(
            r"^\W*(?:[A-Z]+:\s*)?(?:bug\w*|fix\w*|hotfix|bugfix|correct\w*)\b|^\W*BUG\b|\bfix\w*\b.*\b(?:when|if)\b", _I
        ),
    ),
    ("new feature", re.compile(r"^\W*(?:ENH:\s*)?(?:add|adds|added|adding|implement\w*|introduc\w*|new)\b", _I)),
)
_PASSING_MAINTENANCE = frozenset({"version bump", "dependency pins", "packaging"})
_CONDITION = re.compile(r"\b(?:when|if|while)\b", _I)
_EXAMPLES_TITLE = re.compile(r"\b(?:examples?|docstrings?|gallery)\b", _I)


@dataclass(frozen=True)
class _Hit:
    label: str
    text: str
    where: str  # title | body | diff
    strong: bool
    discounted: str | None  # why it does not count, or None


def _line_of(text: str, start: int, end: int) -> tuple[str, int]:
    left = text.rfind("\n", 0, start) + 1
    right = text.find("\n", end)
    return text[left : right if right != -1 else len(text)], left


def _token_of(text: str, start: int, end: int) -> str:
    left, right = start, end
    while left > 0 and not text[left - 1].isspace():
        left -= 1
    while right < len(text) and not text[right].isspace():
        right += 1
    return text[left:right].strip(_TOKEN_EDGE).rstrip(".")


def _in_code_span(line: str, offset: int) -> bool:
    return line.count("`", 0, offset) % 2 == 1


def _is_identifier(token: str) -> bool:
    return bool(
        "_" in token
        or token.count("/") > 1
        or _OWNER_PATH.match(token)
        or "=" in token
        or re.search(r"\w\.\w", token)
        or (re.search(r"\d", token) and not re.fullmatch(r"[\d.]+\s*[x×]?", token))
    )


def _discount(label: str, text: str, start: int, end: int) -> str | None:
    """Why the match at ``text[start:end]`` is not a performance word here (None: it counts)."""
    line, line_start = _line_of(text, start, end)
    token = _token_of(text, start, end)
    if label not in _NO_IDENTIFIER_RULE:
        if _in_code_span(line, start - line_start):
            return f"code span '{token}'"
        if _is_identifier(token):
            return f"identifier '{token}'"
    if _LINT_LINE.search(line):
        return f"lint rule name '{token}'"
    if _PACKAGE_WORDS.match(token) or label in {"JIT", "bottleneck"}:
        if label == "bottleneck" and not _BOTTLENECK_MEANT.search(line):
            return f"package name '{token}'"
        if _DEPENDENCY_LINE.search(line) and (_PACKAGE_WORDS.match(token) or label == "JIT"):
            return f"dependency name '{token}'"
    offset = start - line_start
    if any(m.start() <= offset < m.end() for m in _INFRASTRUCTURE.finditer(line)):
        return "about CI/tests/docs"
    if label == "efficiency" and _MEASURE_NAME.search(line):
        return f"measure name '{_MEASURE_NAME.search(line).group(0)}'"
    return None


def _hits(text: str, where: str) -> list[_Hit]:
    hits = []
    for signal, pattern in (*prefilter.PERFORMANCE_SIGNALS, *EXTRA_SIGNALS):
        for match in pattern.finditer(text or ""):
            start, end = match.span()
            label, strong = signal, signal in STRONG_LABELS
            if signal == "memory":
                strong = bool(_MEMORY_USE.search(_line_of(text, start, end)[0]))
                label = "memory use" if strong else "memory"
            why = _discount(label, text, start, end)
            if why is None and where == "title" and not strong and _CONDITION.search(text, 0, start):
                why = "weak word in a 'when/if' clause"
            hits.append(_Hit(label, match.group(0).strip(), where, strong, why))
    return hits


def title_kind(title: str | None) -> tuple[str, str] | None:
    """``(kind, why)`` of a title that limits which words count, else None (a plain code change)."""
    title = title or ""
    maintenance = prefilter.maintenance_signal(title)
    if maintenance:
        return "maintenance", maintenance
    if _EXAMPLES_TITLE.search(title):
        return "maintenance", f"docs: {_EXAMPLES_TITLE.search(title).group(0)!r}"
    for kind, pattern in TITLE_KINDS:
        match = pattern.search(title)
        if match:
            return kind, match.group(0).strip()
    return None


def _counts(hit: _Hit, kind: str | None, maintenance_label: str | None) -> str | None:
    """None when the hit counts, else why the title does not let it count."""
    if hit.discounted:
        return hit.discounted
    if kind == "maintenance":
        if maintenance_label in _PASSING_MAINTENANCE and hit.where == "title" and hit.strong:
            return None
        return f"maintenance title ({maintenance_label})"
    if kind in ("deprecation", "bug fix"):
        return None if hit.where == "title" and hit.strong else f"{kind} title"
    if kind == "new feature" and not hit.strong and hit.where != "title":
        return "weak word in a new feature's text"
    return None


def _evidence(counted: list[_Hit], set_aside: list[tuple[_Hit, str]], limit: int = 6) -> str:
    parts = [f"+{h.label} {h.text!r} ({h.where})" for h in counted[:limit]]
    seen = set()
    for hit, why in set_aside:
        if len(parts) >= 2 * limit or (why, hit.text.lower()) in seen:
            continue
        seen.add((why, hit.text.lower()))
        parts.append(f"-{why}: {hit.text!r} ({hit.where})")
    return "; ".join(parts)


def _added_lines(patch: str | None) -> str:
    return "\n".join(
        line[1:] for line in (patch or "").splitlines() if line.startswith("+") and not line.startswith("+++")
    )


# First match wins within a piece of text; pieces are read in order (title, body sentences, added lines).
CATEGORY_KEYWORDS: tuple[tuple[str, re.Pattern], ...] = tuple(
    (category, re.compile(pattern, _I))
    for category, pattern in (
        (
            "parallelization",
            r"\bparalleli[sz]\w*|\bparallelism\b|\bin parallel\b|\bparallel (?:execution|processing|computation|jobs?"
            r"|workers?|threads?|loops?|reads?|writes?|open\w*|map\w*|for)\b|\bmulti-?(?:thread\w*|process\w*|cores?)\b"
            r"|\b(?:thread|process)[- ]?pools?\b|\bprange\b|\bopenmp\b|\bjoblib\b|\bconcurren(?:cy|tly)\b"
            r"|\breleas(?:e|es|ed|ing) the gil\b|\bnogil\b|\bwithout the gil\b",
        ),
        ("cache and reuse", r"\bcach(?:e|es|ed|ing)\b|\bmemoi[sz]\w*|\breuse\w*|\blru_cache\b|\bcached_property\b"),
        (
            "lower-level system",
            r"\bvectori[sz]\w*|\bcython\w*|\bnumba\b|\bjit\b|\bsimd\b|\bc extension|\bintrinsics?\b",
        ),
        ("less precise but faster", r"\bapproximat\w*|\bfloat32\b|\blower precision\b|\bsampl(?:e|ing)\b"),
        ("better algorithm", r"\balgorithm\w*|\bsieve\b|\bO\(|\bquadratic\b|\bcomplexity\b|\bbinary search\b"),
        (
            "better data structure or layout",
            r"\bdata structure|\bcounter\b|\bdeque\b|\bheap\b|\blayout\b|\bset\(\)|\bqueue\b|\bpre-?allocat\w*",
        ),
        (
            "remove or reduce work",
            r"\bavoid\w*|\bskip\w*|\bunnecessary\b|\bredundant\b|\bonly visit|\bshort[- ]circuit|\blaz(?:y|ily)\b"
            r"|\bearly (?:break|exit|return)\b|\bfast[- ]?path\b|\bdefer\w*",
        ),
        (
            "do it earlier / batch / throttle",
            r"\bbatch\w*|\bbulk\b|\bprecomput\w*|\bup-?front\b|\bthrottl\w*|\bamortiz\w*",
        ),
        ("database and storage tuning", r"\bdatabase\b|\bsql\b|\bquery\b|\bindex(?:es)?\b|\bcompression\b"),
        ("I/O and latency hiding", r"\bi/o\b|\bbuffer\w*|\bstream\w*|\bmmap\b|\basync\w*|\blatency\b|\bprefetch\w*"),
        ("micro-optimizations", r"\bmicro\w*|\binlin\w*|\battribute lookup|\blocal variable"),
        ("scale platform", r"\bgpus?\b|\bcuda\b|\bdistributed\b|\bcluster\b"),
    )
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def _category(title: str, body: str, added: str) -> tuple[str, str, str] | None:
    """``(category, matched words, where)`` from the first piece of text naming a technique."""
    pieces = [(title, "title")] + [(s, "body") for s in _SENTENCE.split(body or "") if s.strip()] + [(added, "diff")]
    for piece, where in pieces:
        for category, pattern in CATEGORY_KEYWORDS:
            for match in pattern.finditer(piece):
                if not _discount(category, piece, *match.span()):
                    return category, match.group(0).strip(), where
    return None


def heuristic_difficulty(change: Mapping) -> str:
    """By size: easy < 30 changed lines in <= 2 files, medium < 300 lines in <= 10 files, else hard."""
    lines = (change.get("additions") or 0) + (change.get("deletions") or 0)
    files = change.get("n_files") or 0
    if lines < 30 and files <= 2:
        return "easy"
    if lines < 300 and files <= 10:
        return "medium"
    return "hard"


def heuristic_verdict(change: Mapping) -> Verdict:
    """Keyword rules used when no LM is configured; transparent, recall-leaning, and recorded as such.

    Performance-improving when the change touches library code and a performance word of the PR text
    counts under the context rules of this module, or (no such word, and a title that is neither
    maintenance nor a deprecation) an added line remarks on complexity or speed ("Linear time",
    "O(n log n)", "faster"). Category: category-specific phrasing; difficulty: size. The problem
    statement is the PR title and body; ``evidence`` lists the words that decided.
    """
    title, body = change.get("title") or "", change.get("body") or ""
    if not change.get("touches_core"):
        return Verdict(
            False,
            "heuristic: touches no library code (only tests, docs, CI, build or benchmarks)",
            evidence="-touches no library code",
        )
    kind = title_kind(title)
    kind_name, kind_why = kind if kind else (None, None)
    maintenance_label = kind_why.split(":")[0] if kind_name == "maintenance" else None
    counted, set_aside = [], []
    for hit in _hits(title, "title") + _hits(body, "body"):
        why = _counts(hit, kind_name, maintenance_label)
        if why is None:
            counted.append(hit)
        else:
            set_aside.append((hit, why))
    added = _added_lines(change.get("patch"))
    if not counted and kind_name not in ("maintenance", "deprecation"):
        for label, pattern in PATCH_SIGNALS:
            match = pattern.search(added)
            if match:
                counted.append(_Hit(f"remark on {label}", match.group(0).strip(), "diff", True, None))
                break
    evidence = _evidence(counted, set_aside)
    if kind and not counted:
        evidence = f"-{kind_name} title ({kind_why})" + (f"; {evidence}" if evidence else "")
    if not counted:
        why = f"{kind_name} title ({kind_why})" if kind else "no performance signal in the text or the diff"
        return Verdict(False, f"heuristic: {why}", evidence=evidence or "-no performance word")
    category = _category(title, body, added)
    if category:
        evidence += f"; category from {category[1]!r} ({category[2]})"
    difficulty = heuristic_difficulty(change)
    lines = (change.get("additions") or 0) + (change.get("deletions") or 0)
    files = change.get("n_files") or 0
    first = counted[0]
    if first.where == "diff":
        decided = f"added lines remark on {first.label.removeprefix('remark on ')} ({first.text!r})"
    else:
        decided = f"performance signal in the PR text ({first.label}: {first.text!r})"
    reasoning = (
        f"heuristic: {decided}; category "
        + (f"{category[0]!r} from {category[1]!r}" if category else "'uncategorized' (no keyword)")
        + f"; difficulty {difficulty!r} from size ({lines} changed lines in {files} file{'s' if files != 1 else ''})"
    )
    return Verdict(
        True,
        reasoning,
        category=category[0] if category else "uncategorized",
        difficulty=difficulty,
        problem_statement=pr_text(change),
        problem_statement_source="pr_text",
        evidence=evidence,
    )


def _heuristic_version() -> str:
    tables = [
        [(label, p.pattern) for label, p in table]
        for table in (
            prefilter.PERFORMANCE_SIGNALS,
            prefilter.MAINTENANCE_SIGNALS,
            PATCH_SIGNALS,
            EXTRA_SIGNALS,
            CATEGORY_KEYWORDS,
            TITLE_KINDS,
        )
    ]
    patterns = [
        p.pattern
        for p in (
            _MEMORY_USE,
            _LINT_LINE,
            _PACKAGE_WORDS,
            _DEPENDENCY_LINE,
            _BOTTLENECK_MEANT,
            _INFRASTRUCTURE,
            _MEASURE_NAME,
            _OWNER_PATH,
            _EXAMPLES_TITLE,
            _CONDITION,
            _SENTENCE,
        )
    ]
    code = inspect.getsource(inspect.getmodule(_heuristic_version))
    blob = json.dumps([tables, patterns, sorted(STRONG_LABELS)]) + code
    return "heuristic-" + hashlib.sha256(blob.encode()).hexdigest()[:12]


HEURISTIC_VERSION = _heuristic_version()
