//! Credentials: argon2id passwords, HS256 access tokens, opaque refresh tokens and API keys
//! (both stored only as SHA-256 hashes), the signing key, and who is calling.
//!
//! The role is never taken from a token: it is read from the membership row, through a
//! cache that lives at most [`CACHE_TTL`] and is cleared on every membership or key change
//! made through this process.

use crate::config::{Config, Environment};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use morningai_core::entities::{Actor, ApiKeyGrant};
use morningai_core::{ApiKeyId, Error, Result, Role, Store, TenantCtx, TenantId, UserId};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const ACCESS_TTL_SECS: i64 = 15 * 60;
pub const REFRESH_TTL_DAYS: i64 = 30;
pub const API_KEY_PREFIX: &str = "mai_";
const CACHE_TTL: Duration = Duration::from_secs(2);

pub fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 32 random bytes, URL-safe base64, behind a readable prefix.
pub fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A new API key for `created_by` in the caller's tenant, and its secret (shown once).
pub fn mint_api_key(
    name: String,
    role: Role,
    created_by: UserId,
) -> (morningai_core::entities::NewApiKey, String) {
    let secret = random_secret(API_KEY_PREFIX);
    let key = morningai_core::entities::NewApiKey {
        id: ApiKeyId::new(),
        name,
        prefix: secret[..12].to_owned(),
        key_hash: sha256(secret.as_bytes()),
        role,
        created_by,
    };
    (key, secret)
}

pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal("hash password", e))
}

/// Verifies against a stored hash. With no user, verifies against a fixed hash anyway so a
/// login for an unknown email costs the same time as a wrong password.
pub fn verify_password(stored: Option<&str>, password: &str) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default());
    let hash = stored.unwrap_or(dummy);
    let ok = PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false);
    ok && stored.is_some()
}

pub fn check_password_policy(password: &str) -> Result<()> {
    let n = password.chars().count();
    if n < 8 {
        return Err(Error::invalid("password", "must be at least 8 characters"));
    }
    if password.len() > 1024 {
        return Err(Error::invalid("password", "must be at most 1024 bytes"));
    }
    Ok(())
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub tid: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

const ISSUER: &str = "morningai";

/// Signs and verifies access tokens. Only HS256 is accepted, so `none` and RS/HS confusion
/// tokens fail validation.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Tokens whose signature and claims were verified, with their claims: a client sends
    /// the same token with every request until it expires, and a repeat skips the HMAC and
    /// the two JSON parses. Only an exact repeat of a verified token hits; its expiry is
    /// checked on every use.
    verified: RwLock<HashMap<String, Claims>>,
}

/// Verified tokens kept at most; when full, expired ones go, and if none had, all do.
const VERIFIED_MOST: usize = 10_000;

impl TokenKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            verified: RwLock::default(),
        }
    }

    pub fn issue(&self, user: UserId, tenant: TenantId) -> Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user.0,
            tid: tenant.0,
            iat: now,
            exp: now + ACCESS_TTL_SECS,
            iss: ISSUER.into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::internal("sign access token", e))
    }

    pub fn verify(&self, token: &str) -> Result<Claims> {
        self.verify_at(token, jsonwebtoken::get_current_timestamp() as i64)
    }

    /// `verify` at the time `now` (seconds since the epoch): what a cached token is held to.
    fn verify_at(&self, token: &str, now: i64) -> Result<Claims> {
        let expired = || Error::unauthorized("the access token has expired");
        // The read guard ends with this statement, before the write below.
        let known = self
            .verified
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned();
        if let Some(claims) = known {
            // As the validation does: no leeway, expired once `exp` is in the past.
            return if claims.exp < now {
                Err(expired())
            } else {
                Ok(claims)
            };
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => expired(),
                _ => Error::unauthorized("the access token is invalid"),
            })?;
        let mut verified = self.verified.write().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_MOST {
            verified.retain(|_, c| c.exp >= now);
            if verified.len() >= VERIFIED_MOST {
                verified.clear();
            }
        }
        verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }
}

/// Reads or creates the signing key. Production demands an explicit key of ≥ 32 bytes.
pub fn signing_key(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(k) = &config.signing_key {
        anyhow::ensure!(
            k.len() >= 32,
            "the signing key must be at least 32 bytes (it is {})",
            k.len()
        );
        return Ok(k.as_bytes().to_vec());
    }
    anyhow::ensure!(
        config.env != Environment::Production,
        "MORNINGAI_SIGNING_KEY is required in production (at least 32 bytes); refusing to start"
    );
    load_or_create_key(&config.data_dir.join("signing.key"))
}

