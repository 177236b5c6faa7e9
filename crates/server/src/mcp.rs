//! The MCP server at `/mcp` (Streamable HTTP, on the official Rust SDK `rmcp`), stateless:
//! every request carries the tenant's API key (`Authorization: Bearer`), checked before the
//! SDK reads the body, and any `serve` process behind a load balancer answers any request.
//! Tools call the application's use cases as the caller, so roles apply as on the REST API;
//! a use case's refusal is a tool result with `isError` and the reason, never a transport
//! failure. Published documents are resources `morningai://documents/{project}/{slug}`.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use morningai_app::Application;
use morningai_app::agents::render::citations_in;
use morningai_app::auth::Principal;
use morningai_app::documents::DocStatus;
use morningai_app::graphs::records::ApprovalStatus;
use morningai_app::memory::SearchRequest;
use morningai_app::tasks::CreateTask;
use morningai_app::trace::{current_trace_id, with_trace_id};
use morningai_core::entities::{Task, TaskStatus};
use morningai_core::memory::SearchMode;
use morningai_core::{CollectionId, Error, ProjectId, TaskId};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long `ask` and `codegen` wait for their task before answering with its id.
const AGENT_WAIT: Duration = Duration::from_secs(300);
const RESOURCE_PREFIX: &str = "morningai://documents/";

/// Who is calling and under which trace, as the authenticating layer found them.
#[derive(Clone)]
struct McpCaller {
    who: Principal,
    trace_id: String,
}

/// `/mcp`: the SDK's service behind the API's authentication.
pub fn router(state: AppState) -> axum::Router<AppState> {
    let app = state.app.clone();
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        // Every request carries a key a browser page cannot forge: a rebinding page gains
        // nothing, and deployments are reached under their own names.
        .disable_allowed_hosts()
        .with_max_request_body_bytes(state.config.body_limit_bytes);
    let service = StreamableHttpService::new(
        move || Ok(Mcp { app: app.clone() }),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    axum::Router::new()
        .route_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(state, authenticate))
}

async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    match Caller::from_request_parts(&mut parts, &state).await {
        Ok(Caller(who)) => {
            parts.extensions.insert(McpCaller {
                who,
                trace_id: current_trace_id(),
            });
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) => e.into_response(),
    }
}

struct Mcp {
    app: Arc<Application>,
}

fn caller(ctx: &RequestContext<RoleServer>) -> Result<McpCaller, McpError> {
    ctx.extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.extensions.get::<McpCaller>())
        .cloned()
        .ok_or_else(|| McpError::internal_error("the request was not authenticated", None))
}

fn tool(name: &'static str, description: &'static str, schema: Value) -> Tool {
    let Value::Object(schema) = schema else {
        unreachable!("tool schemas are objects")
    };
    Tool::new(name, description, Arc::new(schema))
}

fn uuid_prop(what: &str) -> Value {
    json!({"type": "string", "format": "uuid", "description": what})
}

