//! The graphs this server runs, by graph id. An assistant is a graph plus configuration;
//! each built-in graph is served as one assistant whose id derives from its name.

use super::uploads::UploadedGraph;
use morningai_core::{Role, Store, TenantCtx};
use morningai_graph::{Command, END, Graph, NodeContext, NodeFn, Reducer, START, Target};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Who may answer a graph's interrupts through the approvals API.
#[derive(Clone, Debug)]
pub struct ApprovalPolicy {
    pub min_role: Role,
    /// Whether the member who started the run may approve it.
    pub allow_self: bool,
    /// Pending approvals older than this expire …
    pub expires_after: Option<Duration>,
    /// … and then fail the run (true) or resume it as rejected, the graph's default branch.
    pub on_expiry_fail: bool,
}

pub struct Entry {
    pub graph: Arc<Graph>,
    pub description: &'static str,
    pub approvals: ApprovalPolicy,
}

pub struct Catalog {
    graphs: BTreeMap<String, Entry>,
}

/// A stable assistant id for a graph id.
pub fn assistant_id(graph_id: &str) -> Uuid {
    let digest = sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        graph_id.as_bytes(),
    ));
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    Uuid::from_bytes(b)
}

/// Whether a person's answer to an approval interrupt says yes: `{approved: true}` (what
/// the approvals API sends), or the bare `"yes"` a LangGraph client may resume with.
pub fn approved(decision: &Value) -> bool {
    decision
        .get("approved")
        .and_then(Value::as_bool)
        .unwrap_or_else(|| decision == &json!("yes"))
}

fn update(pairs: &[(&str, Value)]) -> Command {
    Command::update(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<Map<_, _>>(),
    )
}

/// `echo`: answers the last message with its own text, streamed word by word.
fn echo() -> Graph {
    Graph::builder()
        .channel("messages", Reducer::Append)
        .node(
            "respond",
            NodeFn(|ctx: NodeContext| async move {
                let last = ctx.state["messages"]
                    .as_array()
                    .and_then(|m| m.last())
                    .cloned()
                    .unwrap_or(Value::Null);
                let text = last
                    .get("content")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                for word in text.split_inclusive(' ') {
                    ctx.message_delta(word);
                }
                Ok(update(&[(
                    "messages",
                    json!({"role": "assistant", "content": text}),
                )]))
            }),
        )
        .edge(START, "respond")
        .edge("respond", END)
        .compile()
        .expect("echo graph")
}

/// `approval`: drafts, asks a human, then publishes or stops.
fn approval() -> Graph {
    Graph::builder()
        .channel("topic", Reducer::LastValue)
        .channel("draft", Reducer::LastValue)
        .channel("decision", Reducer::LastValue)
        .channel("status", Reducer::LastValue)
        .node(
            "draft",
            NodeFn(|ctx: NodeContext| async move {
                let topic = ctx.state["topic"].as_str().unwrap_or("nothing").to_owned();
                Ok(update(&[(
                    "draft",
                    json!(format!("A document about {topic}")),
                )]))
            }),
        )
        .node(
            "review",
            NodeFn(|ctx: NodeContext| async move {
                let decision = ctx.interrupt(
                    json!({"question": "Publish this draft?", "draft": ctx.state["draft"]}),
                )?;
                Ok(update(&[("decision", decision)]))
            }),
        )
        .node(
            "publish",
            NodeFn(|_| async { Ok(update(&[("status", json!("published"))])) }),
        )
        .node(
            "discard",
            NodeFn(|_| async { Ok(update(&[("status", json!("rejected"))])) }),
        )
        .edge(START, "draft")
        .edge("draft", "review")
        .conditional_edge(
            "review",
            Arc::new(|s| {
                let next = if approved(&s["decision"]) {
                    "publish"
                } else {
                    "discard"
                };
                vec![Target::node(next)]
            }),
            &["publish", "discard"],
        )
        .compile()
        .expect("approval graph")
}

