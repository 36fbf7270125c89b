"""Build and publish one image per validated context; skip-existing is decided before building.

For each validated context: name the image (the one function), render its deterministic build
context (kept under the data folder whatever happens next), ask the registry for the tag's
manifest — an existing tag is ``exists`` and nothing is built — else build the ``final`` stage
with the docker SDK and push; a push counts only when the registry reports a digest.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from formulacode_assets.core.environments.docker_validator import DockerValidator, _toolchain_tag, system_image_tag
from formulacode_assets.core.environments.validation import tail
from formulacode_assets.core.mining.asv_config import load_asv_json
from formulacode_assets.core.mining.git import GitError, run_git
from formulacode_assets.core.publishing.build_context import ImageRecipe, context_digest, render_build_context
from formulacode_assets.core.publishing.image_names import ImageName, image_name_for
from formulacode_assets.core.publishing.registries import Registry, RegistryError

IMAGE_STATUSES = ("pushed", "exists", "built", "not_built", "failed")
PUBLISHED = ("pushed", "exists")
WITH_IMAGE = ("pushed", "exists", "built")


@dataclass(frozen=True)
class PublishSettings:
    layout: str = "single"
    local_namespace: str = "formulacode"  # image namespace when no registry is configured
    build_timeout_s: float = 1800
    build_concurrency: int = 1  # BUILD_CONCURRENCY
    push_concurrency: int = 1  # PUSH_CONCURRENCY
    push_retries: int = 2
    no_cache: bool = False  # build without the engine's layer cache (benchmarks of a cold build)
    asv_requirement: str = "asv>=0.6"


def toolchain_for(toolchains: DockerValidator, python_version: str | None) -> tuple[str, str]:
    """``(toolchain tag, FC_PYTHON)`` the contexts stage uses, computed without an engine."""
    base, fc_python = toolchains._base_for(python_version or "3")
    ca = toolchains.extra_ca_certs.read_bytes() if toolchains.extra_ca_certs else b""
    return _toolchain_tag(base, toolchains.uv_requirement, ca), fc_python


class ImagePublisher:
    """Rows of ``images`` for a month's validated contexts. ``client`` None: nothing is built (reason given)."""

    def __init__(
        self,
        *,
        client: Any | None,
        unavailable_reason: str | None,
        toolchains: DockerValidator,
        registry: Registry | None,
        context_dir: Path,
        mirror_path: Callable[[str], Path],
        settings: PublishSettings = PublishSettings(),
        log: Callable[[str], None] | None = None,
    ):
        self.client = client
        self.unavailable_reason = unavailable_reason or "no docker engine"
        self.toolchains = toolchains
        self.registry = registry
        self.context_dir = Path(context_dir)
        self.mirror_path = mirror_path
        self.settings = settings
        self.log = log or (lambda message: None)
        self.builds = 0  # build calls made (a re-run of a published month makes none)
        self.pushes = 0
        self.lookups = 0
        self._counter_lock = threading.Lock()
        self._push_slots = threading.BoundedSemaphore(max(1, settings.push_concurrency))

    @property
    def namespace(self) -> str:
        return self.registry.image_namespace if self.registry else self.settings.local_namespace

    def image_for(self, repo_name: str, base_sha: str) -> ImageName:
        return image_name_for(repo_name, base_sha, namespace=self.namespace, layout=self.settings.layout)

    def rows_for_month(self, month: str, contexts: Sequence[Mapping]) -> list[dict]:
        validated = [c for c in contexts if c.get("status") == "ok"]
        workers = max(1, min(self.settings.build_concurrency, len(validated) or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fc-image") as pool:
            return list(pool.map(lambda c: self._row(month, c), validated))

    # --- one context -------------------------------------------------------------------------

    def _row(self, month: str, context: Mapping) -> dict:
        started = time.monotonic()
        image = self.image_for(context["repo_name"], context["base_sha"])
        benchmarks = list(context.get("benchmarks") or [])
        row = {
            "month": month,
            "repo_name": context["repo_name"],
            "base_sha": context["base_sha"],
            "image_name": image.reference,
            "registry": self.registry.describe() if self.registry else None,
            "benchmarks": benchmarks,
            "n_benchmarks": len(benchmarks),
            "built": False,
        }
        try:
            self._publish(month, context, image, benchmarks, row)
        except Exception as exc:  # one context's bug is a failed row, never a failed month
            row.update(status="failed", reason=f"internal: {type(exc).__name__}: {exc}"[:500])
        row["duration_s"] = round(time.monotonic() - started, 3)
        self.log(f"{image}: {row['status']}" + (f" ({row['reason']})" if row.get("reason") else ""))
        return row

    def _publish(self, month: str, context: Mapping, image: ImageName, benchmarks: list[str], row: dict) -> None:
        toolchain, fc_python = toolchain_for(self.toolchains, context.get("python_version"))
        if context.get("system_packages"):  # the apt layer the context validated with
            toolchain = system_image_tag(toolchain, context["system_packages"])
        mirror = self.mirror_path(context["repo_name"])
        recipe = ImageRecipe(
            repo_name=context["repo_name"],
            base_sha=context["base_sha"],
            branch=_branch_of(mirror, context),
            build_env_sh=context["build_env_sh"] or "",
            asv_conf_path=context.get("asv_conf_path") or "asv.conf.json",
            exclude_newer=_exclude_newer(context),
            benchmarks=tuple(benchmarks),
            toolchain=toolchain,
            python=fc_python,
            asv_requirement=self.settings.asv_requirement,
            build_timeout_s=int(self.settings.build_timeout_s),
        )
        try:
            tar = render_build_context(recipe, mirror)
        except GitError as exc:
            row.update(status="failed", reason=f"cannot render the build context: {exc.reason}"[:500])
            return
        owner, name = context["repo_name"].split("/")
        path = self.context_dir / month[:7] / f"{owner}__{name}-{context['base_sha'][:12]}.tar"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
        tmp.write_bytes(tar)
        tmp.replace(path)
        row.update(build_context_path=str(path), build_context_sha256=context_digest(tar))

        if self.registry is not None:
            try:
                with self._counter_lock:
                    self.lookups += 1
                digest = self.registry.manifest_digest(image)
            except RegistryError as exc:
                row.update(status="failed", reason=f"manifest lookup failed: {exc}"[:500])
                return
            if digest:
                row.update(status="exists", digest=digest, size_bytes=self._local_size(image))
                return
        if self.client is None:
            row.update(status="not_built", reason=self.unavailable_reason)
            return
        ok, error, lines = self._build(
            image, tar, context.get("python_version") or "3", context.get("system_packages") or ()
        )
        row["build_log_tail"] = tail("\n".join(lines))
        if not ok:
            row.update(status="failed", reason=f"image build failed: {error}"[:500])
            return
        row["built"] = True
        row["size_bytes"] = self._local_size(image)
        if self.registry is None:
            row.update(status="built", digest=self.client.images.get(image.reference).id)
            return
        digest, error = self._push(image)
        if digest:
            row.update(status="pushed", digest=digest)
        else:
            row.update(status="failed", reason=f"push failed: {error}"[:500])

    def _local_size(self, image: ImageName) -> int | None:
        if self.client is None:
            return None
        try:
            return int(self.client.images.get(image.reference).attrs.get("Size") or 0) or None
        except Exception:  # not in this engine (published by another machine)
            return None

    def _build(
        self, image: ImageName, tar: bytes, python_version: str, system_packages: Sequence[str] = ()
    ) -> tuple[bool, str | None, list[str]]:
        import io

        try:
            toolchain = self.toolchains.toolchain_image(python_version)
            _, _, error = self.toolchains.system_image(toolchain, list(system_packages))
        except Exception as exc:
            return False, f"toolchain image: {str(exc).splitlines()[0]}", []
        if error is not None:
            return False, f"system packages {' '.join(system_packages)}: {error}", []
        with self._counter_lock:
            self.builds += 1
        self.log(f"{image}: docker build (target final)")
        lines: deque[str] = deque(maxlen=400)
        error = None
        deadline = time.monotonic() + self.settings.build_timeout_s + 120
        stream = self.client.api.build(
            fileobj=io.BytesIO(tar),
            custom_context=True,
            tag=image.reference,
            target="final",
            network_mode=self.toolchains.network_mode,
            rm=True,
            forcerm=True,
            pull=False,
            nocache=self.settings.no_cache,
            decode=True,
        )
        try:
            for chunk in stream:
                if "stream" in chunk:
                    lines.extend(chunk["stream"].rstrip("\n").splitlines())
                if "error" in chunk:
                    error = chunk["error"].strip()
                    lines.append(error)
                if time.monotonic() > deadline:
                    error = f"the image build exceeded {self.settings.build_timeout_s:.0f} s"
                    break
        except Exception as exc:
            error = f"the build stream broke: {exc}"
        return error is None, error, list(lines)

    def _push(self, image: ImageName) -> tuple[str | None, str | None]:
        """``(digest, None)`` when the registry reported one, else ``(None, why)``."""
        error = None
        relogged = False
        attempt = 0
        with self._push_slots:
            self.registry.prepare(image)
            while attempt <= self.settings.push_retries:
                attempt += 1
                digest, error = self._push_once(image)
                if digest:
                    with self._counter_lock:
                        self.pushes += 1
                    return digest, None
                text = (error or "").lower()
                if ("401" in text or "unauthorized" in text or "authentication required" in text) and not relogged:
                    relogged = self.registry.relogin()
                    if relogged:
                        continue
                if "toomanyrequests" in text or "429" in text:
                    self.registry.sleep(self.registry.max_wait_s)
                    continue
                break
        return None, error

    def _push_once(self, image: ImageName) -> tuple[str | None, str | None]:
        digest, error = None, None
        try:
            for chunk in self.client.api.push(
                image.repository, tag=image.tag, stream=True, decode=True, auth_config=self.registry.auth_config()
            ):
                if "error" in chunk:
                    error = chunk["error"].strip()
                aux = chunk.get("aux") or {}
                if aux.get("Digest"):
                    digest = aux["Digest"]
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error:
            return None, error
        return digest, None if digest else "the registry reported no digest"


def _branch_of(mirror: Path, context: Mapping) -> str:
    """The branch asv records results against (as the contexts stage checked out): asv's first branch."""
    conf_path = context.get("asv_conf_path") or "asv.conf.json"
    try:
        config = load_asv_json(run_git(mirror, ["show", f"{context['base_sha']}:{conf_path}"], timeout=60).decode())
    except (GitError, ValueError):
        return "master"
    branches = config.get("branches") or []
    return branches[0] if branches and isinstance(branches[0], str) else "master"


def _exclude_newer(context: Mapping) -> str:
    """FC_EXCLUDE_NEWER as validated: the commit date, or empty when resolution needed a later cutoff
    (the template then falls back to the cutoff written into the script)."""
    date = context.get("commit_date")
    if date is None or context.get("resolution_step") == "later-cutoff":
        return ""
    return date.strftime("%Y-%m-%dT%H:%M:%SZ") if hasattr(date, "strftime") else str(date)
