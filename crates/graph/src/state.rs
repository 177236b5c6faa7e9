//! Thread state from checkpoints: reconstruction, `get_state`, history, `update_state`.

use crate::graph::{Graph, GraphError};
use crate::run::storage;
use morningai_core::TenantCtx;
use morningai_core::checkpoint::{Checkpoint, Checkpointer, Interrupt, PendingTask};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use uuid::Uuid;

pub type State = Map<String, Value>;

/// A thread's state at one checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct StateSnapshot {
    pub values: State,
    /// Nodes that run next (empty: the run ended).
    pub next: Vec<PendingTask>,
    pub checkpoint: Checkpoint,
    /// Interrupts waiting for an answer at this checkpoint.
    pub interrupts: Vec<Interrupt>,
}

/// The ancestors of `id` (root first), following parent links across branches.
pub(crate) fn chain(all: &[Checkpoint], id: Uuid) -> Vec<&Checkpoint> {
    let by_id: HashMap<Uuid, &Checkpoint> = all.iter().map(|c| (c.id, c)).collect();
    let mut out = Vec::new();
    let mut cur = by_id.get(&id).copied();
    while let Some(c) = cur {
        out.push(c);
        if c.snapshot {
            break;
        }
        cur = c.parent_id.and_then(|p| by_id.get(&p).copied());
    }
    out.reverse();
    out
}

/// The state at checkpoint `id`: the replay of its chain's deltas through the reducers.
pub(crate) fn reconstruct(graph: &Graph, all: &[Checkpoint], id: Uuid) -> State {
    let mut state: State = graph
        .channels
        .iter()
        .map(|(k, r)| (k.clone(), r.empty()))
        .collect();
    for c in chain(all, id) {
        for (k, delta) in &c.writes {
            let value = match (c.snapshot, graph.channels.get(k)) {
                (false, Some(r)) => r.replay(state.get(k).unwrap_or(&Value::Null), delta),
                _ => delta.clone(),
            };
            state.insert(k.clone(), value);
        }
    }
    state
}

async fn snapshot_at(
    graph: &Graph,
    cp: &dyn Checkpointer,
    cx: TenantCtx,
    all: &[Checkpoint],
    c: &Checkpoint,
) -> Result<StateSnapshot, GraphError> {
    let mut interrupts = c.interrupts.clone();
    let writes = cp
        .pending_writes(cx, &c.thread_id, c.id)
        .await
        .map_err(storage)?;
    let resumed: Vec<&str> = writes
        .iter()
        .filter_map(|(k, _)| k.strip_suffix(":resume"))
        .collect();
    for (k, v) in &writes {
        if let Some(task) = k.strip_suffix(":interrupt")
            && !resumed.contains(&task)
            && let Ok(i) = serde_json::from_value::<Interrupt>(v.clone())
        {
            interrupts.push(i);
        }
    }
    Ok(StateSnapshot {
        values: reconstruct(graph, all, c.id),
        next: c.next.clone(),
        checkpoint: c.clone(),
        interrupts,
    })
}

/// The state at `checkpoint` (default: the thread's latest). None for an empty thread.
pub async fn get_state(
    graph: &Graph,
    cp: &dyn Checkpointer,
    cx: TenantCtx,
    thread: &str,
    checkpoint: Option<Uuid>,
) -> Result<Option<StateSnapshot>, GraphError> {
    let all = cp.thread_checkpoints(cx, thread).await.map_err(storage)?;
    let found = match checkpoint {
        Some(id) => all.iter().find(|c| c.id == id),
        None => all.iter().max_by_key(|c| c.id),
    };
    match found {
        Some(c) => Ok(Some(snapshot_at(graph, cp, cx, &all, c).await?)),
        None => Ok(None),
    }
}

/// Snapshots of the thread, newest first (every branch), at most `limit`.
pub async fn history(
    graph: &Graph,
    cp: &dyn Checkpointer,
    cx: TenantCtx,
    thread: &str,
    limit: usize,
) -> Result<Vec<StateSnapshot>, GraphError> {
    let all = cp.thread_checkpoints(cx, thread).await.map_err(storage)?;
    let mut sorted: Vec<&Checkpoint> = all.iter().collect();
    sorted.sort_by_key(|c| std::cmp::Reverse(c.id));
    let mut out = Vec::new();
    for c in sorted.into_iter().take(limit) {
        out.push(snapshot_at(graph, cp, cx, &all, c).await?);
    }
    Ok(out)
}

/// Writes `values` as if node `as_node` had produced them (through the reducers), on top
/// of `checkpoint` (default: latest) — a fork when that is not the latest. The next nodes
/// are `as_node`'s successors. Returns the new checkpoint id.
pub async fn update_state(
    graph: &Graph,
    cp: &dyn Checkpointer,
    cx: TenantCtx,
    thread: &str,
    values: State,
    as_node: Option<&str>,
    checkpoint: Option<Uuid>,
) -> Result<Uuid, GraphError> {
    let all = cp.thread_checkpoints(cx, thread).await.map_err(storage)?;
    let parent = match checkpoint {
        Some(id) => Some(
            all.iter()
                .find(|c| c.id == id)
                .ok_or_else(|| GraphError::Resume(format!("no checkpoint {id}")))?,
        ),
        None => all.iter().max_by_key(|c| c.id),
    };
    let mut state = match parent {
        Some(p) => reconstruct(graph, &all, p.id),
        None => graph
            .channels
            .iter()
            .map(|(k, r)| (k.clone(), r.empty()))
            .collect(),
    };
    let step = parent.map_or(0, |p| p.step + 1);
    let mut deltas = Map::new();
    let mut versions = Map::new();
    for (k, v) in values {
        let reducer = graph
            .channels
            .get(&k)
            .ok_or_else(|| GraphError::InvalidUpdate {
                step,
                message: format!("no channel {k:?}"),
            })?;
        let (value, delta) = reducer
            .apply(&k, state.get(&k).unwrap_or(&Value::Null), &[v])
            .map_err(|message| GraphError::InvalidUpdate { step, message })?;
        state.insert(k.clone(), value);
        deltas.insert(k.clone(), delta);
        versions.insert(k, json!(step));
    }
    let next: Vec<PendingTask> = match as_node {
        Some(n) => {
            let mut t: Vec<String> = graph.edges.get(n).cloned().unwrap_or_default();
            if let Some(r) = graph.routers.get(n) {
                for target in r(&state) {
                    if let crate::node::Target::Node(x) = target {
                        t.push(x);
                    }
                }
            }
            t.retain(|x| x != crate::graph::END);
            t.into_iter()
                .map(|node| PendingTask {
                    id: String::new(),
                    node,
                    arg: None,
                })
                .collect()
        }
        None => parent.map(|p| p.next.clone()).unwrap_or_default(),
    };
    let id = Uuid::now_v7();
    let next = next
        .into_iter()
        .enumerate()
        .map(|(i, mut t)| {
            t.id = format!("{}-{i}", id.simple());
            t
        })
        .collect();
    let c = Checkpoint {
        id,
        thread_id: thread.to_owned(),
        parent_id: parent.map(|p| p.id),
        step,
        writes: deltas,
        snapshot: false,
        versions,
        next,
        interrupts: Vec::new(),
        metadata: json!({"source": "update", "step": step, "as_node": as_node}),
        created_at: morningai_core::now(),
    };
    cp.put(cx, &c).await.map_err(storage)?;
    Ok(id)
}
