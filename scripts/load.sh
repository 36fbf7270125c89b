#!/usr/bin/env bash
# Load the machine like a busy CI runner: CPU-burning processes, bounded in time, stopped by PID.
#
#   scripts/load.sh run [-n BURNERS] [-t SECONDS] -- CMD...   burn while CMD runs, then stop (CMD's rc)
#   scripts/load.sh start [-n BURNERS] [-t SECONDS]           start burners in the background
#   scripts/load.sh stop                                      stop the burners this script started
#   scripts/load.sh status
#
# Defaults: 2 burners, each ends by itself after 3600 s at the latest (timeout(1)), so a forgotten
# load never outlives the hour. PIDs are kept in $FC_LOAD_PIDFILE (default /tmp/fc-load.<uid>.pids);
# `stop` signals only those PIDs. Example (the suite under load, timed):
#   time scripts/load.sh run -- uv run pytest -q
set -euo pipefail

PIDFILE=${FC_LOAD_PIDFILE:-/tmp/fc-load.$(id -u).pids}
BURNERS=2
SECONDS_MAX=3600

usage() { sed -n '2,12p' "$0" >&2; exit 2; }

parse() {
  while [ $# -gt 0 ]; do
    case "$1" in
      -n) BURNERS=$2; shift 2 ;;
      -t) SECONDS_MAX=$2; shift 2 ;;
      --) shift; break ;;
      *) break ;;
    esac
  done
  REST=("$@")
}

start() {
  if [ -s "$PIDFILE" ]; then echo "load: already running (pids $(tr '\n' ' ' <"$PIDFILE")); stop first" >&2; exit 1; fi
  : >"$PIDFILE"
  for _ in $(seq "$BURNERS"); do
    # A busy loop in its own bash; timeout(1) bounds it even if nobody calls stop.
    timeout "$SECONDS_MAX" bash -c 'while :; do :; done' &
    echo $! >>"$PIDFILE"
  done
  echo "load: $BURNERS CPU burners for at most ${SECONDS_MAX}s (pids $(tr '\n' ' ' <"$PIDFILE"))" >&2
}

stop() {
  [ -s "$PIDFILE" ] || { echo "load: not running" >&2; rm -f "$PIDFILE"; return 0; }
  while read -r pid; do
    # Only our own timeout(1) processes: it forwards TERM to its busy-loop child.
    if [ -n "$pid" ] && [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = "timeout" ]; then kill "$pid" 2>/dev/null || true; fi
  done <"$PIDFILE"
  rm -f "$PIDFILE"
  echo "load: stopped" >&2
}

status() {
  if [ -s "$PIDFILE" ]; then ps -o pid=,etime=,pcpu=,args= -p "$(paste -sd, "$PIDFILE")" || true; else echo "load: not running"; fi
}

cmd=${1:-}; [ -n "$cmd" ] || usage; shift
case "$cmd" in
  start) parse "$@"; start ;;
  stop) stop ;;
  status) status ;;
  run)
    parse "$@"
    [ ${#REST[@]} -gt 0 ] || usage
    start
    trap stop EXIT
    rc=0; "${REST[@]}" || rc=$?
    exit "$rc"
    ;;
  *) usage ;;
esac
