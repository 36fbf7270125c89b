import pytest

from formulacode_assets_tests.gitbuilder import RepoBuilder


@pytest.fixture
def repo(tmp_path) -> RepoBuilder:
    return RepoBuilder(tmp_path / "work")
