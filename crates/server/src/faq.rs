//! The documentation agent (graph `faq`, task kind `faq`): look for a published document
//! that already answers the question; else retrieve from the tenant's memory, write the
//! document (with the configured chat model, or extractively), check that every cited path
//! and line range exists in the indexed sources (a model's draft is rewritten once with the
//! invalid citations named, then they are removed), optionally wait for a human, and publish
//! it as a new version. Every document has the same layout and ends with a metadata block.

use crate::assistants::AssistantConfig;
use crate::documents::{Author, DocKind, Documents, Edit, NewDocument};
use crate::langgraph::runs::strings;
use crate::models::Models;
use morningai_agents::Retriever;
use morningai_agents::answer::{
    Citation, GeneratedBy, content_terms, extractive, is_prose, numbered_sources,
};
use morningai_core::ai::{ChatMessage, ChatRequest, TokenUsage, cosine};
use morningai_core::memory::{ChunkHit, SearchMode, SearchScope};
use morningai_core::{CollectionId, Error, ProjectId, TaskId, TenantCtx, TenantId};
use morningai_graph::{
    Command, END, Graph, NodeContext, NodeError, NodeFn, Reducer, START, Target,
};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The assistant configuration of the run: trusted, read from the tenant's store by the
/// run handler (never from the caller's input); the defaults without one.
pub(crate) fn assistant_of(ctx: &NodeContext) -> AssistantConfig {
    serde_json::from_value(ctx.config["assistant"].clone()).unwrap_or_default()
}

/// An agent's system prompt with the assistant's addition.
pub(crate) fn system_prompt(base: &str, cfg: &AssistantConfig) -> String {
    match cfg
        .system_prompt
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(extra) => format!("{base}\n\n{extra}"),
        None => base.to_owned(),
    }
}

/// Whether the run needs a person's approval (asked for, or required by the assistant).
pub(crate) fn needs_approval(ctx: &NodeContext) -> bool {
    ctx.state["require_approval"] == json!(true) || assistant_of(ctx).require_approval
}

/// What the agent's nodes use.
pub struct AgentDeps {
    pub retriever: Arc<Retriever>,
    pub documents: Arc<Documents>,
    pub models: Arc<Models>,
}

/// Model drafts rewritten at most this many times after a failed citation check.
const MAX_REWRITES: u64 = 1;
/// Passages retrieved for a document.
const K: usize = 8;

pub(crate) fn fail(e: impl std::fmt::Display) -> NodeError {
    NodeError::fatal(e.to_string())
}

pub(crate) fn update(pairs: Vec<(&str, Value)>) -> Command {
    Command::update(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Map<_, _>>(),
    )
}

/// The tenant and task of the run, from the trusted part of its configuration (the run
/// handler sets them; a caller's configuration cannot).
pub(crate) fn scope(ctx: &NodeContext) -> Result<(TenantCtx, Option<TaskId>), NodeError> {
    let tenant: TenantId = ctx.config["tenant_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail("the run has no tenant"))?;
    let task = ctx.config["task_id"].as_str().and_then(|s| s.parse().ok());
    Ok((TenantCtx::new(tenant), task))
}

fn question(state: &Map<String, Value>) -> Result<String, NodeError> {
    state["question"]
        .as_str()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| fail("question is required"))
}

