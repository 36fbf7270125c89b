"""The keyword heuristic that judges changes when no LM is configured: transparent and recall-leaning.

Every verdict names the words that decided it; the rule tables and the functions' source make up
:data:`HEURISTIC_VERSION`, the ``prompt_version`` of heuristic rows, so editing a rule marks old
months stale the same way editing a prompt does.
"""

import hashlib
import inspect
import json
import re
from collections.abc import Mapping

from formulacode_assets.core.classification import prefilter
from formulacode_assets.core.classification.programs import Verdict, pr_text

# Remarks in added lines (comments, docstrings) that say the change is about speed.
PATCH_SIGNALS: tuple[tuple[str, re.Pattern], ...] = tuple(
    (label, re.compile(pattern, re.IGNORECASE))
    for label, pattern in (
        ("complexity", r"\bO\((?:[^()]|\([^()]*\))*\)|\bquadratic\b|\b(?:linear|constant|log(?:arithmic)?)[- ]time\b"),
        ("speed", r"\bfaster\b|\bspeed[- ]?up\b|\bperformance\b|\boptimi[sz]\w*"),
        ("avoided work", r"\binstead of (?:scanning|looping|iterating|recomputing|copying|trial)\b"),
    )
)

# First match wins; title and body are searched before the added lines of the patch.
CATEGORY_KEYWORDS: tuple[tuple[str, re.Pattern], ...] = tuple(
    (category, re.compile(pattern, re.IGNORECASE))
    for category, pattern in (
        (
            "parallelization",
            r"\bparallel\w*|\bmulti[- ]?(?:thread|process|core)|\bconcurren\w*|\bthread[- ]?pool|\bgil\b",
        ),
        ("cache and reuse", r"\bcach(?:e|es|ed|ing)\b|\bmemoi[sz]\w*|\breuse\w*|\blru_cache\b"),
        ("lower-level system", r"\bvectori[sz]\w*|\bcython|\bnumba\b|\bjit\b|\bsimd\b|\bc extension|\bintrinsics?\b"),
        ("less precise but faster", r"\bapproximat\w*|\bfloat32\b|\blower precision\b|\bsampl(?:e|ing)\b"),
        ("better algorithm", r"\balgorithm\w*|\bsieve\b|\bO\(|\bquadratic\b|\bcomplexity\b|\bbinary search\b"),
        ("better data structure or layout", r"\bdata structure|\bcounter\b|\bdeque\b|\bheap\b|\blayout\b|\bset\(\)"),
        (
            "remove or reduce work",
            r"\bavoid\w*|\bskip\w*|\bunnecessary\b|\bredundant\b|\bonly visit|\bshort[- ]circuit|\blaz",
        ),
        (
            "do it earlier / batch / throttle",
            r"\bbatch\w*|\bbulk\b|\bprecomput|\bup-?front\b|\bthrottl\w*|\bamortiz\w*",
        ),
        ("database and storage tuning", r"\bdatabase\b|\bsql\b|\bquery\b|\bindex(?:es)?\b|\bcompression\b"),
        ("I/O and latency hiding", r"\bi/o\b|\bbuffer\w*|\bstream\w*|\bmmap\b|\basync\w*|\blatency\b|\bprefetch\w*"),
        ("micro-optimizations", r"\bmicro\w*|\binlin\w*|\battribute lookup|\blocal variable"),
        ("scale platform", r"\bgpus?\b|\bcuda\b|\bdistributed\b|\bcluster\b"),
    )
)


def _added_lines(patch: str | None) -> str:
    return "\n".join(
        line[1:] for line in (patch or "").splitlines() if line.startswith("+") and not line.startswith("+++")
    )


def _first(signals: tuple[tuple[str, re.Pattern], ...], *texts: str) -> tuple[str, str] | None:
    for text in texts:
        for label, pattern in signals:
            match = pattern.search(text)
            if match:
                return label, match.group(0).strip()
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

    Performance-improving when the change touches library code and either the PR text carries a
    performance signal (the pre-filter's list) or an added line remarks on complexity or speed
    ("Linear time", "O(n log n)", "faster"), unless the title reads as maintenance without a
    performance signal. Category: first keyword match (PR text, then added lines); difficulty: size.
    The problem statement is the PR title and body.
    """
    text = pr_text(change)
    added = _added_lines(change.get("patch"))
    text_signal = prefilter.performance_signal(text)
    patch_signal = _first(PATCH_SIGNALS, added)
    maintenance = prefilter.maintenance_signal(change.get("title"))
    if not change.get("touches_core"):
        return Verdict(False, "heuristic: touches no library code (only tests, docs, CI, build or benchmarks)")
    if text_signal:
        evidence = f"performance signal in the PR text ({text_signal})"
    elif patch_signal and not maintenance:
        evidence = f"added lines remark on {patch_signal[0]} ({patch_signal[1]!r})"
    else:
        why = f"maintenance title ({maintenance})" if maintenance else "no performance signal in the text or the diff"
        return Verdict(False, f"heuristic: {why}")
    category = _first(CATEGORY_KEYWORDS, text, added)
    difficulty = heuristic_difficulty(change)
    lines = (change.get("additions") or 0) + (change.get("deletions") or 0)
    files = change.get("n_files") or 0
    reasoning = (
        f"heuristic: {evidence}; category "
        + (f"{category[0]!r} from {category[1]!r}" if category else "'uncategorized' (no keyword)")
        + f"; difficulty {difficulty!r} from size ({lines} changed lines in {files} file{'s' if files != 1 else ''})"
    )
    return Verdict(
        True,
        reasoning,
        category=category[0] if category else "uncategorized",
        difficulty=difficulty,
        problem_statement=text,
        problem_statement_source="pr_text",
    )


def _heuristic_version() -> str:
    tables = [
        [(label, p.pattern) for label, p in table]
        for table in (prefilter.PERFORMANCE_SIGNALS, prefilter.MAINTENANCE_SIGNALS, PATCH_SIGNALS, CATEGORY_KEYWORDS)
    ]
    code = "".join(inspect.getsource(f) for f in (heuristic_verdict, heuristic_difficulty, _added_lines, _first))
    return "heuristic-" + hashlib.sha256((json.dumps(tables) + code).encode()).hexdigest()[:12]


HEURISTIC_VERSION = _heuristic_version()
