//! The audit log on SQLite.

use crate::convert::{get, json, json_text, micros, time};
use crate::store::SqliteStore;
use async_trait::async_trait;
use morningai_core::entities::*;
use morningai_core::{AuditLog, Error, Result, TenantCtx, now};
use rusqlite::params;
use uuid::Uuid;

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    let actor = json(r, 1)?;
    Ok(AuditEntry {
        id: get(r, 0)?,
        actor: serde_json::from_value(actor).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into())
        })?,
        action: r.get(2)?,
        resource_type: r.get(3)?,
        resource_id: r.get(4)?,
        ip: r.get(5)?,
        details: json(r, 6)?,
        created_at: time(r.get(7)?),
    })
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn audit(&self, cx: TenantCtx, e: NewAuditEntry) -> Result<()> {
        self.write("append audit entry", move |tx| {
            let actor = serde_json::to_string(&e.actor).map_err(|err| Error::internal("encode actor", err))?;
            tx.execute(
                "INSERT INTO audit_log (id, tenant_id, actor, action, resource_type, resource_id, ip, details, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    Uuid::now_v7().to_string(),
                    cx.tenant_id.to_string(),
                    actor,
                    e.action,
                    e.resource_type,
                    e.resource_id,
                    e.ip,
                    json_text(&e.details),
                    micros(now())
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn audit_log(
        &self,
        cx: TenantCtx,
        limit: u32,
        before: Option<Uuid>,
    ) -> Result<Vec<AuditEntry>> {
        self.read("read audit log", move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, actor, action, resource_type, resource_id, ip, details, created_at
                 FROM audit_log WHERE tenant_id = ?1 AND (?2 IS NULL OR id < ?2)
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = st.query_map(
                params![
                    cx.tenant_id.to_string(),
                    before.map(|b| b.to_string()),
                    limit
                ],
                audit_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}
