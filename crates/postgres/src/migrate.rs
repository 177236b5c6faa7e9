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
    (
        11,
        include_str!("../migrations/0011_task_events_commit_order.sql"),
    ),
    (
        12,
        include_str!("../migrations/0012_pending_embeddings.sql"),
    ),
    (13, include_str!("../migrations/0013_objects_by_id.sql")),
    (
        14,
        include_str!("../migrations/0014_task_events_order_per_statement.sql"),
    ),
    (
        15,
        include_str!("../migrations/0015_task_writes_without_row_checks.sql"),
    ),
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

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    /// The last migration written before rollouts had to keep old binaries working.
    const ADDITIVE_FROM: i32 = 11;

    /// What in `sql` an older binary, still running during a rollout, could trip over:
    /// removed or renamed objects, changed column types, new mandatory columns it does not
    /// fill, revoked rights. A migration that must break compatibility says so on a line
    /// `-- breaking: <why>`, and its release stops the old processes before migrating.
    fn breaking(sql: &str) -> Vec<String> {
        if sql
            .lines()
            .any(|l| l.trim_start().starts_with("-- breaking:"))
        {
            return Vec::new();
        }
        let code: String = sql
            .lines()
            .map(|l| l.split("--").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ");
        let mut found = Vec::new();
        for statement in code.split(';') {
            let s = statement
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_uppercase();
            for banned in [
                "DROP TABLE",
                "DROP COLUMN",
                "DROP VIEW",
                "DROP FUNCTION",
                "RENAME",
                "SET DATA TYPE",
                "SET NOT NULL",
                "DROP DEFAULT",
                "REVOKE",
                "TRUNCATE",
            ] {
                if s.contains(banned) {
                    found.push(format!("{banned}: {s}"));
                }
            }
            if s.contains("ALTER COLUMN") && s.contains(" TYPE ") {
                found.push(format!("ALTER COLUMN … TYPE: {s}"));
            }
            // Every `ADD COLUMN … NOT NULL` needs a DEFAULT: old binaries do not fill it.
            for added in s.split("ADD COLUMN").skip(1) {
                let column = added.split(", ADD ").next().unwrap_or_default();
                if column.contains("NOT NULL") && !column.contains("DEFAULT") {
                    found.push(format!("ADD COLUMN … NOT NULL without DEFAULT: {s}"));
                }
            }
        }
        found
    }

    #[test]
    fn migrations_after_the_rollout_rule_stay_additive() {
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v >= ADDITIVE_FROM) {
            let found = breaking(sql);
            assert!(
                found.is_empty(),
                "migration {version} would break the binaries still running during a rollout \
                 (make it additive, or mark it `-- breaking: <why>`): {found:#?}"
            );
        }
    }

    #[test]
    fn the_rule_sees_what_breaks_an_old_binary() {
        // Migration 10 (before the rule) dropped and re-added a column.
        let ten = MIGRATIONS.iter().find(|(v, _)| *v == 10).unwrap().1;
        assert!(breaking(ten).iter().any(|f| f.starts_with("DROP COLUMN")));
        for bad in [
            "ALTER TABLE tasks RENAME COLUMN kind TO type;",
            "ALTER TABLE tasks ALTER COLUMN attempts TYPE bigint;",
            "alter table tasks\n  add column priority int not null;",
            "ALTER TABLE tasks ADD COLUMN a text, ADD COLUMN b int NOT NULL;",
            "ALTER TABLE tasks ALTER COLUMN result SET NOT NULL;",
            "REVOKE UPDATE ON tasks FROM morningai_tenant;",
        ] {
            assert!(!breaking(bad).is_empty(), "{bad}");
        }
        // The next release's stand-in the conformance suite runs on is itself allowed.
        assert_eq!(
            breaking(include_str!("../tests/next_schema.sql")),
            Vec::<String>::new()
        );
        for fine in [
            "ALTER TABLE tasks ADD COLUMN priority int NOT NULL DEFAULT 0, ADD COLUMN note text;",
            "CREATE INDEX tasks_priority ON tasks (priority); -- DROP TABLE in a comment",
            "CREATE TABLE IF NOT EXISTS webhooks (id uuid PRIMARY KEY, url text NOT NULL);",
            "-- breaking: the old column was never read\nALTER TABLE tasks DROP COLUMN x;",
        ] {
            assert_eq!(breaking(fine), Vec::<String>::new(), "{fine}");
        }
    }
}
