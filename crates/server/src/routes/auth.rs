//! Sign-up, login, token refresh and rotation, logout, tenant switching, and `/me`.

use crate::auth::{Caller, ClientIp};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::Json;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use morningai_app::accounts::{LoginRequest, Me, Session, SignupRequest};
use morningai_app::auth::REFRESH_TTL_DAYS;
use morningai_core::TenantId;
use serde::Deserialize;
use utoipa::ToSchema;

const REFRESH_COOKIE: &str = "morningai_refresh";
/// Proof that this browser logged in to the account before (see `login`).
const CLIENT_COOKIE: &str = "morningai_client";

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// Optional when the `morningai_refresh` cookie is sent instead.
    pub refresh_token: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchTenantRequest {
    pub tenant_id: TenantId,
}

/// The session as JSON; the refresh token also as an `HttpOnly; Secure; SameSite=Strict`
/// cookie scoped to `/api/v1/auth`.
fn session_response(session: Session, status: StatusCode) -> Response {
    let cookie = format!(
        "{REFRESH_COOKIE}={}; HttpOnly; Secure; SameSite=Strict; Path=/api/v1/auth; Max-Age={}",
        session.refresh_token,
        REFRESH_TTL_DAYS * 86_400
    );
    let mut res = (status, axum::Json(session)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "morningai_refresh=; HttpOnly; Secure; SameSite=Strict; Path=/api/v1/auth; Max-Age=0",
    )
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    cookie(headers, REFRESH_COOKIE)
}

/// Marks the response's client as one that logged in to `email` (a year, auth paths only).
fn remember_client(res: &mut Response, state: &AppState, email: &str) {
    let value = format!(
        "{CLIENT_COOKIE}={}; HttpOnly; Secure; SameSite=Strict; Path=/api/v1/auth; Max-Age=31536000",
        state.auth.known_client_token(email)
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Creates a user and a tenant the user owns.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth", request_body = SignupRequest,
    responses((status = 201, body = Session), (status = 409, body = Problem, description = "email taken"),
              (status = 403, body = Problem, description = "sign-up disabled"), (status = 422, body = Problem),
              (status = 429, body = Problem, description = "too many sign-ups from this address")))]
pub async fn signup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<SignupRequest>,
) -> ApiResult<Response> {
    if let Some(ip) = &ip {
        check(
            &state.signup_by_ip,
            ip,
            "too many sign-ups from this address; retry later",
        )?;
    }
    let email = req.email.as_str().to_owned();
    let session = state.signup(req).await?;
    let mut res = session_response(session, StatusCode::CREATED);
    remember_client(&mut res, &state, &email);
    Ok(res)
}

/// Takes one request from `key`'s budget, or answers 429 with when to retry. Keys unseen
/// for a while are forgotten once the limiter holds many (a spray of keys stays bounded).
fn check(
    limiter: &governor::DefaultKeyedRateLimiter<String>,
    key: &str,
    detail: &'static str,
) -> Result<(), ApiError> {
    use governor::clock::Clock;
    if limiter.len() > 100_000 {
        limiter.retain_recent();
    }
    let clock = governor::clock::DefaultClock::default();
    limiter.check_key(&key.to_owned()).map_err(|nu| ApiError {
        retry_after: Some(nu.wait_time_from(clock.now()).as_secs() + 1),
        ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail)
    })
}

/// Logs in with email and password, into `tenant_id` or the user's first tenant.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = Session), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    const TOO_MANY: &str = "too many login attempts; retry later";
    let email = req.email.as_str().to_owned();
    if let Some(ip) = &ip {
        check(&state.login_by_ip, ip, TOO_MANY)?;
    }
    // Per account *and* client: guessing from one address slows that address down, and
    // leaves the account's owner, logging in from elsewhere, alone.
    let key = format!("{email}|{}", ip.as_deref().unwrap_or("-"));
    check(&state.login_by_email, &key, TOO_MANY)?;
    // Per account, for clients that never logged in to it: guessing from many addresses is
    // bounded too, and the owner's own browser (it carries the cookie) is never locked out.
    let known =
        cookie(&headers, CLIENT_COOKIE).is_some_and(|t| state.auth.is_known_client(&email, &t));
    if !known {
        check(&state.login_by_account, &email, TOO_MANY)?;
    }
    let session = state.login(req).await?;
    let mut res = session_response(session, StatusCode::OK);
    remember_client(&mut res, &state, &email);
    Ok(res)
}

/// Rotates a refresh token. Presenting an already-rotated token revokes its whole family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = Session), (status = 401, body = Problem)))]
pub async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<Response> {
    let token = req
        .refresh_token
        .or_else(|| cookie_token(&headers))
        .ok_or_else(|| {
            ApiError::invalid(
                "refresh_token",
                "missing (send it in the body or the morningai_refresh cookie)",
            )
        })?;
    let session = state.refresh_session(&token).await?;
    Ok(session_response(session, StatusCode::OK))
}

/// Ends the session of a refresh token (its whole family).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "logged out")))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<Response> {
    if let Some(token) = req.refresh_token.or_else(|| cookie_token(&headers)) {
        state.logout(&token).await?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(header::SET_COOKIE, clear_cookie());
    Ok(res)
}

/// New tokens for another tenant the caller belongs to.
#[utoipa::path(post, path = "/api/v1/auth/switch-tenant", tag = "auth", request_body = SwitchTenantRequest,
    responses((status = 200, body = Session), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn switch_tenant(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<SwitchTenantRequest>,
) -> ApiResult<Response> {
    let session = state.switch_tenant(&who, req.tenant_id).await?;
    Ok(session_response(session, StatusCode::OK))
}

/// The caller and all their memberships.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", responses((status = 200, body = Me)), security(("bearer" = [])))]
pub async fn me(State(state): State<AppState>, who: Caller) -> ApiResult<axum::Json<Me>> {
    Ok(axum::Json(state.me(&who).await?))
}
