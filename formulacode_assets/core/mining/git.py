"""Running the real ``git`` binary: argument lists only, a pinned environment, clear errors."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

# Git must not read the user's config (aliases, pagers, hooks, credential helpers) nor ask for a
# password on a terminal: the pipeline runs unattended.
_GIT_ENV_OVERRIDES = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_ASKPASS": "/bin/false",
    "LC_ALL": "C",
}
_STDERR_TAIL = 2000


class GitError(RuntimeError):
    """A git command failed; ``reason`` is a one-line summary fit for a status row."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str):
        self.git_args = list(args)
        self.returncode = returncode
        self.stderr = stderr[-_STDERR_TAIL:]
        first = next((line for line in stderr.splitlines() if line.strip()), "")
        self.reason = first.strip() or f"git exited with {returncode}"
        super().__init__(f"git {' '.join(self.git_args[:2])} failed ({returncode}): {self.reason}")


def git_env() -> dict[str, str]:
    return {**os.environ, **_GIT_ENV_OVERRIDES}


def run_git(
    git_dir: Path | None,
    args: Sequence[str],
    *,
    input: bytes | None = None,
    timeout: float | None = 3600,
) -> bytes:
    """Run ``git [--git-dir=DIR] ARGS`` and return stdout bytes; raise :class:`GitError` on failure."""
    cmd = ["git", "-c", "core.quotepath=off", "-c", "log.showSignature=false"]
    if git_dir is not None:
        cmd.append(f"--git-dir={git_dir}")
    cmd.extend(args)
    try:
        proc = subprocess.run(cmd, input=input, capture_output=True, env=git_env(), timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise GitError(args, -1, f"timed out after {exc.timeout} s") from None
    if proc.returncode != 0:
        raise GitError(args, proc.returncode, proc.stderr.decode("utf-8", "replace"))
    return proc.stdout
