//! `aml-auth`: workspace-side tools for operators of aml-auth-filter: keys and their rotation in
//! plugin configuration (and Envoy ECDS) files, tokens and the JWKS that verifies them.

mod args;
mod check;
mod config_check;
mod ecds;
mod fsio;
mod jsonspan;
mod keys;
mod token;

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use aml_auth_filter::keys::{generate_key, KeyDigest, KeySlot};
use args::{Flag, Outcome, Parsed};

const TOP_USAGE: &str = "usage: aml-auth <command> [<args>]

Operator tools for aml-auth-filter.

commands:
  keys generate   print a new random key and its sha256: digest
  keys regen      replace the primary or secondary key in a plugin configuration file
  keys list       show each policy's auth mode and how its keys are stored
  token issue     sign a token for the filter's token auth
  token check     judge a token as the filter would, check by check
  jwks            print the public JWKS of signing keys
  config check    judge a plugin configuration offline with the filter's own parser
  help [COMMAND]  this text, or a command's

Run `aml-auth <command> --help` for a command's options.
Exit status: 0 success, 1 failure (`token check`: the filter would deny; `config check`: it
refuses the configuration), 2 usage error.
";

const CONFIG_USAGE: &str = "usage: aml-auth config check [FILE | -] [--envoy ENVOY_JSON]

  config check    judge a plugin configuration offline with the filter's own parser
";

const CONFIG_CHECK_USAGE: &str = "usage: aml-auth config check [FILE | -] [--envoy ENVOY_JSON]

Judges a plugin configuration with the filter's own parser, offline (no Envoy, nothing
fetched), and prints a one-screen summary of what it does: the top-level policy, how services
are selected, each service's mode and keys' storage (never a key), the token issuers and key
sources. Refused: the field path and what to change.

  FILE               the plugin configuration (JSON; `-` reads stdin), or an Envoy ECDS file
                     (each Wasm resource's plugin configuration is checked)
  --envoy ENVOY_JSON the Envoy configuration the filter runs in, as JSON. Without FILE, the
                     plugin configuration of every Wasm filter inlined in it is checked. Warns
                     when a route listed earlier with a shorter prefix takes the requests of a
                     longer path_prefix (Envoy takes the first matching route, the filter the
                     longest prefix), when route_names or clusters name nothing in it, and when
                     a remote_jwks cluster is not one of its clusters

env: keys are read from the environment this command runs in; one unset here is reported and
checked as if it held a valid key. Warnings (exit status unchanged): unset env: variables,
plaintext keys under 16 characters, the same key in both slots, the route checks above.
Exit status: 0 the filter accepts the configuration, 1 it refuses it (or a file cannot be
read), 2 usage error.
";

const KEYS_USAGE: &str = "usage: aml-auth keys <generate|regen|list> [<args>]

  keys generate   print a new random key and its sha256: digest
  keys regen      replace the primary or secondary key in a plugin configuration file
  keys list       show each policy's auth mode and how its keys are stored
";

const GENERATE_USAGE: &str = "usage: aml-auth keys generate

Prints a new random key (32 bytes from the OS, URL-safe base64) on the first line and its
sha256: digest (a value for primary_key/secondary_key) on the second.
";

const REGEN_USAGE: &str =
    "usage: aml-auth keys regen primary|secondary --config FILE [--service NAME] [--hashed]
                         [--envoy-ecds ECDS_FILE]

Replaces one key in a plugin configuration file (JSON) with a new random key, leaving every
other byte of the file as it was, and prints the new key on the last line of stdout.
Notes go to stderr. Rotate as in Azure ML: regenerate the key clients are not using, move
clients to it, then regenerate the other.

  --config FILE          the plugin configuration (Envoy `configuration` value, Istio pluginConfig)
  --service NAME         the key of services[].name == NAME instead of the top-level key; a
                         service inheriting the top-level key gets its own
  --hashed               store the key's sha256: digest instead of the key
  --envoy-ecds FILE      also set the plugin configuration in this Envoy ECDS file (JSON) and
                         bump its version_info, so an Envoy watching it applies the new key
                         without a restart; the file must hold exactly one resource, this
                         filter's Wasm resource

The edited configuration is checked with the filter's own parser (env: keys are looked up in
this process's environment) before anything is written; files are replaced atomically (temp
file and rename) keeping their owner, group and mode; a file this user may not write (e.g.
mode 0444) is refused. Concurrent regenerations of one configuration take turns (a lock file,
.FILE.aml-auth-lock, beside it), so the key each prints is the one both files hold. A key
stored as env:NAME is refused: it lives in that variable, not in the file.
";

