"""Registries on 127.0.0.1 for the publishing tests: Debian's docker-registry, moto_server, and a
small Docker Hub-shaped server (token auth, scripted 401 / 429 answers).

Each fixture starts a real process or thread on a free port and stops it (by its own handle) at
the end. The docker-registry fixture skips, saying so, when the binary is missing (CI installs it:
``.ci/run``).
"""

from __future__ import annotations

import base64
import http.server
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


@dataclass
class LoopbackRegistry:
    url: str
    storage: Path

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    def delete_tag(self, repository_path: str, tag: str) -> None:
        """Delete a tag's manifest through the API (deletes are enabled in this registry's config)."""
        accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
        head = requests.head(f"{self.url}/v2/{repository_path}/manifests/{tag}", headers={"Accept": accept}, timeout=10)
        head.raise_for_status()
        digest = head.headers["Docker-Content-Digest"]
        requests.delete(f"{self.url}/v2/{repository_path}/manifests/{digest}", timeout=10).raise_for_status()


@pytest.fixture(scope="module")
def loopback_registry(tmp_path_factory) -> Iterator[LoopbackRegistry]:
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("Debian's docker-registry is not installed (apt-get install docker-registry; .ci/run does)")
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'storage'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (root / "registry.log").open("wb")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(f"http://127.0.0.1:{port}/v2/", process)
        yield LoopbackRegistry(f"http://127.0.0.1:{port}", root / "storage")
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def moto_ecr(tmp_path_factory) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a moto_server (ECR API: repositories, authorization tokens)."""
    binary = shutil.which("moto_server")
    if binary is None:
        pytest.skip("moto_server is not installed (moto[server] is a test dependency)")
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    process = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(f"http://127.0.0.1:{port}/", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@dataclass
class HubScript:
    """What the Docker Hub-shaped server answers; every request it saw is logged with its time."""

    username: str = "fc-user"
    token: str = "fc-token"
    tags: dict[str, str] = field(default_factory=dict)  # "<path>:<tag>" -> digest
    rate_limited: int = 0  # answer the next N manifest requests 429
    retry_after: float = 1.0
    unauthorized: int = 0  # answer the next N Basic-auth manifest requests 401 (expired token)
    auth: str = "bearer"  # bearer (Docker Hub) or basic (ECR)
    requests: list[dict] = field(default_factory=list)


class _HubHandler(http.server.BaseHTTPRequestHandler):
    script: HubScript
    base: str

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, code: int, headers: dict | None = None, body: bytes = b"") -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        self._handle()

    def do_HEAD(self):
        self._handle()

    def _handle(self):
        script = self.script
        auth = self.headers.get("Authorization", "")
        script.requests.append({"path": self.path, "method": self.command, "auth": auth, "at": time.monotonic()})
        expected_basic = "Basic " + base64.b64encode(f"{script.username}:{script.token}".encode()).decode()
        if self.path.startswith("/token"):
            if auth != expected_basic:
                return self._answer(401)
            return self._answer(200, {"Content-Type": "application/json"}, json.dumps({"token": "bearer-ok"}).encode())
        if not self.path.startswith("/v2/") or "/manifests/" not in self.path:
            return self._answer(404)
        if script.auth == "bearer" and auth != "Bearer bearer-ok":
            challenge = f'Bearer realm="{self.base}/token",service="loopback-hub"'
            return self._answer(401, {"WWW-Authenticate": challenge})
        if script.auth == "basic" and (script.unauthorized > 0 or not auth.startswith("Basic ")):
            script.unauthorized -= 1
            return self._answer(401, {"WWW-Authenticate": 'Basic realm="loopback-ecr"'})
        if script.rate_limited > 0:
            script.rate_limited -= 1
            return self._answer(429, {"Retry-After": f"{script.retry_after:g}"})
        path, _, tag = self.path[len("/v2/") :].partition("/manifests/")
        digest = script.tags.get(f"{path}:{tag}")
        if digest is None:
            return self._answer(404)
        return self._answer(200, {"Docker-Content-Digest": digest, "Content-Type": "application/json"})


@pytest.fixture
def hub_server() -> Iterator[tuple[str, HubScript]]:
    """``(url, script)`` of a Docker Hub-shaped registry on a free port."""
    script = HubScript()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HubHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    handler = type("Handler", (_HubHandler,), {"script": script, "base": url})
    server.RequestHandlerClass = handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url, script
    finally:
        server.shutdown()
        server.server_close()
