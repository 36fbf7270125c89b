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
