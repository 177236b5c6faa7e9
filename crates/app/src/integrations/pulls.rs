//! Pull requests on GitHub: the change a `/morningai codegen …` comment asked for, and a
//! published document, each proposed in the connection's repository by a `github_pr` task.
//!
//! The task is queued by [`super::Followups`] where the work becomes final. Its GitHub calls are retry-safe: the branch and the pull request an earlier
//! attempt made are taken over. A codegen change is applied to the repository's files at
//! the base branch's tip (not to the server's checkout it was checked against): a change
//! that no longer applies there is said in a comment, and nothing is pushed.

use super::{GithubSettings, Integrations, Platform};
use crate::documents::Documents;
use crate::graphs::records::{Run, RunStatus, Thread};
use morningai_core::{Error, ProjectId, Store, TaskId, TenantCtx};
use morningai_platforms::github::{self, Proposal, Repo};
use morningai_platforms::{Attempt, Client, DeliveryFailed};
use morningai_worker::{Handler, JobContext, JobError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

pub const PR_KIND: &str = "github_pr";

/// What a pull request proposes.
#[derive(Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
enum PrInput {
    /// The change of codegen task `task` (its thread), as run `run` finished it.
    Codegen {
        integration: Uuid,
        task: Uuid,
        run: Uuid,
    },
    /// Version `version` of a published document.
    Document {
        integration: Uuid,
        document: Uuid,
        version: u32,
    },
}

fn pr_input(input: &Value) -> std::result::Result<PrInput, String> {
    PrInput::deserialize(input).map_err(|e| format!("github_pr: {e}"))
}

pub fn validate_pr(input: &Value) -> std::result::Result<(), String> {
    pr_input(input).map(|_| ())
}

/// The `github_pr` task.
pub struct PullTask {
    pub store: Arc<dyn Store>,
    pub integrations: Arc<Integrations>,
    pub documents: Arc<Documents>,
}

/// A platform's refusal or outage as a job's error: GitHub down is worth another attempt
/// (the calls are retry-safe), a refusal is not.
fn delivery_error(e: DeliveryFailed) -> JobError {
    let message = format!("GitHub: {e}");
    match e.status {
        None | Some(429 | 500..) if e.attempts > 0 => JobError::retryable(message),
        _ => JobError::fatal(message),
    }
}

fn store_error(e: Error) -> JobError {
    match e {
        Error::NotFound(what) => JobError::fatal(format!("the {what} is gone")),
        e => JobError::retryable(e.to_string()),
    }
}

/// The first line of `text`, at most `max` characters.
fn headline(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    let mut out: String = line.chars().take(max).collect();
    if line.chars().count() > max {
        out.push('…');
    }
    out
}

#[async_trait::async_trait]
impl Handler for PullTask {
    async fn run(&self, ctx: JobContext) -> std::result::Result<Value, JobError> {
        let input = pr_input(&ctx.input).map_err(JobError::fatal)?;
        let cx = TenantCtx::new(ctx.tenant_id);
        let integration = match &input {
            PrInput::Codegen { integration, .. } | PrInput::Document { integration, .. } => {
                *integration
            }
        };
        let (project, settings, token) = self
            .integrations
            .github(cx, integration)
            .await
            .map_err(store_error)?;
        let mut gh = GitHub {
            client: self.integrations.client(Platform::Github, &token),
            settings: &settings,
            attempts: Vec::new(),
        };
        let out = match input {
            PrInput::Codegen { task, run, .. } => self.codegen(cx, &mut gh, task, run).await,
            PrInput::Document {
                document, version, ..
            } => self.document(cx, &mut gh, project, document, version).await,
        };
        // What GitHub did not take at once: waits, outages, refusals.
        for a in gh.attempts.iter().filter(|a| a.outcome != "delivered") {
            ctx.progress(json!({"delivery": {
                "platform": "github", "attempt": a.number, "status": a.status, "outcome": a.outcome,
            }}))
            .await;
        }
        out
    }
}

/// The connection's repository at GitHub, and every call's attempts.
struct GitHub<'a> {
    client: Client<'a>,
    settings: &'a GithubSettings,
    attempts: Vec<Attempt>,
}

