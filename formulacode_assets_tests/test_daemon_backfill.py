"""Backfills through the daemon: Postgres storage, the queued coordinator, pools, per-stage policies.

Debian's PostgreSQL runs on 127.0.0.1; ``dagster-webserver`` and ``dagster-daemon`` run against it
with deploy/dagster.yaml (runs as local processes instead of containers). A 3-month backfill of the
whole sample graph is launched through GraphQL, as a script or the UI would.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb
import pytest

from formulacode_assets_tests.deploy_fixtures import ROOT, Deployment, graphql, write_instance
from formulacode_assets_tests.service_fixtures import postgres  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01"]

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status }
    ... on PythonError { message }
  }
}
"""

RUNS = """
query Runs($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId status stepStats { stepKey status startTime endTime } } }
  }
}
"""

DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def test_three_month_backfill_through_graphql_on_postgres(tmp_path, postgres):  # noqa: F811
    pg = postgres.create_database("backfill")
    home = tmp_path / "dagster_home"
    write_instance(home)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FORMULACODE_", "DAGSTER_", "GH_", "DSPY_"))},
        **pg.env(),
        "DAGSTER_HOME": str(home),
        "FORMULACODE_DATA_DIR": str(tmp_path / "data"),
        "FORMULACODE_CACHE_DIR": str(tmp_path / "cache"),
        "FORMULACODE_VALIDATOR": "local",
    }
    # The deployment's one-shot init: docker_build gets one slot, so month runs build one at a time.
    from formulacode_assets.deploy.init import main as init_main

    old = dict(os.environ)
    os.environ.update({**pg.env(), "DAGSTER_HOME": str(home), "FORMULACODE_POOL_LIMITS": "docker_build=1,llm=2"})
    try:
        init_main()
    finally:
        os.environ.clear()
        os.environ.update(old)

    deployment = Deployment(env, ROOT / "workspace.yaml", tmp_path / "logs").start()
    try:
        nodes = deployment.wait_for_assets()
        # Every partitioned asset of the definitions: assets merged later join the backfill.
        selection = [{"path": n["assetKey"]["path"]} for n in nodes if n["isPartitioned"]]
        assert {"repos_discovered", "patches", "contexts"} <= {s["path"][-1] for s in selection}
        launched = graphql(
            deployment.port, LAUNCH, {"params": {"partitionNames": MONTHS, "assetSelection": selection}}
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]

        started, status = time.monotonic(), None
        while time.monotonic() - started < 720:
            status = graphql(deployment.port, BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]["status"]
            if status in DONE:
                break
            time.sleep(3)
        elapsed = time.monotonic() - started
        runs = graphql(deployment.port, RUNS, {"id": backfill_id})["runsOrError"]["results"]
        assert status in {"COMPLETED", "COMPLETED_SUCCESS"}, f"{status} {runs}\n{deployment.log_tail()}"
        assert runs and all(r["status"] == "SUCCESS" for r in runs), runs
        print(f"3-month backfill: {elapsed:.0f} s, {len(runs)} runs")
    finally:
        deployment.stop()

    # Per-stage policies: the mining stages ran the three months in one run, contexts one run a month.
    steps_by_run = {r["runId"]: {s["stepKey"]: s for s in r["stepStats"]} for r in runs}
    mining_runs = [r for r, steps in steps_by_run.items() if "patches" in steps]
    context_runs = [steps["contexts"] for steps in steps_by_run.values() if "contexts" in steps]
    assert len(mining_runs) == 1
    assert len(context_runs) == 3
    # The docker_build pool (one slot) kept the month builds from overlapping.
    spans = sorted((s["startTime"], s["endTime"]) for s in context_runs)
    assert all(earlier[1] <= later[0] + 0.5 for earlier, later in zip(spans, spans[1:], strict=False)), spans

    data = Path(tmp_path / "data")
    for asset in ("repos_discovered", "repos_valid", "merge_commits", "patches", "perf_commits", "contexts"):
        assert sorted(p.name for p in (data / asset).glob("*.parquet")) == [
            "2024-01.parquet",
            "2024-02.parquet",
            "2024-03.parquet",
        ], asset
    with duckdb.connect(str(data / "catalog.duckdb"), read_only=True) as con:
        months = con.sql("select distinct month from repos_valid order by month").fetchall()
        assert [str(m) for (m,) in months] == MONTHS
        assert con.sql("select count(*) from patches where month = '2024-02-01'").fetchone()[0] == 10
