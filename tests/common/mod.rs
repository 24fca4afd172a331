//! Test harness: a real Envoy process with the built filter, recording HTTP servers, and a raw
//! HTTP/1.1 client that can send anything (duplicate headers, odd bytes).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Envoy 1.40's stat counting the V8 VMs it created.
pub const VM_CREATED: &str = "wasm.envoy.wasm.runtime.v8.created";

/// Default deadline for waiting on an effect.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Envoy binary: `AML_ENVOY`, or `.venv/bin/envoy` as installed by `./build.sh`.
pub fn envoy_bin() -> PathBuf {
    let path = std::env::var_os("AML_ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/envoy"));
    assert!(
        path.exists(),
        "Envoy not found at {} (run ./build.sh test, which installs it)",
        path.display()
    );
    path
}

/// The built filter: `AML_WASM`, or `dist/aml_auth_filter.wasm` as built by `./build.sh wasm`.
pub fn wasm_path() -> PathBuf {
    let path = std::env::var_os("AML_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("dist/aml_auth_filter.wasm"));
    assert!(
        path.exists(),
        "filter not found at {} (run ./build.sh wasm)",
        path.display()
    );
    path
}

/// Polls `check` until it returns true or `deadline` passes; returns whether it became true.
pub fn wait_until(deadline: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// A fresh scratch directory for one test's files.
pub fn scratch_dir(label: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = repo_root()
        .join("target/test-scratch")
        .join(format!("{label}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------------------------
// HTTP messages

/// A request as a server received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Trailers of a chunked body.
    pub trailers: Vec<(String, String)>,
}

impl Received {
    /// All values of a header (name compared case-insensitively).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }
}

/// A response as the client received it.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics with the body if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// What a test server answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Hold the connection this long before answering.
    pub delay: Duration,
}

impl Reply {
    /// A reply with a status and a body.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Delays the answer.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Handler = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

/// A local HTTP/1.1 server that records every request and answers through a handler that the
/// test may swap at any time.
pub struct Server {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    handler: Arc<Mutex<Handler>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Starts a server on a free loopback port.
    pub fn start(handler: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Mutex<Handler>> = Arc::new(Mutex::new(Arc::new(handler)));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (received, handler, stop) = (received.clone(), handler.clone(), stop.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (received, handler) = (received.clone(), handler.clone());
                    thread::spawn(move || serve_connection(stream, &received, &handler));
                }
            });
        }
        Server {
            addr,
            received,
            handler,
            stop,
        }
    }

    /// An upstream that answers 200 `upstream-ok` to everything.
    pub fn upstream() -> Server {
        Server::start(|_| Reply::new(200, "upstream-ok").header("content-type", "text/plain"))
    }

    /// Replaces the handler.
    pub fn set_handler(&self, handler: impl Fn(&Received) -> Reply + Send + Sync + 'static) {
        *self.handler.lock().unwrap() = Arc::new(handler);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// How many requests were received so far.
    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Requests received whose path starts with `prefix`.
    pub fn count_path(&self, prefix: &str) -> usize {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    }

    /// Forgets what was received.
    pub fn clear(&self) {
        self.received.lock().unwrap().clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve_connection(stream: TcpStream, received: &Mutex<Vec<Received>>, handler: &Mutex<Handler>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut writer = write_half;
    loop {
        let Some(request) = read_request(&mut reader) else {
            return;
        };
        received.lock().unwrap().push(request.clone());
        let handler = handler.lock().unwrap().clone();
        let reply = handler(&request);
        if !reply.delay.is_zero() {
            thread::sleep(reply.delay);
        }
        let mut out = format!(
            "HTTP/1.1 {} X\r\ncontent-length: {}\r\n",
            reply.status,
            reply.body.len()
        );
        for (n, v) in &reply.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&reply.body);
        if writer.write_all(&bytes).is_err() {
            return;
        }
    }
}

fn read_head<R: BufRead>(reader: &mut R) -> Option<(String, Vec<(String, String)>)> {
    let mut first = String::new();
    loop {
        first.clear();
        if reader.read_line(&mut first).ok()? == 0 {
            return None;
        }
        if !first.trim().is_empty() {
            break;
        }
    }
    let mut headers = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        let line = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        if line.is_empty() {
            break;
        }
        let (n, v) = line.split_once(':')?;
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    Some((first.trim_end().to_string(), headers))
}

fn read_body<R: BufRead>(
    reader: &mut R,
    headers: &[(String, String)],
    until_close: bool,
) -> Option<Vec<u8>> {
    read_body_and_trailers(reader, headers, until_close).map(|(body, _)| body)
}

/// A message body and, for a chunked one, its trailers.
fn read_body_and_trailers<R: BufRead>(
    reader: &mut R,
    headers: &[(String, String)],
    until_close: bool,
) -> Option<(Vec<u8>, Vec<(String, String)>)> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).ok()?;
            let size = usize::from_str_radix(size_line.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                let mut trailers = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).ok()? == 0 {
                        return None;
                    }
                    let line = line.trim_end_matches(['\r', '\n']);
                    if line.is_empty() {
                        return Some((body, trailers));
                    }
                    let (n, v) = line.split_once(':')?;
                    trailers.push((n.trim().to_string(), v.trim().to_string()));
                }
            }
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk[..size]);
        }
    }
    if let Some(len) = get("content-length") {
        let mut body = vec![0u8; len.parse().ok()?];
        reader.read_exact(&mut body).ok()?;
        return Some((body, Vec::new()));
    }
    let mut body = Vec::new();
    if until_close {
        reader.read_to_end(&mut body).ok()?;
    }
    Some((body, Vec::new()))
}

