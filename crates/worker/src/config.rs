//! Reads wrangler vars and secrets into [`keygate_core::config::Config`], once per isolate.

use std::rc::Rc;

use worker::wasm_bindgen::JsValue;
use worker::Env;

use keygate_core::config::{Config, ConfigError, SETTINGS};

thread_local! {
    static LOADED: std::cell::OnceCell<Result<Rc<Config>, ConfigError>> = const { std::cell::OnceCell::new() };
}

/// The parsed config (parsed on first use; vars cannot change within an isolate).
pub fn load(env: &Env) -> Result<Rc<Config>, ConfigError> {
    LOADED.with(|cell| cell.get_or_init(|| Config::from_lookup(|name| raw(env, name)).map(Rc::new)).clone())
}

/// A var or secret as text: strings as they are, other JSON values JSON-encoded.
fn raw(env: &Env, name: &str) -> Option<String> {
    debug_assert!(SETTINGS.contains(&name));
    let value = js_sys::Reflect::get(env.as_ref(), &JsValue::from_str(name)).ok()?;
    if value.is_undefined() || value.is_null() {
        return None;
    }
    if let Some(text) = value.as_string() {
        return Some(text);
    }
    js_sys::JSON::stringify(&value).ok().and_then(|s| s.as_string())
}
