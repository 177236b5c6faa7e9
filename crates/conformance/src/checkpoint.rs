//! The conformance suite of the `Checkpointer` port. The macro's expression yields
//! `(tenant A, tenant B, checkpointer)`: two tenants that exist in the backend.

use morningai_core::TenantCtx;
use morningai_core::checkpoint::{Checkpoint, Checkpointer, Interrupt, PendingTask};
use morningai_graph::{
    Command, Graph, NodeContext, NodeFn, Reducer, Resume, RunConfig, Runner, START, get_state,
};
use serde_json::{Map, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use uuid::Uuid;

pub type Setup = (TenantCtx, TenantCtx, Arc<dyn Checkpointer>);

#[macro_export]
macro_rules! checkpointer_conformance {
    ($make:expr) => {
        $crate::checkpointer_conformance!($make;
            checkpoints_round_trip_and_upsert,
            pending_writes_batched_upsert_per_task,
            threads_are_tenant_scoped,
            compaction_delete_and_expiry,
            a_run_resumes_in_a_new_runner_without_replaying_work,
        );
    };
    ($make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let setup: $crate::checkpoint::Setup = $make.await;
                $crate::checkpoint::$case(setup).await;
            }
        )*
    };
}

fn checkpoint(thread: &str, parent: Option<Uuid>, step: i64) -> Checkpoint {
    Checkpoint {
        id: Uuid::now_v7(),
        thread_id: thread.into(),
        parent_id: parent,
        step,
        writes: Map::from_iter([("messages".into(), json!([format!("m{step}")]))]),
        snapshot: false,
        versions: Map::from_iter([("messages".into(), json!(step))]),
        next: vec![PendingTask {
            id: format!("t{step}"),
            node: "talk".into(),
            arg: Some(json!({"k": step})),
        }],
        interrupts: vec![Interrupt {
            id: "i".into(),
            node: "talk".into(),
            task_id: "t".into(),
            value: json!({"ask": step}),
            breakpoint: step % 2 == 0,
        }],
        metadata: json!({"source": "loop", "step": step}),
        created_at: morningai_core::now(),
    }
}

