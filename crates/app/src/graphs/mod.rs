//! Graphs served the LangGraph Server way: assistants (a graph and its configuration),
//! threads (checkpointed state), runs (queued jobs of kind `graph_run`), human approvals of
//! interrupts, graphs uploaded by tenants, and the sweeper that expires approvals and old
//! checkpoints. The HTTP shapes live in `server`; everything here returns domain errors.

pub mod approvals;
pub mod assistants;
pub mod catalog;
pub mod execute;
pub mod records;
pub mod runs;
pub mod sweeper;
pub mod threads;
pub mod uploads;

pub use catalog::Catalog;

use morningai_core::checkpoint::Checkpointer;
use morningai_core::objects::{ObjectQuery, StoredObject};
use morningai_core::{Error, Result, Store, TenantCtx};
use morningai_worker::TaskService;
use records::{Approval, Run, Thread};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use uuid::Uuid;

/// Threads, runs, approvals and uploaded graphs of every tenant.
pub struct Graphs {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) checkpointer: Arc<dyn Checkpointer>,
    pub catalog: Arc<Catalog>,
    pub(crate) tasks: Arc<TaskService>,
    pub(crate) limits: RunLimits,
}

/// Sets a tenant's own storage quota in bytes (0: none) — an operator's decision, made
/// with the CLI, not through the API.
pub async fn set_storage_quota(store: &dyn Store, cx: TenantCtx, bytes: u64) -> Result<()> {
    sweeper::set_setting(store, cx, "max_stored_bytes", bytes.into()).await
}

/// The server's ceilings on one run, whatever the request asks: a looping graph stops at
/// the first one it reaches, with an error that names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunLimits {
    /// The highest `recursion_limit` a request may set.
    pub max_steps: u32,
    pub max_time: std::time::Duration,
    /// Stream events one run may write, and their bytes (as JSON).
    pub max_events: u64,
    pub max_event_bytes: u64,
    /// The state's size as JSON, checked before every step.
    pub max_state_bytes: usize,
    /// What a tenant's threads (checkpoints) and task events may take in storage before new
    /// runs are refused (0: no limit); a tenant's own quota, set by the operator, wins.
    pub tenant_max_stored_bytes: u64,
}

/// A record kept in the store's objects table: its kind, its owner (a run's or an
/// approval's thread) and its status are columns, the rest is the JSON body.
pub(crate) trait Record: Serialize + DeserializeOwned {
    const KIND: &'static str;
    fn id(&self) -> Uuid;
    fn parent(&self) -> Option<Uuid>;
    fn status(&self) -> &'static str;
    fn created_at(&self) -> chrono::DateTime<chrono::Utc>;
    fn touch(&mut self);
    /// When a background pass must look at the record again (an approval's expiry).
    fn due_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        None
    }
}

impl Record for Thread {
    const KIND: &'static str = "thread";
    fn id(&self) -> Uuid {
        self.thread_id
    }
    fn parent(&self) -> Option<Uuid> {
        None
    }
    fn status(&self) -> &'static str {
        self.status.as_str()
    }
    fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.created_at
    }
    fn touch(&mut self) {
        self.updated_at = morningai_core::now();
    }
}

impl Record for Run {
    const KIND: &'static str = "run";
    fn id(&self) -> Uuid {
        self.run_id
    }
    fn parent(&self) -> Option<Uuid> {
        Some(self.thread_id)
    }
    fn status(&self) -> &'static str {
        self.status.as_str()
    }
    fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.created_at
    }
    fn touch(&mut self) {
        self.updated_at = morningai_core::now();
    }
}

impl Record for Approval {
    const KIND: &'static str = "approval";
    fn due_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.expires_at
    }
    fn id(&self) -> Uuid {
        self.id
    }
    fn parent(&self) -> Option<Uuid> {
        Some(self.thread_id)
    }
    fn status(&self) -> &'static str {
        self.status.as_str()
    }
    fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.created_at
    }
    fn touch(&mut self) {
        self.updated_at = morningai_core::now();
    }
}

