import warnings

import pytest

from formulacode_assets_tests.gitbuilder import RepoBuilder

# Dagster marks some parameters beta (backfill_policy); the warning is noise in test output.
warnings.filterwarnings("ignore", message=".*is currently in beta.*")


@pytest.fixture
def repo(tmp_path) -> RepoBuilder:
    return RepoBuilder(tmp_path / "work")
