//! The audit log on PostgreSQL.

use crate::store::PgStore;
use async_trait::async_trait;
use morningai_core::entities::*;
use morningai_core::{AuditLog, Error, Result, TenantCtx, now};
use uuid::Uuid;

#[async_trait]
impl AuditLog for PgStore {
    async fn audit(&self, cx: TenantCtx, e: NewAuditEntry) -> Result<()> {
        let actor =
            serde_json::to_value(&e.actor).map_err(|err| Error::internal("encode actor", err))?;
        self.scoped(
            cx,
            "append audit entry",
            "INSERT INTO audit_log (id, tenant_id, actor, action, resource_type, resource_id, ip, details, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[&Uuid::now_v7(), &cx.tenant_id.0, &actor, &e.action, &e.resource_type, &e.resource_id, &e.ip, &e.details, &now()],
        )
        .await?;
        Ok(())
    }

    async fn audit_log(
        &self,
        cx: TenantCtx,
        limit: u32,
        before: Option<Uuid>,
    ) -> Result<Vec<AuditEntry>> {
        let rows = self
            .scoped(
                cx,
                "read audit log",
                "SELECT id, actor, action, resource_type, resource_id, ip, details, created_at
                 FROM audit_log WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2)
                 ORDER BY id DESC LIMIT $3",
                &[&cx.tenant_id.0, &before, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.get(0),
                    actor: serde_json::from_value(r.get(1))
                        .map_err(|e| Error::internal("bad stored actor", e))?,
                    action: r.get(2),
                    resource_type: r.get(3),
                    resource_id: r.get(4),
                    ip: r.get(5),
                    details: r.get(6),
                    created_at: r.get(7),
                })
            })
            .collect()
    }
}
