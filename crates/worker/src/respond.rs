//! Building responses: errors (in the configured dialect, see [`keygate_core::dialect`]), CORS
//! preflights, and labelling proxied responses.

use worker::{console_log, web_sys, Headers, Response, ResponseBuilder, Result};

use keygate_core::config::Config;
use keygate_core::cors;
use keygate_core::dialect::{Refusals, JSON};
use keygate_core::error::GatewayError;
use keygate_core::timestamp::Timestamp;

use crate::Incoming;

/// Structured log line. Never pass key material here: only ids, codes and hash prefixes.
pub fn log_event(event: &str, request_id: &str, fields: &[(&str, &str)]) {
    let mut line = serde_json::Map::new();
    line.insert("event".into(), event.into());
    line.insert("requestId".into(), request_id.into());
    for (name, value) in fields {
        line.insert((*name).into(), (*value).into());
    }
    console_log!("{}", serde_json::Value::Object(line));
}

/// `builder` (which has no headers yet) with `headers`, set in order into one `Headers` object.
/// (Not `with_header` per header: keeping the builder on a failed one would mean cloning it, and
/// a clone copies its whole JS `Headers` every time.)
fn with_headers(builder: ResponseBuilder, headers: &[(&str, String)]) -> ResponseBuilder {
    let set = Headers::new();
    for (name, value) in headers {
        // Values come from config and our own formatting; a failure leaves the header out.
        let _ = set.set(name, value);
    }
    builder.with_headers(set)
}

/// The error answer.
pub fn error(error: &GatewayError, incoming: &Incoming, config: Option<&Config>) -> Result<Response> {
    error_with(error, incoming, config, &[])
}

/// The error answer with extra headers (rate-limit headers of a refused request). With a config
/// (a gateway refusal) it is rendered in the configured dialect; without one (the admin API, an
/// invalid config) in keygate's own shape.
pub fn error_with(
    error: &GatewayError,
    incoming: &Incoming,
    config: Option<&Config>,
    extra: &[(&'static str, String)],
) -> Result<Response> {
    let timestamp = Timestamp(incoming.now_ms).to_rfc3339();
    let rendered = match config {
        Some(config) => config.refusals.render(error, incoming.request_id(), &timestamp),
        None => Refusals::default().render(error, incoming.request_id(), &timestamp),
    };
    let mut headers = Vec::new();
    if let Some(challenge) = rendered.www_authenticate {
        headers.push(("www-authenticate", challenge));
    }
    if let Some(config) = config {
        headers.extend(cors::response_headers(&config.cors, incoming.origin.as_deref()));
    }
    headers.extend(extra.iter().cloned());
    answer(rendered.status, rendered.content_type, rendered.body, incoming, &headers)
}

/// A JSON answer produced by keygate itself (admin API).
pub fn json(status: u16, body: String, incoming: &Incoming) -> Result<Response> {
    answer(status, JSON, body, incoming, &[])
}

/// Every answer keygate produces itself: no-store, the request id, no body for `HEAD`.
fn answer(status: u16, content_type: &str, body: String, incoming: &Incoming, extra: &[(&'static str, String)]) -> Result<Response> {
    let mut headers = vec![
        ("content-type", content_type.to_string()),
        ("cache-control", "no-store".to_string()),
        ("x-request-id", incoming.request_id().to_string()),
    ];
    headers.extend(extra.iter().cloned());
    let body = if incoming.method == "HEAD" { Vec::new() } else { body.into_bytes() };
    Ok(with_headers(Response::builder().with_status(status), &headers).fixed(body))
}

/// A CORS preflight, answered from config without a key.
pub fn preflight(config: &Config, incoming: &Incoming) -> Result<Response> {
    let headers = cors::preflight_headers(&config.cors, incoming.origin.as_deref());
    Ok(with_headers(Response::builder().with_status(204), &headers).empty())
}

/// The origin's response, with rate-limit headers and (for an allowed browser origin) CORS
/// headers added.
pub fn proxied(response: Response, config: &Config, incoming: &Incoming, limit_headers: &[(&'static str, String)]) -> Result<Response> {
    let mut extra = cors::response_headers(&config.cors, incoming.origin.as_deref());
    extra.extend(limit_headers.iter().cloned());
    if extra.is_empty() {
        return Ok(response);
    }
    // Fetched responses have immutable headers: copy them into a fresh set first.
    let headers = web_sys::Headers::new_with_headers(&response.headers().0)?;
    for (name, value) in &extra {
        // `Vary` lists are merged with the origin's; the rest are ours to set.
        if *name == "vary" {
            headers.append(name, value)?;
        } else {
            headers.set(name, value)?;
        }
    }
    Ok(response.with_headers(Headers(headers)))
}
