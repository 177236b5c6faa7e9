//! Sign-up, login, token refresh and rotation, logout, tenant switching, and `/me`.

use crate::auth::{Caller, ClientIp};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::Json;
use crate::routes::clean_name;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use morningai_app::auth::{
    ACCESS_TTL_SECS, REFRESH_TTL_DAYS, check_password_policy, hash_password, random_secret, sha256,
    verify_password,
};
use morningai_core::entities::{
    Membership, NewRefreshToken, NewTenant, NewUser, RefreshUse, Tenant, User,
};
use morningai_core::{Email, Slug, TenantId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

const REFRESH_COOKIE: &str = "morningai_refresh";

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    pub email: Email,
    pub password: String,
    pub name: Option<String>,
    pub tenant_name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: Email,
    pub password: String,
    pub tenant_id: Option<TenantId>,
}

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

/// Tokens for a session in one tenant. The refresh token is also set as an `HttpOnly;
/// Secure; SameSite=Strict` cookie scoped to `/api/v1/auth`.
#[derive(Serialize, ToSchema)]
pub struct Session {
    pub user: User,
    pub tenant: Tenant,
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub memberships: Vec<Membership>,
    /// The tenant of the current credential and the caller's role there.
    pub current_tenant_id: TenantId,
    pub current_role: morningai_core::Role,
}

async fn start_session(
    state: &AppState,
    user: User,
    tenant: Tenant,
    family: Option<Uuid>,
    status: StatusCode,
) -> ApiResult<Response> {
    let refresh = random_secret("mrt_");
    state
        .store
        .insert_refresh_token(NewRefreshToken {
            token_hash: sha256(refresh.as_bytes()),
            family_id: family.unwrap_or_else(Uuid::new_v4),
            user_id: user.id,
            tenant_id: tenant.id,
            expires_at: chrono::Utc::now() + chrono::Duration::days(REFRESH_TTL_DAYS),
        })
        .await?;
    let access = state.auth.tokens.issue(user.id, tenant.id)?;
    let cookie = format!(
        "{REFRESH_COOKIE}={refresh}; HttpOnly; Secure; SameSite=Strict; Path=/api/v1/auth; Max-Age={}",
        REFRESH_TTL_DAYS * 86_400
    );
    let body = Session {
        user,
        tenant,
        access_token: access,
        refresh_token: refresh,
        token_type: "Bearer",
        expires_in: ACCESS_TTL_SECS,
    };
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "morningai_refresh=; HttpOnly; Secure; SameSite=Strict; Path=/api/v1/auth; Max-Age=0",
    )
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == REFRESH_COOKIE)
        .map(|(_, v)| v.to_owned())
}

async fn tenant_of(state: &AppState, user: UserId, tenant: TenantId) -> ApiResult<Option<Tenant>> {
    let ms = state.store.memberships_of(user).await?;
    Ok(ms
        .into_iter()
        .find(|m| m.tenant.id == tenant)
        .map(|m| m.tenant))
}

fn slug_suffix() -> String {
    Uuid::new_v4().simple().to_string()[..6].to_owned()
}

/// Creates a user and a tenant the user owns.
#[utoipa::path(post, path = "/api/v1/auth/signup", tag = "auth", request_body = SignupRequest,
    responses((status = 201, body = Session), (status = 409, body = Problem, description = "email taken"),
              (status = 403, body = Problem, description = "sign-up disabled"), (status = 422, body = Problem)))]
pub async fn signup(
    State(state): State<AppState>,
    Json(req): Json<SignupRequest>,
) -> ApiResult<Response> {
    if !state.config.signup_enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "signup_disabled",
            "sign-up is disabled on this server",
        ));
    }
    check_password_policy(&req.password)?;
    let name = req
        .name
        .as_deref()
        .map(|n| clean_name("name", n))
        .transpose()?;
    let tenant_name = match req.tenant_name.as_deref() {
        Some(t) => clean_name("tenant_name", t)?,
        None => format!(
            "{}'s workspace",
            name.as_deref().unwrap_or(req.email.as_str())
        ),
    };
    let password = req.password;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::internal("hash task", e))??;
    let user = NewUser {
        email: req.email,
        name,
        password_hash: hash,
        is_platform_admin: false,
    };
    let tenant = NewTenant {
        slug: Slug::from_name(&tenant_name, &slug_suffix()),
        name: tenant_name,
    };
    let (user, tenant) = state.store.create_user_with_tenant(user, tenant).await?;
    start_session(&state, user, tenant, None, StatusCode::CREATED).await
}