const LIST_USAGE: &str = "usage: aml-auth keys list --config FILE

Prints one line per policy: the top-level policy (`default`) first, then each service:

  NAME  PATH_PREFIX  MODE  primary=STORAGE  secondary=STORAGE

PATH_PREFIX is `-` for default and for services selected by route_names or clusters; MODE is
key, token or none; STORAGE is plaintext, hashed, env:NAME, inherited (from the top level),
absent, or n/a for a service whose mode is not key (its requests never meet a key). Keys and digests are never printed.
The configuration is checked with the filter's own parser; env: variables that are unset in
this shell are assumed to be set in the proxy.
";

const TOKEN_USAGE: &str = "usage: aml-auth token <issue|check> [<args>]

  token issue     sign a token for the filter's token auth
  token check     judge a token as the filter would, check by check
";

const CHECK_USAGE: &str =
    "usage: aml-auth token check --config FILE [--service NAME | --path PATH [--host HOST] |
                         --route NAME | --cluster NAME] [--jwks FILE] [--at UNIX_OR_RFC3339] TOKEN

Judges TOKEN (`-` reads it from stdin) with the filter's own configuration parser, router and
decision code, and prints: the policy chosen, the time, the keys, the token's decoded header
and claims (the signature elided) and its times in RFC 3339, each check in order (structure,
header, issuer, time, audience, claims, signature) with `pass` or `fail <reason>` and what a
failed check expected, and the verdict with the status and reason the filter would answer.
Each check runs on its own where it can, so one report shows every problem; the verdict stops
at the first, as the filter does.

  --config FILE      the plugin configuration
  --service NAME     judge under services[].name == NAME (`default`: the top-level policy)
  --path PATH        services selected by path_prefix: judge under the service the filter
                     routes this :path to
  --host HOST        with --path: the request's Host (:authority)
  --route NAME       services selected by route_names: the Envoy route the request takes
  --cluster NAME     services selected by clusters: the upstream cluster it goes to (with
                     --route: the route decides first, then the cluster, as in the filter)
  --jwks FILE        the remote key set (JWKS JSON, e.g. saved with curl), held beside the
                     configuration's token.local_jwks as the filter holds a fetched set.
                     Nothing is fetched: without --jwks only local_jwks judges, as in the
                     filter before its first fetch (a kid it lacks: 503 jwks_unavailable)
  --at TIME          judge at this time, Unix seconds or RFC 3339 (2024-05-01T12:00:00Z);
                     default now

Without --service, --path, --route or --cluster the top-level policy judges.
Exit status: 0 the filter would forward the request, 1 it would deny it (or the configuration
or key set is refused), 2 usage error (including a selection the configuration cannot make:
--path for services selected by route, --route or --cluster for services selected by path, an
unknown --service).
";

const ISSUE_USAGE: &str =
    "usage: aml-auth token issue --signing-key FILE --issuer ISS --audience AUD --ttl SECONDS
                         [--subject SUB] [--claim NAME=VALUE]... [--claim-json NAME=JSON]...
                         [--kid KID] [--alg ALG]

Prints a signed JWT on the first line and, on the second, when to get a new one:
  refresh_by=<unix seconds> <RFC 3339 UTC>
