//! Extractors that turn bad input into precise problems: which field, what was wrong.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

/// JSON body. Syntax errors → 400 `malformed_json`; type/field errors → 422 naming the
/// field path; over the body limit → 413; wrong content type → 415.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(Json)
    }
}

/// A JSON body as `T`. One rule for every request type, on every backend: the body is an
/// object (serde would also build a struct from an array of its fields); a string (or
/// object key) holding U+0000 is refused with 422 naming the field — PostgreSQL cannot
/// store it in text, and SQLite would silently differ — and so is an integer above
/// 2^63 - 1 (every integer field is documented as `int64` or narrower; an unsigned field
/// would take it) and data after the value.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(b'[' | b'"' | b'n' | b't' | b'f' | b'-' | b'0'..=b'9') => {
            return Err(ApiError::invalid("body", "expected a JSON object"));
        }
        _ => {} // not JSON at all: the parse below says where
    }
    if bytes.windows(6).any(|w| w == b"\\u0000") || has_long_digit_run(bytes) {
        refuse_unstorable(bytes)?;
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = strip_position(&inner.to_string());
                ApiError::invalid(field_of(&path, &message), message)
            }
            _ => ApiError::bad_request(
                "malformed_json",
                format!("the body is not valid JSON: {inner}"),
            ),
        }
    })?;
    de.end().map_err(|e| {
        ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON: data after the value ({e})"),
        )
    })?;
    Ok(value)
}

/// Whether the body has 19 digits in a row: the shortest integer above 2^63 - 1 has 19.
fn has_long_digit_run(bytes: &[u8]) -> bool {
    let mut run = 0;
    bytes.iter().any(|b| {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        run >= 19
    })
}

/// 422 naming the first field whose string (or key) holds U+0000, or whose integer is above
/// 2^63 - 1. The text `\u0000` can also be an escaped backslash followed by "u0000", and 19
/// digits can be a string or a smaller number: those are fine.
fn refuse_unstorable(bytes: &[u8]) -> Result<(), ApiError> {
    const NUL: &str = "contains a NUL character (U+0000), which text fields cannot hold";
    const HUGE: &str = "must be at most 9223372036854775807 (2^63 - 1)";
    fn find(v: &serde_json::Value, path: &str) -> Option<(String, &'static str)> {
        let at = |key: &str| {
            if path.is_empty() {
                key.to_owned()
            } else {
                format!("{path}.{key}")
            }
        };
        match v {
            serde_json::Value::String(s) => s.contains('\0').then(|| (path.to_owned(), NUL)),
            serde_json::Value::Number(n) => n
                .as_u64()
                .is_some_and(|n| i64::try_from(n).is_err())
                .then(|| (path.to_owned(), HUGE)),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, x)| find(x, &format!("{path}[{i}]"))),
            serde_json::Value::Object(m) => m.iter().find_map(|(k, x)| {
                if k.contains('\0') {
                    Some((at(k), NUL))
                } else {
                    find(x, &at(k))
                }
            }),
            _ => None,
        }
    }
    // A body that does not parse as a value is refused here: the typed parse skips fields
    // it does not know without checking them, and must not be the one to see this body.
    let v = serde_json::from_slice::<serde_json::Value>(bytes).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
    })?;
    match find(&v, "") {
        Some((path, why)) => Err(ApiError::invalid(
            if path.is_empty() {
                "body".to_owned()
            } else {
                path
            },
            why,
        )),
        None => Ok(()),
    }
}

/// A raw body, with the same problems as [`Json`] when it is too large or unreadable.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(body_rejection)
    }
}

/// A query string or path that carries `%00`: 422 naming the parameter.
fn refuse_encoded_nul(raw: &str, what: &str) -> Result<(), ApiError> {
    let Some(part) = raw.split(['&', '/']).find(|p| p.contains("%00")) else {
        return Ok(());
    };
    let field = match part.split_once('=') {
        Some((name, _)) => name.to_owned(),
        None => what.to_owned(),
    };
    Err(ApiError::invalid(
        field,
        "contains a NUL character (%00), which text fields cannot hold",
    ))
}

