//! The thin HTTP layer: endpoint checks and one `ureq` call per [`ApiRequest`].

use std::time::Duration;

use super::cli::AdminToken;
use super::request::{ApiRequest, Method};

/// Largest answer read; a full page of 100 maximal records is ~6.4 MB.
pub const MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;
/// Whole-request time limit.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where the admin API lives: `<url><prefix>`, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: String,
    loopback: bool,
}

impl Endpoint {
    /// Checks `--url` and `--prefix`; `Err` is a usage problem.
    pub fn new(url: &str, prefix: &str) -> Result<Endpoint, String> {
        let url = url.trim_end_matches('/');
        let lower = url.to_ascii_lowercase();
        let rest = if lower.starts_with("http://") {
            &url["http://".len()..]
        } else if lower.starts_with("https://") {
            &url["https://".len()..]
        } else {
            return Err(format!("--url {url}: expected an http(s):// URL such as http://127.0.0.1:8787"));
        };
        let host = rest.split('/').next().unwrap_or("");
        if host.is_empty() || url.contains(['?', '#']) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("--url {url}: expected an http(s):// URL such as http://127.0.0.1:8787"));
        }
        if prefix.contains(['?', '#']) || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("--prefix {prefix}: expected a path such as /_keygate/v1"));
        }
        let prefix = prefix.trim_matches('/');
        let base = if prefix.is_empty() { url.to_string() } else { format!("{url}/{prefix}") };
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h).to_ascii_lowercase();
        let name = if host.starts_with('[') {
            host.split(']').next().map(|h| format!("{h}]")).unwrap_or_default()
        } else {
            host.split(':').next().unwrap_or("").to_string()
        };
        let loopback = name == "localhost" || name == "[::1]" || name.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
        Ok(Endpoint { base, loopback })
    }

    /// The full URL of a request path (`/keys…`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// An HTTP answer, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// Why no complete answer was received.
#[derive(Debug)]
pub enum TransportError {
    /// Connecting, sending or receiving failed.
    Unreachable(String),
    /// The answer was larger than [`MAX_RESPONSE_BYTES`].
    TooLarge,
}

/// Checks the admin token without ever echoing it.
pub fn check_token(token: Option<&AdminToken>) -> Result<&str, String> {
    match token {
        None => Err("the admin token is required: set KEYGATE_ADMIN_TOKEN (preferred) or pass --admin-token".into()),
        Some(AdminToken(token)) if token.is_empty() => Err("the admin token is empty (KEYGATE_ADMIN_TOKEN / --admin-token)".into()),
        Some(AdminToken(token)) if !token.bytes().all(|b| (0x20..0x7f).contains(&b)) => {
            Err("the admin token contains characters not allowed in an HTTP header".into())
        }
        Some(AdminToken(token)) => Ok(token),
    }
}

/// An agent for one endpoint and token. No `Debug`: it holds the token.
pub struct Client {
    agent: ureq::Agent,
    endpoint: Endpoint,
    authorization: String,
}

impl Client {
    pub fn new(endpoint: Endpoint, token: &str) -> Client {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // The admin API never redirects; following one could carry the token elsewhere.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(TIMEOUT))
            .user_agent(format!("keygate/{}", env!("CARGO_PKG_VERSION")));
        if endpoint.loopback {
            // `wrangler dev` on this machine is never behind an HTTP(S)_PROXY.
            config = config.proxy(None);
        }
        Client { agent: config.build().new_agent(), endpoint, authorization: format!("Bearer {token}") }
    }

    /// The full URL of a request, for messages.
    pub fn url(&self, request: &ApiRequest) -> String {
        self.endpoint.url(&request.path)
    }

    /// Sends one request and reads the whole answer.
    pub fn send(&self, request: &ApiRequest) -> Result<RawResponse, TransportError> {
        let url = self.url(request);
        let auth = self.authorization.as_str();
        let accept = "application/json";
        let sent = match (request.method, &request.body) {
            (Method::Get, _) => self.agent.get(&url).header("authorization", auth).header("accept", accept).call(),
            (Method::Delete, _) => self.agent.delete(&url).header("authorization", auth).header("accept", accept).call(),
            (method, body) => {
                let builder = if method == Method::Post { self.agent.post(&url) } else { self.agent.patch(&url) };
                let builder = builder.header("authorization", auth).header("accept", accept);
                let empty = serde_json::Value::Object(serde_json::Map::new());
                builder.send_json(body.as_ref().unwrap_or(&empty))
            }
        };
        let mut response = sent.map_err(|e| TransportError::Unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = response.body_mut().with_config().limit(MAX_RESPONSE_BYTES).lossy_utf8(true).read_to_string();
        match body {
            Ok(body) => Ok(RawResponse { status, content_type, body }),
            Err(ureq::Error::BodyExceedsLimit(_)) => Err(TransportError::TooLarge),
            Err(e) => Err(TransportError::Unreachable(format!("reading the answer failed: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let rows: Vec<(&str, &str, &str, bool)> = vec![
            ("http://127.0.0.1:8787", "/_keygate/v1", "http://127.0.0.1:8787/_keygate/v1", true),
            ("http://127.0.0.1:8787/", "/_keygate/v1/", "http://127.0.0.1:8787/_keygate/v1", true),
            ("HTTP://localhost", "admin", "HTTP://localhost/admin", true),
            ("http://[::1]:9/base", "/", "http://[::1]:9/base", true),
            ("http://gw.example.com", "/_keygate/v1", "http://gw.example.com/_keygate/v1", false),
            ("http://127.example.com", "", "http://127.example.com", false),
        ];
        for (url, prefix, base, loopback) in rows {
            let endpoint = Endpoint::new(url, prefix).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(endpoint.url("/keys"), format!("{base}/keys"), "{url}");
            assert_eq!(endpoint.loopback, loopback, "{url}");
        }
    }

    #[test]
    fn bad_endpoints() {
        let rows = [
            ("gw.example.com", "/_keygate/v1", "expected an http(s):// URL"),
            ("http://", "/_keygate/v1", "expected an http(s):// URL"),
            ("https://", "/_keygate/v1", "expected an http(s):// URL"),
            ("http://h/?x=1", "/_keygate/v1", "expected an http(s):// URL"),
            ("http://h", "/a?b", "--prefix"),
            ("http://h", "/a b", "--prefix"),
        ];
        for (url, prefix, message) in rows {
            let error = Endpoint::new(url, prefix).expect_err(url);
            assert!(error.contains(message), "{url} {prefix}: {error}");
        }
    }

    #[test]
    fn token_checks_never_echo_the_token() {
        let rows = [(None, "required"), (Some(""), "empty"), (Some("zqx\nzqx"), "not allowed"), (Some("zqxé"), "not allowed")];
        for (token, message) in rows {
            let token = token.map(|t| AdminToken(t.to_string()));
            let error = check_token(token.as_ref()).expect_err(message);
            assert!(error.contains(message), "{error}");
            assert!(!error.contains("zqx"), "{error}");
        }
        assert_eq!(check_token(Some(&AdminToken("s3cret".into()))), Ok("s3cret"));
    }
}
