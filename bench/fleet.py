#!/usr/bin/env python3
"""Fleet figure behind `./build.sh bench fleet`: how many requests a fleet of gateways sends to
the identity provider's JWKS endpoint, per proxy per hour, in steady state, during an outage and
during an unknown-kid flood; printed as a markdown table with the extrapolation to a larger fleet.

Starts one JWKS test server and several Envoys (`--disable-hot-restart`, own ports, each with the
filter fetching the key set under its own authority `jwks-<i>.fleet`), then runs the phases:

1. steady: the server answers; nothing else happens. Measured as the interval between each
   proxy's initial fetch and its next one (a window of 1.1 refresh periods plus 5 s).
2. outage: the server goes down: its listening socket closes and every kept-alive connection is
   dropped, so each attempt is refused. One unknown-kid token per proxy starts the attempts at
   once (otherwise the first comes at the next refresh). Attempts are counted by the filter's own
   counters (`aml_auth.jwks.fetch_success` + `aml_auth.jwks.fetch_failure`), sampled every
   second, since a server that is down counts nothing.
3. flood: the server comes back; every proxy gets a stream of tokens whose `kid` is unknown (each
   distinct), the early-refetch trigger; counted once every proxy fetched again.

Requests in the up phases are counted where the identity provider would count them: at the server,
per authority. Steady state is one fetch per refresh period, so it is measured with a short period
(`--refresh`, default 60 s) and scaled to the production period (`--production-refresh`, default
600 s, the configuration's default); the outage and flood rates are set by the backoff cap and the
early-refetch interval, which do not depend on the period once it is at least 60 s, so they are
reported as measured. Standard library only; needs Envoy and the built module.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ISSUER = "https://login.microsoftonline.com/tenant-0000/v2.0"
AUDIENCE = "https://ml.azure.com"
# A usable Ed25519 public key (the filter needs one usable key to hold a set).
JWKS = json.dumps(
    {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "kid": "fleet-key",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            }
        ]
    }
).encode()


def log(msg):
    print(f"==> {msg}", file=sys.stderr, flush=True)


class JwksServer:
    """The JWKS host: counts requests per authority; `down()` closes the listener and drops every
    kept-alive connection, `up()` listens again on the same port."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.times = {}
        self.conns = set()
        self.server = None
        self.port = None
        self.up()

    def handler(outer):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with outer.lock:
                    outer.conns.add(self.connection)

            def finish(self):
                with outer.lock:
                    outer.conns.discard(self.connection)
                super().finish()

            def do_GET(self):
                host = self.headers.get("Host", "")
                with outer.lock:
                    outer.counts[host] = outer.counts.get(host, 0) + 1
                    outer.times.setdefault(host, []).append(time.monotonic())
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(JWKS)))
                self.end_headers()
                self.wfile.write(JWKS)

            def log_message(self, *args):
                pass

        return Handler

    def up(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port or 0), self.handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self):
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            conns = list(self.conns)
            self.conns.clear()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def snapshot(self):
        with self.lock:
            return dict(self.counts)

    def fetch_times(self, host):
        with self.lock:
            return list(self.times.get(host, []))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unknown_kid_token(n):
    """A well-formed token whose `kid` no key set holds: refused (401 unknown_kid) before any
    signature check, and the filter's trigger for an early refetch."""
    now = int(time.time())
    header = {"alg": "EdDSA", "typ": "JWT", "kid": f"unknown-{n}"}
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "flood", "iat": now, "exp": now + 600}
    return ".".join(
        [
            b64url(json.dumps(header).encode()),
            b64url(json.dumps(claims).encode()),
            b64url(os.urandom(64)),
        ]
    )


