//! `keygate-demo demo-origin`: a loopback stand-in for the CMS origin behind keygate.
//!
//! Every request except `GET /__health` must carry a valid `X-Keygate-Identity` token made for
//! this origin's audience and this request ([`keygate_core::signature::verify`]); anything else gets
//! `401 ORIGIN_SIGNATURE_INVALID`. The audience is the origin's own URL: by default
//! `http://<address it listens on>` as it prints it, or the `--audience` URL (needed when the
//! gateway reaches it under another name, e.g. behind a proxy). The project of a request is the
//! project of its verified identity. Routes:
//!
//! | method        | path                                            | answer                              |
//! |---------------|-------------------------------------------------|-------------------------------------|
//! | GET, HEAD     | `/__health`                                     | `{"ok":true,"label":…}`, unsigned   |
//! | GET, HEAD     | `/v1/public/cms/:type/items[?limit=N]`          | published items of the project      |
//! | GET, HEAD     | `/v1/public/cms/:type/items/:id[/…]`            | one published item (id or slug)     |
//! | GET, HEAD     | `/v1/projects/:project/public/cms/:type/items`  | list; `:project` must be the signed one (else 403) |
//! | POST          | `/v1/cms/:type/items`                           | 201 `{"created":<body>,…}`          |
//! | any           | `/__echo`, `/__echo/…`                          | echo of method, path, headers, body, identity |
//! | any           | `/__status/:code`                               | that status (clamped to 200–599)    |
//!
//! Anything else is `404 NOT_FOUND`. Every JSON body has `"origin": <label>` and every response
//! has an `x-origin-label` header, so tests can tell the live origin from the test origin.
//! Drafts in the sample data are never returned.
//!
//! The request handling ([`route`], [`handle`]) is pure; [`serve`] is a small HTTP/1.1 server
//! around it (a thread per connection, keep-alive).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use keygate_core::signature::{self, Audience, SignedIdentity, VerifyError};
use serde_json::{json, Map, Value};

/// Largest request body the demo origin reads.
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;

/// How to run the demo origin.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on (0 picks a free port).
    pub port: u16,
    /// Label put in every response.
    pub label: String,
    /// The gateway's secret for this origin: `ORIGIN_SIGNING_SECRET` for the live origin,
    /// `ORIGIN_SIGNING_SECRET_TEST` (if set) for the test origin.
    pub secret: Vec<u8>,
    /// The URL the gateway forwards to (its `ORIGIN_URL` / `ORIGIN_URL_TEST`), whose audience
    /// signatures must be made for. `None`: `http://<listening address>`.
    pub audience: Option<String>,
}

/// A request as the origin received it, independent of the HTTP library.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginRequest {
    /// HTTP method, as sent (uppercase for standard methods).
    pub method: String,
    /// Request target: path plus `?query`, exactly as received.
    pub path_and_query: String,
    /// Lowercase header name → value; a repeated header's values are joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// Request body.
    pub body: Vec<u8>,
}

impl OriginRequest {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.path_and_query.split_once('?').map_or(self.path_and_query.as_str(), |(path, _)| path)
    }

    /// The query after `?`, or `""`.
    pub fn query(&self) -> &str {
        self.path_and_query.split_once('?').map_or("", |(_, query)| query)
    }
}

/// A response: status and JSON body (`content-type` and `x-origin-label` are added by [`serve`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OriginResponse {
    /// HTTP status code.
    pub status: u16,
    /// JSON body; always an object carrying `"origin"`.
    pub body: Value,
}

/// What a method and path ask for. Path segments borrow from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET|HEAD /__health`.
    Health,
    /// `GET|HEAD /v1/public/cms/:type/items`.
    List {
        /// Content type, e.g. `articles`.
        kind: &'a str,
    },
    /// `GET|HEAD /v1/public/cms/:type/items/:id` and deeper paths under it.
    Item {
        /// Content type.
        kind: &'a str,
        /// Item id or slug.
        id: &'a str,
    },
    /// `GET|HEAD /v1/projects/:project/public/cms/:type/items`.
    ProjectList {
        /// Project named in the path.
        project: &'a str,
        /// Content type.
        kind: &'a str,
    },
    /// `POST /v1/cms/:type/items`.
    Create {
        /// Content type.
        kind: &'a str,
    },
    /// Any method on `/__echo` or `/__echo/…`.
    Echo,
    /// Any method on `/__status/:code`, with the code clamped to 200–599.
    Status(u16),
    /// Any method on `/__slow/:ms`: answers after `ms` milliseconds (at most 30 000), to test
    /// the gateway's origin timeout.
    Slow(u64),
    /// Any method on another `/v1/<resource>/…` path (not `public`, `cms` or `projects`): the
    /// surfaces of the seed profiles (`/v1/sites`, `/v1/posts`, `/v1/articles`, …). Answers what
    /// it received and who the signed identity is, so a test can see that a request got through.
    Resource {
        /// The first path segment after `/v1/`.
        resource: &'a str,
    },
    /// Nothing matches.
    NotFound,
}

