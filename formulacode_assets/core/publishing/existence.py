"""Does the registry really have every image the ``images`` table says it published?"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq

from formulacode_assets.core.publishing.builder import PUBLISHED
from formulacode_assets.core.publishing.image_names import ImageName
from formulacode_assets.core.publishing.registries import Registry, RegistryError


def published_rows(images_dir: Path, months: Sequence[str] | None = None) -> list[dict]:
    """The ``pushed`` / ``exists`` rows of the months written under ``images_dir`` (all, or ``months``)."""
    rows = []
    files = {m[:7] for m in months} if months is not None else None
    for path in sorted(Path(images_dir).glob("*.parquet")):
        if files is not None and path.stem not in files:
            continue
        table = pq.read_table(path, columns=["month", "repo_name", "base_sha", "image_name", "digest", "status"])
        rows.extend(r for r in table.to_pylist() if r["status"] in PUBLISHED)
    return rows


def parse_reference(reference: str) -> ImageName:
    repository, _, tag = reference.rpartition(":")
    return ImageName(repository, tag)


def missing_images(registry: Registry, rows: Sequence[dict]) -> list[dict]:
    """Rows whose tag the registry does not have (or whose digest changed), with why."""
    missing = []
    for row in rows:
        try:
            digest = registry.manifest_digest(parse_reference(row["image_name"]))
        except RegistryError as exc:
            missing.append({"image_name": row["image_name"], "month": row["month"], "why": str(exc)})
            continue
        if digest is None:
            missing.append({"image_name": row["image_name"], "month": row["month"], "why": "no such tag"})
        elif row.get("digest") and digest != row["digest"]:
            missing.append({"image_name": row["image_name"], "month": row["month"], "why": f"digest is now {digest}"})
    return missing
