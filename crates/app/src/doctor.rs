//! `morningai doctor`: what a deployment's configuration points at, checked without
//! changing anything — the database and its migrations, the RLS role, Redis, the signing
//! key, the embedding model, the chat provider and the index roots — each with what is
//! wrong and how to fix it.

use crate::config::{Config, Environment};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, with a limitation worth knowing (e.g. no embedding model: lexical search).
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// How to fix it, for warnings and failures.
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every check, in the order a deployment depends on them.
pub async fn diagnose(config: &Config) -> Vec<Check> {
    let mut checks = vec![signing_key(config)];
    checks.extend(database(config).await);
    checks.push(queue(config).await);
    checks.push(embedding(config).await);
    checks.push(chat(config).await);
    checks.push(index_roots(config));
    checks
}

/// The dashboard built into the binary (`files`: how many assets it embeds). A binary built
/// without Node.js serves the API but no UI: a warning, not a failure.
pub fn dashboard(files: usize) -> Check {
    if files > 0 {
        Check::ok(
            "dashboard",
            format!("built in ({files} files), served at /"),
        )
    } else {
        Check::warn(
            "dashboard",
            "this binary was built without the dashboard (no Node.js at build time): / explains how to get it",
            "install Node.js >= 20.19 and npm and rebuild (cargo build --release -p morningai), or build web/ and set MORNINGAI_WEB_DIST to its dist folder when building",
        )
    }
}

/// Fewest distinct characters a signing key may have: a long run of one character, or a
/// word repeated, is not a secret.
const MIN_DISTINCT: usize = 12;

fn key_strength(key: &str) -> Result<(), String> {
    let key = key.trim();
    if key.len() < 32 {
        return Err(format!("{} bytes; at least 32 are needed", key.len()));
    }
    let distinct = key.chars().collect::<std::collections::HashSet<_>>().len();
    if distinct < MIN_DISTINCT {
        return Err(format!(
            "only {distinct} distinct characters: it looks made by hand, not random"
        ));
    }
    Ok(())
}

const NEW_KEY: &str = "generate one with `openssl rand -base64 48`";

fn signing_key(config: &Config) -> Check {
    const NAME: &str = "signing key";
    if let Some(key) = &config.signing_key {
        return match key_strength(key) {
            Ok(()) => Check::ok(NAME, "from the configuration (MORNINGAI_SIGNING_KEY)"),
            Err(why) => Check::fail(
                NAME,
                format!("MORNINGAI_SIGNING_KEY is weak: {why}"),
                format!("set MORNINGAI_SIGNING_KEY to a random value: {NEW_KEY}"),
            ),
        };
    }
    if config.env == Environment::Production {
        return Check::fail(
            NAME,
            "production needs MORNINGAI_SIGNING_KEY; serve refuses to start without it",
            format!("set MORNINGAI_SIGNING_KEY (the same on every process): {NEW_KEY}"),
        );
    }
    let path = config.data_dir.join("signing.key");
    let key = match std::fs::read_to_string(&path) {
        Ok(key) => key,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Check::ok(
                NAME,
                format!(
                    "{} does not exist yet: the first start generates it",
                    path.display()
                ),
            );
        }
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{}: {e}", path.display()),
                "run morningai as the user that owns the data directory",
            );
        }
    };
    if let Err(why) = key_strength(&key) {
        return Check::fail(
            NAME,
            format!("{} is weak: {why}", path.display()),
            format!(
                "delete it (sessions and sealed provider keys are lost) or replace it: {NEW_KEY}"
            ),
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        if mode & 0o077 != 0 {
            return Check::fail(
                NAME,
                format!("{} is readable by others (mode {mode:o})", path.display()),
                format!("chmod 600 {}", path.display()),
            );
        }
    }
    Check::ok(NAME, format!("{} (generated, 0600)", path.display()))
}

async fn database(config: &Config) -> Vec<Check> {
    match &config.database_url {
        None => vec![sqlite(config)],
        Some(url) => postgres(&crate::config::redact_url(url), url).await,
    }
}

