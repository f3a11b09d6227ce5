//! One JSON request to a named Durable Object instance: the transport that the admin API
//! (registry) and the request path (limiter) share.

use serde::de::DeserializeOwned;
use serde::Serialize;
use worker::{Env, Method, Request, RequestInit};

/// POSTs `message` as JSON to instance `name` of the Durable Object `binding` and decodes the
/// JSON answer. `Err` describes what failed (for logs; never key material).
pub async fn call<M: Serialize, R: DeserializeOwned>(env: &Env, binding: &str, name: &str, message: &M) -> Result<R, String> {
    super::counters::do_call();
    let namespace = env.durable_object(binding).map_err(|_| format!("{binding} binding missing"))?;
    let stub = namespace.get_by_name(name).map_err(|e| format!("stub: {e}"))?;
    let body = serde_json::to_string(message).map_err(|e| format!("encode: {e}"))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let request = Request::new_with_init("https://durable-object.keygate.internal/op", &init).map_err(|e| e.to_string())?;
    let mut response = stub.fetch_with_request(request).await.map_err(|e| format!("fetch: {e}"))?;
    if response.status_code() != 200 {
        return Err(format!("status {}", response.status_code()));
    }
    response.json().await.map_err(|e| format!("decode: {e}"))
}
