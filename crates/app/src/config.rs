//! Effective configuration. The CLI layers flags over environment over the TOML file over
//! these defaults; the server receives the result.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Development,
    Production,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Directory for the SQLite database, the generated signing key and other local state.
    pub data_dir: PathBuf,
    /// PostgreSQL URL; unset means embedded SQLite in the data dir.
    pub database_url: Option<String>,
    /// Redis URL for the distributed queue and events (used by the queue layer).
    pub redis_url: Option<String>,
    pub env: Environment,
    /// HS256 key for access tokens, at least 32 bytes. Required in production; otherwise
    /// generated once into `<data_dir>/signing.key`.
    pub signing_key: Option<String>,
    pub signup_enabled: bool,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    pub log_format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `morningai=debug,info`.
    pub log_level: String,
    /// PostgreSQL pool size.
    pub db_max_connections: usize,
    /// Take the client IP from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Login attempts allowed per minute from one IP, and for one email.
    pub login_per_minute_per_ip: u32,
    pub login_per_minute_per_email: u32,
    /// Login attempts per hour for one account from clients that never logged in to it
    /// (a client that did carries a cookie that passes this limit).
    pub login_per_hour_per_account: u32,
    /// Sign-ups one client address may make per hour.
    pub signup_per_hour_per_ip: u32,
    /// When set, `GET /metrics` needs `Authorization: Bearer <token>`; in production
    /// without one, `/metrics` is refused (scrape it with a token).
    pub metrics_token: Option<String>,
    /// Jobs run at once by the in-process workers of `serve` in embedded mode (0: none),
    /// and the default for `morningai worker --concurrency`.
    pub worker_concurrency: usize,
    /// Most jobs of one tenant running at once, across all workers (fairness).
    pub tenant_concurrency: u32,
    /// Key prefix of the Redis queue and event channel.
    pub redis_prefix: String,
    /// Seconds between SSE heartbeat comments.
    pub sse_heartbeat_secs: u64,
    /// Job lease: a worker that stops heartbeating loses its jobs after this long.
    pub job_lease_secs: u64,
    /// First retry delay (doubles per attempt, ±25 % jitter, capped at 10 minutes).
    pub retry_base_ms: u64,
    /// How often the reconciler reclaims expired leases and re-enqueues lost tasks.
    pub reconcile_interval_secs: u64,
    /// Tasks younger than this are never re-enqueued (they may be between insert and enqueue).
    pub reconcile_min_age_secs: u64,
    /// Checkpoints of threads idle this long are deleted (0: kept forever); a tenant's own
    /// setting (`PATCH /api/v1/tenant {checkpoint_ttl_days}`) overrides it.
    pub checkpoint_ttl_days: u64,
    /// Ceilings on one graph run, whatever the caller asks: steps (the most a request's
    /// `recursion_limit` may be), wall-clock seconds, stream events and their bytes, and the
    /// state's size.
    pub run_max_steps: u32,
    pub run_max_secs: u64,
    pub run_max_events: u64,
    pub run_max_event_bytes: u64,
    pub run_max_state_bytes: usize,
    /// Bytes a tenant's thread checkpoints and task events may take before its new runs
    /// are refused (0: no limit); `morningai tenant quota` sets a tenant's own.
    pub tenant_max_stored_bytes: u64,
    /// Directory of the local embedding model (all-MiniLM-L6-v2 layout: config.json,
    /// tokenizer.json, model.safetensors). Unset: memory search is lexical only, and
    /// `/readyz` says so.
    pub embed_model_dir: Option<PathBuf>,
    /// Directories under which `index` tasks may read (none: the kind refuses every path).
    /// The CLI's `morningai index` reads wherever its user can.
    pub index_roots: Vec<PathBuf>,
    /// OpenAI-compatible chat provider for tenants without their own, e.g.
    /// `https://api.openai.com/v1` or `http://localhost:11434/v1` (Ollama). Unset: answers
    /// are extractive (the offline provider) and code generation is refused.
    pub chat_base_url: Option<String>,
    pub chat_model: Option<String>,
    pub chat_api_key: Option<String>,
    /// OpenAI-compatible embeddings instead of the local model (e.g. `text-embedding-3-small`
    /// with 1536 dimensions); `embed_api_key` defaults to `chat_api_key`.
    pub embed_base_url: Option<String>,
    pub embed_model: Option<String>,
    pub embed_dims: usize,
    pub embed_api_key: Option<String>,
    /// Seconds one provider attempt (or a stream's silence) may take; attempts after the first.
    pub provider_timeout_secs: u64,
    pub provider_max_retries: u32,
    /// USD per million tokens by model name; a dated name takes the price of the longest
    /// configured prefix. Calls to unpriced models are recorded with tokens and no cost.
    pub prices: morningai_core::usage::PriceTable,
    /// The address people and platforms reach this deployment at, e.g.
    /// `https://morningai.example.com`: chat platforms are told to post their webhooks
    /// under it (Telegram's `setWebhook`), and answers link to the task's page.
    pub public_url: Option<String>,
    /// The platforms' API base URLs (changed only to point at a proxy or a test double).
    pub slack_api_url: String,
    pub telegram_api_url: String,
    pub line_api_url: String,
    pub messenger_api_url: String,
    pub discord_api_url: String,
    pub github_api_url: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            redis_url: None,
            env: Environment::Development,
            signing_key: None,
            signup_enabled: true,
            body_limit_bytes: 1024 * 1024,
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            db_max_connections: 16,
            trust_forwarded_for: false,
            login_per_minute_per_ip: 30,
            login_per_minute_per_email: 10,
            login_per_hour_per_account: 100,
            signup_per_hour_per_ip: 30,
            metrics_token: None,
            worker_concurrency: 16,
            tenant_concurrency: 8,
            redis_prefix: "morningai".to_owned(),
            sse_heartbeat_secs: 15,
            job_lease_secs: 30,
            retry_base_ms: 1000,
            reconcile_interval_secs: 5,
            reconcile_min_age_secs: 30,
            checkpoint_ttl_days: 30,
            run_max_steps: 1000,
            run_max_secs: 600,
            run_max_events: 20_000,
            run_max_event_bytes: 64 * 1024 * 1024,
            run_max_state_bytes: 4 * 1024 * 1024,
            tenant_max_stored_bytes: 20 * 1024 * 1024 * 1024,
            embed_model_dir: None,
            index_roots: Vec::new(),
            chat_base_url: None,
            chat_model: None,
            chat_api_key: None,
            embed_base_url: None,
            embed_model: None,
            embed_dims: 1536,
            embed_api_key: None,
            provider_timeout_secs: 120,
            provider_max_retries: 3,
            prices: morningai_core::usage::PriceTable::default(),
            public_url: None,
            slack_api_url: morningai_platforms::slack::API.to_owned(),
            telegram_api_url: morningai_platforms::telegram::API.to_owned(),
            line_api_url: morningai_platforms::line::API.to_owned(),
            messenger_api_url: morningai_platforms::messenger::API.to_owned(),
            discord_api_url: morningai_platforms::discord::API.to_owned(),
            github_api_url: morningai_platforms::github::API.to_owned(),
        }
    }
}

