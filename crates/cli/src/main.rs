//! `morningai`: run the server, apply migrations, and administer tenants, users and keys.

mod agents;
mod settings;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use morningai_app::Application;
use morningai_app::auth::{check_password_policy, hash_password, mint_api_key, random_secret};
use morningai_app::backends::open_store;
use morningai_app::config::Config;
use morningai_app::runtime::{self, Plan};
use morningai_core::entities::{NewTenant, NewUser, Tenant};
use morningai_core::{Email, Role, Slug, Store, TenantCtx};
use morningai_worker::CancellationToken;
use settings::{GlobalArgs, ServeArgs};
use std::io::Read;
use std::sync::Arc;

/// mimalloc instead of glibc's allocator: under `POST /api/v1/tasks` load glibc's took
/// about 18 % of the server's CPU samples in perf, mimalloc about 6 % (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "morningai",
    version,
    about = "MorningAI: a multi-tenant platform for autonomous AI agents.",
    long_about = "MorningAI: a multi-tenant platform for autonomous AI agents.\n\n\
        Configuration comes from flags, then the environment (MORNINGAI_*, DATABASE_URL, REDIS_URL), \
        then an optional TOML file (--config), then defaults. Without DATABASE_URL everything runs \
        embedded: one SQLite file in the data dir, no other service needed."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (and, in embedded mode, everything else) until SIGINT/SIGTERM.
    Serve(ServeArgs),
    /// Run jobs from the Redis queue (distributed mode) until SIGINT/SIGTERM; then stop
    /// taking jobs, let in-flight ones finish within the grace period, release the rest.
    Worker(WorkerArgs),
    /// Apply pending database migrations and exit (serve also applies them at start).
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Index a directory or git working tree into a memory collection (created when
    /// missing). Incremental: unchanged files are skipped, deleted files removed. Prints
    /// a JSON report.
    Index(IndexArgs),
    /// Ask the documentation agent a question; prints the published document (progress on
    /// standard error). Embedded mode, or a running server with --server.
    Ask(agents::AgentArgs),
    /// Ask the code generation agent for a change; prints the unified diff.
    Codegen(agents::AgentArgs),
    /// Export or import a project's documents as a folder of markdown files.
    #[command(subcommand)]
    Docs(agents::DocsCommand),
    /// Check the deployment this configuration describes — database and migrations, the
    /// RLS role, Redis, the signing key, the embedding model, the chat provider, the index
    /// roots — and say what is wrong and how to fix it. Exit code 0 only when nothing failed.
    Doctor {
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Back up an embedded deployment (the SQLite database, consistent even while serve
    /// runs, and the signing key) into a new folder; prints the manifest. PostgreSQL
    /// deployments use pg_dump (README, "Backups").
    Backup {
        /// The folder to write (created; must be empty if it exists).
        dir: std::path::PathBuf,
    },
    /// Restore a backup folder into the data directory. Stop serve and workers first: the
    /// restore is refused while any process has the database open.
    Restore {
        /// A folder written by `morningai backup`.
        dir: std::path::PathBuf,
        /// Replace the data directory's existing database.
        #[arg(long)]
        replace: bool,
    },
}

#[derive(clap::Args)]
struct IndexArgs {
    /// The directory to index (.gitignore rules apply).
    path: std::path::PathBuf,
    /// Tenant slug or id.
    #[arg(long)]
    tenant: String,
    /// Collection name.
    #[arg(long)]
    collection: String,
}

#[derive(clap::Args)]
struct WorkerArgs {
    /// Jobs run at once (default: worker_concurrency from the configuration, 16).
    #[arg(long, env = "MORNINGAI_WORKER_CONCURRENCY")]
    concurrency: Option<usize>,
    /// Seconds in-flight jobs may take to finish after SIGTERM before being released.
    #[arg(long, default_value_t = 20)]
    grace_secs: u64,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant owned by an existing user; prints the tenant as JSON.
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// URL-safe identifier (a-z, 0-9, hyphens); derived from the name if omitted.
        #[arg(long)]
        slug: Option<String>,
        /// Email of the existing user who becomes the owner (a tenant always has one).
        #[arg(long)]
        owner: String,
    },
    /// Set a tenant's storage quota: bytes of thread checkpoints and task events before its
    /// new runs are refused (0: none; without it the server's `tenant_max_stored_bytes`).
    Quota {
        /// Tenant slug or id.
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        max_stored_bytes: u64,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; prints the user as JSON. The password is read from standard input
    /// (or MORNINGAI_PASSWORD), never from a flag, so it stays out of shell history.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Add the user to this tenant (slug or id) …
        #[arg(long)]
        tenant: Option<String>,
        /// … with this role (owner, admin, member, viewer).
        #[arg(long, default_value = "member", requires = "tenant")]
        role: String,
        /// Mark the user as a platform administrator (owner console).
        #[arg(long)]
        platform_admin: bool,
    },
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Create an API key for a tenant on behalf of a member; prints the secret once.
    Create {
        /// Tenant slug or id.
        #[arg(long)]
        tenant: String,
        /// Email of the member the key acts for; the key's role cannot exceed theirs.
        #[arg(long)]
        user: String,
        /// Key role (defaults to the member's role).
        #[arg(long)]
        role: Option<String>,
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    let serve_args = match &cli.command {
        Command::Serve(a) => Some(a),
        _ => None,
    };
    let config = settings::resolve(&cli.global, serve_args)?;
    if serve_args.is_some_and(|a| a.print_config) {
        print!("{}", config.redacted_toml());
        return Ok(());
    }
    settings::init_logging(&config)?;
    match cli.command {
        Command::Serve(_) => serve(config).await,
        Command::Worker(args) => worker(config, args).await,
        Command::Migrate => {
            let store = open_store(&config).await?;
            println!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::Tenant(TenantCommand::Create { name, slug, owner }) => {
            let store = open_store(&config).await?;
            let owner = find_user(&*store, &owner).await?;
            let slug = match slug {
                Some(s) => Slug::parse(&s).map_err(anyhow::Error::msg)?,
                None => Slug::from_name(&name, &uuid_suffix()),
            };
            let t = store
                .create_tenant(NewTenant { slug, name }, owner.id)
                .await?;
            println!("{}", serde_json::to_string_pretty(&t)?);
            Ok(())
        }
        Command::Tenant(TenantCommand::Quota {
            tenant,
            max_stored_bytes,
        }) => {
            let store = open_store(&config).await?;
            let t = find_tenant(&*store, &tenant).await?;
            morningai_app::graphs::set_storage_quota(
                &*store,
                TenantCtx::new(t.id),
                max_stored_bytes,
            )
            .await?;
            println!(
                "{}",
                serde_json::json!({"tenant_id": t.id, "max_stored_bytes": max_stored_bytes})
            );
            Ok(())
        }
        Command::User(UserCommand::Create {
            email,
            name,
            tenant,
            role,
            platform_admin,
        }) => {
            let store = open_store(&config).await?;
            let email = Email::parse(&email).map_err(anyhow::Error::msg)?;
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let password = read_password()?;
            check_password_policy(&password)?;
            let hash = hash_password(&password)?;
            let tenant = match tenant {
                Some(t) => Some(find_tenant(&*store, &t).await?),
                None => None,
            };
            let user = store
                .create_user(NewUser {
                    email,
                    name,
                    password_hash: hash,
                    is_platform_admin: platform_admin,
                })
                .await?;
            if let Some(t) = tenant {
                store
                    .add_member(TenantCtx::new(t.id), user.id, role)
                    .await?;
            }
            println!("{}", serde_json::to_string_pretty(&user)?);
            Ok(())
        }
        Command::Index(args) => index(&config, args).await,
        Command::Ask(args) => agents::run(&config, "faq", args).await,
        Command::Codegen(args) => agents::run(&config, "codegen", args).await,
        Command::Docs(command) => agents::docs(&config, command).await,
        Command::Doctor { json } => doctor(&config, json).await,
        Command::Backup { dir } => {
            let manifest = morningai_app::backup::backup(&config, &dir)
                .with_context(|| format!("back up into {}", dir.display()))?;
            println!("{}", serde_json::to_string_pretty(&manifest)?);
            Ok(())
        }
        Command::Restore { dir, replace } => {
            let manifest = morningai_app::backup::restore(&config, &dir, replace)
                .with_context(|| format!("restore from {}", dir.display()))?;
            eprintln!(
                "restored the backup of {} into {}",
                manifest.created_at,
                config.data_dir.display()
            );
            println!("{}", serde_json::to_string_pretty(&manifest)?);
            Ok(())
        }
        Command::Apikey(ApikeyCommand::Create {
            tenant,
            user,
            role,
            name,
        }) => {
            let store = open_store(&config).await?;
            let tenant = find_tenant(&*store, &tenant).await?;
            let user = find_user(&*store, &user).await?;
            let member_role = store
                .role_of(tenant.id, user.id)
                .await?
                .with_context(|| format!("{} is not a member of {}", user.email, tenant.slug))?;
            let asked = role
                .map(|r| r.parse::<Role>().map_err(anyhow::Error::msg))
                .transpose()?;
            let role = morningai_app::tenancy::key_role(asked, member_role)?;
            let (new_key, secret) = mint_api_key(name, role, user.id);
            let key = store
                .create_api_key(TenantCtx::new(tenant.id), new_key)
                .await?;
            eprintln!(
                "created API key {} ({}) for tenant {}; the secret is shown only now:",
                key.id, key.role, tenant.slug
            );
            println!("{secret}");
            Ok(())
        }
    }
}

async fn index(config: &Config, args: IndexArgs) -> Result<()> {
    let backends = morningai_app::backends::open_memory(config).await?;
    let tenant = find_tenant(&*backends.store, &args.tenant).await?;
    let cx = TenantCtx::new(tenant.id);
    let retriever = morningai_agents::Retriever::new(backends.memory.clone(), backends.embedder);
    let collection =
        morningai_app::indexing::collection_named(&retriever, cx, &args.collection, None).await?;
    use morningai_agents::ingest::Pass;
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {prefix}  {wide_msg}")
            .context("progress bar template")?,
    );
    bar.set_prefix("files");
    let started = std::time::Instant::now();
    // When the files pass ended: from then on the collection answers searches.
    let searchable = std::sync::Mutex::new(None::<std::time::Duration>);
    let progress = |pass: Pass, done: usize, total: usize, path: &str| {
        if pass == Pass::Vectors {
            let mut at = searchable.lock().unwrap_or_else(|p| p.into_inner());
            if at.is_none() {
                *at = Some(started.elapsed());
                bar.set_prefix("chunks with vectors");
                bar.reset_eta();
                bar.println(format!(
                    "searchable now (lexical and hybrid) after {:.1} s; embedding the rest in the background",
                    started.elapsed().as_secs_f64()
                ));
            }
            bar.set_message(format!(
                "{:.1} chunks/s, {} left",
                bar.per_sec(),
                total.saturating_sub(done)
            ));
        } else {
            bar.set_message(path.to_owned());
        }
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let report = morningai_agents::ingest::index_tree(
        &retriever,
        backends.memory.as_ref(),
        cx,
        &collection,
        &args.path,
        &progress,
    )
    .await
    .with_context(|| format!("index {}", args.path.display()))?;
    bar.finish_and_clear();
    let ready = searchable
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .unwrap_or_else(|| started.elapsed());
    eprintln!(
        "{}: {} files indexed ({} chunks), {} unchanged, {} deleted; searchable after {:.1} s; vectors {} / {} ({} embedded) after {:.1} s",
        collection.name,
        report.indexed,
        report.chunks,
        report.unchanged,
        report.deleted,
        ready.as_secs_f64(),
        report.dense.embedded,
        report.dense.total,
        report.embedded,
        started.elapsed().as_secs_f64()
    );
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

async fn doctor(config: &Config, json: bool) -> Result<()> {
    use morningai_app::doctor::Status;
    let mut checks = morningai_app::doctor::diagnose(config).await;
    checks.push(morningai_app::doctor::dashboard(
        morningai_web::ASSETS.len(),
    ));
    if json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        for c in &checks {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            println!("{mark}  {:<20} {}", c.name, c.detail);
            if let Some(fix) = &c.fix {
                println!("      {:<20} fix: {fix}", "");
            }
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    anyhow::ensure!(failed == 0, "{failed} check(s) failed");
    Ok(())
}

fn uuid_suffix() -> String {
    random_secret("")
        .to_ascii_lowercase()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(6)
        .collect()
}

fn read_password() -> Result<String> {
    if let Ok(p) = std::env::var("MORNINGAI_PASSWORD") {
        return Ok(p);
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("read the password from standard input")?;
    Ok(s.trim_end_matches(['\n', '\r']).to_owned())
}

async fn find_user(store: &dyn Store, email: &str) -> Result<morningai_core::entities::User> {
    let email = Email::parse(email).map_err(anyhow::Error::msg)?;
    Ok(store
        .user_credentials(&email)
        .await?
        .with_context(|| format!("no user with email {email}"))?
        .user)
}

pub(crate) async fn find_tenant(store: &dyn Store, key: &str) -> Result<Tenant> {
    if let Ok(id) = key.parse::<morningai_core::TenantId>()
        && let Ok(t) = store.tenant(TenantCtx::new(id)).await
    {
        return Ok(t);
    }
    store
        .tenant_by_slug(key)
        .await?
        .with_context(|| format!("no tenant with slug or id {key}"))
}

async fn serve(config: Config) -> Result<()> {
    let app = Arc::new(Application::build(config).await?);
    let listener = tokio::net::TcpListener::bind(app.config.listen)
        .await
        .with_context(|| format!("listen on {}", app.config.listen))?;
    let addr = listener.local_addr()?;
    let (store, queue) = (app.store.backend(), app.queue.backend());
    // Embedded mode runs the workers here; distributed mode runs them in `morningai worker`.
    let workers = if app.queue_in_store {
        app.config.worker_concurrency
    } else {
        0
    };
    let stop = CancellationToken::new();
    let background = runtime::spawn(&app, app.config.plan(workers), stop.clone());
    let signal = shutdown_signal();
    tracing::info!(%addr, store, queue, workers, "MorningAI listening");
    println!("MorningAI listening on http://{addr} ({store} store, {queue} queue)");
    let http_stop = stop.clone();
    morningai_server::serve(listener, app, async move {
        signal.await;
        http_stop.cancel();
    })
    .await
    .context("serve HTTP")?;
    stop.cancel();
    let released = background.join().await;
    tracing::info!(released, "shut down cleanly");
    Ok(())
}

async fn worker(config: Config, args: WorkerArgs) -> Result<()> {
    let app = Application::build(config).await?;
    let workers = args
        .concurrency
        .unwrap_or(app.config.worker_concurrency)
        .max(1);
    let stop = CancellationToken::new();
    let plan = Plan {
        grace: std::time::Duration::from_secs(args.grace_secs),
        scheduler: false,
        sweep_every: None,
        ..app.config.plan(workers)
    };
    let signal = shutdown_signal();
    let background = runtime::spawn(&app, plan, stop.clone());
    println!(
        "MorningAI worker running {workers} jobs at once ({} queue)",
        app.queue.backend()
    );
    signal.await;
    tracing::info!("stopping: no new jobs; in-flight jobs get the grace period");
    stop.cancel();
    let released = background.join().await;
    tracing::info!(released, "worker stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called (not when
/// first polled), so a signal that arrives right after start-up is not missed.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
                }
                _ => std::future::pending::<()>().await,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
