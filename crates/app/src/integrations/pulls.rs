//! Pull requests on GitHub: the change a `/morningai codegen …` comment asked for, and a
//! published document, each proposed in the connection's repository by a `github_pr` task.
//!
//! The task is queued by [`super::Followups`] where the work becomes final. Its GitHub calls are retry-safe: the branch and the pull request an earlier
//! attempt made are taken over. A codegen change is applied to the repository's files at
//! the base branch's tip (not to the server's checkout it was checked against): a change
//! that no longer applies there is said in a comment, and nothing is pushed.

use super::{GithubSettings, Integrations, Platform, job_error};
use crate::documents::Documents;
use morningai_core::{ProjectId, Store, TaskId, TenantCtx};
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
    /// The change of codegen task `task`, as its run left it: `status` (`ready`,
    /// `approved`, `rejected`, `failed`), `diff`, `explanation`, `plan`, `request`.
    Codegen {
        integration: Uuid,
        task: Uuid,
        change: Value,
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

fn delivery_error(e: DeliveryFailed) -> JobError {
    super::delivery_error("github", e)
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
            .map_err(job_error)?;
        let mut gh = GitHub {
            client: self.integrations.client(Platform::Github, &token),
            settings: &settings,
            attempts: Vec::new(),
        };
        let out = match input {
            PrInput::Codegen { task, change, .. } => self.codegen(cx, &mut gh, task, &change).await,
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
        change: &Value,
    ) -> std::result::Result<Value, JobError> {
        let source = self.store.task(cx, TaskId(task)).await.map_err(job_error)?;
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
        let see = self
            .integrations
            .task_link(TaskId(task))
            .map(|l| format!("\n\n[Open in MorningAI]({l})"))
            .unwrap_or_default();
        let refused = match change["status"].as_str() {
            Some("ready" | "approved") => None,
            Some("rejected") => Some((
                "rejected",
                format!(
                    "The change was rejected in MorningAI{}.",
                    change["comment"]
                        .as_str()
                        .map(|c| format!(": {}", headline(c, 500)))
                        .unwrap_or_default()
                ),
            )),
            // The run's own error stays in the task: this thread may be public.
            _ => Some((
                "failed",
                "MorningAI could not make this change: its task failed.".to_owned(),
            )),
        };
        if let Some((outcome, why)) = refused {
            gh.comment(&reply_to, &format!("{why}{see}")).await?;
            return Ok(json!({"outcome": outcome, "reason": why}));
        }
        let proposed = self.propose_change(gh, task, change, &reply_to, &see).await;
        if let Err(e) = &proposed
            && !e.retryable
        {
            // A refusal ends the task: the person who asked is told, not left waiting.
            let told = format!(
                "MorningAI could not open the pull request: {}{see}",
                headline(&e.message, 300)
            );
            let _ = gh.comment(&reply_to, &told).await;
        }
        proposed
    }

    async fn propose_change(
        &self,
        gh: &mut GitHub<'_>,
        task: Uuid,
        change: &Value,
        reply_to: &Value,
        see: &str,
    ) -> std::result::Result<Value, JobError> {
        let (base, head) = gh.base().await?;
        let files = match self
            .applied(gh, change["diff"].as_str().unwrap_or(""), &head)
            .await?
        {
            Ok(files) => files,
            Err(why) => {
                gh.comment(reply_to, &format!("{why}{see}")).await?;
                return Ok(json!({"outcome": "not_applicable", "reason": why}));
            }
        };
        let request = change["request"].as_str().unwrap_or("a change");
        let mut body = format!(
            "{}\n\nAsked in #{} with `/morningai codegen {}`.",
            change["explanation"].as_str().unwrap_or("").trim(),
            reply_to["issue"],
            headline(request, 200).replace('`', "'"),
        );
        if let Some(plan) = change["plan"].as_array().filter(|p| !p.is_empty()) {
            body.push_str("\n\n**Plan**\n");
            for step in plan.iter().filter_map(Value::as_str) {
                body.push_str(&format!("\n- {step}"));
            }
        }
        body.push_str(see);
        let title = headline(request, 72);
        // The random end of the task's id (its start is a timestamp).
        let branch = format!("morningai/codegen-{}", &task.simple().to_string()[20..]);
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
            reply_to,
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
        if let Some(f) = patches.iter().find(|f| f.path.starts_with(".github/")) {
            return Ok(Err(format!(
                "MorningAI does not change {}: files under .github/ (workflows) would run with the repository's secrets before anyone reviewed them.",
                f.path
            )));
        }
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
        let doc = self.documents.get(cx, id).await.map_err(job_error)?;
        if !gh.settings.publish_documents || project != Some(doc.project_id) {
            return Ok(
                json!({"outcome": "skipped", "reason": "the connection no longer proposes this project's documents"}),
            );
        }
        let v = self
            .documents
            .version(cx, id, version)
            .await
            .map_err(job_error)?;
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
        // The slug is unique in a project; the id keeps projects sharing a repository apart.
        let branch = format!(
            "morningai/docs/{}-{}-v{version}",
            doc.slug,
            &id.simple().to_string()[24..]
        );
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
