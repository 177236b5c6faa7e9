//! Model usage and cost: what each call consumed (as the provider reported it), priced from
//! a configurable table, recorded per tenant, task and model; and per-tenant budgets that
//! are checked before a call is sent.

use crate::ai::TokenUsage;
use crate::{Error, Result, TaskId, TenantCtx};
use async_trait::async_trait;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Nano-US-dollars: a token of a cheap model costs a fraction of a micro-dollar.
pub const NANOS_PER_USD: f64 = 1e9;

/// One model call.
#[derive(Clone, Debug, PartialEq)]
pub struct UsageRecord {
    pub at: DateTime<Utc>,
    pub task_id: Option<TaskId>,
    pub provider: String,
    pub model: String,
    pub usage: TokenUsage,
    /// None when the price table has no entry for the model.
    pub cost_nanousd: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UsageGroup {
    Day,
    Model,
    Task,
}

/// Usage summed over a group: a UTC day (`YYYY-MM-DD`), a model, or a task id (`""` for
/// calls made outside a task).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageRow {
    pub key: String,
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_nanousd: i64,
    /// Calls whose model had no price (their cost counts as 0).
    pub unpriced_calls: u64,
}

/// Tokens and cost since some instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageTotals {
    pub tokens: u64,
    pub cost_nanousd: i64,
}

/// Where usage is kept (the store of either deployment mode).
#[async_trait]
pub trait UsageLedger: Send + Sync + 'static {
    async fn record_usage(&self, cx: TenantCtx, record: &UsageRecord) -> Result<()>;
    /// The tenant's totals for calls at or after `since`.
    async fn usage_since(&self, cx: TenantCtx, since: DateTime<Utc>) -> Result<UsageTotals>;
    /// Calls in `[from, to)`, grouped, ordered by key.
    async fn usage_report(
        &self,
        cx: TenantCtx,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group: UsageGroup,
    ) -> Result<Vec<UsageRow>>;
}

/// US dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

/// Prices by model name. A provider's dated name (`gpt-4o-mini-2024-07-18`) takes the
/// price of the longest configured name it starts with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PriceTable(pub BTreeMap<String, Price>);

impl PriceTable {
    pub fn price(&self, model: &str) -> Option<Price> {
        self.0.get(model).copied().or_else(|| {
            self.0
                .iter()
                .filter(|(name, _)| model.starts_with(name.as_str()))
                .max_by_key(|(name, _)| name.len())
                .map(|(_, p)| *p)
        })
    }

    pub fn cost_nanousd(&self, model: &str, usage: TokenUsage) -> Option<i64> {
        let p = self.price(model)?;
        let usd = usage.prompt_tokens as f64 * p.input_per_mtok / 1e6
            + usage.completion_tokens as f64 * p.output_per_mtok / 1e6;
        Some((usd * NANOS_PER_USD).round() as i64)
    }
}

/// A tenant's limits; None is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Token counts are stored as 64-bit signed integers: at most 2^63 - 1.
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub daily_tokens: Option<u64>,
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    pub monthly_tokens: Option<u64>,
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
}

/// Start of the UTC day and of the UTC month holding `now`.
pub fn budget_windows(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = now.date_naive();
    let start =
        |d: chrono::NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default());
    (start(day), start(day.with_day(1).unwrap_or(day)))
}

impl Budget {
    pub fn is_unlimited(&self) -> bool {
        *self == Self::default()
    }

    /// Refuses a call when the tenant's spending so far, plus what the call may add at
    /// most (`reserve`: its completion-token cap, and that many tokens' cost), would pass a
    /// limit. The prompt's own tokens are not known before the provider counts them, so a
    /// call is let through while the spending is below the limit by at least the reserve.
    pub fn check(
        &self,
        today: UsageTotals,
        month: UsageTotals,
        reserve_tokens: u64,
        reserve_nanousd: i64,
    ) -> Result<()> {
        let tokens = |limit: Option<u64>, used: u64, window: &str| match limit {
            Some(l) if used + reserve_tokens > l || used >= l => Err(exceeded(format!(
                "the tenant's {window} token budget ({l}) would be exceeded: {used} used, this call may use {reserve_tokens} more"
            ))),
            _ => Ok(()),
        };
        let money = |limit: Option<f64>, used: i64, window: &str| match limit {
            Some(l)
                if (used + reserve_nanousd) as f64 > l * NANOS_PER_USD
                    || used as f64 >= l * NANOS_PER_USD =>
            {
                Err(exceeded(format!(
                    "the tenant's {window} spending budget (${l:.2}) would be exceeded: ${:.4} spent",
                    used as f64 / NANOS_PER_USD
                )))
            }
            _ => Ok(()),
        };
        tokens(self.daily_tokens, today.tokens, "daily")?;
        tokens(self.monthly_tokens, month.tokens, "monthly")?;
        money(self.daily_usd, today.cost_nanousd, "daily")?;
        money(self.monthly_usd, month.cost_nanousd, "monthly")
    }
}

fn exceeded(message: String) -> Error {
    Error::LimitExceeded {
        code: "budget_exceeded",
        message: format!("{message}; no request was sent to the model provider"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_model_names_take_the_longest_prefix_price() {
        let t: PriceTable = serde_json::from_value(serde_json::json!({
            "gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10.0},
            "gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6},
        }))
        .unwrap();
        let u = TokenUsage {
            prompt_tokens: 1_000,
            completion_tokens: 500,
        };
        // 1000 × 0.15/1e6 + 500 × 0.6/1e6 = 0.00045 USD
        assert_eq!(t.cost_nanousd("gpt-4o-mini-2024-07-18", u), Some(450_000));
        assert_eq!(t.cost_nanousd("gpt-4o-2024-08-06", u), Some(7_500_000));
        assert_eq!(t.cost_nanousd("llama3", u), None);
    }

    #[test]
    fn budgets_refuse_what_would_pass_a_limit() {
        let b = Budget {
            daily_tokens: Some(1_000),
            monthly_usd: Some(1.0),
            ..Budget::default()
        };
        let used = |tokens, usd: f64| UsageTotals {
            tokens,
            cost_nanousd: (usd * NANOS_PER_USD) as i64,
        };
        assert!(b.check(used(500, 0.0), used(500, 0.0), 400, 0).is_ok());
        let e = b.check(used(700, 0.0), used(700, 0.0), 400, 0).unwrap_err();
        assert!(
            matches!(
                e,
                Error::LimitExceeded {
                    code: "budget_exceeded",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("daily token budget (1000)"), "{e}");
        assert!(b.check(used(0, 0.0), used(0, 1.0), 0, 0).is_err());
        assert!(b.check(used(0, 0.0), used(0, 0.5), 0, 0).is_ok());
    }

    #[test]
    fn windows_start_at_utc_midnight_and_the_first() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 17, 3, 9).unwrap();
        let (d, m) = budget_windows(now);
        assert_eq!(d, Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap());
        assert_eq!(m, Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap());
    }
}
