"""The columns of each stage, declared once: they build the table, describe it in the UI, and check it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa

STATUSES = ("ok", "skipped", "failed")
_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    description: str
    nullable: bool = True


@dataclass(frozen=True)
class Contract:
    """A stage's columns; ``key`` names the columns that identify a row within a month."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    statuses: tuple[str, ...] = STATUSES

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(
            [
                pa.field(c.name, c.type, nullable=c.nullable, metadata={"description": c.description})
                for c in self.columns
            ]
        )

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_table(self, rows: Iterable[Mapping]) -> pa.Table:
        """Build the typed table (missing keys become nulls; unknown keys are an error)."""
        rows = list(rows)
        allowed = set(self.names)
        for row in rows:
            extra = set(row) - allowed
            if extra:
                raise ValueError(f"{self.name}: unexpected columns {sorted(extra)}")
        return pa.Table.from_pylist([{name: row.get(name) for name in self.names} for row in rows], schema=self.schema)

    def violations(self, table: pa.Table) -> list[str]:
        """Contract breaches of a table: missing or mistyped columns, nulls where none may be."""
        problems = []
        for column in self.columns:
            if column.name not in table.column_names:
                problems.append(f"missing column {column.name}")
                continue
            actual = table.schema.field(column.name).type
            if actual != column.type:
                problems.append(f"column {column.name} is {actual}, expected {column.type}")
            elif not column.nullable and table.column(column.name).null_count:
                problems.append(f"column {column.name} has {table.column(column.name).null_count} nulls")
        if "status" in table.column_names:
            bad = set(table.column("status").to_pylist()) - set(self.statuses)
            if bad:
                problems.append(f"unknown status values {sorted(map(str, bad))}")
        return problems


def _status_columns() -> tuple[Column, ...]:
    return (
        Column("status", pa.string(), "ok / skipped / failed", nullable=False),
        Column("reason", pa.string(), "why a row was skipped or failed (null when ok)"),
    )


_MONTH = Column("month", pa.string(), "partition key of the month (YYYY-MM-01)", nullable=False)
_REPO = Column("repo_name", pa.string(), "owner/name", nullable=False)

REPOS_DISCOVERED = Contract(
    "repos_discovered",
    (
        _MONTH,
        _REPO,
        Column("url", pa.string(), "git remote from the repository list (GitHub: learned in repos_valid)"),
        Column("default_branch", pa.string(), "branch named in the repository list, if any"),
        Column("discovered_by", pa.string(), "sample / csv / search / search+csv", nullable=False),
        Column("asv_conf_path", pa.string(), "where code search found asv.conf.json"),
        *_status_columns(),
    ),
    key=("repo_name",),
)

REPOS_VALID = Contract(
    "repos_valid",
    (
        _MONTH,
        _REPO,
        Column("url", pa.string(), "git remote the mirror fetches from"),
        Column("source", pa.string(), "sample / git / github", nullable=False),
        Column("default_branch", pa.string(), "branch whose first-parent history is mined"),
        Column("head_sha", pa.string(), "tip of the default branch at the end of the month"),
        Column("stars", pa.int64(), "stargazers (GitHub source only)"),
        Column("watchers", pa.int64(), "watchers / subscribers (GitHub source only)"),
        Column("is_fork", pa.bool_(), "is a fork (GitHub source only)"),
        Column("fork_parent", pa.string(), "the repository it was forked from (GitHub source only)"),
        Column("is_archived", pa.bool_(), "is archived (GitHub source only)"),
        Column("is_disabled", pa.bool_(), "is disabled (GitHub source only)"),
        Column("renamed_from", pa.string(), "the name it was listed under, when GitHub redirected (301)"),
        Column("asv_conf_path", pa.string(), "path of asv.conf.json at head_sha"),
        Column("benchmark_dir", pa.string(), "resolved asv benchmark folder, relative to the root"),
        *_status_columns(),
    ),
    key=("repo_name",),
)

