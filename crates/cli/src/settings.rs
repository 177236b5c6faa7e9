//! Configuration layering: flags > environment > TOML file > defaults. Clap reads a flag
//! or, failing that, its environment variable; the file fills what neither gave.

use anyhow::{Context, Result};
use clap::Args;
use morningai_app::config::{Config, Environment, LogFormat};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args)]
pub struct GlobalArgs {
    /// TOML configuration file (keys as in `serve --print-config`).
    #[arg(long, short = 'c', env = "MORNINGAI_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite database, generated signing key). Default ./data.
    #[arg(long, env = "MORNINGAI_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL; without it everything is stored in SQLite in the data dir.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Redis URL for the distributed queue and events.
    #[arg(long, env = "REDIS_URL", global = true, hide_env_values = true)]
    pub redis_url: Option<String>,
    /// development or production (production requires an explicit signing key).
    #[arg(long, env = "MORNINGAI_ENV", global = true, value_parser = parse_env)]
    pub env: Option<Environment>,
    /// HS256 signing key for access tokens, at least 32 bytes; it also seals tenants'
    /// provider keys, so serve and every worker need the same one.
    #[arg(
        long,
        env = "MORNINGAI_SIGNING_KEY",
        global = true,
        hide_env_values = true
    )]
    pub signing_key: Option<String>,
    /// text or json.
    #[arg(long, env = "MORNINGAI_LOG_FORMAT", global = true, value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
    /// tracing filter, e.g. info or morningai_server=debug,info.
    #[arg(long, env = "MORNINGAI_LOG_LEVEL", global = true)]
    pub log_level: Option<String>,
    /// Directory of the local embedding model (config.json, tokenizer.json,
    /// model.safetensors); unset: memory search is lexical only.
    #[arg(long, env = "MORNINGAI_EMBED_MODEL_DIR", global = true)]
    pub embed_model_dir: Option<PathBuf>,
    /// OpenAI-compatible chat provider, e.g. https://api.openai.com/v1 or
    /// http://localhost:11434/v1 (Ollama); unset: answers are extractive.
    #[arg(long, env = "MORNINGAI_CHAT_BASE_URL", global = true)]
    pub chat_base_url: Option<String>,
    #[arg(long, env = "MORNINGAI_CHAT_MODEL", global = true)]
    pub chat_model: Option<String>,
    #[arg(
        long,
        env = "MORNINGAI_CHAT_API_KEY",
        global = true,
        hide_env_values = true
    )]
    pub chat_api_key: Option<String>,
    /// OpenAI-compatible embeddings provider instead of the local model.
    #[arg(long, env = "MORNINGAI_EMBED_BASE_URL", global = true)]
    pub embed_base_url: Option<String>,
    #[arg(long, env = "MORNINGAI_EMBED_MODEL", global = true)]
    pub embed_model: Option<String>,
    #[arg(long, env = "MORNINGAI_EMBED_DIMS", global = true)]
    pub embed_dims: Option<usize>,
    #[arg(
        long,
        env = "MORNINGAI_EMBED_API_KEY",
        global = true,
        hide_env_values = true
    )]
    pub embed_api_key: Option<String>,
    /// The address people and chat platforms reach this deployment at, e.g.
    /// https://morningai.example.com (webhook registration, links in answers).
    #[arg(long, env = "MORNINGAI_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on. Default 127.0.0.1:8080.
    #[arg(long, env = "MORNINGAI_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Allow self-service sign-up (true/false). Default true.
    #[arg(long, env = "MORNINGAI_SIGNUP_ENABLED")]
    pub signup_enabled: Option<bool>,
    /// Largest accepted request body in bytes. Default 1048576.
    #[arg(long, env = "MORNINGAI_BODY_LIMIT_BYTES")]
    pub body_limit_bytes: Option<usize>,
    /// PostgreSQL connection pool size. Default 16.
    #[arg(long, env = "MORNINGAI_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<usize>,
    /// Trust X-Forwarded-For for the client IP (only behind your own proxy).
    #[arg(long, env = "MORNINGAI_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: Option<bool>,
    /// Bearer token that `GET /metrics` requires (without one, production refuses it).
    #[arg(long, env = "MORNINGAI_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
}

fn parse_env(s: &str) -> Result<Environment, String> {
    match s {
        "development" | "dev" => Ok(Environment::Development),
        "production" | "prod" => Ok(Environment::Production),
        other => Err(format!("{other:?} is not development or production")),
    }
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("{other:?} is not text or json")),
    }
}

pub fn resolve(g: &GlobalArgs, serve: Option<&ServeArgs>) -> Result<Config> {
    let mut c = match &g.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("read config file {}", path.display()))?;
            toml::from_str::<Config>(&text)
                .with_context(|| format!("parse config file {}", path.display()))?
        }
        None => Config::default(),
    };
    fn set<T: Clone>(slot: &mut T, v: &Option<T>) {
        if let Some(v) = v {
            *slot = v.clone();
        }
    }
    set(&mut c.data_dir, &g.data_dir);
    if g.database_url.is_some() {
        c.database_url = g.database_url.clone();
    }
    if g.redis_url.is_some() {
        c.redis_url = g.redis_url.clone();
    }
    set(&mut c.env, &g.env);
    if g.signing_key.is_some() {
        c.signing_key = g.signing_key.clone();
    }
    set(&mut c.log_format, &g.log_format);
    set(&mut c.log_level, &g.log_level);
    if g.embed_model_dir.is_some() {
        c.embed_model_dir = g.embed_model_dir.clone();
    }
    for (slot, v) in [
        (&mut c.chat_base_url, &g.chat_base_url),
        (&mut c.chat_model, &g.chat_model),
        (&mut c.chat_api_key, &g.chat_api_key),
        (&mut c.embed_base_url, &g.embed_base_url),
        (&mut c.embed_model, &g.embed_model),
        (&mut c.embed_api_key, &g.embed_api_key),
        (&mut c.public_url, &g.public_url),
    ] {
        if v.is_some() {
            *slot = v.clone();
        }
    }
    set(&mut c.embed_dims, &g.embed_dims);
    if let Some(s) = serve {
        set(&mut c.listen, &s.listen);
        set(&mut c.signup_enabled, &s.signup_enabled);
        set(&mut c.body_limit_bytes, &s.body_limit_bytes);
        set(&mut c.db_max_connections, &s.db_max_connections);
        set(&mut c.trust_forwarded_for, &s.trust_forwarded_for);
        if s.metrics_token.is_some() {
            c.metrics_token = s.metrics_token.clone();
        }
    }
    // An empty DATABASE_URL means "not set" (a common way to unset it in env files).
    c.database_url = c.database_url.filter(|u| !u.is_empty());
    c.redis_url = c.redis_url.filter(|u| !u.is_empty());
    Ok(c)
}

pub fn init_logging(c: &Config) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&c.log_level)
        .with_context(|| format!("invalid log level {:?}", c.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match c.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}
