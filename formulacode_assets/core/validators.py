"""Validating a ``build_env.sh`` for real: build the environment, then let asv discover and run benchmarks.

One interface, two sandboxes:

* :class:`DockerValidator` (production): a layered image — toolchain base → repository at the base
  sha → ``build_env.sh`` → ``asv machine`` — built through the docker SDK, then containers (no
  network) for benchmark discovery and a quick run with ``--python=same``.
* :class:`LocalValidator`: a throw-away folder with a virtual environment, for trusted sources
  (the sample store) and machines without Docker. Enabled explicitly, never for GitHub sources.

Both run the same asv commands (:func:`asv_commands`) and read the same result files, and a
validation passes only when discovery lists at least one benchmark and the quick run recorded a
result for at least one of them (asv exits 0 on most failures, so exit codes are not trusted).
Every step has a timeout; a timeout is a failure with its reason. Discovery and the quick run are
repeated ``repeats`` times on the one built environment, and the result says whether the set of
benchmarks was the same every time.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from formulacode_assets.core.git import GitError, run_git
from formulacode_assets.core.install_analysis import AsvSettings

MACHINE = "fc-validator"
TAIL = 4000
# Values of ``stage_failed``: where a context failed ("internal" is a bug caught per row).
STAGES = ("analysis", "checkout", "build", "machine", "discovery", "run", "timeout", "agent", "sandbox", "internal")
# Host variables a build may need (proxies, CA bundles, package indexes); nothing else leaks in.
_PASSTHROUGH = (
    "PATH",
    "LANG",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_INDEX",
)
_CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT")


@dataclass(frozen=True)
class ValidationRequest:
    repo_name: str
    sha: str
    mirror: Path
    script: str
    python_version: str  # X.Y.Z chosen by the install analysis
    python_path: str  # that interpreter on the host (the local validator builds from it)
    asv: AsvSettings
    exclude_newer: str  # ISO date: nothing newer gets installed
    asv_requirement: str = "asv>=0.6"


@dataclass
class ValidationResult:
    ok: bool
    validator: str
    stage_failed: str | None = None
    reason: str | None = None
    returncode: int | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    duration_s: float = 0.0
    python_version: str | None = None  # what the built environment actually runs
    benchmarks: list[str] = field(default_factory=list)  # discovered in every repeat
    benchmarks_with_results: list[str] = field(default_factory=list)  # timed in every repeat
    benchmarks_failed: list[str] = field(default_factory=list)  # discovered but without a result
    repeats: int = 0
    stable: bool | None = None  # same discovered and timed sets in every repeat
    steps: list[dict] = field(default_factory=list)  # name, returncode, duration_s per step


class Validator(ABC):
    """Builds a candidate script's environment and checks that asv discovers and runs benchmarks."""

    name: str

    @abstractmethod
    def validate(self, request: ValidationRequest, *, repeats: int = 2) -> ValidationResult: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients; default: nothing to release."""


# ---------------------------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------------------------


def asv_commands(asv_bin: str, conf_path: str, sha: str) -> dict[str, list[str]]:
    """The asv steps every validator runs, as argument lists (cwd: the repository root)."""
    common = ["--machine", MACHINE, "--config", conf_path]
    return {
        "machine": [asv_bin, "machine", "--yes", *common],
        "discovery": [asv_bin, "run", "--python=same", "--bench", "just-discover", *common],
        "run": [asv_bin, "run", "--python=same", "--quick", "--show-stderr", "--set-commit-hash", sha, *common],
    }


PYTHON_PROBE = "import platform; print(platform.python_version())"


def checkout_commit(mirror: Path, sha: str, dest: Path, branch: str, *, timeout: float = 600) -> None:
    """A git checkout of ``sha`` at ``dest`` on ``branch`` (asv records results against a branch).

    A depth-1 fetch from the bare mirror: the mirror is read, never changed, and the checkout
    is a real repository, as asv's ``--set-commit-hash`` needs.
    """
    run_git(None, ["init", "--quiet", str(dest)], timeout=60)
    git_dir = dest / ".git"
    run_git(git_dir, ["fetch", "--quiet", "--depth=1", "--no-tags", str(mirror), sha], timeout=timeout)
    run_git(git_dir, [f"--work-tree={dest}", "checkout", "--quiet", "-B", branch, "FETCH_HEAD"], timeout=timeout)


def read_discovery(results_dir: Path) -> list[str] | None:
    """Benchmark names from asv's ``benchmarks.json`` (None when discovery wrote nothing)."""
    path = results_dir / "benchmarks.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return sorted(name for name in data if name != "version")


