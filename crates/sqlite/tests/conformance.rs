//! The Store conformance suite on SQLite, each case on a fresh database file.

use morningai_sqlite::SqliteStore;
use std::sync::Arc;

async fn fresh() -> morningai_conformance::DynStore {
    // Cargo's per-target scratch dir: cleaned with target/, never litters /tmp.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sqlite-conformance-{}", uuid_like()));
    Arc::new(
        SqliteStore::open(dir.join("morningai.db"))
            .await
            .expect("open sqlite"),
    )
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
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sqlite-queue-{}", uuid_like()));
    let store = SqliteStore::open(dir.join("morningai.db"))
        .await
        .expect("open sqlite");
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
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sqlite-cp-{}", uuid_like()));
    let store = SqliteStore::open(dir.join("morningai.db"))
        .await
        .expect("open sqlite");
    let dynstore: morningai_conformance::DynStore = Arc::new(store.clone());
    let (_, a) = morningai_conformance::owner(&dynstore, "cp-a").await;
    let (_, b) = morningai_conformance::owner(&dynstore, "cp-b").await;
    (a, b, Arc::new(store))
}

mod checkpoints {
    use super::*;
    morningai_conformance::checkpointer_conformance!(checkpointer());
}

async fn memory() -> morningai_conformance::memory::Setup {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("sqlite-mem-{}", uuid_like()));
    let store = SqliteStore::open(dir.join("morningai.db"))
        .await
        .expect("open sqlite");
    let dynstore: morningai_conformance::DynStore = Arc::new(store.clone());
    let (_, a) = morningai_conformance::owner(&dynstore, "mem-a").await;
    let (_, b) = morningai_conformance::owner(&dynstore, "mem-b").await;
    (a, b, Arc::new(store))
}

mod memory {
    use super::*;
    morningai_conformance::memory_conformance!(memory());
}