(three quarters of the lifetime, like Azure ML's get_token()).

  --signing-key FILE     PKCS#8 PEM private key (openssl genpkey): RSA, EC P-256, P-384 or
                         P-521, or Ed25519
  --issuer ISS           iss claim
  --audience AUD         aud claim
  --ttl SECONDS          lifetime, 1 to 2592000 (30 days); exp = iat + ttl, nbf = iat
  --subject SUB          sub claim
  --claim NAME=VALUE     an extra claim with a string value (repeatable)
  --claim-json NAME=JSON an extra claim with any JSON value, e.g. roles='[\"a\"]' (repeatable)
  --kid KID              kid header (default: the key's RFC 7638 thumbprint, as `aml-auth jwks`)
  --alg ALG              RS256, RS384, RS512, PS256, PS384, PS512 (RSA), ES256 (P-256),
                         ES384 (P-384), ES512 (P-521), EdDSA (Ed25519); default RS256,
                         ES256, ES384, ES512 or EdDSA by key type

iss, aud, iat, nbf, exp and sub come from their own options and cannot be set with --claim.
";

const JWKS_USAGE: &str = "usage: aml-auth jwks --signing-key FILE [--signing-key FILE]...

Prints the public JWKS of these PKCS#8 PEM private keys as JSON, each key with
kid = its RFC 7638 thumbprint and use = sig, ready to serve as the workspace's JWKS (or to
paste into token.local_jwks). EC keys carry alg = ES256, ES384 or ES512 by curve and Ed25519
keys alg = EdDSA; RSA keys carry no alg, so they verify every algorithm `token issue --alg`
signs RSA tokens with (RS256, RS384, RS512, PS256, PS384, PS512), as Entra ID's published keys do.
";

/// Why a command did not succeed.
#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong (exit 2); `usage` is the command's usage text.
    Usage {
        /// What is wrong.
        message: String,
        /// The command, for the `--help` hint.
        command: &'static str,
    },
    /// The command failed (exit 1).
    Fail(String),
}

impl CliError {
    /// A failure with this message.
    pub fn fail(message: impl Into<String>) -> Self {
        CliError::Fail(message.into())
    }

    fn usage(command: &'static str) -> impl Fn(String) -> CliError {
        move |message| CliError::Usage { message, command }
    }
}

/// What a command that ran prints on stdout, and its exit status.
#[derive(Debug, PartialEq, Eq)]
pub struct Output {
    /// Lines for stdout.
    pub lines: Vec<String>,
    /// Exit status: 0, or 1 for a command whose answer is "no" (`token check` denying).
    pub status: u8,
    /// Whether losing stdout loses something only stdout had (a new key): then a closed stdout
    /// is a failure, not a reader that has seen enough.
    pub essential: bool,
}

impl From<Vec<String>> for Output {
    fn from(lines: Vec<String>) -> Self {
        Output {
            lines,
            status: 0,
            essential: false,
        }
    }
}

/// Writes a line to stderr; a closed or broken stderr is not worth dying for.
pub fn note(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "aml-auth: {line}");
}

fn write_lines(lines: &[String]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{line}")?;
    }
    out.flush()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(output) => match write_lines(&output.lines) {
            Ok(()) => ExitCode::from(output.status),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe && !output.essential => {
                ExitCode::from(output.status)
            }
            Err(e) if output.essential => {
                note(&format!(
                    "cannot write to stdout: {e}; the change was made but its output (the new key) is lost: run the command again"
                ));
                ExitCode::FAILURE
            }
            Err(e) => {
                note(&format!("cannot write to stdout: {e}"));
                ExitCode::FAILURE
            }
        },
        Err(CliError::Usage { message, command }) => {
            note(&message);
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "Run `{command} --help` for usage.");
            ExitCode::from(2)
        }
        Err(CliError::Fail(message)) => {
            note(&message);
            ExitCode::FAILURE
        }
    }
}

fn help(text: &str) -> Result<Output, CliError> {
    Ok(vec![text.trim_end().to_string()].into())
}

