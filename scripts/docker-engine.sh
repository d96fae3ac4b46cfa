#!/usr/bin/env bash
# A private Docker engine for tests and offline builds (no engine runs on these machines).
#   scripts/docker-engine.sh install     apt-get docker.io and debootstrap when missing
#   scripts/docker-engine.sh start       start dockerd (own data-root, exec-root, socket); prints DOCKER_HOST
#   scripts/docker-engine.sh base-image  make esrunner-base:bookworm-py311 (debootstrap minbase + python3) if missing
#   scripts/docker-engine.sh stop        stop the dockerd started here
#   scripts/docker-engine.sh registry-start [PORT]   a registry on 127.0.0.1:PORT (default 5000)
#   scripts/docker-engine.sh registry-stop [PORT]    stop it and delete its storage
#   scripts/docker-engine.sh prune       remove esrunner-test images and older base environments
#                                        (esrunner-env:<digest>); cap the build cache at 12 GB
# Needs root. State lives under ESB_DOCKER_ROOT (default /var/lib/esbuild-docker).
set -euo pipefail
ROOT="${ESB_DOCKER_ROOT:-/var/lib/esbuild-docker}"
RUN="${ESB_DOCKER_RUN:-/run/esbuild-docker}"
SOCK="unix://$RUN/docker.sock"
PIDFILE="$RUN/dockerd.pid"
BASE_TAG="${ESB_BASE_IMAGE:-esrunner-base:bookworm-py311}"
MIRROR="${ESB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DOCKER=(docker -H "$SOCK")

cmd="${1:-}"
case "$cmd" in
  install)
    need=()
    command -v dockerd >/dev/null || need+=(docker.io)
    command -v containerd >/dev/null || need+=(containerd)
    command -v debootstrap >/dev/null || need+=(debootstrap)
    command -v docker-registry >/dev/null || need+=(docker-registry)
    if [ "${#need[@]}" -gt 0 ]; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    ;;
  start)
    mkdir -p "$ROOT/data" "$ROOT/containerd" "$RUN/exec" "$RUN/containerd"
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      echo "$SOCK"; exit 0
    fi
    # Our own containerd too, so a system engine on the same host is never shared.
    nohup containerd --address "$RUN/containerd/containerd.sock" --root "$ROOT/containerd" \
      --state "$RUN/containerd/state" >"$RUN/containerd.log" 2>&1 &
    echo $! >"$RUN/containerd.pid"
    for _ in $(seq 1 30); do [ -S "$RUN/containerd/containerd.sock" ] && break; sleep 0.5; done
    nohup dockerd --data-root "$ROOT/data" --exec-root "$RUN/exec" -H "$SOCK" --pidfile "$PIDFILE" \
      --containerd "$RUN/containerd/containerd.sock" \
      --storage-driver overlay2 --bridge=none --iptables=false --ip6tables=false \
      >"$RUN/dockerd.log" 2>&1 &
    for _ in $(seq 1 60); do
      if "${DOCKER[@]}" version >/dev/null 2>&1; then echo "$SOCK"; exit 0; fi
      sleep 1
    done
    echo "dockerd did not start; see $RUN/dockerd.log" >&2
    tail -20 "$RUN/dockerd.log" >&2 || true
    exit 1
    ;;
  base-image)
    if "${DOCKER[@]}" image inspect "$BASE_TAG" >/dev/null 2>&1; then echo "$BASE_TAG"; exit 0; fi
    rootfs="$(mktemp -d "$ROOT/rootfs.XXXX")"
    debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" "$MIRROR" \
      >"$ROOT/debootstrap.log" 2>&1 || { tail -20 "$ROOT/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | "${DOCKER[@]}" import -c 'ENV LANG=C.UTF-8' - "$BASE_TAG" >/dev/null
    rm -rf "$rootfs"
    echo "$BASE_TAG"
    ;;
  stop)
    if [ -f "$PIDFILE" ]; then
      pid="$(cat "$PIDFILE")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$PIDFILE"
    fi
    if [ -f "$RUN/containerd.pid" ]; then
      kill "$(cat "$RUN/containerd.pid")" 2>/dev/null || true
      rm -f "$RUN/containerd.pid"
    fi
    ;;
  prune)
    "${DOCKER[@]}" images --format '{{.Repository}}:{{.Tag}}' \
      | grep -E '^(esrunner-test|esrunner-bench|127\.0\.0\.1:[0-9]+)/' \
      | xargs -r "${DOCKER[@]}" rmi -f >/dev/null 2>&1 || true
    # Base environments (esrunner-env:<digest>): the newest stays, older bases go.
    "${DOCKER[@]}" images esrunner-env --format '{{.Repository}}:{{.Tag}}' | tail -n +2 \
      | xargs -r "${DOCKER[@]}" rmi >/dev/null 2>&1 || true
    "${DOCKER[@]}" image prune -f >/dev/null 2>&1 || true
    "${DOCKER[@]}" builder prune -f --keep-storage 12gb >/dev/null 2>&1 || true
    ;;
  registry-start)
    port="${2:-5000}"
    rpid="$RUN/registry-$port.pid"
    mkdir -p "$ROOT/registry-$port" "$RUN"
    if [ -f "$rpid" ] && kill -0 "$(cat "$rpid")" 2>/dev/null; then echo "127.0.0.1:$port"; exit 0; fi
    cat >"$RUN/registry-$port.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $ROOT/registry-$port
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
    nohup docker-registry serve "$RUN/registry-$port.yml" >"$RUN/registry-$port.log" 2>&1 &
    echo $! >"$rpid"
    for _ in $(seq 1 30); do
      if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/')" 2>/dev/null; then
        echo "127.0.0.1:$port"; exit 0
      fi
      sleep 1
    done
    echo "registry did not start; see $RUN/registry-$port.log" >&2; exit 1
    ;;
  registry-stop)
    port="${2:-5000}"
    rpid="$RUN/registry-$port.pid"
    if [ -f "$rpid" ]; then kill "$(cat "$rpid")" 2>/dev/null || true; rm -f "$rpid"; fi
    rm -rf "${ROOT:?}/registry-$port"  # a test registry: its storage goes with it
    ;;
  *)
    echo "usage: $0 install|start|base-image|stop|registry-start|registry-stop" >&2; exit 2 ;;
esac