fn project(state: &Map<String, Value>) -> Result<ProjectId, NodeError> {
    state["project_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail("project_id is required"))
}

impl AgentDeps {
    /// The first title that asks the same question: cosine ≥ 0.9 between the two with a
    /// model (one embedding call for the question and every title), else the same content
    /// words.
    async fn same_question<'t>(
        &self,
        question: &str,
        titles: &[&'t str],
    ) -> Result<Option<&'t str>, Error> {
        if titles.is_empty() {
            return Ok(None);
        }
        if let Some(e) = self.retriever.embedder() {
            let mut texts = vec![question.to_owned()];
            texts.extend(titles.iter().map(|t| (*t).to_owned()));
            let v = e.embed(&texts).await?;
            return Ok(titles
                .iter()
                .zip(&v[1..])
                .find(|(_, t)| cosine(&v[0], t) >= 0.9)
                .map(|(title, _)| *title));
        }
        let words = |t: &str| content_terms(t).into_iter().collect::<BTreeSet<_>>();
        let asked = words(question);
        Ok((!asked.is_empty())
            .then(|| titles.iter().find(|t| words(t) == asked).copied())
            .flatten())
    }

    async fn lookup(&self, ctx: NodeContext) -> Result<Command, NodeError> {
        let (cx, _) = scope(&ctx)?;
        let q = question(&ctx.state)?;
        if ctx.state["regenerate"].as_bool().unwrap_or(false) {
            return Ok(update(vec![("existing", Value::Null)]));
        }
        let hits = self
            .documents
            .search(cx, project(&ctx.state)?, &q, 3)
            .await
            .map_err(fail)?;
        let titles: Vec<&str> = hits.iter().map(|h| h.document.title.as_str()).collect();
        let same = self.same_question(&q, &titles).await.map_err(fail)?;
        let Some(h) = same.and_then(|t| hits.iter().find(|h| h.document.title == t)) else {
            return Ok(update(vec![("existing", Value::Null)]));
        };
        ctx.custom(json!({"step": "lookup", "existing": h.document.id}));
        Ok(update(vec![
            ("existing", json!(h.document.id)),
            (
                "document",
                json!({"id": h.document.id, "version": h.document.published_version, "slug": h.document.slug, "reused": true}),
            ),
            ("status", json!("existing")),
        ]))
    }

    /// Passages for `query` from the assistant's collections, else the input's collection,
    /// else every collection but the published documents; and the names of the collections
    /// they came from.
    pub(crate) async fn sources(
        &self,
        cx: TenantCtx,
        query: &str,
        cfg: &AssistantConfig,
        input_collection: Option<CollectionId>,
    ) -> Result<(Vec<ChunkHit>, String), Error> {
        let k = cfg.k.unwrap_or(K);
        let mode = cfg.mode.unwrap_or(SearchMode::Hybrid);
        let names: BTreeMap<CollectionId, String> = self
            .retriever
            .memory()
            .list_collections(cx)
            .await?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect();
        let chosen: Vec<Option<CollectionId>> = if !cfg.collections.is_empty() {
            cfg.collections.iter().copied().map(Some).collect()
        } else {
            vec![input_collection]
        };
        let mut lists = Vec::new();
        for c in &chosen {
            if let Some(id) = c
                && !names.contains_key(id)
            {
                return Err(Error::NotFound("collection"));
            }
            let scope = SearchScope {
                collection: *c,
                k: if c.is_some() { k } else { k * 2 },
                ..Default::default()
            };
            let found = self.retriever.search(cx, query, mode, scope).await?;
            // Published documents are answers, not sources.
            lists.push(
                found
                    .hits
                    .into_iter()
                    .filter(|h| {
                        !names
                            .get(&h.collection_id)
                            .is_some_and(|n| n.starts_with("documents-"))
                    })
                    .collect::<Vec<_>>(),
            );
        }
        let hits = if lists.len() == 1 {
            lists
                .pop()
                .unwrap_or_default()
                .into_iter()
                .take(k)
                .collect()
        } else {
            morningai_agents::fuse(&lists, k)
        };
        let searched: BTreeSet<&str> = hits
            .iter()
            .filter_map(|h: &ChunkHit| names.get(&h.collection_id).map(String::as_str))
            .chain(
                chosen
                    .iter()
                    .flatten()
                    .filter_map(|c| names.get(c).map(String::as_str)),
            )
            .collect();
        Ok((hits, searched.into_iter().collect::<Vec<_>>().join(", ")))
    }

    async fn retrieve(&self, ctx: NodeContext) -> Result<Command, NodeError> {
        let (cx, _) = scope(&ctx)?;
        let q = question(&ctx.state)?;
        let collection = ctx.state["collection_id"]
            .as_str()
            .and_then(|s| s.parse().ok());
        let (hits, searched) = self
            .sources(cx, &q, &assistant_of(&ctx), collection)
            .await
            .map_err(fail)?;
        ctx.custom(json!({"step": "retrieve", "hits": hits.len()}));
        Ok(update(vec![
            ("hits", serde_json::to_value(&hits).map_err(fail)?),
            ("collections", json!(searched)),
            // The writing loop's counters start here, whatever the input said.
            ("usage", json!({"prompt_tokens": 0, "completion_tokens": 0})),
            ("attempts", json!(0)),
            ("check", Value::Null),
        ]))
    }

    async fn write(&self, ctx: NodeContext) -> Result<Command, NodeError> {
        let (cx, task) = scope(&ctx)?;
        let q = question(&ctx.state)?;
        let hits: Vec<ChunkHit> =
            serde_json::from_value(ctx.state["hits"].clone()).unwrap_or_default();
        let attempts = ctx.state["attempts"].as_u64().unwrap_or(0) + 1;
        let cfg = assistant_of(&ctx);
        let model = self
            .models
            .chat_as(cx, task, cfg.model.as_deref())
            .await
            .map_err(fail)?;
        let Some(model) = model else {
            let text = extractive_document(&q, &hits);
            ctx.custom(json!({"step": "write", "generated_by": "extractive"}));
            return Ok(update(vec![
                ("draft", json!(text)),
                ("generated_by", json!({"kind": "extractive"})),
                ("attempts", json!(attempts)),
            ]));
        };
        let sources = numbered_sources(&hits);
        let mut messages = vec![
            ChatMessage::system(system_prompt(WRITER_PROMPT, &cfg)),
            ChatMessage::user(format!("Sources:\n\n{sources}Question: {q}")),
        ];
        if ctx.state["check"]["rewrite"] == json!(true) {
            let check = &ctx.state["check"];
            let (invalid, missing) = (strings(&check["invalid"]), strings(&check["missing"]));
            let mut problems = Vec::new();
            if !invalid.is_empty() {
                problems.push(format!(
                    "these citations do not exist in the sources: {}",
                    invalid.join(", ")
                ));
            }
            if !missing.is_empty() {
                problems.push(format!(
                    "these sections are missing: {}",
                    missing.join(", ")
                ));
            }
            messages.push(ChatMessage::assistant(
                ctx.state["draft"].as_str().unwrap_or(""),
            ));
            messages.push(ChatMessage::user(format!(
                "Rewrite the document: {}. Cite only the labels listed and keep every section.",
                problems.join("; ")
            )));
        }
        let req = ChatRequest {
            messages,
            temperature: Some(cfg.temperature.unwrap_or(0.2)),
            max_tokens: Some(2_048),
            ..ChatRequest::default()
        };
        let on_delta = |d: &str| ctx.message_delta(d);
        let r = model.chat(&req, Some(&on_delta)).await.map_err(fail)?;
        let usage = r.usage.unwrap_or_default();
        let before = &ctx.state["usage"];
        let total = json!({
            "prompt_tokens": before["prompt_tokens"].as_u64().unwrap_or(0) + usage.prompt_tokens,
            "completion_tokens": before["completion_tokens"].as_u64().unwrap_or(0) + usage.completion_tokens,
        });
        Ok(update(vec![
            ("draft", json!(r.content)),
            (
                "generated_by",
                json!({"kind": "model", "provider": model.provider(), "model": r.model}),
            ),
            ("usage", total),
            ("attempts", json!(attempts)),
        ]))
    }

    /// Cited `path:start-end` that do not exist in the searched sources.
    async fn invalid_citations(
        &self,
        cx: TenantCtx,
        collection: Option<CollectionId>,
        text: &str,
    ) -> Result<(Vec<Citation>, Vec<String>), Error> {
        let memory = self.retriever.memory();
        let collections: Vec<CollectionId> = match collection {
            Some(c) => vec![c],
            None => memory
                .list_collections(cx)
                .await?
                .into_iter()
                .filter(|c| !c.name.starts_with("documents-"))
                .map(|c| c.id)
                .collect(),
        };
        let mut lines: BTreeMap<String, Option<u64>> = BTreeMap::new();
        for c in collections {
            for item in memory.list_items(cx, c).await? {
                lines.insert(item.source.clone(), item.metadata["lines"].as_u64());
            }
        }
        let (mut valid, mut invalid) = (Vec::new(), Vec::new());
        for c in citations_in(text) {
            let ok = match lines.get(&c.source) {
                Some(Some(n)) => {
                    c.start_line >= 1 && c.start_line <= c.end_line && u64::from(c.end_line) <= *n
                }
                Some(None) => true,
                None => false,
            };
            if ok {
                valid.push(c);
            } else {
                invalid.push(c.to_string());
            }
        }
        valid.sort();
        valid.dedup();
        invalid.sort();
        invalid.dedup();
        Ok((valid, invalid))
    }

    async fn check(&self, ctx: NodeContext) -> Result<Command, NodeError> {
        let (cx, _) = scope(&ctx)?;
        let collection = ctx.state["collection_id"]
            .as_str()
            .and_then(|s| s.parse().ok());
        let draft = ctx.state["draft"].as_str().unwrap_or_default().to_owned();
        let (valid, invalid) = self
            .invalid_citations(cx, collection, &draft)
            .await
            .map_err(fail)?;
        let by_model = ctx.state["generated_by"]["kind"] == "model";
        let attempts = ctx.state["attempts"].as_u64().unwrap_or(1);
        // A model's draft must also have the layout (the extractive one always has).
        let missing: Vec<&str> = if by_model {
            LAYOUT
                .iter()
                .copied()
                .filter(|h| !draft.contains(&format!("{h}\n")))
                .collect()
        } else {
            Vec::new()
        };
        ctx.custom(json!({"step": "check", "valid": valid.len(), "invalid": invalid, "missing_sections": missing}));
        if (!invalid.is_empty() || !missing.is_empty()) && by_model && attempts <= MAX_REWRITES {
            return Ok(update(vec![(
                "check",
                json!({"invalid": invalid, "missing": missing, "rewrite": true}),
            )]));
        }
        // Out of rewrites: the invalid references go, and missing sections are added empty.
        let mut cleaned = draft;
        if !cleaned.starts_with("# ") {
            cleaned = format!("# {}\n\n{cleaned}", question(&ctx.state)?);
        }
        for h in &missing {
            cleaned = format!(
                "{}\n\n{h}\n\nThe sources retrieved for this question do not cover it.\n",
                cleaned.trim_end()
            );
        }
        for bad in &invalid {
            cleaned = cleaned
                .replace(&format!(" [{bad}]"), "")
                .replace(&format!("[{bad}]"), "")
                .replace(&format!("`{bad}`"), "(reference removed)");
        }
        Ok(update(vec![
            ("draft", json!(cleaned)),
            (
                "citations",
                json!(valid.iter().map(ToString::to_string).collect::<Vec<_>>()),
            ),
            (
                "check",
                json!({"invalid": [], "removed": invalid, "rewrite": false}),
            ),
            ("needs_approval", json!(needs_approval(&ctx))),
        ]))
    }

    async fn publish(&self, ctx: NodeContext) -> Result<Command, NodeError> {
        let (cx, task) = scope(&ctx)?;
        let q = question(&ctx.state)?;
        let project = project(&ctx.state)?;
        let task_id = ctx.state["task_id"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| task.map(|t| t.to_string()))
            .unwrap_or_default();
        let usage = TokenUsage {
            prompt_tokens: ctx.state["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
            completion_tokens: ctx.state["usage"]["completion_tokens"]
                .as_u64()
                .unwrap_or(0),
        };
        let generated = &ctx.state["generated_by"];
        let model_name = generated["model"].as_str();
        let cost = model_name.and_then(|m| self.models.cost_usd(m, usage));
        let collection = ctx.state["collections"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("none");
        let citations = strings(&ctx.state["citations"]);
        let metadata = json!({
            "task_id": task_id,
            "trace_id": ctx.state["trace_id"],
            "generated_by": match model_name {
                Some(m) => json!({"agent": "documentation", "model": m, "provider": generated["provider"]}),
                None => json!({"agent": "documentation", "model": "extractive"}),
            },
            "collection": collection,
            "sources": citations,
            "tokens": {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens, "total": usage.total()},
            "cost_usd": cost,
            "removed_citations": ctx.state["check"]["removed"],
        });
        let text = format!(
            "{}\n\n{}",
            ctx.state["draft"].as_str().unwrap_or_default().trim_end(),
            metadata_block(&metadata)
        );
        let author = Author::Agent {
            agent: "documentation".into(),
            task_id: task_id.clone(),
        };
        let slug = crate::documents::slugify(&q);
        let existing = self
            .documents
            .by_slug(cx, project, &slug)
            .await
            .map_err(fail)?;
        let (doc, version) = match existing {
            Some(d) => {
                let edit = Edit {
                    title: Some(q.clone()),
                    text,
                    author,
                    metadata: metadata.clone(),
                };
                self.documents
                    .save(cx, d.id, d.latest_version, edit)
                    .await
                    .map_err(fail)?
            }
            None => {
                let new = NewDocument {
                    project_id: project,
                    slug: Some(slug),
                    title: q.clone(),
                    kind: DocKind::Faq,
                    tags: vec!["generated".into()],
                    text,
                    author,
                    metadata: metadata.clone(),
                };
                self.documents.create(cx, new).await.map_err(fail)?
            }
        };
        // This version, not whatever is latest by now (a person's unreviewed edit).
        let doc = self
            .documents
            .publish(cx, doc.id, Some(version.n))
            .await
            .map_err(fail)?;
        ctx.custom(
            json!({"step": "publish", "document_id": doc.id, "version": doc.published_version}),
        );
        Ok(update(vec![
            (
                "document",
                json!({"id": doc.id, "version": doc.published_version, "slug": doc.slug, "reused": false}),
            ),
            ("metadata", metadata),
            ("status", json!("published")),
        ]))
    }
}

/// The sections every document has, in order, after its `# ` title.
pub const LAYOUT: &[&str] = &[
    "## Overview",
    "## Key components",
    "## Code examples",
    "## Related documentation",
    "## Troubleshooting",
];

const WRITER_PROMPT: &str = "You write documentation about a code base using ONLY the numbered sources given. \
Write markdown with exactly these sections: '# <the question as title>', '## Overview', '## Key components' (one '### ' subsection per component), \
'## Code examples' (code copied from the sources, never invented), '## Related documentation', '## Troubleshooting'. \
Cite every claim with the source label in square brackets, for example [src/lib.rs:10-24]. \
Never cite a label that is not listed and never invent file paths; if the sources do not say, write that they do not.";

/// `[path:1-20]` and `` `path:1-20` `` references in a text.
pub fn citations_in(text: &str) -> Vec<Citation> {
    let mut out = Vec::new();
    for (open, close) in [('[', ']'), ('`', '`')] {
        let mut rest = text;
        while let Some(i) = rest.find(open) {
            let after = &rest[i + 1..];
            let Some(j) = after.find(close) else { break };
            if let Some(c) = parse_citation(&after[..j]) {
                out.push(c);
            }
            rest = &after[j + 1..];
        }
    }
    out
}

fn parse_citation(s: &str) -> Option<Citation> {
    let (source, range) = s.rsplit_once(':')?;
    let (a, b) = range.split_once('-').unwrap_or((range, range));
    let (start_line, end_line) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    let plausible =
        !source.is_empty() && !source.contains(char::is_whitespace) && source.contains(['.', '/']);
    plausible.then(|| Citation {
        source: source.to_owned(),
        start_line,
        end_line,
    })
}

fn metadata_block(m: &Value) -> String {
    let sources = m["sources"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "none".into());
    let by = match m["generated_by"]["model"].as_str() {
        Some("extractive") | None => {
            "documentation agent, extractive (no language model)".to_owned()
        }
        Some(model) => format!("documentation agent, model {model}"),
    };
    let cost = m["cost_usd"]
        .as_f64()
        .map(|c| format!("${c:.6}"))
        .unwrap_or_else(|| "not priced".into());
    format!(
        "---\n\n## Metadata\n\n- Task: `{}`\n- Trace: `{}`\n- Generated by: {by}\n- Collection: {}\n- Sources cited: {sources}\n- Tokens: {} (prompt {}, completion {})\n- Cost: {cost}\n",
        m["task_id"].as_str().unwrap_or(""),
        m["trace_id"].as_str().unwrap_or(""),
        m["collection"].as_str().unwrap_or(""),
        m["tokens"]["total"],
        m["tokens"]["prompt"],
        m["tokens"]["completion"],
    )
}

/// Words of passages that belong under Troubleshooting.
const TROUBLE: &[&str] = &["error", "panic", "fail", "troubleshoot", "warning"];

/// The document in the agent's layout, made of quoted passages (the offline provider).
pub fn extractive_document(question: &str, hits: &[ChunkHit]) -> String {
    let answer = extractive(question, hits, 4_000);
    debug_assert_eq!(answer.generated_by, GeneratedBy::Extractive);
    let cite = Citation::of;
    let mut doc = format!("# {question}\n\n");
    doc.push_str("## Overview\n\n");
    if hits.is_empty() {
        doc.push_str("The indexed sources hold nothing that matches this question.\n\n");
    } else {
        let files: BTreeSet<&str> = hits.iter().map(|h| h.source.as_str()).collect();
        doc.push_str(&format!(
            "This is an extractive document: the passages below are quoted from the {} indexed files that best match the question; no language model wrote or checked it.\n\n",
            files.len()
        ));
        if let Some(best) = answer.citations.first() {
            doc.push_str(&format!("The closest match is `{best}`.\n\n"));
        }
    }
    doc.push_str("## Key components\n\n");
    let mut seen = BTreeSet::new();
    for h in hits
        .iter()
        .filter(|h| seen.insert(h.source.clone()))
        .take(5)
    {
        let name = h.heading.clone().unwrap_or_else(|| h.source.clone());
        doc.push_str(&format!(
            "### {name}\n\nIn `{}` [{}]:\n\n",
            h.source,
            cite(h)
        ));
        let excerpt: String = h.text.lines().take(12).collect::<Vec<_>>().join("\n");
        if !is_prose(h) {
            doc.push_str(&format!(
                "```{}\n{excerpt}\n```\n\n",
                h.language.as_deref().unwrap_or("")
            ));
        } else {
            for line in excerpt.lines() {
                doc.push_str(&format!("> {line}\n"));
            }
            doc.push('\n');
        }
    }
    if hits.is_empty() {
        doc.push_str("None found.\n\n");
    }
    doc.push_str("## Code examples\n\n");
    match hits.iter().find(|h| !is_prose(h)) {
        Some(h) => doc.push_str(&format!(
            "From `{}` [{}]:\n\n```{}\n{}\n```\n\n",
            h.source,
            cite(h),
            h.language.as_deref().unwrap_or(""),
            h.text
        )),
        None => doc.push_str("No code among the matching passages.\n\n"),
    }
    doc.push_str("## Related documentation\n\n");
    let docs: Vec<&ChunkHit> = hits.iter().filter(|h| is_prose(h)).collect();
    if docs.is_empty() {
        doc.push_str("No documentation files among the matching passages.\n\n");
    }
    for h in docs {
        let what = h.heading.as_deref().unwrap_or("");
        doc.push_str(&format!("- `{}` {what} [{}]\n", h.source, cite(h)));
    }
    doc.push_str("\n## Troubleshooting\n\n");
    let trouble: Vec<&ChunkHit> = hits
        .iter()
        .filter(|h| {
            let t = h.text.to_lowercase();
            TROUBLE.iter().any(|w| t.contains(w))
        })
        .take(3)
        .collect();
    if trouble.is_empty() {
        doc.push_str("The matching passages mention no errors or failure modes.\n");
    }
    for h in trouble {
        let line = h
            .text
            .lines()
            .find(|l| {
                let l = l.to_lowercase();
                TROUBLE.iter().any(|w| l.contains(w))
            })
            .unwrap_or("")
            .trim();
        doc.push_str(&format!(
            "- `{}` [{}]: `{}`\n",
            h.source,
            cite(h),
            line.replace('`', "'")
        ));
    }
    doc
}

/// The `faq` graph.
pub fn graph(deps: Arc<AgentDeps>) -> Graph {
    let node = |f: fn(
        Arc<AgentDeps>,
        NodeContext,
    )
        -> futures_util::future::BoxFuture<'static, Result<Command, NodeError>>| {
        let deps = deps.clone();
        NodeFn(move |ctx: NodeContext| f(deps.clone(), ctx))
    };
    Graph::builder()
        .channel("question", Reducer::LastValue)
        .channel("project_id", Reducer::LastValue)
        .channel("collection_id", Reducer::LastValue)
        .channel("regenerate", Reducer::LastValue)
        .channel("require_approval", Reducer::LastValue)
        .channel("task_id", Reducer::LastValue)
        .channel("trace_id", Reducer::LastValue)
        .channel("existing", Reducer::LastValue)
        .channel("hits", Reducer::LastValue)
        .channel("collections", Reducer::LastValue)
        .channel("needs_approval", Reducer::LastValue)
        .channel("assistant_id", Reducer::LastValue)
        .channel("draft", Reducer::LastValue)
        .channel("generated_by", Reducer::LastValue)
        .channel("usage", Reducer::LastValue)
        .channel("attempts", Reducer::LastValue)
        .channel("check", Reducer::LastValue)
        .channel("citations", Reducer::LastValue)
        .channel("decision", Reducer::LastValue)
        .channel("document", Reducer::LastValue)
        .channel("metadata", Reducer::LastValue)
        .channel("status", Reducer::LastValue)
        .node(
            "lookup",
            node(|d, c| Box::pin(async move { d.lookup(c).await })),
        )
        .node(
            "retrieve",
            node(|d, c| Box::pin(async move { d.retrieve(c).await })),
        )
        .node(
            "write",
            node(|d, c| Box::pin(async move { d.write(c).await })),
        )
        .node(
            "check",
            node(|d, c| Box::pin(async move { d.check(c).await })),
        )
        .node(
            "review",
            NodeFn(|ctx: NodeContext| async move {
                let decision = ctx.interrupt(json!({
                    "min_role": assistant_of(&ctx).approver_role,
                    "question": "Publish this document?",
                    "title": ctx.state["question"],
                    "draft": ctx.state["draft"],
                    "citations": ctx.state["citations"],
                }))?;
                Ok(update(vec![("decision", decision)]))
            }),
        )
        .node(
            "publish",
            node(|d, c| Box::pin(async move { d.publish(c).await })),
        )
        .node(
            "discard",
            NodeFn(|_| async { Ok(update(vec![("status", json!("rejected"))])) }),
        )
        .edge(START, "lookup")
        .conditional_edge(
            "lookup",
            Arc::new(|s| {
                vec![if s["existing"].is_null() {
                    Target::node("retrieve")
                } else {
                    Target::node(END)
                }]
            }),
            &["retrieve", END],
        )
        .edge("retrieve", "write")
        .edge("write", "check")
        .conditional_edge(
            "check",
            Arc::new(|s| {
                vec![Target::node(if s["check"]["rewrite"] == json!(true) {
                    "write"
                } else if s["needs_approval"] == json!(true) {
                    "review"
                } else {
                    "publish"
                })]
            }),
            &["write", "review", "publish"],
        )
        .conditional_edge(
            "review",
            Arc::new(|s| {
                let yes = s["decision"]
                    .get("approved")
                    .and_then(Value::as_bool)
                    .unwrap_or_else(|| s["decision"] == json!("yes"));
                vec![Target::node(if yes { "publish" } else { "discard" })]
            }),
            &["publish", "discard"],
        )
        .edge("publish", END)
        .edge("discard", END)
        .compile()
        .expect("faq graph")
}

/// Checks a `faq` task's input when it is submitted.
pub fn validate(input: &Value) -> Result<(), String> {
    match input.get("question").and_then(Value::as_str).map(str::trim) {
        Some(q) if !q.is_empty() && q.chars().count() <= 500 => {}
        _ => return Err("faq needs a question of 1–500 characters".into()),
    }
    check_ids(input, "faq")
}

/// The input fields the agents share: `project_id` (required) and `collection_id` as
/// UUIDs, `regenerate` and `require_approval` as booleans.
pub fn check_ids(input: &Value, kind: &str) -> Result<(), String> {
    let uuid = |field: &str, required: bool| match input.get(field) {
        None | Some(Value::Null) if !required => Ok(()),
        Some(Value::String(s)) if s.parse::<uuid::Uuid>().is_ok() => Ok(()),
        _ => Err(format!("{kind} needs {field} as a UUID")),
    };
    uuid("project_id", true)?;
    uuid("collection_id", false)?;
    uuid("assistant_id", false)?;
    for flag in ["regenerate", "require_approval"] {
        if !matches!(input.get(flag), None | Some(Value::Null | Value::Bool(_))) {
            return Err(format!("{flag} must be true or false"));
        }
    }
    Ok(())
}

/// Task kinds `faq` and `codegen`: an agent's graph as a LangGraph run of its own (the
/// thread and run ids are the task's id), so its state, history and approvals are the
/// LangGraph API's; a re-delivered job continues from the run's last checkpoint. The
/// result is the run's final values.
pub struct AgentTask {
    pub runs: crate::langgraph::runs::GraphRuns,
    pub graph: &'static str,
}

#[async_trait::async_trait]
impl morningai_worker::Handler for AgentTask {
    async fn run(
        &self,
        ctx: morningai_worker::JobContext,
    ) -> Result<Value, morningai_worker::JobError> {
        use crate::langgraph::runs::{RUN, THREAD, doc, save};
        use morningai_worker::JobError;
        let cx = TenantCtx::new(ctx.tenant_id);
        let store = self.runs.store.as_ref();
        let id = ctx.task_id.0;
        let retry = |e: Error| JobError::retryable(e.to_string());
        if store
            .get_object(cx, RUN, id)
            .await
            .map_err(retry)?
            .is_none()
        {
            let task = store.task(cx, ctx.task_id).await.map_err(retry)?;
            let mut input = ctx.input.clone();
            input["task_id"] = json!(ctx.task_id);
            input["trace_id"] = json!(task.trace_id);
            let now = morningai_core::now();
            // A tenant assistant of this graph configures the run; else the built-in one.
            let assistant = match ctx.input["assistant_id"]
                .as_str()
                .and_then(|s| s.parse().ok())
            {
                Some(aid) => {
                    let a = crate::assistants::get(store, cx, aid)
                        .await
                        .map_err(|e| match e {
                            Error::NotFound(_) => JobError::fatal("the assistant does not exist"),
                            e => retry(e),
                        })?;
                    if a.graph_id != self.graph {
                        return Err(JobError::fatal(format!(
                            "assistant {aid} configures {}, not {}",
                            a.graph_id, self.graph
                        )));
                    }
                    aid
                }
                None => crate::langgraph::catalog::assistant_id(self.graph),
            };
            let thread = json!({"thread_id": id, "created_at": now, "updated_at": now, "status": "idle", "values": {}, "interrupts": {},
                                "metadata": {"graph_id": self.graph, "assistant_id": assistant, "task_id": ctx.task_id}});
            save(store, cx, doc(THREAD, id, None, "idle", thread))
                .await
                .map_err(retry)?;
            let run = json!({"run_id": id, "thread_id": id, "assistant_id": assistant, "graph_id": self.graph, "created_at": now, "updated_at": now,
                             "status": "pending", "metadata": {}, "kwargs": {"input": input, "config": {}}, "multitask_strategy": "reject",
                             "task_id": ctx.task_id, "created_by": task.created_by});
            save(store, cx, doc(RUN, id, Some(id), "pending", run))
                .await
                .map_err(retry)?;
        }
        let out = self.runs.execute(&ctx, id).await?;
        let thread = store
            .get_object(cx, THREAD, id)
            .await
            .map_err(retry)?
            .ok_or_else(|| JobError::fatal("the run's thread is gone"))?;
        let mut result = json!({
            "thread_id": id,
            "run_id": id,
            "run_status": out["status"],
            "interrupts": thread.body["interrupts"],
        });
        let keep = [
            "status",
            "document",
            "metadata",
            "diff",
            "plan",
            "explanation",
            "files",
            "model",
        ];
        for key in keep {
            if let Some(v) = thread.body["values"].get(key) {
                result[key] = v.clone();
            }
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_are_found_in_brackets_and_backticks() {
        let c = citations_in(
            "Leases [src/queue.rs:10-24] and `docs/q.md:3-4`, not [1] or [see: 2-3] or `a:b`.",
        );
        let s: Vec<String> = c.iter().map(ToString::to_string).collect();
        assert_eq!(s, ["src/queue.rs:10-24", "docs/q.md:3-4"]);
        assert_eq!(citations_in("[lib.rs:7]")[0].end_line, 7);
    }
}
