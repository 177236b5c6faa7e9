//! Keyword search (BM25 over the scope's own statistics) on both backends, same data, same
//! queries, one run: the sources of tokio, candle-core, candle-transformers and redis from
//! Cargo's registry (as in bench/index.sh; about 1,000 files, 10,000 chunks) indexed
//! lexical-only into one tenant, beside a second tenant holding the same tree (so the
//! index holds other tenants' postings, as in production), then the 20 questions of
//! bench/faq_bench.py, each searched `REPEATS` times with k = 16 (what a hybrid search
//! with k = 8 asks of each side). Prints indexing time and per-query p50/p95 per backend.
//! PostgreSQL when `DATABASE_URL` is set. Usage: `keyword-bench [REPEATS]`.

use morningai_agents::Retriever;
use morningai_agents::ingest::index_tree;
use morningai_core::Store;
use morningai_core::memory::{Memory, SearchScope, query_terms};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The questions of `bench/faq_bench.py`, one per line.
const QUESTIONS: &str = include_str!("../../../bench/questions.txt");

/// The newest version of each crate in Cargo's registry.
fn trees() -> anyhow::Result<Vec<PathBuf>> {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo")
        });
    let registry = std::fs::read_dir(home.join("registry/src"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("no Cargo registry sources: run cargo fetch"))??
        .path();
    let mut out = Vec::new();
    for name in ["tokio", "candle-core", "candle-transformers", "redis"] {
        let mut versions: Vec<PathBuf> = std::fs::read_dir(&registry)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.strip_prefix(name)
                        .and_then(|rest| rest.strip_prefix('-'))
                        .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
                })
            })
            .collect();
        versions.sort();
        out.push(
            versions
                .pop()
                .ok_or_else(|| anyhow::anyhow!("{name} is not in the registry"))?,
        );
    }
    Ok(out)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn measure(
    name: &str,
    store: Arc<dyn Store>,
    memory: Arc<dyn Memory>,
    trees: &[PathBuf],
    repeats: usize,
) -> anyhow::Result<()> {
    let r = Retriever::new(memory.clone(), None);
    let mut cx = None;
    let mut took = 0.0;
    for tag in ["kw-other", "kw-bench"] {
        let t = morningai_bench::bench_tenant(store.as_ref(), tag).await?;
        let c = r.create_collection(t, "tree", None).await?;
        let started = Instant::now();
        let mut chunks = 0;
        for tree in trees {
            chunks += index_tree(
                &r,
                memory.as_ref(),
                t,
                &c,
                Path::new(tree),
                &|_, _, _, _| {},
            )
            .await?
            .chunks;
        }
        took = started.elapsed().as_secs_f64();
        println!("{name}: indexed {chunks} chunks for {tag} in {took:.1} s");
        cx = Some(t);
    }
    let cx = cx.expect("a tenant");
    let scope = SearchScope {
        k: 16,
        ..Default::default()
    };
    let mut times = Vec::new();
    for _ in 0..repeats {
        for q in QUESTIONS.lines().filter(|l| !l.trim().is_empty()) {
            let started = Instant::now();
            let hits = memory.lexical_search(cx, &scope, &query_terms(q)).await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(!hits.is_empty(), "no hit for {q:?}");
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{name}: {} searches, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms (indexing {took:.1} s)",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        times[times.len() - 1]
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let repeats: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let trees = trees()?;
    let dir = std::env::temp_dir().join(format!("keyword-bench-{}", std::process::id()));
    let sqlite = morningai_sqlite::SqliteStore::open(dir.join("bench.db")).await?;
    measure(
        "sqlite",
        Arc::new(sqlite.clone()),
        Arc::new(sqlite),
        &trees,
        repeats,
    )
    .await?;
    let _ = std::fs::remove_dir_all(dir);
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let pg = morningai_postgres::PgStore::connect(&url, 4).await?;
        measure(
            "postgres",
            Arc::new(pg.clone()),
            Arc::new(pg),
            &trees,
            repeats,
        )
        .await?;
    }
    Ok(())
}