/// `steps`: appends one entry per step until `target` (default 20), sleeping `sleep_ms`
/// in each step (crash tests kill workers in the middle of it).
fn steps() -> Graph {
    Graph::builder()
        .channel("log", Reducer::Append)
        .channel("target", Reducer::LastValue)
        .channel("sleep_ms", Reducer::LastValue)
        .node(
            "step",
            NodeFn(|ctx: NodeContext| async move {
                let ms = ctx.state["sleep_ms"].as_u64().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let n = ctx.state["log"].as_array().map_or(0, Vec::len);
                Ok(update(&[("log", json!(n + 1))]))
            }),
        )
        .edge(START, "step")
        .conditional_edge(
            "step",
            Arc::new(|s| {
                let target = s["target"].as_u64().unwrap_or(20) as usize;
                let done = s["log"].as_array().map_or(0, Vec::len);
                vec![if done < target {
                    Target::node("step")
                } else {
                    Target::End
                }]
            }),
            &["step", END],
        )
        .compile()
        .expect("steps graph")
}

impl Default for Catalog {
    fn default() -> Self {
        let policy = ApprovalPolicy {
            min_role: Role::Admin,
            allow_self: false,
            expires_after: None,
            on_expiry_fail: false,
        };
        let mut graphs = BTreeMap::new();
        graphs.insert(
            "echo".to_owned(),
            Entry {
                graph: Arc::new(echo()),
                description: "Answers with the last message, token by token.",
                approvals: policy.clone(),
            },
        );
        graphs.insert(
            "approval".to_owned(),
            Entry {
                graph: Arc::new(approval()),
                description: "Drafts a document and waits for a human to approve it.",
                approvals: policy.clone(),
            },
        );
        graphs.insert(
            "steps".to_owned(),
            Entry {
                graph: Arc::new(steps()),
                description: "Counts steps (durability tests).",
                approvals: policy,
            },
        );
        Self { graphs }
    }
}

impl Catalog {
    /// By graph id or assistant id.
    pub fn find(&self, key: &str) -> Option<(&str, &Entry)> {
        if let Some((k, e)) = self.graphs.get_key_value(key) {
            return Some((k.as_str(), e));
        }
        let id = Uuid::parse_str(key).ok()?;
        self.graphs
            .iter()
            .find(|(k, _)| assistant_id(k) == id)
            .map(|(k, e)| (k.as_str(), e))
    }

    pub fn all(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.graphs.iter().map(|(k, e)| (k.as_str(), e))
    }

    /// Adds (or replaces) a built-in graph.
    pub fn add(&mut self, graph_id: &str, entry: Entry) {
        self.graphs.insert(graph_id.to_owned(), entry);
    }
}

/// A graph resolved for a run: built-in or the tenant's own.
#[derive(Clone)]
pub struct Resolved {
    pub graph_id: String,
    pub assistant_id: Uuid,
    pub graph: Arc<Graph>,
    pub description: String,
    pub approvals: ApprovalPolicy,
}

impl Catalog {
    /// By graph id or assistant id: a built-in graph, a tenant assistant of one, or a
    /// graph the tenant uploaded.
    pub async fn resolve(&self, store: &dyn Store, cx: TenantCtx, key: &str) -> Option<Resolved> {
        let builtin =
            |gid: &str, e: &Entry, assistant: Uuid, description: Option<String>| Resolved {
                graph_id: gid.to_owned(),
                assistant_id: assistant,
                graph: e.graph.clone(),
                description: description.unwrap_or_else(|| e.description.to_owned()),
                approvals: e.approvals.clone(),
            };
        if let Some((gid, e)) = self.find(key) {
            return Some(builtin(gid, e, assistant_id(gid), None));
        }
        let id = Uuid::parse_str(key).ok();
        if let Some(id) = id
            && let Ok(a) = crate::assistants::get(store, cx, id).await
            && let Some((gid, e)) = self.find(&a.graph_id)
        {
            return Some(builtin(gid, e, a.assistant_id, a.description));
        }
        // An uploaded graph's id derives from its graph id: found by either, no scan.
        let uploaded: UploadedGraph =
            super::get(store, cx, id.unwrap_or_else(|| assistant_id(key)))
                .await
                .ok()
                .flatten()?;
        let def = morningai_graph::Definition::from_json(&uploaded.definition).ok()?;
        let graph = def.compile(&morningai_graph::NodeTypes::default()).ok()?;
        Some(Resolved {
            graph_id: uploaded.graph_id.clone(),
            assistant_id: uploaded.assistant_id,
            graph: Arc::new(graph),
            description: uploaded.description.clone(),
            approvals: uploaded.approvals.policy(),
        })
    }
}
