#!/usr/bin/env bash
# The demo behind `./build.sh demo`: runs envoy/envoy.yaml from dist/demo/ with freshly generated
# keys, a workspace stand-in that signs tokens and serves their JWKS, and two services behind one
# listener (key auth and token auth). Prints shell-sourceable lines and ready-to-paste commands,
# then stays in the foreground until Ctrl-C.
# Usage: demo.sh ENVOY_BIN WASM AML_AUTH_BIN. Ports: AML_DEMO_PORT (10000), AML_DEMO_MODEL_PORT
# (10001), AML_DEMO_WORKSPACE_PORT (10002), AML_DEMO_ADMIN_PORT (9901).
set -euo pipefail
ENVOY="$(realpath "$1")" WASM="$(realpath "$2")" CLI="$(realpath "$3")"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PORT="${AML_DEMO_PORT:-10000}" MODEL_PORT="${AML_DEMO_MODEL_PORT:-10001}"
WORKSPACE_PORT="${AML_DEMO_WORKSPACE_PORT:-10002}" ADMIN_PORT="${AML_DEMO_ADMIN_PORT:-9901}"
RUN="$ROOT/dist/demo"
ISSUER="https://workspace.demo.local" AUDIENCE="https://ml.azure.com"
[ -f "$WASM" ] || { echo "demo: $WASM missing (./build.sh wasm)" >&2; exit 1; }

# Nothing of a running demo may be touched: take the demo lock (held until this script and its
# Envoy exit) and check every port before dist/demo is replaced.
mkdir -p "$ROOT/dist"
exec 9>"$ROOT/dist/.demo.lock"
if ! flock -n 9; then
  echo "demo: another ./build.sh demo is running from this checkout (it owns $RUN); stop it (Ctrl-C) first" >&2
  exit 1
fi
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for spec in "AML_DEMO_PORT=$PORT" "AML_DEMO_MODEL_PORT=$MODEL_PORT" \
            "AML_DEMO_WORKSPACE_PORT=$WORKSPACE_PORT" "AML_DEMO_ADMIN_PORT=$ADMIN_PORT"; do
  if port_busy "${spec#*=}"; then
    echo "demo: port ${spec#*=} is in use; pick free ports with AML_DEMO_PORT, AML_DEMO_MODEL_PORT, AML_DEMO_WORKSPACE_PORT and AML_DEMO_ADMIN_PORT (now ${spec})" >&2
    exit 1
  fi
done
rm -rf "$RUN" && mkdir -p "$RUN/ecds" "$RUN/workspace"

{ read -r PRIMARY_KEY; read -r PRIMARY_DIGEST; } < <("$CLI" keys generate)
{ read -r SECONDARY_KEY; read -r SECONDARY_DIGEST; } < <("$CLI" keys generate)

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$RUN/workspace/signing-rs256.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$RUN/workspace/signing-es256.pem" 2>/dev/null
"$CLI" jwks --signing-key "$RUN/workspace/signing-rs256.pem" --signing-key "$RUN/workspace/signing-es256.pem" \
  > "$RUN/workspace/jwks.json"

python3 - "$HERE/plugin-config.json" "$RUN/plugin-config.json" "$PRIMARY_DIGEST" "$SECONDARY_DIGEST" "$WORKSPACE_PORT" <<'PY'
import json, sys
src, out, primary, secondary, port = sys.argv[1:]
cfg = json.load(open(src))
cfg["primary_key"], cfg["secondary_key"] = primary, secondary
cfg["token"]["remote_jwks"]["uri"] = f"http://127.0.0.1:{port}/discovery/v2.0/keys"
open(out, "w").write(json.dumps(cfg, indent=2) + "\n")
PY
python3 "$HERE/make-ecds.py" "$RUN/plugin-config.json" "$WASM" "$RUN/ecds/aml_auth.json"
sed -e "s/address: 0.0.0.0, port_value: 10000/address: 127.0.0.1, port_value: $PORT/" \
    -e "s/port_value: 10000/port_value: $PORT/" \
    -e "s/port_value: 10001/port_value: $MODEL_PORT/g" \
    -e "s/port_value: 10002/port_value: $WORKSPACE_PORT/g" \
    -e "s/port_value: 9901/port_value: $ADMIN_PORT/" \
    "$HERE/envoy.yaml" > "$RUN/envoy.yaml"

cd "$RUN"
"$ENVOY" -c "$RUN/envoy.yaml" --disable-hot-restart --log-level info \
  --log-path "$RUN/envoy.log" --file-flush-interval-msec 100 &
