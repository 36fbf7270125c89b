"""The task table as a Hugging Face dataset folder: parquet per month and a card declaring the configs.

Configs: ``default`` (every month), one per month (``YYYY-MM``), and ``verified`` (the tasks listed
in the hand-edited ``verified_tasks.txt`` of the folder; empty until someone lists one). The folder
is the product; with a token and a repo id it is also uploaded with ``huggingface_hub``.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

VERIFIED_FILE = "verified_tasks.txt"
SPLIT = "test"
_VERIFIED_HEADER = (
    "# Task ids marked verified by a person, one per line (lines starting with # are ignored).\n"
    "# The dataset's 'verified' config holds exactly these tasks.\n"
)


@dataclass(frozen=True)
class DatasetFolder:
    path: Path
    months: dict[str, int]  # YYYY-MM -> tasks
    verified: dict[str, int]  # YYYY-MM -> verified tasks

    def data_file(self, month: str) -> str:
        return data_file(month)


def data_file(month: str) -> str:
    return f"data/tasks-{month[:7]}.parquet"


def read_verified(folder: Path) -> set[str]:
    path = Path(folder) / VERIFIED_FILE
    if not path.exists():
        return set()
    return {line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")}


def write_dataset(folder: Path, tasks_by_month: Mapping[str, pa.Table], schema: pa.Schema) -> DatasetFolder:
    """(Re)write the folder from every month's tasks; ``verified_tasks.txt`` is kept (created if missing)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / VERIFIED_FILE).exists():
        (folder / VERIFIED_FILE).write_text(_VERIFIED_HEADER)
    verified_ids = read_verified(folder)
    for sub in ("data", "verified"):
        shutil.rmtree(folder / sub, ignore_errors=True)
        (folder / sub).mkdir()
    months, verified, verified_tables, everything = {}, {}, [], []
    for month in sorted(tasks_by_month):
        table = tasks_by_month[month].cast(schema)
        pq.write_table(table, folder / data_file(month), compression="zstd")
        marked = table.filter(pc.is_in(table.column("task_id"), pa.array(sorted(verified_ids), pa.string())))
        months[month[:7]], verified[month[:7]] = table.num_rows, marked.num_rows
        verified_tables.append(marked)
        everything.append(table)
    verified_table = pa.concat_tables(verified_tables) if verified_tables else schema.empty_table()
    pq.write_table(verified_table, folder / "verified" / "tasks.parquet", compression="zstd")
    combined = pa.concat_tables(everything) if everything else schema.empty_table()
    (folder / "README.md").write_text(dataset_card(months, verified, combined))
    return DatasetFolder(folder, months, verified)


def dataset_card(months: Mapping[str, int], verified: Mapping[str, int], tasks: pa.Table) -> str:
    def config(name: str, path: str) -> str:
        return f'- config_name: "{name}"\n  data_files:\n  - split: {SPLIT}\n    path: {path}\n'

    configs = config("default", "data/tasks-*.parquet") if months else ""
    configs += "".join(config(month, data_file(month)) for month in sorted(months))
    configs += config("verified", "verified/tasks.parquet")
    categories = Counter(tasks.column("category").to_pylist()) if tasks.num_rows else Counter()
    repositories = Counter(tasks.column("repo_name").to_pylist()) if tasks.num_rows else Counter()

    def table(title: str, counts: Mapping, header: str) -> str:
        rows = "".join(f"| {key} | {n} |\n" for key, n in counts) or "| _none_ | 0 |\n"
        return f"### {title}\n\n| {header} | tasks |\n|---|---|\n{rows}\n"

    return (
        "---\n"
        f"configs:\n{configs}"
        "pretty_name: FormulaCode tasks\n"
        "tags:\n- code\n- performance\n- benchmark\n"
        "---\n\n"
        "# FormulaCode tasks\n\n"
        "One row per performance-improving change of a Python project with asv benchmarks: the code "
        "before the change (`base_commit`), the change (`patch`), the problem it solves, and the Docker "
        "image (`image_name`) where the project is installed at `base_commit` with its benchmarks ready.\n\n"
        f"Configs: `default` (all months), one per month (`YYYY-MM`), and `verified` "
        f"(tasks listed in `{VERIFIED_FILE}`: {sum(verified.values())} so far). Split: `{SPLIT}`.\n\n"
        f"{sum(months.values())} tasks in {len(months)} months.\n\n"
        + table("Per month", sorted(months.items()), "month")
        + table("Per category", sorted(categories.items(), key=lambda kv: (-kv[1], str(kv[0]))), "category")
        + table("Per repository", sorted(repositories.items(), key=lambda kv: (-kv[1], kv[0])), "repository")
    )


def upload_dataset(folder: Path, repo_id: str, token: str, *, private: bool = True) -> str:
    """Upload the folder to the Hugging Face dataset repo ``repo_id`` (created when missing)."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset", commit_message="FormulaCode tasks")
    return repo_id