fn is_help(word: &str) -> bool {
    word == "-h" || word == "--help"
}

/// Runs a command line (without the program name).
fn run(args: &[String]) -> Result<Output, CliError> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let rest = |n: usize| args.get(n..).unwrap_or_default();
    match words.as_slice() {
        [] => Err(CliError::usage("aml-auth")("no command given".to_string())),
        ["help"] => help(TOP_USAGE),
        ["help", topic @ ..] => help(usage_of(topic).ok_or_else(|| {
            CliError::usage("aml-auth")(format!("no command `{}`", topic.join(" ")))
        })?),
        [w, ..] if is_help(w) => help(TOP_USAGE),
        ["keys"] => Err(CliError::usage("aml-auth keys")(
            "missing subcommand".to_string(),
        )),
        ["keys", w, ..] if is_help(w) => help(KEYS_USAGE),
        ["keys", "generate", ..] => keys_generate(rest(2)),
        ["keys", "regen", ..] => keys_regen(rest(2)),
        ["keys", "list", ..] => keys_list(rest(2)),
        ["keys", other, ..] => Err(CliError::usage("aml-auth keys")(format!(
            "unknown subcommand `keys {other}`"
        ))),
        ["token"] => Err(CliError::usage("aml-auth token")(
            "missing subcommand".to_string(),
        )),
        ["token", w, ..] if is_help(w) => help(TOKEN_USAGE),
        ["token", "issue", ..] => token_issue(rest(2)),
        ["token", "check", ..] => token_check(rest(2)),
        ["token", other, ..] => Err(CliError::usage("aml-auth token")(format!(
            "unknown subcommand `token {other}`"
        ))),
        ["jwks", ..] => jwks(rest(1)),
        ["config"] => Err(CliError::usage("aml-auth config")(
            "missing subcommand".to_string(),
        )),
        ["config", w, ..] if is_help(w) => help(CONFIG_USAGE),
        ["config", "check", ..] => config_check(rest(2)),
        ["config", other, ..] => Err(CliError::usage("aml-auth config")(format!(
            "unknown subcommand `config {other}`"
        ))),
        [other, ..] => Err(CliError::usage("aml-auth")(format!(
            "unknown command `{other}`"
        ))),
    }
}

fn usage_of(topic: &[&str]) -> Option<&'static str> {
    Some(match topic {
        ["keys"] => KEYS_USAGE,
        ["keys", "generate"] => GENERATE_USAGE,
        ["keys", "regen"] => REGEN_USAGE,
        ["keys", "list"] => LIST_USAGE,
        ["token"] => TOKEN_USAGE,
        ["token", "issue"] => ISSUE_USAGE,
        ["token", "check"] => CHECK_USAGE,
        ["jwks"] => JWKS_USAGE,
        ["config"] => CONFIG_USAGE,
        ["config", "check"] => CONFIG_CHECK_USAGE,
        _ => return None,
    })
}

/// Parses a command's arguments; `Ok(None)` means help was printed.
fn parse_or_help(
    args: &[String],
    flags: &[Flag],
    command: &'static str,
) -> Result<Option<Parsed>, CliError> {
    match args::parse(args, flags).map_err(CliError::usage(command))? {
        Outcome::Help => Ok(None),
        Outcome::Run(parsed) => Ok(Some(parsed)),
    }
}

fn keys_generate(args: &[String]) -> Result<Output, CliError> {
    const CMD: &str = "aml-auth keys generate";
    let Some(p) = parse_or_help(args, &[], CMD)? else {
        return help(GENERATE_USAGE);
    };
    p.at_most_positionals(0).map_err(CliError::usage(CMD))?;
    let key = generate_key()
        .map_err(|e| CliError::fail(format!("cannot read random bytes from the OS: {e}")))?;
    let digest = KeyDigest::of(key.as_bytes()).to_configured();
    Ok(vec![key, digest].into())
}

