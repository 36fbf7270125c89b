"""The Docker sandbox (production): layered images built with the docker SDK, benchmarks run offline.

Layers: toolchain (compiler, make, pkg-config, Python headers, uv; tagged, built once) → system
packages (apt, from :mod:`.system_packages`; tagged per package set, built once) → repository at
the base sha → ``build_env.sh`` + ``asv machine`` in a build container that mounts the shared uv
cache volume, committed as the context's image; then containers without network run benchmark
discovery and a quick run with ``--python=same``.

Why a build container rather than a ``RUN``: the docker SDK drives the classic builder, which has
no BuildKit cache mounts (``--mount=type=cache``), and the engine's CLI here has no buildx. A
named volume mounted into the build container gives every build of every commit one uv cache, so
a second commit of a repository reuses the toolchain and system-package images and downloads
nothing it already has.
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
from formulacode_assets.core.measurement.selection import (
    PROBE_DRIVER,
    Selection,
    SelectionSettings,
    bench_regexes,
    probe_order,
    probe_spec,
    read_probe,
    select_benchmarks,
)
from formulacode_assets.core.mining.git import GitError
from formulacode_assets.core.process_guard import owner_labels, watch_container

REPO_ROOT = "/repo"
VENV = "/opt/fc-env"
_CA_IN_IMAGE = "/usr/local/share/fc/extra-ca.pem"
UV_CACHE_IN_CONTAINER = "/opt/fc-uv-cache"
_PROBE_DIR = "/tmp/fc-probe"
TOOLCHAIN_VERSION = "2"  # part of the toolchain tag: a changed recipe never reuses an old image

# Debian's python3 (the local base) needs python3-dev for headers; python:X.Y images carry theirs.
_TOOLCHAIN_DOCKERFILE = """\
FROM {base_image}
{ca_lines}ENV UV_PYTHON_DOWNLOADS=never PIP_DISABLE_PIP_VERSION_CHECK=1 LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
RUN set -eux; \\
    headers=""; if dpkg -s python3 >/dev/null 2>&1; then headers=python3-dev; fi; \\
    apt-get update -qq; \\
    apt-get install -y -qq --no-install-recommends build-essential pkg-config $headers; \\
    rm -rf /var/lib/apt/lists/*; \\
    gcc --version | head -n 1; make --version | head -n 1; pkg-config --version
RUN set -eux; \\
    python3 -m venv /opt/fc-tools; \\
    /opt/fc-tools/bin/pip install --quiet --no-cache-dir "{uv_requirement}"; \\
    ln -sf /opt/fc-tools/bin/uv /usr/local/bin/uv; \\
    uv --version; command -v git; command -v timeout
"""

# Tagged per (toolchain, package set): the second commit of a repository starts from it.
_SYSTEM_DOCKERFILE = """\
FROM {toolchain}
RUN set -eux; \\
    apt-get update -qq; \\
    apt-get install -y -qq --no-install-recommends {packages}; \\
    rm -rf /var/lib/apt/lists/*
LABEL org.formulacode.system-packages="{packages}"
"""

_REPOSITORY_DOCKERFILE = """\
FROM {system}
COPY repo/ {repo_root}/
WORKDIR {repo_root}
COPY build_env.sh /fc/build_env.sh
"""

# Run in the build container (cwd: the repository); markers say which part failed.
_BUILD_DRIVER = """\
timeout --kill-after=10 {build_timeout} bash /fc/build_env.sh; rc=$?
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then echo "FC_TIMEOUT: build_env.sh exceeded {build_timeout} s"; exit 124; fi
if [ "$rc" != 0 ]; then echo "FC_BUILD_FAILED: build_env.sh exited with $rc"; exit "$rc"; fi
test -x "$FC_VENV/bin/asv" || {{ echo "FC_NO_ASV: build_env.sh left no $FC_VENV/bin/asv"; exit 3; }}
echo "FC_BUILD_DONE"
"$FC_VENV/bin/asv" machine --yes --machine {machine} --config "$FC_ASV_CONF" || {{
    rc=$?; echo "FC_MACHINE_FAILED: asv machine exited with $rc"; exit "$rc"; }}
"""

# Every pythonX.Y on PATH with its full version: what FC_PYTHON can name in this image.
_PYTHONS_PROBE = (
    "for n in $(seq 5 20); do p=python3.$n; command -v $p >/dev/null 2>&1 && "
    "echo \"3.$n $($p -c 'import platform; print(platform.python_version())')\"; done; true"
)


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
    key = [TOOLCHAIN_VERSION, base_image, uv_requirement, ca_bytes.hex()]
    return f"fc-toolchain:{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:12]}"


def system_image_tag(toolchain: str, packages: Sequence[str]) -> str:
    """The tagged image of ``toolchain`` + ``packages`` (shared by every context that needs them)."""
    key = json.dumps([toolchain, sorted(packages)])
    return f"fc-system:{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def python_unavailable_reason(minor: str, image: str, available: dict[str, str]) -> str:
    """Why a context cannot build: the analysis chose ``minor`` and the image has other Pythons."""
    has = ", ".join(f"python{m} ({v})" for m, v in sorted(available.items())) or "no pythonX.Y"
    return (
        f"Python {minor} (chosen by the install analysis) is not available in image {image}: it has {has}; "
        f"use a base image that carries Python {minor} (e.g. base_image='python:{{python_version}}-slim-bookworm')"
    )


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
        uv_cache_volume: str | None = "fc-uv-cache",
        benchmark_timeout: float | None = None,
        selection: SelectionSettings | None = None,
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
        self.uv_cache_volume = uv_cache_volume  # a named volume shared by every build (None: no shared cache)
        self.benchmark_timeout = benchmark_timeout  # asv's per-benchmark timeout in the quick run
        self.selection = selection or SelectionSettings()  # which benchmarks the quick run times
        self.log = log or (lambda message: None)
        self._toolchain_lock = threading.Lock()
        self._pythons: dict[str, dict[str, str]] = {}  # toolchain tag -> {X.Y: X.Y.Z}

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
                    # apt trusts the same bundle for https mirrors (a TLS-intercepting proxy).
                    apt_conf = f'Acquire::https::CAInfo "{_CA_IN_IMAGE}";'
                    ca_lines += f"\nRUN echo '{apt_conf}' > /etc/apt/apt.conf.d/99fc-ca\n"
                (Path(tmp) / "Dockerfile").write_text(
                    _TOOLCHAIN_DOCKERFILE.format(base_image=base, ca_lines=ca_lines, uv_requirement=self.uv_requirement)
                )
                ok, lines, error = self._build(Path(tmp), tag, self.build_timeout)
            if not ok:
                raise RuntimeError(f"toolchain image failed: {error}\n" + "\n".join(lines[-30:]))
            return tag

    def toolchain_pythons(self, toolchain: str) -> dict[str, str]:
        """``{X.Y: X.Y.Z}`` of the interpreters in the toolchain image (asked once per tag)."""
        if toolchain not in self._pythons:
            out = self.client.containers.run(
                toolchain, ["bash", "-c", _PYTHONS_PROBE], network_mode="none", remove=True, labels=owner_labels()
            )
            found = dict(line.split() for line in out.decode().splitlines() if len(line.split()) == 2)
            self._pythons[toolchain] = found
        return self._pythons[toolchain]

    def system_image(self, toolchain: str, packages: Sequence[str]) -> tuple[str, list[str], str | None]:
        """``(tag, build log, error)`` of the toolchain with ``packages`` installed by apt; built once per set."""
        if not packages:
            return toolchain, [], None
        tag = system_image_tag(toolchain, packages)
        with self._toolchain_lock:
            if self._image_exists(tag):
                return tag, [], None
            self.log(f"building system-packages image {tag}: {' '.join(packages)}")
            with tempfile.TemporaryDirectory(prefix="fc-system-") as tmp:
                (Path(tmp) / "Dockerfile").write_text(
                    _SYSTEM_DOCKERFILE.format(toolchain=toolchain, packages=" ".join(sorted(packages)))
                )
                ok, lines, error = self._build(Path(tmp), tag, self.build_timeout)
        return tag, lines, None if ok else error

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
        *,
        network_mode: str | None = None,
        environment: dict[str, str] | None = None,
        volumes: dict | None = None,
        commit_as: str | None = None,
    ) -> _ContainerRun:
        """Run ``command`` in a fresh container (no network by default); the step is added to ``result``.

        ``commit_as``: on exit code 0 the container becomes that image (the build container).
        """
        import docker.errors

        started = time.monotonic()
        container = self.client.containers.create(
            image,
            command,
            working_dir=REPO_ROOT,
            network_mode=network_mode or self.run_network_mode,
            mem_limit=self.mem_limit,
            detach=True,
            labels=owner_labels(),
            environment=environment,
            volumes=volumes,
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
            # The build container's stdout is both streams in order (where a failure shows).
            run.stdout = tail(container.logs(stdout=True, stderr=commit_as is not None))
            run.stderr = tail(container.logs(stdout=False, stderr=True))
            if results_dir:  # after a timeout too: a killed probe's lines still count
                with contextlib.suppress(docker.errors.NotFound):
                    bits, _ = container.get_archive(results_dir)
                    run.archive = b"".join(bits)
            if commit_as and run.returncode == 0 and not run.timed_out:
                repository, _, tag = commit_as.rpartition(":")
                container.commit(repository=repository, tag=tag, changes=['CMD ["bash"]'])
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
        minor = ".".join(request.python_version.split(".")[:2])
        base, _ = self._base_for(request.python_version)
        started = time.monotonic()
        toolchain = self.toolchain_image(request.python_version)
        result.steps.append({"name": "toolchain", "returncode": 0, "duration_s": round(time.monotonic() - started, 3)})
        pythons = self.toolchain_pythons(toolchain)
        if minor not in pythons:  # never a silent substitute: the analysis chose this version
            result.stage_failed, result.reason = "sandbox", python_unavailable_reason(minor, base, pythons)
            return None
        fc_python = f"python{minor}"

        packages = sorted(request.system_packages)
        started = time.monotonic()
        system, lines, error = self.system_image(toolchain, packages)
        result.steps.append(
            {"name": "system-packages", "returncode": 0 if error is None else 1, "duration_s": _since(started)}
        )
        if error is not None:
            result.stage_failed = "build"
            result.reason = f"apt could not install {' '.join(packages)}: " + build_failure_reason(lines, error)
            result.reason, result.stdout_tail = result.reason[:1500], tail("\n".join(lines))
            return None
        result.system_packages = packages or None

        tag = self.image_tag(request)
        source = f"{tag}-src"
        with tempfile.TemporaryDirectory(prefix="fc-docker-ctx-") as tmp:
            ctx = Path(tmp)
            try:
                checkout_commit(request.mirror, request.sha, ctx / "repo", request.asv.branch)
            except GitError as exc:
                result.stage_failed, result.reason = "checkout", f"cannot check out {request.sha[:12]}: {exc.reason}"
                return None
            (ctx / "build_env.sh").write_text(request.script)
            (ctx / "Dockerfile").write_text(_REPOSITORY_DOCKERFILE.format(system=system, repo_root=REPO_ROOT))
            self.log(f"{request.repo_name}@{request.sha[:12]}: docker build {source}")
            started = time.monotonic()
            ok, lines, error = self._build(ctx, source, self.build_timeout)
        result.steps.append({"name": "repository", "returncode": 0 if ok else 1, "duration_s": _since(started)})
        try:
            if not ok:
                result.stage_failed, result.reason = "build", build_failure_reason(lines, error)[:1500]
                result.stdout_tail = tail("\n".join(lines))
                return None
            environment = {
                "FC_VENV": VENV,
                "FC_PYTHON": fc_python,
                "FC_EXCLUDE_NEWER": request.exclude_newer,
                "FC_ASV_CONF": request.asv.conf_path,
                "FC_ASV_REQUIREMENT": request.asv_requirement,
                "FC_REPO_NAME": request.repo_name,
                "FC_BASE_SHA": request.sha,
            }
            volumes = None
            if self.uv_cache_volume:
                environment.update(UV_CACHE_DIR=UV_CACHE_IN_CONTAINER, UV_LINK_MODE="copy")
                volumes = {self.uv_cache_volume: {"bind": UV_CACHE_IN_CONTAINER, "mode": "rw"}}
            driver = _BUILD_DRIVER.format(build_timeout=int(self.build_timeout), machine=MACHINE)
            build = self._container(
                result,
                "build",
                source,
                ["bash", "-c", driver],
                self.build_timeout + 60,
                network_mode=self.network_mode,
                environment=environment,
                volumes=volumes,
                commit_as=tag,
            )
        finally:
            with contextlib.suppress(Exception):
                self.client.images.remove(source, force=True, noprune=True)
        if build.timed_out or build.returncode != 0:
            result.stdout_tail, result.stderr_tail, result.returncode = build.stdout, build.stderr, build.returncode
            text = build.stdout
            if build.timed_out or "FC_TIMEOUT" in text:
                result.stage_failed = "timeout"
                result.reason = f"build_env.sh did not finish within {self.build_timeout:.0f} s"
            elif "FC_NO_ASV" in text:
                result.stage_failed = "build"
                result.reason = "build_env.sh finished but $FC_VENV/bin/asv does not exist"
            elif "FC_MACHINE_FAILED" in text:
                result.stage_failed, result.reason = "machine", f"asv machine failed ({build.returncode})"
            else:
                last = [line for line in text.splitlines() if line.strip() and "FC_BUILD_FAILED" not in line][-8:]
                result.stage_failed = "build"
                result.reason = f"build_env.sh exited with {build.returncode}; last output: " + " | ".join(
                    line.strip()[:200] for line in last
                )
                result.reason = result.reason[:1500]
            return None

        results_path = f"{REPO_ROOT}/{request.asv.results_dir}"
        probe = self._container(result, "python", tag, [f"{VENV}/bin/python", "-c", PYTHON_PROBE], 120)
        result.python_version = probe.stdout.strip() or None
        commands = asv_commands(f"{VENV}/bin/asv", request.asv.conf_path, request.sha)
        selection: Selection | None = None
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
            if discovered and selection is None:
                result.benchmarks = list(discovered)  # kept on the row even when a later step fails
                selection = self._select(request, discovered, tag, result)
                result.benchmarks_selected, result.selection = selection.selected, selection.as_dict()
                commands = asv_commands(
                    f"{VENV}/bin/asv",
                    request.asv.conf_path,
                    request.sha,
                    bench_patterns=bench_regexes(selection.selected) if selection.rule != "all" else (),
                    benchmark_timeout=self.benchmark_timeout,
                )
            run_results = None
            if discovered:
                last = self._container(result, f"run-{i + 1}", tag, commands["run"], self.step_timeout, results_path)
                if last.timed_out:
                    result.stage_failed, result.reason = "timeout", f"the quick run exceeded {self.step_timeout:.0f} s"
                    result.stdout_tail, result.stderr_tail = last.stdout, last.stderr
                    return tag
                run_results = _from_archive(last.archive, lambda folder: read_run_results(folder, request.sha))
            result.returncode, result.stdout_tail, result.stderr_tail = last.returncode, last.stdout, last.stderr
            required = selection.primary if selection and selection.rule != "all" else None
            repeat, stage, reason = judge_repeat(discovered, run_results, required)
            if repeat is None:
                result.stage_failed, result.reason = stage, f"{reason} (repeat {i + 1})"
                return tag
            done.append(repeat)
        combine_repeats(result, done)
        return tag

    def _select(self, request: ValidationRequest, discovered: list[str], image: str, result) -> Selection:
        """The probe of :mod:`..measurement.selection` in a network-less container, then the choice."""
        settings = self.selection
        probe = {}
        if request.changed_lines and len(discovered) > settings.run_all_below:
            order = probe_order(discovered, request.changed_lines, salt=request.sha)
            out = f"{_PROBE_DIR}/probe.jsonl"
            timeout = settings.benchmark_timeout_s
            spec = probe_spec(request.asv.benchmark_dir, order, request.changed_lines, timeout, out)
            command = ["bash", "-c", f'mkdir -p {_PROBE_DIR} && exec "$@"', "probe", f"{VENV}/bin/python"]
            run = self._container(
                result, "select", image, [*command, "-c", PROBE_DRIVER, spec], settings.budget_s, _PROBE_DIR
            )
            probe = _from_archive(run.archive, lambda folder: read_probe(_read_text(folder / "probe.jsonl"))) or {}
        return select_benchmarks(discovered, request.changed_lines, probe, settings, salt=request.sha)


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


def _read_text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


def _failing_instruction(lines: Sequence[str]) -> str:
    steps = [line for line in lines if line.startswith("Step ")]
    return steps[-1] if steps else ""
