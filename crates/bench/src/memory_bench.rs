//! Dense search: 100,000 × 384 vectors spread over 100 tenants (1% each), queries from one
//! tenant, single-threaded; queries per second and recall@10 against an exact scan done
//! here. The embedded index always; pgvector too when `DATABASE_URL` is set (same data,
//! same queries, one run). Usage: `memory-bench [VECTORS] [QUERIES]`.

use morningai_core::memory::{Memory, NewChunk, NewItem, SearchScope};
use morningai_core::{Store, TenantCtx};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

const DIMS: usize = 384;
const TENANTS: usize = 100;

fn unit(seed: &mut u64) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIMS)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// Loads the data set through `store`/`memory`, then measures; prints one line.
async fn measure(
    name: &str,
    store: Arc<dyn Store>,
    memory: Arc<dyn Memory>,
    total: usize,
    queries: usize,
) -> anyhow::Result<()> {
    let mut seed = 7u64;
    let per_tenant = total / TENANTS;
    let mut probe: Option<(TenantCtx, Vec<Vec<f32>>)> = None;
    let load = Instant::now();
    for t in 0..TENANTS {
        let cx = morningai_bench::bench_tenant(store.as_ref(), &format!("bench-{t}")).await?;
        let c = memory
            .create_collection(cx, "main", None, "bench", DIMS as u32)
            .await?;
        let vectors: Vec<Vec<f32>> = (0..per_tenant).map(|_| unit(&mut seed)).collect();
        for (f, part) in vectors.chunks(100).enumerate() {
            let chunks = part
                .iter()
                .map(|v| NewChunk {
                    text: "chunk".into(),
                    start_line: 1,
                    end_line: 1,
                    language: None,
                    heading: None,
                    embedding: Some(v.clone()),
                    embed_key: None,
                })
                .collect();
            memory
                .put_item(
                    cx,
                    c.id,
                    NewItem {
                        source: format!("f{f}"),
                        content_hash: String::new(),
                        metadata: json!({}),
                        chunks,
                    },
                )
                .await?;
        }
        if t == TENANTS / 2 {
            probe = Some((cx, vectors));
        }
    }
    let loaded = load.elapsed().as_secs_f64();
    let (cx, mine) = probe.expect("a probe tenant");
    let scope = SearchScope {
        k: 10,
        ..Default::default()
    };
    let qs: Vec<Vec<f32>> = (0..queries).map(|_| unit(&mut seed)).collect();
    memory.dense_search(cx, &scope, "bench", &qs[0]).await?; // warm-up (loads caches)
    let start = Instant::now();
    let mut results = Vec::with_capacity(queries);
    for q in &qs {
        results.push(memory.dense_search(cx, &scope, "bench", q).await?);
    }
    let secs = start.elapsed().as_secs_f64();
    // Recall@10 against an exact scan of the tenant's vectors.
    let mut found = 0usize;
    for (q, hits) in qs.iter().zip(&results) {
        let mut exact: Vec<f32> = mine
            .iter()
            .map(|v| morningai_core::ai::cosine(v, q))
            .collect();
        exact.sort_by(|a, b| b.total_cmp(a));
        let tenth = exact[9.min(exact.len() - 1)];
        found += hits
            .iter()
            .filter(|h| h.score >= tenth - 1e-4)
            .count()
            .min(10);
    }
    println!(
        "{name}: {total} vectors over {TENANTS} tenants (loaded in {loaded:.1} s); {queries} queries for a 1% tenant ({per_tenant} vectors): {:.0} QPS single-threaded, recall@10 {:.3}",
        queries as f64 / secs,
        found as f64 / (queries * 10) as f64
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let queries: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let dir = std::env::temp_dir().join(format!("memory-bench-{}", std::process::id()));
    let sqlite = morningai_sqlite::SqliteStore::open(dir.join("bench.db")).await?;
    measure(
        "sqlite (exact, in-memory per tenant)",
        Arc::new(sqlite.clone()),
        Arc::new(sqlite),
        total,
        queries,
    )
    .await?;
    let _ = std::fs::remove_dir_all(dir);
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let pg = morningai_postgres::PgStore::connect(&url, 4).await?;
        measure(
            "pgvector (HNSW, iterative scan)",
            Arc::new(pg.clone()),
            Arc::new(pg),
            total,
            queries,
        )
        .await?;
    }
    Ok(())
}