fn schema(name: &'static str, place: &str, current: i64, latest: i64) -> Check {
    if current < latest {
        Check::fail(
            name,
            format!("{place}: schema {current} of {latest}: migrations are pending"),
            "run `morningai migrate` (serve also migrates at start) before starting the new version",
        )
    } else if current > latest {
        Check::fail(
            name,
            format!("{place}: schema {current} is newer than this binary's {latest}"),
            "run the morningai version that migrated this database, or a newer one",
        )
    } else {
        Check::ok(name, format!("{place}: schema {current} of {latest}"))
    }
}

fn sqlite(config: &Config) -> Check {
    const NAME: &str = "database";
    let path = config.sqlite_path();
    let place = format!("SQLite {}", path.display());
    match morningai_sqlite::schema_version(&path) {
        Ok(Some(v)) => schema(NAME, &place, v, morningai_sqlite::latest_schema()),
        Ok(None) => Check::fail(
            NAME,
            format!("{place} does not exist: the data directory is not initialised"),
            format!(
                "run `morningai migrate` (or start serve), or set MORNINGAI_DATA_DIR to the existing data directory (now {})",
                config.data_dir.display()
            ),
        ),
        Err(e) => Check::fail(
            NAME,
            format!("{place}: {e}"),
            "check the file's permissions and that it is a MorningAI database",
        ),
    }
}

async fn postgres(shown: &str, url: &str) -> Vec<Check> {
    let place = format!("PostgreSQL {shown}");
    let found = match morningai_postgres::inspect(url).await {
        Ok(found) => found,
        Err(e) => {
            return vec![Check::fail(
                "database",
                format!("{place}: {e}"),
                "check DATABASE_URL (host, port, user, password, database) and that the server accepts connections from here",
            )];
        }
    };
    let tls = database_tls(&found);
    let mut checks = vec![schema(
        "database",
        &format!("{place} (server {})", found.server_version),
        i64::from(found.current),
        i64::from(found.latest),
    )];
    checks.push(match found.tenant_role {
        None => Check::fail(
            "row-level security",
            "the role morningai_tenant does not exist, so tenant isolation cannot be enforced",
            "run `morningai migrate` with the login role the servers use",
        ),
        Some(r) if r.bypasses_rls => Check::fail(
            "row-level security",
            "morningai_tenant has BYPASSRLS: the policies do not apply to it",
            "ALTER ROLE morningai_tenant NOBYPASSRLS",
        ),
        Some(r) if !r.granted => Check::fail(
            "row-level security",
            "morningai_tenant is not granted to the login role, so requests cannot switch to it",
            "GRANT morningai_tenant TO <the login role in DATABASE_URL>",
        ),
        Some(_) => Check::ok(
            "row-level security",
            "morningai_tenant: NOBYPASSRLS, granted to the login role",
        ),
    });
    checks.push(match found.vector {
        Some(v) => Check::ok("pgvector", format!("extension vector {v}")),
        None => Check::fail(
            "pgvector",
            "the vector extension is not installed in this database",
            "install pgvector on the server, then run `morningai migrate`",
        ),
    });
    checks.push(tls);
    checks
}

/// Whether the connection to PostgreSQL is encrypted, and whether the server was verified.
fn database_tls(found: &morningai_postgres::Inspection) -> Check {
    use morningai_postgres::SslMode;
    const NAME: &str = "database TLS";
    const FIX: &str = "add sslmode=verify-full to DATABASE_URL (and sslrootcert=/path/to/ca.pem when the server's certificate is not from a public CA)";
    match (&found.tls, found.tls_settings.mode) {
        (Some(version), SslMode::VerifyFull) => Check::ok(
            NAME,
            format!("{version}, the certificate and host name verified (sslmode=verify-full)"),
        ),
        (Some(version), SslMode::VerifyCa) => Check::ok(
            NAME,
            format!(
                "{version}, the certificate chain verified, not the host name (sslmode=verify-ca)"
            ),
        ),
        (Some(version), SslMode::Require) if found.tls_settings.root_cert.is_some() => Check::ok(
            NAME,
            format!("{version}, the certificate chain verified (sslmode=require with sslrootcert)"),
        ),
        (Some(version), _) => Check::warn(
            NAME,
            format!(
                "{version}, but the server's certificate is not verified: a machine in the path could pose as the database"
            ),
            FIX,
        ),
        (None, _) if found.tls_settings.loopback => {
            Check::ok(NAME, "not encrypted: the database is on this machine")
        }
        (None, _) => Check::warn(
            NAME,
            "not encrypted: passwords and tenants' data cross the network in plain text",
            format!("enable ssl on the server, then {FIX}"),
        ),
    }
}

