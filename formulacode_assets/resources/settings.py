"""The one place that turns environment variables into bound resources.

A scheduled deployment, ``dagster dev`` and a one-off CLI run all configure the pipeline the same
way: through these variables (see the README). Values that are set are bound as ``EnvVar`` so the
UI shows where they came from; unset ones fall back to folders under the working directory.

| variable | meaning | default |
| --- | --- | --- |
| FORMULACODE_DATA_DIR | parquet base (local folder or s3://bucket/prefix) | ./data |
| FORMULACODE_CACHE_DIR (or CACHE_LOCATION) | mirrors, sample store, caches | ./cache |
| FORMULACODE_CATALOG | DuckDB catalog file | <data dir>/catalog.duckdb |
| FORMULACODE_SOURCE | sample / git | git if FORMULACODE_REPOS_CSV is set, else sample |
| FORMULACODE_REPOS_CSV | repository list for the git source | - |
| FORMULACODE_GIT_WORKERS | repositories mined in parallel | 4 |
| FORMULACODE_EXECUTOR | in_process / multiprocess | in_process |
| GH_TOKENS (or GH_TOKEN, GH_TOKENs) | GitHub tokens, comma-separated (secret: EnvVar only) | - |
| FORMULACODE_GITHUB_URL | GitHub API root (GitHub Enterprise: https://host/api/v3) | https://api.github.com |
| FORMULACODE_MIN_STARS | GitHub repositories with fewer stars are skipped | 500 |
| FORMULACODE_GITHUB_REFRESH | 1: refetch closed months instead of using cached responses | 0 |
| FORMULACODE_GITHUB_PACING | seconds between GitHub requests | 0.25 |
| DSPY_MODEL_NAME | the judging LM (unset: the keyword heuristic, recorded per row) | - |
| DSPY_URL | OpenAI-compatible endpoint, e.g. http://host:8000/v1 | - |
| DSPY_API_KEY | its key (secret: EnvVar only) | - |
| DSPY_TEMPERATURE | sampling temperature | 0 |
| FORMULACODE_LLM_CONCURRENCY | changes judged in parallel | 8 |
| FORMULACODE_DOCKER_HOST (or DOCKER_HOST) | Docker engine for validation | unix:///var/run/docker.sock |
| FORMULACODE_BASE_IMAGE | toolchain base image ({python_version} filled in) | python:{python_version}-slim-bookworm |
| FORMULACODE_EXTRA_CA_CERTS | CA bundle copied into builds (corporate proxies) | - |
| DOCKER_NETWORK_MODE | network mode of builds | host |
| FORMULACODE_VALIDATOR | auto / docker / local | auto (docker if reachable, else local if allowed) |
| FORMULACODE_LOCAL_VALIDATION | 1: allow throw-away local environments | 1 for the sample source, else 0 |
| FORMULACODE_CONTEXT_REGISTRY | SQLite file of validated contexts | <cache>/contexts/registry.sqlite |
| FORMULACODE_PYENV_ROOT | where Python interpreters live | $(pyenv root) |
| FORMULACODE_VALIDATION_REPEATS | validations per context | 2 |
| FORMULACODE_AGENT_ATTEMPTS | LLM revisions of a failing script | 3 |
| BUILD_CONCURRENCY | contexts validated in parallel | 1 |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dagster import EnvVar, ExecutorDefinition, in_process_executor, multiprocess_executor

from formulacode_assets.resources.contexts import ContextSynthesisResource
from formulacode_assets.resources.docker_engine import DockerEngineResource
from formulacode_assets.resources.errors import SettingsError
from formulacode_assets.resources.git_source import GitSourceResource
from formulacode_assets.resources.github import GitHubResource
from formulacode_assets.resources.llm import LLMResource
from formulacode_assets.resources.publishing import PublishingResource, RegistryResource
from formulacode_assets.storage import ParquetIOManager

__all__ = ["SettingsError", "build_executor", "build_resources"]


def _setting(environ: Mapping[str, str], *names: str, default: str | None = None):
    """``EnvVar`` for the first variable that is set (so the UI shows its origin), else the default."""
    for name in names:
        if environ.get(name):
            return EnvVar(name), environ[name]
    return default, default


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name)
    return default if not value else value.strip().lower() in {"1", "true", "yes", "on"}


def build_resources(environ: Mapping[str, str] | None = None) -> dict:
    environ = os.environ if environ is None else environ
    cwd = Path.cwd()
    data_dir, data_value = _setting(environ, "FORMULACODE_DATA_DIR", default=str(cwd / "data"))
    cache_dir, _ = _setting(environ, "FORMULACODE_CACHE_DIR", "CACHE_LOCATION", default=str(cwd / "cache"))
    local_data = "://" not in data_value
    catalog, _ = _setting(
        environ,
        "FORMULACODE_CATALOG",
        default=str(Path(data_value) / "catalog.duckdb") if local_data else None,
    )
    repos_csv, csv_value = _setting(environ, "FORMULACODE_REPOS_CSV")
    source, _ = _setting(environ, "FORMULACODE_SOURCE", default="git" if csv_value else "sample")
    workers = int(environ.get("FORMULACODE_GIT_WORKERS", "4"))
    tokens, _ = _setting(environ, "GH_TOKENS", "GH_TOKENs", "GH_TOKEN")
    github_url, _ = _setting(environ, "FORMULACODE_GITHUB_URL", default="https://api.github.com")
    dspy_model, _ = _setting(environ, "DSPY_MODEL_NAME")
    dspy_url, _ = _setting(environ, "DSPY_URL")
    dspy_key, _ = _setting(environ, "DSPY_API_KEY")
    docker_host, _ = _setting(environ, "FORMULACODE_DOCKER_HOST", "DOCKER_HOST", default="unix:///var/run/docker.sock")
    base_image, _ = _setting(environ, "FORMULACODE_BASE_IMAGE", default="python:{python_version}-slim-bookworm")
    extra_ca, _ = _setting(environ, "FORMULACODE_EXTRA_CA_CERTS")
    network_mode, _ = _setting(environ, "DOCKER_NETWORK_MODE", default="host")
    validator, _ = _setting(environ, "FORMULACODE_VALIDATOR", default="auto")
    registry, _ = _setting(environ, "FORMULACODE_CONTEXT_REGISTRY")
    pyenv_root, _ = _setting(environ, "FORMULACODE_PYENV_ROOT")
    registry_url, _ = _setting(environ, "FORMULACODE_REGISTRY_URL")
    registry_namespace, _ = _setting(
        environ, "FORMULACODE_REGISTRY_NAMESPACE", "DOCKERHUB_NAMESPACE", default="formulacode"
    )
    registry_user, _ = _setting(environ, "FORMULACODE_REGISTRY_USERNAME", "DOCKERHUB_USERNAME")
    registry_password, _ = _setting(environ, "FORMULACODE_REGISTRY_PASSWORD", "DOCKERHUB_TOKEN")
    aws_region, _ = _setting(environ, "AWS_REGION", "AWS_DEFAULT_REGION")
    ecr_endpoint, _ = _setting(environ, "FORMULACODE_ECR_ENDPOINT_URL")
    hf_token, _ = _setting(environ, "HF_TOKEN")
    hf_repo_id, _ = _setting(environ, "FORMULACODE_HF_REPO_ID")
    source_value = environ.get("FORMULACODE_SOURCE") or ("git" if csv_value else "sample")
    # Only the embedded store is trusted enough to build on the host by default.
    allow_local = _flag(environ, "FORMULACODE_LOCAL_VALIDATION", default=source_value == "sample")
    # LLM-written scripts run on the host only when local validation was asked for explicitly.
    local_agent_scripts = _flag(environ, "FORMULACODE_LOCAL_VALIDATION", default=False)
    return {
        "io_manager": ParquetIOManager(base_path=data_dir, catalog_path=catalog),
        "git_source": GitSourceResource(source=source, repos_csv=repos_csv, cache_dir=cache_dir, max_workers=workers),
        "github_api": GitHubResource(
            tokens=tokens,
            base_url=github_url,
            min_stars=int(environ.get("FORMULACODE_MIN_STARS", "500")),
            refresh=_flag(environ, "FORMULACODE_GITHUB_REFRESH", default=False),
            seconds_between_requests=float(environ.get("FORMULACODE_GITHUB_PACING", "0.25")),
            cache_dir=cache_dir,
        ),
        "llm": LLMResource(
            model_name=dspy_model,
            api_base=dspy_url,
            api_key=dspy_key,
            # EnvVar fills only text and int fields: the temperature is parsed here.
            temperature=float(environ.get("DSPY_TEMPERATURE") or 0.0),
            concurrency=int(environ.get("FORMULACODE_LLM_CONCURRENCY", "8")),
            cache_dir=cache_dir,
        ),
        "docker_engine": DockerEngineResource(
            base_url=docker_host, base_image=base_image, extra_ca_certs=extra_ca, network_mode=network_mode
        ),
        "context_synthesis": ContextSynthesisResource(
            cache_dir=cache_dir,
            registry_path=registry,
            validator=validator,
            allow_local=allow_local,
            local_agent_scripts=local_agent_scripts,
            pyenv_root=pyenv_root,
            repeats=int(environ.get("FORMULACODE_VALIDATION_REPEATS", "2")),
            max_agent_attempts=int(environ.get("FORMULACODE_AGENT_ATTEMPTS", "3")),
            max_workers=int(environ.get("BUILD_CONCURRENCY", "1")),
        ),
        "registry": RegistryResource(
            # Docker Hub's variables alone select it, as the upstream pipeline's do.
            kind=environ.get("FORMULACODE_REGISTRY") or ("dockerhub" if environ.get("DOCKERHUB_NAMESPACE") else "none"),
            url=registry_url,
            namespace=registry_namespace,
            username=registry_user,
            password=registry_password,
            aws_region=aws_region,
            ecr_endpoint_url=ecr_endpoint,
            rate_limit_wait_s=float(environ.get("DOCKERHUB_RATE_LIMIT_WAIT") or 60),
        ),
        "publishing": PublishingResource(
            data_dir=data_dir,
            layout=environ.get("FORMULACODE_IMAGE_LAYOUT", "single"),
            build_concurrency=int(environ.get("BUILD_CONCURRENCY", "1")),
            push_concurrency=int(environ.get("PUSH_CONCURRENCY", "1")),
            hf_token=hf_token,
            hf_repo_id=hf_repo_id,
        ),
    }


def build_executor(environ: Mapping[str, str] | None = None) -> ExecutorDefinition:
    """In-process by default: each multiprocess step pays seconds of process start for little work."""
    environ = os.environ if environ is None else environ
    choice = environ.get("FORMULACODE_EXECUTOR", "in_process")
    executors = {"in_process": in_process_executor, "multiprocess": multiprocess_executor}
    if choice not in executors:
        raise SettingsError(f"FORMULACODE_EXECUTOR must be one of {sorted(executors)}, got {choice!r}")
    return executors[choice]
