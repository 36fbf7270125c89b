"""Children that die with the run: a watchdog per child process group or container.

A kill -9 of the pipeline gives it no chance to clean up, and children started in their own
session (``build_env.sh``, asv steps) or in the Docker engine would run on with nothing enforcing
their timeout. Each such child gets a watchdog: a tiny process in a session of its own (so a kill
of the pipeline's process group spares it) holding the read end of a pipe whose only write end
belongs to this process. However this process ends, the kernel closes the write end; the watchdog
then reads end-of-file and kills the group or removes the container. A normal end of the child
writes one line first, which dismisses the watchdog without doing anything.

The pipe's write end is not inheritable (Python's default), so no other child keeps it open.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import Any

# $1 is the process group to kill. `read` fails only on end-of-file without a line.
_GROUP_WATCHDOG = 'read -r _line || kill -9 -"$1" 2>/dev/null; exit 0'

_CONTAINER_WATCHDOG = """\
import sys
if not sys.stdin.readline():
    import docker
    try:
        docker.DockerClient(base_url=sys.argv[1], version="auto", timeout=60).containers.get(sys.argv[2]).remove(
            force=True
        )
    except Exception:
        pass
"""

# Labels on every validation container: who started it (for finding leftovers of a dead run).
OWNER_LABEL = "formulacode.owner_pid"


def owner_labels() -> dict[str, str]:
    return {"formulacode.validation": "1", OWNER_LABEL: str(os.getpid())}


class Watchdog:
    """Runs ``argv`` detached, reading a pipe from this process; :meth:`dismiss` after a normal end."""

    def __init__(self, argv: list[str]):
        read_end, self._write_end = os.pipe()
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except BaseException:
            os.close(self._write_end)
            raise
        finally:
            os.close(read_end)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def dismiss(self) -> None:
        """The child ended normally: tell the watchdog to leave without acting, and reap it."""
        if self._write_end < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self._write_end, b"done\n")
        os.close(self._write_end)
        self._write_end = -1
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=30)


def watch_process_group(pgid: int) -> Watchdog:
    """Kill process group ``pgid`` (SIGKILL) if this process dies before :meth:`Watchdog.dismiss`."""
    return Watchdog(["/bin/sh", "-c", _GROUP_WATCHDOG, "fc-watchdog", str(pgid)])


def docker_base_url(client: Any) -> str:
    """The engine address of a docker SDK client, in a form ``DockerClient(base_url=...)`` accepts."""
    adapter = getattr(client.api, "_custom_adapter", None)
    socket_path = getattr(adapter, "socket_path", None)
    return f"unix://{socket_path}" if socket_path else client.api.base_url


def watch_container(client: Any, container_id: str) -> Watchdog:
    """Remove the container (force) if this process dies before :meth:`Watchdog.dismiss`."""
    return Watchdog([sys.executable, "-c", _CONTAINER_WATCHDOG, docker_base_url(client), container_id])