/// Creates `path` (it must not exist) readable by its owner only, with `bytes`, synced.
pub(crate) fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    std::io::Write::write_all(&mut f, bytes)?;
    f.sync_all()
}

fn load_or_create_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    match std::fs::read_to_string(path) {
        Ok(existing) => {
            let k = existing.trim().to_owned();
            anyhow::ensure!(
                k.len() >= 32,
                "{} holds a key shorter than 32 bytes",
                path.display()
            );
            return Ok(k.into_bytes());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        // Unreadable (permissions): creating it would fail as "exists" and come back here.
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    // Written whole under a name of its own, then linked into place: a process starting
    // beside this one (serve and worker on one data directory) sees no key or the whole
    // key, never a file created but not yet written.
    let key = random_secret("");
    let staged = path.with_extension(format!("key.{}", uuid::Uuid::new_v4().simple()));
    if let Err(e) = write_new_private(&staged, key.as_bytes()) {
        let _ = std::fs::remove_file(&staged);
        return Err(e).with_context(|| format!("write {}", staged.display()));
    }
    let linked = std::fs::hard_link(&staged, path);
    let _ = std::fs::remove_file(&staged);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated a new signing key");
            Ok(key.into_bytes())
        }
        // Another process put its key there first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_key(path),
        Err(e) => Err(e).with_context(|| format!("create {}", path.display())),
    }
}

/// Entries stamped with the time they were read.
type TimedMap<K, V> = RwLock<HashMap<K, (V, Instant)>>;

fn cached<K: std::hash::Hash + Eq, V: Clone>(map: &TimedMap<K, V>, k: &K) -> Option<V> {
    let m = map.read().unwrap_or_else(|p| p.into_inner());
    m.get(k)
        .filter(|(_, at)| at.elapsed() < CACHE_TTL)
        .map(|(v, _)| v.clone())
}

fn remember<K: std::hash::Hash + Eq, V>(map: &TimedMap<K, V>, k: K, v: V) {
    let mut m = map.write().unwrap_or_else(|p| p.into_inner());
    if m.len() > 100_000 {
        m.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
    }
    m.insert(k, (v, Instant::now()));
}

/// Who is calling, in which tenant, with which role.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub role: Role,
    pub api_key: Option<ApiKeyId>,
    pub ip: Option<String>,
}

impl Principal {
    pub fn cx(&self) -> TenantCtx {
        TenantCtx::new(self.tenant_id)
    }

    pub fn actor(&self) -> Actor {
        match self.api_key {
            Some(id) => Actor::ApiKey {
                id,
                created_by: self.user_id,
            },
            None => Actor::User { id: self.user_id },
        }
    }

    /// Fails with `Forbidden` unless the caller's role is at least `min`.
    pub fn require(&self, min: Role) -> Result<()> {
        if self.role >= min {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "this action needs the {min} role or higher; you are {}",
                self.role
            )))
        }
    }
}

/// Access tokens and the short-lived cache of roles and API key grants (see the module
/// docs); resolves a credential to a [`Principal`].
pub struct Auth {
    store: Arc<dyn Store>,
    pub tokens: TokenKeys,
    /// Keys the "known client" proof a browser gets after logging in to an account.
    client_key: Vec<u8>,
    roles: TimedMap<(TenantId, UserId), Option<Role>>,
    keys: TimedMap<Vec<u8>, Option<ApiKeyGrant>>,
}

impl Auth {
    pub fn new(store: Arc<dyn Store>, secret: &[u8]) -> Self {
        Self {
            store,
            tokens: TokenKeys::new(secret),
            client_key: sha256(&[b"morningai known client\0".as_slice(), secret].concat()),
            roles: RwLock::default(),
            keys: RwLock::default(),
        }
    }

