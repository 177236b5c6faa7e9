//! A tenant's model settings (its own OpenAI-compatible provider, key encrypted at rest,
//! and budgets) and its usage report.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Query};
use crate::state::AppState;
use axum::extract::State;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use morningai_app::models::{AiSettings, AiSettingsUpdate};
use morningai_core::usage::{NANOS_PER_USD, UsageGroup, UsageRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The tenant's model settings; the API key is never returned.
#[utoipa::path(get, path = "/api/v1/tenant/ai", tag = "tenants",
    responses((status = 200, body = AiSettings)), security(("bearer" = [])))]
pub async fn get_settings(
    State(state): State<AppState>,
    who: Caller,
) -> ApiResult<axum::Json<AiSettings>> {
    Ok(axum::Json(state.models.settings(who.cx()).await?))
}

/// Replaces the tenant's model settings (admin+). An omitted `api_key` keeps the stored
/// one while `base_url` is unchanged; `""` removes it.
#[utoipa::path(put, path = "/api/v1/tenant/ai", tag = "tenants", request_body = AiSettingsUpdate,
    responses((status = 200, body = AiSettings), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn put_settings(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<AiSettingsUpdate>,
) -> ApiResult<axum::Json<AiSettings>> {
    Ok(axum::Json(state.set_ai_settings(&who, req).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// RFC 3339 instant or `YYYY-MM-DD` (that day's start, UTC). Default: 30 days before `to`.
    pub from: Option<String>,
    /// RFC 3339 instant (exclusive) or `YYYY-MM-DD` (through the end of that day, UTC).
    /// Default: now.
    pub to: Option<String>,
    #[param(value_type = Option<UsageGroup>)]
    pub group_by: Option<UsageGroup>,
}

#[derive(Serialize, ToSchema)]
pub struct UsageLine {
    /// The day (`YYYY-MM-DD`), model, or task id (`""`: calls outside a task); absent in
    /// the total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub cost_usd: f64,
    /// Calls to models without a price (counted with tokens, no cost).
    pub unpriced_calls: u64,
}

#[derive(Serialize, ToSchema)]
pub struct UsageReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: UsageGroup,
    pub rows: Vec<UsageLine>,
    pub total: UsageLine,
}

fn line(key: Option<String>, r: &UsageRow) -> UsageLine {
    UsageLine {
        key,
        calls: r.calls,
        prompt_tokens: r.prompt_tokens,
        completion_tokens: r.completion_tokens,
        total_tokens: r.prompt_tokens + r.completion_tokens,
        cost_usd: r.cost_nanousd as f64 / NANOS_PER_USD,
        unpriced_calls: r.unpriced_calls,
    }
}

/// An instant, or a date meaning that day's start (`end_of_day`: the next day's start).
fn instant(field: &str, raw: &str, end_of_day: bool) -> ApiResult<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        ApiError::invalid(field, "must be an RFC 3339 instant or a YYYY-MM-DD date")
    })?;
    let day = if end_of_day {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    Ok(day.and_time(chrono::NaiveTime::MIN).and_utc())
}

/// Model usage and cost in `[from, to)`, grouped by day, model or task.
#[utoipa::path(get, path = "/api/v1/usage", tag = "usage", params(UsageQuery),
    responses((status = 200, body = UsageReport), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn usage(
    State(state): State<AppState>,
    who: Caller,
    Query(q): Query<UsageQuery>,
) -> ApiResult<axum::Json<UsageReport>> {
    let to = match &q.to {
        Some(raw) => instant("to", raw, true)?,
        None => morningai_core::now(),
    };
    let from = match &q.from {
        Some(raw) => instant("from", raw, false)?,
        None => to - Duration::days(30),
    };
    if from >= to {
        return Err(ApiError::invalid("from", "must be before to"));
    }
    if to - from > Duration::days(400) {
        return Err(ApiError::invalid(
            "from",
            "the range may span at most 400 days",
        ));
    }
    let group_by = q.group_by.unwrap_or(UsageGroup::Day);
    let rows = state
        .models
        .ledger()
        .usage_report(who.cx(), from, to, group_by)
        .await?;
    let mut total = UsageRow::default();
    for r in &rows {
        total.calls += r.calls;
        total.prompt_tokens += r.prompt_tokens;
        total.completion_tokens += r.completion_tokens;
        total.cost_nanousd += r.cost_nanousd;
        total.unpriced_calls += r.unpriced_calls;
    }
    Ok(axum::Json(UsageReport {
        from,
        to,
        group_by,
        rows: rows.iter().map(|r| line(Some(r.key.clone()), r)).collect(),
        total: line(None, &total),
    }))
}
