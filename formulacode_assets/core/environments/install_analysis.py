"""What it takes to install a repository at one commit: asv settings, package metadata, Python, pins.

Everything is read from the bare mirror (``git cat-file``), never by running the project's code:
``setup.py`` is parsed with :mod:`ast` for literal ``install_requires`` / ``python_requires``. The
Python version is the newest available interpreter that the project accepts and that had been out
for a while at the commit date; dependencies are resolved **as of the commit date** with
``uv pip compile --exclude-newer``, relaxing step by step when strict resolution fails, and every
step is logged. Results are cached by content under ``<cache>/install-analysis/``.
"""

from __future__ import annotations

import ast
import configparser
import hashlib
import json
import os
import posixpath
import re
import shutil
import subprocess
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from formulacode_assets.core.environments.system_packages import is_conda_only
from formulacode_assets.core.mining.asv_config import AsvConfigError, find_asv_config
from formulacode_assets.core.mining.git import GitError, run_git

ANALYSIS_VERSION = "1"
_LOG_TAIL = 4000

# First release of each Python line: "plausible at the commit date" means released a while before it.
PYTHON_RELEASES: dict[str, date] = {
    "2.7": date(2010, 7, 3),
    "3.5": date(2015, 9, 13),
    "3.6": date(2016, 12, 23),
    "3.7": date(2018, 6, 27),
    "3.8": date(2019, 10, 14),
    "3.9": date(2020, 10, 5),
    "3.10": date(2021, 10, 4),
    "3.11": date(2022, 10, 24),
    "3.12": date(2023, 10, 2),
    "3.13": date(2024, 10, 7),
    "3.14": date(2025, 10, 7),
}

_METADATA_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "requirements.txt")


class AnalysisError(Exception):
    """The commit cannot be analysed (no asv config, unreadable commit, no usable interpreter)."""


# ---------------------------------------------------------------------------------------------
# Interpreters
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interpreter:
    version: str  # X.Y.Z
    path: str

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


