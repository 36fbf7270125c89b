"""Docker's run launcher, forwarding the pipeline's settings to each run's container by prefix.

``DockerRunLauncher`` copies variables into the run's container only by name, and fails the launch
when a named one is unset. The pipeline reads dozens of optional variables (``FORMULACODE_*``,
``GH_*``, ``DSPY_*``, ``DOCKERHUB_*``, ``AWS_*``): listing them all would break on every unset one
and go stale with every new setting. This launcher adds every variable of the daemon's environment
whose name starts with one of ``env_var_prefixes`` at launch time, so a run sees exactly what the env
file of docker-compose.yml set.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from dagster import Array, Field, StringSource
from dagster_docker import DockerRunLauncher
from dagster_docker.utils import DOCKER_CONFIG_SCHEMA

DEFAULT_PREFIXES = ("FORMULACODE_", "GH_", "DSPY_", "DOCKERHUB_", "AWS_")


def forwarded_names(environ: Mapping[str, str], prefixes: Iterable[str], named: Iterable[str] = ()) -> list[str]:
    """The named variables plus every set one matching a prefix, in a stable order, without repeats."""
    prefixes = tuple(prefixes)
    names = list(dict.fromkeys(named))
    names += sorted(n for n in environ if n.startswith(prefixes) and n not in names and "=" not in n)
    return names


class ForwardingDockerRunLauncher(DockerRunLauncher):
    def __init__(self, inst_data=None, env_var_prefixes: list[str] | None = None, **kwargs):
        self.env_var_prefixes = list(DEFAULT_PREFIXES if env_var_prefixes is None else env_var_prefixes)
        super().__init__(inst_data=inst_data, **kwargs)

    @property
    def env_vars(self) -> list[str]:
        return forwarded_names(os.environ, self.env_var_prefixes, self._named_env_vars or [])

    @env_vars.setter
    def env_vars(self, value: list[str] | None) -> None:
        self._named_env_vars = list(value or [])

    @classmethod
    def config_type(cls):
        return {
            **DOCKER_CONFIG_SCHEMA,
            "env_var_prefixes": Field(
                Array(StringSource),
                is_required=False,
                description="Variables of the launching process whose names start with one of these are forwarded.",
            ),
        }

    @classmethod
    def from_config_value(cls, inst_data, config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data, **config_value)
