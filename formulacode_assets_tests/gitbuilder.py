"""Build small real git histories with exact dates for tests (real ``git``, argument lists only)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


class RepoBuilder:
    """A working repository on ``main``; every commit gets explicit author and committer dates."""

    def __init__(self, path: Path, branch: str = "main"):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._env = {
            **os.environ,
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Ada Author",
            "GIT_AUTHOR_EMAIL": "ada@example.com",
            "GIT_COMMITTER_NAME": "Cy Committer",
            "GIT_COMMITTER_EMAIL": "cy@example.com",
        }
        self.git("init", "-q", "-b", branch)
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str, env: dict | None = None) -> str:
        out = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env={**self._env, **(env or {})},
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    def write(self, files: dict[str, str | None]) -> None:
        for rel, content in files.items():
            target = self.path / rel
            if content is None:
                self.git("rm", "-q", "--", rel)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            self.git("add", "--", rel)

    def commit(
        self,
        message: str,
        files: dict[str, str | None] | None = None,
        *,
        date: str,
        author_date: str | None = None,
        author: str | None = None,
    ) -> str:
        self.write(files or {})
        env = {"GIT_COMMITTER_DATE": date, "GIT_AUTHOR_DATE": author_date or date}
        if author:
            env["GIT_AUTHOR_NAME"] = author
        self.git("commit", "-q", "--allow-empty", "-m", message, env=env)
        return self.git("rev-parse", "HEAD")

    def branch(self, name: str, start: str = "HEAD") -> None:
        self.git("checkout", "-q", "-b", name, start)

    def checkout(self, name: str) -> None:
        self.git("checkout", "-q", name)

    def merge(self, branch: str, message: str, *, date: str) -> str:
        env = {"GIT_COMMITTER_DATE": date, "GIT_AUTHOR_DATE": date}
        self.git("merge", "-q", "--no-ff", "-m", message, branch, env=env)
        return self.git("rev-parse", "HEAD")

    def bare_clone(self, target: Path) -> Path:
        subprocess.run(
            ["git", "clone", "-q", "--bare", "--no-local", str(self.path), str(target)],
            env=self._env,
            check=True,
            capture_output=True,
        )
        return target