fn tools() -> Vec<Tool> {
    vec![
        tool(
            "search_memory",
            "Search the tenant's vector memory (hybrid lexical + dense by default); passages come with citations `source:start-end`.",
            json!({"type": "object", "required": ["query"], "additionalProperties": false, "properties": {
                "query": {"type": "string", "minLength": 1, "maxLength": 2000},
                "collection": uuid_prop("only this collection"),
                "mode": {"type": "string", "enum": ["hybrid", "lexical", "dense"]},
                "k": {"type": "integer", "minimum": 1, "maximum": 50, "description": "passages to return (default 8)"}}}),
        ),
        tool(
            "ask",
            "Run the documentation agent on a question about a project's indexed sources; returns the published document with its citations. Sends progress notifications while it works.",
            json!({"type": "object", "required": ["question", "project"], "additionalProperties": false, "properties": {
                "question": {"type": "string", "minLength": 1, "maxLength": 500},
                "project": uuid_prop("the project the document belongs to"),
                "assistant_id": uuid_prop("an assistant configuring the agent")}}),
        ),
        tool(
            "get_task",
            "A task: its status, result, error and trace id.",
            json!({"type": "object", "required": ["task_id"], "additionalProperties": false,
                   "properties": {"task_id": uuid_prop("the task")}}),
        ),
        tool(
            "list_documents",
            "The tenant's documents, newest first (at most 1000), optionally of one project and status.",
            json!({"type": "object", "additionalProperties": false, "properties": {
                "project": uuid_prop("only this project"),
                "status": {"type": "string", "enum": ["draft", "published", "archived"]}}}),
        ),
        tool(
            "get_document",
            "A document's version (the latest unless `version` is given), as markdown with its citations.",
            json!({"type": "object", "required": ["document_id"], "additionalProperties": false, "properties": {
                "document_id": uuid_prop("the document"),
                "version": {"type": "integer", "minimum": 1}}}),
        ),
        tool(
            "codegen",
            "Run the code generation agent: a unified diff against the indexed tree at `path` that applies cleanly. Needs the tenant's chat model.",
            json!({"type": "object", "required": ["request", "project", "path"], "additionalProperties": false, "properties": {
                "request": {"type": "string", "minLength": 1, "maxLength": 4000},
                "project": uuid_prop("the project"),
                "path": {"type": "string", "description": "the indexed tree's directory on the server"}}}),
        ),
        tool(
            "list_approvals",
            "The tenant's approvals (at most 500), newest first, optionally by status.",
            json!({"type": "object", "additionalProperties": false, "properties": {
                "status": {"type": "string", "enum": ["pending", "approved", "rejected", "expired"]}}}),
        ),
        tool(
            "decide_approval",
            "Approve or reject a pending approval (for the roles the agent's policy allows) and resume its run.",
            json!({"type": "object", "required": ["approval_id", "approved"], "additionalProperties": false, "properties": {
                "approval_id": uuid_prop("the approval"),
                "approved": {"type": "boolean"},
                "comment": {"type": "string", "maxLength": 2000}}}),
        ),
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    collection: Option<CollectionId>,
    mode: Option<SearchMode>,
    k: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskArgs {
    question: String,
    project: ProjectId,
    assistant_id: Option<Uuid>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskArgs {
    task_id: TaskId,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListDocumentsArgs {
    project: Option<ProjectId>,
    status: Option<DocStatus>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentArgs {
    document_id: Uuid,
    version: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodegenArgs {
    request: String,
    project: ProjectId,
    path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalsArgs {
    status: Option<ApprovalStatus>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideArgs {
    approval_id: Uuid,
    approved: bool,
    comment: Option<String>,
}

/// What a tool could not do, as the caller will read it.
struct ToolError(String);

impl From<Error> for ToolError {
    fn from(e: Error) -> Self {
        let e = ApiError::from(e);
        ToolError(format!("{} ({})", e.detail, e.code))
    }
}

type ToolResult = Result<CallToolResult, ToolError>;

/// A tool's arguments as `T`, by the API's rules for JSON bodies (U+0000 and integers past
/// 2^63 - 1 refused on every backend, the offending field named).
fn args<T: DeserializeOwned>(raw: Option<Map<String, Value>>) -> Result<T, ToolError> {
    let bytes = serde_json::to_vec(&raw.unwrap_or_default())
        .map_err(|e| ToolError(format!("invalid arguments: {e}")))?;
    crate::extract::parse_json(&bytes)
        .map_err(|e| ToolError(format!("invalid arguments: {}", e.detail)))
}

/// A result with `value` both as structured content and as its JSON text.
fn structured(value: Value) -> CallToolResult {
    let text = serde_json::to_string_pretty(&value).unwrap_or_default();
    let mut r = CallToolResult::structured(value);
    r.content = vec![ContentBlock::text(text)];
    r
}

/// The citations a document's markdown makes, as `source:start-end`.
fn cited(text: &str) -> Vec<String> {
    citations_in(text).iter().map(ToString::to_string).collect()
}

fn json_of(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

impl Mcp {
    async fn dispatch(
        &self,
        name: &str,
        raw: Option<Map<String, Value>>,
        c: &McpCaller,
        ctx: &RequestContext<RoleServer>,
    ) -> ToolResult {
        let (app, who) = (&self.app, &c.who);
        match name {
            "search_memory" => {
                let a: SearchArgs = args(raw)?;
                let req = SearchRequest {
                    query: a.query,
                    collection: a.collection,
                    k: a.k,
                    filter: None,
                    mode: a.mode.unwrap_or_default(),
                };
                Ok(structured(json_of(&app.search(who, &req).await?)))
            }
            "ask" => {
                let a: AskArgs = args(raw)?;
                let input = json!({"question": a.question, "project_id": a.project, "assistant_id": a.assistant_id});
                let task = self.run_agent(who, "faq", input, a.project, ctx).await?;
                self.agent_result(who, task).await
            }
            "codegen" => {
                let a: CodegenArgs = args(raw)?;
                let input = json!({"request": a.request, "project_id": a.project, "path": a.path});
                let task = self
                    .run_agent(who, "codegen", input, a.project, ctx)
                    .await?;
                self.agent_result(who, task).await
            }
            "get_task" => {
                let a: TaskArgs = args(raw)?;
                Ok(structured(json_of(
                    &app.store.task(who.cx(), a.task_id).await?,
                )))
            }
            "list_documents" => {
                let a: ListDocumentsArgs = args(raw)?;
                let docs = app.documents.list(who.cx(), a.project, a.status).await?;
                Ok(structured(json!({"documents": docs})))
            }
            "get_document" => {
                let a: DocumentArgs = args(raw)?;
                let doc = app.documents.get(who.cx(), a.document_id).await?;
                let n = a.version.unwrap_or(doc.latest_version);
                let v = app
                    .documents
                    .named_version(who.cx(), &doc, "version", n)
                    .await?;
                let mut r =
                    structured(json!({"document": doc, "version": v, "citations": cited(&v.text)}));
                r.content = vec![ContentBlock::text(v.text)];
                Ok(r)
            }
            "list_approvals" => {
                let a: ApprovalsArgs = args(raw)?;
                let approvals = app.graphs.approvals(who.cx(), a.status).await?;
                Ok(structured(json!({"approvals": approvals})))
            }
            "decide_approval" => {
                let a: DecideArgs = args(raw)?;
                let d = app
                    .graphs
                    .decide(who, a.approval_id, a.approved, a.comment)
                    .await?;
                Ok(structured(json_of(&d)))
            }
            other => Err(ToolError(format!("there is no tool named {other}"))),
        }
    }

    /// Runs an agent task, relaying its events as progress notifications when the client
    /// asked for them; every notification is sent before the result.
    async fn run_agent(
        &self,
        who: &Principal,
        kind: &str,
        input: Value,
        project: ProjectId,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<Task, ToolError> {
        let req = CreateTask {
            kind: kind.into(),
            input,
            project_id: Some(project),
            priority: None,
            idempotency_key: None,
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let relay = ctx.meta.get_progress_token().map(|token| {
            let peer = ctx.peer.clone();
            tokio::spawn(async move {
                let mut n = 0.0;
                while let Some(message) = rx.recv().await {
                    n += 1.0;
                    let note =
                        ProgressNotificationParam::new(token.clone(), n).with_message(message);
                    if peer.notify_progress(note).await.is_err() {
                        return;
                    }
                }
            })
        });
        let task = self
            .app
            .run_task(who, req, AGENT_WAIT, |e| {
                let step = e.data["step"].as_str().or(e.data["node"].as_str());
                let message = match step {
                    Some(s) => format!("{}: {s}", e.kind.as_str()),
                    None => e.kind.as_str().to_owned(),
                };
                let _ = tx.send(message);
            })
            .await;
        drop(tx);
        if let Some(relay) = relay {
            let _ = relay.await;
        }
        Ok(task?)
    }

    /// An agent task's outcome: its document (or diff) with citations, or why it has none.
    async fn agent_result(&self, who: &Principal, task: Task) -> ToolResult {
        let summary = json!({"task_id": task.id, "status": task.status, "trace_id": task.trace_id,
                             "result": task.result, "error": task.error});
        match task.status {
            TaskStatus::Succeeded => {}
            TaskStatus::Failed | TaskStatus::Cancelled => {
                return Err(ToolError(format!(
                    "task {} {}: {}",
                    task.id,
                    task.status.as_str(),
                    task.error.as_deref().unwrap_or("no reason given")
                )));
            }
            // Still going after the wait: the caller follows it with get_task.
            _ => return Ok(structured(summary)),
        }
        let result = task.result.clone().unwrap_or_default();
        let document = &result["document"];
        let (Some(id), Some(n)) = (
            document["id"].as_str().and_then(|s| s.parse().ok()),
            document["version"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok()),
        ) else {
            // No document (codegen's diff, or an agent that stopped for approval).
            let text = result["diff"].as_str().map(str::to_owned);
            let mut r = structured(summary);
            if let Some(diff) = text {
                r.content = vec![ContentBlock::text(diff)];
            }
            return Ok(r);
        };
        let v = self.app.documents.version(who.cx(), id, n).await?;
        let mut s = summary;
        s["citations"] = json!(cited(&v.text));
        s["document_text"] = json!(v.text);
        let mut r = structured(s);
        r.content = vec![ContentBlock::text(v.text)];
        Ok(r)
    }

    async fn resources(&self, who: &Principal) -> Result<Vec<Resource>, Error> {
        let docs = self
            .app
            .documents
            .list(who.cx(), None, Some(DocStatus::Published))
            .await?;
        Ok(docs
            .into_iter()
            .map(|d| {
                Resource::new(
                    format!("{RESOURCE_PREFIX}{}/{}", d.project_id, d.slug),
                    d.slug.clone(),
                )
                .with_title(d.title)
                .with_mime_type("text/markdown")
            })
            .collect())
    }

    async fn read(&self, who: &Principal, uri: &str) -> Result<ReadResourceResult, McpError> {
        let not_found =
            || McpError::resource_not_found(format!("no published document at {uri}"), None);
        let (project, slug) = uri
            .strip_prefix(RESOURCE_PREFIX)
            .and_then(|rest| rest.split_once('/'))
            .ok_or_else(not_found)?;
        let project: ProjectId = project.parse().map_err(|_| not_found())?;
        let internal = |e: Error| McpError::internal_error(ApiError::from(e).detail, None);
        let doc = self
            .app
            .documents
            .by_slug(who.cx(), project, slug)
            .await
            .map_err(internal)?
            .ok_or_else(not_found)?;
        let n = doc.published_version.ok_or_else(not_found)?;
        let v = self
            .app
            .documents
            .version(who.cx(), doc.id, n)
            .await
            .map_err(internal)?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::TextResourceContents {
                uri: uri.to_owned(),
                mime_type: Some("text/markdown".into()),
                text: v.text,
                meta: None,
            },
        ]))
    }
}

impl ServerHandler for Mcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("morningai", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "MorningAI: search a tenant's memory, ask the documentation agent (cited documents), read documents, generate code, decide approvals.",
        )
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let c = caller(&ctx)?;
        let work = self.dispatch(&request.name, request.arguments, &c, &ctx);
        Ok(match with_trace_id(c.trace_id.clone(), work).await {
            Ok(r) => r.into(),
            Err(ToolError(message)) => {
                CallToolResult::error(vec![ContentBlock::text(message)]).into()
            }
        })
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let c = caller(&ctx)?;
        let resources = self
            .resources(&c.who)
            .await
            .map_err(|e| McpError::internal_error(ApiError::from(e).detail, None))?;
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let c = caller(&ctx)?;
        Ok(self.read(&c.who, &request.uri).await?.into())
    }
}