fn keys_regen(args: &[String]) -> Result<Output, CliError> {
    const CMD: &str = "aml-auth keys regen";
    let flags = [
        Flag::value("--config"),
        Flag::value("--service"),
        Flag::switch("--hashed"),
        Flag::value("--envoy-ecds"),
    ];
    let Some(p) = parse_or_help(args, &flags, CMD)? else {
        return help(REGEN_USAGE);
    };
    let usage = CliError::usage(CMD);
    let slot = match p.positionals.first().map(String::as_str) {
        Some("primary") => KeySlot::Primary,
        Some("secondary") => KeySlot::Secondary,
        Some(other) => {
            return Err(usage(format!(
                "which key: expected `primary` or `secondary`, found `{other}`"
            )))
        }
        None => return Err(usage("which key: expected `primary` or `secondary`".into())),
    };
    p.at_most_positionals(1).map_err(&usage)?;
    let config = p.required("--config").map_err(&usage)?;
    let service = p.value("--service");
    if service == Some("") {
        return Err(usage("--service: the name is empty".into()));
    }
    let req = keys::Regen {
        slot,
        config: Path::new(config),
        service,
        hashed: p.switch("--hashed"),
        envoy_ecds: p.value("--envoy-ecds").map(Path::new),
    };
    Ok(Output {
        lines: vec![keys::regen(&req)?],
        status: 0,
        essential: true,
    })
}

fn keys_list(args: &[String]) -> Result<Output, CliError> {
    const CMD: &str = "aml-auth keys list";
    let Some(p) = parse_or_help(args, &[Flag::value("--config")], CMD)? else {
        return help(LIST_USAGE);
    };
    p.at_most_positionals(0).map_err(CliError::usage(CMD))?;
    let config = p.required("--config").map_err(CliError::usage(CMD))?;
    keys::list(Path::new(config)).map(Output::from)
}

fn token_issue(args: &[String]) -> Result<Output, CliError> {
    const CMD: &str = "aml-auth token issue";
    let flags = [
        Flag::value("--signing-key"),
        Flag::value("--issuer"),
        Flag::value("--audience"),
        Flag::value("--ttl"),
        Flag::repeated("--claim"),
        Flag::repeated("--claim-json"),
        Flag::value("--kid"),
        Flag::value("--alg"),
        Flag::value("--subject"),
    ];
    let Some(p) = parse_or_help(args, &flags, CMD)? else {
        return help(ISSUE_USAGE);
    };
    let usage = CliError::usage(CMD);
    p.at_most_positionals(0).map_err(&usage)?;
    let non_empty = |flag: &str| -> Result<Option<&str>, CliError> {
        match p.value(flag) {
            Some("") => Err(usage(format!("{flag}: the value is empty"))),
            other => Ok(other),
        }
    };
    let signing_key = p.required("--signing-key").map_err(&usage)?;
    let issuer = p.required("--issuer").map_err(&usage)?;
    let audience = p.required("--audience").map_err(&usage)?;
    let ttl = token::parse_ttl(p.required("--ttl").map_err(&usage)?).map_err(&usage)?;
    for flag in ["--issuer", "--audience"] {
        non_empty(flag)?;
    }
    let kid = non_empty("--kid")?;
    let subject = non_empty("--subject")?;
    let alg = p
        .value("--alg")
        .map(token::parse_alg)
        .transpose()
        .map_err(&usage)?;
    let claims = token::parse_claims(&p.all("--claim"), &p.all("--claim-json")).map_err(&usage)?;
    let req = token::Issue {
        signing_key: Path::new(signing_key),
        issuer,
        audience,
        ttl,
        claims,
        kid,
        alg,
        subject,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| CliError::fail("the system clock is before 1970"))?
        .as_secs();
    let now = i64::try_from(now).map_err(|_| CliError::fail("the system clock is out of range"))?;
    let issued = token::issue(&req, now)?;
    Ok(vec![
        issued.token,
        format!(
            "refresh_by={} {}",
            issued.refresh_by,
            token::rfc3339(issued.refresh_by)
        ),
    ]
    .into())
}