/// An optional JSON body: empty (or only whitespace) is `None`.
pub fn optional_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<Option<T>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    parse_json(bytes).map(Some)
}

/// The offending field: the path to the error, or for an unknown or missing field, that
/// field's own name.
fn field_of(path: &str, message: &str) -> String {
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next());
    let parent = if path == "." { None } else { Some(path) };
    match (parent, named) {
        (Some(p), Some(n)) if !p.ends_with(n) => format!("{p}.{n}"),
        (Some(p), _) => p.to_owned(),
        (None, Some(n)) => n.to_owned(),
        (None, None) => "body".to_owned(),
    }
}

/// serde_json appends " at line 1 column 17"; the field path already says where.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn body_rejection(r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body exceeds the configured limit",
        )
    } else {
        ApiError::bad_request("bad_body", r.body_text())
    }
}

/// Bodies declared larger than this after the limit are not drained: the connection closes.
const DRAIN_CAP: u64 = 16 * 1024 * 1024;

/// The declared length (`Content-Length`) of a request body over `limit`, if it is.
pub fn declared_over(req: &Request, limit: usize) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|n| *n > limit as u64)
}

/// Answers a request whose body is declared `n` bytes, over the limit: 413 without reading
/// it into memory — after draining what the client sends (up to [`DRAIN_CAP`], for at most
/// 10 s), so that a client still writing reads the answer instead of a reset connection.
/// Bodies without a declared length meet the limit as they are read (`DefaultBodyLimit`).
pub async fn refuse_oversized(req: Request, n: u64, limit: usize) -> axum::response::Response {
    use axum::response::IntoResponse;
    let drained = n <= DRAIN_CAP && {
        use futures_util::StreamExt;
        let mut body = req.into_body().into_data_stream();
        let drain = async { while let Some(Ok(_)) = body.next().await {} };
        tokio::time::timeout(std::time::Duration::from_secs(10), drain)
            .await
            .is_ok()
    };
    let mut res = ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the request body ({n} bytes) exceeds the limit of {limit} bytes"),
    )
    .into_response();
    if !drained {
        res.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    res
}

/// Path parameters; an invalid UUID names the parameter.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        refuse_encoded_nul(parts.uri.path(), "path")?;
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(path_rejection)
    }
}

fn path_rejection(r: PathRejection) -> ApiError {
    match r {
        PathRejection::FailedToDeserializePathParams(e) => {
            let kind = e.into_kind();
            let field = match &kind {
                axum::extract::path::ErrorKind::ParseErrorAtKey { key, .. } => key.clone(),
                axum::extract::path::ErrorKind::ParseError { .. } => "id".to_owned(),
                _ => "path".to_owned(),
            };
            ApiError::bad_request("invalid_path_parameter", format!("{field}: {kind}"))
        }
        other => ApiError::bad_request("invalid_path_parameter", other.body_text()),
    }
}

/// Query string; bad values name the parameter.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        refuse_encoded_nul(parts.uri.query().unwrap_or_default(), "query")?;
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(query_rejection)
    }
}

fn query_rejection(r: QueryRejection) -> ApiError {
    let text = r.body_text();
    let detail = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text)
        .to_owned();
    ApiError::bad_request("invalid_query", detail)
}

/// A `limit` query parameter (kept as text so a bad one gets this problem, not a generic
/// query rejection): `default` when absent; anything but a whole number from 1 to `max` is
/// a 422 saying so.
pub fn limit_param(raw: Option<&str>, default: u32, max: u32) -> Result<u32, ApiError> {
    let Some(raw) = raw else { return Ok(default) };
    raw.parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| ApiError::invalid("limit", format!("must be between 1 and {max}")))
}
