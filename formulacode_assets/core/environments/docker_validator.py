"""The Docker sandbox (production): layered images built with the docker SDK, benchmarks run offline.

Layers: toolchain base → repository at the base sha → ``build_env.sh`` → ``asv machine``; then
containers without network run benchmark discovery and a quick run with ``--python=same``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from formulacode_assets.core.environments.validation import (
    CA_VARIABLES,
    MACHINE,
    PYTHON_PROBE,
    ValidationRequest,
    ValidationResult,
    Validator,
    asv_commands,
    checkout_commit,
    combine_repeats,
    judge_repeat,
    read_discovery,
    read_run_results,
    tail,
)
from formulacode_assets.core.mining.git import GitError
from formulacode_assets.core.process_guard import owner_labels, watch_container

REPO_ROOT = "/repo"
VENV = "/opt/fc-env"
_CA_IN_IMAGE = "/usr/local/share/fc/extra-ca.pem"

_TOOLCHAIN_DOCKERFILE = """\
FROM {base_image}
{ca_lines}ENV UV_PYTHON_DOWNLOADS=never PIP_DISABLE_PIP_VERSION_CHECK=1 LANG=C.UTF-8
RUN set -eux; \\
    python3 -m venv /opt/fc-tools; \\
    /opt/fc-tools/bin/pip install --quiet --no-cache-dir "{uv_requirement}"; \\
    ln -sf /opt/fc-tools/bin/uv /usr/local/bin/uv; \\
    uv --version; command -v git; command -v timeout
"""

# Named stages: the images stage can target any of them (and reuses their layer cache).
_CONTEXT_DOCKERFILE = """\
FROM {toolchain} AS repository
COPY repo/ {repo_root}/
WORKDIR {repo_root}

FROM repository AS environment
COPY build_env.sh /fc/build_env.sh
ENV FC_VENV={venv} FC_PYTHON={python} FC_EXCLUDE_NEWER={cutoff} FC_ASV_CONF={conf} \\
    FC_ASV_REQUIREMENT="{asv_requirement}" FC_REPO_NAME={repo_name} FC_BASE_SHA={sha}
RUN timeout --kill-after=10 {build_timeout} bash /fc/build_env.sh; rc=$?; \\
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then \\
        printf 'FC_%s: build_env.sh exceeded %s s\\n' TIMEOUT {build_timeout}; \\
    fi; \\
    exit $rc
RUN test -x {venv}/bin/asv || {{ printf 'FC_%s: build_env.sh left no {venv}/bin/asv\\n' NO_ASV; exit 3; }}

FROM environment AS asv-ready
RUN {venv}/bin/asv machine --yes --machine {machine} --config {conf}
"""


@dataclass
class _ContainerRun:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    archive: bytes | None  # the results folder as a tar (None: none was written)


def ca_bundle_from_environment(environ: dict[str, str] | None = None) -> Path | None:
    """The CA bundle the host's environment names (``SSL_CERT_FILE``, ``PIP_CERT``, ...), if it exists.

    Behind a TLS-intercepting proxy the package index is only trusted through that bundle; the
    toolchain image then carries it without anyone having to set ``extra_ca_certs`` by hand.
    """
    import os

    environ = os.environ if environ is None else environ
    for name in ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        value = environ.get(name)
        if value and Path(value).is_file():
            return Path(value)
    return None


def build_failure_reason(lines: Sequence[str], error: str | None, last: int = 8) -> str:
    """A failed build's reason: the failing instruction, the error and the last lines of its output."""
    instruction = _failing_instruction(lines) or "an unknown instruction"
    output = [line for line in lines if line.strip() and not line.startswith("Step ") and line != error][-last:]
    reason = f"image build failed at {instruction}: {error}"
    if output:
        reason += "; last output: " + " | ".join(line.strip()[:200] for line in output)
    return reason


def _toolchain_tag(base_image: str, uv_requirement: str, ca_bytes: bytes) -> str:
    digest = hashlib.sha256(json.dumps([base_image, uv_requirement, ca_bytes.hex()]).encode()).hexdigest()[:12]
    return f"fc-toolchain:{digest}"


