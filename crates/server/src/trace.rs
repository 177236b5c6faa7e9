//! Per-request tracing: a W3C `traceparent` is accepted from the client (or started here),
//! returned on the response, attached to the request's span, and made the application's
//! current trace id (error bodies and new tasks carry it). Also records the HTTP metrics.

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use morningai_app::trace::{random_hex, with_trace_id};
use std::time::Instant;
use tracing::Instrument;

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Parses `version-traceid-parentid-flags`; returns (trace id, flags).
fn parse_traceparent(v: &str) -> Option<(String, String)> {
    let mut parts = v.trim().split('-');
    let (ver, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let valid = is_hex(ver, 2)
        && ver != "ff"
        && is_hex(trace, 32)
        && trace != "0".repeat(32)
        && is_hex(parent, 16)
        && parent != "0".repeat(16)
        && is_hex(flags, 2);
    valid.then(|| (trace.to_owned(), flags.to_owned()))
}

/// What the outermost layer needs from the configuration.
#[derive(Clone, Copy)]
pub struct Edge {
    pub body_limit: usize,
    /// `X-Forwarded-Proto` comes from a proxy we trust (then `https` there turns HSTS on).
    pub trust_forwarded: bool,
}

/// Headers every response carries: no MIME sniffing, no referrer, not framed, and — the
/// API's answers being per caller — not stored by caches unless a handler says otherwise.
/// HSTS when the request came over TLS through a trusted proxy.
fn secure(headers: &mut axum::http::HeaderMap, over_tls: bool) {
    use axum::http::header;
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    if over_tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
}

/// The outermost layer: tracing and metrics for every request, security headers on every
/// response, and the refusal of bodies declared over the limit (inside the request's span,
/// so the 413 carries its trace id).
pub async fn middleware(State(edge): State<Edge>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let over_tls = edge.trust_forwarded
        && req
            .headers()
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let body_limit = edge.body_limit;
    let (trace_id, flags) = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent)
        .unwrap_or_else(|| (random_hex(16), "01".to_owned()));
    let span_id = random_hex(8);
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        %method,
        path = %req.uri().path(),
        trace_id = %trace_id,
        request_id = %span_id,
    );
    let handle = async move {
        match crate::extract::declared_over(&req, body_limit) {
            Some(n) => crate::extract::refuse_oversized(req, n, body_limit).await,
            None => next.run(req).await,
        }
    };
    let mut res = with_trace_id(trace_id.clone(), handle.instrument(span.clone())).await;
    let headers = res.headers_mut();
    secure(headers, over_tls);
    if let Ok(v) = HeaderValue::from_str(&format!("00-{trace_id}-{span_id}-{flags}")) {
        headers.insert("traceparent", v);
    }
    if let Ok(v) = HeaderValue::from_str(&span_id) {
        headers.insert("x-request-id", v);
    }
    let elapsed = start.elapsed();
    let status = res.status().as_u16();
    let route = res
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    metrics::counter!("http_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => status.to_string()).increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method.to_string(), "route" => route).record(elapsed.as_secs_f64());
    span.in_scope(|| tracing::debug!(status, elapsed_ms = elapsed.as_secs_f64() * 1e3, "response"));
    res
}

/// Inner (route-level) layer: routing has happened here, so the matched route is known;
/// hand it out on the response for the outer middleware's metrics labels.
pub async fn mark_route(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut res = next.run(req).await;
    if let Some(m) = matched {
        res.extensions_mut().insert(m);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::parse_traceparent;

    #[test]
    fn traceparent_parsing() {
        let ok = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        assert_eq!(
            parse_traceparent(ok),
            Some(("0af7651916cd43dd8448eb211c80319c".into(), "01".into()))
        );
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-xyz7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?}");
        }
    }
}
