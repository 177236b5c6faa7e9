//! The `index` task kind: indexes a directory on the server's machine into a memory
//! collection, with progress events. Only directories under the configured `index_roots`
//! may be read — a tenant must not be able to index `/etc` — and with none configured the
//! kind refuses every path.

use morningai_agents::Retriever;
use morningai_agents::ingest::{Pass, index_tree};
use morningai_core::TenantCtx;
use morningai_core::memory::Collection;
use morningai_worker::{Handler, JobContext, JobError};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct IndexTask {
    /// The application's: its vectors pass yields to the queries of the same process.
    pub retriever: Arc<Retriever>,
    pub roots: Vec<PathBuf>,
}

/// Input check at task creation: `{"path": "...", "collection": "..."}`.
pub fn validate(input: &Value) -> Result<(), String> {
    for field in ["path", "collection"] {
        if input
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty())
        {
            return Err(format!("index needs a non-empty string {field:?}"));
        }
    }
    Ok(())
}

/// The canonical `path` when it lies under one of `roots` (the directories `index` and
/// `codegen` tasks may read).
pub(crate) fn allowed(path: &str, roots: &[PathBuf]) -> Result<PathBuf, String> {
    if roots.is_empty() {
        return Err("reading server directories is disabled: configure index_roots".into());
    }
    let real = Path::new(path)
        .canonicalize()
        .map_err(|e| format!("{path}: {e}"))?;
    roots
        .iter()
        .filter_map(|r| r.canonicalize().ok())
        .any(|r| real.starts_with(&r))
        .then_some(real)
        .ok_or_else(|| format!("{path} is not under an allowed index root"))
}

/// The tenant's collection called `name`, created (with `description`) when missing — by
/// whoever gets there first when two create it at once.
pub async fn collection_named(
    retriever: &Retriever,
    cx: TenantCtx,
    name: &str,
    description: Option<&str>,
) -> morningai_core::Result<Collection> {
    let find = || async {
        Ok::<_, morningai_core::Error>(
            retriever
                .memory()
                .list_collections(cx)
                .await?
                .into_iter()
                .find(|c| c.name == name),
        )
    };
    if let Some(c) = find().await? {
        return Ok(c);
    }
    match retriever.create_collection(cx, name, description).await {
        Err(morningai_core::Error::Conflict { .. }) => find()
            .await?
            .ok_or(morningai_core::Error::NotFound("collection")),
        other => other,
    }
}

#[async_trait::async_trait]
impl Handler for IndexTask {
    async fn run(&self, ctx: JobContext) -> Result<Value, JobError> {
        validate(&ctx.input).map_err(JobError::fatal)?;
        let root = allowed(ctx.input["path"].as_str().unwrap_or_default(), &self.roots)
            .map_err(JobError::fatal)?;
        let name = ctx.input["collection"].as_str().unwrap_or_default().trim();
        let cx = TenantCtx::new(ctx.tenant_id);
        let retriever = &self.retriever;
        let storage = |e: morningai_core::Error| JobError::retryable(e.to_string());
        let collection = collection_named(retriever, cx, name, None)
            .await
            .map_err(storage)?;
        // The newest step, sent every half second: the files pass, then the vectors pass
        // (the collection answers searches from the moment the second begins).
        let latest = Mutex::new((Pass::Files, 0usize, 0usize, String::new()));
        let progress = |pass: Pass, done: usize, total: usize, path: &str| {
            *latest.lock().unwrap_or_else(|p| p.into_inner()) =
                (pass, done, total, path.to_owned());
        };
        let run = index_tree(
            retriever,
            retriever.memory().as_ref(),
            cx,
            &collection,
            &root,
            &progress,
        );
        tokio::pin!(run);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let send = || {
            let (pass, done, total, path) =
                latest.lock().unwrap_or_else(|p| p.into_inner()).clone();
            ctx.progress(json!({"pass": pass, "done": done, "total": total, "path": path}))
        };
        let report = loop {
            tokio::select! {
                r = &mut run => break r,
                _ = tick.tick() => send().await,
            }
        };
        // The last step too: a run shorter than a tick would otherwise end on "0 / 0".
        send().await;
        let report = report.map_err(|e| match e {
            morningai_core::Error::Invalid { .. } => JobError::fatal(e.to_string()),
            e => JobError::retryable(e.to_string()),
        })?;
        Ok(json!({"collection": collection.id, "report": report}))
    }
}
