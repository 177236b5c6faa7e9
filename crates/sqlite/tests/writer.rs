//! The write path when another process holds SQLite's write lock (the CLI indexing into the
//! same file, say): a lone write must not wait for the lock on the caller's thread, where it
//! would stall every task of that async runtime; it waits on the writer thread instead and
//! succeeds once the lock is free.

use morningai_core::Store;
use morningai_sqlite::SqliteStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "current_thread")]
async fn a_write_lock_held_elsewhere_never_blocks_the_caller() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("busy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("m.db")).await.unwrap());
    let other = rusqlite::Connection::open(dir.join("m.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let started = Instant::now();
    let write = tokio::spawn({
        let store = store.clone();
        async move { morningai_conformance::owner(&store, "busy").await }
    });
    // On this single-threaded runtime these timers fire on time only if the write yields.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ticked = started.elapsed();
    assert!(
        ticked < Duration::from_secs(2),
        "the runtime stalled for {ticked:?} behind the held lock"
    );
    assert!(
        !write.is_finished(),
        "the write cannot commit while the lock is held"
    );
    other.execute_batch("COMMIT").unwrap();
    write
        .await
        .expect("the write succeeds once the lock is free");
}