_CHANGE_COLUMNS = (
    _MONTH,
    _REPO,
    Column("merge_commit_sha", pa.string(), "first-parent commit that landed the change"),
    Column("base_sha", pa.string(), "its first parent: the code before the change"),
    Column("parent_count", pa.int32(), "2+ for a merge commit"),
    Column("pr_number", pa.int64(), "PR number from the message (null for direct pushes)"),
    Column("title", pa.string(), "PR title (or commit subject)"),
    Column("body", pa.string(), "PR description (or commit body)"),
    Column("author", pa.string(), "author name of the landing commit"),
    Column("author_email", pa.string(), "author email of the landing commit"),
    Column("authored_at", _TS, "author date, UTC"),
    Column("merged_at", _TS, "committer date of the landing commit, UTC: decides the month"),
    Column("merge_style", pa.string(), "merge / squash / direct"),
    # PR-only fields: null for the git source.
    Column("pr_url", pa.string(), "PR page (GitHub source)"),
    Column("pr_author", pa.string(), "PR author login (GitHub source)"),
    Column("pr_labels", pa.list_(pa.string()), "PR labels (GitHub source)"),
    Column("pr_created_at", _TS, "PR opened at, UTC (GitHub source; may be before the month)"),
    Column("pr_base_sha", pa.string(), "PR base.sha as GitHub reports it (GitHub source)"),
    Column("pr_head_sha", pa.string(), "PR head.sha (GitHub source)"),
    Column("pr_comments", pa.large_string(), "JSON list of issue comments made before the merge (GitHub source)"),
    Column("pr_review_comments", pa.large_string(), "JSON list of review comments made before the merge"),
    Column("linked_issues", pa.large_string(), "JSON list of issues the PR closes or links: repo, number, title, body"),
)

MERGE_COMMITS = Contract(
    "merge_commits",
    (*_CHANGE_COLUMNS, *_status_columns()),
    key=("repo_name", "merge_commit_sha"),
)

PATCHES = Contract(
    "patches",
    (
        *_CHANGE_COLUMNS,
        Column("patch", pa.large_string(), "unified diff against base_sha"),
        Column("patch_chars", pa.int64(), "length of the full diff (patch may be truncated)"),
        Column("patch_truncated", pa.bool_(), "patch was cut at the size cap"),
        Column("files_changed", pa.list_(pa.string()), "paths the change touches"),
        Column("n_files", pa.int32(), "number of files changed"),
        Column("additions", pa.int64(), "lines added"),
        Column("deletions", pa.int64(), "lines deleted"),
        Column("file_change_summary", pa.string(), "markdown table of the changed files"),
        Column("file_categories", pa.string(), "count of files per kind (bench, docs, core, ...)"),
        Column("bench_only", pa.bool_(), "only asv benchmarks / config changed"),
        Column("docs_only", pa.bool_(), "only documentation changed"),
        Column("touches_asv_conf", pa.bool_(), "asv.conf.json changed"),
        Column("touches_core", pa.bool_(), "a file outside tests/docs/examples/CI/bench/build/packaging changed"),
        *_status_columns(),
    ),
    key=("repo_name", "merge_commit_sha"),
)

_LABEL_COLUMNS = (
    Column(
        "prefilter_pass", pa.bool_(), "passed the keyword/size pre-filter and was sent to the judge", nullable=False
    ),
    Column("prefilter_reason", pa.string(), "why the pre-filter passed or rejected the change", nullable=False),
    Column("is_performance", pa.bool_(), "performance-improving (false when skipped, null when judging failed)"),
    Column("category", pa.string(), "kind of optimization (performance rows only)"),
    Column("difficulty", pa.string(), "easy / medium / hard (performance rows only)"),
    Column("reasoning", pa.string(), "the judge's (and classifier's) reasoning"),
    Column("problem_statement", pa.large_string(), "the problem the change solves, near-verbatim from the PR"),
    Column("problem_statement_source", pa.string(), "extracted (LM, near-verbatim) or pr_text (title + body)"),
    Column("classifier", pa.string(), "model name, or 'heuristic' when no LM is configured", nullable=False),
    Column("model", pa.string(), "the LM as routed (provider/model); null for the heuristic"),
    Column("prompt_version", pa.string(), "hash of the programs' prompts (or of the heuristic rules)", nullable=False),
    Column("heuristic_evidence", pa.string(), "heuristic: the words that decided (+counted, -set aside); else null"),
    Column("judge_patch_truncated", pa.bool_(), "the judge read the patch cut to its token budget (null: not judged)"),
)

PERF_COMMITS = Contract(
    "perf_commits",
    (
        *(c for c in PATCHES.columns if c.name not in ("status", "reason")),
        *_LABEL_COLUMNS,
        *(c for c in PATCHES.columns if c.name in ("status", "reason")),
    ),
    key=PATCHES.key,
)


