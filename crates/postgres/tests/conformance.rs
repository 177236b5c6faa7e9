//! The Store conformance suite on PostgreSQL (the database named by DATABASE_URL; the
//! test script provisions a throwaway one).

use morningai_postgres::PgStore;
use std::sync::Arc;

async fn connect() -> morningai_conformance::DynStore {
    let url = std::env::var("DATABASE_URL").expect(
        "DATABASE_URL is not set: run the suite with scripts/test.sh, which provisions PostgreSQL",
    );
    Arc::new(
        PgStore::connect(&url, 4)
            .await
            .expect("connect to PostgreSQL"),
    )
}

mod store {
    use super::*;
    morningai_conformance::store_conformance!(connect());
}

async fn checkpointer() -> morningai_conformance::checkpoint::Setup {
    let url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the suite with scripts/test.sh");
    let store = PgStore::connect(&url, 4)
        .await
        .expect("connect to PostgreSQL");
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
    let url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the suite with scripts/test.sh");
    let store = PgStore::connect(&url, 4)
        .await
        .expect("connect to PostgreSQL");
    let dynstore: morningai_conformance::DynStore = Arc::new(store.clone());
    let (_, a) = morningai_conformance::owner(&dynstore, "mem-a").await;
    let (_, b) = morningai_conformance::owner(&dynstore, "mem-b").await;
    (a, b, Arc::new(store))
}

mod memory {
    use super::*;
    morningai_conformance::memory_conformance!(memory());
}

/// The same suite with every dense search on the HNSW index (iterative scan), however
/// small the scope: its recall under the tenant filter is what is tested.
async fn memory_through_hnsw() -> morningai_conformance::memory::Setup {
    let url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the suite with scripts/test.sh");
    let store = PgStore::connect(&url, 4)
        .await
        .expect("connect to PostgreSQL")
        .with_exact_below(0);
    let dynstore: morningai_conformance::DynStore = Arc::new(store.clone());
    let (_, a) = morningai_conformance::owner(&dynstore, "hnsw-a").await;
    let (_, b) = morningai_conformance::owner(&dynstore, "hnsw-b").await;
    (a, b, Arc::new(store))
}

mod memory_hnsw {
    use super::*;
    morningai_conformance::memory_conformance!(memory_through_hnsw());
}