pub async fn checkpoints_round_trip_and_upsert((a, b, cp): Setup) {
    let thread = Uuid::new_v4().to_string();
    let c0 = checkpoint(&thread, None, 0);
    let c1 = checkpoint(&thread, Some(c0.id), 1);
    cp.put(a, &c0).await.unwrap();
    cp.put(a, &c1).await.unwrap();
    assert_eq!(
        cp.thread_checkpoints(a, &thread).await.unwrap(),
        vec![c0.clone(), c1.clone()]
    );
    let mut changed = c1.clone();
    changed.interrupts.clear();
    cp.put(a, &changed).await.unwrap();
    assert_eq!(
        cp.thread_checkpoints(a, &thread).await.unwrap(),
        vec![c0, changed],
        "put is an upsert"
    );
    let one = cp.stored_bytes(a, Some(&thread)).await.unwrap();
    assert!(one > 0);
    let before_b = cp.stored_bytes(b, None).await.unwrap();
    assert!(
        cp.stored_bytes(a, None).await.unwrap() >= one,
        "the tenant's total"
    );
    cp.put(a, &checkpoint("another", None, 0)).await.unwrap();
    assert!(
        cp.stored_bytes(a, None).await.unwrap() > one,
        "every thread counts"
    );
    assert_eq!(
        cp.stored_bytes(b, None).await.unwrap(),
        before_b,
        "another tenant's total is its own"
    );
    assert!(
        cp.thread_checkpoints(a, "no-such-thread")
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn pending_writes_batched_upsert_per_task((a, _b, cp): Setup) {
    let thread = Uuid::new_v4().to_string();
    let (c0, c1) = (Uuid::now_v7(), Uuid::now_v7());
    cp.put_writes(
        a,
        &thread,
        c0,
        &[
            ("t1:writes".into(), json!({"x": 1})),
            ("t2:writes".into(), json!({"x": 2})),
        ],
    )
    .await
    .unwrap();
    // A stored key is replaced, and within one batch the last of equal keys wins.
    cp.put_writes(
        a,
        &thread,
        c0,
        &[
            ("t1:writes".into(), json!({"x": 9})),
            ("t1:writes".into(), json!({"x": 3})),
        ],
    )
    .await
    .unwrap();
    cp.put_writes(a, &thread, c1, &[("t1:writes".into(), json!({"y": 1}))])
        .await
        .unwrap();
    let w = cp.pending_writes(a, &thread, c0).await.unwrap();
    assert_eq!(
        w,
        vec![
            ("t1:writes".to_owned(), json!({"x": 3})),
            ("t2:writes".to_owned(), json!({"x": 2}))
        ]
    );
    assert_eq!(cp.pending_writes(a, &thread, c1).await.unwrap().len(), 1);
}

pub async fn threads_are_tenant_scoped((a, b, cp): Setup) {
    let thread = Uuid::new_v4().to_string();
    let c0 = checkpoint(&thread, None, 0);
    cp.put(a, &c0).await.unwrap();
    cp.put_writes(a, &thread, c0.id, &[("t:writes".into(), json!({}))])
        .await
        .unwrap();
    assert!(
        cp.thread_checkpoints(b, &thread).await.unwrap().is_empty(),
        "same thread id, other tenant"
    );
    assert!(
        cp.pending_writes(b, &thread, c0.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(cp.delete_thread(b, &thread).await.unwrap(), 0);
    assert_eq!(
        cp.expire(b, morningai_core::now() + chrono::Duration::days(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        cp.thread_checkpoints(a, &thread).await.unwrap().len(),
        1,
        "untouched by the other tenant"
    );
}

pub async fn compaction_delete_and_expiry((a, _b, cp): Setup) {
    let thread = Uuid::new_v4().to_string();
    let mut prev = None;
    let mut all = Vec::new();
    for step in 0..5 {
        let c = checkpoint(&thread, prev, step);
        prev = Some(c.id);
        cp.put(a, &c).await.unwrap();
        all.push(c);
    }
    let snapshot = Checkpoint {
        snapshot: true,
        parent_id: None,
        writes: Map::from_iter([("messages".into(), json!(["m0", "m1", "m2", "m3"]))]),
        ..all[3].clone()
    };
    assert_eq!(cp.compact(a, &thread, &snapshot).await.unwrap(), 3);
    let left = cp.thread_checkpoints(a, &thread).await.unwrap();
    assert_eq!(left, vec![snapshot, all[4].clone()]);
    let other = Uuid::new_v4().to_string();
    cp.put(a, &checkpoint(&other, None, 0)).await.unwrap();
    assert_eq!(
        cp.expire(a, morningai_core::now() - chrono::Duration::hours(1))
            .await
            .unwrap(),
        0,
        "nothing that old"
    );
    assert_eq!(cp.delete_thread(a, &other).await.unwrap(), 1);
    assert!(
        cp.expire(a, morningai_core::now() + chrono::Duration::seconds(1))
            .await
            .unwrap()
            >= 2
    );
    assert!(cp.thread_checkpoints(a, &thread).await.unwrap().is_empty());
}

/// The engine on this backend: a run pauses at an interrupt; a new runner (as after a
/// process restart) resumes it; the node that finished in the paused step does not rerun.
pub async fn a_run_resumes_in_a_new_runner_without_replaying_work((a, _b, cp): Setup) {
    let runs = Arc::new(AtomicUsize::new(0));
    let graph = {
        let runs = runs.clone();
        Arc::new(
            Graph::builder()
                .channel("log", Reducer::Append)
                .channel("answer", Reducer::LastValue)
                .node(
                    "work",
                    NodeFn(move |_ctx: NodeContext| {
                        let runs = runs.clone();
                        async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            Ok(Command::update(Map::from_iter([(
                                "log".into(),
                                json!("worked"),
                            )])))
                        }
                    }),
                )
                .node(
                    "ask",
                    NodeFn(|ctx: NodeContext| async move {
                        let v = ctx.interrupt(json!("approve?"))?;
                        Ok(Command::update(Map::from_iter([("answer".into(), v)])))
                    }),
                )
                .edge(START, "work")
                .edge(START, "ask")
                .compile()
                .unwrap(),
        )
    };
    let thread = Uuid::new_v4().to_string();
    let config = RunConfig::new(thread.clone());
    let first = Runner::new(graph.clone(), cp.clone(), a);
    let out = first.run(Some(Map::new()), None, &config).await.unwrap();
    assert_eq!(out.interrupts.len(), 1);
    drop(first);
    let snap = get_state(&graph, cp.as_ref(), a, &thread, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snap.interrupts[0].value, json!("approve?"));
    let second = Runner::new(graph.clone(), cp.clone(), a);
    let out = second
        .run(None, Some(Resume::Value(json!("yes"))), &config)
        .await
        .unwrap();
    assert!(out.interrupts.is_empty());
    assert_eq!(
        (out.state["answer"].clone(), out.state["log"].clone()),
        (json!("yes"), json!(["worked"]))
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "work ran once across both runners"
    );
    let snap = get_state(&graph, cp.as_ref(), a, &thread, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(snap.values["answer"], json!("yes"));
    assert!(snap.next.is_empty());
}