pub(crate) fn redact_url(url: &str) -> String {
    // scheme://user:password@host… → scheme://user:***@host…
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Config {
    /// The configuration as TOML with secrets redacted (for `serve --print-config`).
    pub fn redacted_toml(&self) -> String {
        let mut c = self.clone();
        c.database_url = c.database_url.as_deref().map(redact_url);
        c.redis_url = c.redis_url.as_deref().map(redact_url);
        c.signing_key = c.signing_key.map(|_| "***".to_owned());
        c.metrics_token = c.metrics_token.map(|_| "***".to_owned());
        c.chat_api_key = c.chat_api_key.map(|_| "***".to_owned());
        c.embed_api_key = c.embed_api_key.map(|_| "***".to_owned());
        toml::to_string(&c).unwrap_or_else(|e| format!("# cannot render config: {e}"))
    }

    /// What a process runs besides HTTP, with `workers` jobs at once.
    pub fn plan(&self, workers: usize) -> crate::runtime::Plan {
        crate::runtime::Plan {
            workers,
            lease: std::time::Duration::from_secs(self.job_lease_secs.max(1)),
            reconciler: morningai_worker::reconciler::ReconcilerConfig {
                every: std::time::Duration::from_secs(self.reconcile_interval_secs.max(1)),
                min_age: std::time::Duration::from_secs(self.reconcile_min_age_secs),
            },
            sweep_every: Some(std::time::Duration::from_secs(
                self.reconcile_interval_secs.max(1),
            )),
            ..crate::runtime::Plan::default()
        }
    }

    pub fn run_limits(&self) -> crate::graphs::RunLimits {
        crate::graphs::RunLimits {
            max_steps: self.run_max_steps.max(1),
            max_time: std::time::Duration::from_secs(self.run_max_secs.max(1)),
            max_events: self.run_max_events.max(1),
            max_event_bytes: self.run_max_event_bytes.max(1024),
            max_state_bytes: self.run_max_state_bytes.max(1024),
            tenant_max_stored_bytes: self.tenant_max_stored_bytes,
        }
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("morningai.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let c = Config {
            database_url: Some("postgres://app:hunter2@db:5432/x".into()),
            redis_url: Some("redis://:pw@r:6379/".into()),
            signing_key: Some("k".repeat(40)),
            chat_api_key: Some("sk-secret-chat".into()),
            ..Config::default()
        };
        let t = c.redacted_toml();
        assert!(
            !t.contains("hunter2")
                && !t.contains("kkkk")
                && !t.contains(":pw@")
                && !t.contains("sk-secret"),
            "{t}"
        );
        assert!(t.contains("postgres://app:***@db:5432/x"), "{t}");
    }
}
