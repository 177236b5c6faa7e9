//! `morningai ask` and `morningai codegen`: run the documentation or the code generation
//! agent and print its result (the published document, or the diff), with the agent's
//! progress on standard error as it happens. Against a running server with `--server`
//! (and an API key), else in embedded mode on the local data directory with an in-process
//! worker.

use anyhow::{Context, Result, bail};
use morningai_app::Application;
use morningai_app::config::Config;
use morningai_app::events::Tail;
use morningai_core::entities::NewTask;
use morningai_core::{Priority, TaskId, TenantCtx};
use morningai_worker::CancellationToken;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct AgentArgs {
    /// The question (ask) or the change request (codegen).
    pub text: String,
    /// Project id or name (embedded mode creates a missing one).
    #[arg(long)]
    pub project: String,
    /// Embedded mode: the tenant (slug or id).
    #[arg(long, required_unless_present = "server")]
    pub tenant: Option<String>,
    /// A running server's base URL, e.g. http://localhost:8080.
    #[arg(long, env = "MORNINGAI_SERVER")]
    pub server: Option<String>,
    /// API key for --server.
    #[arg(
        long,
        env = "MORNINGAI_API_KEY",
        hide_env_values = true,
        requires = "server"
    )]
    pub api_key: Option<String>,
    /// Search only this collection (name or id).
    #[arg(long)]
    pub collection: Option<String>,
    /// Use this assistant's configuration (id).
    #[arg(long)]
    pub assistant: Option<String>,
    /// codegen: the indexed tree's directory (must be under the server's index_roots).
    #[arg(long)]
    pub path: Option<std::path::PathBuf>,
    /// ask: write a new version even when a published document already answers.
    #[arg(long)]
    pub regenerate: bool,
    /// Hold the result for a person's approval.
    #[arg(long)]
    pub require_approval: bool,
}

fn input(kind: &str, a: &AgentArgs, project: &str, collection: Option<String>) -> Result<Value> {
    let mut v = json!({"project_id": project, "collection_id": collection, "assistant_id": a.assistant,
                       "require_approval": a.require_approval});
    if kind == "faq" {
        v["question"] = json!(a.text);
        v["regenerate"] = json!(a.regenerate);
    } else {
        let path = a
            .path
            .as_ref()
            .context("codegen needs --path (the indexed tree)")?;
        v["request"] = json!(a.text);
        v["path"] = json!(
            path.canonicalize()
                .with_context(|| path.display().to_string())?
        );
    }
    Ok(v)
}

/// One progress line from a task event.
fn show_event(kind: &str, data: &Value) {
    match kind {
        "progress" if data["mode"] == "custom" => {
            let d = &data["data"];
            let step = d["step"].as_str().unwrap_or("step");
            let mut rest = d.clone();
            if let Some(m) = rest.as_object_mut() {
                m.remove("step");
            }
            eprintln!("→ {step} {rest}");
        }
        "progress" if data["mode"] == "messages" => {}
        "progress" => {}
        "log" | "retrying" => eprintln!("→ {kind}: {data}"),
        other => eprintln!("→ {other}"),
    }
}

/// Prints the outcome; `document` fetches a document version's text.
async fn show_result<F, Fut>(kind: &str, task: &Value, document: F) -> Result<()>
where
    F: FnOnce(String, u64) -> Fut,
    Fut: std::future::Future<Output = Result<String>>,
{
    if task["status"] != "succeeded" {
        bail!(
            "the {kind} task {}: {}",
            task["status"].as_str().unwrap_or("?"),
            task["error"].as_str().unwrap_or("")
        );
    }
    let r = &task["result"];
    if r["run_status"] == "interrupted" {
        eprintln!(
            "waiting for approval: approve or reject it with POST /api/v1/approvals/{{id}}/approve|reject (GET /api/v1/approvals?status=pending lists it); thread {}",
            r["thread_id"].as_str().unwrap_or("")
        );
        return Ok(());
    }
    if kind == "codegen" {
        if let Some(e) = r["explanation"].as_str() {
            eprintln!("{e}\nfiles: {}", r["files"]);
        }
        print!("{}", r["diff"].as_str().unwrap_or(""));
        return Ok(());
    }
    if r["status"] == "existing" {
        eprintln!("a published document already answers this (use --regenerate for a new version)");
    }
    let id = r["document"]["id"]
        .as_str()
        .context("the result names no document")?
        .to_owned();
    let version = r["document"]["version"]
        .as_u64()
        .context("the result names no version")?;
    println!("{}", document(id, version).await?);
    Ok(())
}