def bootstrap(i, wasm, jwks_port, refresh, max_stale):
    plugin = {
        "auth_enabled": False,
        "token_auth_enabled": True,
        "token": {
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "remote_jwks": {
                "cluster": "jwks",
                "uri": f"http://jwks-{i}.fleet/discovery/v2.0/keys",
                "timeout_seconds": 2,
                "refresh_interval_seconds": refresh,
                "max_stale_seconds": max_stale,
            },
        },
    }
    wasm_filter = {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "aml_auth",
                "root_id": "aml_auth",
                "failure_policy": "FAIL_CLOSED",
                "vm_config": {
                    "vm_id": "aml_auth",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": json.dumps(plugin),
                },
            },
        },
    }
    router = {
        "name": "envoy.filters.http.router",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
        },
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "main",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [
                        {
                            "match": {"prefix": "/"},
                            "direct_response": {"status": 200, "body": {"inline_string": "ok"}},
                        }
                    ],
                }
            ]
        },
        "http_filters": [wasm_filter, router],
    }
    local = {"socket_address": {"address": "127.0.0.1", "port_value": 0}}
    return {
        "node": {"id": f"fleet-{i}", "cluster": "fleet"},
        "admin": {"address": local},
        "static_resources": {
            "listeners": [
                {
                    "name": "main",
                    "address": local,
                    "filter_chains": [
                        {
                            "filters": [
                                {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": "jwks",
                    "type": "STATIC",
                    "connect_timeout": "2s",
                    "load_assignment": {
                        "cluster_name": "jwks",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {"address": "127.0.0.1", "port_value": jwks_port}
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                }
            ],
        },
    }


def http_get(host, port, path, headers=None, timeout=5):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Proxy:
    def __init__(self, i, envoy, wasm, jwks_port, args, workdir):
        self.i = i
        self.dir = os.path.join(workdir, f"envoy-{i}")
        os.makedirs(self.dir)
        cfg = os.path.join(self.dir, "envoy.json")
        with open(cfg, "w") as f:
            json.dump(bootstrap(i, wasm, jwks_port, args.refresh, args.max_stale), f)
        self.admin_file = os.path.join(self.dir, "admin.txt")
        self.proc = subprocess.Popen(
            [
                envoy,
                "-c", cfg,
                "--disable-hot-restart",
                "--concurrency", str(args.concurrency),
                "--log-level", "warn",
                "--log-path", os.path.join(self.dir, "envoy.log"),
                "--file-flush-interval-msec", "100",
                "--admin-address-path", self.admin_file,
            ],
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.admin = None
        self.listener = None
        self.authority = f"jwks-{i}.fleet"

    def wait_ready(self, deadline):
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"envoy {self.i} exited with {self.proc.returncode}; see {self.dir}/envoy.log")
            try:
                with open(self.admin_file) as f:
                    host, port = f.read().strip().rsplit(":", 1)
                self.admin = (host, int(port))
                status, _ = http_get(*self.admin, "/ready", timeout=1)
                if status == 200:
                    _, body = http_get(*self.admin, "/listeners?format=json")
                    sa = json.loads(body)["listener_statuses"][0]["local_address"]["socket_address"]
                    self.listener = (sa["address"], sa["port_value"])
                    return
            except (OSError, ValueError, KeyError, IndexError, http.client.HTTPException):
                pass
            time.sleep(0.2)
        raise SystemExit(f"envoy {self.i} did not become ready; see {self.dir}/envoy.log")

    def attempts(self):
        """JWKS fetch attempts so far (successes and failures), from the filter's counters."""
        _, body = http_get(*self.admin, "/stats?filter=aml_auth.jwks.fetch_")
        total = 0
        for line in body.decode().splitlines():
            name, _, value = line.partition(": ")
            name = name.removeprefix("wasmcustom.")
            if name in ("aml_auth.jwks.fetch_success", "aml_auth.jwks.fetch_failure"):
                total += int(value)
        return total

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def flood(proxy, rps, stop, results):
    """Unknown-kid tokens to one proxy at `rps` per second on a kept-alive connection."""
    n, sent, refused = 0, 0, 0
    conn = None
    next_at = time.monotonic()
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection(*proxy.listener, timeout=5)
            conn.request("GET", "/score", headers={"Authorization": f"Bearer {unknown_kid_token(n)}"})
            resp = conn.getresponse()
            resp.read()
            sent += 1
            refused += resp.status == 401
        except (OSError, http.client.HTTPException):
            conn = None
        n += 1
        next_at += 1.0 / rps
        stop.wait(max(0.0, next_at - time.monotonic()))
    results[proxy.i] = (sent, refused)


def sample(proxies, seconds, timeline):
    """Samples every proxy's attempt counter once a second for `seconds`."""
    end = time.monotonic() + seconds
    while True:
        now = time.monotonic()
        timeline.append((now, [p.attempts() for p in proxies]))
        if now >= end:
            return
        time.sleep(min(1.0, end - now))


def module_commit():
    try:
        head = subprocess.run(
            ["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", ROOT, "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envoy", default=os.environ.get("AML_ENVOY", os.path.join(ROOT, ".venv/bin/envoy")))
    ap.add_argument("--wasm", default=os.environ.get("AML_WASM", os.path.join(ROOT, "dist/aml_auth_filter.wasm")))
    ap.add_argument("--proxies", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=2, help="Envoy workers per proxy")
    ap.add_argument("--refresh", type=int, default=60, help="refresh_interval_seconds of the run")
    ap.add_argument("--max-stale", type=int, default=86400, help="max_stale_seconds of the run")
    ap.add_argument("--production-refresh", type=int, default=600, help="period steady state is scaled to")
    ap.add_argument("--fleet", type=int, default=2000, help="proxies to extrapolate to")
    ap.add_argument("--flood", type=int, default=60, help="seconds of unknown-kid flood")
    ap.add_argument("--flood-rps", type=float, default=5.0, help="unknown-kid tokens per second per proxy")
    ap.add_argument("--outage", type=int, default=130, help="seconds of outage")
    ap.add_argument("--out", help="also write the markdown table to this file")
    args = ap.parse_args()
    for path, what in ((args.envoy, "Envoy"), (args.wasm, "the module")):
        if not os.path.exists(path):
            raise SystemExit(f"{what} not found at {path}")
    if args.refresh < 60:
        log(f"--refresh {args.refresh} is below 60 s: the backoff cap is then the refresh period, so the outage rate is higher than in production")
    with open(args.wasm, "rb") as f:
        wasm_sha = hashlib.sha256(f.read()).hexdigest()[:12]
    commit = module_commit()

    server = JwksServer()
    workdir = tempfile.mkdtemp(prefix="aml-fleet-")
    proxies = []
    try:
        log(f"starting {args.proxies} Envoys (concurrency {args.concurrency}, refresh {args.refresh} s) against one JWKS server on port {server.port}")
        for i in range(args.proxies):
            proxies.append(Proxy(i, args.envoy, args.wasm, server.port, args, workdir))
        deadline = time.monotonic() + 60
        for p in proxies:
            p.wait_ready(deadline)
        while any(server.snapshot().get(p.authority, 0) == 0 for p in proxies):
            if time.monotonic() > deadline:
                raise SystemExit("not every proxy fetched the key set within 60 s")
            time.sleep(0.2)
        rows = []

        steady_window = int(args.refresh * 1.1) + 5
        log(f"steady state: {steady_window} s (every proxy's first refresh after its initial fetch)")
        start = time.monotonic()
        time.sleep(steady_window)
        intervals = []
        steady_total = 0
        for p in proxies:
            times = [t for t in server.fetch_times(p.authority) if t < start + steady_window]
            steady_total += sum(1 for t in times if t >= start)
            intervals += [b - a for a, b in zip(times, times[1:])]
        if intervals:
            interval = statistics.mean(intervals)
            measured = 3600.0 / interval
            rows.append(("steady state", steady_window, steady_total, measured * args.refresh / args.production_refresh,
                         f"one fetch every {interval:.1f} s per proxy (refresh {args.refresh} s, {measured:.0f}/h), scaled to refresh {args.production_refresh} s"))

        log(f"outage: {args.outage} s (server down, kept-alive connections dropped; one unknown-kid token per proxy starts the attempts at once)")
        server.down()
        for p in proxies:
            try:
                http_get(*p.listener, "/score", {"Authorization": f"Bearer {unknown_kid_token(-1 - p.i)}"})
            except (OSError, http.client.HTTPException):
                pass
        timeline = []
        sample(proxies, args.outage, timeline)
        start, end = timeline[0][1], timeline[-1][1]
        outage_total = sum(e - s for s, e in zip(start, end))
        gaps = []
        for j in range(len(proxies)):
            events = [t for (t, v), (_, prev) in zip(timeline[1:], timeline) if v[j] > prev[j]]
            steps = [b - a for a, b in zip(events, events[1:])]
            if steps:
                gaps.append(max(steps))
        rows.append(("outage, whole window", args.outage, outage_total, scale(outage_total, args, args.outage),
                     "the backoff ramp from the first failure on; counted by the filter's counters"))
        t0 = timeline[0][0]
        late = [(t, v) for t, v in timeline if t - t0 >= RAMP_S]
        if args.outage >= 2 * RAMP_S and len(late) > 1:
            late_total = sum(e - s for s, e in zip(late[0][1], late[-1][1]))
            late_window = late[-1][0] - late[0][0]
            rows.append((f"outage, after its first {RAMP_S} s", round(late_window), late_total,
                         scale(late_total, args, late_window),
                         "the backoff at its cap (300 s while the held set is usable, full jitter)"))
        if gaps:
            gap = statistics.median(gaps)
            rows.append(("outage, sustained", None, None, 3600.0 / gap,
                         f"once the backoff reached its cap: longest gap between attempts {gap:.0f} s (median over proxies; sampled each second)"))

        log(f"unknown-kid flood at {args.flood_rps:g} tokens/s per proxy: the server comes back, then {args.flood} s counted once every proxy fetched again")
        server.up()
        recovered_from = {p.authority: len(server.fetch_times(p.authority)) for p in proxies}
        stop = threading.Event()
        results = {}
        threads = [threading.Thread(target=flood, args=(p, args.flood_rps, stop, results)) for p in proxies]
        for t in threads:
            t.start()
        back = time.monotonic()
        deadline = back + RECOVERY_WAIT_S
        while any(len(server.fetch_times(a)) <= n for a, n in recovered_from.items()):
            if time.monotonic() > deadline:
                stop.set()
                raise SystemExit(f"not every proxy fetched again within {RECOVERY_WAIT_S} s of the server coming back")
            time.sleep(0.2)
        recovery = time.monotonic() - back
        before = server.snapshot()
        time.sleep(args.flood)
        after = server.snapshot()
        stop.set()
        for t in threads:
            t.join()
        flood_total = sum(after.get(p.authority, 0) - before.get(p.authority, 0) for p in proxies)
        sent = sum(s for s, _ in results.values())
        refused = sum(r for _, r in results.values())
        rows.append(("unknown-kid flood", args.flood, flood_total, scale(flood_total, args, args.flood),
                     f"{sent} unknown-kid tokens sent in all, {refused} refused with 401; includes the regular refreshes; "
                     f"every proxy fetched again {recovery:.0f} s after the server came back"))
    finally:
        for p in proxies:
            p.stop()
        try:
            server.down()
        except Exception:
            pass

    lines = [
        f"Module {commit} (wasm sha256 {wasm_sha}); {args.proxies} proxies x {args.concurrency} workers, "
        f"one JWKS server, refresh {args.refresh} s.",
        "",
        f"| phase | window (s) | JWKS requests, {args.proxies} proxies | per proxy per hour | {args.fleet:,} proxies (req/s) | note |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, window, total, per_hour, note in rows:
        lines.append(
            f"| {name} | {window if window is not None else ''} | {total if total is not None else ''} | "
            f"{per_hour:.1f} | {per_hour * args.fleet / 3600:.2f} | {note} |"
        )
    shutil.rmtree(workdir, ignore_errors=True)
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")


# Longest a proxy holding a usable set may wait between attempts (the backoff cap), plus a margin.
RECOVERY_WAIT_S = 330
# The outage's first seconds, while the backoff ramps up to its cap.
RAMP_S = 300


def scale(total, args, seconds):
    """Requests per proxy per hour."""
    return total / args.proxies / seconds * 3600.0


if __name__ == "__main__":
    main()
