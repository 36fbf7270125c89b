from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetExecutionContext, MetadataValue

from formulacode_assets.assets._monthly import (
    BUILD_BACKFILL,
    MonthlyInput,
    monthly_asset,
    monthly_output,
    months_of_run,
    tables_by_month,
)
from formulacode_assets.checks import monthly_asset_check
from formulacode_assets.core.contracts import IMAGES
from formulacode_assets.core.publishing import build_context, builder, image_names
from formulacode_assets.core.publishing.builder import ImagePublisher
from formulacode_assets.core.publishing.existence import missing_images, published_rows
from formulacode_assets.resources.docker_engine import DockerEngineResource
from formulacode_assets.resources.git_source import GitSourceResource
from formulacode_assets.resources.publishing import PublishingResource, RegistryResource, engine_for_images


@monthly_asset(
    IMAGES,
    versioned_by=(builder, build_context, image_names),
    group_name="publishing",
    kinds={"docker"},
    pool="docker_build",
    backfill_policy=BUILD_BACKFILL,
)
def images(
    context: AssetExecutionContext,
    git_source: GitSourceResource,
    docker_engine: DockerEngineResource,
    registry: RegistryResource,
    publishing: PublishingResource,
    contexts: MonthlyInput,
):
    """One image per validated context, published to the configured registry.

    The registry is asked for each tag's manifest before anything is built: an existing tag is
    ``exists`` and costs no build. Without an engine the rows are ``not_built`` with the reason and
    the rendered build contexts are still kept under ``<data>/build_contexts``.
    """
    client, about, toolchains = engine_for_images(docker_engine, log=context.log.info)
    (context.log.info if client else context.log.warning)(f"images: {about}")
    target = registry.registry()
    context.log.info(f"images: registry {target.describe() if target else 'none (images are built only)'}")
    publisher = ImagePublisher(
        client=client,
        unavailable_reason=about,
        toolchains=toolchains,
        registry=target,
        context_dir=publishing.context_dir,
        mirror_path=git_source.mirror_path,
        settings=publishing.settings(),
        log=context.log.info,
    )
    by_month = tables_by_month(context, contexts)
    tables = {}
    try:
        for month, _start, _end in months_of_run(context):
            rows = by_month[month].to_pylist()
            context.log.info(f"{month}: {sum(r['status'] == 'ok' for r in rows)} validated contexts of {len(rows)}")
            tables[month] = IMAGES.to_table(publisher.rows_for_month(month, rows))
    finally:
        if client is not None:
            client.close()
    metadata = {
        "engine": MetadataValue.text(about),
        "registry": MetadataValue.text(target.describe() if target else "none"),
        "builds": MetadataValue.int(publisher.builds),
        "pushes": MetadataValue.int(publisher.pushes),
        "manifest_lookups": MetadataValue.int(publisher.lookups),
        "build_contexts": MetadataValue.path(str(publishing.context_dir)),
    }
    yield from monthly_output(context, IMAGES, tables, metadata)


@monthly_asset_check(asset=images, description="every pushed / exists image of the month is in the registry")
def images_exist(
    context: AssetCheckExecutionContext, registry: RegistryResource, publishing: PublishingResource
) -> AssetCheckResult:
    """Asks the registry for the month's published images (manifest lookup); fails naming the missing ones.

    Runs after each month's ``images`` (one month per run, ``BUILD_BACKFILL``), or on its own for a
    month to see whether its images are still there.
    """
    target = registry.registry()
    months = context.op_execution_context.partition_keys
    rows = published_rows(publishing.asset_dir("images"), months)
    if target is None:
        return AssetCheckResult(passed=True, metadata={"note": "no registry configured: nothing to look up"})
    missing = missing_images(target, rows)
    return AssetCheckResult(
        passed=not missing,
        description=("missing from the registry: " + ", ".join(m["image_name"] for m in missing)) if missing else None,
        metadata={
            "checked": MetadataValue.int(len(rows)),
            "missing": MetadataValue.json(missing),
        },
    )