/// Matches a method and a path (without query) to a [`Route`]. Pure.
/// Longest delay `/__slow/:ms` will wait.
pub const MAX_SLOW_MS: u64 = 30_000;

pub fn route<'a>(method: &str, path: &'a str) -> Route<'a> {
    let Some(rest) = path.strip_prefix('/') else {
        return Route::NotFound;
    };
    let segments: Vec<&'a str> = rest.split('/').collect();
    let read = matches!(method, "GET" | "HEAD");
    let named = |s: &&str| !s.is_empty();
    match segments.as_slice() {
        ["__health"] if read => Route::Health,
        ["__echo", ..] => Route::Echo,
        ["__status", code] => code.parse::<u64>().map_or(Route::NotFound, |c| Route::Status(clamp_status(c))),
        ["__slow", ms] => ms.parse::<u64>().map_or(Route::NotFound, |ms| Route::Slow(ms.min(MAX_SLOW_MS))),
        ["v1", "public", "cms", kind, "items"] if read && named(kind) => Route::List { kind },
        ["v1", "public", "cms", kind, "items", id, ..] if read && named(kind) && named(id) => Route::Item { kind, id },
        ["v1", "projects", project, "public", "cms", kind, "items"] if read && named(project) && named(kind) => {
            Route::ProjectList { project, kind }
        }
        ["v1", "cms", kind, "items"] if method == "POST" && named(kind) => Route::Create { kind },
        ["v1", resource, rest @ ..] if named(resource) && !matches!(*resource, "public" | "cms" | "projects") && rest.iter().all(named) => {
            Route::Resource { resource }
        }
        _ => Route::NotFound,
    }
}

/// Clamps a requested status to what can be a final response: 1xx are informational only.
fn clamp_status(code: u64) -> u16 {
    // The clamp guarantees the value fits in u16.
    u16::try_from(code.clamp(200, 599)).unwrap_or(599)
}

/// One sample CMS item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// Owning project.
    pub project: &'static str,
    /// Content type (`articles`, `pages`).
    pub kind: &'static str,
    /// Item id.
    pub id: &'static str,
    /// URL slug.
    pub slug: &'static str,
    /// Title.
    pub title: &'static str,
    /// `published` or `draft`; drafts are never returned.
    pub status: &'static str,
}

const fn item(
    project: &'static str,
    kind: &'static str,
    id: &'static str,
    slug: &'static str,
    title: &'static str,
    status: &'static str,
) -> Item {
    Item { project, kind, id, slug, title, status }
}

/// The built-in sample content: projects `acme` and `globex`, types `articles` and `pages`.
pub const SAMPLE_ITEMS: &[Item] = &[
    item("acme", "articles", "1", "hello-world", "Hello, world", "published"),
    item("acme", "articles", "2", "launch-notes", "Launch notes", "published"),
    item("acme", "articles", "3", "secret-roadmap", "Secret roadmap (draft)", "draft"),
    item("acme", "articles", "4", "pricing-update", "Pricing update", "published"),
    item("acme", "pages", "1", "about", "About Acme", "published"),
    item("acme", "pages", "2", "careers", "Careers (draft)", "draft"),
    item("acme", "pages", "3", "contact", "Contact", "published"),
    item("globex", "articles", "1", "globex-news", "Globex news", "published"),
    item("globex", "articles", "2", "merger-plans", "Merger plans (draft)", "draft"),
    item("globex", "pages", "1", "home", "Globex home", "published"),
];

impl Item {
    /// The public JSON form.
    pub fn json(self) -> Value {
        json!({"id": self.id, "slug": self.slug, "title": self.title, "status": self.status})
    }
}

