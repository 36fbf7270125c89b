"""Benchmark of the publishing stage on the sample store: image build time per context, first run
vs re-run, and the final image sizes.

Run ``python benchmarks/bench_images.py [--docker-host unix:///tmp/fc-docker/docker.sock] [--json PATH]``
(see benchmarks/README.md). It validates the sample store's February 2024 contexts once (local
validator), starts Debian's ``docker-registry`` on a free 127.0.0.1 port with a temporary storage
folder, then runs the code the ``images`` asset runs (``ImagePublisher``) twice against it:

1. **first run**: an empty registry namespace and ``--no-cache`` builds by default (the cold cost;
   ``--with-cache`` keeps the engine's layer cache, e.g. the toolchain and layers from earlier runs);
2. **re-run**: the same month again: every tag must be found by a manifest lookup, with zero builds.

The exit status is 1 when an image is not pushed, when the re-run builds anything or changes a
digest, or when the re-run costs more than ``--max-rerun-share`` (default 5%) of the first run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker
import pyarrow.parquet as pq
import requests
from dagster import DagsterInstance, materialize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from formulacode_assets.core.publishing.builder import ImagePublisher, PublishSettings  # noqa: E402
from formulacode_assets.core.publishing.registries import Registry  # noqa: E402
from formulacode_assets.resources.docker_engine import DockerEngineResource  # noqa: E402
from formulacode_assets.resources.git_source import GitSourceResource  # noqa: E402
from formulacode_assets.resources.publishing import engine_for_images  # noqa: E402

MONTH = "2024-02-01"


def validated_contexts(workdir: Path) -> tuple[list[dict], GitSourceResource]:
    """The month's contexts, materialized once with the definitions' own resources (local validator)."""
    from formulacode_assets.definitions import defs
    from formulacode_assets.resources import build_resources

    environ = {
        "FORMULACODE_DATA_DIR": str(workdir / "data"),
        "FORMULACODE_CACHE_DIR": str(workdir / "cache"),
        "FORMULACODE_VALIDATOR": "local",
        "FORMULACODE_DOCKER_HOST": f"unix://{workdir}/no-engine.sock",
    }
    path = workdir / "data" / "contexts" / "2024-02.parquet"
    if not path.exists():
        graph = defs.resolve_asset_graph()
        needed, todo = set(), [k for k in graph.get_all_asset_keys() if k.path[-1] == "contexts"]
        while todo:
            key = todo.pop()
            if key not in needed:
                needed.add(key)
                todo.extend(graph.get(key).parent_keys)
        assets = [a for a in defs.assets if set(a.keys) <= needed]
        saved = dict(os.environ)
        os.environ.update(environ)
        try:
            resources = build_resources(environ)
            result = materialize(assets, partition_key=MONTH, resources=resources, instance=DagsterInstance.ephemeral())
        finally:
            os.environ.clear()
            os.environ.update(saved)
        assert result.success
    rows = [r for r in pq.read_table(path).to_pylist() if r["status"] == "ok"]
    return rows, GitSourceResource(cache_dir=str(workdir / "cache"))


def start_registry(workdir: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("docker-registry")
    if binary is None:
        sys.exit("docker-registry is not installed (apt-get install docker-registry)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = workdir / "registry.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {workdir / 'registry'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(f"{url}/v2/", timeout=2)
            return process, url
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    sys.exit("docker-registry did not answer")


def run_once(engine: DockerEngineResource, registry: Registry, rows, git_source, workdir: Path, *, no_cache: bool):
    client, about, toolchains = engine_for_images(engine)
    if client is None:
        sys.exit(about)
    publisher = ImagePublisher(
        client=client,
        unavailable_reason=about,
        toolchains=toolchains,
        registry=registry,
        context_dir=workdir / "build_contexts",
        mirror_path=git_source.mirror_path,
        settings=PublishSettings(no_cache=no_cache),
    )
    started = time.monotonic()
    images = publisher.rows_for_month(MONTH, rows)
    seconds = time.monotonic() - started
    client.close()
    return images, seconds, publisher.builds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--docker-host", default=os.environ.get("FORMULACODE_DOCKER_HOST", "unix:///tmp/fc-docker/docker.sock")
    )
    parser.add_argument("--base-image", default="fc-debian:bookworm")
    parser.add_argument("--workdir", default=None, help="kept between runs (contexts are validated once)")
    parser.add_argument("--with-cache", action="store_true", help="first run keeps the engine's layer cache")
    parser.add_argument("--max-rerun-share", type=float, default=0.05)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="fc-bench-images-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    rows, git_source = validated_contexts(workdir)
    print(f"{len(rows)} validated contexts ({time.monotonic() - t0:.1f} s)")
    cafile = ssl.get_default_verify_paths().cafile
    engine = DockerEngineResource(
        base_url=args.docker_host,
        base_image=args.base_image,
        extra_ca_certs=cafile if cafile and Path(cafile).exists() else None,
    )
    process, url = start_registry(workdir)
    try:
        registry = Registry(url=url, namespace=f"bench-{uuid.uuid4().hex[:8]}")
        first, first_s, first_builds = run_once(
            engine, registry, rows, git_source, workdir, no_cache=not args.with_cache
        )
        again, again_s, again_builds = run_once(engine, registry, rows, git_source, workdir, no_cache=False)
    finally:
        process.terminate()
        process.wait(timeout=30)
    client = docker.DockerClient(base_url=args.docker_host, version="auto")
    for row in first:  # the benchmark's images are not kept in the shared engine
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(row["image_name"], force=True)
    client.close()

    report = {
        "contexts": len(rows),
        "first_run_s": round(first_s, 2),
        "rerun_s": round(again_s, 3),
        "rerun_share": round(again_s / first_s, 4) if first_s else None,
        "first_run_builds": first_builds,
        "rerun_builds": again_builds,
        "first_run_cache": "engine layer cache" if args.with_cache else "no cache",
        "per_context": [
            {
                "repo_name": a["repo_name"],
                "status_first": a["status"],
                "status_rerun": b["status"],
                "first_s": a.get("duration_s"),
                "rerun_s": b.get("duration_s"),
                "size_mb": round((a.get("size_bytes") or 0) / 1e6, 1),
                "same_digest": a.get("digest") == b.get("digest"),
                "reason": a.get("reason"),
            }
            for a, b in zip(
                sorted(first, key=lambda r: r["repo_name"]), sorted(again, key=lambda r: r["repo_name"]), strict=True
            )
        ],
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    ok = (
        all(
            p["status_first"] == "pushed" and p["status_rerun"] == "exists" and p["same_digest"]
            for p in report["per_context"]
        )
        and again_builds == 0
        and (report["rerun_share"] or 0) <= args.max_rerun_share
    )
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