fn token_check(args: &[String]) -> Result<Output, CliError> {
    const CMD: &str = "aml-auth token check";
    let flags = [
        Flag::value("--config"),
        Flag::value("--service"),
        Flag::value("--path"),
        Flag::value("--host"),
        Flag::value("--route"),
        Flag::value("--cluster"),
        Flag::value("--jwks"),
        Flag::value("--at"),
    ];
    let Some(p) = parse_or_help(args, &flags, CMD)? else {
        return help(CHECK_USAGE);
    };
    let usage = CliError::usage(CMD);
    let config = p.required("--config").map_err(&usage)?;
    p.at_most_positionals(1).map_err(&usage)?;
    let token_arg = p
        .positionals
        .first()
        .ok_or_else(|| usage("TOKEN is required (`-` reads it from stdin)".into()))?;
    let (service, path, host) = (p.value("--service"), p.value("--path"), p.value("--host"));
    let (route, cluster) = (p.value("--route"), p.value("--cluster"));
    for (flag, value) in [("--route", route), ("--cluster", cluster)] {
        if value == Some("") {
            return Err(usage(format!("{flag}: the name is empty")));
        }
    }
    let requested = path.is_some() || route.is_some() || cluster.is_some();
    let target = match service {
        Some(_) if requested || host.is_some() => {
            return Err(usage(
                "give --service, or --path/--route/--cluster, not both".into(),
            ));
        }
        Some("") => return Err(usage("--service: the name is empty".into())),
        Some(name) => check::Target::Service(name),
        None if host.is_some() && path.is_none() => {
            return Err(usage("--host goes with --path".into()))
        }
        None if requested => {
            if let Some(path) = path.filter(|p| !p.starts_with('/')) {
                return Err(usage(format!("--path: `{path}` does not start with `/`")));
            }
            check::Target::Request {
                path,
                host: host.unwrap_or(""),
                route,
                cluster,
            }
        }
        None => check::Target::Default,
    };
    let at = match p.value("--at") {
        Some(text) => check::parse_at(text).map_err(&usage)?,
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| CliError::fail("the system clock is before 1970"))?
                .as_secs();
            i64::try_from(now).map_err(|_| CliError::fail("the system clock is out of range"))?
        }
    };
    let stdin_token;
    let token = if token_arg == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| CliError::fail(format!("cannot read the token from stdin: {e}")))?;
        stdin_token = text.trim().to_string();
        stdin_token.as_str()
    } else {
        token_arg.as_str()
    };
    if token.is_empty() {
        return Err(usage("TOKEN is empty".into()));
    }
    let req = check::Request {
        config: Path::new(config),
        target,
        jwks: p.value("--jwks").map(Path::new),
        at,
        token,
    };
    let report = check::check(&req)?;
    Ok(Output {
        lines: report.lines,
        status: if report.allowed { 0 } else { 1 },
        essential: false,
    })
}