ENVOY_PID=$!
stop() { kill "$ENVOY_PID" 2>/dev/null || true; wait "$ENVOY_PID" 2>/dev/null || true; }
trap 'stop; exit 0' INT TERM
trap stop EXIT

SCORING_URI="http://127.0.0.1:$PORT/api/v1/service/demo/score"
TOKEN_SCORING_URI="http://127.0.0.1:$PORT/api/v1/service/demo-token/score"
{ read -r TOKEN; read -r TOKEN_REFRESH_BY; } < <("$CLI" token issue --signing-key "$RUN/workspace/signing-rs256.pem" \
  --issuer "$ISSUER" --audience "$AUDIENCE" --ttl 3600 --subject demo-user)
{ read -r TOKEN_ES256; read -r _; } < <("$CLI" token issue --signing-key "$RUN/workspace/signing-es256.pem" \
  --issuer "$ISSUER" --audience "$AUDIENCE" --ttl 3600 --subject demo-user)

code() { curl -s -o /dev/null -w '%{http_code}' "$@" 2>/dev/null || true; }
fetched() {
  curl -s "http://127.0.0.1:$ADMIN_PORT/stats?filter=aml_auth.jwks.fetch_success$" 2>/dev/null \
    | grep -Eq ': [1-9][0-9]*$'
}
ready=""
for _ in $(seq 1 300); do
  if ! kill -0 "$ENVOY_PID" 2>/dev/null; then
    echo "demo: Envoy exited during start-up; last log lines:" >&2
    tail -20 "$RUN/envoy.log" >&2
    exit 1
  fi
  # Ready once Envoy is and the filter has fetched the workspace's JWKS (read from the admin
  # stats, so no probe request shows up in the filter's own counters).
  if [ "$(code "http://127.0.0.1:$ADMIN_PORT/ready")" = 200 ] && fetched; then
    ready=1
    break
  fi
  sleep 0.1
done
[ -n "$ready" ] || { echo "demo: Envoy did not become ready (see $RUN/envoy.log)" >&2; exit 1; }

BODY='{"data":[[1,2,3,4]]}'
cat <<OUT
# service demo: key auth (either key works)
SCORING_URI=$SCORING_URI
PRIMARY_KEY=$PRIMARY_KEY
SECONDARY_KEY=$SECONDARY_KEY
# service demo-token: token auth (RS256 token from the workspace stand-in; an ES256 one too)
TOKEN_SCORING_URI=$TOKEN_SCORING_URI
TOKEN=$TOKEN
TOKEN_ES256=$TOKEN_ES256
TOKEN_REFRESH_BY='${TOKEN_REFRESH_BY#refresh_by=}'
# Paste these. Key service: 200 with either key, 401 without one:
curl -s -w ' %{http_code}\n' -H 'Authorization: Bearer $PRIMARY_KEY' -H 'Content-Type: application/json' -d '$BODY' $SCORING_URI
curl -s -w ' %{http_code}\n' -H 'Authorization: Bearer $SECONDARY_KEY' -H 'Content-Type: application/json' -d '$BODY' $SCORING_URI
curl -s -w ' %{http_code}\n' -H 'Content-Type: application/json' -d '$BODY' $SCORING_URI
# Token service: 200 with either token, 401 with a key (it takes tokens only):
curl -s -w ' %{http_code}\n' -H 'Authorization: Bearer $TOKEN' -H 'Content-Type: application/json' -d '$BODY' $TOKEN_SCORING_URI
curl -s -w ' %{http_code}\n' -H 'Authorization: Bearer $TOKEN_ES256' -H 'Content-Type: application/json' -d '$BODY' $TOKEN_SCORING_URI
curl -s -w ' %{http_code}\n' -H 'Authorization: Bearer $PRIMARY_KEY' -H 'Content-Type: application/json' -d '$BODY' $TOKEN_SCORING_URI
# Rotate a key with no restart (prints the new key on its last line; Envoy applies it in a second or two):
$CLI keys regen primary --config $RUN/plugin-config.json --hashed --envoy-ecds $RUN/ecds/aml_auth.json
$CLI keys regen secondary --config $RUN/plugin-config.json --hashed --envoy-ecds $RUN/ecds/aml_auth.json
# A new token: $CLI token issue --signing-key $RUN/workspace/signing-rs256.pem --issuer $ISSUER --audience $AUDIENCE --ttl 3600
# Stats: curl -s http://127.0.0.1:$ADMIN_PORT/stats | grep aml_auth
# Envoy log: $RUN/envoy.log   (Ctrl-C stops the demo)
OUT
wait "$ENVOY_PID"
