"""Mining: from git remotes to the month's merged changes and their patches (mirrors, git helpers, asv configs)."""