pub async fn run(config: &Config, kind: &'static str, args: AgentArgs) -> Result<()> {
    match args.server.clone() {
        Some(url) => remote(&url, kind, &args).await,
        None => embedded(config, kind, &args).await,
    }
}

/// A project of the tenant by id or name.
async fn local_project(
    store: &dyn morningai_core::Store,
    cx: TenantCtx,
    key: &str,
) -> Result<Option<morningai_core::entities::Project>> {
    Ok(store
        .projects(cx)
        .await?
        .into_iter()
        .find(|p| p.id.to_string() == key || p.name == key))
}

/// The id of the listed entry (a JSON array, or a page `{"items": [...]}`) whose id or name
/// is `key`.
fn id_in(list: &Value, key: &str) -> Option<String> {
    list["items"]
        .as_array()
        .or(list.as_array())?
        .iter()
        .find(|x| x["id"] == key || x["name"] == key)?["id"]
        .as_str()
        .map(str::to_owned)
}

async fn embedded(config: &Config, kind: &'static str, a: &AgentArgs) -> Result<()> {
    // Like `morningai index`, the CLI reads wherever its user can: the tree named by
    // --path is readable for this run whatever the server's index_roots say.
    let mut config = config.clone();
    config.index_roots.extend(a.path.iter().cloned());
    let app = Application::build(config).await?;
    let store = app.store.clone();
    let tenant = crate::find_tenant(&*store, a.tenant.as_deref().unwrap_or_default()).await?;
    let cx = TenantCtx::new(tenant.id);
    let project = match local_project(&*store, cx, &a.project).await? {
        Some(p) => p,
        None => {
            eprintln!("creating project {:?}", a.project);
            store.create_project(cx, &a.project, None, None).await?
        }
    };
    let collection = match &a.collection {
        Some(c) => Some(
            app.memory
                .list_collections(cx)
                .await?
                .into_iter()
                .find(|x| x.id.to_string() == *c || x.name == *c)
                .with_context(|| format!("no collection {c:?}"))?
                .id
                .to_string(),
        ),
        None => None,
    };
    let task = NewTask {
        id: TaskId::new(),
        kind: kind.into(),
        priority: Priority::default(),
        project_id: Some(project.id),
        trace_id: morningai_app::trace::new_trace_id(),
        input: input(kind, a, &project.id.to_string(), collection)?,
        idempotency_key: None,
        created_by: None,
    };
    app.registry.kinds().validate(kind, &task.input)?;
    let id = task.id;
    // Subscribe before submitting: the tail sees every event from the first.
    let mut tail = Tail::new(store.clone(), app.tasks.bus.subscribe(), cx, Some(id), 0);
    app.tasks.submit(cx, task).await?;
    let stop = CancellationToken::new();
    let plan = morningai_app::runtime::Plan {
        scheduler: false,
        sweep_every: None,
        ..app.config.plan(2)
    };
    let background = morningai_app::runtime::spawn(&app, plan, stop.clone());
    let followed = tail
        .until_end(|e| show_event(e.kind.as_str(), &e.data))
        .await;
    stop.cancel();
    background.join().await;
    followed?;
    let done = store.task(cx, id).await?;
    let task = serde_json::to_value(&done).context("encode the task")?;
    let documents = app.documents.clone();
    show_result(kind, &task, |doc, n| async move {
        Ok(documents
            .version(cx, doc.parse().context("document id")?, n as u32)
            .await?
            .text)
    })
    .await
}

