# Start and stop a throw-away PostgreSQL cluster owned by the postgres user
# (initdb refuses root). Sourced by test.sh and demo.sh, after env.sh.

# Runs a command as the postgres user (directly when already that user).
as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else sudo -u postgres -- "$@"; fi
}

# cluster_start VERSION DATADIR PORT [SERVER OPTIONS]: initdb if DATADIR is
# empty, then start it listening on PORT on loopback and on a socket inside
# DATADIR, with any further postgres options (e.g. "-c fsync=off" for tests).
cluster_start() {
  local version="$1" datadir="$2" port="$3" extra="${4:-}" bindir
  bindir="$("$(pg_config_for "$version")" --bindir)"
  mkdir -p "$datadir"
  chown postgres: "$datadir" 2>/dev/null || true
  chmod 700 "$datadir"
  if [ ! -f "$datadir/PG_VERSION" ]; then
    as_postgres "$bindir/initdb" -D "$datadir" -U postgres -A trust -E UTF8 \
      --locale=C.UTF-8 --no-sync >/dev/null
  fi
  if ! as_postgres "$bindir/pg_ctl" -D "$datadir" status >/dev/null 2>&1; then
    as_postgres "$bindir/pg_ctl" -D "$datadir" -l "$datadir/server.log" -w \
      -o "$(server_options "$datadir" "$port") $extra" start >/dev/null
  fi
}

# The postgres options every cluster here starts with.
server_options() {
  echo "-p $2 -k $1 -c listen_addresses=127.0.0.1"
}

# cluster_stop VERSION DATADIR
cluster_stop() {
  local version="$1" datadir="$2" bindir
  bindir="$("$(pg_config_for "$version")" --bindir)"
  as_postgres "$bindir/pg_ctl" -D "$datadir" -m fast -w stop >/dev/null 2>&1 || true
}

# cluster_psql VERSION PORT USER [psql arguments]: psql as USER over
# loopback, stopping at the first error.
cluster_psql() {
  local version="$1" port="$2" user="$3" bindir
  shift 3
  bindir="$("$(pg_config_for "$version")" --bindir)"
  "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$user" "$@"
}

# cargo pgrx install for VERSION (the matching feature, not the default one),
# which also copies the upgrade scripts sql/platform--A--B.sql; then the
# install scripts of earlier releases (sql/released/), so that a database can
# be created at an earlier version and upgraded, as the upgrade test does.
install_extension() {
  local version="$1" pg_config; shift
  pg_config="$(pg_config_for "$version")"
  cargo pgrx install --pg-config "$pg_config" \
    --no-default-features --features "pg$version" "$@"
  install -m 644 "$(dirname "${BASH_SOURCE[0]}")"/../sql/released/platform--*.sql "$("$pg_config" --sharedir)/extension/"
}

# scratch_cluster VERSION PORT [SERVER OPTIONS]: a throw-away cluster for a
# benchmark, in a new directory ($work) that is stopped and removed when the
# script exits.
scratch_cluster() {
  local version="$1" port="$2" extra="${3:-}"
  work="$(mktemp -d /tmp/platform-bench.XXXXXX)"
  chmod 755 "$work"
  trap "cluster_stop $version '$work/pg'; rm -rf '$work'" EXIT
  cluster_start "$version" "$work/pg" "$port" "$extra"
}