/// Published items of one project and type, in sample order.
pub fn published_items<'a>(project: &'a str, kind: &'a str) -> impl Iterator<Item = &'static Item> + 'a {
    SAMPLE_ITEMS.iter().filter(move |i| i.project == project && i.kind == kind && i.status == "published")
}

/// Answers one request at `now_seconds`, accepting signatures made with `secret` for `audience`.
/// Pure: no I/O, no clock.
pub fn handle(request: &OriginRequest, label: &str, secret: &[u8], audience: &Audience, now_seconds: u64) -> OriginResponse {
    let mut response = dispatch(request, label, secret, audience, now_seconds);
    if let Value::Object(map) = &mut response.body {
        map.insert("origin".into(), Value::String(label.to_string()));
    }
    response
}

fn dispatch(request: &OriginRequest, label: &str, secret: &[u8], audience: &Audience, now_seconds: u64) -> OriginResponse {
    let route = route(&request.method, request.path());
    if route == Route::Health {
        return ok(200, json!({"ok": true, "label": label}));
    }
    let token = request.headers.get(signature::HEADER_IDENTITY).map(String::as_str);
    let identity = match signature::verify(
        secret,
        audience,
        &request.method,
        &request.path_and_query,
        token,
        now_seconds,
        signature::DEFAULT_LEEWAY_SECONDS,
    ) {
        Ok(identity) => identity,
        Err(e) => return signature_error(e),
    };
    let project = identity.project.as_str();
    match route {
        Route::Health => ok(200, json!({"ok": true, "label": label})),
        Route::List { kind } => list(project, kind, request.query()),
        Route::ProjectList { project: wanted, kind } if wanted == project => list(project, kind, request.query()),
        Route::ProjectList { project: wanted, .. } => error(
            403,
            "FORBIDDEN",
            "the path names another project than the signed identity",
            json!({"path_project": wanted, "signed_project": project}),
        ),
        Route::Item { kind, id } => match published_items(project, kind).find(|i| i.id == id || i.slug == id) {
            Some(item) => ok(200, json!({"project": project, "type": kind, "item": item.json()})),
            None => not_found("no published item with that id"),
        },
        Route::Create { kind } => {
            let created = serde_json::from_slice::<Value>(&request.body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&request.body).into_owned()));
            ok(201, json!({"created": created, "project": project, "type": kind}))
        }
        Route::Echo => ok(200, echo(request, &identity)),
        Route::Status(code) => ok(code, json!({"status": code, "message": "status requested via /__status"})),
        Route::Slow(ms) => ok(200, json!({"slept_ms": ms})),
        Route::Resource { resource } => {
            let status = if request.method == "POST" { 201 } else { 200 };
            let who = json!({"key_id": identity.key_id, "project": identity.project, "env": identity.env, "scopes": identity.scopes});
            ok(status, json!({"resource": resource, "method": request.method, "path": request.path(), "identity": who}))
        }
        Route::NotFound => not_found("no such route on the demo origin"),
    }
}

fn list(project: &str, kind: &str, query: &str) -> OriginResponse {
    let limit = query_param(query, "limit").and_then(|v| v.parse::<usize>().ok()).unwrap_or(usize::MAX);
    let items: Vec<Value> = published_items(project, kind).take(limit).copied().map(Item::json).collect();
    ok(200, json!({"project": project, "type": kind, "items": items}))
}

/// First value of `name` in a query string (no percent-decoding; the demo needs none).
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

fn echo(request: &OriginRequest, identity: &SignedIdentity) -> Value {
    let headers: Map<String, Value> = request.headers.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    json!({
        "method": request.method,
        "path": request.path(),
        "query": request.query(),
        "path_and_query": request.path_and_query,
        "headers": headers,
        "body": String::from_utf8_lossy(&request.body),
        "identity": {
            "audience": identity.audience,
            "key_id": identity.key_id,
            "project": identity.project,
            "env": identity.env,
            "scopes": identity.scopes,
            "issued_at": identity.issued_at,
            "expires_at": identity.expires_at,
            "method": identity.method,
            "path_and_query": identity.path_and_query,
        },
    })
}

fn signature_error(e: VerifyError) -> OriginResponse {
    let message = match e {
        VerifyError::Missing => "no X-Keygate-Identity header",
        VerifyError::Malformed => "the identity token is not a token keygate issues",
        VerifyError::Algorithm => "the identity token's header is not {\"alg\":\"HS256\",\"typ\":\"JWT\"}",
        VerifyError::Signature => "the identity token's signature does not match (another secret, or a changed claim)",
        VerifyError::Audience => "the identity token was made for another origin",
        VerifyError::Request => "the identity token was made for another method, path or query",
        VerifyError::Expired => "the identity token has expired",
        VerifyError::NotYetValid => "the identity token was issued in the future (clock skew?)",
    };
    error(401, "ORIGIN_SIGNATURE_INVALID", message, json!({"reason": e.reason()}))
}

