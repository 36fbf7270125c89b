"""Docker builds: the CA bundle is picked up from the environment; a failed build says where and why."""

from pathlib import Path

from formulacode_assets.core.environments.docker_validator import build_failure_reason, ca_bundle_from_environment
from formulacode_assets.resources.docker_engine import DockerEngineResource


def test_the_ca_bundle_named_by_the_environment_is_used_automatically(tmp_path, monkeypatch):
    bundle = tmp_path / "proxy-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert ca_bundle_from_environment({"SSL_CERT_FILE": str(tmp_path / "missing.pem")}) is None
    assert ca_bundle_from_environment({"PIP_CERT": str(bundle)}) == bundle
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CERT", str(bundle))
    assert DockerEngineResource(base_url=f"unix://{tmp_path}/none.sock").ca_bundle() == Path(bundle)
    given = DockerEngineResource(base_url=f"unix://{tmp_path}/none.sock", extra_ca_certs=str(tmp_path / "x.pem"))
    assert given.ca_bundle() == tmp_path / "x.pem"


def test_a_failed_build_reason_names_the_instruction_and_the_last_output_lines():
    lines = [
        "Step 1/9 : FROM fc-toolchain:abc AS repository",
        "Step 6/9 : RUN timeout --kill-after=10 900 bash /fc/build_env.sh",
        "Building wheel for shapely",
        "fatal error: geos_c.h: No such file or directory",
        "The command '/bin/sh -c timeout ...' returned a non-zero code: 1",
    ]
    reason = build_failure_reason(lines, "The command '/bin/sh -c timeout ...' returned a non-zero code: 1")
    assert "Step 6/9 : RUN timeout --kill-after=10 900 bash /fc/build_env.sh" in reason
    assert "geos_c.h: No such file or directory" in reason and "non-zero code: 1" in reason
