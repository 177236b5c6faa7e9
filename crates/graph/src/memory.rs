//! The in-memory checkpointer (tests, benchmarks, ephemeral runs).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::checkpoint::{Checkpoint, Checkpointer};
use morningai_core::{Result, TenantCtx, TenantId};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

type ThreadKey = (TenantId, String);
/// Pending writes per (thread, checkpoint): (task key, value).
type WriteMap = HashMap<(ThreadKey, Uuid), Vec<(String, Value)>>;

#[derive(Default)]
pub struct MemoryCheckpointer {
    checkpoints: Mutex<HashMap<ThreadKey, Vec<Checkpoint>>>,
    writes: Mutex<WriteMap>,
}

fn key(cx: TenantCtx, thread: &str) -> ThreadKey {
    (cx.tenant_id, thread.to_owned())
}

#[async_trait]
impl Checkpointer for MemoryCheckpointer {
    async fn put(&self, cx: TenantCtx, c: &Checkpoint) -> Result<()> {
        let mut all = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        let list = all.entry(key(cx, &c.thread_id)).or_default();
        match list.iter_mut().find(|x| x.id == c.id) {
            Some(x) => *x = c.clone(),
            None => list.push(c.clone()),
        }
        Ok(())
    }

    async fn put_writes(
        &self,
        cx: TenantCtx,
        thread: &str,
        checkpoint_id: Uuid,
        writes: &[(String, Value)],
    ) -> Result<()> {
        let mut all = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let list = all.entry((key(cx, thread), checkpoint_id)).or_default();
        for (task, value) in writes {
            list.retain(|(t, _)| t != task);
            list.push((task.clone(), value.clone()));
        }
        Ok(())
    }

    async fn pending_writes(
        &self,
        cx: TenantCtx,
        thread: &str,
        checkpoint_id: Uuid,
    ) -> Result<Vec<(String, Value)>> {
        let all = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let mut w = all
            .get(&(key(cx, thread), checkpoint_id))
            .cloned()
            .unwrap_or_default();
        w.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(w)
    }

    async fn thread_checkpoints(&self, cx: TenantCtx, thread: &str) -> Result<Vec<Checkpoint>> {
        let all = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        let mut v = all.get(&key(cx, thread)).cloned().unwrap_or_default();
        v.sort_by_key(|c| c.id);
        Ok(v)
    }

    async fn compact(&self, cx: TenantCtx, thread: &str, snapshot: &Checkpoint) -> Result<u64> {
        let mut all = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        let list = all.entry(key(cx, thread)).or_default();
        let removed = list.iter().filter(|c| c.id < snapshot.id).count() as u64;
        list.retain(|c| c.id > snapshot.id);
        list.push(snapshot.clone());
        list.sort_by_key(|c| c.id);
        Ok(removed)
    }

    async fn delete_thread(&self, cx: TenantCtx, thread: &str) -> Result<u64> {
        let mut all = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        let n = all.remove(&key(cx, thread)).map_or(0, |v| v.len());
        self.writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(k, _), _| *k != key(cx, thread));
        Ok(n as u64)
    }

    async fn expire(&self, cx: TenantCtx, before: DateTime<Utc>) -> Result<u64> {
        let mut all = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        let stale: Vec<ThreadKey> = all
            .iter()
            .filter(|(k, v)| {
                k.0 == cx.tenant_id
                    && v.iter()
                        .map(|c| c.created_at)
                        .max()
                        .is_some_and(|t| t < before)
            })
            .map(|(k, _)| k.clone())
            .collect();
        Ok(stale
            .iter()
            .filter_map(|k| all.remove(k))
            .map(|v| v.len() as u64)
            .sum())
    }

    async fn stored_bytes(&self, cx: TenantCtx, thread: Option<&str>) -> Result<u64> {
        let all = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        Ok(all
            .iter()
            .filter(|((tenant, t), _)| *tenant == cx.tenant_id && thread.is_none_or(|th| th == t))
            .flat_map(|(_, list)| list)
            .map(|c| serde_json::to_vec(c).map_or(0, |v| v.len() as u64))
            .sum())
    }
}