fn ok(status: u16, body: Value) -> OriginResponse {
    OriginResponse { status, body }
}

fn error(status: u16, code: &str, message: &str, details: Value) -> OriginResponse {
    OriginResponse { status, body: json!({"error": {"code": code, "message": message, "details": details}}) }
}

fn not_found(message: &str) -> OriginResponse {
    error(404, "NOT_FOUND", message, json!({}))
}

/// Whether `label` can go into a header and a log line: 1–64 of `A-Z a-z 0-9 - _ .`.
pub fn is_valid_label(label: &str) -> bool {
    (1..=64).contains(&label.len()) && label.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The audience signatures must be made for: the `--audience` URL if given, else this origin's
/// own URL, `http://<listening address>` (as printed at startup).
pub fn audience(flag: Option<&str>, listening: &str) -> Result<Audience, String> {
    match flag {
        Some(url) => {
            Audience::from_url(url).ok_or_else(|| format!("--audience {url:?} must be an http(s) URL with an ASCII host and a valid port"))
        }
        None => Audience::from_url(&format!("http://{listening}"))
            .ok_or_else(|| format!("listening address {listening:?} has no audience; pass --audience")),
    }
}

/// Listens on `options.host:options.port` and answers requests until the process is stopped:
/// one thread per connection, HTTP/1.1 with keep-alive.
///
/// It was `tiny_http` until a test run saw 5 of 10 concurrent forwarded requests get no answer
/// within the gateway's 15 s timeout. Not reproduced on its own; the suspect is `tiny_http`'s
/// task pool, where a connection's task runs for the connection's whole keep-alive life and a
/// new connection queued while the pool counts a waking thread as idle waits until some
/// connection closes. A thread per connection has no such queue.
pub fn serve(options: &Options) -> Result<(), String> {
    if !is_valid_label(&options.label) {
        return Err(format!("--label {:?} must be 1-64 characters of A-Z, a-z, 0-9, '-', '_' or '.'", options.label));
    }
    let listener = TcpListener::bind((options.host.as_str(), options.port))
        .map_err(|e| format!("cannot listen on {}:{}: {e}", options.host, options.port))?;
    let address = listener.local_addr().map_or_else(|_| format!("{}:{}", options.host, options.port), |a| a.to_string());
    let audience = audience(options.audience.as_deref(), &address)?;
    let site = Arc::new(Site { label: options.label.clone(), secret: options.secret.clone(), audience });
    eprintln!("demo origin ({}) accepts signatures for audience {}", site.label, site.audience.as_str());
    eprintln!("demo origin ({}) listening on http://{address}", site.label);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let site = Arc::clone(&site);
        std::thread::spawn(move || connection(stream, &site));
    }
    Ok(())
}

/// What every connection's thread needs.
struct Site {
    label: String,
    secret: Vec<u8>,
    audience: Audience,
}

/// Longest request head (request line and headers) read.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Answers the requests of one connection, in order, until the client closes it, asks to close
/// it, or sends something that is not HTTP/1.x.
fn connection(stream: TcpStream, site: &Site) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let (response, keep_alive) = match read_request(&mut reader) {
            Ok(None) => return,
            Ok(Some((request, keep_alive))) => (answer(&request, site), keep_alive),
            Err(Unreadable::TooLarge) => {
                (error(413, "PAYLOAD_TOO_LARGE", "request body too large", json!({"max_bytes": MAX_BODY_BYTES})), false)
            }
            Err(Unreadable::Malformed) => (error(400, "BAD_REQUEST", "could not read the request", json!({})), false),
        };
        if write_response(&mut writer, response, &site.label, keep_alive).is_err() || !keep_alive {
            return;
        }
    }
}

/// Why a request could not be read (the connection closes after the answer).
enum Unreadable {
    TooLarge,
    Malformed,
}