    /// Proof that a client once logged in to the account `email`: a keyed hash, so the
    /// server keeps nothing. It lets that client past the account-wide login limit that a
    /// stranger guessing passwords may have used up (never past the password).
    pub fn known_client_token(&self, email: &str) -> String {
        let mac = sha256(&[&self.client_key, email.to_lowercase().as_bytes()].concat());
        mac.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn is_known_client(&self, email: &str, token: &str) -> bool {
        same_secret(self.known_client_token(email).as_bytes(), token.as_bytes())
    }

    /// Forget everything: called after any membership or API key change.
    pub fn invalidate(&self) {
        self.roles
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.keys.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    async fn role(&self, tenant: TenantId, user: UserId) -> Result<Option<Role>> {
        if let Some(r) = cached(&self.roles, &(tenant, user)) {
            return Ok(r);
        }
        let r = self.store.role_of(tenant, user).await?;
        remember(&self.roles, (tenant, user), r);
        Ok(r)
    }

    async fn api_key(&self, key: &str) -> Result<Option<ApiKeyGrant>> {
        let hash = sha256(key.as_bytes());
        if let Some(g) = cached(&self.keys, &hash) {
            return Ok(g);
        }
        let g = self.store.api_key_grant(&hash).await?;
        remember(&self.keys, hash, g.clone());
        Ok(g)
    }

    /// Resolves an access token or an API key (`mai_…`) to a principal.
    pub async fn authenticate(&self, token: &str, ip: Option<String>) -> Result<Principal> {
        let unauthorized = |m: &str| Error::unauthorized(m.to_owned());
        if token.starts_with(API_KEY_PREFIX) {
            let grant = self
                .api_key(token)
                .await?
                .ok_or_else(|| unauthorized("the API key is invalid or revoked"))?;
            // A key never exceeds its creator's current role; a creator who left takes
            // the key's access with them.
            let creator = grant
                .creator_role
                .ok_or_else(|| unauthorized("the API key's creator is no longer a member"))?;
            return Ok(Principal {
                user_id: grant.created_by,
                tenant_id: grant.tenant_id,
                role: grant.key_role.min(creator),
                api_key: Some(grant.key_id),
                ip,
            });
        }
        let claims = self.tokens.verify(token)?;
        let (user, tenant) = (UserId(claims.sub), TenantId(claims.tid));
        let role = self
            .role(tenant, user)
            .await?
            .ok_or_else(|| unauthorized("you are no longer a member of this tenant"))?;
        Ok(Principal {
            user_id: user,
            tenant_id: tenant,
            role,
            api_key: None,
            ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Processes starting together on one data directory (serve and worker) all get the
    /// same, whole key: none reads a file created but not yet written.
    #[test]
    fn a_key_generated_by_several_at_once_is_one_whole_key() {
        for _ in 0..20 {
            let dir = std::env::temp_dir().join(format!("key-{}", uuid::Uuid::new_v4().simple()));
            let config = Config {
                data_dir: dir.clone(),
                ..Config::default()
            };
            let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8).map(|_| s.spawn(|| signing_key(&config))).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap().unwrap())
                    .collect()
            });
            assert!(keys.iter().all(|k| k == &keys[0] && k.len() >= 32));
            let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
            assert_eq!(left.len(), 1, "only signing.key remains");
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    /// A key path that cannot be read (here a directory) is an error, not a loop of
    /// "create it" → "it exists" → "read it".
    #[test]
    fn an_unreadable_key_file_is_an_error() {
        let dir = std::env::temp_dir().join(format!("key-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("signing.key")).unwrap();
        let config = Config {
            data_dir: dir.clone(),
            ..Config::default()
        };
        let err = signing_key(&config).unwrap_err();
        assert!(format!("{err:#}").contains("signing.key"), "{err:#}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(Some(&h), "correct horse"));
        assert!(!verify_password(Some(&h), "wrong horse"));
        assert!(!verify_password(None, "correct horse"));
        assert!(!verify_password(Some("garbage"), "x"));
    }

    #[test]
    fn tokens_round_trip_and_reject_other_keys() {
        let keys = TokenKeys::new(&[7u8; 32]);
        let (u, t) = (UserId::new(), TenantId::new());
        let tok = keys.issue(u, t).unwrap();
        let c = keys.verify(&tok).unwrap();
        assert_eq!((c.sub, c.tid), (u.0, t.0));
        assert!(TokenKeys::new(&[8u8; 32]).verify(&tok).is_err());
    }

    /// A verified token is remembered, but still expires, and a token that differs from a
    /// remembered one in any byte is verified afresh (and fails).
    #[test]
    fn remembered_tokens_still_expire_and_only_exact_repeats_hit() {
        let keys = TokenKeys::new(&[7u8; 32]);
        let tok = keys.issue(UserId::new(), TenantId::new()).unwrap();
        let exp = keys.verify(&tok).unwrap().exp;
        assert_eq!(keys.verify_at(&tok, exp).unwrap().exp, exp);
        let err = keys.verify_at(&tok, exp + 1).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
        let mut forged = tok.clone().into_bytes();
        let at = forged.len() - 5; // inside the signature, clear of base64's padding bits
        forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        let err = keys.verify(&forged).unwrap_err();
        assert!(err.to_string().contains("invalid"), "{err}");
    }
}
