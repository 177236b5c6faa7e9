//! The trace id of the work in hand. A request's trace id (from its `traceparent`, or new)
//! is set by the HTTP surface for the request's duration; tasks carry it into the queue,
//! and the worker runs each job inside a span that names it, so everything logged for a
//! job — a provider's retry, say — carries the trace id the user sees on the result.

use rand::Rng;
use std::future::Future;

tokio::task_local! {
    static TRACE_ID: String;
}

/// The trace id of the request being handled ("" outside a request).
pub fn current_trace_id() -> String {
    TRACE_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Runs `work` with `trace_id` as the current trace id.
pub async fn with_trace_id<F: Future>(trace_id: String, work: F) -> F::Output {
    TRACE_ID.scope(trace_id, work).await
}

/// A fresh W3C trace id (32 hex digits), for work that starts outside a request.
pub fn new_trace_id() -> String {
    random_hex(16)
}

/// `bytes` random bytes as lowercase hex (one allocation: it runs twice per request).
pub fn random_hex(bytes: usize) -> String {
    use std::fmt::Write;
    let mut rng = rand::rng();
    let mut out = String::with_capacity(bytes * 2);
    for _ in 0..bytes {
        let _ = write!(out, "{:02x}", rng.random::<u8>());
    }
    out
}