/// The next request on the connection and whether the connection stays open after it; `None`
/// when the client closed the connection between requests.
fn read_request(reader: &mut impl BufRead) -> Result<Option<(OriginRequest, bool)>, Unreadable> {
    let mut head = Vec::new();
    loop {
        let n = reader.read_until(b'\n', &mut head).map_err(|_| Unreadable::Malformed)?;
        if n == 0 {
            return if head.is_empty() { Ok(None) } else { Err(Unreadable::Malformed) };
        }
        if head == b"\r\n" {
            head.clear(); // a stray empty line between requests (RFC 9112 §2.2)
        } else if head.ends_with(b"\r\n\r\n") {
            break;
        } else if head.len() > MAX_HEAD_BYTES {
            return Err(Unreadable::Malformed);
        }
    }
    let mut slots = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut slots);
    if !matches!(parsed.parse(&head), Ok(httparse::Status::Complete(_))) {
        return Err(Unreadable::Malformed);
    }
    let (Some(method), Some(target), Some(minor)) = (parsed.method, parsed.path, parsed.version) else {
        return Err(Unreadable::Malformed);
    };
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for header in parsed.headers.iter() {
        let value = String::from_utf8_lossy(header.value);
        headers
            .entry(header.name.to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let connection = headers.get("connection").map(|v| v.to_ascii_lowercase()).unwrap_or_default();
    let keep_alive = if minor == 1 { !connection.contains("close") } else { connection.contains("keep-alive") };
    let body = if headers.get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        read_chunked(reader)?
    } else {
        let length: u64 = match headers.get("content-length") {
            None => 0,
            Some(value) => value.trim().parse().map_err(|_| Unreadable::Malformed)?,
        };
        if length > MAX_BODY_BYTES {
            return Err(Unreadable::TooLarge);
        }
        let mut body = vec![0; length as usize];
        reader.read_exact(&mut body).map_err(|_| Unreadable::Malformed)?;
        body
    };
    Ok(Some((OriginRequest { method: method.to_string(), path_and_query: target.to_string(), headers, body }, keep_alive)))
}

/// A `Transfer-Encoding: chunked` body, at most [`MAX_BODY_BYTES`].
fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, Unreadable> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|_| Unreadable::Malformed)?;
        let size = line.split(';').next().map(str::trim).unwrap_or("");
        let size = u64::from_str_radix(size, 16).map_err(|_| Unreadable::Malformed)?;
        if body.len() as u64 + size > MAX_BODY_BYTES {
            return Err(Unreadable::TooLarge);
        }
        if size == 0 {
            // Trailers, if any, up to the empty line.
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return Err(Unreadable::Malformed),
                    Ok(_) if line == "\r\n" || line == "\n" => return Ok(body),
                    Ok(_) => {}
                }
            }
        }
        let start = body.len();
        body.resize(start + size as usize, 0);
        reader.read_exact(&mut body[start..]).map_err(|_| Unreadable::Malformed)?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).map_err(|_| Unreadable::Malformed)?;
    }
}

/// The demo's answer to a request that was read in full.
fn answer(request: &OriginRequest, site: &Site) -> OriginResponse {
    let response = handle(request, &site.label, &site.secret, &site.audience, unix_seconds());
    // Sleep only for a verified request: the delay is the point of the route.
    if let (200, Route::Slow(ms)) = (response.status, route(&request.method, request.path())) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    eprintln!("demo origin ({}): {} {} -> {}", site.label, request.method, request.path(), response.status);
    response
}

/// Writes `response` as JSON with `"origin": <label>` and the `x-origin-label` header.
fn write_response(writer: &mut impl Write, response: OriginResponse, label: &str, keep_alive: bool) -> std::io::Result<()> {
    let mut body = response.body;
    if let Value::Object(map) = &mut body {
        map.entry("origin").or_insert_with(|| Value::String(label.to_string()));
    }
    let body = body.to_string();
    let connection = if keep_alive { "" } else { "connection: close\r\n" };
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\nx-origin-label: {label}\r\ncontent-length: {}\r\n{connection}\r\n",
        response.status,
        reason(response.status),
        body.len()
    );
    writer.write_all(head.as_bytes())?;
    writer.write_all(body.as_bytes())?;
    writer.flush()
}

