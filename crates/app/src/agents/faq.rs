//! The documentation agent (graph `faq`, task kind `faq`): look for a published document
//! that already answers the question; else retrieve from the tenant's memory, write the
//! document (with the configured chat model, or extractively), check that every cited path
//! and line range exists in the indexed sources (a model's draft is rewritten once with the
//! invalid citations named, then they are removed), optionally wait for a human, and publish
//! it as a new version. Every document has the same layout and ends with a metadata block.

use super::render::{LAYOUT, citations_in, extractive_document, metadata_block};
use super::{
    AgentDeps, assistant_of, check_ids, fail, needs_approval, scope, strings, system_prompt, update,
};
use crate::documents::{Author, DocKind, Edit, NewDocument};
use morningai_agents::answer::{Citation, numbered_sources};
use morningai_core::ai::{ChatMessage, ChatRequest, TokenUsage, cosine};
use morningai_core::memory::{ChunkHit, query_terms};
use morningai_core::{CollectionId, Error, ProjectId, TenantCtx};
use morningai_graph::{
    Command, END, Graph, NodeContext, NodeError, NodeFn, Reducer, START, Target,
};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Model drafts rewritten at most this many times after a failed citation check.
const MAX_REWRITES: u64 = 1;

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
            let v = self.retriever.embed_now(e.as_ref(), &texts).await?;
            return Ok(titles
                .iter()
                .zip(&v[1..])
                .find(|(_, t)| cosine(&v[0], t) >= 0.9)
                .map(|(title, _)| *title));
        }
        let words = |t: &str| query_terms(t).into_iter().collect::<BTreeSet<_>>();
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
        let q = question(&ctx.state)?;
        let hits: Vec<ChunkHit> =
            serde_json::from_value(ctx.state["hits"].clone()).unwrap_or_default();
        let attempts = ctx.state["attempts"].as_u64().unwrap_or(0) + 1;
        let cfg = assistant_of(&ctx);
        let Some(model) = self.model(&ctx).await? else {
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

const WRITER_PROMPT: &str = "You write documentation about a code base using ONLY the numbered sources given. \
Write markdown with exactly these sections: '# <the question as title>', '## Overview', '## Key components' (one '### ' subsection per component), \
'## Code examples' (code copied from the sources, never invented), '## Related documentation', '## Troubleshooting'. \
Cite every claim with the source label in square brackets, for example [src/lib.rs:10-24]. \
Never cite a label that is not listed and never invent file paths; if the sources do not say, write that they do not.";

/// The `faq` graph.
pub fn graph(deps: Arc<AgentDeps>) -> Graph {
    // Each node reports its wall time as a `custom` event ({"timing": node, "ms": …}), so
    // a task's events say where its seconds went.
    let node = |f: fn(
        Arc<AgentDeps>,
        NodeContext,
    )
        -> futures_util::future::BoxFuture<'static, Result<Command, NodeError>>| {
        let deps = deps.clone();
        NodeFn(move |ctx: NodeContext| {
            let work = f(deps.clone(), ctx.clone());
            async move {
                let started = std::time::Instant::now();
                let out = work.await;
                let ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
                ctx.custom(json!({"timing": ctx.node, "ms": ms}));
                out
            }
        })
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
                let next = if crate::graphs::catalog::approved(&s["decision"]) {
                    "publish"
                } else {
                    "discard"
                };
                vec![Target::node(next)]
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