async fn remote(url: &str, kind: &'static str, a: &AgentArgs) -> Result<()> {
    use futures_util::StreamExt;
    let base = url.trim_end_matches('/').to_owned();
    let key = a
        .api_key
        .clone()
        .context("--server needs an API key (--api-key or MORNINGAI_API_KEY)")?;
    let http = reqwest::Client::new();
    let get = |path: String| {
        let (http, key, base) = (http.clone(), key.clone(), base.clone());
        async move {
            let res = http
                .get(format!("{base}{path}"))
                .header("x-api-key", key)
                .send()
                .await?;
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                bail!(
                    "GET {path}: {status}: {}",
                    body["detail"].as_str().unwrap_or("")
                );
            }
            Ok(body)
        }
    };
    let projects = get("/api/v1/projects".into()).await?;
    let project = id_in(&projects, &a.project)
        .with_context(|| format!("no project {:?} on the server", a.project))?;
    let collection = match &a.collection {
        Some(c) => Some(
            id_in(&get("/api/v1/memory/collections".into()).await?, c)
                .with_context(|| format!("no collection {c:?}"))?,
        ),
        None => None,
    };
    let res = http
        .post(format!("{base}/api/v1/tasks"))
        .header("x-api-key", &key)
        .json(&json!({"kind": kind, "input": input(kind, a, &project, collection)?}))
        .send()
        .await?;
    let status = res.status();
    let created: Value = res.json().await?;
    if !status.is_success() {
        bail!(
            "creating the task: {status}: {}",
            created["detail"].as_str().unwrap_or("")
        );
    }
    let id = created["id"].as_str().context("task id")?.to_owned();
    // Follow the task's events live until it finishes.
    let events = http
        .get(format!("{base}/api/v1/tasks/{id}/events"))
        .header("x-api-key", &key)
        .send()
        .await?;
    let mut stream = events.bytes_stream();
    let mut buf = String::new();
    'follow: while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) else {
                continue;
            };
            let Ok(e) = serde_json::from_str::<Value>(data.trim()) else {
                continue;
            };
            let kind = e["kind"].as_str().unwrap_or("");
            show_event(kind, &e["data"]);
            if matches!(kind, "succeeded" | "failed" | "cancelled") {
                break 'follow;
            }
        }
    }
    let task = get(format!("/api/v1/tasks/{id}")).await?;
    show_result(kind, &task, |doc, n| async move {
        Ok(
            get(format!("/api/v1/documents/{doc}/versions/{n}")).await?["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    })
    .await
}

#[derive(clap::Subcommand)]
pub enum DocsCommand {
    /// Write a project's published documents as DIR/docs/<kind>/<slug>.md.
    Export(DocsArgs),
    /// Import the markdown files under DIR (`[docs/]<kind>/<slug>.md`, or `<slug>.md` as a
    /// guide) as published documents: new ones are created, changed ones get a version.
    Import(DocsArgs),
}

#[derive(clap::Args)]
pub struct DocsArgs {
    pub dir: std::path::PathBuf,
    /// Tenant slug or id.
    #[arg(long)]
    pub tenant: String,
    /// Project id or name.
    #[arg(long)]
    pub project: String,
}

/// `morningai docs export|import` in embedded mode (or on the configured PostgreSQL).
pub async fn docs(config: &Config, command: DocsCommand) -> Result<()> {
    let app = Application::build(config.clone()).await?;
    let (export, a) = match command {
        DocsCommand::Export(a) => (true, a),
        DocsCommand::Import(a) => (false, a),
    };
    let tenant = crate::find_tenant(&*app.store, &a.tenant).await?;
    let cx = TenantCtx::new(tenant.id);
    let project = local_project(&*app.store, cx, &a.project)
        .await?
        .with_context(|| format!("no project {:?}", a.project))?;
    if export {
        let files = app.documents.export(cx, project.id).await?;
        for (path, text) in &files {
            let target = a.dir.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
            }
            std::fs::write(&target, text).with_context(|| target.display().to_string())?;
        }
        eprintln!("exported {} documents to {}", files.len(), a.dir.display());
        return Ok(());
    }
    let mut files = Vec::new();
    for entry in ignore::WalkBuilder::new(&a.dir).hidden(true).build() {
        let entry = entry?;
        let path = entry.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "md") {
            let rel = path
                .strip_prefix(&a.dir)
                .unwrap_or(path)
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
            files.push((rel, text));
        }
    }
    files.sort();
    let author = morningai_app::documents::Author::User {
        user_id: "cli".into(),
    };
    let report = app.documents.import(cx, project.id, files, author).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
