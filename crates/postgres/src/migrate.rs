//! Embedded migrations, applied under an advisory lock so that several servers starting
//! at once migrate exactly once.

use tokio_postgres::Client;

const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/0001_foundation.sql")),
    (2, include_str!("../migrations/0002_events_schedules.sql")),
    (3, include_str!("../migrations/0003_checkpoints.sql")),
    (4, include_str!("../migrations/0004_objects.sql")),
    (5, include_str!("../migrations/0005_memory.sql")),
    (6, include_str!("../migrations/0006_embed_keys.sql")),
    (7, include_str!("../migrations/0007_model_usage.sql")),
    (8, include_str!("../migrations/0008_kv_items.sql")),
    (9, include_str!("../migrations/0009_objects_due.sql")),
    (10, include_str!("../migrations/0010_lexical_analysis.sql")),
];

/// Arbitrary constant identifying MorningAI's migration lock.
const LOCK_KEY: i64 = 0x6d6f_726e_696e_6761;

pub(crate) async fn run(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    // A session lock taken *before* the migration transaction begins: the transaction then
    // starts after the previous holder committed, with fresh catalog caches. (Waiting for a
    // lock inside the transaction leaves CREATE TABLE IF NOT EXISTS racing on a stale cache.)
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = match apply(client).await {
        Ok(()) => crate::memory::analyse_pending(client).await,
        Err(e) => Err(e),
    };
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    result.and(unlock.map(drop))
}

async fn apply(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS morningai_migrations (
             version     integer PRIMARY KEY,
             applied_at  timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM morningai_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !applied.contains(v)) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO morningai_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
    }
    tx.commit().await
}