fn read_request<R: BufRead>(reader: &mut R) -> Option<Received> {
    let (first, headers) = read_head(reader)?;
    let mut parts = first.split(' ');
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let (body, trailers) = read_body_and_trailers(reader, &headers, false)?;
    Some(Received {
        at: Instant::now(),
        method,
        path,
        headers,
        body,
        trailers,
    })
}

/// Sends raw request bytes on a new connection and reads one response.
pub fn send_raw(addr: SocketAddr, raw: &[u8]) -> Response {
    try_send_raw(addr, raw).unwrap_or_else(|e| panic!("request to {addr} failed: {e}"))
}

/// Like [`send_raw`], returning an error instead of panicking.
pub fn try_send_raw(addr: SocketAddr, raw: &[u8]) -> Result<Response, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    stream.write_all(raw).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let (status_line, headers) = read_head(&mut reader).ok_or("no response head")?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let body = read_body(&mut reader, &headers, true).ok_or("bad body")?;
    let _ = reader.get_ref().shutdown(Shutdown::Both);
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Builds a raw HTTP/1.1 request with the given headers (sent exactly as given, in order).
pub fn raw_request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nhost: test.local\r\nconnection: close\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// GET with headers.
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    send_raw(addr, &raw_request("GET", path, headers, b""))
}

/// GET with `Authorization: Bearer <credential>`.
pub fn get_bearer(addr: SocketAddr, path: &str, credential: &str) -> Response {
    get(
        addr,
        path,
        &[("authorization", &format!("Bearer {credential}"))],
    )
}

// ---------------------------------------------------------------------------------------------
// Envoy configuration builders (JSON bootstrap; Envoy reads JSON as YAML)

/// The filter's HTTP filter entry with a plugin configuration.
pub fn wasm_filter(plugin_config: &Value) -> Value {
    wasm_filter_with(plugin_config, json!({}))
}