fn object<R: Record>(r: &R) -> Result<StoredObject> {
    Ok(StoredObject {
        kind: R::KIND.into(),
        id: r.id(),
        parent: r.parent(),
        status: r.status().into(),
        body: serde_json::to_value(r).map_err(|e| Error::internal("encode a record", e))?,
        due_at: r.due_at(),
        created_at: r.created_at(),
        updated_at: morningai_core::now(),
    })
}

pub(crate) fn decode<R: Record>(o: StoredObject) -> Result<R> {
    serde_json::from_value(o.body).map_err(|e| Error::internal("read a stored record", e))
}

/// Writes a record (stamping `updated_at`).
pub(crate) async fn put<R: Record>(store: &dyn Store, cx: TenantCtx, r: &mut R) -> Result<()> {
    r.touch();
    store.put_object(cx, &object(r)?).await
}

/// Writes a record unless one with its id exists; false when it did.
pub(crate) async fn insert<R: Record>(store: &dyn Store, cx: TenantCtx, r: &R) -> Result<bool> {
    store.insert_object(cx, &object(r)?).await
}

pub(crate) async fn get<R: Record>(
    store: &dyn Store,
    cx: TenantCtx,
    id: Uuid,
) -> Result<Option<R>> {
    store
        .get_object(cx, R::KIND, id)
        .await?
        .map(decode)
        .transpose()
}

/// Records of a kind matching `query`, newest first.
pub(crate) async fn find<R: Record>(
    store: &dyn Store,
    cx: TenantCtx,
    query: &ObjectQuery,
) -> Result<Vec<R>> {
    store
        .list_objects(cx, R::KIND, query)
        .await?
        .into_iter()
        .map(decode)
        .collect()
}

/// Records of a kind, by owner and status, newest first.
pub(crate) async fn list<R: Record>(
    store: &dyn Store,
    cx: TenantCtx,
    parent: Option<Uuid>,
    status: Option<&str>,
    limit: u32,
) -> Result<Vec<R>> {
    let query = ObjectQuery {
        parent,
        status: status.map(str::to_owned),
        ..ObjectQuery::first(limit)
    };
    find(store, cx, &query).await
}

pub(crate) async fn delete<R: Record>(store: &dyn Store, cx: TenantCtx, id: Uuid) -> Result<bool> {
    store.delete_object(cx, R::KIND, id).await
}

impl Graphs {
    pub fn new(
        store: Arc<dyn Store>,
        checkpointer: Arc<dyn Checkpointer>,
        catalog: Arc<Catalog>,
        tasks: Arc<TaskService>,
        limits: RunLimits,
    ) -> Self {
        Self {
            store,
            checkpointer,
            catalog,
            tasks,
            limits,
        }
    }

    /// The tenant's storage quota in bytes (its own, else the server's; 0: none).
    pub async fn storage_quota(&self, cx: TenantCtx) -> Result<u64> {
        Ok(sweeper::setting(&*self.store, cx, "max_stored_bytes")
            .await?
            .as_u64()
            .unwrap_or(self.limits.tenant_max_stored_bytes))
    }

    /// Refuses new work while the tenant's stored checkpoints and task events are over its
    /// quota, saying how much is used and what frees it.
    pub(crate) async fn check_storage(&self, cx: TenantCtx) -> Result<()> {
        let quota = self.storage_quota(cx).await?;
        if quota == 0 {
            return Ok(());
        }
        let used = self.checkpointer.stored_bytes(cx, None).await?
            + self.store.task_event_bytes(cx).await?;
        if used < quota {
            return Ok(());
        }
        Err(Error::LimitExceeded {
            code: "storage_quota_exceeded",
            message: format!(
                "the tenant stores {used} bytes of thread state and task events, its quota is {quota}: delete threads (or wait for retention) before starting more runs"
            ),
        })
    }

    pub async fn thread(&self, cx: TenantCtx, id: Uuid) -> Result<Thread> {
        get(&*self.store, cx, id)
            .await?
            .ok_or(Error::NotFound("thread"))
    }
}
