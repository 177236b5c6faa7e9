//! The Store conformance suite on SQLite, each case on a fresh database file.

use morningai_sqlite::SqliteStore;
use std::sync::Arc;

async fn fresh() -> morningai_store_conformance::DynStore {
    let dir = std::env::temp_dir().join(format!("morningai-sqlite-{}", uuid_like()));
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

morningai_store_conformance::store_conformance!(fresh());