def default_pyenv_root() -> Path | None:
    """``$(pyenv root)`` when pyenv is installed, else ``~/.pyenv`` if it exists."""
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            out = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30, check=True).stdout
            return Path(out.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    fallback = Path.home() / ".pyenv"
    return fallback if fallback.is_dir() else None


def discover_interpreters(pyenv_root: Path | None) -> list[Interpreter]:
    """Interpreters under ``<pyenv_root>/versions/X.Y.Z/bin/python``, oldest first."""
    found = []
    versions = Path(pyenv_root) / "versions" if pyenv_root else None
    if versions is None or not versions.is_dir():
        return []
    for entry in versions.iterdir():
        binary = entry / "bin" / "python"
        try:
            parsed = Version(entry.name)
        except InvalidVersion:
            continue  # a pyenv-virtualenv or a named build
        if binary.exists() and len(parsed.release) == 3:
            found.append(Interpreter(entry.name, str(binary)))
    return sorted(found, key=lambda i: Version(i.version))


def choose_python(
    interpreters: Sequence[Interpreter],
    commit_date: datetime,
    *,
    requires_python: str | None,
    asv_pythons: Sequence[str] = (),
    lag_days: int = 180,
    min_python: str = "3.7",
) -> tuple[Interpreter, str]:
    """The newest interpreter the project accepts that had been released ``lag_days`` before the commit.

    ``asv_pythons`` (the config's ``pythons``) narrows the choice when it names available versions.
    Returns ``(interpreter, why)``; raises :class:`AnalysisError` when none is acceptable.
    """
    usable = [i for i in interpreters if Version(i.version) >= Version(min_python)]
    notes = []
    if requires_python:
        try:
            spec = SpecifierSet(requires_python)
            accepted = [i for i in usable if spec.contains(i.version, prereleases=True)]
        except InvalidSpecifier:
            accepted, _ = usable, notes.append(f"ignored unparsable requires-python {requires_python!r}")
        if not accepted:
            raise AnalysisError(
                f"no available interpreter satisfies requires-python {requires_python!r} "
                f"(available: {', '.join(i.version for i in usable) or 'none'})"
            )
        usable = accepted
    if not usable:
        raise AnalysisError(f"no Python >= {min_python} available (asv needs it to run benchmarks)")
    wanted = {str(p).strip() for p in asv_pythons if str(p).strip()}
    if wanted:
        named = [i for i in usable if i.minor in wanted or i.version in wanted]
        if named:
            usable = named
        else:
            notes.append(f"asv pythons {sorted(wanted)} not available")
    cutoff = commit_date.date() - timedelta(days=lag_days)
    plausible = [i for i in usable if PYTHON_RELEASES.get(i.minor, date.max) <= cutoff]
    if plausible:
        chosen, why = plausible[-1], f"newest accepted Python released before {cutoff.isoformat()}"
    else:
        chosen, why = usable[0], f"no accepted Python was released before {cutoff.isoformat()}: oldest accepted"
    return chosen, "; ".join([why, *notes])


# ---------------------------------------------------------------------------------------------
# Reading the commit
# ---------------------------------------------------------------------------------------------


def read_files_at(git_dir: Path, commit: str, paths: Sequence[str]) -> dict[str, str]:
    """The text of each existing blob ``commit:path`` (one ``git cat-file --batch`` call)."""
    if not paths:
        return {}
    request = "".join(f"{commit}:{path}\n" for path in paths).encode()
    out = run_git(git_dir, ["cat-file", "--batch"], input=request, timeout=120)
    files, pos = {}, 0
    for path in paths:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode("utf-8", "replace").split()
        pos = end + 1
        if len(header) == 3:
            size = int(header[2])
            if header[1] == "blob":
                files[path] = out[pos : pos + size].decode("utf-8", "replace")
            pos += size + 1
    return files


def commit_date_of(git_dir: Path, commit: str) -> datetime:
    """The committer date of ``commit``, in UTC."""
    out = run_git(git_dir, ["show", "-s", "--format=%cI", commit, "--"], timeout=60).decode().strip()
    return datetime.fromisoformat(out).astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# Package metadata
# ---------------------------------------------------------------------------------------------


@dataclass
class PackageMetadata:
    name: str | None = None
    requires_python: str | None = None
    dependencies: list[str] = field(default_factory=list)
    build_requires: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # which files said something
    notes: list[str] = field(default_factory=list)


def _clean_requirements(lines: Sequence[str], notes: list[str], origin: str) -> list[str]:
    kept = []
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            Requirement(line)
        except InvalidRequirement:
            notes.append(f"{origin}: skipped unparsable requirement {line!r}")
            continue
        kept.append(line)
    return kept


def _from_pyproject(text: str, meta: PackageMetadata) -> None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        meta.notes.append(f"pyproject.toml is not valid TOML: {exc}")
        return
    build = data.get("build-system") or {}
    meta.build_requires = _clean_requirements(build.get("requires") or [], meta.notes, "build-system")
    project = data.get("project") or {}
    poetry = (data.get("tool") or {}).get("poetry") or {}
    if project:
        meta.sources.append("pyproject.toml")
        meta.name = project.get("name") or meta.name
        meta.requires_python = project.get("requires-python") or meta.requires_python
        meta.dependencies += _clean_requirements(project.get("dependencies") or [], meta.notes, "pyproject")
        if "dependencies" in (project.get("dynamic") or []):
            meta.notes.append("pyproject declares dynamic dependencies")
    elif poetry:
        meta.sources.append("pyproject.toml (poetry)")
        meta.name = poetry.get("name") or meta.name
        deps = dict(poetry.get("dependencies") or {})
        python = deps.pop("python", None)
        if isinstance(python, str) and not python.startswith(("^", "~")):
            meta.requires_python = python
        # Poetry's caret/tilde ranges have no PEP 440 spelling: keep the names, let resolution pick.
        meta.dependencies += [name for name in deps if re.fullmatch(r"[A-Za-z0-9._-]+", name)]


def _from_setup_cfg(text: str, meta: PackageMetadata) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        meta.notes.append(f"setup.cfg unreadable: {exc}")
        return
    if parser.has_section("metadata"):
        meta.name = meta.name or parser.get("metadata", "name", fallback=None)
    if parser.has_section("options"):
        meta.sources.append("setup.cfg")
        meta.requires_python = meta.requires_python or parser.get("options", "python_requires", fallback=None)
        requires = parser.get("options", "install_requires", fallback="")
        meta.dependencies += _clean_requirements(re.split(r"[\n;]", requires), meta.notes, "setup.cfg")


def _literal_strings(node: ast.AST, names: dict[str, ast.AST]) -> list[str] | str | None:
    if isinstance(node, ast.Name) and node.id in names:
        node = names[node.id]
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _from_setup_py(text: str, meta: PackageMetadata) -> None:
    """Literal ``setup(...)`` keywords only: the file is never executed."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError) as exc:
        meta.notes.append(f"setup.py does not parse: {exc}")
        return
    names = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "setup"):
            continue
        meta.sources.append("setup.py")
        for keyword in node.keywords:
            value = _literal_strings(keyword.value, names)
            if keyword.arg == "install_requires":
                if isinstance(value, list):
                    meta.dependencies += _clean_requirements(value, meta.notes, "setup.py")
                else:
                    meta.notes.append("setup.py install_requires is not a literal list")
            elif keyword.arg == "python_requires" and isinstance(value, str):
                meta.requires_python = meta.requires_python or value
            elif keyword.arg == "name" and isinstance(value, str):
                meta.name = meta.name or value
        return


def read_package_metadata(files: dict[str, str], project_dir: str = "") -> PackageMetadata:
    """Name, requires-python, runtime and build requirements from pyproject / setup.cfg / setup.py.

    ``requirements.txt`` is read only when none of the others lists dependencies.
    """
    meta = PackageMetadata()

    def at(name: str) -> str | None:
        return files.get(posixpath.join(project_dir, name) if project_dir else name)

    if (text := at("pyproject.toml")) is not None:
        _from_pyproject(text, meta)
    if (text := at("setup.cfg")) is not None:
        _from_setup_cfg(text, meta)
    if (text := at("setup.py")) is not None:
        _from_setup_py(text, meta)
    if not meta.dependencies and (text := at("requirements.txt")) is not None:
        meta.sources.append("requirements.txt")
        meta.dependencies += _clean_requirements(text.splitlines(), meta.notes, "requirements.txt")
    if not meta.sources and at("pyproject.toml") is None and at("setup.py") is None:
        meta.notes.append("no packaging metadata (pyproject.toml / setup.cfg / setup.py)")
    # One entry per distribution name, first spelling wins.
    seen, unique = set(), []
    for req in meta.dependencies:
        name = Requirement(req).name.lower().replace("_", "-")
        if name not in seen:
            seen.add(name)
            unique.append(req)
    meta.dependencies = unique
    return meta


# ---------------------------------------------------------------------------------------------
# asv settings
# ---------------------------------------------------------------------------------------------


@dataclass
class AsvSettings:
    conf_path: str
    conf_dir: str
    benchmark_dir: str
    results_dir: str  # relative to the repository root
    project_dir: str  # the package root, relative to the repository root ("" = root)
    branches: list[str]
    pythons: list[str]
    matrix: dict[str, str | None]  # package -> version spec ("" = any); one combination of the matrix
    build_command: list[str] | None
    install_command: list[str] | None
    environment_type: str | None
    notes: list[str] = field(default_factory=list)

    @property
    def branch(self) -> str:
        """The branch asv records results against (its default is ``master``)."""
        return self.branches[0] if self.branches else "master"


def _inside(path: str) -> str | None:
    resolved = posixpath.normpath(path)
    if resolved in (".", ""):
        return ""
    if resolved.startswith("../") or resolved == ".." or posixpath.isabs(resolved):
        return None
    return resolved


def _first_matrix_value(values) -> str | None:
    """asv builds the product of the matrix; one combination is enough: the first listed value."""
    if isinstance(values, list):  # asv: an empty list, like "", means the newest version
        if not values:
            return ""
        return None if values[0] is None else str(values[0])
    return None if values is None else str(values)


def asv_settings(conf_path: str, benchmark_dir: str, config: dict) -> AsvSettings:
    conf_dir = posixpath.dirname(conf_path)
    notes = []
    repo = config.get("repo") or "."
    project_dir = ""
    if isinstance(repo, str) and "://" not in repo and not repo.startswith("git@"):
        inside = _inside(posixpath.join(conf_dir, repo))
        if inside is None:
            notes.append(f"asv repo {repo!r} points outside the repository; using the root")
        else:
            project_dir = inside
    subdir = config.get("repo_subdir")
    if isinstance(subdir, str) and subdir:
        inside = _inside(posixpath.join(project_dir, subdir))
        project_dir = inside if inside is not None else project_dir
    results = config.get("results_dir") or "results"
    results_dir = _inside(posixpath.join(conf_dir, str(results))) or ".asv-results"

    matrix_conf = config.get("matrix") or {}
    if isinstance(matrix_conf, dict) and ("req" in matrix_conf or "env" in matrix_conf):
        reqs = matrix_conf.get("req") or {}
    else:
        reqs = matrix_conf if isinstance(matrix_conf, dict) else {}
    matrix = {}
    for name, values in reqs.items():
        clean = name.removeprefix("pip+")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", clean):
            notes.append(f"matrix entry {name!r} is not a package name; dropped")
            continue
        matrix[clean] = _first_matrix_value(values)

    def commands(key: str) -> list[str] | None:
        value = config.get(key)
        if value is None:
            return None
        return [value] if isinstance(value, str) else [str(v) for v in value]

    pythons = config.get("pythons") or []
    return AsvSettings(
        conf_path=conf_path,
        conf_dir=conf_dir,
        benchmark_dir=benchmark_dir,
        results_dir=results_dir,
        project_dir=project_dir,
        branches=[str(b) for b in (config.get("branches") or [])],
        pythons=[str(p) for p in (pythons if isinstance(pythons, list) else [pythons])],
        matrix=matrix,
        build_command=commands("build_command"),
        install_command=commands("install_command"),
        environment_type=config.get("environment_type"),
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------
# Resolution as of the commit date
# ---------------------------------------------------------------------------------------------


@dataclass
class Resolution:
    ok: bool
    step: str | None  # the relaxation step that resolved (None: none did)
    pins: list[str]
    requirements: list[str]  # what that step asked for
    cutoff: str  # the --exclude-newer actually used
    log: str  # every step's command outcome, newest last


def _as_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _without_specifier(requirement: str) -> str:
    req = Requirement(requirement)
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    marker = f"; {req.marker}" if req.marker else ""
    return f"{req.name}{extras}{marker}"


def relaxation_steps(
    dependencies: Sequence[str], matrix: dict[str, str | None], cutoff: datetime
) -> list[tuple[str, list[str], list[str], datetime]]:
    """``(name, requirements, extra uv args, cutoff)`` from strictest to loosest, duplicates removed."""

    def matrix_reqs(pinned: bool) -> list[str]:
        out = []
        for name, spec in matrix.items():
            if spec is None or is_conda_only(name):  # a C library / tool: apt's, not pip's (system_packages)
                continue
            if pinned and spec:
                out.append(f"{name}=={spec}" if re.fullmatch(r"[0-9][0-9A-Za-z.!+*-]*", spec) else f"{name}{spec}")
            else:
                out.append(name)
        return out

    declared = list(dependencies)
    unbounded = [_without_specifier(r) for r in declared]
    candidates = [
        ("wheels", declared + matrix_reqs(True), ["--no-build"], cutoff),
        ("sdists", declared + matrix_reqs(True), [], cutoff),
        ("matrix-unpinned", declared + matrix_reqs(False), [], cutoff),
        # conda-only matrix keys (C libraries, compilers) are no PyPI packages: drop the matrix.
        ("no-matrix", declared, [], cutoff),
        ("unbounded", unbounded, [], cutoff),
        ("later-cutoff", unbounded, [], cutoff + timedelta(days=365)),
    ]
    steps, seen = [], set()
    for name, reqs, args, when in candidates:
        key = (tuple(reqs), tuple(args), when)
        if key not in seen:
            seen.add(key)
            steps.append((name, reqs, args, when))
    return steps


def uv_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment (proxies, CA bundles) with uv kept offline for interpreters."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"}
    env.update(extra or {})
    return env


def _compile_command(uv: str, minor: str, cutoff_iso: str, args: Sequence[str]) -> list[str]:
    cmd = [uv, "pip", "compile", "-", "--no-config", "--no-header", "--no-annotate", "--quiet"]
    return [*cmd, "--python-version", minor, "--exclude-newer", cutoff_iso, *args]


def resolver_at(python_version: str, cutoff_iso: str, step: str | None, *, uv: str = "uv", timeout: float = 300):
    """``resolve(requirements) -> (ok, pins, error)`` with an analysis's Python, cutoff and resolution step.

    For the pin guard (:func:`.pin_dates.guard_old_pins`): the same resolution with floors added.
    """
    minor = ".".join(python_version.split(".")[:2])
    cmd = _compile_command(uv, minor, cutoff_iso, ["--no-build"] if step == "wheels" else [])

    def resolve(requirements: list[str]) -> tuple[bool, list[str], str]:
        try:
            proc = subprocess.run(
                cmd, input="\n".join(requirements) + "\n", capture_output=True, text=True, timeout=timeout,
                env=uv_environment(),
            )  # fmt: skip
        except (subprocess.TimeoutExpired, OSError) as exc:
            return False, [], f"{type(exc).__name__}: {exc}"
        if proc.returncode != 0:
            return False, [], proc.stderr
        pins = [line.strip() for line in proc.stdout.splitlines() if line.strip() and not line.startswith("#")]
        return True, pins, ""

    return resolve


def resolve_as_of(
    dependencies: Sequence[str],
    matrix: dict[str, str | None],
    python_version: str,
    cutoff: datetime,
    *,
    uv: str = "uv",
    timeout: float = 300,
    cache_dir: Path | None = None,
) -> Resolution:
    """Pins for the requirements as PyPI served them at ``cutoff`` (``uv pip compile --exclude-newer``).

    Tries :func:`relaxation_steps` in order and stops at the first that resolves. Cached by content.
    """
    steps = relaxation_steps(dependencies, matrix, cutoff)
    if not steps[0][1]:
        return Resolution(True, "nothing-to-resolve", [], [], _as_iso(cutoff), "no runtime dependencies declared\n")
    key = hashlib.sha256(
        json.dumps([ANALYSIS_VERSION, python_version, [(n, r, a, _as_iso(w)) for n, r, a, w in steps]]).encode()
    ).hexdigest()
    cache_file = Path(cache_dir) / "install-analysis" / "resolutions" / f"{key}.json" if cache_dir else None
    if cache_file and cache_file.exists():
        return Resolution(**json.loads(cache_file.read_text()))
    log = []
    result = None
    minor = ".".join(python_version.split(".")[:2])
    for name, reqs, args, when in steps:
        cmd = _compile_command(uv, minor, _as_iso(when), args)
        log.append(f"$ {' '.join(cmd)}  # step {name}: {len(reqs)} requirements")
        try:
            proc = subprocess.run(
                cmd, input="\n".join(reqs) + "\n", capture_output=True, text=True, timeout=timeout, env=uv_environment()
            )
        except subprocess.TimeoutExpired:
            log.append(f"step {name}: timed out after {timeout:.0f} s")
            continue
        except OSError as exc:
            log.append(f"step {name}: cannot run uv: {exc}")
            break
        if proc.returncode == 0:
            pins = [line.strip() for line in proc.stdout.splitlines() if line.strip() and not line.startswith("#")]
            log.append(f"step {name}: resolved {len(pins)} pins")
            result = Resolution(True, name, pins, reqs, _as_iso(when), "")
            break
        log.append(f"step {name}: failed (exit {proc.returncode})\n{proc.stderr.strip()[-1500:]}")
    text = "\n".join(log) + "\n"
    if result is None:
        result = Resolution(False, None, [], steps[-1][1], _as_iso(steps[-1][3]), text)
    result.log = text
    if cache_file and (result.ok or "timed out" not in text):
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(result)))
        os.replace(tmp, cache_file)
    return result


# ---------------------------------------------------------------------------------------------
# The analysis
# ---------------------------------------------------------------------------------------------


@dataclass
class InstallAnalysis:
    repo_name: str
    sha: str
    commit_date: str  # ISO, UTC: the --exclude-newer cutoff
    asv: dict
    package: dict
    python_version: str
    python_path: str
    python_reason: str
    dependencies: list[str]  # what was asked for (project + asv matrix)
    pins: list[str]  # resolved as of the commit date
    resolution_step: str | None
    resolution_cutoff: str
    can_install: bool
    log_tail: str
    analysis_version: str = ANALYSIS_VERSION

    @property
    def settings(self) -> AsvSettings:
        return AsvSettings(**self.asv)

    @property
    def commit_datetime(self) -> datetime:
        return datetime.fromisoformat(self.commit_date)

    def summary(self) -> str:
        """A compact, human-readable digest (for logs and the agent's prompt)."""
        asv = self.settings
        lines = [
            f"repository {self.repo_name} at {self.sha} (committed {self.commit_date})",
            f"asv config {asv.conf_path}; benchmarks in {asv.benchmark_dir or '.'}; package root "
            f"{asv.project_dir or '.'}; branches {asv.branches or ['master (default)']}",
            f"asv pythons {asv.pythons or 'any'}; matrix {asv.matrix or 'none'}; environment {asv.environment_type}",
            f"asv build_command {asv.build_command}; install_command {asv.install_command}",
            f"package {self.package.get('name')} requires-python {self.package.get('requires_python')}; "
            f"metadata from {self.package.get('sources') or 'nothing'}",
            f"build requirements {self.package.get('build_requires')}",
            f"declared dependencies {self.dependencies}",
            f"python {self.python_version} ({self.python_reason})",
            f"resolution step {self.resolution_step} (cutoff {self.resolution_cutoff}), can_install={self.can_install}",
            f"pins {self.pins}",
        ]
        notes = self.package.get("notes", []) + asv.notes
        if notes:
            lines.append(f"notes: {'; '.join(notes)}")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> InstallAnalysis:
        return cls(**json.loads(text))


def analyze_install(
    git_dir: Path,
    repo_name: str,
    sha: str,
    *,
    interpreters: Sequence[Interpreter],
    cache_dir: Path | None = None,
    uv: str = "uv",
    resolve_timeout: float = 300,
    python_lag_days: int = 180,
    min_python: str = "3.7",
) -> InstallAnalysis:
    """Analyse ``repo_name`` at ``sha`` from its mirror; cached per (repo, sha, interpreters, settings).

    Raises :class:`AnalysisError` when the commit has no readable asv config or no usable Python;
    an unresolvable dependency set is not an error (``can_install=False`` with the log).
    """
    key = hashlib.sha256(
        json.dumps(
            [ANALYSIS_VERSION, repo_name, sha, [(i.version, i.path) for i in interpreters], python_lag_days, min_python]
        ).encode()
    ).hexdigest()[:16]
    cache_file = Path(cache_dir) / "install-analysis" / repo_name / f"{sha}-{key}.json" if cache_dir else None
    if cache_file and cache_file.exists():
        return InstallAnalysis.from_json(cache_file.read_text())

    try:
        location = find_asv_config(git_dir, sha)
        when = commit_date_of(git_dir, sha)
    except GitError as exc:
        raise AnalysisError(f"cannot read {sha[:12]}: {exc.reason}") from exc
    except AsvConfigError as exc:
        raise AnalysisError(str(exc)) from exc
    if location is None:
        raise AnalysisError(f"no asv.conf.json at {sha[:12]}")
    asv = asv_settings(location.conf_path, location.benchmark_dir, location.config)
    paths = [posixpath.join(asv.project_dir, name) if asv.project_dir else name for name in _METADATA_FILES]
    try:
        files = read_files_at(git_dir, sha, paths)
    except GitError as exc:
        raise AnalysisError(f"cannot read package metadata at {sha[:12]}: {exc.reason}") from exc
    package = read_package_metadata(files, asv.project_dir)
    python, why = choose_python(
        interpreters,
        when,
        requires_python=package.requires_python,
        asv_pythons=asv.pythons,
        lag_days=python_lag_days,
        min_python=min_python,
    )
    resolution = resolve_as_of(
        package.dependencies, asv.matrix, python.version, when, uv=uv, timeout=resolve_timeout, cache_dir=cache_dir
    )
    analysis = InstallAnalysis(
        repo_name=repo_name,
        sha=sha,
        commit_date=when.isoformat(),
        asv=asdict(asv),
        package=asdict(package),
        python_version=python.version,
        python_path=python.path,
        python_reason=why,
        dependencies=resolution.requirements or list(package.dependencies),
        pins=resolution.pins,
        resolution_step=resolution.step,
        resolution_cutoff=resolution.cutoff,
        can_install=resolution.ok,
        log_tail=resolution.log[-_LOG_TAIL:],
    )
    if cache_file:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(analysis.to_json())
        os.replace(tmp, cache_file)
    return analysis