fn config_check(args: &[String]) -> Result<Output, CliError> {
    const CMD: &str = "aml-auth config check";
    let Some(p) = parse_or_help(args, &[Flag::value("--envoy")], CMD)? else {
        return help(CONFIG_CHECK_USAGE);
    };
    let usage = CliError::usage(CMD);
    p.at_most_positionals(1).map_err(&usage)?;
    let file = p.positionals.first().map(String::as_str);
    let envoy_path = p.value("--envoy");
    if file.is_none() && envoy_path.is_none() {
        return Err(usage(
            "FILE is required (`-` reads stdin), or --envoy ENVOY_JSON to check its inline plugin configurations".into(),
        ));
    }
    let envoy = match envoy_path {
        None => None,
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| CliError::fail(format!("cannot read --envoy {path}: {e}")))?;
            let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                CliError::fail(format!(
                    "--envoy {path} is not JSON ({e}): give the Envoy configuration as JSON (Envoy reads JSON too; YAML converts with e.g. python3 -c 'import json,sys,yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)')"
                ))
            })?;
            Some((path, value))
        }
    };
    let mut sources = Vec::new();
    match file {
        Some(name) => {
            let (shown, bytes) = if name == "-" {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                    .map_err(|e| CliError::fail(format!("cannot read stdin: {e}")))?;
                ("stdin".to_string(), bytes)
            } else {
                let bytes = std::fs::read(name)
                    .map_err(|e| CliError::fail(format!("cannot read {name}: {e}")))?;
                (name.to_string(), bytes)
            };
            match config_check::ecds_configs(&bytes) {
                Some(found) if found.is_empty() => {
                    return Err(CliError::fail(format!(
                        "{shown} is an Envoy ECDS file without a Wasm resource holding a plugin configuration"
                    )))
                }
                Some(found) => sources.extend(found.into_iter().map(|(res, text)| {
                    config_check::Source {
                        shown: format!("{shown} (ECDS resource `{res}`)"),
                        text: text.into_bytes(),
                    }
                })),
                None => sources.push(config_check::Source {
                    shown,
                    text: bytes,
                }),
            }
        }
        None => {
            if let Some((path, value)) = &envoy {
                let found = config_check::envoy_configs(value);
                if found.is_empty() {
                    return Err(CliError::fail(format!(
                        "--envoy {path} inlines no Wasm plugin configuration (one taking the filter from ECDS: give the ECDS file or the plugin configuration as FILE)"
                    )));
                }
                sources.extend(found.into_iter().map(|(name, text)| config_check::Source {
                    shown: format!("{path} (filter `{name}`)"),
                    text: text.into_bytes(),
                }));
            }
        }
    }
    let mut lines = Vec::new();
    let mut valid = true;
    for source in &sources {
        let checked = config_check::check(source, envoy.as_ref().map(|(_, v)| v));
        valid &= checked.valid;
        lines.extend(checked.lines);
    }
    Ok(Output {
        lines,
        status: if valid { 0 } else { 1 },
        essential: false,
    })
}

