"""Which benchmarks exercise a change: coverage first, then name matching, then a deterministic sample.

Running every benchmark of a real suite (hundreds, seconds each) does not fit a validation
budget, and timing benchmarks the change never reaches measures nothing. So, per context:

1. :func:`changed_lines` reads the lines of the base commit that the change rewrites (deleted or
   modified lines, and the line at each pure insertion) from ``git diff -U0`` of the mirror;
2. a probe (:data:`PROBE_DRIVER`, run by the built environment's own Python) executes each
   discovered benchmark's setup and one call with a line tracer limited to the changed files, in
   a priority order (name-matched benchmarks first) until its time budget runs out; each
   benchmark gets its own timeout (``SIGALRM``), the other benchmarks of a class (or module) whose
   benchmark timed out are skipped (they share its slow setup), and results are written line by
   line, so a probe killed at the budget still counts what it did;
3. :func:`select_benchmarks` (pure) keeps the benchmarks that executed a changed line (rule
   ``coverage``); when none did, the name-matched ones (``name``); else a deterministic sample
   (``sample``, the benchmarks the probe ran quickly first); suites small enough run whole
   (``all``). A few other benchmarks join as a smoke sample (``smoke``).

The probe runs at the base commit (the environment a context validates): the changed base lines
are exactly the code whose speed the change alters.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from formulacode_assets.core.mining.git import run_git

RULES = ("coverage", "name", "sample", "all", "smoke")
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


@dataclass(frozen=True)
class SelectionSettings:
    budget_s: float = 120  # the whole probe (setup + one call per benchmark, under the tracer)
    benchmark_timeout_s: float = 20  # one benchmark's probe
    run_all_below: int = 20  # suites this small run whole
    max_selected: int = 25  # coverage picks kept (name-matched and shortest first)
    name_selected: int = 10  # name-rule picks kept (the probe's quick ones first)
    sample_size: int = 5  # the fallback sample when nothing matched
    smoke: int = 3  # other benchmarks added as a smoke sample


@dataclass
class Selection:
    selected: list[str]  # what the quick run (and the speed-up measurement) times
    rules: dict[str, str]  # benchmark -> rule that chose it
    probed: int = 0
    covering: list[str] = field(default_factory=list)  # benchmarks that executed a changed line
    probe_errors: dict[str, str] = field(default_factory=dict)
    probe_seconds: float = 0.0

    @property
    def primary(self) -> list[str]:
        """The benchmarks chosen for the change itself (not the smoke sample)."""
        return [name for name in self.selected if self.rules.get(name) != "smoke"]

    @property
    def rule(self) -> str:
        """The rule that chose the primary benchmarks."""
        rules = {self.rules[name] for name in self.primary}
        return next((r for r in RULES if r in rules), "none")

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "rules": self.rules,
            "probed": self.probed,
            "covering": self.covering,
            "probe_errors": dict(list(self.probe_errors.items())[:20]),
            "probe_seconds": round(self.probe_seconds, 3),
        }


# ---------------------------------------------------------------------------------------------
# What the change touches
# ---------------------------------------------------------------------------------------------


def parse_changed_lines(diff: str) -> dict[str, list[int]]:
    """``{base path: [lines]}`` of a ``git diff -U0`` (Python files only; added files have none)."""
    changed: dict[str, set[int]] = {}
    path = None
    for line in diff.splitlines():
        if line.startswith("--- "):
            name = line[4:].strip()
            path = name[2:] if name.startswith("a/") else None
            if path is not None and not path.endswith(".py"):
                path = None
            continue
        match = _HUNK.match(line)
        if match and path is not None:
            start, count = int(match.group(1)), int(match.group(2) or "1")
            lines = changed.setdefault(path, set())
            if count:
                lines.update(range(start, start + count))
            else:  # a pure insertion after ``start``: its neighbours are the code it extends
                lines.update({max(1, start), start + 1})
    return {p: sorted(lines) for p, lines in sorted(changed.items())}


def changed_lines(mirror, base_sha: str, merge_shas: Iterable[str]) -> dict[str, list[int]]:
    """The base lines each change rewrites, merged over the changes on this base."""
    merged: dict[str, set[int]] = {}
    for merge in merge_shas:
        diff = run_git(mirror, ["diff", "-U0", "--no-color", "--no-renames", base_sha, merge, "--"], timeout=120)
        for path, lines in parse_changed_lines(diff.decode("utf-8", "replace")).items():
            merged.setdefault(path, set()).update(lines)
    return {p: sorted(lines) for p, lines in sorted(merged.items())}


def path_suffix(path: str) -> str:
    """The tail of a repository path an installed copy still ends with (``src/pkg/m.py`` -> ``pkg/m.py``)."""
    parts = PurePosixPath(path).parts
    return "/".join(parts[-2:]) if len(parts) >= 2 else path


# ---------------------------------------------------------------------------------------------
# The pure selection
# ---------------------------------------------------------------------------------------------

_BENCH_AFFIXES = re.compile(r"^(benchmarks?_|bench_|test_|perf_)|(_benchmarks?|_bench|_perf)$")


def _tokens(name: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", name.lower()) if len(t) > 2}


def name_matches(benchmark: str, changed_paths: Iterable[str]) -> bool:
    """A benchmark module (or class) named like a changed module: ``bench_io.Read`` <-> ``pkg/io.py``."""
    module_parts = benchmark.split(".")[:-1]
    names = {_BENCH_AFFIXES.sub("", part.lower()) for part in module_parts}
    names.discard("")
    for path in changed_paths:
        stem = PurePosixPath(path).stem.lower()
        if stem in ("__init__", "conftest") or stem.startswith("test_"):
            stem = PurePosixPath(path).parent.name.lower()
        if not stem:
            continue
        if stem in names or any(stem in _tokens(n) or n in _tokens(stem) for n in names if len(n) > 2):
            return True
    return False


def _stable_order(names: Iterable[str], salt: str = "") -> list[str]:
    return sorted(names, key=lambda n: hashlib.sha256(f"{salt}:{n}".encode()).hexdigest())


def probe_order(discovered: Sequence[str], changed_paths: Iterable[str], salt: str = "") -> list[str]:
    """Name-matched benchmarks first (they are the likeliest to cover the change), then the rest."""
    paths = list(changed_paths)
    matched = [b for b in discovered if name_matches(b, paths)]
    rest = _stable_order((b for b in discovered if b not in set(matched)), salt)
    return matched + rest


def select_benchmarks(
    discovered: Sequence[str],
    changed: Mapping[str, Sequence[int]],
    probe: Mapping[str, Mapping] | None,
    settings: SelectionSettings = SelectionSettings(),
    salt: str = "",
) -> Selection:
    """The benchmarks to time for a change, each with the rule that chose it (see the module doc).

    ``probe`` maps probed benchmarks to ``{"hit": bool, "seconds": float, "error": str | None}``.
    """
    discovered = sorted(set(discovered))
    probe = probe or {}
    errors = {name: str(p["error"]) for name, p in probe.items() if p.get("error")}
    seconds = sum(float(p.get("seconds") or 0) for p in probe.values())
    if len(discovered) <= settings.run_all_below:
        return Selection(list(discovered), dict.fromkeys(discovered, "all"), len(probe), [], errors, seconds)
    paths = list(changed)
    covering = sorted(name for name, p in probe.items() if p.get("hit") and name in discovered)
    named = [b for b in discovered if name_matches(b, paths)]
    if covering:
        # Name-matched and quick ones first: they time fastest and exercise the change most directly.
        ranked = sorted(covering, key=lambda n: (n not in named, float(probe[n].get("seconds") or 0), n))
        primary, rule = ranked[: settings.max_selected], "coverage"
    elif named:
        # Quick ones first, and none the probe saw fail or time out while others are left: a
        # module named like a big changed file (``dataset``) matches dozens of slow I/O benchmarks.
        healthy_named = [b for b in named if b not in errors] or named
        primary, rule = _quick_first(healthy_named, probe)[: settings.name_selected], "name"
    else:
        primary, rule = _quick_first(_stable_order(discovered, salt), probe)[: settings.sample_size], "sample"
    rules = dict.fromkeys(primary, rule)
    healthy = [b for b in _stable_order(discovered, "smoke" + salt) if b not in rules and b not in errors]
    healthy = _quick_first(healthy, probe)
    for name in healthy[: settings.smoke]:
        rules[name] = "smoke"
    selected = sorted(rules)
    return Selection(selected, rules, len(probe), covering, errors, seconds)


def _quick_first(names: Sequence[str], probe: Mapping[str, Mapping]) -> list[str]:
    """Benchmarks the probe ran cleanly, quickest first, then the unprobed; the ones that failed it last.

    A sample only has to show that the environment times benchmarks: one whose setup takes
    minutes (a large graph built per call) would spend the validation budget on nothing.
    """

    def key(name: str) -> tuple[int, float]:
        seen = probe.get(name)
        if seen is None:
            return (1, 0.0)
        return (2, 0.0) if seen.get("error") else (0, float(seen.get("seconds") or 0))

    return sorted(names, key=key)  # stable: ties keep the deterministic order


def bench_regexes(names: Iterable[str]) -> list[str]:
    """asv ``--bench`` patterns matching exactly these benchmarks (parameterized ones with every parameter)."""
    return [f"^{re.escape(name)}(\\(|$)" for name in names]


# ---------------------------------------------------------------------------------------------
# The probe (runs inside the environment, with its own Python: nothing to install)
# ---------------------------------------------------------------------------------------------

PROBE_DRIVER = r"""
import json, os, signal, sys, time, traceback
spec = json.loads(sys.argv[1])
root = os.path.abspath(spec["benchmark_dir"])
suffixes = {("/" + s): set(lines) for s, lines in spec["changed"].items()}
out = open(spec["out"], "a", buffering=1)
from asv_runner.discovery import get_benchmark_from_name