fn rate_limited(retry_after: u64) -> ApiError {
    ApiError {
        retry_after: Some(retry_after.max(1)),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many login attempts; retry later",
        )
    }
}

/// Logs in with email and password, into `tenant_id` or the user's first tenant.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = Session), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let clock = governor::clock::DefaultClock::default();
    let wait = |nu: governor::NotUntil<governor::clock::QuantaInstant>| {
        use governor::clock::Clock;
        nu.wait_time_from(clock.now()).as_secs() + 1
    };
    if let Some(ip) = &ip {
        state
            .login_by_ip
            .check_key(ip)
            .map_err(|nu| rate_limited(wait(nu)))?;
    }
    state
        .login_by_email
        .check_key(&req.email.as_str().to_owned())
        .map_err(|nu| rate_limited(wait(nu)))?;

    let creds = state.store.user_credentials(&req.email).await?;
    let stored = creds.as_ref().map(|c| c.password_hash.clone());
    let password = req.password;
    let ok = tokio::task::spawn_blocking(move || verify_password(stored.as_deref(), &password))
        .await
        .map_err(|e| ApiError::internal("verify task", e))?;
    let Some(user) = creds.filter(|_| ok).map(|c| c.user) else {
        return Err(ApiError::unauthorized("wrong email or password"));
    };
    let memberships = state.store.memberships_of(user.id).await?;
    let tenant = match req.tenant_id {
        Some(t) => memberships
            .into_iter()
            .find(|m| m.tenant.id == t)
            .map(|m| m.tenant)
            .ok_or_else(|| ApiError::not_found("tenant"))?,
        None => memberships
            .into_iter()
            .next()
            .map(|m| m.tenant)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "no_tenant",
                    "you are not a member of any tenant",
                )
            })?,
    };
    start_session(&state, user, tenant, None, StatusCode::OK).await
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
    match state
        .store
        .use_refresh_token(&sha256(token.as_bytes()), chrono::Utc::now())
        .await?
    {
        RefreshUse::Rotated {
            family_id,
            user_id,
            tenant_id,
        } => {
            let user = state
                .store
                .user_by_id(user_id)
                .await?
                .ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
            let tenant = tenant_of(&state, user_id, tenant_id)
                .await?
                .ok_or_else(|| {
                    ApiError::unauthorized("you are no longer a member of this tenant")
                })?;
            start_session(&state, user, tenant, Some(family_id), StatusCode::OK).await
        }
        RefreshUse::Reused => {
            tracing::warn!("refresh token reuse detected; the token family was revoked");
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "refresh_token_reused",
                "this refresh token was already used; the session has been revoked",
            ))
        }
        RefreshUse::Invalid => Err(ApiError::unauthorized(
            "the refresh token is invalid or expired",
        )),
    }
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
        state
            .store
            .revoke_refresh_family(&sha256(token.as_bytes()))
            .await?;
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
    if who.api_key.is_some() {
        return Err(ApiError::forbidden(
            "an API key belongs to one tenant and cannot switch",
        ));
    }
    let user = state
        .store
        .user_by_id(who.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
    let tenant = tenant_of(&state, who.user_id, req.tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    start_session(&state, user, tenant, None, StatusCode::OK).await
}

/// The caller and all their memberships.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", responses((status = 200, body = Me)), security(("bearer" = [])))]
pub async fn me(State(state): State<AppState>, who: Caller) -> ApiResult<axum::Json<Me>> {
    let user = state
        .store
        .user_by_id(who.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
    let memberships = state.store.memberships_of(who.user_id).await?;
    Ok(axum::Json(Me {
        user,
        memberships,
        current_tenant_id: who.tenant_id,
        current_role: who.role,
    }))
}
