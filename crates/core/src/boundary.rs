//! The one encoding for strings that cross the wasm/JS boundary, and the layout of each message
//! that uses it. The JavaScript side is `crates/worker/js/runtime.js`.
//!
//! A call passes one string rather than many values: every value handed across separately is
//! re-encoded on its own. A message is a list of fields, each followed by `\n`, so the empty
//! string is the empty list and `\n` is one empty field. An absent optional field is the single
//! character `\0`. A field may hold neither character: the [`Encoder`] refuses one that does,
//! and nothing the runtime hands over can (a method is a token, a parsed URL percent-encodes
//! both, and header names and values never hold them). Decoding never panics: a message that
//! ends early or holds a value its layout does not allow is a [`BoundaryError`].
//!
//! The messages:
//! - `requestFacts` (JS → Rust, once per request): [`ReceivedRequest::decode`];
//! - `clientFacts` (JS → Rust, only for a key restricted to some networks or countries): the
//!   `CF-Connecting-IP` value and `request.cf.country`, each optional ([`decode_client`]);
//! - `outbound` (Rust → JS, once per forwarded request): two lists, the incoming header names
//!   to drop and the headers to add as name, value, name, value…
//!   ([`crate::forward::outbound_headers`]).

use std::fmt;

use crate::forward::after_authority;
use crate::network::ClientFacts;

/// Ends every field.
pub const TERMINATOR: char = '\n';
/// An absent optional field, on its own.
pub const ABSENT: &str = "\0";

/// Why a message could not be encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundaryError {
    /// A value holds `\n` or `\0`: it cannot be encoded unambiguously.
    Unencodable,
    /// The message ended before its layout did (a field without its `\n`).
    Truncated,
    /// A field holds a value its layout does not allow (a flag other than `0` or `1`).
    Malformed,
}

impl fmt::Display for BoundaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BoundaryError::Unencodable => "a value holds a newline or NUL",
            BoundaryError::Truncated => "the message ends early",
            BoundaryError::Malformed => "a field holds a value its layout does not allow",
        })
    }
}

/// Builds a message field by field.
#[derive(Debug, Default)]
pub struct Encoder {
    text: String,
}

impl Encoder {
    /// An encoder with room for `bytes` bytes of message.
    pub fn with_capacity(bytes: usize) -> Encoder {
        Encoder { text: String::with_capacity(bytes) }
    }

    /// Appends one field.
    pub fn field(&mut self, value: &str) -> Result<(), BoundaryError> {
        if value.bytes().any(|byte| byte == b'\n' || byte == 0) {
            return Err(BoundaryError::Unencodable);
        }
        self.text.push_str(value);
        self.text.push(TERMINATOR);
        Ok(())
    }

    /// Appends an optional field: `None` is [`ABSENT`].
    pub fn optional(&mut self, value: Option<&str>) -> Result<(), BoundaryError> {
        match value {
            Some(value) => self.field(value),
            None => {
                self.text.push_str(ABSENT);
                self.text.push(TERMINATOR);
                Ok(())
            }
        }
    }

    /// The encoded message.
    pub fn finish(self) -> String {
        self.text
    }
}

/// Reads a message field by field, in its layout's order.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    rest: &'a str,
}

impl<'a> Decoder<'a> {
    /// Starts reading `text`.
    pub fn new(text: &'a str) -> Decoder<'a> {
        Decoder { rest: text }
    }

    /// The next field.
    pub fn field(&mut self) -> Result<&'a str, BoundaryError> {
        let (field, rest) = self.rest.split_once(TERMINATOR).ok_or(BoundaryError::Truncated)?;
        self.rest = rest;
        Ok(field)
    }

    /// The next field as an optional value ([`ABSENT`] is `None`).
    pub fn optional(&mut self) -> Result<Option<&'a str>, BoundaryError> {
        self.field().map(|field| (field != ABSENT).then_some(field))
    }

    /// The next field as a flag: `1` or `0`.
    pub fn flag(&mut self) -> Result<bool, BoundaryError> {
        match self.field()? {
            "1" => Ok(true),
            "0" => Ok(false),
            _ => Err(BoundaryError::Malformed),
        }
    }

    /// What is left, unread: a list to read with [`fields`].
    pub fn rest(self) -> &'a str {
        self.rest
    }
}

