import pyarrow.parquet as pq
from dagster import AssetExecutionContext, MetadataValue

from formulacode_assets.assets._monthly import MonthlyInput, monthly_asset, monthly_output, tables_by_month
from formulacode_assets.core.contracts import DATASET, TASKS
from formulacode_assets.core.publishing import dataset as dataset_core
from formulacode_assets.core.publishing.dataset import data_file, upload_dataset, write_dataset
from formulacode_assets.resources.publishing import PublishingResource


@monthly_asset(
    DATASET, versioned_by=(dataset_core,), group_name="publishing", kinds={"huggingface"}, pool="registry_push"
)
def dataset(context: AssetExecutionContext, publishing: PublishingResource, tasks: MonthlyInput):
    """The tasks of every month as a Hugging Face dataset folder under ``<data>/hf_dataset``.

    This run's months come from the input, the other months from their task files; the folder is
    rewritten whole so ``default`` always spans every month. Uploaded only when ``HF_TOKEN`` and
    ``FORMULACODE_HF_REPO_ID`` are set.
    """
    fresh = tables_by_month(context, tasks)
    every_month = {}
    folder = publishing.asset_dir("tasks")
    for path in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
        every_month[f"{path.stem}-01"] = pq.read_table(path)
    every_month.update(fresh)
    written = write_dataset(publishing.dataset_dir, every_month, TASKS.schema)
    uploaded, status, reason = (
        None,
        "skipped",
        "HF_TOKEN and FORMULACODE_HF_REPO_ID not both set: the folder is the product",
    )
    if publishing.hf_token and publishing.hf_repo_id:
        try:
            uploaded = upload_dataset(
                written.path, publishing.hf_repo_id, publishing.hf_token, private=publishing.hf_private
            )
            status, reason = "ok", None
            context.log.info(f"dataset: uploaded to the Hugging Face dataset {uploaded}")
        except Exception as exc:  # the folder is still there; the row says why the upload failed
            status, reason = "failed", f"upload failed: {type(exc).__name__}: {exc}"[:500]
    context.log.info(
        f"dataset: folder {written.path} ({sum(written.months.values())} tasks, {len(written.months)} months)"
    )
    tables = {
        month: DATASET.to_table(
            [
                {
                    "month": month,
                    "config": month[:7],
                    "n_tasks": written.months.get(month[:7], 0),
                    "n_verified": written.verified.get(month[:7], 0),
                    "dataset_dir": str(written.path),
                    "data_file": data_file(month),
                    "uploaded_to": uploaded,
                    "status": status,
                    "reason": reason,
                }
            ]
        )
        for month in fresh
    }
    metadata = {
        "dataset_dir": MetadataValue.path(str(written.path)),
        "months_in_dataset": MetadataValue.json(written.months),
        "card": MetadataValue.md((written.path / "README.md").read_text()[:4000]),
    }
    yield from monthly_output(context, DATASET, tables, metadata)
