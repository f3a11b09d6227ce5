//! One JSON request to a named Durable Object instance: the transport that the admin API
//! (registry) and the request path (limiter) share, plus the helpers both objects use to read
//! their requests and SQLite rows.

use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::{web_sys, Env, Request, Response, SqlCursor, SqlStorageValue};

/// POSTs `message` as JSON to instance `name` of the Durable Object `binding` and decodes the
/// JSON answer. `Err` describes what failed (for logs; never key material).
pub async fn call<M: Serialize, R: DeserializeOwned>(env: &Env, binding: &str, name: &str, message: &M) -> Result<R, String> {
    crate::counters::do_call();
    let body = serde_json::to_string(message).map_err(|e| format!("encode: {e}"))?;
    let text = post(env, binding, name, body).await?;
    keygate_core::json::parse(&text).map_err(|e| format!("decode: {e}"))
}

/// The transport of [`call`], not generic: one copy for both message types.
async fn post(env: &Env, binding: &str, name: &str, body: String) -> Result<String, String> {
    let namespace = env.durable_object(binding).map_err(|_| format!("{binding} binding missing"))?;
    let stub = namespace.get_by_name(name).map_err(|e| format!("stub: {e}"))?;
    // A plain web_sys request: worker's `RequestInit` would bring along code for every
    // Cloudflare `cf` option, none of which a Durable Object call uses.
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&body.into());
    let request = web_sys::Request::new_with_str_and_init("https://durable-object.keygate.internal/op", &init)
        .map_err(|e| e.as_string().unwrap_or_else(|| "invalid URL or options for Request".into()))?;
    let response = stub.fetch_with_request(Request::from(request)).await.map_err(|e| format!("fetch: {e}"))?;
    if response.status_code() != 200 {
        return Err(format!("status {}", response.status_code()));
    }
    // Not `response.json()`: that is serde_json's `from_str`, a second set of decoders.
    body_text(response).await.map_err(|e| format!("decode: {e}"))
}

/// The answer's body as text, read with one `arrayBuffer()` (what `Response::text` returns, with
/// its errors, without reading the stream chunk by chunk in Rust: that stream code was ~4 KB of
/// wasm used only here).
async fn body_text(response: Response) -> worker::Result<String> {
    let buffer = js_sys::futures::JsFuture::from(web_sys::Response::from(response).array_buffer()?).await?;
    String::from_utf8(js_sys::Uint8Array::new(&buffer).to_vec()).map_err(|e| worker::Error::RustError(e.to_string()))
}

/// Decodes a Durable Object request's JSON body (with [`keygate_core::json::parse_bytes`], like
/// every other JSON keygate reads, so each message type is decoded by one code path only). Read
/// as bytes, as the admin API reads its bodies (one body reader in the wasm, not two): the worker
/// wrote this body with serde_json, so it is UTF-8 and decodes as its text would.
pub async fn read_json<T: DeserializeOwned>(request: &mut Request) -> worker::Result<T> {
    let bytes = request.bytes().await?;
    keygate_core::json::parse_bytes(&bytes).map_err(worker::Error::from)
}

/// One SQLite row: its columns in `SELECT` order.
pub struct Row(Vec<SqlStorageValue>);

/// Every remaining row of `cursor`.
pub fn rows(cursor: SqlCursor) -> worker::Result<Vec<Row>> {
    cursor.raw().map(|row| row.map(Row)).collect()
}

impl Row {
    /// Column `index` as text; any other type (or a missing column) is an error.
    pub fn text(&mut self, index: usize) -> worker::Result<String> {
        match self.0.get_mut(index) {
            Some(SqlStorageValue::String(text)) => Ok(std::mem::take(text)),
            _ => Err(worker::Error::RustError("expected a text column".into())),
        }
    }

    /// Column `index` as an integer, `None` for SQL `NULL`; any other type is an error.
    pub fn optional_int(&self, index: usize) -> worker::Result<Option<i64>> {
        match self.0.get(index) {
            Some(SqlStorageValue::Null) => Ok(None),
            _ => self.int(index).map(Some),
        }
    }

    /// Column `index` as an integer; any other type (or a missing column) is an error.
    pub fn int(&self, index: usize) -> worker::Result<i64> {
        match self.0.get(index) {
            Some(SqlStorageValue::Integer(value)) => Ok(*value),
            _ => Err(worker::Error::RustError("expected an integer column".into())),
        }
    }
}
