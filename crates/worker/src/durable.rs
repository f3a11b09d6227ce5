//! One JSON request to a named Durable Object instance: the transport that the admin API
//! (registry) and the request path (limiter) share, plus the helpers both objects use to read
//! their requests and SQLite rows.

use js_sys::futures::JsFuture;
use js_sys::Reflect;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsCast;
use worker::{Env, Request, SqlCursor, SqlStorageValue};

/// POSTs `message` as JSON to instance `name` of the Durable Object `binding` and decodes the
/// JSON answer. `Err` describes what failed (for logs; never key material).
pub async fn call<M: Serialize, R: DeserializeOwned>(env: &Env, binding: &str, name: &str, message: &M) -> Result<R, String> {
    crate::counters::do_call();
    let body = serde_json::to_string(message).map_err(|e| format!("encode: {e}"))?;
    let text = post(env, binding, name, body).await?;
    keygate_core::json::parse(&text).map_err(|e| format!("decode: {e}"))
}

/// The transport of [`call`], not generic: one copy for both message types. The call itself is
/// made by JS (`durablePost` in `js/runtime.js`: worker's stub, request and response wrappers
/// cost ~2 KB of wasm); each failure is described as those wrappers' errors were.
async fn post(env: &Env, binding: &str, name: &str, body: String) -> Result<String, String> {
    let namespace = env.durable_object(binding).map_err(|_| format!("{binding} binding missing"))?;
    let answer = JsFuture::from(crate::runtime::durable_post(namespace.as_ref(), name, &body)).await.map_err(|rejection| {
        let (step, error) = (Reflect::get_u32(&rejection, 0).ok(), Reflect::get_u32(&rejection, 1).unwrap_or_default());
        match step.and_then(|step| step.as_string()) {
            // What `web_sys::Request::new_with_str_and_init` failing was reported as.
            Some(step) if step == "request" => error.as_string().unwrap_or_else(|| "invalid URL or options for Request".into()),
            Some(step) => format!("{step}: {}", worker::Error::from(error)),
            None => format!("fetch: {}", worker::Error::from(rejection)),
        }
    })?;
    if let Some(status) = answer.as_f64() {
        return Err(format!("status {}", status as u16));
    }
    let bytes = answer.dyn_into::<js_sys::Uint8Array>().map_err(|_| "decode: not bytes".to_string())?.to_vec();
    // Not serde_json's `from_str`: see `call`.
    String::from_utf8(bytes).map_err(|e| format!("decode: {}", worker::Error::RustError(e.to_string())))
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
