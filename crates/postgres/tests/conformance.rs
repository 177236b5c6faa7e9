//! The Store conformance suite on PostgreSQL (the database named by DATABASE_URL; the
//! test script provisions a throwaway one).

use morningai_postgres::PgStore;
use std::sync::Arc;

async fn connect() -> morningai_conformance::DynStore {
    Arc::new(pg().await)
}

mod store {
    use super::*;
    morningai_conformance::store_conformance!(connect());
}

async fn pg() -> PgStore {
    let url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the suite with scripts/test.sh");
    PgStore::connect(&url, 4)
        .await
        .expect("connect to PostgreSQL")
}

async fn checkpointer() -> morningai_conformance::checkpoint::Setup {
    let store = pg().await;
    let (a, b) = morningai_conformance::two_tenants(Arc::new(store.clone())).await;
    (a, b, Arc::new(store))
}

mod checkpoints {
    use super::*;
    morningai_conformance::checkpointer_conformance!(checkpointer());
}

async fn memory() -> morningai_conformance::memory::Setup {
    let store = pg().await;
    let (a, b) = morningai_conformance::two_tenants(Arc::new(store.clone())).await;
    (a, b, Arc::new(store))
}

mod memory {
    use super::*;
    morningai_conformance::memory_conformance!(memory());
}

/// The same suite with HNSW allowed for every scope however small (the production
/// threshold scans scopes under 20k vectors exactly); whether the planner then walks the
/// index is its choice, and the suite's recall checks hold either way.
async fn memory_hnsw_allowed() -> morningai_conformance::memory::Setup {
    let store = pg().await.with_exact_below(0);
    let (a, b) = morningai_conformance::two_tenants(Arc::new(store.clone())).await;
    (a, b, Arc::new(store))
}

mod memory_hnsw {
    use super::*;
    morningai_conformance::memory_conformance!(memory_hnsw_allowed());
}

async fn usage() -> morningai_conformance::usage::Setup {
    let store = pg().await;
    let (a, b) = morningai_conformance::two_tenants(Arc::new(store.clone())).await;
    (a, b, Arc::new(store))
}

mod usage {
    use super::*;
    morningai_conformance::usage_conformance!(usage());
}

async fn kv() -> morningai_conformance::kv::Setup {
    let store = pg().await;
    let (a, b) = morningai_conformance::two_tenants(Arc::new(store.clone())).await;
    (a, b, Arc::new(store))
}

mod kv {
    use super::*;
    morningai_conformance::kv_conformance!(kv());
}
