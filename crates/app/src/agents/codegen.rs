//! The code generation agent (graph `codegen`, task kind `codegen`): retrieve the code a
//! request is about, ask the chat model for a plan, an explanation and a unified diff
//! against the indexed tree, then check the diff: it must apply cleanly to the current
//! files (read from the tree's directory, which must lie under `index_roots`) and every
//! changed file in a language tree-sitter knows must still parse. A failed check goes back
//! to the model with the error, a bounded number of times, then the task fails clearly. The
//! result (diff, explanation, files) is held for approval when the request asks for it.
//! Without a chat model the agent refuses: code generation needs one.

use super::{
    AgentDeps, assistant_of, check_ids, fail, needs_approval, scope, system_prompt, update,
};
use morningai_core::CollectionId;
use morningai_core::ai::{ChatMessage, ChatRequest, ResponseFormat};
use morningai_core::memory::ChunkHit;
use morningai_graph::{
    Command, END, Graph, NodeContext, NodeError, NodeFn, Reducer, START, Target,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Generations after the first when a diff fails its checks.
const MAX_RETRIES: u64 = 2;

const PROMPT: &str = "You change a code base. Answer with a JSON object with the keys \"plan\" (short steps), \
\"explanation\" (what the change does and why) and \"diff\" (a unified diff: for each file '--- a/PATH' and '+++ b/PATH' \
lines, then hunks '@@ -start,count +start,count @@' with at least 3 lines of unchanged context copied exactly from the \
current file). Paths are relative to the repository root, as in the sources given. Change only what the request needs.";

/// One file's part of a multi-file unified diff.
#[derive(Debug, PartialEq)]
pub struct FilePatch {
    pub path: String,
    pub text: String,
    /// `--- /dev/null`: a new file.
    pub creates: bool,
}

/// Splits a unified diff into per-file patches (`--- a/x` / `+++ b/x` headers; git's
/// `diff --git` and `index` lines are skipped).
pub fn split_diff(diff: &str) -> Result<Vec<FilePatch>, String> {
    let lines: Vec<&str> = diff.lines().collect();
    let mut out: Vec<FilePatch> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let (Some(old), Some(new)) = (
            line.strip_prefix("--- "),
            lines.get(i + 1).and_then(|l| l.strip_prefix("+++ ")),
        ) {
            let clean = |p: &str| {
                let p = p.split('\t').next().unwrap_or(p).trim();
                p.strip_prefix("a/")
                    .or_else(|| p.strip_prefix("b/"))
                    .unwrap_or(p)
                    .to_owned()
            };
            let creates = old.trim() == "/dev/null";
            if new.trim() == "/dev/null" {
                return Err(format!("deleting files is not supported: {old:?}"));
            }
            let path = clean(new);
            if !creates && clean(old) != path {
                return Err(format!(
                    "renames are not supported: {:?} → {path:?}",
                    clean(old)
                ));
            }
            if path.is_empty() || path.split('/').any(|c| c == "..") || path.starts_with('/') {
                return Err(format!("unsafe path in the diff: {path:?}"));
            }
            out.push(FilePatch {
                path,
                text: format!("{line}\n{}\n", lines[i + 1]),
                creates,
            });
            i += 2;
            continue;
        }
        match out.last_mut() {
            Some(f) => {
                f.text.push_str(line);
                f.text.push('\n');
            }
            None if line.starts_with("diff --git")
                || line.starts_with("index ")
                || line.trim().is_empty() => {}
            None => return Err(format!("text before the first file header: {line:?}")),
        }
        i += 1;
    }
    if out.is_empty() {
        return Err("no file in the diff (expected '--- a/PATH' and '+++ b/PATH' headers)".into());
    }
    Ok(out)
}

/// Applies `diff` to the files under `root`; the new contents by path, or why not.
pub fn apply_diff(root: &Path, diff: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for f in split_diff(diff)? {
        let current = if f.creates && !root.join(&f.path).exists() {
            None
        } else {
            Some(read_inside(root, &f.path)?)
        };
        out.push((f.path.clone(), apply_patch(&f, current.as_deref())?));
    }
    Ok(out)
}

