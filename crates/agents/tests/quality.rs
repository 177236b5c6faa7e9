//! Retrieval quality on real source trees nobody here wrote, on both backends: the sources
//! of the `backon` and `axum` crates (dependencies, so Cargo has fetched them into its
//! registry) and Python's `asyncio` package (the interpreter the test script needs),
//! indexed with the real MiniLM model. `tests/labelled/<corpus>.tsv` holds the questions,
//! one per line: the question, a tab, the file (relative to the corpus root) that answers
//! it, and optionally a tab and a second file that answers it as well. recall@5 is the
//! share of questions with such a file among the top five chunks.
//!
//! The vectors are computed once and shared by both backends, so the run measures the
//! backends' retrieval, not the model twice. Checked: SQLite and PostgreSQL agree within
//! 0.03 in every mode; hybrid is at least as good as either side alone; floors below the
//! measured figures (BENCHMARKS.md) catch a regression.

use async_trait::async_trait;
use morningai_agents::Retriever;
use morningai_agents::ingest::index_tree;
use morningai_ai::MiniLm;
use morningai_core::ai::Embedder;
use morningai_core::memory::{Collection, Memory, SearchMode, SearchScope};
use morningai_core::{Result, TenantCtx};
use morningai_sqlite::SqliteStore;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The corpora: (name of the labelled file, root of the tree).
fn corpora() -> Vec<(&'static str, PathBuf)> {
    vec![
        (
            "backon-1.6.0",
            morningai_conformance::corpus::registry_crate("backon-1.6.0"),
        ),
        (
            "axum-0.8.9",
            morningai_conformance::corpus::registry_crate("axum-0.8.9"),
        ),
        ("python3.11-asyncio", asyncio()),
    ]
}

/// Python 3.11's `asyncio` package: Debian's, else the `python3` on the path if it is 3.11.
fn asyncio() -> PathBuf {
    let debian = PathBuf::from("/usr/lib/python3.11/asyncio");
    if debian.is_dir() {
        return debian;
    }
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import asyncio, os, sys; assert sys.version_info[:2] == (3, 11); print(os.path.dirname(asyncio.__file__))",
        ])
        .output()
        .expect("python3 (Debian's python3.11 has the asyncio sources this test labels)");
    assert!(out.status.success(), "no Python 3.11 asyncio sources found");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// (question, files that answer it).
fn labelled(corpus: &str) -> Vec<(String, Vec<String>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/labelled/{corpus}.tsv"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut cols = l.split('\t').map(str::to_owned);
            let q = cols.next().unwrap();
            let files: Vec<String> = cols.collect();
            assert!(!files.is_empty(), "{corpus}: no file for {q:?}");
            (q, files)
        })
        .collect()
}

/// The model, remembering every vector it computed: the second backend reuses them.
struct Remembering {
    model: MiniLm,
    seen: Mutex<HashMap<String, Vec<f32>>>,
}

#[async_trait]
impl Embedder for Remembering {
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
        let missing: Vec<String> = {
            let seen = self.seen.lock().unwrap();
            texts
                .iter()
                .filter(|t| !seen.contains_key(*t))
                .cloned()
                .collect()
        };
        if !missing.is_empty() {
            let vectors = self.model.embed(&missing).await?;
            self.seen
                .lock()
                .unwrap()
                .extend(missing.into_iter().zip(vectors));
        }
        let seen = self.seen.lock().unwrap();
        Ok(texts.iter().map(|t| seen[t].clone()).collect())
    }
}

const MODES: [SearchMode; 3] = [SearchMode::Dense, SearchMode::Lexical, SearchMode::Hybrid];

/// recall@5 per mode (dense, lexical, hybrid) over every labelled question of every corpus.
async fn recall(
    backend: &str,
    memory: Arc<dyn Memory>,
    cx: TenantCtx,
    embedder: Arc<dyn Embedder>,
) -> [f64; 3] {
    let r = Retriever::new(memory.clone(), Some(embedder));
    let mut found = [0usize; 3];
    let mut asked = 0;
    for (corpus, root) in corpora() {
        let c: Collection = r.create_collection(cx, corpus, None).await.unwrap();
        let report = index_tree(&r, memory.as_ref(), cx, &c, &root, &|_, _, _| {})
            .await
            .unwrap();
        assert!(report.indexed >= 20, "{corpus}: {report:?}");
        for (question, files) in labelled(corpus) {
            asked += 1;
            for (m, mode) in MODES.iter().enumerate() {
                let scope = SearchScope {
                    collection: Some(c.id),
                    k: 5,
                    ..Default::default()
                };
                let hits = r.search(cx, &question, *mode, scope).await.unwrap().hits;
                if hits.iter().any(|h| files.contains(&h.source)) {
                    found[m] += 1;
                } else {
                    let got: Vec<&str> = hits.iter().map(|h| h.source.as_str()).collect();
                    eprintln!("{backend} {mode:?} missed {files:?} for {question:?}: {got:?}");
                }
            }
        }
    }
    let share = found.map(|f| f as f64 / asked as f64);
    println!(
        "recall@5 on {backend} ({asked} questions): dense {:.2}, lexical {:.2}, hybrid {:.2}",
        share[0], share[1], share[2]
    );
    share
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieval_recall_is_the_same_on_both_backends() {
    let dir = std::env::var("MORNINGAI_EMBED_MODEL_DIR").expect(
        "MORNINGAI_EMBED_MODEL_DIR is not set: run the suite with scripts/test.sh, which fetches the MiniLM weights",
    );
    let embedder: Arc<dyn Embedder> = Arc::new(Remembering {
        model: MiniLm::load(Path::new(&dir), Some("all-MiniLM-L6-v2")).unwrap(),
        seen: Mutex::default(),
    });
    let base =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("quality-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);

    let sqlite = SqliteStore::open(base.join("m.db")).await.unwrap();
    let dynstore: morningai_conformance::DynStore = Arc::new(sqlite.clone());
    let (_, cx) = morningai_conformance::owner(&dynstore, "quality").await;
    let on_sqlite = recall("SQLite", Arc::new(sqlite), cx, embedder.clone()).await;

    let url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the suite with scripts/test.sh");
    let pg = morningai_postgres::PgStore::connect(&url, 4).await.unwrap();
    let dynstore: morningai_conformance::DynStore = Arc::new(pg.clone());
    let (_, cx) = morningai_conformance::owner(&dynstore, "quality").await;
    let on_pg = recall("PostgreSQL", Arc::new(pg), cx, embedder).await;

    for (m, mode) in MODES.iter().enumerate() {
        assert!(
            (on_sqlite[m] - on_pg[m]).abs() <= 0.03,
            "{mode:?}: SQLite {:.2} vs PostgreSQL {:.2}",
            on_sqlite[m],
            on_pg[m]
        );
    }
    for (backend, [dense, lexical, hybrid]) in [("SQLite", on_sqlite), ("PostgreSQL", on_pg)] {
        assert!(
            hybrid >= dense && hybrid >= lexical,
            "{backend}: hybrid {hybrid} vs dense {dense}, lexical {lexical}"
        );
        assert!(
            lexical >= 0.85 && hybrid >= 0.90,
            "{backend}: lexical {lexical}, hybrid {hybrid}"
        );
    }
}
