"""Where images are published (a registry) and where the publishing stage writes (contexts, dataset)."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from formulacode_assets.core.publishing.builder import PublishSettings
from formulacode_assets.core.publishing.image_names import LAYOUTS
from formulacode_assets.core.publishing.registries import DockerHubRegistry, EcrRegistry, Registry

REGISTRY_KINDS = ("none", "oci", "ecr", "dockerhub")


class RegistryResource(ConfigurableResource):
    """The registry images are pushed to: ``none`` (build only), any ``oci`` URL, ``ecr`` or ``dockerhub``."""

    kind: str = Field(default="none", description="none / oci / ecr / dockerhub (FORMULACODE_REGISTRY)")
    url: str | None = Field(
        default=None,
        description="oci: registry URL (http://127.0.0.1:5000); ecr: override of the token's endpoint; "
        "dockerhub: API URL (default https://registry-1.docker.io)",
    )
    namespace: str = Field(default="formulacode", description="path images go under (DOCKERHUB_NAMESPACE)")
    username: str | None = Field(default=None, description="registry user (DOCKERHUB_USERNAME)")
    password: str | None = Field(default=None, description="registry password or token (DOCKERHUB_TOKEN)")
    aws_region: str | None = Field(default=None, description="ECR region (AWS_REGION)")
    ecr_endpoint_url: str | None = Field(default=None, description="ECR API endpoint (tests: moto_server)")
    rate_limit_wait_s: float = Field(default=60, description="longest Retry-After honoured (DOCKERHUB_RATE_LIMIT_WAIT)")
    max_retries: int = Field(default=4, description="retries of a registry call on 429 / 5xx / connection errors")
    timeout_s: float = Field(default=30, description="HTTP timeout of one registry call")

    def registry(self) -> Registry | None:
        if self.kind not in REGISTRY_KINDS:
            raise ValueError(f"registry kind must be one of {REGISTRY_KINDS}, got {self.kind!r}")
        common = dict(
            namespace=self.namespace,
            username=self.username or None,
            password=self.password or None,
            max_retries=self.max_retries,
            max_wait_s=self.rate_limit_wait_s,
            timeout_s=self.timeout_s,
        )
        if self.kind == "none":
            return None
        if self.kind == "oci":
            if not self.url:
                raise ValueError("an oci registry needs its url (FORMULACODE_REGISTRY_URL)")
            return Registry(url=self.url, **common)
        if self.kind == "dockerhub":
            return DockerHubRegistry(**({"url": self.url} if self.url else {}), **common)
        import boto3
        from botocore.config import Config

        ecr = boto3.client(
            "ecr",
            region_name=self.aws_region,
            endpoint_url=self.ecr_endpoint_url,
            config=Config(retries={"max_attempts": self.max_retries + 1, "mode": "standard"}),
        )
        common.pop("username"), common.pop("password")
        return EcrRegistry(url=self.url or "", ecr=ecr, **common)


class PublishingResource(ConfigurableResource):
    """Image layout and concurrency, the data folder the stage writes to, the Hugging Face target."""

    data_dir: str = Field(description="the data folder: build contexts, the dataset folder, earlier task months")
    layout: str = Field(default="single", description="single / mirror (FORMULACODE_IMAGE_LAYOUT)")
    local_namespace: str = Field(default="formulacode", description="image namespace when no registry is configured")
    build_concurrency: int = Field(default=1, description="images built at once (BUILD_CONCURRENCY)")
    push_concurrency: int = Field(default=1, description="pushes at once (PUSH_CONCURRENCY)")
    build_timeout_s: float = Field(default=1800, description="limit of one image build")
    hf_token: str | None = Field(default=None, description="Hugging Face token (HF_TOKEN): upload when set")
    hf_repo_id: str | None = Field(default=None, description="dataset repo id to upload to (FORMULACODE_HF_REPO_ID)")
    hf_private: bool = Field(default=True, description="create the dataset repo private")

    def settings(self) -> PublishSettings:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        return PublishSettings(
            layout=self.layout,
            local_namespace=self.local_namespace,
            build_timeout_s=self.build_timeout_s,
            build_concurrency=self.build_concurrency,
            push_concurrency=self.push_concurrency,
        )

    @property
    def context_dir(self) -> Path:
        return Path(self.data_dir) / "build_contexts"

    @property
    def dataset_dir(self) -> Path:
        # Not <data>/dataset: that folder holds the dataset asset's own monthly summary files.
        return Path(self.data_dir) / "hf_dataset"

    def asset_dir(self, name: str) -> Path:
        return Path(self.data_dir) / name


def engine_for_images(docker_engine, log=None):
    """``(client or None, why, toolchains)``: the engine's client when it answers, and the toolchain
    settings of the contexts stage (tags are computed the same way with or without an engine)."""
    from formulacode_assets.core.environments.docker_validator import DockerValidator

    ok, about = docker_engine.reachable()
    if ok:
        toolchains = docker_engine.validator(log=log)
        return toolchains.client, about, toolchains
    toolchains = DockerValidator(
        None,
        base_image=docker_engine.base_image,
        extra_ca_certs=Path(docker_engine.extra_ca_certs) if docker_engine.extra_ca_certs else None,
        network_mode=docker_engine.network_mode,
        uv_requirement=docker_engine.uv_requirement,
        log=log,
    )
    return None, about, toolchains
