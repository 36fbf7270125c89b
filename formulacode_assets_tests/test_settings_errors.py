"""Settings a newcomer gets wrong fail the run at once, in one line naming the variable or the path."""

import pytest
from dagster import DagsterInstance, materialize

from formulacode_assets.assets.repos_discovered import repos_discovered
from formulacode_assets.resources import GitSourceResource
from formulacode_assets.resources.github import GitHubResource
from formulacode_assets.resources.settings import SettingsError


def _failure(tmp_path, **source):
    """The step failure of a ``repos_discovered`` run with these source settings, and its duration."""
    instance = DagsterInstance.ephemeral()
    result = materialize(
        [repos_discovered],
        partition_key="2024-02-01",
        resources={
            "git_source": GitSourceResource(cache_dir=str(tmp_path / "cache"), **source),
            "github_api": GitHubResource(cache_dir=str(tmp_path / "cache")),  # no tokens
        },
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    data = event.step_failure_data
    description = data.user_failure_data.description
    assert "\n" not in description and data.error.cause is None
    assert data.error.message.strip().endswith(f"SettingsError: {description}")  # no chained raw traceback
    assert "Traceback" not in data.error.message and "FileNotFoundError" not in data.error.message
    # From the step's start to its failure, as the run's own events record it: process start-up and a
    # loaded machine's scheduling are not part of how fast a bad setting is reported.
    stamps = {
        r.dagster_event.event_type_value: r.timestamp for r in instance.all_logs(result.run_id) if r.dagster_event
    }
    return description, stamps["STEP_FAILURE"] - stamps["STEP_START"]


def test_github_source_without_a_token_fails_at_once_naming_gh_tokens(tmp_path):
    description, elapsed = _failure(tmp_path, source="github")
    assert "GH_TOKENS" in description
    assert elapsed < 5  # the acceptance bound; it used to wait ~90 s in silence


def test_a_missing_repository_csv_fails_in_one_line_naming_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "repos.csv"
    description, _ = _failure(tmp_path, source="git", repos_csv=str(missing))
    assert description == f"FORMULACODE_REPOS_CSV: no such file: {missing}"


def test_an_unreadable_repository_csv_names_the_path(tmp_path):
    folder = tmp_path / "repos.csv"
    folder.mkdir()
    description, _ = _failure(tmp_path, source="git", repos_csv=str(folder))
    assert str(folder) in description and description.startswith("FORMULACODE_REPOS_CSV")


def test_an_unknown_source_name_is_named_with_the_choices(tmp_path):
    description, _ = _failure(tmp_path, source="gitlab")
    assert "FORMULACODE_SOURCE" in description and "'gitlab'" in description
    assert "sample, git, github" in description
    with pytest.raises(SettingsError, match="unknown source"):
        GitSourceResource(cache_dir=str(tmp_path), source="gitlab").repositories()