class Timeout(Exception):
    pass

def on_alarm(signum, frame):
    raise Timeout()

signal.signal(signal.SIGALRM, on_alarm)
hits = set()

def watched(filename):
    for suffix, lines in suffixes.items():
        if filename.endswith(suffix):
            return lines
    return None

cache = {}

def tracer(frame, event, arg):
    code = frame.f_code
    lines = cache.get(code.co_filename, 0)
    if lines == 0:
        lines = cache[code.co_filename] = watched(code.co_filename)
    if lines is None:
        return None
    def local(frame, event, arg):
        if event == "line" and frame.f_lineno in lines:
            hits.add(1)
        return local
    if frame.f_lineno in lines:
        hits.add(1)
    return local

slow = set()  # classes (or modules) one of whose benchmarks timed out: their setup is shared

for name in spec["names"]:
    started = time.monotonic()
    hits.clear()
    error = None
    owner = name.rsplit(".", 1)[0]
    if owner in slow:
        out.write(json.dumps({"name": name, "hit": False, "seconds": 0.0,
                              "error": "skipped: a benchmark of " + owner + " timed out in the probe"}) + "\n")
        continue
    signal.setitimer(signal.ITIMER_REAL, spec["timeout"])
    try:
        bench = get_benchmark_from_name(root, name)
        if getattr(bench, "_params", None):
            bench.set_param_idx(0)
        sys.settrace(tracer)
        try:
            bench.set_cache(bench.do_setup_cache() if bench.setup_cache_key is not None else None)
            if not bench.do_setup():
                try:
                    bench.func(*bench._build_params())
                finally:
                    bench.do_teardown()
        finally:
            sys.settrace(None)
    except Timeout:
        error = "timeout"
        slow.add(owner)
    except BaseException as exc:
        error = (type(exc).__name__ + ": " + str(exc))[:300]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    out.write(json.dumps({"name": name, "hit": bool(hits), "seconds": round(time.monotonic() - started, 4),
                          "error": error}) + "\n")
"""


def probe_spec(
    benchmark_dir: str, names: Sequence[str], changed: Mapping[str, Sequence[int]], timeout: float, out: str
) -> str:
    """The driver's single argument (JSON)."""
    return json.dumps(
        {
            "benchmark_dir": benchmark_dir,
            "names": list(names),
            "changed": {path_suffix(p): list(lines) for p, lines in changed.items()},
            "timeout": float(timeout),
            "out": out,
        }
    )


def read_probe(text: str) -> dict[str, dict]:
    """The probe's JSON lines (a half-written last line, from a kill, is ignored)."""
    found = {}
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "name" in row:
            found[row["name"]] = row
    return found
