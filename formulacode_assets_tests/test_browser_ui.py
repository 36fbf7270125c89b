"""The UI in a real browser: Playwright for Python driving Debian's chromium (never a downloaded one).

One month of the mining stages is materialized into a fresh instance, the webserver serves it, and
the browser opens what a user browses: the global lineage (every asset of the definitions drawn),
one asset's partitions, a materialization's metadata, and its checks. Screenshots are saved under
``test-artifacts/browser/`` (git-ignored; CI can keep them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from formulacode_assets_tests.deploy_fixtures import BIN, ROOT, Deployment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ASSET, PARTITION = "patches", "2024-02-01"


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return path


def _definitions():
    from formulacode_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = sorted(key.to_user_string() for key in graph.get_all_asset_keys())
    checks = sorted(c.name for c in graph.asset_check_keys if c.asset_key.to_user_string() == ASSET)
    return keys, checks


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    chromium = _chromium()
    tmp = tmp_path_factory.mktemp("browser")
    home = tmp / "dagster_home"
    home.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FORMULACODE_", "DAGSTER_"))},
        "DAGSTER_HOME": str(home),
        "FORMULACODE_DATA_DIR": str(tmp / "data"),
        "FORMULACODE_CACHE_DIR": str(tmp / "cache"),
    }
    subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "formulacode_assets.definitions"]
        + ["--select", f"*{ASSET}", "--partition", PARTITION],
        cwd=tmp,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    deployment = Deployment(env, ROOT / "workspace.yaml", tmp / "logs").start(daemon=False)
    try:
        deployment.wait_for_assets()
        yield chromium, f"http://127.0.0.1:{deployment.port}"
    finally:
        deployment.stop()


@pytest.fixture
def page(ui):
    from playwright.sync_api import sync_playwright

    chromium, _base = ui
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1920, "height": 1200})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def _open(page, url: str) -> None:
    page.goto(url, wait_until="networkidle", timeout=120_000)
    # A first visit may show the "Join the Dagster community" modal.
    skip = page.get_by_role("button", name="Skip")
    with contextlib.suppress(Exception):  # no modal this time
        skip.click(timeout=3_000)


def _shot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    return path


def test_global_lineage_draws_every_asset_of_the_definitions(ui, page):
    keys, _checks = _definitions()
    _open(page, ui[1] + "/asset-groups")
    graph = page.locator("svg foreignObject")
    graph.first.wait_for()
    # Groups start collapsed: expand them all (the graph's ⌥E shortcut, also in its settings menu).
    page.keyboard.press("Alt+e")
    for key in keys:
        node = graph.get_by_text(key.split("/")[-1], exact=True)
        node.first.wait_for(state="visible")
    _shot(page, "global_lineage")
    assert {"repos_discovered", "patches", "contexts"} <= set(keys)


def test_partitions_metadata_and_checks_of_one_asset(ui, page):
    _keys, checks = _definitions()
    base = ui[1]

    _open(page, f"{base}/assets/{ASSET}?view=partitions")
    page.get_by_text("Materialized (1)").wait_for()
    page.get_by_text(PARTITION, exact=True).first.click()
    page.get_by_text("dagster/row_count").first.wait_for()
    page.get_by_text("rows_ok").first.wait_for()
    _shot(page, "asset_partitions")

    _open(page, f"{base}/assets/{ASSET}?view=events")
    page.get_by_text(f"Partition {PARTITION} materialized").first.wait_for()
    for entry in ("dagster/row_count", "status_counts", "rows_ok", "rows_failed", "preview"):
        page.get_by_text(entry, exact=True).first.wait_for()
    _shot(page, "materialization_metadata")

    _open(page, f"{base}/assets/{ASSET}?view=checks")
    page.get_by_text(f"Checks ({len(checks)})").wait_for()
    for check in checks:
        page.get_by_text(check, exact=True).first.wait_for()
    page.get_by_text("Passed").first.wait_for()
    _shot(page, "asset_checks")
