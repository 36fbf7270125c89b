"""The repositories to mine and their persistent mirror cache."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from formulacode_assets.core.mining.git import GitError
from formulacode_assets.core.mining.mirror import MirrorSync, mirror_path, sync_mirror
from formulacode_assets.core.mining.repos import RepoSpec, read_repo_list
from formulacode_assets.resources.errors import SettingsError
from formulacode_assets.sample import ensure_sample_store

SOURCES = ("sample", "git", "github")


class GitSourceResource(ConfigurableResource):
    """Which source the pipeline mines (the one switch), the repository list, and where mirrors live.

    ``sample``: the embedded sample store; ``git``: the CSV of remotes; ``github``: code search for
    ``asv.conf.json`` united with the CSV (optional), PRs from the GitHub API.
    """

    source: str = Field(default="sample", description="sample (embedded store), git (a CSV of remotes) or github")
    repos_csv: str | None = Field(default=None, description="CSV with repo_name[,url][,default_branch]")
    cache_dir: str = Field(description="mirrors, the sample store and caches live here")
    max_workers: int = Field(default=4, description="repositories synced / mined in parallel")

    def repositories(self) -> list[RepoSpec]:
        """The listed repositories (for ``github``, the optional user CSV that is united with search)."""
        if self.source not in SOURCES:
            raise SettingsError(f"FORMULACODE_SOURCE: unknown source {self.source!r}; use one of {', '.join(SOURCES)}")
        if self.source == "sample":
            return read_repo_list(ensure_sample_store(Path(self.cache_dir) / "sample-store"))
        if not self.repos_csv:
            if self.source == "github":
                return []
            raise SettingsError("the git source needs a repository list: set FORMULACODE_REPOS_CSV to a CSV file")
        return self._read_csv(Path(self.repos_csv))

    def _read_csv(self, path: Path) -> list[RepoSpec]:
        try:
            return read_repo_list(path)
        except FileNotFoundError:
            raise SettingsError(f"FORMULACODE_REPOS_CSV: no such file: {path}") from None
        except IsADirectoryError:
            raise SettingsError(f"FORMULACODE_REPOS_CSV: {path} is a folder, not a CSV file") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise SettingsError(f"FORMULACODE_REPOS_CSV: cannot read {path}: {reason}") from None
        except ValueError as exc:  # e.g. no repo_name column: the message already names the file
            raise SettingsError(f"FORMULACODE_REPOS_CSV: {exc}") from None

    def mirror_path(self, repo_name: str) -> Path:
        return mirror_path(Path(self.cache_dir), repo_name)

    def sync_all(self, specs: list[RepoSpec]) -> dict[str, MirrorSync | str]:
        """Clone or fetch every usable repository in parallel; a failure is kept as its reason."""

        def sync(spec: RepoSpec) -> MirrorSync | str:
            try:
                return sync_mirror(Path(self.cache_dir), spec.repo_name, spec.url, spec.default_branch)
            except GitError as exc:
                return f"mirror sync failed: {exc.reason}"
            except OSError as exc:  # disk full, permissions: this repository fails, the month goes on
                return f"mirror sync failed: {exc}"

        usable = [s for s in specs if s.problem is None]
        with ThreadPoolExecutor(max_workers=max(1, self.max_workers)) as pool:
            return dict(zip([s.repo_name for s in usable], pool.map(sync, usable), strict=True))

    def map_repos(self, fn, items: list):
        """Run ``fn`` over per-repository work items with bounded parallelism, keeping order."""
        with ThreadPoolExecutor(max_workers=max(1, self.max_workers)) as pool:
            return list(pool.map(fn, items))
