//! Retrieval quality on a real corpus nobody here wrote: the sources of the `backon` crate
//! (a dependency, so Cargo has fetched it from crates.io into its registry), indexed with
//! the real MiniLM model. Each labelled question names the file that answers it; recall@5
//! is the share of questions whose file is among the top five chunks. Hybrid must not be
//! worse than dense or lexical alone.

use morningai_agents::Retriever;
use morningai_agents::ingest::index_tree;
use morningai_ai::MiniLm;
use morningai_core::ai::Embedder;
use morningai_core::memory::{Memory, SearchMode, SearchScope};
use morningai_sqlite::SqliteStore;
use std::path::PathBuf;
use std::sync::Arc;

const CRATE: &str = "backon-1.6.0";

const LABELLED: &[(&str, &str)] = &[
    (
        "exponential backoff with a factor, a maximum delay and jitter",
        "src/backoff/exponential.rs",
    ),
    (
        "delays that follow the fibonacci sequence",
        "src/backoff/fibonacci.rs",
    ),
    (
        "wait the same constant delay between retry attempts",
        "src/backoff/constant.rs",
    ),
    (
        "retry a blocking synchronous function without async",
        "src/blocking_retry.rs",
    ),
    (
        "honour the Retry-After header of an HTTP error response",
        "src/docs/examples/retry_after.md",
    ),
    (
        "implement a custom sleeper for the monoio runtime",
        "src/docs/examples/custom_sleeper.md",
    ),
    ("retry sqlx database queries", "src/docs/examples/sqlx.md"),
    (
        "run retries in the browser with wasm32 and wasm-bindgen",
        "src/docs/examples/wasm32_basic.md",
    ),
    (
        "only retry when the error is a specific retryable kind",
        "src/docs/examples/with_specific_error.md",
    ),
    (
        "the tokio sleeper and the futures timer sleeper",
        "src/sleep.rs",
    ),
    (
        "a trait to sleep for a duration in blocking code",
        "src/blocking_sleep.rs",
    ),
    (
        "retry an async function that takes &mut self as receiver",
        "src/docs/examples/with_mut_self.md",
    ),
];

fn corpus() -> PathBuf {
    morningai_conformance::corpus::registry_crate(CRATE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_recall_is_at_least_that_of_either_side() {
    let dir = std::env::var("MORNINGAI_EMBED_MODEL_DIR").expect(
        "MORNINGAI_EMBED_MODEL_DIR is not set: run the suite with scripts/test.sh, which fetches the MiniLM weights",
    );
    let embedder: Arc<dyn Embedder> =
        Arc::new(MiniLm::load(std::path::Path::new(&dir), Some("all-MiniLM-L6-v2")).unwrap());
    let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("quality-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let store = SqliteStore::open(base.join("m.db")).await.unwrap();
    let dynstore: morningai_conformance::DynStore = Arc::new(store.clone());
    let (_, cx) = morningai_conformance::owner(&dynstore, "quality").await;
    let memory: Arc<dyn Memory> = Arc::new(store);
    let r = Retriever::new(memory.clone(), Some(embedder));
    let c = r.create_collection(cx, "backon", None).await.unwrap();
    let report = index_tree(&r, memory.as_ref(), cx, &c, &corpus(), &|_, _, _| {})
        .await
        .unwrap();
    assert!(report.indexed >= 20, "{report:?}");

    let mut recall = Vec::new();
    for mode in [SearchMode::Dense, SearchMode::Lexical, SearchMode::Hybrid] {
        let mut found = 0;
        for (question, file) in LABELLED {
            let scope = SearchScope {
                k: 5,
                ..Default::default()
            };
            let hits = r.search(cx, question, mode, scope).await.unwrap().hits;
            if hits.iter().any(|h| h.source == *file) {
                found += 1;
            } else {
                eprintln!("{mode:?} missed {file} for {question:?}");
            }
        }
        let share = found as f64 / LABELLED.len() as f64;
        println!("recall@5 {mode:?}: {share:.2} ({found}/{})", LABELLED.len());
        recall.push(share);
    }
    let (dense, lexical, hybrid) = (recall[0], recall[1], recall[2]);
    assert!(
        hybrid >= dense && hybrid >= lexical,
        "hybrid {hybrid} vs dense {dense}, lexical {lexical}"
    );
    assert!(hybrid >= 0.75, "hybrid recall@5 {hybrid}");
}