/// The fields of a list. A trailing piece without its `\n` is not a field (the list was cut
/// short) and is skipped.
pub fn fields(list: &str) -> impl Iterator<Item = &str> {
    let mut list = Decoder::new(list);
    std::iter::from_fn(move || list.field().ok())
}

/// What `requestFacts` reads from the incoming request, in one crossing:
/// `method`, `url`, the `AUTH_HEADER` value, the `API_KEY_HEADER` value, the `Origin` value (each
/// header optional), the body flag (`1` when the request has a body stream), then every incoming
/// header name (lowercase, as the runtime iterates them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceivedRequest {
    pub method: String,
    /// Path and query exactly as received (percent-encoding kept): the URL after its authority,
    /// `/` when nothing follows it.
    pub path_and_query: String,
    /// Where the path ends in `path_and_query` (at `?`, or its length).
    pub path_len: usize,
    pub authorization: Option<String>,
    pub api_key: Option<String>,
    pub origin: Option<String>,
    /// Whether the request has a body stream (`request.body !== null`).
    pub has_body: bool,
    /// The incoming header names, still encoded as they crossed (`name\n…`): they are read only
    /// when the request is forwarded ([`crate::forward::outbound_headers`]), so most refused
    /// requests never split them.
    pub header_names: String,
}

impl ReceivedRequest {
    /// Decodes `requestFacts`'s message.
    pub fn decode(text: &str) -> Result<ReceivedRequest, BoundaryError> {
        let mut message = Decoder::new(text);
        let method = message.field()?.to_string();
        let path_and_query = after_authority(message.field()?).unwrap_or("/").to_string();
        let authorization = message.optional()?.map(String::from);
        let api_key = message.optional()?.map(String::from);
        let origin = message.optional()?.map(String::from);
        let has_body = message.flag()?;
        let header_names = message.rest().to_string();
        let path_len = path_and_query.find('?').unwrap_or(path_and_query.len());
        Ok(ReceivedRequest { method, path_and_query, path_len, authorization, api_key, origin, has_body, header_names })
    }
}

