//! Indexing with the real MiniLM weights, in two passes: the tree answers searches as soon
//! as its chunks are stored (lexical hits, and hybrid saying how few vectors it had), the
//! vectors follow batch by batch, and a pass that is cut off is resumed by the next run
//! without embedding again what was already stored.

use async_trait::async_trait;
use morningai_agents::Retriever;
use morningai_agents::ingest::{IndexReport, index_tree};
use morningai_agents::retrieval::Vectors;
use morningai_ai::MiniLm;
use morningai_core::ai::Embedder;
use morningai_core::memory::{Collection, Density, Memory, SearchMode, SearchScope};
use morningai_core::{Result, TenantCtx};
use morningai_sqlite::SqliteStore;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

fn model() -> Arc<dyn Embedder> {
    let dir = std::env::var("MORNINGAI_EMBED_MODEL_DIR").expect(
        "MORNINGAI_EMBED_MODEL_DIR is not set: run the suite with scripts/test.sh, which fetches the MiniLM weights",
    );
    Arc::new(MiniLm::load(Path::new(&dir), Some("all-MiniLM-L6-v2")).unwrap())
}

/// The model behind a gate: each call to `embed` announces itself (its number, from 0),
/// then waits for a permit before the model runs; the texts of calls that returned are
/// kept.
struct Watched {
    model: Arc<dyn Embedder>,
    calls: AtomicUsize,
    entered: mpsc::UnboundedSender<usize>,
    gate: Arc<Semaphore>,
    embedded: Mutex<Vec<String>>,
}

impl Watched {
    fn new(
        model: Arc<dyn Embedder>,
        permits: usize,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<usize>) {
        let (entered, calls) = mpsc::unbounded_channel();
        let w = Self {
            model,
            calls: AtomicUsize::new(0),
            entered,
            gate: Arc::new(Semaphore::new(permits)),
            embedded: Mutex::new(Vec::new()),
        };
        (Arc::new(w), calls)
    }

    fn embedded(&self) -> Vec<String> {
        self.embedded.lock().unwrap().clone()
    }
}

#[async_trait]
impl Embedder for Watched {
    fn model(&self) -> &str {
        self.model.model()
    }
    fn dims(&self) -> usize {
        self.model.dims()
    }
    fn max_tokens(&self) -> usize {
        self.model.max_tokens()
    }
    fn count_tokens(&self, text: &str) -> usize {
        self.model.count_tokens(text)
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let _ = self.entered.send(self.calls.fetch_add(1, Ordering::SeqCst));
        self.gate.acquire().await.expect("gate open").forget();
        let vectors = self.model.embed(texts).await?;
        self.embedded.lock().unwrap().extend(texts.iter().cloned());
        Ok(vectors)
    }
}

struct Setup {
    root: PathBuf,
    cx: TenantCtx,
    memory: Arc<dyn Memory>,
    collection: Collection,
}

