"""Resources are the seams to outside systems; ``build_resources`` binds them in one place."""

from formulacode_assets.resources.git_source import GitSourceResource
from formulacode_assets.resources.settings import build_executor, build_resources

__all__ = ["GitSourceResource", "build_executor", "build_resources"]
