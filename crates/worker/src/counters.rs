//! Dev-only counters of I/O per isolate (KV reads, Durable Object calls, requests), so tests
//! and benchmarks can count what a request costs instead of assuming it. Served at
//! `GET /__keygate/counters` only when `KEYGATE_TEST_MODE` is set; otherwise that path is an
//! ordinary (unrouted) path.

use std::cell::Cell;

thread_local! {
    static REQUESTS: Cell<u64> = const { Cell::new(0) };
    static KV_READS: Cell<u64> = const { Cell::new(0) };
    static DO_CALLS: Cell<u64> = const { Cell::new(0) };
    static LIMITER_CALLS: Cell<u64> = const { Cell::new(0) };
}

/// Path of the counters endpoint.
pub const PATH: &str = "/__keygate/counters";

fn bump(cell: &'static std::thread::LocalKey<Cell<u64>>) {
    cell.with(|c| c.set(c.get() + 1));
}

/// One gateway request served.
pub fn request() {
    bump(&REQUESTS);
}

/// One KV read made.
pub fn kv_read() {
    bump(&KV_READS);
}

/// One Durable Object call made.
pub fn do_call() {
    bump(&DO_CALLS);
}

/// One call to a `KeyLimiter` (also counted in `do_calls`).
pub fn limiter_call() {
    bump(&LIMITER_CALLS);
}

/// The counters as JSON, with the worker's clock (`now_ms`, unix ms), so tests can place
/// events on the worker's own clock.
pub fn snapshot() -> String {
    keygate_core::json::object([
        ("requests", REQUESTS.with(Cell::get).into()),
        ("kv_reads", KV_READS.with(Cell::get).into()),
        ("do_calls", DO_CALLS.with(Cell::get).into()),
        ("limiter_calls", LIMITER_CALLS.with(Cell::get).into()),
        ("now_ms", crate::now_ms().into()),
    ])
    .to_string()
}