/// A reason phrase (clients ignore it; RFC 9112 §4).
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Content Too Large",
        _ => "Status",
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use keygate_core::signature::{HEADER_IDENTITY, TOKEN_LIFETIME_SECONDS};

    const SECRET: &[u8] = b"0123456789abcdef0123";
    const NOW: u64 = 1_800_000_000;
    const AUDIENCE: &str = "http://127.0.0.1:8788";

    fn own_audience() -> Audience {
        Audience::from_url(AUDIENCE).unwrap()
    }

    fn signed(method: &str, path_and_query: &str, project: &str, body: &[u8]) -> OriginRequest {
        signed_for(AUDIENCE, method, path_and_query, project, body)
    }

    fn signed_for(audience: &str, method: &str, path_and_query: &str, project: &str, body: &[u8]) -> OriginRequest {
        let identity = SignedIdentity {
            audience: audience.into(),
            issued_at: NOW,
            expires_at: NOW + TOKEN_LIFETIME_SECONDS,
            method: method.into(),
            path_and_query: path_and_query.into(),
            key_id: "key_demo".into(),
            project: project.into(),
            env: "live".into(),
            scopes: "content:read content:write".into(),
        };
        let headers =
            BTreeMap::from([(HEADER_IDENTITY.to_string(), identity.sign(SECRET)), ("accept".to_string(), "application/json".to_string())]);
        OriginRequest { method: method.into(), path_and_query: path_and_query.into(), headers, body: body.to_vec() }
    }

    /// The token for these facts signed with `secret` instead of [`SECRET`].
    fn signed_with(secret: &[u8], method: &str, path_and_query: &str, project: &str) -> String {
        let request = signed(method, path_and_query, project, b"");
        let token = &request.headers[HEADER_IDENTITY];
        let identity = signature::verify(SECRET, &own_audience(), method, path_and_query, Some(token), NOW, 0).unwrap();
        identity.sign(secret)
    }

    fn run(request: &OriginRequest) -> OriginResponse {
        handle(request, "live", SECRET, &own_audience(), NOW + 5)
    }

    #[test]
    fn route_table() {
        use Route::*;
        let rows: Vec<(&str, &str, Route)> = vec![
            ("GET", "/__health", Health),
            ("HEAD", "/__health", Health),
            ("POST", "/__health", NotFound),
            ("GET", "/v1/public/cms/articles/items", List { kind: "articles" }),
            ("HEAD", "/v1/public/cms/pages/items", List { kind: "pages" }),
            ("POST", "/v1/public/cms/articles/items", NotFound),
            ("GET", "/v1/public/cms//items", NotFound),
            ("GET", "/v1/public/cms/articles/items/2", Item { kind: "articles", id: "2" }),
            ("GET", "/v1/public/cms/articles/items/2/media/1", Item { kind: "articles", id: "2" }),
            ("GET", "/v1/public/cms/articles/items/", NotFound),
            ("DELETE", "/v1/public/cms/articles/items/2", NotFound),
            ("GET", "/v1/projects/acme/public/cms/pages/items", ProjectList { project: "acme", kind: "pages" }),
            ("GET", "/v1/projects//public/cms/pages/items", NotFound),
            ("POST", "/v1/cms/articles/items", Create { kind: "articles" }),
            ("GET", "/v1/cms/articles/items", NotFound),
            ("POST", "/v1/cms/articles/items/1", NotFound),
            ("PATCH", "/__echo", Echo),
            ("GET", "/__echo/", Echo),
            ("DELETE", "/__echo/a/b", Echo),
            ("GET", "/__echoes", NotFound),
            ("GET", "/__status/503", Status(503)),
            ("GET", "/__status/100", Status(200)),
            ("GET", "/__status/999", Status(599)),
            ("GET", "/__status/99999999999999999999999", NotFound),
            ("GET", "/__status/teapot", NotFound),
            ("GET", "/__slow/250", Slow(250)),
            ("POST", "/__slow/999999", Slow(MAX_SLOW_MS)),
            ("GET", "/__slow/soon", NotFound),
            ("GET", "/", NotFound),
            ("GET", "", NotFound),
            ("GET", "*", NotFound),
            ("GET", "/V1/public/cms/articles/items", NotFound),
            ("GET", "/v1/sites", Resource { resource: "sites" }),
            ("DELETE", "/v1/posts/p_1", Resource { resource: "posts" }),
            ("PUT", "/v1/acme/admin/api-keys/key_1", Resource { resource: "acme" }),
            ("GET", "/v1/sites/", NotFound),
            ("GET", "/v1/", NotFound),
        ];
        for (method, path, expected) in rows {
            assert_eq!(route(method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn sample_data_has_drafts_but_responses_never_do() {
        assert!(SAMPLE_ITEMS.iter().any(|i| i.status == "draft"), "the sample must exercise the filter");
        for project in ["acme", "globex"] {
            for kind in ["articles", "pages"] {
                let response = run(&signed("GET", &format!("/v1/public/cms/{kind}/items"), project, b""));
                assert_eq!(response.status, 200);
                let items = response.body["items"].as_array().cloned().unwrap_or_default();
                assert!(!items.is_empty(), "{project} {kind}");
                assert!(items.iter().all(|i| i["status"] == "published"), "{project} {kind}");
                assert!(!response.body.to_string().contains("draft"), "{project} {kind}");
            }
        }
        for draft in SAMPLE_ITEMS.iter().filter(|i| i.status == "draft") {
            for id in [draft.id, draft.slug] {
                let path = format!("/v1/public/cms/{}/items/{id}", draft.kind);
                let response = run(&signed("GET", &path, draft.project, b""));
                assert_eq!(response.status, 404, "{path}");
                assert_eq!(response.body["error"]["code"], "NOT_FOUND");
            }
        }
    }

    #[test]
    fn list_is_scoped_to_the_signed_project_and_honours_limit() {
        let response = run(&signed("GET", "/v1/public/cms/articles/items?limit=1", "acme", b""));
        assert_eq!(response.body["project"], "acme");
        assert_eq!(response.body["origin"], "live");
        assert_eq!(response.body["items"].as_array().map(Vec::len), Some(1));
        let globex = run(&signed("GET", "/v1/public/cms/articles/items", "globex", b""));
        assert_eq!(globex.body["items"][0]["slug"], "globex-news");
        let item = run(&signed("GET", "/v1/public/cms/articles/items/hello-world/extra", "acme", b""));
        assert_eq!((item.status, item.body["item"]["id"].clone()), (200, json!("1")));
        assert_eq!(run(&signed("GET", "/v1/public/cms/articles/items/1", "globex", b"")).body["item"]["slug"], "globex-news");
    }

    #[test]
    fn project_path_must_match_the_signed_project() {
        let same = run(&signed("GET", "/v1/projects/acme/public/cms/pages/items", "acme", b""));
        assert_eq!(same.status, 200);
        assert_eq!(same.body["items"].as_array().map(Vec::len), Some(2));
        let other = run(&signed("GET", "/v1/projects/globex/public/cms/pages/items", "acme", b""));
        assert_eq!(other.status, 403);
        assert_eq!(other.body["origin"], "live");
    }

    #[test]
    fn unsigned_and_tampered_requests_are_refused_with_a_reason() {
        let health = OriginRequest { method: "GET".into(), path_and_query: "/__health".into(), ..Default::default() };
        let response = run(&health);
        assert_eq!((response.status, response.body["label"].clone()), (200, json!("live")));

        let unsigned = OriginRequest { method: "GET".into(), path_and_query: "/v1/public/cms/articles/items".into(), ..Default::default() };
        let mut bad_token = signed("GET", "/v1/public/cms/articles/items", "acme", b"");
        bad_token.headers.insert(HEADER_IDENTITY.into(), "v2=zz".into());
        let mut other_secret = signed("GET", "/v1/public/cms/articles/items", "acme", b"");
        let token = other_secret.headers[HEADER_IDENTITY].clone();
        let (input, _) = token.rsplit_once('.').unwrap();
        let forged = signed_with(b"another-secret", "GET", "/v1/public/cms/articles/items", "acme");
        other_secret.headers.insert(HEADER_IDENTITY.into(), format!("{input}.{}", forged.rsplit_once('.').unwrap().1));
        let mut other_query = signed("GET", "/v1/public/cms/articles/items", "acme", b"");
        other_query.path_and_query.push_str("?limit=100");
        let mut alg_none = signed("GET", "/v1/public/cms/articles/items", "acme", b"");
        let claims = token.split('.').nth(1).unwrap().to_string();
        alg_none.headers.insert(HEADER_IDENTITY.into(), format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}."));
        let rows = [
            ("unsigned", unsigned, NOW, "missing"),
            ("malformed", bad_token, NOW, "malformed"),
            ("another secret's signature", other_secret, NOW, "signature"),
            ("alg none", alg_none, NOW, "algorithm"),
            ("tampered query", other_query, NOW, "request"),
            (
                "signed for the test origin",
                signed_for("http://127.0.0.1:8789", "GET", "/v1/public/cms/articles/items", "acme", b""),
                NOW,
                "audience",
            ),
            ("expired", signed("GET", "/__echo", "acme", b""), NOW + 60 + 31, "expired"),
            ("unsigned 404", OriginRequest { method: "GET".into(), path_and_query: "/nope".into(), ..Default::default() }, NOW, "missing"),
        ];
        for (what, request, now, reason) in rows {
            let response = handle(&request, "live", SECRET, &own_audience(), now);
            assert_eq!(response.status, 401, "{what}");
            assert_eq!(response.body["error"]["code"], "ORIGIN_SIGNATURE_INVALID", "{what}");
            assert_eq!(response.body["error"]["details"]["reason"], reason, "{what}");
            assert_eq!(response.body["origin"], "live", "{what}");
        }
    }

    #[test]
    fn echo_reports_exactly_what_arrived() {
        let response = handle(&signed("PUT", "/__echo/x?a=1&b=2", "acme", b"hi \xff"), "test", SECRET, &own_audience(), NOW);
        let body = &response.body;
        assert_eq!(response.status, 200);
        assert_eq!(body["origin"], "test");
        assert_eq!(body["method"], "PUT");
        assert_eq!(body["path"], "/__echo/x");
        assert_eq!(body["query"], "a=1&b=2");
        assert_eq!(body["path_and_query"], "/__echo/x?a=1&b=2");
        assert_eq!(body["headers"]["accept"], "application/json");
        assert_eq!(body["body"], "hi \u{fffd}");
        assert_eq!(body["identity"]["project"], "acme");
        assert_eq!(body["identity"]["issued_at"], NOW);
        assert_eq!(body["identity"]["expires_at"], NOW + 60);
        assert_eq!(body["identity"]["path_and_query"], "/__echo/x?a=1&b=2");
        assert_eq!(body["identity"]["audience"], AUDIENCE);
    }

    #[test]
    fn create_status_and_unknown_routes() {
        let created = run(&signed("POST", "/v1/cms/articles/items", "acme", br#"{"title":"New"}"#));
        assert_eq!(created.status, 201);
        assert_eq!(created.body["created"]["title"], "New");
        assert_eq!(created.body["project"], "acme");
        let raw = run(&signed("POST", "/v1/cms/articles/items", "acme", b"not json"));
        assert_eq!(raw.body["created"], "not json");
        assert_eq!(run(&signed("GET", "/__status/418", "acme", b"")).status, 418);
        let missing = run(&signed("GET", "/v2/other", "acme", b""));
        assert_eq!((missing.status, missing.body["error"]["code"].clone()), (404, json!("NOT_FOUND")));
        let resource = run(&signed("POST", "/v1/posts", "acme", b"{}"));
        assert_eq!(
            (resource.status, resource.body["resource"].clone(), resource.body["identity"]["project"].clone()),
            (201, json!("posts"), json!("acme"))
        );
        let unsigned = run(&OriginRequest { headers: BTreeMap::new(), ..signed("GET", "/v1/sites", "acme", b"") });
        assert_eq!(unsigned.status, 401, "a profile surface is only answered to a signed request");
    }

    #[test]
    fn audience_is_the_listening_url_unless_overridden() {
        let rows: [(Option<&str>, &str, Result<&str, &str>); 6] = [
            (None, "127.0.0.1:8788", Ok("http://127.0.0.1:8788")),
            (None, "[::1]:8788", Ok("http://[::1]:8788")),
            (Some("https://API.example:443/base"), "127.0.0.1:8788", Ok("https://api.example")),
            (Some("http://127.0.0.1:9000"), "0.0.0.0:8788", Ok("http://127.0.0.1:9000")),
            (Some("api.example"), "127.0.0.1:8788", Err("--audience")),
            (Some("http://user@api.example"), "127.0.0.1:8788", Err("--audience")),
        ];
        for (flag, listening, expected) in rows {
            match (audience(flag, listening), expected) {
                (Ok(audience), Ok(expected)) => assert_eq!(audience.as_str(), expected, "{flag:?} {listening}"),
                (Err(message), Err(expected)) => assert!(message.starts_with(expected), "{flag:?}: {message}"),
                (got, expected) => panic!("{flag:?} {listening}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn labels_must_be_header_safe() {
        for (label, ok) in [("live", true), ("test-2.b_c", true), ("", false), ("a b", false), ("x\r\ny", false)] {
            assert_eq!(is_valid_label(label), ok, "{label:?}");
        }
    }
}
