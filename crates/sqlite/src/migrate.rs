//! Embedded migrations, tracked with `PRAGMA user_version`.

use rusqlite::Connection;

/// (version, SQL) in order; a version is applied once, in its own transaction.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_foundation.sql")),
    (
        2,
        include_str!("../migrations/0002_queue_events_schedules.sql"),
    ),
    (3, include_str!("../migrations/0003_checkpoints.sql")),
    (4, include_str!("../migrations/0004_objects.sql")),
    (
        5,
        include_str!("../migrations/0005_checkpoints_clustered.sql"),
    ),
    (6, include_str!("../migrations/0006_memory.sql")),
    (7, include_str!("../migrations/0007_memory_generations.sql")),
    (8, include_str!("../migrations/0008_embed_keys.sql")),
    (9, include_str!("../migrations/0009_model_usage.sql")),
    (10, include_str!("../migrations/0010_kv_items.sql")),
    (11, include_str!("../migrations/0011_objects_due.sql")),
    (12, include_str!("../migrations/0012_lexical_analysis.sql")),
    (
        13,
        include_str!("../migrations/0013_pending_embeddings.sql"),
    ),
    (14, include_str!("../migrations/0014_objects_by_id.sql")),
];

/// The newest schema version this build migrates to.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// The schema version of the database file at `path` (None when there is no file yet),
/// read without migrating it.
pub fn schema_version(path: &std::path::Path) -> morningai_core::Result<Option<i64>> {
    if !path.is_file() {
        return Ok(None);
    }
    let _in_use = crate::backup::hold_shared(path)?;
    let version = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
        .map_err(|e| morningai_core::Error::internal(&format!("read {}", path.display()), e))?;
    Ok(Some(version))
}

pub(crate) fn run(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the write lock.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now < *version {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version)?;
        }
        tx.commit()?;
    }
    crate::memory::analyse_pending(conn)
}
