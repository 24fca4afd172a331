//! Reading a finished JWKS or discovery call through fallible host calls: its status, validators
//! and body, classified into a typed answer or fetch failure by the pure `jwks_cache` code.

use proxy_wasm::types::LogLevel;

use super::{abi, log};
use crate::token::jwks_cache::{self, CallHead, FetchFailure, Head, Validators};

/// Which document a call fetches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// A source's OpenID Connect discovery document.
    Document,
    /// The key set.
    Keys,
}

/// A call's answer that is not a failure.
pub(super) enum Response {
    /// A 200 with its body.
    Body(Vec<u8>, Received),
    /// A 304 to a conditional request.
    NotModified(Received),
}

/// The validators a response carried.
pub(super) struct Received {
    etag: Option<String>,
    last_modified: Option<String>,
}

impl Received {
    fn read() -> Received {
        let header = |name| {
            abi::get_header(abi::HTTP_CALL_RESPONSE_HEADERS, name)
                .ok()
                .flatten()
                .and_then(|v| String::from_utf8(v).ok())
                .filter(|v| {
                    !v.is_empty() && v.len() <= 256 && v.bytes().all(|b| (0x20..0x7f).contains(&b))
                })
        };
        Received {
            etag: header("etag"),
            last_modified: header("last-modified"),
        }
    }

    /// The validators to keep for a set fetched from `location`.
    pub(super) fn at(self, location: String) -> Validators {
        Validators {
            location,
            etag: self.etag,
            last_modified: self.last_modified,
        }
    }
}

/// The validators after a 304: its own, or when it carried none, the ones it answered.
pub(super) fn with_held(answered: Validators, held: Validators) -> Validators {
    if answered.etag.is_none() && answered.last_modified.is_none() {
        held
    } else {
        answered
    }
}

/// Reads a finished call through fallible host calls only, classifying what went wrong.
pub(super) fn read_call(
    body_size: usize,
    conditional: bool,
    now: u64,
) -> Result<Response, FetchFailure> {
    let header = |name| {
        abi::get_header(abi::HTTP_CALL_RESPONSE_HEADERS, name)
            .ok()
            .flatten()
    };
    let status = header(":status");
    let retry_after = header("retry-after");
    let host_status = abi::get_status().ok();
    let error_body = match status.as_deref() {
        Some(b"503") if body_size > 0 => abi::get_buffer(
            abi::HTTP_CALL_RESPONSE_BODY,
            0,
            body_size.min(jwks_cache::ERROR_BODY_BYTES),
        )
        .ok()
        .flatten(),
        _ => None,
    };
    let head = jwks_cache::classify_head(&CallHead {
        status: status.as_deref(),
        host_status: host_status.as_ref().map(|(c, m)| (*c, m.as_slice())),
        body_size,
        retry_after: retry_after.as_deref(),
        error_body: error_body.as_deref(),
        conditional,
        now_ms: now,
    });
    if let Err(failure) = &head {
        let host = host_status
            .as_ref()
            .map(|(code, message)| format!("{code} {:?}", String::from_utf8_lossy(message)))
            .unwrap_or_default();
        log(
            LogLevel::Info,
            &format!(
                "aml-auth-filter: call to the JWKS host ended: {} (status {}, host status {host}{})",
                failure.code(),
                status.as_deref().map(String::from_utf8_lossy).unwrap_or_default(),
                error_body
                    .as_deref()
                    .map(|b| format!(", body {:?}", String::from_utf8_lossy(b)))
                    .unwrap_or_default(),
            ),
        );
    }
    match head? {
        Head::NotModified => Ok(Response::NotModified(Received::read())),
        Head::Body => abi::get_buffer(abi::HTTP_CALL_RESPONSE_BODY, 0, body_size)
            .ok()
            .flatten()
            .map(|body| Response::Body(body, Received::read()))
            .ok_or(FetchFailure::BodyUnreadable),
    }
}

/// Checks a fetched key set, logging each key dropped.
pub(super) fn read_key_set(body: &[u8]) -> Result<(), FetchFailure> {
    let parsed = jwks_cache::classify_body(Some(body))?;
    for dropped in &parsed.dropped {
        log(
            LogLevel::Info,
            &format!(
                "aml-auth-filter: JWKS key {} (kid {:?}) dropped: {}",
                dropped.index,
                dropped.kid,
                dropped.reason.as_str()
            ),
        );
    }
    Ok(())
}
