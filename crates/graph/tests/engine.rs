//! Engine behaviour on the in-memory checkpointer: reducers and parallel steps, routing,
//! Send, Command, subgraphs, retries, timeouts, the recursion limit, interrupts and resume
//! without replay, breakpoints, time travel, durability modes, delta storage, definitions.

use morningai_core::TenantCtx;
use morningai_core::checkpoint::Checkpointer;
use morningai_graph::*;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn cx() -> TenantCtx {
    TenantCtx::new(morningai_core::TenantId(uuid::Uuid::nil()))
}

fn state(v: Value) -> State {
    v.as_object().cloned().unwrap()
}

fn write(channel: &str, v: Value) -> Command {
    Command::update(Map::from_iter([(channel.to_owned(), v)]))
}

/// A node that appends its name to `log` and counts its runs.
fn logger(name: &'static str, runs: Arc<AtomicUsize>) -> impl Node {
    NodeFn(move |_ctx: NodeContext| {
        let runs = runs.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(write("log", json!(name)))
        }
    })
}

fn runner(g: Graph) -> (Runner, Arc<MemoryCheckpointer>) {
    let cp = Arc::new(MemoryCheckpointer::default());
    (Runner::new(Arc::new(g), cp.clone(), cx()), cp)
}

#[tokio::test]
async fn parallel_branches_merge_at_the_barrier() {
    let runs = Arc::new(AtomicUsize::new(0));
    let g = Graph::builder()
        .channel("log", Reducer::Append)
        .node("a", logger("a", runs.clone()))
        .node("b", logger("b", runs.clone()))
        .node("c", logger("c", runs.clone()))
        .node("join", logger("join", runs.clone()))
        .edge(START, "a")
        .edge("a", "b")
        .edge("a", "c")
        .edge("b", "join")
        .edge("c", "join")
        .edge("join", END)
        .compile()
        .unwrap();
    let (r, _) = runner(g);
    let out = r
        .run(Some(state(json!({}))), None, &RunConfig::new("t1"))
        .await
        .unwrap();
    assert_eq!(
        out.state["log"],
        json!(["a", "b", "c", "join"]),
        "b and c in one step; join once"
    );
    assert_eq!(out.steps, 3);
    assert_eq!(runs.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn two_writes_to_a_last_value_channel_in_one_step_fail() {
    let g = Graph::builder()
        .channel("x", Reducer::LastValue)
        .node("a", NodeFn(|_| async { Ok(write("x", json!(1))) }))
        .node("b", NodeFn(|_| async { Ok(write("x", json!(2))) }))
        .edge(START, "a")
        .edge(START, "b")
        .compile()
        .unwrap();
    let (r, _) = runner(g);
    let e = r
        .run(Some(state(json!({}))), None, &RunConfig::new("t"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, GraphError::InvalidUpdate { ref message, .. } if message.contains("2 writes")),
        "{e}"
    );
}

#[tokio::test]
async fn conditional_edges_route_by_state_and_loops_hit_the_recursion_limit() {
    let g = || {
        Graph::builder()
            .channel("n", Reducer::LastValue)
            .node(
                "inc",
                NodeFn(|ctx: NodeContext| async move {
                    let n = ctx.state["n"].as_i64().unwrap_or(0);
                    Ok(write("n", json!(n + 1)))
                }),
            )
            .edge(START, "inc")
            .conditional_edge(
                "inc",
                Arc::new(|s| {
                    vec![if s["n"].as_i64().unwrap_or(0) < 5 {
                        Target::node("inc")
                    } else {
                        Target::End
                    }]
                }),
                &["inc", END],
            )
            .compile()
            .unwrap()
    };
    let (r, _) = runner(g());
    let out = r
        .run(Some(state(json!({"n": 0}))), None, &RunConfig::new("loop"))
        .await
        .unwrap();
    assert_eq!(out.state["n"], json!(5));
    let (r, _) = runner(g());
    let config = RunConfig {
        recursion_limit: 3,
        ..RunConfig::new("limited")
    };
    let e = r
        .run(Some(state(json!({"n": 0}))), None, &config)
        .await
        .unwrap_err();
    assert_eq!(e, GraphError::RecursionLimit { limit: 3 });
    assert!(e.to_string().contains("recursion limit of 3 steps"));
}

#[tokio::test]
async fn send_fans_out_and_a_reducer_fans_in() {
    let g = Graph::builder()
        .channel("items", Reducer::LastValue)
        .channel("results", Reducer::Append)
        .node(
            "plan",
            NodeFn(|_| async { Ok(write("items", json!([1, 2, 3, 4]))) }),
        )
        .node(
            "square",
            NodeFn(|ctx: NodeContext| async move {
                let x = ctx.arg.as_ref().and_then(Value::as_i64).unwrap();
                Ok(write("results", json!(x * x)))
            }),
        )
        .edge(START, "plan")
        .conditional_edge(
            "plan",
            Arc::new(|s| {
                s["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| Target::Send {
                        node: "square".into(),
                        arg: i.clone(),
                    })
                    .collect()
            }),
            &["square"],
        )
        .compile()
        .unwrap();
    let (r, _) = runner(g);
    let out = r
        .run(Some(state(json!({}))), None, &RunConfig::new("mr"))
        .await
        .unwrap();
    assert_eq!(out.state["results"], json!([1, 4, 9, 16]));
}

#[tokio::test]
async fn command_updates_and_jumps() {
    let g = Graph::builder()
        .channel("path", Reducer::Append)
        .node(
            "a",
            NodeFn(|_| async { Ok(write("path", json!("a")).goto(Target::node("c"))) }),
        )
        .node("b", NodeFn(|_| async { Ok(write("path", json!("b"))) }))
        .node("c", NodeFn(|_| async { Ok(write("path", json!("c"))) }))
        .edge(START, "a")
        .edge("a", "b")
        .edge("b", "c")
        .compile()
        .unwrap();
    let (r, _) = runner(g);
    let out = r
        .run(Some(state(json!({}))), None, &RunConfig::new("cmd"))
        .await
        .unwrap();
    assert_eq!(
        out.state["path"],
        json!(["a", "c"]),
        "the goto overrides a's edge to b"
    );
}

#[tokio::test]
async fn subgraphs_keep_their_own_state() {
    let child = Graph::builder()
        .channel("text", Reducer::LastValue)
        .channel("scratch", Reducer::Append)
        .node(
            "shout",
            NodeFn(|ctx: NodeContext| async move {
                let t = ctx.state["text"].as_str().unwrap_or("").to_uppercase();
                ctx.custom(json!({"inner": true}));
                Ok(Command::update(Map::from_iter([
                    ("text".into(), json!(t)),
                    ("scratch".into(), json!("private")),
                ])))
            }),
        )
        .edge(START, "shout")
        .compile()
        .unwrap();
    let g = Graph::builder()
        .channel("text", Reducer::LastValue)
        .node(
            "child",
            Subgraph {
                graph: Arc::new(child),
            },
        )
        .edge(START, "child")
        .compile()
        .unwrap();
    let (tx, mut rx) = morningai_graph::events::channel();
    let (r, _) = runner(g);
    let r = r.with_events(tx);
    let out = r
        .run(
            Some(state(json!({"text": "hi"}))),
            None,
            &RunConfig::new("sub"),
        )
        .await
        .unwrap();
    assert_eq!(out.state["text"], json!("HI"));
    assert!(
        !out.state.contains_key("scratch"),
        "the subgraph's own channel stays inside"
    );
    drop(r);
    let mut custom = None;
    while let Some(e) = rx.recv().await {
        if e.mode == "custom" {
            custom = Some(e);
        }
    }
    let custom = custom.expect("custom event from the subgraph");
    assert_eq!(custom.ns.len(), 1);
    assert!(custom.ns[0].starts_with("child:"));
}

#[tokio::test]
async fn retries_then_timeouts() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = attempts.clone();
    let flaky = NodeFn(move |_ctx: NodeContext| {
        let a = a.clone();
        async move {
            if a.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(NodeError::retryable("flaky"))
            } else {
                Ok(write("x", json!("ok")))
            }
        }
    });
    let retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        ..Default::default()
    };
    let g = Graph::builder()
        .channel("x", Reducer::LastValue)
        .node_with("f", Arc::new(flaky), Some(retry.clone()), None)
        .edge(START, "f")
        .compile()
        .unwrap();
    let (r, _) = runner(g);
    assert_eq!(
        r.run(Some(state(json!({}))), None, &RunConfig::new("r"))
            .await
            .unwrap()
            .state["x"],
        json!("ok")
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    // Fatal errors are not retried.
    let fatal_runs = Arc::new(AtomicUsize::new(0));
    let fr = fatal_runs.clone();
    let fatal = NodeFn(move |_ctx: NodeContext| {
        let fr = fr.clone();
        async move {
            fr.fetch_add(1, Ordering::SeqCst);
            Err(NodeError::fatal("bad input"))
        }
    });
    let g = Graph::builder()
        .channel("x", Reducer::LastValue)
        .node_with("f", Arc::new(fatal), Some(retry.clone()), None)
        .edge(START, "f")
        .compile()
        .unwrap();
    let (r, _) = runner(g);
    let e = r
        .run(Some(state(json!({}))), None, &RunConfig::new("f"))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        GraphError::NodeFailed {
            node: "f".into(),
            message: "bad input".into()
        }
    );
    assert_eq!(fatal_runs.load(Ordering::SeqCst), 1);
    // Timeouts count as retryable failures, then fail the run.
    let slow = NodeFn(|_ctx: NodeContext| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(Command::default())
    });
    let g = Graph::builder()
        .channel("x", Reducer::LastValue)
        .node_with(
            "slow",
            Arc::new(slow),
            Some(RetryPolicy {
                max_attempts: 2,
                initial_backoff: Duration::from_millis(1),
                ..Default::default()
            }),
            Some(Duration::from_millis(30)),
        )
        .edge(START, "slow")
        .compile()
        .unwrap();
    let (r, _) = runner(g);
    let started = std::time::Instant::now();
    let e = r
        .run(Some(state(json!({}))), None, &RunConfig::new("slow"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, GraphError::Timeout { ref node, .. } if node == "slow"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// a → (b ‖ ask) → end, where `ask` interrupts. Resuming answers it and b, which finished
/// in the interrupted step, does not run again.
#[tokio::test]
async fn interrupts_resume_without_replaying_finished_work() {
    let b_runs = Arc::new(AtomicUsize::new(0));
    let ask_runs = Arc::new(AtomicUsize::new(0));
    let ar = ask_runs.clone();
    let g = Graph::builder()
        .channel("log", Reducer::Append)
        .channel("answer", Reducer::LastValue)
        .node("a", logger("a", Arc::new(AtomicUsize::new(0))))
        .node("b", logger("b", b_runs.clone()))
        .node(
            "ask",
            NodeFn(move |ctx: NodeContext| {
                let ar = ar.clone();
                async move {
                    ar.fetch_add(1, Ordering::SeqCst);
                    let first = ctx.interrupt(json!({"question": "approve?"}))?;
                    let second = ctx.interrupt(json!({"question": "sure?"}))?;
                    Ok(write("answer", json!([first, second])))
                }
            }),
        )
        .edge(START, "a")
        .edge("a", "b")
        .edge("a", "ask")
        .compile()
        .unwrap();
    let (r, cp) = runner(g);
    let config = RunConfig::new("hitl");
    let out = r.run(Some(state(json!({}))), None, &config).await.unwrap();
    assert_eq!(out.interrupts.len(), 1);
    assert_eq!(out.interrupts[0].value, json!({"question": "approve?"}));
    let snap = get_state(&r.graph, cp.as_ref(), cx(), "hitl", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        snap.interrupts.len(),
        1,
        "the pending interrupt is visible in the state"
    );
    assert_eq!(
        snap.next
            .iter()
            .map(|t| t.node.as_str())
            .collect::<Vec<_>>(),
        ["b", "ask"]
    );
    // Wrong id: refused.
    let wrong = Resume::ById([("nope".to_owned(), json!(1))].into());
    assert!(r.run(None, Some(wrong), &config).await.is_err());
    let id = out.interrupts[0].id.clone();
    let out = r
        .run(
            None,
            Some(Resume::ById([(id, json!("yes"))].into())),
            &config,
        )
        .await
        .unwrap();
    assert_eq!(
        out.interrupts[0].value,
        json!({"question": "sure?"}),
        "second interrupt of the same node"
    );
    let out = r
        .run(None, Some(Resume::Value(json!("really"))), &config)
        .await
        .unwrap();
    assert!(out.interrupts.is_empty());
    assert_eq!(out.state["answer"], json!(["yes", "really"]));
    assert_eq!(out.state["log"], json!(["a", "b"]));
    assert_eq!(
        b_runs.load(Ordering::SeqCst),
        1,
        "b finished in the interrupted step and never ran again"
    );
    assert_eq!(
        ask_runs.load(Ordering::SeqCst),
        3,
        "the interrupting node re-runs on each resume"
    );
}

#[tokio::test]
async fn breakpoints_before_and_after_nodes() {
    let g = || {
        Graph::builder()
            .channel("log", Reducer::Append)
            .node("a", logger("a", Default::default()))
            .node("b", logger("b", Default::default()))
            .edge(START, "a")
            .edge("a", "b")
            .compile()
            .unwrap()
    };
    let (r, _) = runner(g());
    let config = RunConfig {
        interrupt_before: vec!["b".into()],
        ..RunConfig::new("bp")
    };
    let out = r.run(Some(state(json!({}))), None, &config).await.unwrap();
    assert_eq!(
        (out.interrupts[0].node.as_str(), &out.state["log"]),
        ("b", &json!(["a"]))
    );
    let out = r.run(None, None, &config).await.unwrap();
    assert!(out.interrupts.is_empty());
    assert_eq!(out.state["log"], json!(["a", "b"]));
    let (r, _) = runner(g());
    let config = RunConfig {
        interrupt_after: vec!["a".into()],
        ..RunConfig::new("bp2")
    };
    let out = r.run(Some(state(json!({}))), None, &config).await.unwrap();
    assert_eq!(
        out.interrupts[0].value,
        json!({"breakpoint": "after", "node": "a"})
    );
    let out = r
        .run(None, Some(Resume::Value(Value::Null)), &config)
        .await
        .unwrap();
    assert_eq!(out.state["log"], json!(["a", "b"]));
}

#[tokio::test]
async fn history_update_state_and_forks() {
    let g = Graph::builder()
        .channel("log", Reducer::Append)
        .node("a", logger("a", Default::default()))
        .node("b", logger("b", Default::default()))
        .edge(START, "a")
        .edge("a", "b")
        .compile()
        .unwrap();
    let (r, cp) = runner(g);
    let config = RunConfig::new("tt");
    r.run(Some(state(json!({"log": ["start"]}))), None, &config)
        .await
        .unwrap();
    let hist = history(&r.graph, cp.as_ref(), cx(), "tt", 10)
        .await
        .unwrap();
    assert_eq!(hist.len(), 3, "input, after a, after b");
    assert_eq!(hist[0].values["log"], json!(["start", "a", "b"]));
    assert_eq!(hist[2].checkpoint.metadata["source"], "input");
    // Fork from the checkpoint after `a`: change the state as if `a` wrote it, run on.
    let after_a = hist[1].checkpoint.id;
    let forked = update_state(
        &r.graph,
        cp.as_ref(),
        cx(),
        "tt",
        state(json!({"log": "edited"})),
        Some("a"),
        Some(after_a),
    )
    .await
    .unwrap();
    let out = r
        .run(
            None,
            None,
            &RunConfig {
                checkpoint_id: Some(forked),
                ..config.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(out.state["log"], json!(["start", "a", "edited", "b"]));
    // The original branch is untouched.
    let orig = get_state(
        &r.graph,
        cp.as_ref(),
        cx(),
        "tt",
        Some(hist[0].checkpoint.id),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(orig.values["log"], json!(["start", "a", "b"]));
}

/// A 500-step append-only conversation: bytes stored per step stay flat.
#[tokio::test]
async fn append_channels_are_stored_as_deltas() {
    let g = Graph::builder()
        .channel("messages", Reducer::Append)
        .channel("turn", Reducer::LastValue)
        .node(
            "talk",
            NodeFn(|ctx: NodeContext| async move {
                let n = ctx.state["turn"].as_i64().unwrap_or(0);
                Ok(Command::update(Map::from_iter([
                    ("messages".into(), json!({"role": "user", "content": format!("message number {n} with some text")})),
                    ("turn".into(), json!(n + 1)),
                ])))
            }),
        )
        .edge(START, "talk")
        .conditional_edge("talk", Arc::new(|s| vec![if s["turn"].as_i64().unwrap() < 500 { Target::node("talk") } else { Target::End }]), &["talk", END])
        .compile()
        .unwrap();
    let (r, cp) = runner(g);
    let config = RunConfig {
        recursion_limit: 1000,
        ..RunConfig::new("long")
    };
    let out = r
        .run(Some(state(json!({"turn": 0}))), None, &config)
        .await
        .unwrap();
    assert_eq!(out.state["messages"].as_array().unwrap().len(), 500);
    let all = cp.thread_checkpoints(cx(), "long").await.unwrap();
    let sizes: Vec<usize> = all
        .iter()
        .map(|c| serde_json::to_vec(c).unwrap().len())
        .collect();
    let (early, late) = (sizes[10], sizes[490]);
    assert!(
        late <= early + 16,
        "per-step size grew from {early} to {late} bytes"
    );
    let total = cp.stored_bytes(cx(), Some("long")).await.unwrap();
    assert!(total < 600 * 1024, "{total} bytes for 500 steps");
    let snap = get_state(&r.graph, cp.as_ref(), cx(), "long", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        snap.values["messages"], out.state["messages"],
        "replaying the deltas gives the full history"
    );
}

#[tokio::test]
async fn durability_modes_all_end_in_the_same_state() {
    for mode in [Durability::Sync, Durability::Async, Durability::Exit] {
        let g = Graph::builder()
            .channel("log", Reducer::Append)
            .node("a", logger("a", Default::default()))
            .node("b", logger("b", Default::default()))
            .edge(START, "a")
            .edge("a", "b")
            .compile()
            .unwrap();
        let (r, cp) = runner(g);
        let config = RunConfig {
            durability: mode,
            ..RunConfig::new("d")
        };
        r.run(Some(state(json!({}))), None, &config).await.unwrap();
        let snap = get_state(&r.graph, cp.as_ref(), cx(), "d", None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(snap.values["log"], json!(["a", "b"]), "{mode:?}");
        let n = cp.thread_checkpoints(cx(), "d").await.unwrap().len();
        assert_eq!(n, if mode == Durability::Exit { 1 } else { 3 }, "{mode:?}");
    }
}

#[tokio::test]
async fn cancellation_stops_the_run() {
    let g = Graph::builder()
        .channel("x", Reducer::LastValue)
        .node(
            "slow",
            NodeFn(|_| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Ok(Command::default())
            }),
        )
        .edge(START, "slow")
        .compile()
        .unwrap();
    let (r, _) = runner(g);
    let cancel = r.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
    });
    let e = r
        .run(Some(state(json!({}))), None, &RunConfig::new("c"))
        .await
        .unwrap_err();
    assert_eq!(e, GraphError::Cancelled);
}

#[tokio::test]
async fn declarative_definitions_run_and_report_precise_errors() {
    let def = json!({
        "channels": {"topic": {}, "draft": {}, "decision": {}, "log": {"reducer": "append"}},
        "nodes": {
            "write": {"type": "template", "config": {"channel": "draft", "template": "About {topic}"}},
            "review": {"type": "ask", "config": {"channel": "decision", "prompt": "Publish?"}},
            "publish": {"type": "set", "config": {"channel": "log", "value": "published"}},
            "discard": {"type": "set", "config": {"channel": "log", "value": "discarded"}}
        },
        "edges": [{"from": "__start__", "to": "write"}, {"from": "write", "to": "review"}],
        "conditional_edges": [{"from": "review", "channel": "decision", "routes": {"yes": "publish"}, "default": "discard"}]
    });
    let g = Definition::from_json(&def)
        .unwrap()
        .compile(&NodeTypes::default())
        .unwrap();
    let (r, _) = runner(g);
    let config = RunConfig::new("decl");
    let out = r
        .run(Some(state(json!({"topic": "Rust"}))), None, &config)
        .await
        .unwrap();
    assert_eq!(
        out.interrupts[0].value,
        json!({"prompt": "Publish?", "node": "review"})
    );
    let out = r
        .run(None, Some(Resume::Value(json!("yes"))), &config)
        .await
        .unwrap();
    assert_eq!(
        (out.state["draft"].as_str(), &out.state["log"]),
        (Some("About Rust"), &json!(["published"]))
    );

    let bad = json!({
        "channels": {"a": {}, "b": {"reducer": "sum"}},
        "nodes": {
            "x": {"type": "teleport"},
            "y": {"type": "set", "config": {"channel": "missing", "value": 1}},
            "z": {"type": "set", "config": {"channel": "a", "value": 1}},
            "w": {"type": "copy", "config": {"from": "a"}}
        },
        "edges": [{"from": "__start__", "to": "x"}, {"from": "x", "to": "y"}, {"from": "y", "to": "nowhere"}, {"from": "ghost", "to": "y"}],
        "conditional_edges": [{"from": "y", "channel": "nope", "routes": {"k": "void"}}]
    });
    let errors = Definition::from_json(&bad)
        .unwrap()
        .compile(&NodeTypes::default())
        .unwrap_err();
    let has = |path: &str, word: &str| {
        errors
            .iter()
            .any(|e| e.path == path && e.message.contains(word))
    };
    assert!(has("channels.b.reducer", "unknown reducer"), "{errors:#?}");
    assert!(
        has("nodes.x.type", "unknown node type \"teleport\""),
        "{errors:#?}"
    );
    assert!(has("nodes.y.config", "\"missing\""), "{errors:#?}");
    assert!(has("edges[2].to", "nowhere"), "{errors:#?}");
    assert!(has("edges[3].from", "ghost"), "{errors:#?}");
    assert!(has("conditional_edges[0].channel", "nope"), "{errors:#?}");
    assert!(has("conditional_edges[0].routes.k", "void"), "{errors:#?}");
    assert!(has("nodes.z", "unreachable"), "{errors:#?}");
    assert!(has("nodes.w.config.to", "required"), "{errors:#?}");
    let unknown_field =
        Definition::from_json(&json!({"channels": {}, "nodes": {}, "edges": [], "extra": 1}))
            .unwrap_err();
    assert!(unknown_field[0].message.contains("extra"));
}

/// Counts `put_writes` calls on the way to the in-memory checkpointer.
#[derive(Default)]
struct CountingWrites {
    inner: MemoryCheckpointer,
    put_writes_calls: AtomicUsize,
}

#[async_trait::async_trait]
impl Checkpointer for CountingWrites {
    async fn put(
        &self,
        cx: TenantCtx,
        c: &morningai_core::checkpoint::Checkpoint,
    ) -> morningai_core::Result<()> {
        self.inner.put(cx, c).await
    }
    async fn put_writes(
        &self,
        cx: TenantCtx,
        thread: &str,
        cp: uuid::Uuid,
        writes: &[(String, Value)],
    ) -> morningai_core::Result<()> {
        self.put_writes_calls.fetch_add(1, Ordering::SeqCst);
        self.inner.put_writes(cx, thread, cp, writes).await
    }
    async fn pending_writes(
        &self,
        cx: TenantCtx,
        thread: &str,
        cp: uuid::Uuid,
    ) -> morningai_core::Result<Vec<(String, Value)>> {
        self.inner.pending_writes(cx, thread, cp).await
    }
    async fn thread_checkpoints(
        &self,
        cx: TenantCtx,
        thread: &str,
    ) -> morningai_core::Result<Vec<morningai_core::checkpoint::Checkpoint>> {
        self.inner.thread_checkpoints(cx, thread).await
    }
    async fn compact(
        &self,
        cx: TenantCtx,
        thread: &str,
        s: &morningai_core::checkpoint::Checkpoint,
    ) -> morningai_core::Result<u64> {
        self.inner.compact(cx, thread, s).await
    }
    async fn delete_thread(&self, cx: TenantCtx, thread: &str) -> morningai_core::Result<u64> {
        self.inner.delete_thread(cx, thread).await
    }
    async fn expire(
        &self,
        cx: TenantCtx,
        before: chrono::DateTime<chrono::Utc>,
    ) -> morningai_core::Result<u64> {
        self.inner.expire(cx, before).await
    }
    async fn stored_bytes(
        &self,
        cx: TenantCtx,
        thread: Option<&str>,
    ) -> morningai_core::Result<u64> {
        self.inner.stored_bytes(cx, thread).await
    }
}

#[tokio::test]
async fn siblings_that_finish_together_store_their_writes_in_one_batch() {
    let worker_runs = Arc::new(AtomicUsize::new(0));
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut b = Graph::builder()
        .channel("log", Reducer::Append)
        .node("split", NodeFn(|_| async { Ok(Command::default()) }))
        .edge(START, "split");
    for i in 0..9 {
        let name = format!("w{i}");
        b = b
            .node(&name, logger("w", worker_runs.clone()))
            .edge("split", &name);
    }
    let f = fail.clone();
    let g = b
        .node(
            "flaky",
            NodeFn(move |_ctx: NodeContext| {
                let f = f.clone();
                async move {
                    if f.load(Ordering::SeqCst) {
                        Err(NodeError::fatal("down"))
                    } else {
                        Ok(write("log", json!("flaky")))
                    }
                }
            }),
        )
        .edge("split", "flaky")
        .compile()
        .unwrap();
    let cp = Arc::new(CountingWrites::default());
    let r = Runner::new(Arc::new(g), cp.clone(), cx());
    let config = RunConfig::new("batched");
    assert!(r.run(Some(state(json!({}))), None, &config).await.is_err());
    assert_eq!(worker_runs.load(Ordering::SeqCst), 9);
    let calls = cp.put_writes_calls.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&calls),
        "9 finished siblings stored their writes in {calls} calls"
    );
    // The failed step re-runs only the task that failed.
    fail.store(false, Ordering::SeqCst);
    let out = r.run(None, None, &config).await.unwrap();
    assert_eq!(
        worker_runs.load(Ordering::SeqCst),
        9,
        "no finished sibling ran again"
    );
    assert_eq!(out.state["log"].as_array().unwrap().len(), 10);
}
