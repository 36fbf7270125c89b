"""Resolution guard rails: pins get release dates from a local JSON simple index; old ones are flagged."""

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from formulacode_assets.core.environments.pin_dates import flag_old_pins, parse_pin, pin_dates

FILES = {
    "sparse": [
        ("sparse-0.3.1-py2.py3-none-any.whl", "2018-06-01T10:00:00Z"),
        ("sparse-0.3.1.tar.gz", "2018-06-01T09:00:00Z"),
        ("sparse-0.14.0-py2.py3-none-any.whl", "2023-02-01T10:00:00Z"),
    ],
    "numpy": [("numpy-1.26.2-cp312-cp312-manylinux_2_17_x86_64.whl", "2023-11-12T00:00:00Z")],
}


class _Index(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server API
        project = self.path.strip("/").split("/")[-1]
        if project not in FILES:
            self.send_error(404)
            return
        body = json.dumps(
            {"meta": {"api-version": "1.1"}, "name": project,
             "files": [{"filename": f, "url": f"/{f}", "upload-time": t, "hashes": {}} for f, t in FILES[project]]}
        ).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def index():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()
    server.server_close()


def test_pins_get_release_dates_and_those_over_two_years_old_are_flagged(index):
    pins = ["numpy==1.26.2", "sparse==0.3.1", "Not_Listed==1.0", "-e ./local"]
    dates = pin_dates(pins, index)
    assert dates == {
        "numpy==1.26.2": "2023-11-12T00:00:00+00:00",
        "sparse==0.3.1": "2018-06-01T09:00:00+00:00",  # the earliest file of the release
        "Not_Listed==1.0": None,
        "-e ./local": None,
    }
    flagged = flag_old_pins(dates, datetime(2024, 1, 10, tzinfo=UTC))
    assert flagged == ["sparse==0.3.1 (5.6 years older than the commit)"]
    assert parse_pin("Scikit_Learn[extra]==1.2 ; python_version>'3'") == ("scikit-learn", "1.2")


def test_an_unreachable_index_leaves_dates_unknown_quickly(tmp_path):
    dates = pin_dates(["numpy==1.26.2", "sparse==0.3.1"], "http://127.0.0.1:9/simple", timeout=2)
    assert dates == {"numpy==1.26.2": None, "sparse==0.3.1": None}


# --- preventing old pins: a package set where maximising pkga pushes unpinned pkgb back 4 years ---

COMMIT = "2026-03-01T12:00:00Z"
RELEASES = {  # (project, version, upload time, Requires-Dist)
    ("pkga", "1.0", "2025-02-01T00:00:00Z", ("pkgb>=1.0",)),
    ("pkga", "2.0", "2026-01-15T00:00:00Z", ("pkgb<1.0",)),  # the newest pkga wants the ancient pkgb
    ("pkgb", "0.1", "2022-01-10T00:00:00Z", ()),
    ("pkgb", "1.0", "2025-01-10T00:00:00Z", ()),
    ("pkgb", "1.1", "2025-09-01T00:00:00Z", ()),
    ("pkgb", "2.0", "2026-06-01T00:00:00Z", ()),  # after the commit: never a floor
    ("pkgstale", "1.0", "2021-05-01T00:00:00Z", ()),  # unmaintained: nothing newer to floor to
}


def _wheel(name: str, version: str, requires: tuple[str, ...]) -> tuple[str, bytes]:
    import base64
    import hashlib
    import io
    import zipfile

    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path, text in files.items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
            zf.writestr(path, data)
        zf.writestr(f"{dist}/RECORD", "\n".join([*record, f"{dist}/RECORD,,"]) + "\n")
    return f"{name}-{version}-py3-none-any.whl", buffer.getvalue()


@pytest.fixture
def wheel_index():
    """A PEP 691 JSON index on 127.0.0.1 serving real wheels with upload times (uv resolves against it)."""
    import hashlib

    wheels = {}
    projects: dict[str, list[dict]] = {}
    for name, version, uploaded, requires in sorted(RELEASES):
        filename, data = _wheel(name, version, requires)
        wheels[filename] = data
        projects.setdefault(name, []).append(
            {"filename": filename, "url": f"/files/{filename}", "upload-time": uploaded,
             "hashes": {"sha256": hashlib.sha256(data).hexdigest()}, "requires-python": None}
        )  # fmt: skip

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802 - uv probes a wheel (for range requests) before fetching it
            self.do_GET(body=False)

        def do_GET(self, body=True):  # noqa: N802 - http.server API
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[0] == "files" and parts[-1] in wheels:
                data, kind = wheels[parts[-1]], "application/octet-stream"
            elif parts[0] == "simple" and len(parts) == 2 and parts[1] in projects:
                files = projects[parts[1]]
                versions = sorted({f["filename"].split("-")[1] for f in files})
                page = {"meta": {"api-version": "1.1"}, "name": parts[1], "files": files, "versions": versions}
                data = json.dumps(page).encode()
                kind = "application/vnd.pypi.simple.v1+json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()
    server.server_close()


def _resolver(monkeypatch, tmp_path, index):
    from formulacode_assets.core.environments.install_analysis import resolver_at

    monkeypatch.setenv("UV_INDEX_URL", index)  # the resolver's uv reads its index from the environment
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    return resolver_at("3.12", COMMIT, "wheels", timeout=120)


def test_floor_version_is_the_oldest_release_of_the_last_two_years():
    from formulacode_assets.core.environments.pin_dates import floor_version

    when = datetime(2026, 3, 1, tzinfo=UTC)
    history = {v: datetime.fromisoformat(t) for (p, v, t, _) in RELEASES if p == "pkgb"}
    assert floor_version("0.1", history, when) == "1.0"
    assert floor_version("1.1", history, when) is None  # nothing newer by the commit date
    old_only = {"0.1": datetime(2020, 1, 1, tzinfo=UTC), "0.2": datetime(2021, 1, 1, tzinfo=UTC)}
    assert floor_version("0.1", old_only, when) == "0.2"  # nothing recent: the newest at the commit


def test_an_unpinned_package_pushed_back_years_is_floored_or_flagged_when_a_floor_cannot_resolve(
    monkeypatch, tmp_path, wheel_index
):
    from formulacode_assets.core.environments.pin_dates import guard_old_pins

    resolve = _resolver(monkeypatch, tmp_path, wheel_index)
    when = datetime.fromisoformat(COMMIT)
    ok, pins, error = resolve(["pkga", "pkgb"])
    assert ok, error
    assert pins == ["pkga==2.0", "pkgb==0.1"]  # maximising pkga pushed pkgb back four years

    guard = guard_old_pins(pins, ["pkga", "pkgb"], when, wheel_index, resolve)
    assert guard.pins == ["pkga==1.0", "pkgb==1.1"]
    assert guard.requirements == ["pkga", "pkgb", "pkgb>=1.0"]
    assert guard.floored == ["pkgb>=1.0 (was pkgb==0.1, 4.1 years older than the commit; now pkgb==1.1)"]
    assert guard.flagged == []
    assert guard.dates == {"pkga==1.0": "2025-02-01T00:00:00+00:00", "pkgb==1.1": "2025-09-01T00:00:00+00:00"}

    # The asv matrix pins pkga==2.0: no floor on pkgb can resolve, so the flag stays and says so.
    ok, pins, _ = resolve(["pkga==2.0", "pkgb", "pkgstale"])
    assert ok and pins == ["pkga==2.0", "pkgb==0.1", "pkgstale==1.0"]
    guard = guard_old_pins(pins, ["pkga==2.0", "pkgb", "pkgstale"], when, wheel_index, resolve)
    assert guard.pins == pins and guard.floored == []
    assert len(guard.flagged) == 2
    assert guard.flagged[0].startswith(
        "pkgb==0.1 (4.1 years older than the commit; the floor pkgb>=1.0 does not resolve: "
    )
    assert guard.flagged[1] == "pkgstale==1.0 (4.8 years older than the commit; the newest release at the commit date)"


def test_the_context_row_records_the_floor_and_the_build_installs_the_floored_pins(monkeypatch, tmp_path, wheel_index):
    from formulacode_assets.core.environments.registry import ContextRegistry
    from formulacode_assets.core.environments.synthesis import ContextSynthesizer, ContextTarget, SynthesisSettings
    from formulacode_assets.core.environments.validation import ValidationResult, Validator
    from formulacode_assets_tests.docker_fixtures import TINY_ASV_CONF, available_interpreters, mirror_of, tiny_asv_repo

    _resolver(monkeypatch, tmp_path, wheel_index)  # the analysis resolves against the local index too
    conf = TINY_ASV_CONF.replace(
        '"version": 1,', '"version": 1,\n    "matrix": {"pkga": [""], "pkgb": [], "pkgstale": [""]},'
    )
    repo, sha = tiny_asv_repo(tmp_path / "tiny", date=COMMIT, extra={"asv.conf.json": conf})

    class Recording(Validator):  # the build itself is not the point here: what it is asked to install is
        name = "recording"
        scripts: list[str] = []

        def validate(self, request, *, repeats=2):
            self.scripts.append(request.script)
            return ValidationResult(
                ok=False, validator=self.name, stage_failed="build", reason="not built in this test"
            )

    validator = Recording()
    synthesizer = ContextSynthesizer(
        registry=ContextRegistry(tmp_path / "registry.sqlite"),
        validator=validator,
        mirror_path=lambda name: mirror_of(repo),
        interpreters=available_interpreters(),
        settings=SynthesisSettings(repeats=1, max_agent_attempts=0, pin_index_url=wheel_index),
    )
    row = synthesizer.context_row("2026-03-01", ContextTarget("test/tiny", sha, (), (), None))
    assert row["pins_floored"] == ["pkgb>=1.0 (was pkgb==0.1, 4.1 years older than the commit; now pkgb==1.1)"]
    assert row["dependencies"] == ["pkga==1.0", "pkgb==1.1", "pkgstale==1.0"]
    assert "pkgb>=1.0" in row["requirements"]
    assert row["pins_flagged"] == [
        "pkgstale==1.0 (4.8 years older than the commit; the newest release at the commit date)"
    ]
    assert "pkgb==1.1" in validator.scripts[0] and "pkgb==0.1" not in validator.scripts[0]
