//! Engine benchmark: per-step overhead of a 10-node linear graph and a 20-way fan-out /
//! fan-in graph with trivial nodes, without durable checkpoints (a checkpointer that
//! discards), with the in-memory one, and with SQLite in sync mode; and bytes stored per
//! step for a 500-step append-only conversation. `bench/graph.sh` runs it beside LangGraph.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::checkpoint::{Checkpoint, Checkpointer};
use morningai_core::{Result, TenantCtx, TenantId};
use morningai_graph::*;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

/// Discards everything: measures the engine alone.
struct Discard;

#[async_trait]
impl Checkpointer for Discard {
    async fn put(&self, _: TenantCtx, _: &Checkpoint) -> Result<()> {
        Ok(())
    }
    async fn put_writes(
        &self,
        _: TenantCtx,
        _: &str,
        _: Uuid,
        _: &[(String, Value)],
    ) -> Result<()> {
        Ok(())
    }
    async fn pending_writes(&self, _: TenantCtx, _: &str, _: Uuid) -> Result<Vec<(String, Value)>> {
        Ok(Vec::new())
    }
    async fn thread_checkpoints(&self, _: TenantCtx, _: &str) -> Result<Vec<Checkpoint>> {
        Ok(Vec::new())
    }
    async fn compact(&self, _: TenantCtx, _: &str, _: &Checkpoint) -> Result<u64> {
        Ok(0)
    }
    async fn delete_thread(&self, _: TenantCtx, _: &str) -> Result<u64> {
        Ok(0)
    }
    async fn expire(&self, _: TenantCtx, _: DateTime<Utc>) -> Result<u64> {
        Ok(0)
    }
    async fn stored_bytes(&self, _: TenantCtx, _: Option<&str>) -> Result<u64> {
        Ok(0)
    }
}

fn write(channel: &str, v: Value) -> Command {
    Command::update(Map::from_iter([(channel.to_owned(), v)]))
}

fn linear(n: usize) -> Graph {
    let mut b = Graph::builder().channel("n", Reducer::LastValue);
    for i in 0..n {
        b = b.node(
            &format!("n{i}"),
            NodeFn(|ctx: NodeContext| async move {
                Ok(write("n", json!(ctx.state["n"].as_i64().unwrap_or(0) + 1)))
            }),
        );
        let prev = if i == 0 {
            START.to_owned()
        } else {
            format!("n{}", i - 1)
        };
        b = b.edge(&prev, &format!("n{i}"));
    }
    b.edge(&format!("n{}", n - 1), END)
        .compile()
        .expect("linear graph")
}

fn fanout(n: usize) -> Graph {
    let mut b = Graph::builder()
        .channel("results", Reducer::Append)
        .channel("total", Reducer::LastValue);
    b = b
        .node("split", NodeFn(|_| async { Ok(Command::default()) }))
        .edge(START, "split");
    for i in 0..n {
        let name = format!("w{i}");
        b = b
            .node(
                &name,
                NodeFn(move |_| async move { Ok(write("results", json!(i))) }),
            )
            .edge("split", &name)
            .edge(&name, "join");
    }
    b.node(
        "join",
        NodeFn(|ctx: NodeContext| async move {
            Ok(write(
                "total",
                json!(ctx.state["results"].as_array().map_or(0, Vec::len)),
            ))
        }),
    )
    .edge("join", END)
    .compile()
    .expect("fan-out graph")
}

/// (steps per run, µs per step).
async fn measure(
    graph: Arc<Graph>,
    cp: Arc<dyn Checkpointer>,
    cx: TenantCtx,
    runs: usize,
    durability: Durability,
) -> (usize, f64) {
    let graph_has_n = graph.channel_names().any(|c| c == "n");
    let runner = Runner::new(graph, cp, cx);
    let mut steps = 0;
    let start = Instant::now();
    for i in 0..runs {
        let config = RunConfig {
            durability,
            ..RunConfig::new(format!("t{i}"))
        };
        let input = if graph_has_n {
            Map::from_iter([("n".into(), json!(0))])
        } else {
            Map::new()
        };
        let out = runner.run(Some(input), None, &config).await.expect("run");
        steps = out.steps;
    }
    (
        steps,
        start.elapsed().as_secs_f64() * 1e6 / (runs * steps) as f64,
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let dir = std::env::temp_dir().join(format!("graph-bench-{}", Uuid::new_v4().simple()));
    let sqlite = morningai_sqlite::SqliteStore::open(dir.join("bench.db")).await?;
    let store: Arc<dyn morningai_core::Store> = Arc::new(sqlite.clone());
    let cx = morningai_bench::bench_tenant(store.as_ref(), "bench").await?;
    let mem_cx = TenantCtx::new(TenantId::new());
    for (name, graph) in [
        ("linear-10", Arc::new(linear(10))),
        ("fanout-20", Arc::new(fanout(20))),
    ] {
        let (steps, none) = measure(
            graph.clone(),
            Arc::new(Discard),
            mem_cx,
            runs,
            Durability::Sync,
        )
        .await;
        let (_, memory) = measure(
            graph.clone(),
            Arc::new(MemoryCheckpointer::default()),
            mem_cx,
            runs,
            Durability::Sync,
        )
        .await;
        let (_, sqlite_sync) = measure(
            graph.clone(),
            Arc::new(sqlite.clone()),
            cx,
            runs,
            Durability::Sync,
        )
        .await;
        println!(
            "{name}: {runs} runs × {steps} steps; per step: no checkpointer {none:.1} µs, memory {memory:.1} µs, sqlite sync {sqlite_sync:.1} µs"
        );
    }
    // 500-step append-only conversation on SQLite: bytes stored per step.
    let talk = Graph::builder()
        .channel("messages", Reducer::Append)
        .channel("turn", Reducer::LastValue)
        .node(
            "talk",
            NodeFn(|ctx: NodeContext| async move {
                let n = ctx.state["turn"].as_i64().unwrap_or(0);
                Ok(Command::update(Map::from_iter([
                    ("messages".into(), json!({"role": "user", "content": format!("message {n}: the quick brown fox jumps over the lazy dog")})),
                    ("turn".into(), json!(n + 1)),
                ])))
            }),
        )
        .edge(START, "talk")
        .conditional_edge("talk", Arc::new(|s| vec![if s["turn"].as_i64().unwrap_or(0) < 500 { Target::node("talk") } else { Target::End }]), &["talk", END])
        .compile()?;
    let runner = Runner::new(Arc::new(talk), Arc::new(sqlite.clone()), cx);
    let config = RunConfig {
        recursion_limit: 1000,
        ..RunConfig::new("conversation")
    };
    let mut marks = Vec::new();
    runner
        .run(
            Some(Map::from_iter([("turn".into(), json!(0))])),
            None,
            &config,
        )
        .await?;
    let all = sqlite.thread_checkpoints(cx, "conversation").await?;
    let total = sqlite.stored_bytes(cx, Some("conversation")).await?;
    for at in [10usize, 100, 250, 499] {
        let c = &all[at.min(all.len() - 1)];
        marks.push(format!("step {at}: {} B", serde_json::to_vec(c)?.len()));
    }
    println!(
        "conversation-500 (sqlite): {total} bytes in {} checkpoints, {:.0} B/step on average; {}",
        all.len(),
        total as f64 / all.len() as f64,
        marks.join(", ")
    );
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
