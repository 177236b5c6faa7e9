//! The Store conformance suite on PostgreSQL (the database named by DATABASE_URL; the
//! test script provisions a throwaway one), and again on the next release's schema: a
//! database of its own with this binary's migrations plus `next_schema.sql` (every additive
//! change the rollout rule allows), which is where an old binary runs during a rollout.

use morningai_postgres::PgStore;
use std::sync::Arc;

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the suite with scripts/test.sh")
}

async fn store_at(url: &str) -> PgStore {
    PgStore::connect(url, 4)
        .await
        .expect("connect to PostgreSQL")
}

async fn pg() -> PgStore {
    store_at(&database_url()).await
}

/// The database on the next schema, made once per test process.
async fn next_schema() -> PgStore {
    static URL: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    let url = URL
        .get_or_init(|| async {
            let base = database_url();
            let name = format!("next_{}", uuid::Uuid::new_v4().simple());
            let admin = connect_plain(&base).await;
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create database");
            let url = match base.rfind('/') {
                Some(i) => format!("{}/{name}", &base[..i]),
                None => panic!("DATABASE_URL without a database name: {base}"),
            };
            drop(store_at(&url).await); // this binary's migrations
            connect_plain(&url)
                .await
                .batch_execute(include_str!("next_schema.sql"))
                .await
                .expect("apply next_schema.sql");
            url
        })
        .await;
    // This binary starts on a database one version ahead of it (applies nothing, fails not).
    store_at(url).await
}

async fn connect_plain(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

/// Every conformance suite on the store `$store` makes.
macro_rules! suites_on {
    ($store:expr) => {
        use super::*;

        async fn connect() -> morningai_conformance::DynStore {
            Arc::new($store)
        }
        mod store {
            use super::*;
            morningai_conformance::store_conformance!(connect());
        }

        async fn checkpointer() -> morningai_conformance::checkpoint::Setup {
            let store = $store;
            let (a, b) = morningai_conformance::two_tenants(Arc::new(store.clone())).await;
            (a, b, Arc::new(store))
        }
        mod checkpoints {
            use super::*;
            morningai_conformance::checkpointer_conformance!(checkpointer());
        }

        async fn memory() -> morningai_conformance::memory::Setup {
            let store = $store;
            let (a, b) = morningai_conformance::two_tenants(Arc::new(store.clone())).await;
            (a, b, Arc::new(store))
        }
        mod memory {
            use super::*;
            morningai_conformance::memory_conformance!(memory());
        }

        async fn usage() -> morningai_conformance::usage::Setup {
            let store = $store;
            let (a, b) = morningai_conformance::two_tenants(Arc::new(store.clone())).await;
            (a, b, Arc::new(store))
        }
        mod usage {
            use super::*;
            morningai_conformance::usage_conformance!(usage());
        }

        async fn kv() -> morningai_conformance::kv::Setup {
            let store = $store;
            let (a, b) = morningai_conformance::two_tenants(Arc::new(store.clone())).await;
            (a, b, Arc::new(store))
        }
        mod kv {
            use super::*;
            morningai_conformance::kv_conformance!(kv());
        }
    };
}

mod current {
    suites_on!(pg().await);
}

mod next {
    suites_on!(next_schema().await);
}

/// The memory suite with HNSW allowed for every scope however small (the production
/// threshold scans scopes under 20k vectors exactly); whether the planner then walks the
/// index is its choice, and the suite's recall checks hold either way.
mod memory_hnsw {
    use super::*;

    async fn memory_hnsw_allowed() -> morningai_conformance::memory::Setup {
        let store = pg().await.with_exact_below(0);
        let (a, b) = morningai_conformance::two_tenants(Arc::new(store.clone())).await;
        (a, b, Arc::new(store))
    }
    morningai_conformance::memory_conformance!(memory_hnsw_allowed());
}
