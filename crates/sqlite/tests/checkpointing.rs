//! WAL checkpoints run on their own thread: the database file grows and the WAL does not
//! keep every page ever written.

use morningai_core::Store;
use morningai_sqlite::SqliteStore;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_in_the_background() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("wal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = SqliteStore::open(dir.join("m.db")).await.unwrap();
    let dynstore: std::sync::Arc<dyn Store> = std::sync::Arc::new(store.clone());
    for i in 0..200 {
        morningai_conformance::owner(&dynstore, &format!("wal{i}")).await;
    }
    // The checkpoint thread runs on its own schedule: wait for it (10 s at most).
    let started = std::time::Instant::now();
    loop {
        let db = std::fs::metadata(dir.join("m.db")).unwrap().len();
        if db > 64 * 1024 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nothing was checkpointed into the database file ({db} bytes)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
