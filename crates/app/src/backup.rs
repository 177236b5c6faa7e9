//! Backups of an embedded deployment: the database (an online, consistent copy while
//! `serve` runs) and the signing key (it signs access tokens and seals the tenants'
//! provider keys: a database restored without it holds provider keys nobody can read).
//! Everything else the data directory holds is derived. PostgreSQL deployments back up
//! with `pg_dump` (README, "Backups").
//!
//! A backup folder holds `morningai.db`, `signing.key` (0600) when the key lives in the data
//! directory, and `manifest.json`: the format, when and by which version it was taken,
//! the schema version, and each file's size and SHA-256, checked before a restore.

use crate::config::Config;
use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

const FORMAT: u32 = 1;
const DATABASE: &str = "morningai.db";
const SIGNING_KEY: &str = "signing.key";
const MANIFEST: &str = "manifest.json";

#[derive(Debug, Serialize, Deserialize)]
pub struct FileEntry {
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub morningai_version: String,
    pub schema_version: i64,
    /// Where the signing key was: `data_dir` (copied into the backup) or `configuration`
    /// (MORNINGAI_SIGNING_KEY: keep it with the backup yourself).
    pub signing_key: String,
    /// A one-way fingerprint of that key: a restore refuses to pair the database with
    /// another key (the tenants' provider keys are sealed under it).
    pub signing_key_fingerprint: String,
    pub files: BTreeMap<String, FileEntry>,
}

fn sha256_of(path: &Path) -> Result<FileEntry> {
    let mut file = std::fs::File::open(path).with_context(|| format!("read {}", path.display()))?;
    let mut h = Sha256::new();
    let bytes =
        std::io::copy(&mut file, &mut h).with_context(|| format!("read {}", path.display()))?;
    let sha256 = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(FileEntry { bytes, sha256 })
}

/// Fingerprint of a key as the deployment uses it (surrounding whitespace trimmed).
fn fingerprint(key: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"morningai/signing-key-fingerprint/v1\0");
    h.update(key);
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn embedded_only(config: &Config, what: &str) -> Result<()> {
    if config.database_url.is_some() {
        bail!(
            "{what} covers embedded mode (SQLite); this configuration uses PostgreSQL: use pg_dump / pg_restore as the README's \"Backups\" section shows"
        );
    }
    Ok(())
}

/// Writes a backup of the embedded deployment `config` describes into `dir` (created; it
/// must be empty if it exists). Safe while `serve` runs.
pub fn backup(config: &Config, dir: &Path) -> Result<Manifest> {
    embedded_only(config, "morningai backup")?;
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))?;
        ensure!(
            entries.next().is_none(),
            "{} is not empty: back up into a new folder",
            dir.display()
        );
    }
    // The backup holds every tenant's data, the credential hashes and the key: owner only.
    let mut mk = std::fs::DirBuilder::new();
    mk.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut mk, 0o700);
    mk.create(dir)
        .with_context(|| format!("create {}", dir.display()))?;
    let snapshot = morningai_sqlite::backup::snapshot(&config.sqlite_path(), &dir.join(DATABASE))?;
    let mut files = BTreeMap::new();
    files.insert(DATABASE.to_owned(), sha256_of(&dir.join(DATABASE))?);
    let (signing_key, key) = if let Some(k) = &config.signing_key {
        ("configuration", k.trim().as_bytes().to_vec())
    } else {
        let from = config.data_dir.join(SIGNING_KEY);
        ensure!(
            from.is_file(),
            "{} is missing: the database's sealed provider keys cannot be read without it",
            from.display()
        );
        let key = std::fs::read(&from).with_context(|| format!("read {}", from.display()))?;
        write_private(&dir.join(SIGNING_KEY), &key)?;
        files.insert(SIGNING_KEY.to_owned(), sha256_of(&dir.join(SIGNING_KEY))?);
        ("data_dir", key.trim_ascii().to_vec())
    };
    let manifest = Manifest {
        format: FORMAT,
        created_at: chrono::Utc::now(),
        morningai_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version: snapshot.schema_version,
        signing_key: signing_key.to_owned(),
        signing_key_fingerprint: fingerprint(&key),
        files,
    };
    write_private(&dir.join(MANIFEST), &serde_json::to_vec_pretty(&manifest)?)?;
    Ok(manifest)
}

/// Restores the backup in `dir` into the data directory `config` names. Every file is
/// checked against the manifest first; refused while a process has the database open,
/// and when the data directory has a database already unless `replace`.
pub fn restore(config: &Config, dir: &Path, replace: bool) -> Result<Manifest> {
    embedded_only(config, "morningai restore")?;
    let path = dir.join(MANIFEST);
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("read {}", path.display()))?,
    )
    .with_context(|| format!("{} is not a MorningAI backup manifest", path.display()))?;
    ensure!(
        manifest.format == FORMAT,
        "{}: backup format {} is not one this build reads ({FORMAT})",
        path.display(),
        manifest.format
    );
    for (name, want) in &manifest.files {
        ensure!(
            name == DATABASE || name == SIGNING_KEY,
            "{}: unexpected file {name:?}",
            path.display()
        );
        let got = sha256_of(&dir.join(name))?;
        ensure!(
            got.sha256 == want.sha256 && got.bytes == want.bytes,
            "{} does not match the manifest (damaged or changed since the backup)",
            dir.join(name).display()
        );
    }
    ensure!(
        manifest.files.contains_key(DATABASE),
        "{}: the backup holds no database",
        path.display()
    );
    let target = config.sqlite_path();
    ensure!(
        replace || !target.exists(),
        "{} exists: pass --replace to overwrite it with the backup",
        target.display()
    );
    // The key the restored deployment will run with: the configured one, else the backup's
    // (installed with the database).
    let backup_key = if manifest.files.contains_key(SIGNING_KEY) {
        let path = dir.join(SIGNING_KEY);
        Some(std::fs::read(&path).with_context(|| format!("read {}", path.display()))?)
    } else {
        None
    };
    let (effective, install) = match (&config.signing_key, &backup_key) {
        (Some(k), _) => (k.trim().as_bytes(), None),
        (None, Some(k)) => (k.trim_ascii(), Some(k)),
        (None, None) => bail!(
            "this backup was taken with MORNINGAI_SIGNING_KEY from the configuration: set the same key before restoring"
        ),
    };
    ensure!(
        fingerprint(effective) == manifest.signing_key_fingerprint,
        "the configured MORNINGAI_SIGNING_KEY is not the key this backup was taken with: tokens and the tenants' sealed provider keys would not verify; use that key (or unset it to use the backup's)"
    );
    morningai_sqlite::backup::restore(&dir.join(DATABASE), &target, || match install {
        Some(key) => write_private(&config.data_dir.join(SIGNING_KEY), key).map_err(|e| {
            morningai_core::Error::internal("restore the signing key", format!("{e:#}"))
        }),
        None => Ok(()),
    })?;
    Ok(manifest)
}

/// Writes a file readable by its owner only, replacing the destination atomically.
fn write_private(to: &Path, bytes: &[u8]) -> Result<()> {
    let staged = to.with_extension("new");
    let _ = std::fs::remove_file(&staged);
    crate::auth::write_new_private(&staged, bytes)
        .with_context(|| format!("write {}", staged.display()))?;
    std::fs::rename(&staged, to).with_context(|| format!("write {}", to.display()))
}
