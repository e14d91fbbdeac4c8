#!/usr/bin/env bash
# Citus for PostgreSQL 16: build it from the vendored source and run a local
# cluster of a coordinator and two workers, for the scale-out tests.
#
# Usage: scripts/citus.sh build                  build and install Citus into
#                                                PostgreSQL 16 (skipped when there)
#        scripts/citus.sh start DIR BASEPORT [DB]
#                                                start a coordinator (BASEPORT) and
#                                                workers (BASEPORT+1, +2) under DIR,
#                                                CREATE EXTENSION citus in DB
#                                                (default platform_cluster) on every
#                                                node and add the workers
#        scripts/citus.sh stop DIR               stop all three
#        scripts/citus.sh psql DIR [psql args]   psql to the coordinator's DB
# Run as root (apt-get, make install, sudo -u postgres). DIR must be reachable
# by the postgres user (not under /root).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/env.sh
source "$here/env.sh"
# shellcheck source=scripts/cluster.sh
source "$here/cluster.sh"

CITUS_VERSION="${CITUS_VERSION:-13.2.2}"
NODES=(coordinator worker1 worker2)   # ports BASEPORT, +1, +2

log() { printf '\033[1m[citus]\033[0m %s\n' "$*"; }

# shellcheck source=scripts/apt.sh
source "$here/apt.sh"

# PostgreSQL 16's pg_config, which install-deps.sh puts in place.
pg16_config() {
  local pg_config
  pg_config="$(pg_config_for 16)"
  [ -x "$pg_config" ] || { echo "no PostgreSQL 16 at $pg_config: run scripts/install-deps.sh" >&2; return 1; }
  echo "$pg_config"
}

# citus.so carries its version string ("Citus 13.2.2 on ..." is built from it).
citus_installed() {
  local so
  so="$("$(pg16_config)" --pkglibdir)/citus.so"
  [ -f "$so" ] && grep -qaF "Citus $CITUS_VERSION on " "$so"
}

build() {
  local pg_config archive build_dir start
  pg_config="$(pg16_config)"
  if citus_installed; then
    log "Citus $CITUS_VERSION already installed for $pg_config"
    return 0
  fi
  apt_install build-essential autoconf flex libcurl4-gnutls-dev libicu-dev libkrb5-dev \
    liblz4-dev libpam0g-dev libreadline-dev libselinux1-dev libssl-dev libxslt1-dev \
    libzstd-dev uuid-dev
  archive="$(vendor_dir)/citus-$CITUS_VERSION.tar.gz"
  build_dir="$(mktemp -d /tmp/citus-build.XXXXXX)"
  trap "rm -rf '$build_dir'" EXIT
  log "building Citus $CITUS_VERSION from $archive for $pg_config (a few minutes)"
  start=$SECONDS
  tar -xzf "$archive" -C "$build_dir"
  (
    cd "$build_dir/citus-$CITUS_VERSION"
    nice -n 15 ./configure PG_CONFIG="$pg_config" >configure.log
    nice -n 15 make -s -j2 >make.log 2>&1 || { tail -50 make.log >&2; exit 1; }
    as_root make -s install >>make.log 2>&1 || { tail -50 make.log >&2; exit 1; }
  )
  log "Citus $CITUS_VERSION built and installed in $((SECONDS - start)) s"
}

# node_psql PORT DB [psql args]: psql as postgres to one node.
node_psql() {
  local port="$1" db="$2"
  shift 2
  cluster_psql 16 "$port" postgres -d "$db" "$@"
}

start() {
  local dir="$1" baseport="$2" db="${3:-platform_cluster}" i port start
  citus_installed || { echo "Citus $CITUS_VERSION is not installed: run scripts/citus.sh build" >&2; exit 1; }
  start=$SECONDS
  mkdir -p "$dir"
  chmod 755 "$dir"
  echo "$baseport $db" >"$dir/citus.conf"
  for i in 0 1 2; do
    port=$((baseport + i))
    cluster_start 16 "$dir/${NODES[$i]}" "$port" "-c shared_preload_libraries=citus -c fsync=off"
    if [ -z "$(node_psql "$port" postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
      node_psql "$port" postgres -c "CREATE DATABASE \"$db\""
    fi
    node_psql "$port" "$db" -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS citus"
  done
  # Both calls are no-ops when the node is already there.
  node_psql "$baseport" "$db" -c "SELECT citus_set_coordinator_host('127.0.0.1', $baseport)" >/dev/null
  for i in 1 2; do
    node_psql "$baseport" "$db" -c "SELECT citus_add_node('127.0.0.1', $((baseport + i)))" >/dev/null
  done
  log "coordinator 127.0.0.1:$baseport, workers :$((baseport + 1)) :$((baseport + 2)), database $db ($((SECONDS - start)) s)"
}

stop() {
  local dir="$1" node
  for node in "${NODES[@]}"; do cluster_stop 16 "$dir/$node"; done
}

# The port and database start was last given, from DIR/citus.conf.
coordinator_psql() {
  local dir="$1" baseport db
  shift
  read -r baseport db <"$dir/citus.conf"
  node_psql "$baseport" "$db" "$@"
}

case "${1:-}" in
  build) build ;;
  start) [ $# -ge 3 ] || { echo "usage: $0 start DIR BASEPORT [DB]" >&2; exit 2; }
         start "$2" "$3" "${4:-}" ;;
  stop) [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
        stop "$2" ;;
  psql) [ $# -ge 2 ] || { echo "usage: $0 psql DIR [psql args]" >&2; exit 2; }
        dir="$2"; shift 2; coordinator_psql "$dir" "$@" ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
