#!/usr/bin/env bash
# A private Docker engine for tests and CI, plus the locally bootstrapped Debian base image.
#
#   scripts/docker_engine.sh start    start dockerd (idempotent), make the base image, print DOCKER_HOST
#   scripts/docker_engine.sh status   print DOCKER_HOST and exit 0 when the engine answers, else exit 1
#   scripts/docker_engine.sh stop     stop the dockerd this script started (by its PID)
#
# The engine never touches the host's network: it runs with --iptables=false --ip6tables=false
# --bridge=none on its own socket, data root and exec root; builds and containers use the host
# network. Docker Hub is unreachable on these machines, so the base image is a debootstrap'ed
# Debian bookworm imported with `docker import`; the rootfs tarball is cached under the root, and
# the data root keeps the imported image and the build cache between runs.
#
# Settings (environment):
#   FC_DOCKER_ROOT       folder for the socket, data root, exec root, logs, caches  (/tmp/fc-docker)
#   FC_BASE_IMAGE        tag of the local base image                               (fc-debian:bookworm)
#   FC_DEBIAN_MIRROR     Debian mirror for debootstrap                             (http://deb.debian.org/debian)
#   FC_BASE_PACKAGES     extra packages in the base image       (python3,python3-venv,git,ca-certificates)
#   FC_SKIP_BASE_IMAGE   1: start the engine only
#   FC_DOCKER_INSTALL    1: apt-get install docker.io / debootstrap when missing   (1)
#
# Only the DOCKER_HOST line goes to stdout; progress goes to stderr.
set -euo pipefail

ROOT="${FC_DOCKER_ROOT:-/tmp/fc-docker}"
BASE_IMAGE="${FC_BASE_IMAGE:-fc-debian:bookworm}"
MIRROR="${FC_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="${FC_BASE_PACKAGES:-python3,python3-venv,git,ca-certificates}"
SOCK="$ROOT/docker.sock"
PIDFILE="$ROOT/dockerd.pid"
LOG="$ROOT/dockerd.log"
HOST="unix://$SOCK"
BASE_TAR="$ROOT/base/$(echo "$BASE_IMAGE" | tr ':/' '__').tar"

log() { echo "docker_engine: $*" >&2; }

engine_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

engine_answers() {
  [[ -S "$SOCK" ]] && timeout 10 docker -H "$HOST" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

ensure_installed() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker >/dev/null 2>&1 || missing+=(docker.io)
  if [[ "${FC_SKIP_BASE_IMAGE:-0}" != 1 ]]; then
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  fi
  ((${#missing[@]} == 0)) && return 0
  if [[ "${FC_DOCKER_INSTALL:-1}" != 1 || "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    log "missing ${missing[*]} and cannot install them (need root + apt-get, FC_DOCKER_INSTALL=1)"
    return 1
  fi
  log "installing ${missing[*]}"
  # Debian's policy-rc.d may refuse to start services here; we start dockerd ourselves.
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${missing[@]}" >&2 \
    || { timeout 300 apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${missing[@]}" >&2; }
}

start_engine() {
  if engine_answers; then
    return 0
  fi
  if pid="$(engine_pid)"; then
    log "dockerd $pid is running but does not answer; stopping it first"
    stop_engine
  fi
  mkdir -p "$ROOT/data" "$ROOT/exec" "$ROOT/base"
  rm -f "$SOCK"
  log "starting dockerd (data root $ROOT/data, socket $SOCK)"
  # setsid: the engine outlives this script and ignores the caller's terminal signals; it is
  # stopped by its PID (`stop`). 9>&-: it must not inherit (and hold) our lock.
  setsid dockerd \
    --data-root "$ROOT/data" \
    --exec-root "$ROOT/exec" \
    --pidfile "$PIDFILE" \
    -H "$HOST" \
    --iptables=false --ip6tables=false --bridge=none \
    --storage-driver=overlay2 \
    </dev/null >"$LOG" 2>&1 9>&- &
  local deadline=$((SECONDS + 60))
  until engine_answers; do
    if ((SECONDS > deadline)); then
      log "dockerd did not answer within 60 s; last log lines:"
      tail -n 20 "$LOG" >&2 || true
      stop_engine || true
      return 1
    fi
    sleep 0.5
  done
  log "dockerd $(engine_pid || echo '?') is up"
}

ensure_base_image() {
  if docker -H "$HOST" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    return 0
  fi
  if [[ ! -s "$BASE_TAR" ]]; then
    local rootfs="$ROOT/base/rootfs.$$"
    log "debootstrap bookworm (minbase + $PACKAGES) into $rootfs"
    rm -rf "$rootfs"
    if ! timeout 900 debootstrap --variant=minbase --include="$PACKAGES" bookworm "$rootfs" "$MIRROR" \
      >"$ROOT/base/debootstrap.log" 2>&1; then
      log "debootstrap failed; last log lines:"
      tail -n 20 "$ROOT/base/debootstrap.log" >&2 || true
      rm -rf "$rootfs"
      return 1
    fi
    # Leave apt lists and caches out: smaller image, same behaviour.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf "$rootfs"
  fi
  log "importing $BASE_TAR as $BASE_IMAGE"
  docker -H "$HOST" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    "$BASE_TAR" "$BASE_IMAGE" >/dev/null
}

stop_engine() {
  local pid
  if ! pid="$(engine_pid)"; then
    log "no dockerd running from $PIDFILE"
    rm -f "$PIDFILE"
    return 0
  fi
  log "stopping dockerd $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      log "dockerd $pid ignored SIGTERM for 30 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.5
  done
  rm -f "$PIDFILE" "$SOCK"
  # dockerd leaves the handle of its own network namespace mounted under its exec root; release
  # it so the folder can be deleted (this is the engine's namespace, not the host's network).
  if mountpoint -q "$ROOT/exec/netns/default" 2>/dev/null; then
    umount "$ROOT/exec/netns/default" 2>/dev/null || true
  fi
}

case "${1:-}" in
  start)
    mkdir -p "$ROOT"
    exec 9>"$ROOT/.lock"
    flock -w 300 9 || { log "another docker_engine.sh holds $ROOT/.lock"; exit 1; }  # one engine for concurrent callers
    ensure_installed
    start_engine
    if [[ "${FC_SKIP_BASE_IMAGE:-0}" != 1 ]]; then
      ensure_base_image
    fi
    echo "$HOST"
    ;;
  status)
    if engine_answers; then
      echo "$HOST"
    else
      exit 1
    fi
    ;;
  stop)
    mkdir -p "$ROOT"
    exec 9>"$ROOT/.lock"
    flock -w 300 9 || { log "another docker_engine.sh holds $ROOT/.lock"; exit 1; }
    stop_engine
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