fn jwks(args: &[String]) -> Result<Output, CliError> {
    const CMD: &str = "aml-auth jwks";
    let Some(p) = parse_or_help(args, &[Flag::repeated("--signing-key")], CMD)? else {
        return help(JWKS_USAGE);
    };
    p.at_most_positionals(0).map_err(CliError::usage(CMD))?;
    let paths: Vec<&Path> = p.all("--signing-key").into_iter().map(Path::new).collect();
    if paths.is_empty() {
        return Err(CliError::usage(CMD)("`--signing-key` is required".into()));
    }
    let set = token::jwks(&paths)?;
    let text = serde_json::to_string_pretty(&set).map_err(|e| CliError::fail(e.to_string()))?;
    Ok(vec![text].into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn run_words(words: &[&str]) -> Result<Output, CliError> {
        let args: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        run(&args)
    }

    #[test]
    fn every_command_has_help() {
        let cases: &[(&[&str], &str)] = &[
            (&["--help"], TOP_USAGE),
            (&["-h"], TOP_USAGE),
            (&["help"], TOP_USAGE),
            (&["keys", "--help"], KEYS_USAGE),
            (&["keys", "generate", "-h"], GENERATE_USAGE),
            (&["keys", "regen", "--help"], REGEN_USAGE),
            (
                &["keys", "regen", "primary", "--config", "x", "-h"],
                REGEN_USAGE,
            ),
            (&["keys", "list", "--help"], LIST_USAGE),
            (&["token", "-h"], TOKEN_USAGE),
            (&["token", "issue", "--help"], ISSUE_USAGE),
            (&["token", "check", "--help"], CHECK_USAGE),
            (&["help", "token", "check"], CHECK_USAGE),
            (&["jwks", "--help"], JWKS_USAGE),
            (&["help", "keys", "regen"], REGEN_USAGE),
            (&["help", "jwks"], JWKS_USAGE),
            (&["config", "--help"], CONFIG_USAGE),
            (&["config", "check", "-h"], CONFIG_CHECK_USAGE),
            (&["help", "config", "check"], CONFIG_CHECK_USAGE),
        ];
        for (words, want) in cases {
            assert_eq!(
                run_words(words).unwrap().lines,
                [want.trim_end()],
                "{words:?}"
            );
        }
    }

    #[test]
    fn usage_errors_name_the_command() {
        let cases: &[(&[&str], &str, &str)] = &[
            (&[], "aml-auth", "no command"),
            (&["bogus"], "aml-auth", "unknown command `bogus`"),
            (&["help", "bogus"], "aml-auth", "no command `bogus`"),
            (&["keys"], "aml-auth keys", "missing subcommand"),
            (&["keys", "rotate"], "aml-auth keys", "`keys rotate`"),
            (
                &["keys", "generate", "extra"],
                "aml-auth keys generate",
                "unexpected argument",
            ),
            (
                &["keys", "regen"],
                "aml-auth keys regen",
                "`primary` or `secondary`",
            ),
            (
                &["keys", "regen", "tertiary", "--config", "c"],
                "aml-auth keys regen",
                "found `tertiary`",
            ),
            (
                &["keys", "regen", "primary"],
                "aml-auth keys regen",
                "`--config` is required",
            ),
            (
                &["keys", "regen", "primary", "secondary", "--config", "c"],
                "aml-auth keys regen",
                "unexpected argument `secondary`",
            ),
            (
                &["keys", "regen", "primary", "--config", "c", "--service", ""],
                "aml-auth keys regen",
                "--service",
            ),
            (
                &["keys", "regen", "primary", "--config", "c", "--force"],
                "aml-auth keys regen",
                "unknown option `--force`",
            ),
            (
                &["keys", "list"],
                "aml-auth keys list",
                "`--config` is required",
            ),
            (&["token"], "aml-auth token", "missing subcommand"),
            (&["token", "verify"], "aml-auth token", "`token verify`"),
            (
                &[
                    "token",
                    "issue",
                    "--issuer",
                    "i",
                    "--audience",
                    "a",
                    "--ttl",
                    "60",
                ],
                "aml-auth token issue",
                "`--signing-key` is required",
            ),
            (
                &[
                    "token",
                    "issue",
                    "--signing-key",
                    "k",
                    "--issuer",
                    "i",
                    "--audience",
                    "a",
                    "--ttl",
                    "0",
                ],
                "aml-auth token issue",
                "--ttl",
            ),
            (
                &[
                    "token",
                    "issue",
                    "--signing-key",
                    "k",
                    "--issuer",
                    "",
                    "--audience",
                    "a",
                    "--ttl",
                    "5",
                ],
                "aml-auth token issue",
                "--issuer: the value is empty",
            ),
            (
                &[
                    "token",
                    "issue",
                    "--signing-key",
                    "k",
                    "--issuer",
                    "i",
                    "--audience",
                    "a",
                    "--ttl",
                    "5",
                    "--alg",
                    "none",
                ],
                "aml-auth token issue",
                "unsupported algorithm",
            ),
            (
                &[
                    "token",
                    "issue",
                    "--signing-key",
                    "k",
                    "--issuer",
                    "i",
                    "--audience",
                    "a",
                    "--ttl",
                    "5",
                    "--claim",
                    "exp=1",
                ],
                "aml-auth token issue",
                "cannot be overridden",
            ),
            (&["jwks"], "aml-auth jwks", "`--signing-key` is required"),
            (&["jwks", "--signing-key"], "aml-auth jwks", "needs a value"),
        ];
        for (words, want_command, fragment) in cases {
            match run_words(words) {
                Err(CliError::Usage { message, command }) => {
                    assert_eq!(command, *want_command, "{words:?}");
                    assert!(message.contains(fragment), "{words:?}: {message}");
                }
                other => panic!("{words:?}: expected a usage error, got {other:?}"),
            }
        }
    }
}