/// One file's patch applied to its current text (None: there is no such file).
pub fn apply_patch(f: &FilePatch, current: Option<&str>) -> Result<String, String> {
    let base = match (f.creates, current) {
        (true, None) => "",
        (true, Some(_)) => return Err(format!("{}: already exists (the diff creates it)", f.path)),
        (false, Some(text)) => text,
        (false, None) => return Err(format!("{}: no such file", f.path)),
    };
    let patch = diffy::Patch::from_str(&f.text)
        .map_err(|e| format!("{}: not a valid patch: {e}", f.path))?;
    diffy::apply(base, &patch)
        .map_err(|e| format!("{}: does not apply to the current file: {e}", f.path))
}

/// The text of `root/rel`: a regular file whose real path (symlinks resolved) is inside
/// `root`, at most 1 MiB.
fn read_inside(root: &Path, rel: &str) -> Result<String, String> {
    let real = root
        .join(rel)
        .canonicalize()
        .map_err(|e| format!("{rel}: {e}"))?;
    if !real.starts_with(root) {
        return Err(format!("{rel}: resolves outside the tree"));
    }
    let meta = std::fs::metadata(&real).map_err(|e| format!("{rel}: {e}"))?;
    if !meta.is_file() || meta.len() > 1024 * 1024 {
        return Err(format!("{rel}: not a regular file of at most 1 MiB"));
    }
    std::fs::read_to_string(&real).map_err(|e| format!("{rel}: {e}"))
}

impl AgentDeps {
    async fn code_context(&self, ctx: NodeContext) -> Result<Command, NodeError> {
        let (cx, _) = scope(&ctx)?;
        let cfg = assistant_of(&ctx);
        if self.model(&ctx).await?.is_none() {
            return Err(fail(
                "code generation needs a chat model, and none is configured for this tenant \
                 (set one with PUT /api/v1/tenant/ai, or chat_base_url and chat_model for the deployment); \
                 the offline provider only answers extractively",
            ));
        }
        let request = ctx.state["request"].as_str().unwrap_or_default().to_owned();
        let collection: Option<CollectionId> = ctx.state["collection_id"]
            .as_str()
            .and_then(|s| s.parse().ok());
        let (hits, _) = self
            .sources(cx, &request, &cfg, collection)
            .await
            .map_err(fail)?;
        ctx.custom(json!({"step": "retrieve", "hits": hits.len()}));
        Ok(update(vec![(
            "hits",
            serde_json::to_value(&hits).map_err(fail)?,
        )]))
    }

    async fn generate(&self, ctx: NodeContext) -> Result<Command, NodeError> {
        let cfg = assistant_of(&ctx);
        let model = self
            .model(&ctx)
            .await?
            .ok_or_else(|| fail("the chat model is no longer configured"))?;
        let hits: Vec<ChunkHit> =
            serde_json::from_value(ctx.state["hits"].clone()).unwrap_or_default();
        let mut sources = String::new();
        for h in &hits {
            sources.push_str(&format!(
                "File {} lines {}-{}:\n{}\n\n",
                h.source, h.start_line, h.end_line, h.text
            ));
        }
        let request = ctx.state["request"].as_str().unwrap_or_default();
        let mut messages = vec![
            ChatMessage::system(system_prompt(PROMPT, &cfg)),
            ChatMessage::user(format!("Sources:\n\n{sources}Request: {request}")),
        ];
        if let Some(error) = ctx.state["error"].as_str() {
            messages.push(ChatMessage::assistant(
                ctx.state["raw"].as_str().unwrap_or(""),
            ));
            messages.push(ChatMessage::user(format!(
                "That diff was rejected: {error}. Answer again with a corrected JSON object."
            )));
        }
        let req = ChatRequest {
            messages,
            response_format: ResponseFormat::JsonObject,
            temperature: Some(cfg.temperature.unwrap_or(0.1)),
            max_tokens: Some(4_096),
            ..ChatRequest::default()
        };
        let r = model.chat(&req, None).await.map_err(fail)?;
        let attempts = ctx.state["attempts"].as_u64().unwrap_or(0) + 1;
        ctx.custom(json!({"step": "generate", "attempt": attempts}));
        Ok(update(vec![
            ("raw", json!(r.content)),
            ("attempts", json!(attempts)),
            ("model", json!(r.model)),
        ]))
    }

