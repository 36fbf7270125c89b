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
    # Only these transports, whatever the parent's environment says: ``ext::`` runs a command.
    "GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh",
}
# All git sees of the parent's environment: where programs are, a home, and what networking needs
# (proxies, CA bundles, an ssh agent). No GIT_* variable of the parent gets through.
_GIT_ENV_PASSTHROUGH = (
    "PATH",
    "HOME",
    "TMPDIR",
    "SSH_AUTH_SOCK",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
)
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
    """A minimal environment for git: an allow-list of the parent's variables plus the pinned overrides."""
    env = {name: os.environ[name] for name in _GIT_ENV_PASSTHROUGH if os.environ.get(name)}
    env.setdefault("PATH", os.defpath)
    return {**env, **_GIT_ENV_OVERRIDES}


def run_git(
    git_dir: Path | None,
    args: Sequence[str],
    *,
    input: bytes | None = None,
    timeout: float | None = 3600,
) -> bytes:
    """Run ``git [--git-dir=DIR] ARGS`` and return stdout bytes; raise :class:`GitError` on failure."""
    cmd = ["git", "-c", "core.quotepath=off", "-c", "log.showSignature=false", "-c", "protocol.ext.allow=never"]
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
