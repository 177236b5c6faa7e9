//! The conformance suite of the `UsageLedger` port. The macro's expression yields
//! `(tenant A, tenant B, ledger)`: two tenants that exist in the backend.

use chrono::{Duration, TimeZone, Utc};
use morningai_core::ai::TokenUsage;
use morningai_core::usage::{UsageGroup, UsageLedger, UsageRecord, UsageRow, UsageTotals};
use morningai_core::{TaskId, TenantCtx};
use std::sync::Arc;

pub type Setup = (TenantCtx, TenantCtx, Arc<dyn UsageLedger>);

#[macro_export]
macro_rules! usage_conformance {
    ($make:expr) => {
        $crate::usage_conformance!($make;
            usage_is_summed_and_grouped_per_tenant,
        );
    };
    ($make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let setup: $crate::usage::Setup = $make.await;
                $crate::usage::$case(setup).await;
            }
        )*
    };
}

fn call(
    at: chrono::DateTime<Utc>,
    task: Option<TaskId>,
    model: &str,
    prompt: u64,
    completion: u64,
    cost: Option<i64>,
) -> UsageRecord {
    UsageRecord {
        at,
        task_id: task,
        provider: "http://provider.test/v1".into(),
        model: model.into(),
        usage: TokenUsage {
            prompt_tokens: prompt,
            completion_tokens: completion,
        },
        cost_nanousd: cost,
    }
}

fn row(key: &str, calls: u64, prompt: u64, completion: u64, cost: i64, unpriced: u64) -> UsageRow {
    UsageRow {
        key: key.into(),
        calls,
        prompt_tokens: prompt,
        completion_tokens: completion,
        cost_nanousd: cost,
        unpriced_calls: unpriced,
    }
}

pub async fn usage_is_summed_and_grouped_per_tenant((a, b, ledger): Setup) {
    let day1 = Utc.with_ymd_and_hms(2026, 3, 1, 23, 59, 59).unwrap();
    let day2 = day1 + Duration::seconds(2); // 2026-03-02, just after midnight UTC
    let task = TaskId::new();
    for r in [
        call(day1, Some(task), "gpt-4o-mini", 100, 20, Some(27_000)),
        call(day2, Some(task), "gpt-4o-mini", 200, 40, Some(54_000)),
        call(day2, None, "llama3", 50, 5, None),
    ] {
        ledger.record_usage(a, &r).await.unwrap();
    }
    ledger
        .record_usage(b, &call(day2, None, "gpt-4o-mini", 9_000, 9_000, Some(1)))
        .await
        .unwrap();

    assert_eq!(
        ledger.usage_since(a, day1).await.unwrap(),
        UsageTotals {
            tokens: 415,
            cost_nanousd: 81_000
        }
    );
    assert_eq!(
        ledger.usage_since(a, day2).await.unwrap(),
        UsageTotals {
            tokens: 295,
            cost_nanousd: 54_000
        },
        "usage_since starts at the instant given"
    );
    let (from, to) = (day1 - Duration::days(1), day2 + Duration::days(1));
    let report = |g| ledger.usage_report(a, from, to, g);
    assert_eq!(
        report(UsageGroup::Day).await.unwrap(),
        vec![
            row("2026-03-01", 1, 100, 20, 27_000, 0),
            row("2026-03-02", 2, 250, 45, 54_000, 1),
        ]
    );
    assert_eq!(
        report(UsageGroup::Model).await.unwrap(),
        vec![
            row("gpt-4o-mini", 2, 300, 60, 81_000, 0),
            row("llama3", 1, 50, 5, 0, 1),
        ]
    );
    assert_eq!(
        report(UsageGroup::Task).await.unwrap(),
        vec![
            row("", 1, 50, 5, 0, 1),
            row(&task.to_string(), 2, 300, 60, 81_000, 0)
        ]
    );
    // [from, to): a call exactly at `to` is outside.
    assert_eq!(
        ledger
            .usage_report(a, day1, day2, UsageGroup::Model)
            .await
            .unwrap(),
        vec![row("gpt-4o-mini", 1, 100, 20, 27_000, 0)]
    );
    // Tenant B sees only its own call.
    assert_eq!(
        ledger
            .usage_report(b, from, to, UsageGroup::Model)
            .await
            .unwrap(),
        vec![row("gpt-4o-mini", 1, 9_000, 9_000, 1, 0)]
    );
    assert_eq!(ledger.usage_since(b, from).await.unwrap().tokens, 18_000);
}