impl<'a> GitHub<'a> {
    fn repo(&self) -> std::result::Result<Repo<'a>, JobError> {
        Repo::new(self.client, &self.settings.repository).map_err(delivery_error)
    }

    /// The base branch and its tip.
    async fn base(&mut self) -> std::result::Result<(String, String), JobError> {
        let repo = self.repo()?;
        let mut log = |a: &Attempt| self.attempts.push(a.clone());
        let base = match &self.settings.base_branch {
            Some(b) => b.clone(),
            None => repo
                .default_branch(&mut log)
                .await
                .map_err(delivery_error)?,
        };
        let head = repo.head(&base, &mut log).await.map_err(delivery_error)?;
        Ok((base, head))
    }

    async fn file(
        &mut self,
        path: &str,
        at: &str,
    ) -> std::result::Result<Option<String>, JobError> {
        let repo = self.repo()?;
        repo.file(path, at, &mut |a| self.attempts.push(a.clone()))
            .await
            .map_err(delivery_error)
    }

    async fn propose(&mut self, p: &Proposal<'_>) -> std::result::Result<Value, JobError> {
        let repo = self.repo()?;
        repo.propose(p, &mut |a| self.attempts.push(a.clone()))
            .await
            .map_err(delivery_error)
    }

    async fn comment(&mut self, reply_to: &Value, text: &str) -> std::result::Result<(), JobError> {
        github::reply(&self.client, reply_to, text, &mut |a| {
            self.attempts.push(a.clone())
        })
        .await
        .map(|_| ())
        .map_err(delivery_error)
    }
}

impl PullTask {
    async fn codegen(
        &self,
        cx: TenantCtx,
        gh: &mut GitHub<'_>,
        task: Uuid,
        run: Uuid,
    ) -> std::result::Result<Value, JobError> {
        let store = &*self.store;
        let source = store.task(cx, TaskId(task)).await.map_err(store_error)?;
        let asked = &source.input["github"];
        let reply_to = json!({"repo": asked["repo"], "issue": asked["issue"]});
        if !asked["repo"]
            .as_str()
            .is_some_and(|r| r.eq_ignore_ascii_case(&gh.settings.repository))
        {
            return Err(JobError::fatal(
                "the connection now points at another repository than the one asked in",
            ));
        }
        let run = crate::graphs::get::<Run>(store, cx, run)
            .await
            .map_err(store_error)?
            .ok_or_else(|| JobError::fatal("the run is gone"))?;
        if !run.status.is_terminal() {
            return Err(JobError::retryable("the run is still finishing"));
        }
        let thread = crate::graphs::get::<Thread>(store, cx, task)
            .await
            .map_err(store_error)?
            .ok_or_else(|| JobError::fatal("the run's thread is gone"))?;
        let v = &thread.values;
        let see = self
            .integrations
            .task_link(TaskId(task))
            .map(|l| format!("\n\n[Open in MorningAI]({l})"))
            .unwrap_or_default();
        let refused = match (run.status, v["status"].as_str()) {
            (RunStatus::Success, Some("ready" | "approved")) => None,
            (RunStatus::Success, Some("rejected")) => Some((
                "rejected",
                format!(
                    "The change was rejected in MorningAI{}.",
                    v["decision"]["comment"]
                        .as_str()
                        .map(|c| format!(": {c}"))
                        .unwrap_or_default()
                ),
            )),
            _ => Some((
                "failed",
                format!(
                    "MorningAI could not make this change: {}",
                    run.error.as_deref().unwrap_or("the run ended without one")
                ),
            )),
        };
        let (base, head) = match refused {
            None => gh.base().await?,
            Some((outcome, why)) => {
                gh.comment(&reply_to, &format!("{why}{see}")).await?;
                return Ok(json!({"outcome": outcome, "reason": why}));
            }
        };
        let files = match self
            .applied(gh, v["diff"].as_str().unwrap_or(""), &head)
            .await?
        {
            Ok(files) => files,
            Err(why) => {
                gh.comment(&reply_to, &format!("{why}{see}")).await?;
                return Ok(json!({"outcome": "not_applicable", "reason": why}));
            }
        };
        let request = v["request"].as_str().unwrap_or("a change");
        let mut body = format!(
            "{}\n\nAsked in #{} with `/morningai codegen {}`.",
            v["explanation"].as_str().unwrap_or("").trim(),
            asked["issue"],
            headline(request, 200).replace('`', "'"),
        );
        if let Some(plan) = v["plan"].as_array().filter(|p| !p.is_empty()) {
            body.push_str("\n\n**Plan**\n");
            for step in plan.iter().filter_map(Value::as_str) {
                body.push_str(&format!("\n- {step}"));
            }
        }
        body.push_str(&see);
        let title = headline(request, 72);
        let branch = format!("morningai/codegen-{}", &task.simple().to_string()[..12]);
        let pull = gh
            .propose(&Proposal {
                base: &base,
                head_sha: &head,
                branch: &branch,
                message: &format!("{title}\n\nMorningAI codegen task {task}"),
                title: &title,
                body: &body,
                files: &files,
            })
            .await?;
        let url = pull["html_url"].as_str().unwrap_or_default();
        gh.comment(
            &reply_to,
            &format!("Proposed in {url} (branch `{branch}`).{see}"),
        )
        .await?;
        Ok(
            json!({"outcome": "opened", "pull_request": {"number": pull["number"], "html_url": url},
                  "branch": branch, "base": base, "files": files.iter().map(|(p, _)| p).collect::<Vec<_>>()}),
        )
    }