def _quote_env(value: str) -> str:
    return json.dumps(value)  # Dockerfile ENV accepts JSON-style double-quoted strings


class DockerValidator(Validator):
    """Layered image build through the docker SDK; discovery and quick runs in network-less containers."""

    name = "docker"

    def __init__(
        self,
        client: Any,
        *,
        base_image: str = "python:{python_version}-slim-bookworm",
        extra_ca_certs: Path | None = None,
        network_mode: str = "host",
        run_network_mode: str = "none",
        build_timeout: float = 1800,
        step_timeout: float = 600,
        uv_requirement: str = "uv",
        image_prefix: str = "fc-validate",
        keep_images: bool = False,
        mem_limit: str | None = None,
        log: Callable[[str], None] | None = None,
    ):
        self.client = client
        self.base_image = base_image
        self.extra_ca_certs = Path(extra_ca_certs) if extra_ca_certs else None
        self.network_mode = network_mode
        self.run_network_mode = run_network_mode
        self.build_timeout = build_timeout
        self.step_timeout = step_timeout
        self.uv_requirement = uv_requirement
        self.image_prefix = image_prefix
        self.keep_images = keep_images
        self.mem_limit = mem_limit
        self.log = log or (lambda message: None)
        self._toolchain_lock = threading.Lock()

    # --- images ----------------------------------------------------------------------------

    def _base_for(self, python_version: str) -> tuple[str, str]:
        """``(base image, FC_PYTHON)``: a templated image carries the chosen Python, a fixed one its own."""
        minor = ".".join(python_version.split(".")[:2])
        if "{python_version}" in self.base_image:
            return self.base_image.format(python_version=minor), f"python{minor}"
        return self.base_image, "python3"

    def _build(self, context: Path, tag: str, timeout: float) -> tuple[bool, list[str], str | None]:
        """``(ok, log lines, error)``; the build stops when ``timeout`` passes (the connection is dropped)."""
        lines: deque[str] = deque(maxlen=400)
        deadline = time.monotonic() + timeout
        error = None
        stream = self.client.api.build(
            path=str(context),
            tag=tag,
            network_mode=self.network_mode,
            rm=True,
            forcerm=True,
            pull=False,
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
                    error = f"FC_TIMEOUT: the image build exceeded {timeout:.0f} s"
                    break
        except Exception as exc:  # requests' ReadTimeout when a silent build outlasts the client timeout
            silent = "timed out" in str(exc).lower() or "timeout" in type(exc).__name__.lower()
            error = f"FC_TIMEOUT: the build stream stalled ({exc})" if silent else f"the build stream broke: {exc}"
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
        return error is None, list(lines), error

    def toolchain_image(self, python_version: str) -> str:
        base, _ = self._base_for(python_version)
        ca = self.extra_ca_certs.read_bytes() if self.extra_ca_certs else b""
        tag = _toolchain_tag(base, self.uv_requirement, ca)
        with self._toolchain_lock:
            if self._image_exists(tag):
                return tag
            self.log(f"building toolchain image {tag} from {base}")
            with tempfile.TemporaryDirectory(prefix="fc-toolchain-") as tmp:
                ca_lines = ""
                if ca:
                    (Path(tmp) / "extra-ca.pem").write_bytes(ca)
                    ca_lines = f"COPY extra-ca.pem {_CA_IN_IMAGE}\nENV " + " ".join(
                        f"{name}={_CA_IN_IMAGE}" for name in CA_VARIABLES
                    )
                    ca_lines += "\n"
                (Path(tmp) / "Dockerfile").write_text(
                    _TOOLCHAIN_DOCKERFILE.format(base_image=base, ca_lines=ca_lines, uv_requirement=self.uv_requirement)
                )
                ok, lines, error = self._build(Path(tmp), tag, self.build_timeout)
            if not ok:
                raise RuntimeError(f"toolchain image failed: {error}\n" + "\n".join(lines[-30:]))
            return tag

    def _image_exists(self, tag: str) -> bool:
        import docker.errors

        try:
            self.client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    # --- containers ------------------------------------------------------------------------

    def _container(
        self,
        result: ValidationResult,
        name: str,
        image: str,
        command: list[str],
        timeout: float,
        results_dir: str | None = None,
    ) -> _ContainerRun:
        """Run ``command`` in a fresh container (no network by default); the step is added to ``result``."""
        import docker.errors

        started = time.monotonic()
        container = self.client.containers.create(
            image,
            command,
            working_dir=REPO_ROOT,
            network_mode=self.run_network_mode,
            mem_limit=self.mem_limit,
            detach=True,
            labels=owner_labels(),
        )
        watchdog = watch_container(self.client, container.id)  # removed even if this process is killed
        run = _ContainerRun(None, "", "", False, None)
        try:
            container.start()
            try:
                run.returncode = container.wait(timeout=timeout).get("StatusCode")
            except Exception:  # requests' ReadTimeout / ConnectionError
                if time.monotonic() - started < timeout * 0.9:
                    raise  # not a timeout: the engine went away (a sandbox failure)
                run.timed_out = True
                with contextlib.suppress(docker.errors.APIError):
                    container.kill()
            run.stdout = tail(container.logs(stdout=True, stderr=False))
            run.stderr = tail(container.logs(stdout=False, stderr=True))
            if results_dir and not run.timed_out:
                with contextlib.suppress(docker.errors.NotFound):
                    bits, _ = container.get_archive(results_dir)
                    run.archive = b"".join(bits)
        finally:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
            watchdog.dismiss()
            result.steps.append(
                {"name": name, "returncode": run.returncode, "duration_s": round(time.monotonic() - started, 3)}
            )
        return run

    # --- validation ------------------------------------------------------------------------

    def close(self) -> None:
        self.client.close()

    def validate(self, request: ValidationRequest, *, repeats: int = 2) -> ValidationResult:
        import docker.errors
        import requests

        started = time.monotonic()
        result = ValidationResult(ok=False, validator=self.name)
        tag = None
        try:
            tag = self._validate(request, repeats, result)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            result.ok, result.stage_failed, result.reason = False, "sandbox", f"docker: {exc}"[:500]
        except RuntimeError as exc:  # the toolchain image
            result.ok, result.stage_failed = False, "sandbox"
            result.reason, result.stderr_tail = str(exc).splitlines()[0][:500], tail(str(exc))
        finally:
            if tag and not self.keep_images:
                with contextlib.suppress(docker.errors.APIError):
                    self.client.images.remove(tag, force=True, noprune=False)
            result.duration_s = round(time.monotonic() - started, 3)
        return result

    def image_tag(self, request: ValidationRequest) -> str:
        owner, name = request.repo_name.split("/")
        digest = hashlib.sha256(request.script.encode()).hexdigest()[:8]
        return f"{self.image_prefix}/{owner.lower()}-{name.lower()}:{request.sha[:12]}-{digest}"

    def _validate(self, request: ValidationRequest, repeats: int, result: ValidationResult) -> str | None:
        toolchain = self.toolchain_image(request.python_version)
        _, fc_python = self._base_for(request.python_version)
        tag = self.image_tag(request)
        with tempfile.TemporaryDirectory(prefix="fc-docker-ctx-") as tmp:
            ctx = Path(tmp)
            try:
                checkout_commit(request.mirror, request.sha, ctx / "repo", request.asv.branch)
            except GitError as exc:
                result.stage_failed, result.reason = "checkout", f"cannot check out {request.sha[:12]}: {exc.reason}"
                return None
            (ctx / "build_env.sh").write_text(request.script)
            (ctx / "Dockerfile").write_text(
                _CONTEXT_DOCKERFILE.format(
                    toolchain=toolchain,
                    repo_root=REPO_ROOT,
                    venv=VENV,
                    python=_quote_env(fc_python),
                    cutoff=_quote_env(request.exclude_newer),
                    conf=request.asv.conf_path,
                    asv_requirement=request.asv_requirement.replace('"', ""),
                    repo_name=_quote_env(request.repo_name),
                    sha=request.sha,
                    build_timeout=int(self.build_timeout),
                    machine=MACHINE,
                )
            )
            self.log(f"{request.repo_name}@{request.sha[:12]}: docker build {tag}")
            build_started = time.monotonic()
            ok, lines, error = self._build(ctx, tag, self.build_timeout + 120)
        build_seconds = round(time.monotonic() - build_started, 3)
        result.steps.append({"name": "build", "returncode": 0 if ok else 1, "duration_s": build_seconds})
        if not ok:
            text = "\n".join(lines)
            result.stdout_tail = tail(text)
            result.stderr_tail = tail(error or "")
            if "FC_TIMEOUT" in text or "FC_TIMEOUT" in (error or ""):
                result.stage_failed, result.reason = (
                    "timeout",
                    f"build_env.sh did not finish within {self.build_timeout:.0f} s",
                )
            elif "FC_NO_ASV" in text:
                result.stage_failed = "build"
                result.reason = "build_env.sh finished but $FC_VENV/bin/asv does not exist"
            elif "asv machine" in _failing_instruction(lines):
                result.stage_failed, result.reason = "machine", f"asv machine failed: {error}"
            else:
                result.stage_failed, result.reason = "build", build_failure_reason(lines, error)[:1500]
            result.returncode = _returncode_of(error)
            return tag if self._image_exists(tag) else None

        results_path = f"{REPO_ROOT}/{request.asv.results_dir}"
        probe = self._container(result, "python", tag, [f"{VENV}/bin/python", "-c", PYTHON_PROBE], 120)
        result.python_version = probe.stdout.strip() or None
        commands = asv_commands(f"{VENV}/bin/asv", request.asv.conf_path, request.sha)
        done = []
        for i in range(max(1, repeats)):
            discovery = self._container(
                result, f"discovery-{i + 1}", tag, commands["discovery"], self.step_timeout, results_path
            )
            last = discovery
            if discovery.timed_out:
                result.stage_failed = "timeout"
                result.reason = f"benchmark discovery exceeded {self.step_timeout:.0f} s"
                result.stdout_tail, result.stderr_tail = discovery.stdout, discovery.stderr
                return tag
            discovered = _from_archive(discovery.archive, read_discovery)
            run_results = None
            if discovered:
                last = self._container(result, f"run-{i + 1}", tag, commands["run"], self.step_timeout, results_path)
                if last.timed_out:
                    result.stage_failed, result.reason = "timeout", f"the quick run exceeded {self.step_timeout:.0f} s"
                    result.stdout_tail, result.stderr_tail = last.stdout, last.stderr
                    return tag
                run_results = _from_archive(last.archive, lambda folder: read_run_results(folder, request.sha))
            result.returncode, result.stdout_tail, result.stderr_tail = last.returncode, last.stdout, last.stderr
            repeat, stage, reason = judge_repeat(discovered, run_results)
            if repeat is None:
                result.stage_failed, result.reason = stage, f"{reason} (repeat {i + 1})"
                return tag
            done.append(repeat)
        combine_repeats(result, done)
        return tag


def _from_archive(archive: bytes | None, read: Callable[[Path], Any]) -> Any:
    """``read(results folder)`` on a ``get_archive`` tar (one top folder), extracted to a temporary folder."""
    if not archive:
        return None
    with tempfile.TemporaryDirectory(prefix="fc-results-") as tmp:
        target = Path(tmp)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
        folders = [p for p in target.iterdir() if p.is_dir()]
        return read(folders[0] if len(folders) == 1 else target)


def _failing_instruction(lines: Sequence[str]) -> str:
    steps = [line for line in lines if line.startswith("Step ")]
    return steps[-1] if steps else ""


def _returncode_of(error: str | None) -> int | None:
    # The classic builder says: "The command '/bin/sh -c ...' returned a non-zero code: 3"
    if error and "non-zero code:" in error:
        try:
            return int(error.rsplit("non-zero code:", 1)[1].strip().split()[0])
        except ValueError:
            return None
    return None