CONTEXTS = Contract(
    "contexts",
    (
        Column("month", pa.string(), "partition key of the month (YYYY-MM-01)", nullable=False),
        Column("repo_name", pa.string(), "owner/name", nullable=False),
        Column("base_sha", pa.string(), "the commit the environment is built at", nullable=False),
        Column("merge_commit_shas", pa.list_(pa.string()), "the month's performance changes on this base"),
        Column("pr_numbers", pa.list_(pa.int64()), "their PR numbers"),
        Column("commit_date", _TS, "committer date of base_sha: dependencies are resolved as of it"),
        Column("asv_conf_path", pa.string(), "asv.conf.json at base_sha"),
        Column("benchmark_dir", pa.string(), "asv benchmark folder at base_sha"),
        Column("python_version", pa.string(), "Python chosen by the install analysis (X.Y.Z)"),
        Column("python_version_built", pa.string(), "Python the validated environment actually runs"),
        Column("requirements", pa.list_(pa.string()), "what was resolved: project dependencies + asv matrix"),
        Column("dependencies", pa.list_(pa.string()), "resolved pins as of the commit date"),
        Column("can_install", pa.bool_(), "the dependencies resolved (at some relaxation step)"),
        Column(
            "resolution_step", pa.string(), "wheels / sdists / matrix-unpinned / no-matrix / unbounded / later-cutoff"
        ),
        Column("resolution_log_tail", pa.large_string(), "uv pip compile log, newest last"),
        Column("pin_release_dates", pa.large_string(), "JSON {pin: release date (ISO) or null when unknown}"),
        Column("pins_flagged", pa.list_(pa.string()), "pins released more than two years before the commit"),
        Column("pins_floored", pa.list_(pa.string()), "floors added against old pins: pkg>=V (was pkg==old; now ...)"),
        Column("build_env_sh", pa.large_string(), "the validated script (or the last one tried)"),
        Column("script_source", pa.string(), "registry / template / agent (where build_env_sh came from)"),
        Column("reused", pa.bool_(), "taken from the registry without re-validation"),
        Column("validator", pa.string(), "docker / local"),
        Column("attempts", pa.int32(), "candidate scripts validated this run"),
        Column("attempt_log", pa.large_string(), "JSON list: each attempt's script, stage, reason, tails, duration"),
        Column("stage_failed", pa.string(), "analysis / checkout / build / machine / discovery / run / timeout / ..."),
        Column("stdout_tail", pa.large_string(), "end of the deciding step's standard output"),
        Column("stderr_tail", pa.large_string(), "end of the deciding step's standard error"),
        Column("benchmarks", pa.list_(pa.string()), "benchmarks discovered (in every repeat)"),
        Column("n_benchmarks", pa.int32(), "number of benchmarks discovered"),
        Column("benchmarks_failed", pa.list_(pa.string()), "run in the quick run but without a timing"),
        Column("benchmarks_selected", pa.list_(pa.string()), "what the quick run timed: chosen for the change + smoke"),
        Column("selection_rule", pa.string(), "coverage / name / sample / all: what chose the change's benchmarks"),
        Column("selection", pa.large_string(), "JSON: rule per benchmark, benchmarks probed / covering, probe errors"),
        Column("step_times", pa.large_string(), "JSON {step: seconds} of the deciding validation (kept on failure)"),
        Column("system_packages", pa.list_(pa.string()), "Debian packages apt installed in the image (null: none)"),
        Column("benchmarks_excluded", pa.list_(pa.string()), "benchmark modules set aside: they fail at import"),
        Column("benchmarks_stable", pa.bool_(), "same benchmark sets in every repeat"),
        Column("validations", pa.int32(), "repeats of discovery + quick run"),
        Column("duration_s", pa.float64(), "wall time spent on this context this run"),
        Column("validated_at", _TS, "when the context was validated"),
        Column("status", pa.string(), "ok / skipped / failed", nullable=False),
        Column("reason", pa.string(), "why a row was skipped or failed (null when ok)"),
    ),
    key=("repo_name", "base_sha"),
)


IMAGES = Contract(
    "images",
    (
        _MONTH,
        _REPO,
        Column("base_sha", pa.string(), "the commit the image is built at", nullable=False),
        Column("image_name", pa.string(), "registry reference (from the one image-name function)", nullable=False),
        Column("registry", pa.string(), "where it is published (kind and URL); null when no registry is configured"),
        Column("digest", pa.string(), "manifest digest the registry reported (built: the local image id)"),
        Column("size_bytes", pa.int64(), "image size in the engine that built it"),
        Column("benchmarks", pa.list_(pa.string()), "asv benchmarks discovered (recorded in a label and a file)"),
        Column("n_benchmarks", pa.int32(), "number of benchmarks"),
        Column("built", pa.bool_(), "a build ran this run (false for exists / not_built)"),
        Column("build_context_path", pa.string(), "the rendered, deterministic build context tar"),
        Column("build_context_sha256", pa.string(), "sha256 of that tar: same inputs, same bytes"),
        Column("build_log_tail", pa.large_string(), "end of the build output"),
        Column("duration_s", pa.float64(), "wall time spent on this image this run"),
        Column("status", pa.string(), "pushed / exists / built / not_built / failed", nullable=False),
        Column("reason", pa.string(), "why an image was not built or failed"),
    ),
    key=("repo_name", "base_sha"),
    statuses=("pushed", "exists", "built", "not_built", "failed"),
)