/// A fresh store and tenant, the files under a fresh root, one collection for the model.
async fn setup(tag: &str, files: &[(String, String)], model: &Arc<dyn Embedder>) -> Setup {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("background-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("tree");
    for (rel, text) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let store = SqliteStore::open(base.join("m.db")).await.unwrap();
    let dynstore: morningai_conformance::DynStore = Arc::new(store.clone());
    let (_, cx) = morningai_conformance::owner(&dynstore, tag).await;
    let memory: Arc<dyn Memory> = Arc::new(store);
    let collection = Retriever::new(memory.clone(), Some(model.clone()))
        .create_collection(cx, "tree", None)
        .await
        .unwrap();
    Setup {
        root,
        cx,
        memory,
        collection,
    }
}

/// `index_tree` on its own task, through `embedder`.
fn spawn_index(
    s: &Setup,
    embedder: Arc<dyn Embedder>,
) -> tokio::task::JoinHandle<Result<IndexReport>> {
    let (memory, cx, collection, root) =
        (s.memory.clone(), s.cx, s.collection.clone(), s.root.clone());
    tokio::spawn(async move {
        let retriever = Retriever::new(memory.clone(), Some(embedder));
        index_tree(
            &retriever,
            memory.as_ref(),
            cx,
            &collection,
            &root,
            &|_, _, _, _| {},
        )
        .await
    })
}

async fn next_call(calls: &mut mpsc::UnboundedReceiver<usize>) -> usize {
    tokio::time::timeout(Duration::from_secs(120), calls.recv())
        .await
        .expect("the indexer reaches the model")
        .expect("the indexer is alive")
}

fn scope(k: usize) -> SearchScope {
    SearchScope {
        k,
        ..Default::default()
    }
}

fn docs() -> Vec<(String, String)> {
    [
        (
            "docs/queue.md",
            "# Job queue\n\nJobs are leased to workers. A job whose lease expires is handed to another worker.\n\n## Retries\n\nFailed jobs are retried with exponential backoff, then moved to the dead-letter list.",
        ),
        (
            "docs/auth.md",
            "# Authentication\n\nClients authenticate with an API key in the x-api-key header, or with a bearer JWT obtained from the login endpoint.",
        ),
        (
            "docs/install.md",
            "# Installation\n\nBuild the binary with cargo build --release.\n\n## From source\n\nClone the repository and run the build script.",
        ),
    ]
    .into_iter()
    .map(|(p, t)| (p.to_owned(), t.to_owned()))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_answers_before_its_vectors_exist_and_fully_after() {
    let model = model();
    let s = setup("early", &docs(), &model).await;
    let (gated, mut calls) = Watched::new(model.clone(), 0);
    let run = spawn_index(&s, gated.clone());
    // The model is asked for the first time: every file is stored, no vector yet.
    assert_eq!(next_call(&mut calls).await, 0);

    let searcher = Retriever::new(s.memory.clone(), Some(model.clone()));
    let lexical = searcher
        .search(s.cx, "lease expires", SearchMode::Lexical, scope(3))
        .await
        .unwrap();
    assert_eq!(
        lexical.hits.first().map(|h| h.source.as_str()),
        Some("docs/queue.md")
    );
    let hybrid = searcher
        .search(s.cx, "lease expires", SearchMode::Hybrid, scope(3))
        .await
        .unwrap();
    assert_eq!(hybrid.mode, SearchMode::Hybrid);
    assert_eq!(
        hybrid.hits.first().map(|h| h.source.as_str()),
        Some("docs/queue.md"),
        "hybrid search answers from the words while the vectors are missing"
    );
    let partial = hybrid.density.expect("hybrid reports its vectors");
    assert_eq!(partial.embedded, 0);
    assert!(partial.total >= 3, "{partial:?}");
    let warning = hybrid.warning.expect("an incomplete index is said so");
    assert!(
        warning.contains(&format!("0 of {} chunks", partial.total)),
        "{warning}"
    );
    assert_eq!(
        s.memory.density(s.cx, Some(s.collection.id)).await.unwrap(),
        partial
    );

    gated.gate.add_permits(1_000);
    let report = run.await.unwrap().unwrap();
    assert_eq!(report.indexed, 3);
    assert_eq!(
        report.dense,
        Density {
            embedded: partial.total,
            total: partial.total
        }
    );
    assert_eq!(report.embedded, partial.total);
    let after = searcher
        .search(
            s.cx,
            "what happens when a worker stops renewing its job",
            SearchMode::Dense,
            scope(1),
        )
        .await
        .unwrap();
    assert_eq!(after.warning, None);
    assert!(after.density.is_some_and(|d| d.complete()));
    assert_eq!(
        after.hits.first().map(|h| h.source.as_str()),
        Some("docs/queue.md"),
        "the vectors stored in the background answer by meaning"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_vector_pass_resumes_without_embedding_again() {
    let model = model();
    // 150 one-chunk files: more than two batches of the vector pass.
    let files: Vec<(String, String)> = (0..150)
        .map(|i| {
            (
                format!("notes/{i:03}.md"),
                format!("# Note {i}\n\nNote number {i} records the reading of gauge {i}."),
            )
        })
        .collect();
    let s = setup("resume", &files, &model).await;

    // The pass stores 64 chunks at a time, embedding them four per model call. The first
    // run may make 32 calls (two stored batches); it is stopped in the 33rd.
    let (first, mut calls) = Watched::new(model.clone(), 32);
    let run = spawn_index(&s, first.clone());
    for expected in 0..=32 {
        assert_eq!(next_call(&mut calls).await, expected);
    }
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    let done: HashSet<String> = first.embedded().into_iter().collect();
    assert_eq!(done.len(), 128, "two batches of 64 returned");
    let stopped = s.memory.density(s.cx, Some(s.collection.id)).await.unwrap();
    assert_eq!(
        stopped,
        Density {
            embedded: 128,
            total: 150
        },
        "each batch is stored before the next is embedded"
    );

    let (second, _calls) = Watched::new(model.clone(), 1_000);
    let report = spawn_index(&s, second.clone()).await.unwrap().unwrap();
    assert_eq!(
        (report.unchanged, report.indexed),
        (150, 0),
        "the files were all stored by the first run"
    );
    assert_eq!(
        report.embedded, 22,
        "only what the first run had not stored"
    );
    assert_eq!(
        report.dense,
        Density {
            embedded: 150,
            total: 150
        }
    );
    let again: Vec<String> = second
        .embedded()
        .into_iter()
        .filter(|t| done.contains(t))
        .collect();
    assert!(again.is_empty(), "embedded twice: {again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_passes_run_one_at_a_time_per_collection_and_miss_nothing() {
    let model = model();
    let s = setup("fill", &[], &model).await;
    let (gated, mut calls) = Watched::new(model.clone(), 0);
    let r = Arc::new(Retriever::new(s.memory.clone(), Some(gated.clone())));
    let store = |source: &'static str, text: &'static str| {
        let (r, c) = (r.clone(), s.collection.clone());
        async move {
            r.store_text(
                s.cx,
                &c,
                source,
                text,
                serde_json::json!({}),
                Vectors::Later,
            )
            .await
            .unwrap()
        }
    };
    store(
        "a.md",
        "# Alpha\n\nThe alpha page explains the first gauge.",
    )
    .await;
    r.embed_in_background(s.cx, s.collection.clone());
    assert_eq!(next_call(&mut calls).await, 0, "the pass reached the model");
    // Asked again while it is held: no second pass starts beside it.
    store("b.md", "# Beta\n\nThe beta page explains the second gauge.").await;
    r.embed_in_background(s.cx, s.collection.clone());
    r.embed_in_background(s.cx, s.collection.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        calls.try_recv().is_err(),
        "a second pass ran beside the first"
    );

    gated.gate.add_permits(1_000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let d = s.memory.density(s.cx, Some(s.collection.id)).await.unwrap();
        if d.total > 0 && d.complete() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "vectors never completed: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let embedded = gated.embedded();
    let distinct: HashSet<&String> = embedded.iter().collect();
    assert_eq!(
        distinct.len(),
        embedded.len(),
        "embedded twice: {embedded:?}"
    );
    assert_eq!(embedded.len(), 2, "{embedded:?}");
    let found = Retriever::new(s.memory.clone(), Some(model))
        .search(s.cx, "second gauge", SearchMode::Dense, scope(1))
        .await
        .unwrap();
    assert_eq!(found.hits[0].source, "b.md");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_pass_holds_back_while_someone_waits_for_the_model() {
    let model = model();
    let s = setup("yield", &[], &model).await;
    let (background, mut bg_calls) = Watched::new(model.clone(), 1_000);
    let r = Arc::new(Retriever::new(s.memory.clone(), Some(background.clone())));
    // A query's embedding, in flight and held there.
    let (query, mut q_calls) = Watched::new(model.clone(), 0);
    let asking = {
        let (r, query) = (r.clone(), query.clone());
        tokio::spawn(async move {
            r.embed_now(query.as_ref(), &["which gauge?".to_owned()])
                .await
                .unwrap()
        })
    };
    assert_eq!(next_call(&mut q_calls).await, 0);
    r.store_text(
        s.cx,
        &s.collection,
        "a.md",
        "# Alpha\n\nThe alpha page explains the first gauge.",
        serde_json::json!({}),
        Vectors::Later,
    )
    .await
    .unwrap();
    r.embed_in_background(s.cx, s.collection.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        bg_calls.try_recv().is_err(),
        "the background pass used the model while a query waited"
    );
    query.gate.add_permits(1);
    assert_eq!(asking.await.unwrap().len(), 1);
    assert_eq!(
        next_call(&mut bg_calls).await,
        0,
        "the pass goes on once the query is answered"
    );
}
