"""The FormulaCode task table: one task per performance change whose base has a published image.

A task id is ``<owner>__<repo>-<pr number>`` (``-<short sha>`` for direct pushes): readable,
and stable across runs because it depends only on the change itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime

from formulacode_assets.core.publishing.builder import WITH_IMAGE

SHORT_SHA = 8


def task_id_of(repo_name: str, pr_number: int | None, merge_commit: str) -> str:
    owner, _, name = repo_name.partition("/")
    suffix = str(pr_number) if pr_number is not None else merge_commit[:SHORT_SHA]
    return f"{owner}__{name}-{suffix}"


def task_rows(
    month: str, images: Sequence[Mapping], contexts: Sequence[Mapping], perf_commits: Sequence[Mapping]
) -> tuple[list[dict], list[dict]]:
    """``(tasks, excluded)``: excluded entries name the change (or context) and why it has no task."""
    changes = {(r["repo_name"], r["merge_commit_sha"]): r for r in perf_commits if r.get("is_performance")}
    image_of = {(r["repo_name"], r["base_sha"]): r for r in images}
    tasks, excluded = [], []
    for ctx in contexts:
        key = (ctx["repo_name"], ctx["base_sha"])
        image = image_of.get(key)
        why = None
        if ctx.get("status") != "ok":
            why = f"context {ctx.get('status')}: {ctx.get('reason')}"
        elif image is None:
            why = "no images row for the context"
        elif image["status"] not in WITH_IMAGE:
            why = f"image {image['status']}: {image.get('reason')}"
        for merge_sha in ctx.get("merge_commit_shas") or []:
            change = changes.get((ctx["repo_name"], merge_sha))
            if why or change is None:
                excluded.append(
                    {
                        "repo_name": ctx["repo_name"],
                        "base_sha": ctx["base_sha"],
                        "merge_commit": merge_sha,
                        "reason": why or "not a performance change in perf_commits",
                    }
                )
                continue
            tasks.append(
                {
                    "month": month,
                    "task_id": task_id_of(ctx["repo_name"], change.get("pr_number"), merge_sha),
                    "repo_name": ctx["repo_name"],
                    "pr_number": change.get("pr_number"),
                    "base_commit": ctx["base_sha"],
                    "merge_commit": merge_sha,
                    "merged_at": change["merged_at"],
                    "patch": change.get("patch"),
                    "problem_statement": change.get("problem_statement"),
                    "category": change.get("category"),
                    "difficulty": change.get("difficulty"),
                    "classifier": change.get("classifier"),
                    "image_name": image["image_name"],
                    "image_digest": image.get("digest"),
                    "benchmarks": list(image.get("benchmarks") or []),
                    "status": "ok",
                    "reason": None,
                }
            )
    # Two changes with one PR number (a re-landed PR): keep both, told apart by their sha.
    counts = Counter(t["task_id"] for t in tasks)
    for task in tasks:
        if counts[task["task_id"]] > 1:
            task["task_id"] = f"{task['task_id']}-{task['merge_commit'][:SHORT_SHA]}"
    tasks.sort(key=lambda t: t["task_id"])
    return tasks, excluded


def decontamination_problems(
    tasks_by_month: Mapping[str, Sequence[Mapping]],
    windows: Mapping[str, tuple[datetime, datetime]],
    other_months: Mapping[str, str] | None = None,
) -> list[str]:
    """Breaches of the monthly split: a task merged outside its month, or a task id in two months.

    ``other_months`` maps task ids already published in months outside this run to their month.
    """
    problems = []
    seen: dict[str, str] = dict(other_months or {})
    for month in sorted(tasks_by_month):
        start, end = windows[month]
        for task in tasks_by_month[month]:
            merged = task["merged_at"]
            if merged is None or not (start <= merged < end):
                problems.append(f"{task['task_id']}: merged_at {merged} lies outside {month} [{start}, {end})")
            previous = seen.get(task["task_id"])
            if previous is not None and previous != month:
                problems.append(f"{task['task_id']}: also a task of {previous}")
            seen[task["task_id"]] = month
    return problems
