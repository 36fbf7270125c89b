"""Base vs merged timings -> a verdict per benchmark and the human speed-up of a task.

Per benchmark (samples pooled over the interleaved rounds, seconds per call):

* ``ratio`` = median(base) / median(merged): above 1 the change made it faster;
* a two-sided Mann-Whitney U test on the two sample sets (``p_value``);
* ``spread`` = the larger relative inter-quartile range of the two sides;
* the verdict: ``noisy`` when a side spreads more than ``max_spread`` (unless every sample of one
  side is faster than every sample of the other: noise cannot explain that) or the rounds disagree on
  the direction of a difference the test calls significant; otherwise ``improved`` /
  ``regressed`` when significant (``p < alpha``) and beyond ``threshold`` (default 1.05x) in
  every round, else ``unchanged``.

Per task: the improved benchmarks, the human speed-up (geometric mean of their ratios) and
``oracle_ok``: at least one benchmark improved (significantly, beyond the threshold). Peers: GSO
keeps >= 1.2x over repeated runs, SWE-Perf repeats + trims outliers + Mann-Whitney, FormulaCode's
successor asks for an oracle >= 1.05x.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from scipy.stats import mannwhitneyu

VERDICTS = ("improved", "unchanged", "regressed", "noisy", "failed")


@dataclass(frozen=True)
class VerdictSettings:
    threshold: float = 1.05  # a speed-up counts from this ratio on
    alpha: float = 0.01  # Mann-Whitney significance level
    max_spread: float = 0.3  # relative IQR above which a benchmark is too noisy to judge


@dataclass
class BenchmarkVerdict:
    benchmark: str
    verdict: str
    ratio: float | None = None
    p_value: float | None = None
    spread: float | None = None
    base_median_s: float | None = None
    merged_median_s: float | None = None
    round_ratios: list[float] | None = None
    n_base: int = 0
    n_merged: int = 0
    reason: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def relative_iqr(samples: Sequence[float]) -> float:
    if len(samples) < 4:
        return 0.0
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    median = statistics.median(samples)
    return (q3 - q1) / median if median > 0 else math.inf


def judge_benchmark(
    name: str,
    base_rounds: Sequence[Sequence[float]],
    merged_rounds: Sequence[Sequence[float]],
    settings: VerdictSettings = VerdictSettings(),
) -> BenchmarkVerdict:
    """The verdict of one benchmark from its per-round samples (see the module doc)."""
    base = [s for r in base_rounds for s in r]
    merged = [s for r in merged_rounds for s in r]
    if len(base) < 2 or len(merged) < 2 or min(base + merged) <= 0:
        return BenchmarkVerdict(name, "failed", n_base=len(base), n_merged=len(merged), reason="too few timings")
    base_median, merged_median = statistics.median(base), statistics.median(merged)
    ratio = base_median / merged_median
    p_value = float(mannwhitneyu(base, merged, alternative="two-sided").pvalue)
    spread = max(relative_iqr(base), relative_iqr(merged))
    round_ratios = [
        statistics.median(b) / statistics.median(m) for b, m in zip(base_rounds, merged_rounds, strict=False) if b and m
    ]
    verdict = BenchmarkVerdict(
        name,
        "unchanged",
        round(ratio, 6),
        p_value,
        round(spread, 4),
        base_median,
        merged_median,
        [round(r, 4) for r in round_ratios],
        len(base),
        len(merged),
    )
    significant = p_value < settings.alpha
    faster = all(r >= settings.threshold for r in round_ratios) and ratio >= settings.threshold
    slower = all(r <= 1 / settings.threshold for r in round_ratios) and ratio <= 1 / settings.threshold
    separated = max(merged) < min(base) or max(base) < min(merged)
    if spread > settings.max_spread and not separated:
        verdict.verdict, verdict.reason = "noisy", f"relative IQR {spread:.2f} > {settings.max_spread}"
    elif significant and (ratio >= settings.threshold or ratio <= 1 / settings.threshold) and not (faster or slower):
        verdict.verdict, verdict.reason = "noisy", "rounds disagree on the difference"
    elif significant and faster:
        verdict.verdict = "improved"
    elif significant and slower:
        verdict.verdict = "regressed"
    return verdict


@dataclass
class TaskSpeedup:
    improved: list[str]
    human_speedup: float | None  # geometric mean of the improved benchmarks' ratios
    oracle_ok: bool
    verdict_counts: dict[str, int]


def summarize(verdicts: Sequence[BenchmarkVerdict]) -> TaskSpeedup:
    improved = sorted(v.benchmark for v in verdicts if v.verdict == "improved")
    ratios = [v.ratio for v in verdicts if v.verdict == "improved" and v.ratio]
    speedup = math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else None
    counts = {name: sum(v.verdict == name for v in verdicts) for name in VERDICTS}
    return TaskSpeedup(improved, speedup, bool(improved), {k: n for k, n in counts.items() if n})


def judge_all(
    timings: Mapping[str, Mapping[str, Sequence[Sequence[float]]]], settings: VerdictSettings = VerdictSettings()
) -> list[BenchmarkVerdict]:
    """``timings[benchmark] = {"base": [round samples...], "merged": [...]}`` -> verdicts, by name."""
    return [
        judge_benchmark(name, t.get("base", []), t.get("merged", []), settings) for name, t in sorted(timings.items())
    ]