/// Decodes `clientFacts`'s message: the client address, then the country, each optional.
pub fn decode_client(text: &str) -> Result<ClientFacts, BoundaryError> {
    let mut message = Decoder::new(text);
    let address = message.optional()?.map(String::from);
    let country = message.optional()?.map(String::from);
    Ok(ClientFacts { address, country })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(values: &[Option<&str>]) -> Result<String, BoundaryError> {
        let mut encoder = Encoder::default();
        for value in values {
            encoder.optional(*value)?;
        }
        Ok(encoder.finish())
    }

    #[test]
    fn fields_round_trip() {
        for (values, encoded) in [
            (&[][..], ""),
            (&[Some("")][..], "\n"),
            (&[Some("a"), Some("")][..], "a\n\n"),
            (&[None][..], "\0\n"),
            (&[Some("GET"), None, Some("Bearer kg_live_x y"), None][..], "GET\n\0\nBearer kg_live_x y\n\0\n"),
            (&[Some("héllo, wörld"), Some("\t\r")][..], "héllo, wörld\n\t\r\n"),
        ] {
            assert_eq!(encode(values).as_deref(), Ok(encoded), "{values:?}");
            let mut decoder = Decoder::new(encoded);
            for value in values {
                assert_eq!(decoder.optional(), Ok(*value), "{values:?}");
            }
            assert_eq!(decoder.rest(), "", "{values:?}: nothing left");
        }
    }

    #[test]
    fn a_value_holding_a_separator_is_refused_not_encoded() {
        for value in ["a\nb", "\n", "\0", "a\0", ABSENT] {
            assert_eq!(Encoder::default().field(value), Err(BoundaryError::Unencodable), "{value:?}");
            assert_eq!(encode(&[Some(value)]), Err(BoundaryError::Unencodable), "{value:?}");
        }
    }

    #[test]
    fn a_message_cut_short_is_an_error() {
        let mut decoder = Decoder::new("a\nb");
        assert_eq!(decoder.field(), Ok("a"));
        assert_eq!(decoder.field(), Err(BoundaryError::Truncated), "b has no terminator");
        assert_eq!(Decoder::new("").optional(), Err(BoundaryError::Truncated));
        assert_eq!(Decoder::new("").flag(), Err(BoundaryError::Truncated));
    }

    #[test]
    fn flags_are_zero_or_one() {
        for (text, flag) in
            [("1\n", Ok(true)), ("0\n", Ok(false)), ("\n", Err(BoundaryError::Malformed)), ("true\n", Err(BoundaryError::Malformed))]
        {
            assert_eq!(Decoder::new(text).flag(), flag, "{text:?}");
        }
    }

    #[test]
    fn a_list_yields_its_terminated_fields_only() {
        for (list, expected) in [
            ("", &[][..]),
            ("host\n", &["host"][..]),
            ("accept\nhost\nx-keygate-env\n", &["accept", "host", "x-keygate-env"][..]),
            ("accept\nho", &["accept"][..]),
            ("\n\n", &["", ""][..]),
        ] {
            assert_eq!(fields(list).collect::<Vec<_>>(), expected, "{list:?}");
        }
    }

    const FACTS: &str = "POST\nhttps://gw.example:8787/v1/items/a%2Fb?x=1&y=/z\nBearer kg_live_abc\n\0\nhttps://app.example\n1\naccept\nauthorization\nhost\n";

    #[test]
    fn request_facts_decode_into_their_fields() {
        let received = ReceivedRequest::decode(FACTS).unwrap();
        assert_eq!(received.method, "POST");
        assert_eq!(received.path_and_query, "/v1/items/a%2Fb?x=1&y=/z");
        assert_eq!(&received.path_and_query[..received.path_len], "/v1/items/a%2Fb");
        assert_eq!(received.authorization.as_deref(), Some("Bearer kg_live_abc"));
        assert_eq!(received.api_key, None);
        assert_eq!(received.origin.as_deref(), Some("https://app.example"));
        assert!(received.has_body);
        assert_eq!(fields(&received.header_names).collect::<Vec<_>>(), ["accept", "authorization", "host"]);
    }

    #[test]
    fn request_facts_without_path_query_headers_or_body() {
        let received = ReceivedRequest::decode("GET\nhttp://127.0.0.1:8787\n\0\n\0\n\0\n0\n").unwrap();
        assert_eq!((received.path_and_query.as_str(), received.path_len), ("/", 1));
        assert_eq!((received.authorization, received.api_key, received.origin), (None, None, None));
        assert!(!received.has_body);
        assert_eq!(received.header_names, "");
        // An empty header value is present, not absent.
        let received = ReceivedRequest::decode("GET\nhttp://h/p?\n\n\0\n\0\n0\n").unwrap();
        assert_eq!(received.authorization.as_deref(), Some(""));
        assert_eq!((received.path_and_query.as_str(), received.path_len), ("/p?", 2));
    }

    #[test]
    fn client_facts_decode_each_optional() {
        let client = |address: Option<&str>, country: Option<&str>| ClientFacts {
            address: address.map(String::from),
            country: country.map(String::from),
        };
        for (text, expected) in [
            ("203.0.113.7\nDE\n", Ok(client(Some("203.0.113.7"), Some("DE")))),
            ("::ffff:10.0.0.1\n\0\n", Ok(client(Some("::ffff:10.0.0.1"), None))),
            ("\0\n\0\n", Ok(client(None, None))),
            ("\0\n", Err(BoundaryError::Truncated)),
            ("203.0.113.7\nDE", Err(BoundaryError::Truncated)),
            ("", Err(BoundaryError::Truncated)),
        ] {
            assert_eq!(decode_client(text), expected, "{text:?}");
        }
    }

    #[test]
    fn malformed_request_facts_are_an_error_never_a_panic() {
        // Every prefix of a valid message ends early somewhere in the fixed fields, or is valid.
        let fixed_fields_end = FACTS.match_indices('\n').nth(5).map(|(i, _)| i + 1).unwrap();
        for end in 0..=FACTS.len() {
            let Some(prefix) = FACTS.get(..end) else { continue };
            let decoded = ReceivedRequest::decode(prefix);
            assert_eq!(decoded.is_ok(), end >= fixed_fields_end, "{prefix:?}");
        }
        assert_eq!(ReceivedRequest::decode("GET\nhttp://h/\n\0\n\0\n\0\nyes\n"), Err(BoundaryError::Malformed));
        assert_eq!(ReceivedRequest::decode("GET\n/no-authority\n\0\n\0\n\0\n0\n").map(|r| r.path_and_query), Ok("/no-authority".into()));
        assert_eq!(ReceivedRequest::decode("\0\n\0\n\0\n\0\n\0\n0\n").map(|r| r.path_and_query), Ok("/".into()));
    }
}