    /// The diff applied to the repository's files at `head`; Err(why) when it does not apply.
    async fn applied(
        &self,
        gh: &mut GitHub<'_>,
        diff: &str,
        head: &str,
    ) -> std::result::Result<std::result::Result<Vec<(String, String)>, String>, JobError> {
        let patches = match crate::agents::codegen::split_diff(diff) {
            Ok(p) => p,
            Err(e) => {
                return Ok(Err(format!(
                    "The change is not a diff GitHub can take: {e}"
                )));
            }
        };
        let mut files = Vec::new();
        for f in patches {
            let current = gh.file(&f.path, head).await?;
            match crate::agents::codegen::apply_patch(&f, current.as_deref()) {
                Ok(text) => files.push((f.path, text)),
                Err(e) => {
                    return Ok(Err(format!(
                        "The change no longer applies to the repository ({e}): index the repository again and ask once more."
                    )));
                }
            }
        }
        Ok(Ok(files))
    }

    async fn document(
        &self,
        cx: TenantCtx,
        gh: &mut GitHub<'_>,
        project: Option<ProjectId>,
        id: Uuid,
        version: u32,
    ) -> std::result::Result<Value, JobError> {
        let doc = self.documents.get(cx, id).await.map_err(store_error)?;
        if !gh.settings.publish_documents || project != Some(doc.project_id) {
            return Ok(
                json!({"outcome": "skipped", "reason": "the connection no longer proposes this project's documents"}),
            );
        }
        let v = self
            .documents
            .version(cx, id, version)
            .await
            .map_err(store_error)?;
        let path = Documents::path(&doc);
        let (base, head) = gh.base().await?;
        let current = gh.file(&path, &head).await?;
        if current.as_deref() == Some(v.text.as_str()) {
            return Ok(json!({"outcome": "unchanged", "path": path, "base": base}));
        }
        let verb = if current.is_some() { "Update" } else { "Add" };
        let title = format!("{verb} {path}: {}", headline(&v.title, 60));
        let link = self
            .integrations
            .public_url
            .as_deref()
            .map(|u| format!("\n\n[Open in MorningAI]({u}/documents/{id})"))
            .unwrap_or_default();
        let body = format!(
            "Version {version} of “{}”, published in MorningAI.{link}",
            headline(&v.title, 200)
        );
        let branch = format!("morningai/docs/{}-v{version}", doc.slug);
        let files = [(path.clone(), v.text)];
        let pull = gh
            .propose(&Proposal {
                base: &base,
                head_sha: &head,
                branch: &branch,
                message: &format!("{title}\n\nMorningAI document {id}, version {version}"),
                title: &title,
                body: &body,
                files: &files,
            })
            .await?;
        Ok(
            json!({"outcome": "opened", "path": path, "branch": branch, "base": base,
                  "pull_request": {"number": pull["number"], "html_url": pull["html_url"]}}),
        )
    }
}
