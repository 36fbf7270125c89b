"""The project's one Dagster instance: ``dagster_home/`` in the repository, set up once under a lock.

The CLI, ``dagster dev`` and the daemon share run history, materializations and check results only
when they share ``DAGSTER_HOME``. The README's commands export
``DAGSTER_HOME=$PWD/dagster_home`` and run ``python -m formulacode_assets.instance`` first: it links
the repository's ``dagster.yaml`` into that folder and creates and migrates the SQLite storages
**once**, under an exclusive file lock. Dagster's own lazy creation is not safe for concurrent first
users (three first runs at once fail one run and can leave ``runs.db`` with two alembic heads); after
this set-up every run opens existing, stamped databases, so runs may start concurrently.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from dagster import DagsterInstance, __version__
from dagster._core.instance.ref import InstanceRef

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT_HOME = REPO_ROOT / "dagster_home"
INSTANCE_CONFIG = REPO_ROOT / "dagster.yaml"
_READY = ".formulacode-instance-ready"
_LOCK = ".formulacode-instance.lock"


def _link_config(home: Path, config: Path) -> None:
    """``home/dagster.yaml`` follows the repository's file (a link, so edits apply without set-up)."""
    target = home / "dagster.yaml"
    if target.is_symlink() and target.resolve() == config.resolve():
        return
    if target.exists() and not target.is_symlink():
        return  # a hand-written instance config: the site's choice, left alone
    tmp = home / f".dagster.yaml.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(config.resolve())
    os.replace(tmp, target)


def prepare_instance(home: Path | str = PROJECT_HOME, config: Path = INSTANCE_CONFIG) -> Path:
    """Create and migrate the instance at ``home`` once; later calls (and concurrent ones) are cheap."""
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    ready = home / _READY
    if ready.is_file() and ready.read_text().strip() == __version__ and (home / "dagster.yaml").exists():
        return home
    with (home / _LOCK).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent first users wait here for the one doing the work
        if config.exists():
            _link_config(home, config)
        if ready.is_file() and ready.read_text().strip() == __version__:
            return home
        with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
            instance.upgrade()  # creates missing tables and stamps them, or migrates an older Dagster's
            instance.get_runs(limit=1)
        tmp = ready.with_name(f"{_READY}.{os.getpid()}.tmp")
        tmp.write_text(__version__ + "\n")
        os.replace(tmp, ready)
    return home


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    home = Path(argv[0]) if argv else Path(os.environ.get("DAGSTER_HOME") or PROJECT_HOME)
    home = prepare_instance(home)
    print(f"Dagster instance ready: DAGSTER_HOME={home}")
    if os.environ.get("DAGSTER_HOME") and Path(os.environ["DAGSTER_HOME"]).resolve() != home:
        print(f"note: DAGSTER_HOME is set to {os.environ['DAGSTER_HOME']}, not this folder", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