/// The filter entry with extra `vm_config` fields (e.g. environment variables).
pub fn wasm_filter_with(plugin_config: &Value, vm_extra: Value) -> Value {
    let mut vm_config = json!({
        "vm_id": "aml_auth",
        "runtime": "envoy.wasm.runtime.v8",
        "code": {"local": {"filename": wasm_path()}}
    });
    if let (Some(vm), Some(extra)) = (vm_config.as_object_mut(), vm_extra.as_object()) {
        for (k, v) in extra {
            vm.insert(k.clone(), v.clone());
        }
    }
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "aml_auth",
                "root_id": "aml_auth",
                "failure_policy": "FAIL_CLOSED",
                "vm_config": vm_config,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": plugin_config.to_string()
                }
            }
        }
    })
}

/// The router filter entry.
pub fn router_filter() -> Value {
    json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    })
}

/// A route sending every path to a cluster.
pub fn route_to(cluster: &str) -> Value {
    json!({"match": {"prefix": "/"}, "route": {"cluster": cluster, "timeout": "30s"}})
}

/// A listener on a free loopback port with the given HTTP filters (router appended) and routes.
pub fn listener(name: &str, mut filters: Vec<Value>, routes: Vec<Value>) -> Value {
    filters.push(router_filter());
    json!({
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]},
                "http_filters": filters
            }
        }]}]
    })
}

/// A static cluster with one endpoint.
pub fn cluster(name: &str, addr: SocketAddr) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
            "socket_address": {"address": addr.ip().to_string(), "port_value": addr.port()}
        }}}]}]}
    })
}

