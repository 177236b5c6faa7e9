//! The dashboard: its embedded files (`morningai_web`) at `/`, `index.html` for a browser
//! navigating to any client-side route, JSON problems for everything else that has no
//! route. Hashed files under `/assets/` are cached for a year; `index.html` is revalidated.

use crate::error::ApiError;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// What the dashboard's pages may load: their own scripts, styles, images and API, nothing
/// inline, no frames.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Paths that belong to an API, never to the dashboard.
const API_PREFIXES: &[&str] = &[
    "/api/",
    "/v1/",
    "/mcp",
    "/threads",
    "/runs",
    "/assistants",
    "/store",
];

/// Served when the binary was built without Node.js.
const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>MorningAI</title></head><body><h1>MorningAI</h1><p>This binary was built without the \
dashboard: Node.js (20.19 or newer) and npm were not found. Install them and rebuild \
(<code>cargo build --release -p morningai</code>) to get it.</p><p>The API is here: \
<a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> describes it.</p></body></html>";

pub async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let readable = method == Method::GET || method == Method::HEAD;
    if !readable || API_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return not_found();
    }
    let file = path.trim_start_matches('/');
    if let Some(asset) = morningai_web::get(file) {
        return serve(asset, &headers);
    }
    let is_page = !file.rsplit('/').next().unwrap_or("").contains('.');
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if !(is_page && wants_html) {
        return not_found();
    }
    match morningai_web::get("index.html") {
        Some(index) => serve(index, &headers),
        None => html_response(NOT_BUILT.as_bytes(), None),
    }
}

fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route").into_response()
}

fn serve(asset: &morningai_web::Asset, headers: &HeaderMap) -> Response {
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let (body, encoding) = match asset.gzip {
        Some(gz) if gzip_ok => (gz, Some("gzip")),
        _ => (asset.body, None),
    };
    let content_type = content_type(asset.path);
    if content_type.starts_with("text/html") {
        return html_response(body, encoding);
    }
    let cache = if asset.path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut res = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response();
    finish(&mut res, encoding);
    res
}

fn html_response(body: &'static [u8], encoding: Option<&'static str>) -> Response {
    let mut res = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
        .into_response();
    finish(&mut res, encoding);
    res
}

fn finish(res: &mut Response, encoding: Option<&'static str>) {
    let h = res.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(e) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(e));
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "webmanifest" => "application/json",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
