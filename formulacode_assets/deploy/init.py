"""One-shot setup of a deployment (the compose ``init`` service): the bucket, the pools' limits.

Idempotent, so it runs on every ``docker compose up``: a bucket that exists is left alone and a
pool's limit is set to what the settings say.

- ``FORMULACODE_DATA_DIR=s3://bucket/prefix``: the bucket is created when missing (via boto3, which
  honours ``AWS_ENDPOINT_URL`` for minio or moto).
- ``FORMULACODE_POOL_LIMITS=github=2,llm=4,...``: each pool's limit in the instance (Postgres).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlparse

from dagster import DagsterInstance


def pool_limits(spec: str) -> dict[str, int]:
    """``"github=2,llm=4"`` -> ``{"github": 2, "llm": 4}``."""
    limits = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, value = item.partition("=")
        if not name or not value.strip().isdigit():
            raise ValueError(f"FORMULACODE_POOL_LIMITS: expected pool=limit, got {item!r}")
        limits[name.strip()] = int(value)
    return limits


def ensure_bucket(data_dir: str) -> str | None:
    """Create the bucket of an ``s3://`` data dir when it does not exist; return its name."""
    url = urlparse(data_dir)
    if url.scheme not in {"s3", "s3a"}:
        return None
    import boto3

    client = boto3.client("s3")
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if url.netloc not in existing:
        client.create_bucket(Bucket=url.netloc)
    return url.netloc


def set_pool_limits(instance: DagsterInstance, limits: Mapping[str, int]) -> None:
    for pool, limit in limits.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)


def main(environ: Mapping[str, str] | None = None) -> None:
    environ = os.environ if environ is None else environ
    bucket = ensure_bucket(environ.get("FORMULACODE_DATA_DIR", ""))
    if bucket:
        print(f"bucket {bucket} ready")
    limits = pool_limits(environ.get("FORMULACODE_POOL_LIMITS", ""))
    if limits:
        with DagsterInstance.get() as instance:
            set_pool_limits(instance, limits)
        print("pool limits: " + ", ".join(f"{k}={v}" for k, v in limits.items()))


if __name__ == "__main__":
    main()
