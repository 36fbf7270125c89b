"""The local sandbox: a throw-away folder with a virtual environment, for trusted sources.

Used for the sample store and machines without Docker; enabled explicitly, never for GitHub
sources. Builds get an allow-listed environment (:func:`sandbox_environment`) so no token of the
host reaches them, and every step runs in its own process group, killed whole on timeout.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from formulacode_assets.core.environments.module_check import IMPORT_DRIVER, failing_modules, set_aside
from formulacode_assets.core.environments.validation import (
    CA_VARIABLES,
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
from formulacode_assets.core.leftovers import owned_prefix, sweep_dead
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
from formulacode_assets.core.process_guard import watch_process_group

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
        watchdog = watch_process_group(proc.pid)  # the group dies with us, even on kill -9
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            returncode = proc.returncode
        finally:
            watchdog.dismiss()
    return _Step(
        returncode,
        tail(out_path.read_bytes()),
        tail(err_path.read_bytes()),
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
        validation_budget: float = 600,
        benchmark_timeout: float = 60,
        selection: SelectionSettings | None = None,
        module_import_timeout: float = 60,
    ):
        self.work_root = Path(work_root) if work_root else None
        self.uv_cache_dir = Path(uv_cache_dir) if uv_cache_dir else None
        self.extra_ca_certs = Path(extra_ca_certs) if extra_ca_certs else None
        self.build_timeout = build_timeout
        self.step_timeout = step_timeout
        self.keep_workdirs = keep_workdirs
        self.validation_budget = validation_budget  # the whole validation, build included
        self.benchmark_timeout = benchmark_timeout  # asv's per-benchmark timeout in the quick run
        self.selection = selection or SelectionSettings()
        self.module_import_timeout = module_import_timeout  # one benchmark module's import, when discovery fails

    def validate(self, request: ValidationRequest, *, repeats: int = 2) -> ValidationResult:
        started = time.monotonic()
        result = ValidationResult(ok=False, validator=self.name)
        if self.work_root:
            self.work_root.mkdir(parents=True, exist_ok=True)
        sweep_dead(self.work_root or Path(tempfile.gettempdir()), "fc-validate-")  # work dirs of killed runs
        tmp = Path(tempfile.mkdtemp(prefix=owned_prefix("fc-validate-"), dir=self.work_root))
        try:
            self._validate_in(tmp, request, repeats, result, started + self.validation_budget)
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

    def _validate_in(
        self, tmp: Path, request: ValidationRequest, repeats: int, result: ValidationResult, deadline: float
    ) -> None:
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
            extra.update({name: str(self.extra_ca_certs) for name in CA_VARIABLES})
        env = sandbox_environment(home=home, venv=venv, request=request, python=request.python_path, extra=extra)

        def step(name: str, cmd: Sequence[str], timeout: float) -> _Step:
            timeout = max(1.0, min(timeout, deadline - time.monotonic()))
            outcome = run_step(cmd, cwd=repo, env=env, timeout=timeout, logs=tmp / "logs" / name)
            result.steps.append({"name": name, "returncode": outcome.returncode, "duration_s": outcome.duration_s})
            return outcome

        def over(limit: float, what: str) -> str:
            if time.monotonic() >= deadline - 1:
                return f"the validation budget of {self.validation_budget:.0f} s ran out during {what}"
            return f"{what} exceeded {limit:.0f} s"

        build = step("build", ["bash", str(script)], self.build_timeout)
        if build.timed_out:
            if time.monotonic() >= deadline - 1:
                why = f"the validation budget of {self.validation_budget:.0f} s ran out during build_env.sh"
            else:
                why = f"build_env.sh did not finish within {self.build_timeout:.0f} s"
            self._fail(result, "timeout", why, build)
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
        selection: Selection | None = None
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
                self._fail(result, "timeout", over(self.step_timeout, "benchmark discovery"), discovery)
                return
            discovered = read_discovery(results_dir)
            if not discovered and i == 0:
                excluded = self._set_aside_failing_modules(request, venv, repo, tmp, env, result, deadline)
                if excluded:
                    result.benchmarks_excluded = excluded
                    shutil.rmtree(results_dir, ignore_errors=True)
                    retry = step("discovery-1-without-excluded", commands["discovery"], self.step_timeout)
                    if retry.timed_out:
                        self._fail(result, "timeout", over(self.step_timeout, "benchmark discovery"), retry)
                        return
                    discovered = read_discovery(results_dir)
                    if not discovered:  # the first discovery's output shows the import errors
                        why = f"asv discovered no benchmarks; {len(excluded)} module(s) fail at import: {excluded[0]}"
                        self._fail(result, "discovery", why[:1000], discovery)
                        return
            if discovered and selection is None:
                result.benchmarks = list(discovered)  # kept on the row even when a later step fails
                selection = self._select(request, discovered, venv, repo, step, deadline)
                result.benchmarks_selected, result.selection = selection.selected, selection.as_dict()
                commands = asv_commands(
                    str(asv_bin),
                    request.asv.conf_path,
                    request.sha,
                    bench_patterns=bench_regexes(selection.selected) if selection.rule != "all" else (),
                    benchmark_timeout=self.benchmark_timeout,
                )
            run = None
            if discovered:
                run = step(f"run-{i + 1}", commands["run"], self.step_timeout)
                if run.timed_out:
                    self._fail(result, "timeout", over(self.step_timeout, "the quick run"), run)
                    return
            repeat, stage, reason = judge_repeat(
                discovered,
                read_run_results(results_dir, request.sha) if run else None,
                selection.primary if selection and selection.rule != "all" else None,
            )
            if repeat is None:
                self._fail(result, stage, f"{reason} (repeat {i + 1})", run or discovery)
                return
            done.append(repeat)
            result.returncode, result.stdout_tail, result.stderr_tail = run.returncode, run.stdout, run.stderr
        combine_repeats(result, done)

    def _set_aside_failing_modules(
        self, request, venv: Path, repo: Path, tmp: Path, env: dict, result: ValidationResult, deadline: float
    ) -> list[str]:
        """Import each benchmark module on its own; move the failing ones out of the checkout (see module_check)."""
        bench_dir = repo / request.asv.benchmark_dir
        python = str(venv / "bin" / "python")
        started, checked = time.monotonic(), [0]

        def import_one(module: str) -> tuple[bool, str]:
            checked[0] += 1
            timeout = max(1.0, min(self.module_import_timeout, deadline - time.monotonic()))
            cmd = [python, "-c", IMPORT_DRIVER, str(bench_dir), module]
            outcome = run_step(cmd, cwd=repo, env=env, timeout=timeout, logs=tmp / "logs" / f"import-{checked[0]}")
            if outcome.timed_out:
                return False, f"import did not finish within {timeout:.0f} s"
            last = (outcome.stdout.strip() or outcome.stderr.strip()).splitlines()
            return outcome.returncode == 0, (last[-1] if last else f"exit {outcome.returncode}")[:300]

        # Keep a third of what is left for discovery and the quick run on the modules that import.
        until = started + max(0.0, (deadline - started) * 2 / 3)
        failing, _ = failing_modules(bench_dir, import_one, time_left=lambda: until - time.monotonic())
        duration = round(time.monotonic() - started, 3)
        result.steps.append({"name": "module-imports", "returncode": len(failing), "duration_s": duration})
        return set_aside(bench_dir, failing, tmp / "excluded-benchmarks") if failing else []

    def _select(self, request, discovered, venv: Path, repo: Path, step, deadline: float) -> Selection:
        """Probe the discovered benchmarks under a line tracer (within the selection budget), then choose."""
        settings = self.selection
        probe = {}
        if request.changed_lines and len(discovered) > settings.run_all_below:
            out = repo.parent / "probe.jsonl"
            # Leave at least half of what is left of the validation budget to the quick runs.
            budget = min(settings.budget_s, max(1.0, (deadline - time.monotonic()) / 2))
            order = probe_order(discovered, request.changed_lines, salt=request.sha)
            spec = probe_spec(
                request.asv.benchmark_dir, order, request.changed_lines, settings.benchmark_timeout_s, str(out)
            )
            step("select", [str(venv / "bin" / "python"), "-c", PROBE_DRIVER, spec], budget)
            probe = read_probe(out.read_text()) if out.exists() else {}
        return select_benchmarks(discovered, request.changed_lines, probe, settings, salt=request.sha)