    async fn verify(
        &self,
        ctx: NodeContext,
        roots: Arc<Vec<PathBuf>>,
    ) -> Result<Command, NodeError> {
        let raw = ctx.state["raw"].as_str().unwrap_or_default();
        let root = crate::indexing::allowed(ctx.state["path"].as_str().unwrap_or_default(), &roots)
            .map_err(fail)?;
        let verdict = (|| -> Result<(Value, Vec<String>), String> {
            let answer: Value = serde_json::from_str(raw)
                .map_err(|e| format!("the answer is not a JSON object: {e}"))?;
            let diff = answer["diff"]
                .as_str()
                .ok_or("the answer has no \"diff\" string")?;
            let files = apply_diff(&root, diff)?;
            for (path, text) in &files {
                if let Some(lang) = morningai_agents::chunk::language_of(path)
                    && let Some(Err((line, col))) = morningai_agents::syntax::parses(lang, text)
                {
                    return Err(format!(
                        "{path} does not parse as {lang} after the change (line {line}, column {col})"
                    ));
                }
            }
            Ok((answer, files.into_iter().map(|(p, _)| p).collect()))
        })();
        let attempts = ctx.state["attempts"].as_u64().unwrap_or(1);
        match verdict {
            Ok((answer, files)) => {
                ctx.custom(json!({"step": "verify", "ok": true, "files": files}));
                Ok(update(vec![
                    ("diff", answer["diff"].clone()),
                    ("plan", answer["plan"].clone()),
                    ("explanation", answer["explanation"].clone()),
                    ("files", json!(files)),
                    ("error", Value::Null),
                    ("status", json!("ready")),
                    ("needs_approval", json!(needs_approval(&ctx))),
                ]))
            }
            Err(e) if attempts <= MAX_RETRIES => {
                ctx.custom(json!({"step": "verify", "ok": false, "error": e}));
                Ok(update(vec![("error", json!(e))]))
            }
            Err(e) => Err(fail(format!(
                "no applicable diff after {attempts} attempts; the last one was rejected: {e}"
            ))),
        }
    }
}

/// The `codegen` graph; `roots` are the directories it may read.
pub fn graph(deps: Arc<AgentDeps>, roots: Vec<PathBuf>) -> Graph {
    let roots = Arc::new(roots);
    let (d1, d2, d3) = (deps.clone(), deps.clone(), deps);
    Graph::builder()
        .channel("request", Reducer::LastValue)
        .channel("project_id", Reducer::LastValue)
        .channel("collection_id", Reducer::LastValue)
        .channel("path", Reducer::LastValue)
        .channel("require_approval", Reducer::LastValue)
        .channel("task_id", Reducer::LastValue)
        .channel("trace_id", Reducer::LastValue)
        .channel("hits", Reducer::LastValue)
        .channel("raw", Reducer::LastValue)
        .channel("model", Reducer::LastValue)
        .channel("attempts", Reducer::LastValue)
        .channel("error", Reducer::LastValue)
        .channel("diff", Reducer::LastValue)
        .channel("plan", Reducer::LastValue)
        .channel("explanation", Reducer::LastValue)
        .channel("files", Reducer::LastValue)
        .channel("decision", Reducer::LastValue)
        .channel("needs_approval", Reducer::LastValue)
        .channel("assistant_id", Reducer::LastValue)
        .channel("status", Reducer::LastValue)
        // Set by a GitHub connection: where the pull request of the change opens.
        .channel("github", Reducer::LastValue)
        .node(
            "retrieve",
            NodeFn(move |c: NodeContext| {
                let d = d1.clone();
                async move { d.code_context(c).await }
            }),
        )
        .node(
            "generate",
            NodeFn(move |c: NodeContext| {
                let d = d2.clone();
                async move { d.generate(c).await }
            }),
        )
        .node(
            "verify",
            NodeFn(move |c: NodeContext| {
                let (d, roots) = (d3.clone(), roots.clone());
                async move { d.verify(c, roots).await }
            }),
        )
        .node(
            "review",
            NodeFn(|ctx: NodeContext| async move {
                let decision = ctx.interrupt(json!({
                    "min_role": assistant_of(&ctx).approver_role,
                    "question": "Apply this change?",
                    "request": ctx.state["request"],
                    "plan": ctx.state["plan"],
                    "diff": ctx.state["diff"],
                    "explanation": ctx.state["explanation"],
                    "files": ctx.state["files"],
                }))?;
                let yes = crate::graphs::catalog::approved(&decision);
                Ok(update(vec![
                    ("decision", decision),
                    ("status", json!(if yes { "approved" } else { "rejected" })),
                ]))
            }),
        )
        .edge(START, "retrieve")
        .edge("retrieve", "generate")
        .edge("generate", "verify")
        .conditional_edge(
            "verify",
            Arc::new(|s| {
                vec![if !s["error"].is_null() {
                    Target::node("generate")
                } else if s["needs_approval"] == json!(true) {
                    Target::node("review")
                } else {
                    Target::node(END)
                }]
            }),
            &["generate", "review", END],
        )
        .edge("review", END)
        .compile()
        .expect("codegen graph")
}

