#!/usr/bin/env bash
# The demo behind `./build.sh demo`: runs envoy/envoy.yaml with freshly generated keys, prints
# shell-sourceable lines and ready-to-paste curl commands, and stays in the foreground.
# Usage: demo.sh ENVOY_BIN WASM AML_AUTH_BIN. Ports: AML_DEMO_PORT (10000),
# AML_DEMO_MODEL_PORT (10001), AML_DEMO_ADMIN_PORT (9901).
set -euo pipefail
ENVOY="$(realpath "$1")" WASM="$(realpath "$2")" CLI="$(realpath "$3")"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PORT="${AML_DEMO_PORT:-10000}" MODEL_PORT="${AML_DEMO_MODEL_PORT:-10001}" ADMIN_PORT="${AML_DEMO_ADMIN_PORT:-9901}"
RUN="$ROOT/dist/demo"
mkdir -p "$RUN"
[ -f "$WASM" ] || { echo "demo: $WASM missing (./build.sh wasm)" >&2; exit 1; }

{ read -r AML_DEMO_PRIMARY_KEY; read -r _; } < <("$CLI" keys generate)
{ read -r AML_DEMO_SECONDARY_KEY; read -r _; } < <("$CLI" keys generate)
export AML_DEMO_PRIMARY_KEY AML_DEMO_SECONDARY_KEY

sed -e "s/port_value: 10000/port_value: $PORT/" \
    -e "s/port_value: 10001/port_value: $MODEL_PORT/g" \
    -e "s/port_value: 9901/port_value: $ADMIN_PORT/" \
    "$HERE/envoy.yaml" > "$RUN/envoy.yaml"

cd "$HERE"
"$ENVOY" -c "$RUN/envoy.yaml" --disable-hot-restart --log-level info \
  --log-path "$RUN/envoy.log" --file-flush-interval-msec 100 &
ENVOY_PID=$!
stop() { kill "$ENVOY_PID" 2>/dev/null || true; wait "$ENVOY_PID" 2>/dev/null || true; }
trap 'stop; exit 0' INT TERM
trap stop EXIT

ready=""
for _ in $(seq 1 300); do
  if ! kill -0 "$ENVOY_PID" 2>/dev/null; then
    echo "demo: Envoy exited during start-up; last log lines:" >&2
    tail -20 "$RUN/envoy.log" >&2
    exit 1
  fi
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/ready" 2>/dev/null)" = 200 ]; then
    ready=1
    break
  fi
  sleep 0.1
done
[ -n "$ready" ] || { echo "demo: Envoy did not become ready (see $RUN/envoy.log)" >&2; exit 1; }

SCORING_URI="http://127.0.0.1:$PORT/api/v1/service/demo/score"
cat <<OUT
SCORING_URI=$SCORING_URI
PRIMARY_KEY=$AML_DEMO_PRIMARY_KEY
SECONDARY_KEY=$AML_DEMO_SECONDARY_KEY
# Paste these (200 with a key, 401 without):
curl -s -w ' %{http_code}\n' -H 'Authorization: Bearer $AML_DEMO_PRIMARY_KEY' -H 'Content-Type: application/json' -d '{"data":[[1,2,3,4]]}' $SCORING_URI
curl -s -w ' %{http_code}\n' -H 'Authorization: Bearer $AML_DEMO_SECONDARY_KEY' -H 'Content-Type: application/json' -d '{"data":[[1,2,3,4]]}' $SCORING_URI
curl -s -w ' %{http_code}\n' -H 'Content-Type: application/json' -d '{"data":[[1,2,3,4]]}' $SCORING_URI
# Stats: curl -s http://127.0.0.1:$ADMIN_PORT/stats | grep aml_auth
# Envoy log: $RUN/envoy.log   (Ctrl-C stops the demo)
OUT
wait "$ENVOY_PID"
