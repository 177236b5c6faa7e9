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

morningai_conformance::store_conformance!(connect());