/// Checks a `codegen` task's input when it is submitted.
pub fn validate(input: &Value) -> Result<(), String> {
    match input.get("request").and_then(Value::as_str).map(str::trim) {
        Some(r) if !r.is_empty() && r.chars().count() <= 4_000 => {}
        _ => return Err("codegen needs a request of 1–4000 characters".into()),
    }
    if input
        .get("path")
        .and_then(Value::as_str)
        .is_none_or(|p| p.trim().is_empty())
    {
        return Err("codegen needs the indexed tree's directory as path".into());
    }
    if input.get("github").is_some() {
        // Where a pull request opens is the GitHub connection's to say, not a request's.
        return Err(
            "github is set by a GitHub connection's /morningai codegen comment, not by a request"
                .into(),
        );
    }
    check_ids(input, "codegen")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_split_by_file_and_apply_or_say_why_not() {
        let dir = std::env::temp_dir().join(format!("codegen-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/lib.rs"), "pub fn one() -> u32 {\n    1\n}\n").unwrap();
        let diff = "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,3 @@\n pub fn one() -> u32 {\n-    1\n+    2\n }\n--- /dev/null\n+++ b/src/new.rs\n@@ -0,0 +1 @@\n+pub fn two() {}\n";
        let files = apply_diff(&dir, diff).unwrap();
        assert_eq!(
            files[0],
            (
                "src/lib.rs".into(),
                "pub fn one() -> u32 {\n    2\n}\n".into()
            )
        );
        assert_eq!(files[1], ("src/new.rs".into(), "pub fn two() {}\n".into()));
        let stale = diff.replace("-    1\n", "-    7\n");
        assert!(
            apply_diff(&dir, &stale)
                .unwrap_err()
                .contains("does not apply")
        );
        assert!(
            split_diff("--- a/../etc/passwd\n+++ b/../etc/passwd\n")
                .unwrap_err()
                .contains("unsafe path")
        );
        assert!(split_diff("just words").is_err());
        let sneaky = "--- a/src/lib.rs\n+++ b/../../etc/x\n@@ -1 +1 @@\n-a\n+b\n";
        assert!(
            split_diff(sneaky)
                .unwrap_err()
                .contains("renames are not supported")
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", dir.join("link")).unwrap();
            let escape = "--- a/link/hostname\n+++ b/link/hostname\n@@ -1 +1 @@\n-a\n+b\n";
            assert!(
                apply_diff(&dir, escape)
                    .unwrap_err()
                    .contains("resolves outside the tree")
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
