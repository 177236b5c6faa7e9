//! Retrieval end to end on the embedded store with the real MiniLM weights: text is
//! chunked, embedded and stored; dense, lexical and hybrid searches find the document that
//! answers; without a model, hybrid degrades to lexical and says so.

use morningai_agents::Retriever;
use morningai_ai::MiniLm;
use morningai_core::ai::Embedder;
use morningai_core::memory::{Memory, SearchMode, SearchScope};
use morningai_core::{Error, TenantCtx};
use morningai_sqlite::SqliteStore;
use serde_json::json;
use std::sync::Arc;

const DOCS: &[(&str, &str)] = &[
    (
        "docs/install.md",
        "# Installation\n\nBuild the binary with cargo build --release.\n\n## From source\n\nClone the repository and run the build script.",
    ),
    (
        "docs/queue.md",
        "# Job queue\n\nJobs are leased to workers. A job whose lease expires is handed to another worker.\n\n## Retries\n\nFailed jobs are retried with exponential backoff, then moved to the dead-letter list.",
    ),
    (
        "docs/auth.md",
        "# Authentication\n\nClients authenticate with an API key in the x-api-key header, or with a bearer JWT obtained from the login endpoint.",
    ),
];

async fn setup(tag: &str) -> (TenantCtx, Arc<dyn Memory>) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("retrieval-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = SqliteStore::open(dir.join("m.db")).await.unwrap();
    let dynstore: morningai_conformance::DynStore = Arc::new(store.clone());
    let (_, cx) = morningai_conformance::owner(&dynstore, tag).await;
    (cx, Arc::new(store))
}

fn model() -> Arc<dyn Embedder> {
    let dir = std::env::var("MORNINGAI_EMBED_MODEL_DIR").expect(
        "MORNINGAI_EMBED_MODEL_DIR is not set: run the suite with scripts/test.sh, which fetches the MiniLM weights",
    );
    Arc::new(MiniLm::load(std::path::Path::new(&dir), Some("all-MiniLM-L6-v2")).unwrap())
}

fn scope(k: usize) -> SearchScope {
    SearchScope {
        k,
        ..Default::default()
    }
}

#[tokio::test]
async fn every_mode_finds_the_document_that_answers() {
    let (cx, memory) = setup("modes").await;
    let embedder = model();
    let r = Retriever::new(memory.clone(), Some(embedder.clone()));
    let c = memory
        .create_collection(cx, "docs", None, embedder.model(), embedder.dims() as u32)
        .await
        .unwrap();
    for (source, text) in DOCS {
        let item = r
            .add_text(cx, &c, source, text, json!({"kind": "doc"}))
            .await
            .unwrap();
        assert!(item.chunks >= 1);
    }
    for (question, answer) in [
        ("How do I authenticate with an API key?", "docs/auth.md"),
        (
            "what happens when a job fails, is it retried?",
            "docs/queue.md",
        ),
        ("how to build from source", "docs/install.md"),
    ] {
        for mode in [SearchMode::Dense, SearchMode::Lexical, SearchMode::Hybrid] {
            let found = r.search(cx, question, mode, scope(3)).await.unwrap();
            assert_eq!(found.mode, mode);
            assert!(found.warning.is_none());
            assert_eq!(
                found.hits[0].source, answer,
                "{mode:?} for {question:?}: {:?}",
                found.hits
            );
        }
    }
    // Chunks carry their place in the source: the retries section of queue.md.
    let found = r
        .search(
            cx,
            "exponential backoff dead-letter",
            SearchMode::Hybrid,
            scope(1),
        )
        .await
        .unwrap();
    let h = &found.hits[0];
    assert_eq!(h.heading.as_deref(), Some("Job queue > Retries"));
    assert_eq!((h.start_line, h.language.as_deref()), (5, Some("markdown")));
    assert!(matches!(
        r.search(cx, "  ", SearchMode::Hybrid, scope(3)).await,
        Err(Error::Invalid { .. })
    ));
}

#[tokio::test]
async fn without_a_model_hybrid_is_lexical_and_says_so() {
    let (cx, memory) = setup("lexical").await;
    let r = Retriever::new(memory.clone(), None);
    let c = memory
        .create_collection(cx, "docs", None, "none", 384)
        .await
        .unwrap();
    for (source, text) in DOCS {
        r.add_text(cx, &c, source, text, json!({})).await.unwrap();
    }
    let found = r
        .search(cx, "api key header", SearchMode::Hybrid, scope(3))
        .await
        .unwrap();
    assert_eq!(found.mode, SearchMode::Lexical);
    assert!(found.warning.unwrap().contains("lexical"));
    assert_eq!(found.hits[0].source, "docs/auth.md");
    assert!(matches!(
        r.search(cx, "api key", SearchMode::Dense, scope(3)).await,
        Err(Error::Invalid { .. })
    ));
    // A collection built with one model refuses text from another.
    let with_model = Retriever::new(memory.clone(), Some(model()));
    assert!(matches!(
        with_model.add_text(cx, &c, "x.md", "text", json!({})).await,
        Err(Error::Invalid { .. })
    ));
}

/// Counts the texts it embeds, on the way to the real model.
struct Counting(Arc<dyn Embedder>, std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl Embedder for Counting {
    fn model(&self) -> &str {
        self.0.model()
    }
    fn dims(&self) -> usize {
        self.0.dims()
    }
    fn max_tokens(&self) -> usize {
        self.0.max_tokens()
    }
    fn count_tokens(&self, text: &str) -> usize {
        self.0.count_tokens(text)
    }
    async fn embed(&self, texts: &[String]) -> morningai_core::Result<Vec<Vec<f32>>> {
        self.1
            .fetch_add(texts.len(), std::sync::atomic::Ordering::SeqCst);
        self.0.embed(texts).await
    }
}

#[tokio::test]
async fn re_adding_a_document_embeds_only_its_changed_chunks() {
    let (cx, memory) = setup("cache").await;
    let counting = Arc::new(Counting(model(), Default::default()));
    let r = Retriever::new(memory.clone(), Some(counting.clone()));
    let c = r.create_collection(cx, "docs", None).await.unwrap();
    let embedded = || counting.1.load(std::sync::atomic::Ordering::SeqCst);
    let doc = "# A\n\nalpha text\n\n# B\n\nbeta text\n\n# C\n\ngamma text\n";
    let first = r.add_text(cx, &c, "doc.md", doc, json!({})).await.unwrap();
    assert_eq!((first.chunks, embedded()), (3, 3));
    let changed = doc.replace("beta text", "beta, revised");
    r.add_text(cx, &c, "doc.md", &changed, json!({}))
        .await
        .unwrap();
    assert_eq!(embedded(), 4, "only the changed section was embedded again");
    let found = r
        .search(cx, "revised beta", SearchMode::Dense, scope(1))
        .await
        .unwrap();
    assert_eq!(found.hits[0].heading.as_deref(), Some("B"));
}
