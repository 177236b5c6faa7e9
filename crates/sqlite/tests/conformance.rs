//! The Store conformance suite on SQLite, each case on a fresh database file.

use morningai_sqlite::SqliteStore;
use std::sync::Arc;

/// A store on a fresh file in Cargo's per-target scratch dir (cleaned with target/).
async fn fresh_file(tag: &str) -> SqliteStore {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sqlite-{tag}-{}", uuid_like()));
    SqliteStore::open(dir.join("morningai.db"))
        .await
        .expect("open sqlite")
}

async fn fresh() -> morningai_conformance::DynStore {
    Arc::new(fresh_file("conformance").await)
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{n}", std::process::id())
}

mod store {
    use super::*;
    morningai_conformance::store_conformance!(fresh());
}

async fn fresh_queue() -> morningai_conformance::queue::DynQueue {
    let store = fresh_file("queue").await;
    let q = morningai_sqlite::SqliteQueue::new(&store, morningai_conformance::queue::TENANT_LIMIT)
        .with_backoff(
            morningai_conformance::queue::BACKOFF_BASE,
            std::time::Duration::from_secs(5),
        );
    Arc::new(q)
}

mod queue {
    use super::*;
    morningai_conformance::queue_conformance!(fresh_queue());
}

async fn checkpointer() -> morningai_conformance::checkpoint::Setup {
    let store = fresh_file("cp").await;
    let (a, b) = morningai_conformance::two_tenants(Arc::new(store.clone())).await;
    (a, b, Arc::new(store))
}

mod checkpoints {
    use super::*;
    morningai_conformance::checkpointer_conformance!(checkpointer());
}

async fn memory() -> morningai_conformance::memory::Setup {
    let store = fresh_file("mem").await;
    let (a, b) = morningai_conformance::two_tenants(Arc::new(store.clone())).await;
    (a, b, Arc::new(store))
}

mod memory {
    use super::*;
    morningai_conformance::memory_conformance!(memory());
}

/// Every keyword search through the index's per-occurrence lists, as scopes above
/// the small-scope threshold are (the suite's scopes are all small).
async fn memory_ranked_by_the_index() -> morningai_conformance::memory::Setup {
    let store = fresh_file("mem-index").await.with_small_scope_ranking(0);
    let (a, b) = morningai_conformance::two_tenants(Arc::new(store.clone())).await;
    (a, b, Arc::new(store))
}

mod memory_ranked_by_the_index {
    use super::*;
    morningai_conformance::memory_conformance!(memory_ranked_by_the_index());
}

async fn usage() -> morningai_conformance::usage::Setup {
    let store = fresh_file("usage").await;
    let (a, b) = morningai_conformance::two_tenants(Arc::new(store.clone())).await;
    (a, b, Arc::new(store))
}

mod usage {
    use super::*;
    morningai_conformance::usage_conformance!(usage());
}

async fn kv() -> morningai_conformance::kv::Setup {
    let store = fresh_file("kv").await;
    let (a, b) = morningai_conformance::two_tenants(Arc::new(store.clone())).await;
    (a, b, Arc::new(store))
}

mod kv {
    use super::*;
    morningai_conformance::kv_conformance!(kv());
}