def _has_value(value: Any) -> bool:
    if isinstance(value, list):
        return any(_has_value(v) for v in value)
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def read_run_results(results_dir: Path, sha: str) -> dict[str, bool] | None:
    """``{benchmark: has a result}`` from the quick run's result file for ``sha`` (None: no file)."""
    machine_dir = results_dir / MACHINE
    files = sorted(machine_dir.glob(f"{sha[:8]}-*.json")) if machine_dir.is_dir() else []
    if not files:
        return None
    outcome: dict[str, bool] = {}
    for path in files:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        for name, row in (data.get("results") or {}).items():
            value = row[0] if isinstance(row, list) and row else row
            outcome[name] = outcome.get(name, False) or _has_value(value)
    return outcome


def _tail(text: str | bytes, limit: int = TAIL) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text[-limit:]


@dataclass
class _Repeat:
    discovered: list[str]
    timed: list[str]
    failed: list[str]


def _judge_repeat(
    discovered: list[str] | None, results: dict[str, bool] | None
) -> tuple[_Repeat | None, str | None, str | None]:
    """``(repeat, failed stage, reason)`` for one discovery + quick run."""
    if not discovered:
        reason = "asv discovered no benchmarks" if discovered == [] else "asv benchmark discovery wrote no benchmarks"
        return None, "discovery", reason
    if results is None:
        return None, "run", "the quick run recorded no result file"
    timed = sorted(name for name, ok in results.items() if ok)
    if not timed:
        return None, "run", f"the quick run produced no timing for any of {len(discovered)} benchmarks"
    return _Repeat(discovered, timed, sorted(set(discovered) - set(timed))), None, None


def _combine(result: ValidationResult, repeats: list[_Repeat]) -> ValidationResult:
    result.ok = True
    result.repeats = len(repeats)
    result.benchmarks = sorted(set.intersection(*(set(r.discovered) for r in repeats)))
    result.benchmarks_with_results = sorted(set.intersection(*(set(r.timed) for r in repeats)))
    result.benchmarks_failed = sorted(set(result.benchmarks) - set(result.benchmarks_with_results))
    result.stable = all(r.discovered == repeats[0].discovered and r.timed == repeats[0].timed for r in repeats)
    return result


# ---------------------------------------------------------------------------------------------
# Local validator
# ---------------------------------------------------------------------------------------------


@dataclass
class _Step:
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool


def run_step(cmd: Sequence[str], *, cwd: Path, env: dict[str, str], timeout: float, logs: Path) -> _Step:
    """Run one command in its own process group; on timeout the whole group is killed.

    Output goes to files (not pipes), so a stray grandchild holding a pipe cannot hang us.
    """
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / "stdout", logs / "stderr"
    started = time.monotonic()
    timed_out = False
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            list(cmd), cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
        )
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            returncode = proc.returncode
    return _Step(
        returncode,
        _tail(out_path.read_bytes()),
        _tail(err_path.read_bytes()),
        round(time.monotonic() - started, 3),
        timed_out,
    )


