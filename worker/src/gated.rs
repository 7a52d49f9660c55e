//! Storage writes a Durable Object issues without waiting for them.
//!
//! The runtime's output gate holds everything the object sends — its answer, a WebSocket message,
//! a subrequest to a provider — until every write issued before it is durable, and a write is
//! visible to the object's own later reads at once. So waiting for a write adds its round trip to
//! the path and buys nothing: what depends on it cannot leave before it anyway, and if it fails the
//! runtime resets the object and nothing that followed it is ever seen. Writes issued together,
//! with no await between them, land as one (docs/reliability.md, "Writes are never waited for").
//!
//! Reads are still awaited: they are what the object decides on.

use worker::wasm_bindgen::JsValue;
use worker::Storage;

/// Sets `key` to the string `value`.
pub(crate) fn put(storage: &Storage, key: &str, value: &str) {
    // The promise is the runtime's to keep; the output gate is what waits for it.
    let _ = storage.as_raw().put(key, JsValue::from_str(value));
}

/// Removes `keys`.
pub(crate) fn delete(storage: &Storage, keys: &[String]) {
    if keys.is_empty() {
        return;
    }
    let _ = storage.as_raw().delete_multiple(keys.iter().map(|key| JsValue::from_str(key)).collect());
}

/// Sets the object's alarm to `unix_ms` (now: as soon as possible).
pub(crate) fn set_alarm(storage: &Storage, unix_ms: u64) {
    let when = worker::js_sys::Date::new(&JsValue::from_f64(unix_ms as f64));
    let _ = storage.as_raw().set_alarm(when, JsValue::NULL.into());
}
