//! Background duties of the graph layer, safe to run in every API process: expiring
//! pending approvals (the run resumes as rejected, or fails, per the graph's policy) and
//! checkpoint retention (a tenant's threads idle past its TTL lose their checkpoints).

use crate::auth::Principal;
use crate::langgraph::approvals::finish;
use crate::langgraph::routes::resume_thread;
use crate::langgraph::runs::{APPROVAL, THREAD, save};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use morningai_core::{Role, TenantCtx, TenantId, UserId};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Per-tenant settings documents (kind `settings`, id = tenant id).
pub const SETTINGS: &str = "settings";

pub async fn run(state: AppState, every: Duration, stop: CancellationToken) {
    loop {
        if let Err(e) = sweep_once(&state).await {
            tracing::warn!(error = %e.detail, "graph sweeper pass failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
    }
}

pub async fn sweep_once(state: &AppState) -> crate::error::ApiResult<()> {
    let now = Utc::now();
    for (tenant, a) in state
        .store
        .objects_everywhere(APPROVAL, "pending", 500)
        .await?
    {
        let Some(expires) = a.body["expires_at"]
            .as_str()
            .and_then(|s| s.parse::<DateTime<Utc>>().ok())
        else {
            continue;
        };
        if expires > now {
            continue;
        }
        let cx = TenantCtx::new(tenant);
        let graph_id = a.body["graph_id"].as_str().unwrap_or_default().to_owned();
        let Some(resolved) = state.catalog.resolve(&*state.store, cx, &graph_id).await else {
            continue;
        };
        finish(
            state,
            cx,
            a.clone(),
            "expired",
            None,
            Some("expired without a decision".into()),
        )
        .await?;
        let thread = a.parent.unwrap_or_default();
        if resolved.approvals.on_expiry_fail {
            if let Some(mut t) = state.store.get_object(cx, THREAD, thread).await? {
                t.status = "error".into();
                t.body["error"] = json!("the approval expired");
                save(&*state.store, cx, t).await?;
            }
            continue;
        }
        let requester = a.body["requested_by"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .map(UserId)
            .unwrap_or_default();
        let system = Principal {
            user_id: requester,
            tenant_id: tenant,
            role: Role::Owner,
            api_key: None,
            ip: None,
        };
        let interrupt = a.body["interrupt_id"].as_str().unwrap_or_default();
        resume_thread(
            state,
            &system,
            thread,
            &graph_id,
            interrupt,
            json!({"approved": false, "expired": true}),
        )
        .await?;
    }
    // Retention: every tenant with threads, its TTL (settings, else the configured default).
    let mut tenants: BTreeSet<TenantId> = BTreeSet::new();
    for status in ["idle", "error", "interrupted"] {
        tenants.extend(
            state
                .store
                .objects_everywhere(THREAD, status, 10_000)
                .await?
                .into_iter()
                .map(|(t, _)| t),
        );
    }
    for tenant in tenants {
        let cx = TenantCtx::new(tenant);
        let days = match state.store.get_object(cx, SETTINGS, tenant.0).await? {
            Some(s) => s.body["checkpoint_ttl_days"].as_u64(),
            None => None,
        }
        .unwrap_or(state.config.checkpoint_ttl_days);
        if days > 0 {
            state
                .checkpointer
                .expire(cx, Utc::now() - chrono::Duration::days(days as i64))
                .await?;
        }
    }
    Ok(())
}