def _kill_group(proc: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            # The leader is gone; make sure nothing of its group is left either.
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue
        return


def sandbox_environment(
    *, home: Path, venv: Path, request: ValidationRequest, python: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """An allow-listed environment: no tokens or keys of the host reach the build."""
    env = {name: os.environ[name] for name in _PASSTHROUGH if os.environ.get(name)}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        {
            "HOME": str(home),
            "TMPDIR": str(home / "tmp"),
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_CONFIG": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "FC_VENV": str(venv),
            "FC_PYTHON": python,
            "FC_EXCLUDE_NEWER": request.exclude_newer,
            "FC_ASV_CONF": request.asv.conf_path,
            "FC_ASV_REQUIREMENT": request.asv_requirement,
            "FC_REPO_NAME": request.repo_name,
            "FC_BASE_SHA": request.sha,
        }
    )
    env.update(extra or {})
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    return env


class LocalValidator(Validator):
    """A temporary folder: checkout, ``bash build_env.sh`` into a fresh venv, asv steps; all deleted after.

    Only for trusted sources: the script runs as the current user on this machine.
    """

    name = "local"

    def __init__(
        self,
        *,
        work_root: Path | None = None,
        uv_cache_dir: Path | None = None,
        extra_ca_certs: Path | None = None,
        build_timeout: float = 900,
        step_timeout: float = 600,
        keep_workdirs: bool = False,
    ):
        self.work_root = Path(work_root) if work_root else None
        self.uv_cache_dir = Path(uv_cache_dir) if uv_cache_dir else None
        self.extra_ca_certs = Path(extra_ca_certs) if extra_ca_certs else None
        self.build_timeout = build_timeout
        self.step_timeout = step_timeout
        self.keep_workdirs = keep_workdirs

    def validate(self, request: ValidationRequest, *, repeats: int = 2) -> ValidationResult:
        started = time.monotonic()
        result = ValidationResult(ok=False, validator=self.name)
        if self.work_root:
            self.work_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="fc-validate-", dir=self.work_root))
        try:
            self._validate_in(tmp, request, repeats, result)
        finally:
            result.duration_s = round(time.monotonic() - started, 3)
            if not self.keep_workdirs:
                shutil.rmtree(tmp, ignore_errors=True)
        return result

    def _fail(self, result: ValidationResult, stage: str, reason: str, step: _Step | None = None) -> ValidationResult:
        result.ok, result.stage_failed, result.reason = False, stage, reason
        if step is not None:
            result.returncode, result.stdout_tail, result.stderr_tail = step.returncode, step.stdout, step.stderr
        return result

    def _validate_in(self, tmp: Path, request: ValidationRequest, repeats: int, result: ValidationResult) -> None:
        repo, venv, home = tmp / "repo", tmp / "env", tmp / "home"
        try:
            checkout_commit(request.mirror, request.sha, repo, request.asv.branch)
        except GitError as exc:
            self._fail(result, "checkout", f"cannot check out {request.sha[:12]}: {exc.reason}")
            return
        script = tmp / "build_env.sh"
        script.write_text(request.script)
        extra = {}
        if self.uv_cache_dir:
            extra["UV_CACHE_DIR"] = str(self.uv_cache_dir)
        if self.extra_ca_certs:
            extra.update({name: str(self.extra_ca_certs) for name in _CA_VARIABLES})
        env = sandbox_environment(home=home, venv=venv, request=request, python=request.python_path, extra=extra)

        def step(name: str, cmd: Sequence[str], timeout: float) -> _Step:
            outcome = run_step(cmd, cwd=repo, env=env, timeout=timeout, logs=tmp / "logs" / name)
            result.steps.append({"name": name, "returncode": outcome.returncode, "duration_s": outcome.duration_s})
            return outcome

        build = step("build", ["bash", str(script)], self.build_timeout)
        if build.timed_out:
            self._fail(result, "timeout", f"build_env.sh did not finish within {self.build_timeout:.0f} s", build)
            return
        if build.returncode != 0:
            self._fail(result, "build", f"build_env.sh exited with {build.returncode}", build)
            return
        asv_bin = venv / "bin" / "asv"
        if not asv_bin.exists():
            self._fail(result, "build", "build_env.sh finished but $FC_VENV/bin/asv does not exist", build)
            return
        probe = step("python", [str(venv / "bin" / "python"), "-c", PYTHON_PROBE], 60)
        result.python_version = probe.stdout.strip() or None
        commands = asv_commands(str(asv_bin), request.asv.conf_path, request.sha)
        machine = step("machine", commands["machine"], self.step_timeout)
        if machine.timed_out or machine.returncode != 0:
            stage = "timeout" if machine.timed_out else "machine"
            self._fail(result, stage, f"asv machine failed ({machine.returncode})", machine)
            return
        results_dir = repo / request.asv.results_dir
        done = []
        for i in range(max(1, repeats)):
            shutil.rmtree(results_dir, ignore_errors=True)  # a stale file must never count
            discovery = step(f"discovery-{i + 1}", commands["discovery"], self.step_timeout)
            if discovery.timed_out:
                self._fail(result, "timeout", f"benchmark discovery exceeded {self.step_timeout:.0f} s", discovery)
                return
            discovered = read_discovery(results_dir)
            run = None
            if discovered:
                run = step(f"run-{i + 1}", commands["run"], self.step_timeout)
                if run.timed_out:
                    self._fail(result, "timeout", f"the quick run exceeded {self.step_timeout:.0f} s", run)
                    return
            repeat, stage, reason = _judge_repeat(
                discovered, read_run_results(results_dir, request.sha) if run else None
            )
            if repeat is None:
                self._fail(result, stage, f"{reason} (repeat {i + 1})", run or discovery)
                return
            done.append(repeat)
            result.returncode, result.stdout_tail, result.stderr_tail = run.returncode, run.stdout, run.stderr
        _combine(result, done)


# ---------------------------------------------------------------------------------------------
# Docker validator
# ---------------------------------------------------------------------------------------------

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
                        f"{name}={_CA_IN_IMAGE}" for name in _CA_VARIABLES
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
        )
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
            run.stdout = _tail(container.logs(stdout=True, stderr=False))
            run.stderr = _tail(container.logs(stdout=False, stderr=True))
            if results_dir and not run.timed_out:
                with contextlib.suppress(docker.errors.NotFound):
                    bits, _ = container.get_archive(results_dir)
                    run.archive = b"".join(bits)
        finally:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
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
            result.reason, result.stderr_tail = str(exc).splitlines()[0][:500], _tail(str(exc))
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
            result.stdout_tail = _tail(text)
            result.stderr_tail = _tail(error or "")
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
                result.stage_failed, result.reason = "build", f"image build failed: {error}"
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
            repeat, stage, reason = _judge_repeat(discovered, run_results)
            if repeat is None:
                result.stage_failed, result.reason = stage, f"{reason} (repeat {i + 1})"
                return tag
            done.append(repeat)
        _combine(result, done)
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
