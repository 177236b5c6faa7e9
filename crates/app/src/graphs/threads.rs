//! Threads: create, read, change metadata, delete, search, and their checkpointed state
//! (current, at a checkpoint, history, edits).

use super::records::{
    CheckpointRef, InterruptView, Metadata, Run, Thread, ThreadState, ThreadStatus, ThreadTask,
};
use super::{Graphs, delete, find, get, list, put};
use crate::auth::Principal;
use morningai_core::objects::ObjectQuery;
use morningai_core::{Error, Result, Role, TenantCtx};
use morningai_graph::{Graph, StateSnapshot};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /threads`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct CreateThread {
    pub thread_id: Option<Uuid>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
    /// `raise` (default: 409 when the id exists) or `do_nothing` (return the existing one).
    pub if_exists: Option<IfExists>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IfExists {
    #[default]
    Raise,
    DoNothing,
}

/// `PATCH /threads/{id}`: metadata merged into the thread's.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct PatchThread {
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
}

/// `POST /threads/search`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct ThreadSearch {
    /// Threads whose metadata has each of these keys with exactly this value.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
    pub status: Option<ThreadStatus>,
    /// 1–1000, default 10.
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    // A u32: documented as int32, it would seem to stop at 2^31 - 1.
    #[schema(format = Int64, maximum = 4_294_967_295_u64)]
    pub offset: Option<u32>,
}

/// `POST /threads/{id}/state`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct UpdateState {
    #[schema(value_type = Option<Object>)]
    pub values: Option<Metadata>,
    /// Write as if this node had produced the values.
    pub as_node: Option<String>,
    /// Edit from this checkpoint (a fork) instead of the latest.
    pub checkpoint_id: Option<Uuid>,
    pub checkpoint: Option<CheckpointAddress>,
}

/// A checkpoint named the LangGraph way.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct CheckpointAddress {
    pub checkpoint_id: Option<Uuid>,
}

/// `POST /threads/{id}/history`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct HistoryRequest {
    /// Default 10; taken as 1 when lower and 1000 when higher.
    #[schema(format = Int64, maximum = 4_294_967_295_u64)]
    pub limit: Option<u32>,
}

/// A thread's state as the LangGraph API shows it.
fn state_view(thread_id: Uuid, s: &StateSnapshot) -> ThreadState {
    let c = &s.checkpoint;
    let view = |i: &morningai_core::checkpoint::Interrupt| InterruptView {
        value: i.value.clone(),
        id: i.id.clone(),
    };
    ThreadState {
        values: Value::Object(s.values.clone()),
        next: s.next.iter().map(|t| t.node.clone()).collect(),
        tasks: s
            .next
            .iter()
            .map(|t| ThreadTask {
                id: t.id.clone(),
                name: t.node.clone(),
                error: None,
                interrupts: s
                    .interrupts
                    .iter()
                    .filter(|i| i.task_id == t.id)
                    .map(view)
                    .collect(),
                checkpoint: None,
                state: None,
                result: None,
            })
            .collect(),
        checkpoint: Some(CheckpointRef::new(thread_id, c.id)),
        metadata: c.metadata.clone(),
        created_at: Some(c.created_at),
        parent_checkpoint: c.parent_id.map(|p| CheckpointRef::new(thread_id, p)),
        interrupts: s.interrupts.iter().map(view).collect(),
    }
}

impl Graphs {
    pub async fn create_thread(&self, who: &Principal, req: CreateThread) -> Result<Thread> {
        who.require(Role::Member)?;
        let id = req.thread_id.unwrap_or_else(Uuid::now_v7);
        if let Some(existing) = get::<Thread>(&*self.store, who.cx(), id).await? {
            if req.if_exists == Some(IfExists::DoNothing) {
                return Ok(existing);
            }
            return Err(Error::conflict(
                "thread_exists",
                "a thread with this id exists",
            ));
        }
        let mut t = Thread::new(id, req.metadata.unwrap_or_default());
        put(&*self.store, who.cx(), &mut t).await?;
        Ok(t)
    }

    /// A fresh thread of its own for a stateless run.
    pub async fn stateless_thread(&self, who: &Principal) -> Result<Thread> {
        who.require(Role::Member)?;
        let mut meta = Metadata::new();
        meta.insert("stateless".into(), Value::Bool(true));
        let mut t = Thread::new(Uuid::now_v7(), meta);
        put(&*self.store, who.cx(), &mut t).await?;
        Ok(t)
    }

    pub async fn patch_thread(
        &self,
        who: &Principal,
        id: Uuid,
        req: PatchThread,
    ) -> Result<Thread> {
        who.require(Role::Member)?;
        let mut t = self.thread(who.cx(), id).await?;
        t.metadata.extend(req.metadata.unwrap_or_default());
        put(&*self.store, who.cx(), &mut t).await?;
        Ok(t)
    }

    /// Deletes a thread with its runs and checkpoints.
    pub async fn delete_thread(&self, who: &Principal, id: Uuid) -> Result<()> {
        who.require(Role::Member)?;
        let cx = who.cx();
        self.thread(cx, id).await?;
        self.checkpointer.delete_thread(cx, &id.to_string()).await?;
        for r in list::<Run>(&*self.store, cx, Some(id), None, 10_000).await? {
            delete::<Run>(&*self.store, cx, r.run_id).await?;
        }
        delete::<Thread>(&*self.store, cx, id).await?;
        Ok(())
    }

    pub async fn search_threads(&self, cx: TenantCtx, req: ThreadSearch) -> Result<Vec<Thread>> {
        let limit = req.limit.unwrap_or(10);
        if !(1..=1000).contains(&limit) {
            return Err(Error::invalid("limit", "must be between 1 and 1000"));
        }
        let fields = req
            .metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                if k.contains('"') {
                    return Err(Error::invalid(
                        "metadata",
                        format!("key {k:?} contains '\"'"),
                    ));
                }
                Ok((vec!["metadata".to_owned(), k], v))
            })
            .collect::<Result<Vec<_>>>()?;
        let query = ObjectQuery {
            status: req.status.map(|s| s.as_str().to_owned()),
            fields,
            offset: req.offset.unwrap_or(0),
            ..ObjectQuery::first(limit)
        };
        find::<Thread>(&*self.store, cx, &query).await
    }

    /// The graph a thread runs, once it has run one.
    async fn graph_of(&self, cx: TenantCtx, t: &Thread) -> Option<Arc<Graph>> {
        let gid = t.graph_id()?;
        self.catalog
            .resolve(&*self.store, cx, gid)
            .await
            .map(|r| r.graph)
    }

    /// The thread's state now, or at `checkpoint`.
    pub async fn thread_state(
        &self,
        cx: TenantCtx,
        id: Uuid,
        checkpoint: Option<Uuid>,
    ) -> Result<ThreadState> {
        let t = self.thread(cx, id).await?;
        let Some(graph) = self.graph_of(cx, &t).await else {
            return Ok(ThreadState::empty());
        };
        let snap = morningai_graph::get_state(
            &graph,
            self.checkpointer.as_ref(),
            cx,
            &id.to_string(),
            checkpoint,
        )
        .await
        .map_err(|e| Error::internal("read thread state", e))?;
        Ok(snap.map_or_else(ThreadState::empty, |s| state_view(id, &s)))
    }

    /// Writes values into the thread's state as a new checkpoint.
    pub async fn update_state(
        &self,
        who: &Principal,
        id: Uuid,
        req: UpdateState,
    ) -> Result<CheckpointRef> {
        who.require(Role::Member)?;
        let cx = who.cx();
        let t = self.thread(cx, id).await?;
        self.guard_rewrite(who, &t).await?;
        let graph = self
            .graph_of(cx, &t)
            .await
            .ok_or_else(|| Error::invalid("thread_id", "the thread has not run a graph yet"))?;
        let checkpoint = req
            .checkpoint_id
            .or(req.checkpoint.and_then(|c| c.checkpoint_id));
        let cp = morningai_graph::update_state(
            &graph,
            self.checkpointer.as_ref(),
            cx,
            &id.to_string(),
            req.values.unwrap_or_default(),
            req.as_node.as_deref(),
            checkpoint,
        )
        .await
        .map_err(|e| Error::invalid("values", e))?;
        Ok(CheckpointRef::new(id, cp))
    }

    /// The thread's states, newest first.
    pub async fn history(
        &self,
        cx: TenantCtx,
        id: Uuid,
        req: HistoryRequest,
    ) -> Result<Vec<ThreadState>> {
        let limit = req.limit.unwrap_or(10).clamp(1, 1000) as usize;
        let t = self.thread(cx, id).await?;
        let Some(graph) = self.graph_of(cx, &t).await else {
            return Ok(Vec::new());
        };
        let h = morningai_graph::history(
            &graph,
            self.checkpointer.as_ref(),
            cx,
            &id.to_string(),
            limit,
        )
        .await
        .map_err(|e| Error::internal("read history", e))?;
        Ok(h.iter().map(|s| state_view(id, s)).collect())
    }
}