TASKS = Contract(
    "tasks",
    (
        _MONTH,
        Column("task_id", pa.string(), "<owner>__<repo>-<pr number or short sha>: stable across runs", nullable=False),
        _REPO,
        Column("pr_number", pa.int64(), "PR number (null for direct pushes)"),
        Column("base_commit", pa.string(), "the code before the change: the image is built here", nullable=False),
        Column("merge_commit", pa.string(), "the commit that landed the change", nullable=False),
        Column("merged_at", _TS, "when it landed, UTC: decides the month", nullable=False),
        Column("patch", pa.large_string(), "unified diff against base_commit"),
        Column("problem_statement", pa.large_string(), "the problem the change solves"),
        Column("category", pa.string(), "kind of optimization"),
        Column("difficulty", pa.string(), "easy / medium / hard"),
        Column("classifier", pa.string(), "model name, or 'heuristic'"),
        Column("image_name", pa.string(), "the task's image (from the one image-name function)", nullable=False),
        Column("image_digest", pa.string(), "its manifest digest"),
        Column("benchmarks", pa.list_(pa.string()), "asv benchmark names discovered in the image"),
        Column("status", pa.string(), "ok (rows without an image stay out; the metadata says why)", nullable=False),
        Column("reason", pa.string(), "null"),
    ),
    key=("task_id",),
)

DATASET = Contract(
    "dataset",
    (
        _MONTH,
        Column("config", pa.string(), "the dataset config of the month (YYYY-MM)", nullable=False),
        Column("n_tasks", pa.int64(), "tasks of the month in the dataset", nullable=False),
        Column("n_verified", pa.int64(), "of them marked verified", nullable=False),
        Column("dataset_dir", pa.string(), "the dataset folder (the product when nothing is uploaded)"),
        Column("data_file", pa.string(), "the month's parquet file, relative to the folder"),
        Column("uploaded_to", pa.string(), "Hugging Face repo id, when uploaded"),
        Column("status", pa.string(), "ok / skipped / failed", nullable=False),
        Column("reason", pa.string(), "why the upload was skipped or failed"),
    ),
    key=("config",),
)

HUMAN_SPEEDUPS = Contract(
    "human_speedups",
    (
        _MONTH,
        _REPO,
        Column("base_sha", pa.string(), "the context's commit: side A", nullable=False),
        Column("merge_commit_sha", pa.string(), "the performance change: side B", nullable=False),
        Column("pr_number", pa.int64(), "its PR number"),
        Column("benchmarks", pa.list_(pa.string()), "the benchmarks timed (the context's selection)"),
        Column("selection_rule", pa.string(), "coverage / name / sample / all: what chose them"),
        Column("rounds", pa.int32(), "interleaved A/B rounds"),
        Column("samples_per_round", pa.int32(), "timed samples per benchmark, side and round"),
        Column("verdicts", pa.large_string(), "JSON per benchmark: verdict, ratio, p_value, spread, medians"),
        Column("timings", pa.large_string(), "JSON {benchmark: {base|merged: [[seconds per call] per round]}}"),
        Column("improved", pa.list_(pa.string()), "benchmarks improved significantly beyond the threshold"),
        Column("n_improved", pa.int32(), "number of improved benchmarks"),
        Column("verdict_counts", pa.string(), "JSON {verdict: count}"),
        Column("human_speedup", pa.float64(), "geometric mean of the improved benchmarks' ratios (base / merged)"),
        Column("oracle_ok", pa.bool_(), "at least one benchmark improved: the change is a usable task"),
        Column("threshold", pa.float64(), "ratio from which a speed-up counts"),
        Column("alpha", pa.float64(), "Mann-Whitney significance level"),
        Column("benchmark_runs", pa.int64(), "benchmark sides timed this run (0: stored timings reused)"),
        Column("timings_reused", pa.bool_(), "every timing came from the timing store"),
        Column("measured_at", _TS, "when the verdicts were computed"),
        Column("duration_s", pa.float64(), "wall time spent on this task this run"),
        *_status_columns(),
    ),
    key=("repo_name", "merge_commit_sha"),
)


CONTRACTS = {
    c.name: c
    for c in (
        REPOS_DISCOVERED,
        REPOS_VALID,
        MERGE_COMMITS,
        PATCHES,
        PERF_COMMITS,
        CONTEXTS,
        HUMAN_SPEEDUPS,
        IMAGES,
        TASKS,
        DATASET,
    )
}