/// A bootstrap with these listeners and clusters and an admin on a free port.
pub fn bootstrap(listeners: Vec<Value>, clusters: Vec<Value>) -> Value {
    json!({
        "node": {"id": "aml-auth-test", "cluster": "aml-auth-test"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": listeners, "clusters": clusters}
    })
}

/// The usual single-listener setup: the filter with `plugin_config` in front of `upstream`.
pub fn filter_in_front_of(plugin_config: &Value, upstream: &Server) -> Value {
    bootstrap(
        vec![listener(
            "main",
            vec![wasm_filter(plugin_config)],
            vec![route_to("upstream")],
        )],
        vec![cluster("upstream", upstream.addr)],
    )
}

// ---------------------------------------------------------------------------------------------
// Envoy process

/// A running Envoy; killed on drop.
pub struct Envoy {
    child: Child,
    pub admin: SocketAddr,
    pub dir: PathBuf,
    listeners: HashMap<String, SocketAddr>,
}

/// Options for starting Envoy.
#[derive(Clone, Debug)]
pub struct EnvoyOptions {
    pub concurrency: u32,
    pub extra_args: Vec<String>,
    /// Extra environment variables of the Envoy process (`LD_PRELOAD` of a clock shim...).
    pub env: Vec<(String, String)>,
}

impl Default for EnvoyOptions {
    fn default() -> Self {
        EnvoyOptions {
            concurrency: 1,
            extra_args: Vec::new(),
            env: Vec::new(),
        }
    }
}

fn envoy_command(config_path: &Path, dir: &Path, opts: &EnvoyOptions) -> Command {
    let mut cmd = Command::new(envoy_bin());
    cmd.arg("-c")
        .arg(config_path)
        .arg("--disable-hot-restart")
        .arg("--concurrency")
        .arg(opts.concurrency.to_string())
        .arg("--log-level")
        .arg("info")
        .arg("--log-path")
        .arg(dir.join("envoy.log"))
        .arg("--file-flush-interval-msec")
        .arg("100")
        .arg("--admin-address-path")
        .arg(dir.join("admin.txt"))
        .args(&opts.extra_args)
        .envs(opts.env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Outcome of `envoy --mode validate`.
pub struct Validation {
    pub ok: bool,
    pub output: String,
}

/// Runs `envoy --mode validate` on a configuration file.
pub fn validate_file(config_path: &Path) -> Validation {
    let out = Command::new(envoy_bin())
        .arg("--mode")
        .arg("validate")
        .arg("-c")
        .arg(config_path)
        .arg("--disable-hot-restart")
        .arg("--log-level")
        .arg("info")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Validation {
        ok: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Asserts that Envoy refuses each plugin configuration (filter in front of `upstream`) with a
/// message containing the expected text.
pub fn assert_configs_refused(upstream: &Server, cases: &[(Value, &str)]) {
    for (config, expected) in cases {
        let v = validate(&filter_in_front_of(config, upstream));
        assert!(!v.ok, "{config} was accepted");
        assert!(
            v.output.contains(expected),
            "{config}: expected {expected:?} in:\n{}",
            v.output
        );
    }
}

/// Runs `envoy --mode validate` on a bootstrap value.
pub fn validate(bootstrap: &Value) -> Validation {
    let dir = scratch_dir("validate");
    let path = dir.join("envoy.json");
    std::fs::write(&path, serde_json::to_vec_pretty(bootstrap).unwrap()).unwrap();
    validate_file(&path)
}

impl Envoy {
    /// Starts Envoy and waits until it is ready and its listeners are bound.
    pub fn start(bootstrap: &Value) -> Envoy {
        Envoy::start_with(bootstrap, &EnvoyOptions::default())
    }

    /// Starts Envoy with options.
    pub fn start_with(bootstrap: &Value, opts: &EnvoyOptions) -> Envoy {
        let dir = scratch_dir("envoy");
        let config_path = dir.join("envoy.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(bootstrap).unwrap()).unwrap();
        Envoy::start_file(&config_path, &dir, opts)
    }

    /// Starts Envoy on a configuration file already written in `dir`.
    pub fn start_file(config_path: &Path, dir: &Path, opts: &EnvoyOptions) -> Envoy {
        let child = envoy_command(config_path, dir, opts).spawn().unwrap();
        let mut envoy = Envoy {
            child,
            admin: "127.0.0.1:1".parse().unwrap(),
            dir: dir.to_path_buf(),
            listeners: HashMap::new(),
        };
        let admin_file = dir.join("admin.txt");
        let started = wait_until(Duration::from_secs(60), || {
            if let Ok(Some(status)) = envoy.child.try_wait() {
                panic!(
                    "envoy exited with {status} during start-up:\n{}",
                    envoy.log_tail(60)
                );
            }
            let Some(addr) = std::fs::read_to_string(&admin_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            else {
                return false;
            };
            envoy.admin = addr;
            try_send_raw(addr, &raw_request("GET", "/ready", &[], b""))
                .is_ok_and(|r| r.status == 200)
        });
        assert!(
            started,
            "envoy did not become ready:\n{}",
            envoy.log_tail(60)
        );
        let listeners = envoy.admin_get("/listeners?format=json").json();
        for l in listeners["listener_statuses"].as_array().unwrap() {
            let sa = &l["local_address"]["socket_address"];
            let addr = format!(
                "{}:{}",
                sa["address"].as_str().unwrap(),
                sa["port_value"].as_u64().unwrap()
            );
            envoy.listeners.insert(
                l["name"].as_str().unwrap().to_string(),
                addr.parse().unwrap(),
            );
        }
        envoy
    }

    /// The bound address of a listener.
    pub fn listener(&self, name: &str) -> SocketAddr {
        *self
            .listeners
            .get(name)
            .unwrap_or_else(|| panic!("no listener {name}: {:?}", self.listeners))
    }

    /// The address of the listener named `main`.
    pub fn main(&self) -> SocketAddr {
        self.listener("main")
    }

    /// GET on the admin interface.
    pub fn admin_get(&self, path: &str) -> Response {
        send_raw(self.admin, &raw_request("GET", path, &[], b""))
    }

    /// All integer stats (counters and gauges).
    pub fn stats(&self) -> HashMap<String, i64> {
        let text = self.admin_get("/stats").text();
        text.lines()
            .filter_map(|l| {
                let (name, value) = l.split_once(": ")?;
                Some((name.to_string(), value.trim().parse().ok()?))
            })
            .collect()
    }

    /// One of the filter's stats by its short name (e.g. `aml_auth.requests_allowed`); 0 when absent.
    pub fn stat(&self, name: &str) -> i64 {
        let stats = self.stats();
        stats
            .get(&format!("wasmcustom.{name}"))
            .or_else(|| stats.get(name))
            .copied()
            .unwrap_or(0)
    }

    /// Waits until a stat reaches at least `value`.
    pub fn wait_stat_at_least(&self, name: &str, value: i64) -> bool {
        wait_until(DEADLINE, || self.stat(name) >= value)
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    /// The last lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The process id (for /proc/<pid>/status).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Envoy's count of V8 VMs created so far (with `FAIL_RELOAD` every trap adds one).
    pub fn vm_created(&self) -> i64 {
        self.stats().get(VM_CREATED).copied().unwrap_or(-1)
    }

    /// Asserts that no VM trapped since start-up (no Wasm runtime error or panic in the log)
    /// and that no VM was created since the count `created` was read.
    pub fn assert_no_vm_restart(&self, created: i64) {
        let log = self.log();
        let trap = log
            .lines()
            .find(|l| l.contains("failed: Uncaught") || l.contains("panicked at"));
        assert!(trap.is_none(), "a VM trapped: {}", trap.unwrap_or_default());
        assert_eq!(self.vm_created(), created, "{VM_CREATED} changed");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// Issuer used by token tests.
pub const ISSUER: &str = "https://login.microsoftonline.com/tenant-0000/v2.0";
/// Audience used by token tests.
pub const AUDIENCE: &str = "https://ml.azure.com";

/// A signing key from `tests/data/`.
pub fn signing_key(name: &str) -> aml_auth_filter::signing::SigningKey {
    let path = repo_root().join("tests/data").join(name);
    aml_auth_filter::signing::SigningKey::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A preloadable shim that makes the wall clock (`clock_gettime(CLOCK_REALTIME)`,
/// `gettimeofday`, `time`) of the process read 0 while the file `flag` exists, built with gcc
/// into `dir`; `None` when gcc is missing. The real time comes from the raw syscall.
pub fn zero_clock_shim(dir: &Path, flag: &Path) -> Option<PathBuf> {
    let source = dir.join("zero_clock.c");
    let library = dir.join("zero_clock.so");
    let flag = flag.to_str().unwrap();
    assert!(
        !flag.contains(['"', '\\']),
        "{flag}: a path the shim can hold"
    );
    std::fs::write(
        &source,
        format!(
            r#"#define _GNU_SOURCE
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
static int zero(void) {{ return syscall(SYS_access, "{flag}", F_OK) == 0; }}
int clock_gettime(clockid_t clock, struct timespec *ts) {{
    long r = syscall(SYS_clock_gettime, clock, ts);
    if (r == 0 && ts && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE) && zero()) {{
        ts->tv_sec = 0;
        ts->tv_nsec = 0;
    }}
    return (int)r;
}}
int gettimeofday(struct timeval *tv, void *tz) {{
    struct timespec ts;
    long r = clock_gettime(CLOCK_REALTIME, &ts);
    if (r == 0 && tv) {{
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }}
    (void)tz;
    return (int)r;
}}
time_t time(time_t *out) {{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}}
"#
        ),
    )
    .ok()?;
    let built = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .status();
    match built {
        Ok(status) if status.success() => Some(library),
        Ok(status) => panic!("gcc could not build the clock shim: {status}"),
        Err(_) => None,
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims of a good token: the test issuer and audience, valid for ten minutes.
pub fn good_claims() -> Value {
    let now = unix_now();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "nbf": now, "exp": now + 600})
}

/// A JWKS server answering with `jwks` (swappable through `set_handler`).
pub fn jwks_server(jwks: &Value) -> Server {
    let body = jwks.to_string();
    Server::start(move |_| Reply::new(200, body.clone()).header("content-type", "application/json"))
}

/// A remote JWKS source entry for the cluster `cluster`.
pub fn remote_source(cluster: &str, refresh: u64, max_stale: u64) -> Value {
    json!({
        "cluster": cluster,
        "uri": format!("http://{cluster}.test/discovery/v2.0/keys"),
        "timeout_seconds": 2,
        "refresh_interval_seconds": refresh,
        "max_stale_seconds": max_stale
    })
}

/// Token-mode configuration with these JWKS sources.
pub fn token_config(remote: Value) -> Value {
    json!({
        "auth_enabled": false,
        "token_auth_enabled": true,
        "token": {"issuer": ISSUER, "audiences": [AUDIENCE], "remote_jwks": remote}
    })
}

/// The filter in front of `upstream`, with extra clusters (JWKS servers).
pub fn filter_with_clusters(
    plugin_config: &Value,
    upstream: &Server,
    jwks: &[(&str, &Server)],
) -> Value {
    let mut clusters = vec![cluster("upstream", upstream.addr)];
    clusters.extend(jwks.iter().map(|(name, server)| cluster(name, server.addr)));
    bootstrap(
        vec![listener(
            "main",
            vec![wasm_filter(plugin_config)],
            vec![route_to("upstream")],
        )],
        clusters,
    )
}

// ---------------------------------------------------------------------------------------------
// ECDS

/// Writes an ECDS resource file carrying the filter with this plugin configuration text into
/// `dir/ecds/aml_auth.json`, and returns the HTTP filter entry that discovers it from that
/// watched directory, with the file's path.
pub fn ecds_filter(dir: &Path, plugin_config_text: &str) -> (Value, PathBuf) {
    let watched = dir.join("ecds");
    std::fs::create_dir_all(&watched).unwrap();
    let mut typed_config = wasm_filter(&json!({}))["typed_config"].clone();
    typed_config["config"]["configuration"]["value"] = json!(plugin_config_text);
    let ecds = watched.join("aml_auth.json");
    let resource = json!({
        "version_info": "1",
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": "aml_auth",
            "typed_config": typed_config
        }]
    });
    std::fs::write(&ecds, serde_json::to_vec_pretty(&resource).unwrap()).unwrap();
    let filter = json!({
        "name": "aml_auth",
        "config_discovery": {
            "config_source": {"path_config_source": {
                "path": ecds,
                "watched_directory": {"path": watched}
            }},
            "type_urls": ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"]
        }
    });
    (filter, ecds)
}

/// One keep-alive HTTP/1.1 connection, for clients that must never be dropped.
pub struct KeepAlive {
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    /// Connects.
    pub fn connect(addr: SocketAddr) -> std::io::Result<KeepAlive> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(KeepAlive {
            reader: BufReader::new(stream),
        })
    }

    /// Sends one GET on this connection and reads its response.
    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Response, String> {
        let mut out = format!("GET {path} HTTP/1.1\r\nhost: test.local\r\n");
        for (n, v) in headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str("\r\n");
        self.reader
            .get_mut()
            .write_all(out.as_bytes())
            .map_err(|e| e.to_string())?;
        let (status_line, headers) = read_head(&mut self.reader).ok_or("connection closed")?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let body = read_body(&mut self.reader, &headers, false).ok_or("bad body")?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/2 prior-knowledge client: literal headers, any bytes.

fn hpack_int(out: &mut Vec<u8>, prefix_bits: u8, first: u8, mut value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Digits of a Huffman-coded `:status` value (RFC 7541 codes of `0`-`9` only).
pub fn huffman_digits(bytes: &[u8]) -> Option<String> {
    let bits: Vec<u8> = bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    let (mut i, mut out) = (0, String::new());
    while out.len() < 3 && i + 5 <= bits.len() {
        let v = |n: usize| bits[i..i + n].iter().fold(0u8, |a, b| a << 1 | b);
        match v(3) {
            0 => {
                out.push((b'0' + v(5)) as char);
                i += 5;
            }
            0b011 => {
                out.push((b'0' + v(6) - 0b011000 + 2) as char);
                i += 6;
            }
            _ => return None,
        }
    }
    Some(out)
}

pub fn status_of(block: &[u8]) -> u16 {
    const STATIC: [u16; 7] = [200, 204, 206, 304, 400, 404, 500];
    let Some(&b) = block.first() else { return 0 };
    if b & 0x80 != 0 {
        return STATIC
            .get(((b & 0x7f) as usize).wrapping_sub(8))
            .copied()
            .unwrap_or(0);
    }
    let name_index = if b & 0xc0 == 0x40 { b & 0x3f } else { b & 0x0f };
    if name_index != 8 || block.len() < 2 {
        return 0;
    }
    let (huffman, len) = (block[1] & 0x80 != 0, (block[1] & 0x7f) as usize);
    let value = &block[2..(2 + len).min(block.len())];
    let text = if huffman {
        huffman_digits(value).unwrap_or_default()
    } else {
        String::from_utf8_lossy(value).into_owned()
    };
    text.parse().unwrap_or(0)
}

/// One GET over h2c with these pseudo-headers and headers (raw bytes); status and body.
pub fn h2_get(addr: SocketAddr, headers: &[(&[u8], &[u8])]) -> Result<(u16, Vec<u8>), String> {
    h2_request(addr, headers, b"", &[])
}

fn hpack_literals(headers: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in headers {
        block.push(0x00);
        hpack_int(&mut block, 7, 0, name.len());
        block.extend_from_slice(name);
        hpack_int(&mut block, 7, 0, value.len());
        block.extend_from_slice(value);
    }
    block
}

/// One request over h2c: headers, then the body (when not empty) and the trailers (when not
/// empty) in their own frames; status and body.
pub fn h2_request(
    addr: SocketAddr,
    headers: &[(&[u8], &[u8])],
    body: &[u8],
    trailers: &[(&[u8], &[u8])],
) -> Result<(u16, Vec<u8>), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(4, 0, 0, &[]));
    let ends_here = body.is_empty() && trailers.is_empty();
    out.extend(frame(
        1,
        if ends_here { 0x5 } else { 0x4 },
        1,
        &hpack_literals(headers),
    ));
    if !body.is_empty() {
        out.extend(frame(0, if trailers.is_empty() { 1 } else { 0 }, 1, body));
    }
    if !trailers.is_empty() {
        out.extend(frame(1, 0x5, 1, &hpack_literals(trailers)));
    }
    stream.write_all(&out).map_err(|e| e.to_string())?;
    let (mut status, mut body) = (0u16, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let mut head = [0u8; 9];
        stream
            .read_exact(&mut head)
            .map_err(|e| format!("read: {e}"))?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags, id) = (
            head[3],
            head[4],
            u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
        );
        let mut payload = vec![0u8; len];
        stream
            .read_exact(&mut payload)
            .map_err(|e| format!("read: {e}"))?;
        let unpadded = |p: &[u8], extra: usize| -> Vec<u8> {
            if flags & 0x8 != 0 {
                let pad = p[0] as usize;
                p[1 + extra..p.len() - pad].to_vec()
            } else {
                p[extra..].to_vec()
            }
        };
        match (kind, id) {
            (0, 1) => {
                body.extend(unpadded(&payload, 0));
                if flags & 1 != 0 {
                    return Ok((status, body));
                }
            }
            (1, 1) => {
                let extra = if flags & 0x20 != 0 { 5 } else { 0 };
                if status == 0 {
                    status = status_of(&unpadded(&payload, extra));
                }
                if flags & 1 != 0 {
                    return Ok((status, body));
                }
            }
            (3, 1) => return Err("stream reset".into()),
            (4, 0) if flags & 1 == 0 => stream
                .write_all(&frame(4, 1, 0, &[]))
                .map_err(|e| e.to_string())?,
            (6, 0) if flags & 1 == 0 => stream
                .write_all(&frame(6, 1, 0, &payload))
                .map_err(|e| e.to_string())?,
            (7, _) => return Err("goaway".into()),
            _ => {}
        }
    }
    Err("no response".into())
}
