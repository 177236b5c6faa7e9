//! Who is calling: the credential from `Authorization: Bearer` (an access token or an API
//! key) or `x-api-key`, resolved by the application to a principal; and the client IP.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use morningai_app::auth::Principal;
use std::net::SocketAddr;
use std::ops::Deref;

/// The authenticated caller (extractor); derefs to the application's [`Principal`].
#[derive(Clone, Debug)]
pub struct Caller(pub Principal);

impl Deref for Caller {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

pub fn client_ip(parts: &Parts, trust_forwarded_for: bool) -> Option<String> {
    if trust_forwarded_for {
        // A proxy may append its own header line rather than extend the client's: the
        // last line counts.
        let fwd = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok());
        // The address our proxy saw is the last one it appended; whatever comes before it
        // the client wrote itself. Only a well-formed address is taken.
        if let Some(ip) = fwd
            .and_then(|v| v.rsplit(',').next())
            .and_then(|s| s.trim().parse::<std::net::IpAddr>().ok())
        {
            return Some(ip.to_string());
        }
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

fn credential(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, token) = v.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim());
    }
    parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = credential(parts).ok_or_else(|| {
            ApiError::unauthorized(
                "missing credentials: send Authorization: Bearer <token> or x-api-key",
            )
        })?;
        let ip = client_ip(parts, state.config.trust_forwarded_for);
        Ok(Caller(state.auth.authenticate(token, ip).await?))
    }
}

/// The caller's IP, for unauthenticated endpoints (login rate limits, audit).
pub struct ClientIp(pub Option<String>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts, state.config.trust_forwarded_for)))
    }
}

#[cfg(test)]
mod tests {
    use super::client_ip;

    fn parts(lines: &[&str]) -> axum::http::request::Parts {
        let mut req = axum::http::Request::builder();
        for l in lines {
            req = req.header("x-forwarded-for", *l);
        }
        req.body(()).unwrap().into_parts().0
    }

    /// HAProxy's `option forwardfor` adds a header line of its own after the client's: the
    /// client's line must not choose the address.
    #[test]
    fn the_proxys_last_line_and_last_hop_count() {
        let p = parts(&["6.6.6.6", "10.0.0.1, 203.0.113.9"]);
        assert_eq!(client_ip(&p, true).as_deref(), Some("203.0.113.9"));
        let p = parts(&["6.6.6.6, 198.51.100.4"]);
        assert_eq!(client_ip(&p, true).as_deref(), Some("198.51.100.4"));
        assert_eq!(
            client_ip(&p, false),
            None,
            "untrusted: the socket's address only"
        );
    }
}