async fn queue(config: &Config) -> Check {
    const NAME: &str = "queue";
    match (&config.redis_url, &config.database_url) {
        (None, None) => Check::ok(NAME, "embedded: jobs live in the SQLite database"),
        (None, Some(_)) => Check::fail(
            NAME,
            "PostgreSQL is configured without REDIS_URL: tasks cannot be queued",
            "set REDIS_URL (redis://host:6379) for serve and every worker",
        ),
        (Some(url), _) => {
            let shown = crate::config::redact_url(url);
            match morningai_redis::ping(url).await {
                Ok(version) => Check::ok(NAME, format!("Redis {shown} (server {version})")),
                Err(e) => Check::fail(
                    NAME,
                    format!("Redis {shown}: {e}"),
                    "check REDIS_URL and that Redis accepts connections from here",
                ),
            }
        }
    }
}

async fn embedding(config: &Config) -> Check {
    const NAME: &str = "embedding model";
    let model = match crate::backends::load_embedder(config).await {
        Ok(Some(model)) => model,
        Ok(None) => {
            return Check::warn(
                NAME,
                "none configured: memory search is lexical only",
                "set MORNINGAI_EMBED_MODEL_DIR to an all-MiniLM-L6-v2 folder (scripts/fetch-minilm.sh), or embed_base_url + embed_model",
            );
        }
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{e:#}"),
                "point MORNINGAI_EMBED_MODEL_DIR at a folder with config.json, tokenizer.json and model.safetensors",
            );
        }
    };
    match model.embed(&["doctor".to_owned()]).await {
        Ok(v) if v.first().is_some_and(|v| v.len() == model.dims()) => Check::ok(
            NAME,
            format!("{} ({} dimensions) embeds", model.model(), model.dims()),
        ),
        Ok(_) => Check::fail(
            NAME,
            format!("{} returned vectors of the wrong size", model.model()),
            "set embed_dims to the model's dimensions",
        ),
        Err(e) => Check::fail(
            NAME,
            format!("{}: {e}", model.model()),
            "check embed_base_url, embed_model and the API key",
        ),
    }
}

async fn chat(config: &Config) -> Check {
    const NAME: &str = "chat provider";
    let (provider, model) = match crate::models::default_chat(config) {
        Ok(Some(chat)) => chat,
        Ok(None) => {
            return Check::ok(
                NAME,
                "none: answers are extractive (quoted passages) and code generation is refused until a tenant sets its own provider",
            );
        }
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{e:#}"),
                "set chat_base_url and chat_model together",
            );
        }
    };
    match provider.models().await {
        Ok(ids) if ids.contains(&model) => {
            Check::ok(NAME, format!("{} serves {model}", provider.base_url()))
        }
        Ok(ids) => Check::warn(
            NAME,
            format!(
                "{} answers, but does not list {model} among its {} models",
                provider.base_url(),
                ids.len()
            ),
            "check chat_model's spelling (some providers list only part of what they serve)",
        ),
        Err(e) => Check::fail(
            NAME,
            e.to_string(),
            "check chat_base_url, chat_api_key and that the provider is reachable from here",
        ),
    }
}

fn index_roots(config: &Config) -> Check {
    const NAME: &str = "index roots";
    if config.index_roots.is_empty() {
        return Check::ok(
            NAME,
            "none: index tasks refuse every path (the CLI's `morningai index` reads wherever its user can)",
        );
    }
    let unreadable: Vec<String> = config
        .index_roots
        .iter()
        .filter(|root| std::fs::read_dir(root).is_err())
        .map(|root| root.display().to_string())
        .collect();
    if unreadable.is_empty() {
        Check::ok(
            NAME,
            format!("{} readable folder(s)", config.index_roots.len()),
        )
    } else {
        Check::fail(
            NAME,
            format!("not a readable folder: {}", unreadable.join(", ")),
            "create them or fix index_roots in the configuration file",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_keys_are_named() {
        assert!(key_strength("short").unwrap_err().contains("32"));
        assert!(
            key_strength(&"ab".repeat(20))
                .unwrap_err()
                .contains("distinct")
        );
        assert!(key_strength("k7Qp2vXz9LmN4rTb8WcY1sFh6GdJ3eKa").is_ok());
    }
}
