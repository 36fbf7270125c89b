"""The Docker engine that builds and runs validation images, through the docker SDK.

Production binds the host's engine and a public Python base image; tests and CI bind the private
engine of ``scripts/docker_engine.sh`` and the locally bootstrapped Debian image. Behind a
corporate proxy, ``extra_ca_certs`` names a CA bundle copied into the toolchain image (pip and uv
in the build then trust it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from formulacode_assets.core.environments.docker_validator import DockerValidator, ca_bundle_from_environment


class DockerEngineResource(ConfigurableResource):
    """Where the engine is and how validation images are built and run."""

    base_url: str = Field(
        default="unix:///var/run/docker.sock", description="engine address (DOCKER_HOST), e.g. unix:///path/docker.sock"
    )
    base_image: str = Field(
        default="python:{python_version}-slim-bookworm",
        description="toolchain base; '{python_version}' (X.Y) is replaced by the Python the analysis chose. "
        "A fixed image (e.g. a local Debian) uses its own python3, recorded per context.",
    )
    extra_ca_certs: str | None = Field(
        default=None,
        description="PEM bundle trusted by pip/uv inside builds (corporate proxies); "
        "None = the bundle SSL_CERT_FILE / PIP_CERT name on the host, else the image's own",
    )
    network_mode: str = Field(default="host", description="network of image builds (DOCKER_NETWORK_MODE)")
    run_network_mode: str = Field(default="none", description="network of discovery / benchmark containers")
    build_timeout_s: float = Field(default=1800, description="build_env.sh limit inside the build (timeout(1))")
    step_timeout_s: float = Field(default=600, description="limit for each discovery / quick-run container")
    api_timeout_s: float = Field(default=60, description="docker API read timeout for short calls")
    uv_requirement: str = Field(default="uv", description="pip requirement for uv in the toolchain image")
    mem_limit: str | None = Field(default=None, description="memory limit of validation containers, e.g. '8g'")
    keep_images: bool = Field(default=False, description="keep validation images (default: removed after use)")
    uv_cache_volume: str | None = Field(
        default="fc-uv-cache",
        description="named volume holding the uv cache every build container shares (None: no shared cache)",
    )

    def client(self, timeout: float | None = None):
        import docker

        return docker.DockerClient(base_url=self.base_url, version="auto", timeout=int(timeout or self.api_timeout_s))

    def reachable(self) -> tuple[bool, str]:
        """``(True, engine version)`` or ``(False, why not)``; never raises."""
        try:
            client = self.client(timeout=min(self.api_timeout_s, 10))
            try:
                version = client.version().get("Version", "?")
            finally:
                client.close()
        except Exception as exc:  # no socket, permission denied, API error
            return False, f"docker engine at {self.base_url} unreachable: {exc}"[:300]
        return True, f"docker engine {version} at {self.base_url}"

    def ca_bundle(self) -> Path | None:
        """``extra_ca_certs``, else the bundle the host's environment names (SSL_CERT_FILE / PIP_CERT)."""
        return Path(self.extra_ca_certs) if self.extra_ca_certs else ca_bundle_from_environment()

    def validator(self, log: Callable[[str], None] | None = None) -> DockerValidator:
        # Builds stream for as long as build_env.sh runs: the read timeout must outlast it.
        client = self.client(timeout=self.build_timeout_s + 300)
        return DockerValidator(
            client,
            base_image=self.base_image,
            extra_ca_certs=self.ca_bundle(),
            network_mode=self.network_mode,
            run_network_mode=self.run_network_mode,
            build_timeout=self.build_timeout_s,
            step_timeout=self.step_timeout_s,
            uv_requirement=self.uv_requirement,
            keep_images=self.keep_images,
            mem_limit=self.mem_limit,
            uv_cache_volume=self.uv_cache_volume,
            log=log,
        )
