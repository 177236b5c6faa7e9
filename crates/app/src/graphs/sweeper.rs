//! Background duties of the graph layer, safe to run in every process: expiring pending
//! approvals (the run resumes as rejected, or fails, per the graph's policy) and checkpoint
//! retention (a tenant's threads idle past its TTL lose their checkpoints).

use super::records::{Approval, ApprovalStatus, Thread, ThreadStatus};
use super::{Graphs, Record, decode, get, put};
use crate::auth::Principal;
use chrono::Utc;
use morningai_core::objects::StoredObject;
use morningai_core::{Result, Role, Store, TenantCtx};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Per-tenant settings documents (kind `settings`, id = tenant id).
const SETTINGS: &str = "settings";

/// Sets how many days a tenant's idle threads keep their checkpoints (0: forever).
pub async fn set_checkpoint_ttl(store: &dyn Store, cx: TenantCtx, days: u32) -> Result<()> {
    set_setting(store, cx, "checkpoint_ttl_days", json!(days)).await
}

/// One of the tenant's settings (null when it has none).
pub(crate) async fn setting(store: &dyn Store, cx: TenantCtx, key: &str) -> Result<Value> {
    Ok(store
        .get_object(cx, SETTINGS, cx.tenant_id.0)
        .await?
        .map_or(Value::Null, |s| s.body[key].clone()))
}

/// Sets one of the tenant's settings, keeping the others.
pub(crate) async fn set_setting(
    store: &dyn Store,
    cx: TenantCtx,
    key: &str,
    value: Value,
) -> Result<()> {
    let now = morningai_core::now();
    let mut settings = store
        .get_object(cx, SETTINGS, cx.tenant_id.0)
        .await?
        .unwrap_or(StoredObject {
            kind: SETTINGS.into(),
            id: cx.tenant_id.0,
            parent: None,
            status: "active".into(),
            body: json!({}),
            due_at: None,
            created_at: now,
            updated_at: now,
        });
    if !settings.body.is_object() {
        settings.body = json!({});
    }
    settings.body[key] = value;
    settings.updated_at = now;
    store.put_object(cx, &settings).await
}

/// Sweeps every `every` until `stop`; `default_ttl_days` applies to tenants without a
/// setting of their own.
pub async fn run(
    graphs: Arc<Graphs>,
    default_ttl_days: u64,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        if let Err(e) = graphs.sweep_once(default_ttl_days).await {
            tracing::warn!(error = %e, "graph sweeper pass failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
    }
}

impl Graphs {
    pub async fn sweep_once(&self, default_ttl_days: u64) -> Result<()> {
        self.expire_approvals().await?;
        self.apply_retention(default_ttl_days).await
    }

    async fn expire_approvals(&self) -> Result<()> {
        let due = self
            .store
            .due_objects(
                Approval::KIND,
                ApprovalStatus::Pending.as_str(),
                Utc::now(),
                500,
            )
            .await?;
        for (tenant, o) in due {
            let a: Approval = decode(o)?;
            let cx = TenantCtx::new(tenant);
            let Some(resolved) = self.catalog.resolve(&*self.store, cx, &a.graph_id).await else {
                continue;
            };
            let (thread, graph, interrupt, requester) = (
                a.thread_id,
                a.graph_id.clone(),
                a.interrupt_id.clone(),
                a.requested_by,
            );
            // A decision that arrived first wins; expiry then has nothing to do.
            if !self.claim(cx, &a, ApprovalStatus::Expired, None).await? {
                continue;
            }
            self.close(
                cx,
                a,
                ApprovalStatus::Expired,
                None,
                Some("expired without a decision".into()),
            )
            .await?;
            if resolved.approvals.on_expiry_fail {
                if let Some(mut t) = get::<Thread>(&*self.store, cx, thread).await? {
                    t.status = ThreadStatus::Error;
                    t.error = Some("the approval expired".into());
                    put(&*self.store, cx, &mut t).await?;
                }
                continue;
            }
            // The run resumes as rejected, on behalf of the person who started it.
            let system = Principal {
                user_id: requester.unwrap_or_default(),
                tenant_id: tenant,
                role: Role::Owner,
                api_key: None,
                ip: None,
            };
            self.resume_thread(
                &system,
                thread,
                &graph,
                &interrupt,
                json!({"approved": false, "expired": true}),
            )
            .await?;
        }
        Ok(())
    }

    /// Every tenant with threads: its TTL (its setting, else the default).
    async fn apply_retention(&self, default_ttl_days: u64) -> Result<()> {
        for tenant in self.store.tenants_with_objects(Thread::KIND).await? {
            let cx = TenantCtx::new(tenant);
            let days = setting(&*self.store, cx, "checkpoint_ttl_days")
                .await?
                .as_u64()
                .unwrap_or(default_ttl_days);
            if days > 0 {
                self.checkpointer
                    .expire(cx, Utc::now() - chrono::Duration::days(days as i64))
                    .await?;
            }
        }
        Ok(())
    }
}
