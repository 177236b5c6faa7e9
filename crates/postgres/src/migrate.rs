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

/// What a deployment's database holds, read without changing it (`morningai doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The newest migration applied (0: none), and the newest this build has.
    pub current: i32,
    pub latest: i32,
    /// The RLS role: whether it exists, may bypass RLS (it must not), and is granted to
    /// the login role (it must be).
    pub tenant_role: Option<TenantRole>,
    /// pgvector's version, when the extension is installed.
    pub vector: Option<String>,
    pub server_version: String,
    /// This connection's TLS version (`pg_stat_ssl`), `None` when it is not encrypted.
    pub tls: Option<String>,
    /// What the URL asked for (`sslmode`, `sslrootcert`).
    pub tls_settings: crate::TlsSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantRole {
    pub bypasses_rls: bool,
    pub granted: bool,
}

/// Connects once to `url` and reads what [`Inspection`] reports.
pub async fn inspect(url: &str) -> morningai_core::Result<Inspection> {
    use morningai_core::Error;
    let ctx = "inspect the PostgreSQL database";
    let (config, tls, tls_settings) = crate::tls::connect_config(url)?;
    let (client, connection) =
        tokio::time::timeout(std::time::Duration::from_secs(10), config.connect(tls))
            .await
            .map_err(|_| Error::unavailable("database_unreachable", "no connection within 10 s"))?
            .map_err(|e| Error::unavailable("database_unreachable", crate::tx::with_causes(&e)))?;
    let driver = tokio::spawn(connection);
    let read = async {
        let server_version: String = client
            .query_one("SHOW server_version", &[])
            .await?
            .get(0);
        let has_table: bool = client
            .query_one("SELECT to_regclass('morningai_migrations') IS NOT NULL", &[])
            .await?
            .get(0);
        let current: i32 = if has_table {
            client
                .query_one(
                    "SELECT coalesce(max(version), 0) FROM morningai_migrations",
                    &[],
                )
                .await?
                .get(0)
        } else {
            0
        };
        let tenant_role = client
            .query_opt(
                "SELECT rolbypassrls, pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = 'morningai_tenant'",
                &[],
            )
            .await?
            .map(|r| TenantRole {
                bypasses_rls: r.get(0),
                granted: r.get(1),
            });
        let vector: Option<String> = client
            .query_opt("SELECT extversion FROM pg_extension WHERE extname = 'vector'", &[])
            .await?
            .map(|r| r.get(0));
        let tls: Option<String> = client
            .query_opt(
                "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
                &[],
            )
            .await?
            .map(|r| r.get(0));
        Ok::<_, tokio_postgres::Error>(Inspection {
            current,
            latest: MIGRATIONS.last().map_or(0, |(v, _)| *v),
            tenant_role,
            vector,
            server_version,
            tls,
            tls_settings,
        })
    }
    .await;
    drop(client);
    let _ = driver.await;
    read.map_err(|e| Error::internal(ctx, e))
}

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
