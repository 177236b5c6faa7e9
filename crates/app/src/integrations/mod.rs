//! Chat-platform connections: a tenant connects a Slack app, a Telegram bot, a LINE
//! channel, a Messenger page, a Discord application or a GitHub repository, people ask
//! there, and an assistant answers from the tenant's memory in the same conversation.
//!
//! A connection is a record of the tenant (its secrets sealed like the provider keys, never
//! shown again, only a hint). Each has its own webhook URL, `/hooks/{platform}/{id}`: the
//! request is verified with that connection's secret before anything else in it is read,
//! and a platform's retries of one event make one task (the event id is the task's
//! idempotency key). The answer is a `chat_reply` task: it carries the trace id and cost
//! like every other, and its delivery attempts are in its events.

mod approvals;
mod followups;
mod pulls;
mod reply;

pub use approvals::{LinkCode, NOTICE_KIND, NoticeTask, validate_notice};
pub use followups::Followups;
pub use pulls::{PR_KIND, PullTask, validate_pr};
pub use reply::{REPLY_KIND, ReplyTask, validate_reply};

/// A domain error as a job's: a provider or platform that is down is worth another
/// attempt, a refusal is not.
pub(crate) fn job_error(e: Error) -> morningai_worker::JobError {
    use morningai_worker::JobError;
    match e {
        Error::Unavailable { .. } | Error::Internal(_) => JobError::retryable(e.to_string()),
        Error::NotFound(what) => JobError::fatal(format!("the {what} is gone")),
        other => JobError::fatal(other.to_string()),
    }
}

/// A platform's refusal or outage as a job's error: an outage (or a rate limit longer
/// than a delivery may wait) is worth another attempt, a refusal is not.
pub(crate) fn delivery_error(
    platform: &str,
    e: morningai_platforms::DeliveryFailed,
) -> morningai_worker::JobError {
    use morningai_worker::JobError;
    let message = format!("delivery to {platform} failed: {e}");
    if e.rate_limited || (e.attempts > 0 && matches!(e.status, None | Some(500..))) {
        JobError::retryable(message)
    } else {
        JobError::fatal(message)
    }
}

/// A task kind the platforms run, never submitted through the API.
pub type InternalKind = (
    &'static str,
    Arc<dyn morningai_worker::Handler>,
    morningai_core::task_kinds::InputValidator,
);

/// The connections' tasks: answers (`chat_reply`), pull requests (`github_pr`), approval
/// messages (`approval_notice`).
pub fn tasks(
    deps: &Arc<crate::agents::AgentDeps>,
    store: &Arc<dyn Store>,
    integrations: &Arc<Integrations>,
    documents: &Arc<crate::documents::Documents>,
) -> Vec<InternalKind> {
    vec![
        (
            REPLY_KIND,
            Arc::new(ReplyTask {
                deps: deps.clone(),
                store: store.clone(),
                integrations: integrations.clone(),
            }),
            validate_reply,
        ),
        (
            PR_KIND,
            Arc::new(PullTask {
                store: store.clone(),
                integrations: integrations.clone(),
                documents: documents.clone(),
            }),
            validate_pr,
        ),
        (
            NOTICE_KIND,
            Arc::new(NoticeTask {
                store: store.clone(),
                integrations: integrations.clone(),
            }),
            validate_notice,
        ),
    ]
}

use crate::auth::Principal;
use crate::backends::Backends;
use crate::config::Config;
use crate::secrets::{SecretBox, hint};
use morningai_core::entities::{NewTask, TaskCreated};
use morningai_core::objects::{ObjectQuery, StoredObject};
use morningai_core::values::Priority;
use morningai_core::{Error, ProjectId, Result, Role, Store, TaskId, TenantCtx, UserId};
use morningai_platforms::{
    Client, Outbound, Question, Rejection, discord, github, line, messenger, slack, telegram,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// The stored kind of a connection.
const KIND: &str = "integration";
/// Connections one tenant may have.
const MAX_PER_TENANT: u32 = 100;
/// Longest secret taken (a GitHub App's private key, a PEM, is longer).
const MAX_SECRET: usize = 1_000;
const MAX_PRIVATE_KEY: usize = 10_000;
/// An App installation token is used until this long before it expires.
const TOKEN_MARGIN_SECS: i64 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Slack,
    Telegram,
    Line,
    Messenger,
    Discord,
    Github,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Slack => "slack",
            Platform::Telegram => "telegram",
            Platform::Line => "line",
            Platform::Messenger => "messenger",
            Platform::Discord => "discord",
            Platform::Github => "github",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "slack" => Some(Platform::Slack),
            "telegram" => Some(Platform::Telegram),
            "line" => Some(Platform::Line),
            "messenger" => Some(Platform::Messenger),
            "discord" => Some(Platform::Discord),
            "github" => Some(Platform::Github),
            _ => None,
        }
    }

    /// The secrets a connection holds: (name, required). Telegram's `secret_token` is
    /// generated when not given.
    fn secrets(self) -> &'static [(&'static str, bool)] {
        match self {
            Platform::Slack => &[("signing_secret", true), ("bot_token", true)],
            Platform::Telegram => &[("bot_token", true), ("secret_token", false)],
            Platform::Line => &[("channel_secret", true), ("channel_access_token", true)],
            Platform::Messenger => &[
                ("app_secret", true),
                ("page_access_token", true),
                ("verify_token", true),
            ],
            Platform::Discord => &[("public_key", true), ("bot_token", true)],
            // A token, or a GitHub App's three (checked in `clean_secrets`).
            Platform::Github => &[
                ("webhook_secret", true),
                ("token", false),
                ("app_id", false),
                ("installation_id", false),
                ("private_key", false),
            ],
        }
    }

    /// The secret the platform's API takes as the bot's credential.
    fn token(self) -> &'static str {
        match self {
            Platform::Slack | Platform::Telegram | Platform::Discord => "bot_token",
            Platform::Line => "channel_access_token",
            Platform::Messenger => "page_access_token",
            Platform::Github => "token",
        }
    }
}

/// A connection as stored: secrets only sealed.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stored {
    platform: Platform,
    name: String,
    project_id: Option<ProjectId>,
    assistant: String,
    secrets: BTreeMap<String, String>,
    hints: BTreeMap<String, String>,
    created_by: UserId,
    #[serde(default)]
    github: Option<GithubSettings>,
    #[serde(default)]
    approvals: Option<ApprovalSettings>,
}

/// Where a Slack connection posts approval requests. Who may decide them there are the
/// members who linked their Slack account to it (`POST /api/v1/integrations/{id}/link`,
/// then `/morningai link <code>` in Slack): each decides as themselves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSettings {
    /// The channel's id (`C…`): each approval a run asks for is posted there with Approve
    /// and Reject buttons.
    pub channel: String,
}

/// What a GitHub connection does beyond answering questions: pull requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GithubSettings {
    /// `owner/name`: where pull requests open; only its comments may ask for code.
    pub repository: String,
    /// The branch pull requests go to (default: the repository's default branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_branch: Option<String>,
    /// The repository's checkout on this server, under `index_roots` and indexed into
    /// memory: `/morningai codegen` needs it (a change is checked against it before it is
    /// applied to the repository's own files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_path: Option<String>,
    /// Publishing a document of the connection's project opens a pull request that adds or
    /// updates `docs/<kind>/<slug>.md`.
    #[serde(default)]
    pub publish_documents: bool,
}

/// A connection as shown: never a secret, only its last characters.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Integration {
    pub id: Uuid,
    pub platform: Platform,
    pub name: String,
    /// The project its questions' tasks are filed under. Which memory answers is the
    /// assistant's setting (its collections; the built-in one searches them all).
    pub project_id: Option<ProjectId>,
    /// The assistant that answers: `faq` (built in) or an assistant's id.
    pub assistant: String,
    /// Each secret's name and hint (`…abcd`).
    pub secrets: BTreeMap<String, String>,
    /// GitHub: the repository pull requests open in, and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github: Option<GithubSettings>,
    /// Slack: the channel approval requests go to, and who may decide them there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals: Option<ApprovalSettings>,
    /// Where the platform posts its events: paste it into the platform's console (Slack's
    /// Event Subscriptions, LINE's and Messenger's webhook URL); Telegram is told on
    /// creation. Absolute when the deployment's `public_url` is set.
    pub hook_url: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A new connection.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegration {
    pub platform: Platform,
    pub name: String,
    pub project_id: Option<ProjectId>,
    /// Default `faq`, the built-in documentation assistant.
    pub assistant: Option<String>,
    /// Slack: `signing_secret` and `bot_token` (`xoxb-…`). Telegram: `bot_token`, and
    /// optionally `secret_token` (generated otherwise). LINE: `channel_secret` and
    /// `channel_access_token`. Messenger: `app_secret`, `page_access_token` and the
    /// `verify_token` you also type into the app's webhook settings. Discord:
    /// `public_key` (hex) and `bot_token`. GitHub: the webhook's `webhook_secret`, and a
    /// `token` that may comment on issues (and, for pull requests, write contents and
    /// pull requests) or a GitHub App's `app_id`, `installation_id` and `private_key`
    /// (the .pem; installation tokens are minted from it).
    pub secrets: BTreeMap<String, String>,
    /// GitHub only: pull requests from `/morningai codegen` and from published documents.
    pub github: Option<GithubSettings>,
    /// Slack only: approval requests with buttons, and who may click them.
    pub approvals: Option<ApprovalSettings>,
}

/// Whether the platform accepts the connection's token.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct IntegrationCheck {
    pub ok: bool,
    /// The platform's words: the bot's name, or why it refused.
    pub detail: String,
}

/// What a webhook answers the platform.
#[derive(Debug, PartialEq)]
pub enum HookReply {
    Json(Value),
    Empty,
}

/// The connections' secrets, the platforms' clients and where they are.
pub struct Integrations {
    store: Arc<dyn Store>,
    secrets: SecretBox,
    pub(crate) outbound: Outbound,
    slack_api: String,
    telegram_api: String,
    line_api: String,
    messenger_api: String,
    discord_api: String,
    github_api: String,
    public_url: Option<String>,
    /// The directories a connection's checkout may lie under.
    index_roots: Vec<std::path::PathBuf>,
    /// GitHub App installation tokens by connection, and when they expire.
    app_tokens:
        std::sync::Mutex<std::collections::HashMap<Uuid, (String, chrono::DateTime<chrono::Utc>)>>,
}

impl Integrations {
    pub fn new(config: &Config, key: &[u8], b: &Backends) -> Self {
        Self {
            store: b.store.clone(),
            secrets: SecretBox::new(
                key,
                "integration-secrets",
                "integration_secret_unreadable",
                "the integration's secret",
            ),
            outbound: Outbound::default(),
            slack_api: config.slack_api_url.trim_end_matches('/').to_owned(),
            telegram_api: config.telegram_api_url.trim_end_matches('/').to_owned(),
            line_api: config.line_api_url.trim_end_matches('/').to_owned(),
            messenger_api: config.messenger_api_url.trim_end_matches('/').to_owned(),
            discord_api: config.discord_api_url.trim_end_matches('/').to_owned(),
            github_api: config.github_api_url.trim_end_matches('/').to_owned(),
            public_url: config
                .public_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            index_roots: config.index_roots.clone(),
            app_tokens: Default::default(),
        }
    }

    fn hook_url(&self, platform: Platform, id: Uuid) -> String {
        format!(
            "{}/hooks/{}/{id}",
            self.public_url.as_deref().unwrap_or(""),
            platform.as_str()
        )
    }

    /// The task's page on the dashboard, when the deployment knows its address.
    pub(crate) fn task_link(&self, task: TaskId) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|base| format!("{base}/tasks/{task}"))
    }

    fn view(&self, id: Uuid, s: Stored, created_at: chrono::DateTime<chrono::Utc>) -> Integration {
        Integration {
            id,
            hook_url: self.hook_url(s.platform, id),
            platform: s.platform,
            name: s.name,
            project_id: s.project_id,
            assistant: s.assistant,
            secrets: s.hints,
            github: s.github,
            approvals: s.approvals,
            created_at,
        }
    }

    async fn load(&self, cx: TenantCtx, id: Uuid) -> Result<(Stored, StoredObject)> {
        let o = self
            .store
            .get_object(cx, KIND, id)
            .await?
            .ok_or(Error::NotFound("integration"))?;
        let s = serde_json::from_value(o.body.clone())
            .map_err(|e| Error::internal("read an integration", e))?;
        Ok((s, o))
    }

    fn secret(&self, cx: TenantCtx, s: &Stored, name: &str) -> Result<String> {
        let sealed = s
            .secrets
            .get(name)
            .ok_or_else(|| Error::Internal(format!("integration without its {name}")))?;
        self.secrets.open(cx, sealed)
    }

    /// The credential the platform's API takes: the stored token, or for a GitHub App an
    /// installation token, minted from the App's key and kept until shortly before it
    /// expires.
    async fn token(&self, cx: TenantCtx, id: Uuid, s: &Stored) -> Result<String> {
        if s.platform != Platform::Github || !s.secrets.contains_key("app_id") {
            return self.secret(cx, s, s.platform.token());
        }
        let now = chrono::Utc::now();
        let cached = self
            .app_tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .filter(|(_, until)| (*until - now).num_seconds() > TOKEN_MARGIN_SECS)
            .map(|(t, _)| t.clone());
        if let Some(t) = cached {
            return Ok(t);
        }
        let (app_id, installation, key) = (
            self.secret(cx, s, "app_id")?,
            self.secret(cx, s, "installation_id")?,
            self.secret(cx, s, "private_key")?,
        );
        let app = github::App {
            id: &app_id,
            installation: &installation,
            private_key: &key,
        };
        let (token, expires) =
            github::installation_token(&self.client(Platform::Github, ""), &app, now.timestamp())
                .await
                .map_err(|e| {
                    let message = format!("GitHub App installation token: {e}");
                    match e.status {
                        // A wrong key or App id, an uninstalled App: no retry helps.
                        Some(400..=428 | 430..=499) => Error::conflict("platform_refused", message),
                        _ => Error::unavailable("platform_refused", message),
                    }
                })?;
        let until = chrono::DateTime::parse_from_rfc3339(&expires)
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or(now);
        self.app_tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, (token.clone(), until));
        Ok(token)
    }

    /// Sends `text` (already in the platform's format) where `reply_to` says, reporting
    /// each attempt. Returns the platform's answers.
    pub(crate) async fn deliver(
        &self,
        cx: TenantCtx,
        id: Uuid,
        reply_to: &Value,
        text: &str,
        on_attempt: &mut (dyn FnMut(&morningai_platforms::Attempt) + Send),
    ) -> Result<std::result::Result<Vec<Value>, morningai_platforms::DeliveryFailed>> {
        let (s, _) = self.load(cx, id).await?;
        let token = self.token(cx, id, &s).await?;
        let c = self.client(s.platform, &token);
        Ok(match s.platform {
            Platform::Slack => slack::reply(&c, reply_to, text, on_attempt)
                .await
                .map(|v| vec![v]),
            Platform::Telegram => telegram::reply(&c, reply_to, text, on_attempt).await,
            Platform::Line => {
                let now_ms = chrono::Utc::now().timestamp_millis();
                line::reply(&c, reply_to, text, now_ms, on_attempt).await
            }
            Platform::Messenger => messenger::reply(&c, reply_to, text, on_attempt).await,
            Platform::Discord => discord::reply(&c, reply_to, text, on_attempt).await,
            Platform::Github => github::reply(&c, reply_to, text, on_attempt).await,
        })
    }

    /// The platform's API with this bot's credential.
    fn client<'a>(&'a self, p: Platform, token: &'a str) -> Client<'a> {
        let api = match p {
            Platform::Slack => &self.slack_api,
            Platform::Telegram => &self.telegram_api,
            Platform::Line => &self.line_api,
            Platform::Messenger => &self.messenger_api,
            Platform::Discord => &self.discord_api,
            Platform::Github => &self.github_api,
        };
        Client {
            outbound: &self.outbound,
            api,
            token,
        }
    }

    /// A slash command's `response_url` must be Slack's (or the configured Slack API's
    /// host, for a proxy or a test double): the answer is posted there.
    fn check_response_url(&self, reply_to: &Value) -> Result<()> {
        let host = |u: &str| {
            url::Url::parse(u)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
        };
        let given = reply_to
            .get("response_url")
            .and_then(Value::as_str)
            .and_then(host);
        match given {
            Some(h) if h == "hooks.slack.com" || Some(&h) == host(&self.slack_api).as_ref() => {
                Ok(())
            }
            _ => Err(Error::invalid("response_url", "not a Slack response URL")),
        }
    }

    /// The platform and assistant of a connection (the reply task's view).
    pub(crate) async fn route(&self, cx: TenantCtx, id: Uuid) -> Result<(Platform, String)> {
        let (s, _) = self.load(cx, id).await?;
        Ok((s.platform, s.assistant))
    }

    /// A GitHub connection's pull-request settings and token (the pull-request task's view).
    pub(crate) async fn github(
        &self,
        cx: TenantCtx,
        id: Uuid,
    ) -> Result<(Option<ProjectId>, GithubSettings, String)> {
        let (s, _) = self.load(cx, id).await?;
        let settings = s
            .github
            .clone()
            .filter(|_| s.platform == Platform::Github)
            .ok_or(Error::NotFound("GitHub repository settings"))?;
        Ok((s.project_id, settings, self.token(cx, id, &s).await?))
    }

    /// Checks a GitHub connection's settings; the checkout's canonical path replaces the
    /// given one.
    fn clean_github(
        &self,
        platform: Platform,
        project: Option<ProjectId>,
        given: Option<GithubSettings>,
    ) -> Result<Option<GithubSettings>> {
        let Some(mut g) = given else {
            return Ok(None);
        };
        if platform != Platform::Github {
            return Err(Error::invalid("github", "only GitHub connections take it"));
        }
        g.repository = g.repository.trim().to_owned();
        if !github::is_repository(&g.repository) {
            return Err(Error::invalid(
                "github.repository",
                "owner/name, as in the repository's URL",
            ));
        }
        if let Some(b) = &g.base_branch
            && !github::is_branch(b)
        {
            return Err(Error::invalid(
                "github.base_branch",
                "a branch name of A-Z, a-z, 0-9, ., _, - and /",
            ));
        }
        if let Some(p) = &g.tree_path {
            let real = crate::indexing::allowed(p, &self.index_roots)
                .map_err(|e| Error::invalid("github.tree_path", e))?;
            g.tree_path = Some(real.to_string_lossy().into_owned());
        }
        if project.is_none() && (g.tree_path.is_some() || g.publish_documents) {
            return Err(Error::invalid(
                "project_id",
                "pull requests belong to a project: code requests are filed under it, and its published documents are proposed",
            ));
        }
        Ok(Some(g))
    }
}

fn clean_secrets(
    platform: Platform,
    given: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let known = platform.secrets();
    let mut out = BTreeMap::new();
    for (name, value) in given {
        if !known.iter().any(|(n, _)| *n == name) {
            let names: Vec<_> = known.iter().map(|(n, _)| *n).collect();
            return Err(Error::invalid(
                format!("secrets.{name}"),
                format!(
                    "{} connections take {}",
                    platform.as_str(),
                    names.join(", ")
                ),
            ));
        }
        let value = value.trim().to_owned();
        let max = if name == "private_key" {
            MAX_PRIVATE_KEY
        } else {
            MAX_SECRET
        };
        if value.is_empty() || value.chars().count() > max {
            return Err(Error::invalid(
                format!("secrets.{name}"),
                format!("must be 1 to {max} characters"),
            ));
        }
        out.insert(name, value);
    }
    for (name, required) in known {
        if *required && !out.contains_key(*name) {
            return Err(Error::invalid(format!("secrets.{name}"), "is required"));
        }
    }
    if platform == Platform::Github {
        let app = ["app_id", "installation_id", "private_key"].map(|k| out.contains_key(k));
        if app.contains(&true) {
            if app.contains(&false) {
                return Err(Error::invalid(
                    "secrets",
                    "a GitHub App takes app_id, installation_id and private_key together",
                ));
            }
            for k in ["app_id", "installation_id"] {
                if !out[k].bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Error::invalid(
                        format!("secrets.{k}"),
                        "a number, from the App's settings",
                    ));
                }
            }
            github::rsa_key(&out["private_key"]).map_err(|e| {
                Error::invalid(
                    "secrets.private_key",
                    format!("the App's private key (.pem): {e}"),
                )
            })?;
        } else if !out.contains_key("token") {
            return Err(Error::invalid(
                "secrets.token",
                "is required, or a GitHub App's app_id, installation_id and private_key",
            ));
        }
    }
    if platform == Platform::Discord && !discord::is_public_key(&out["public_key"]) {
        return Err(Error::invalid(
            "secrets.public_key",
            "the application's public key: 64 hexadecimal characters (General Information)",
        ));
    }
    if platform == Platform::Telegram {
        let token = out
            .entry("secret_token".into())
            .or_insert_with(|| crate::auth::random_secret("mai_"));
        // Telegram's own rule for the header value.
        if token.len() > 256
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(Error::invalid(
                "secrets.secret_token",
                "Telegram takes 1 to 256 characters of A-Z, a-z, 0-9, _ and -",
            ));
        }
    }
    Ok(out)
}

impl crate::Application {
    /// Connects a platform (admin+), audited. Telegram is told where to post at once,
    /// which needs the deployment's `public_url`.
    pub async fn create_integration(
        &self,
        who: &Principal,
        req: CreateIntegration,
    ) -> Result<Integration> {
        who.require(Role::Admin)?;
        let cx = who.cx();
        let it = &self.integrations;
        let name = crate::clean_name("name", &req.name)?;
        let secrets = clean_secrets(req.platform, req.secrets)?;
        let github = it.clean_github(req.platform, req.project_id, req.github)?;
        let approvals = it.clean_approvals(req.platform, req.approvals)?;
        if let Some(p) = req.project_id {
            self.store
                .project(cx, p)
                .await
                .map_err(|_| Error::invalid("project_id", "no such project"))?;
        }
        let assistant = match req.assistant.as_deref().map(str::trim) {
            None | Some("") => crate::chat::BUILTIN.to_owned(),
            Some(a) => {
                crate::chat::assistant_named(&*self.store, cx, a)
                    .await
                    .map_err(|_| Error::invalid("assistant", "no such assistant"))?
                    .id
            }
        };
        let existing = self
            .store
            .list_objects(cx, KIND, &ObjectQuery::first(MAX_PER_TENANT))
            .await?;
        if existing.len() as u32 >= MAX_PER_TENANT {
            return Err(Error::conflict(
                "too_many_integrations",
                format!("a tenant has at most {MAX_PER_TENANT} integrations"),
            ));
        }
        let id = Uuid::now_v7();
        if req.platform == Platform::Telegram {
            if it.public_url.is_none() {
                return Err(Error::invalid(
                    "platform",
                    "Telegram is told where to post by setWebhook, which needs this deployment's public address: set MORNINGAI_PUBLIC_URL",
                ));
            }
            telegram::set_webhook(
                &it.client(Platform::Telegram, &secrets["bot_token"]),
                &it.hook_url(req.platform, id),
                &secrets["secret_token"],
            )
            .await
            .map_err(|e| {
                Error::unavailable("platform_refused", format!("Telegram's setWebhook: {e}"))
            })?;
        }
        let stored = Stored {
            platform: req.platform,
            name,
            project_id: req.project_id,
            assistant,
            hints: secrets.iter().map(|(k, v)| (k.clone(), hint(v))).collect(),
            secrets: secrets
                .iter()
                .map(|(k, v)| Ok((k.clone(), it.secrets.seal(cx, v)?)))
                .collect::<Result<_>>()?,
            created_by: who.user_id,
            github,
            approvals,
        };
        let now = morningai_core::now();
        self.store
            .put_object(
                cx,
                &StoredObject {
                    kind: KIND.into(),
                    id,
                    parent: None,
                    status: "active".into(),
                    body: serde_json::to_value(&stored)
                        .map_err(|e| Error::internal("encode an integration", e))?,
                    due_at: None,
                    created_at: now,
                    updated_at: now,
                },
            )
            .await?;
        self.audit(
            who,
            "integration.create",
            "integration",
            id,
            json!({"platform": stored.platform, "name": stored.name, "secrets": stored.hints}),
        )
        .await?;
        Ok(it.view(id, stored, now))
    }

    /// The tenant's connections, newest first (admin+).
    pub async fn integrations(&self, who: &Principal) -> Result<Vec<Integration>> {
        who.require(Role::Admin)?;
        let rows = self
            .store
            .list_objects(who.cx(), KIND, &ObjectQuery::first(MAX_PER_TENANT))
            .await?;
        rows.into_iter()
            .map(|o| {
                let s: Stored = serde_json::from_value(o.body)
                    .map_err(|e| Error::internal("read an integration", e))?;
                Ok(self.integrations.view(o.id, s, o.created_at))
            })
            .collect()
    }

    /// One connection (admin+); another tenant's is not found.
    pub async fn integration(&self, who: &Principal, id: Uuid) -> Result<Integration> {
        who.require(Role::Admin)?;
        let (s, o) = self.integrations.load(who.cx(), id).await?;
        Ok(self.integrations.view(id, s, o.created_at))
    }

    /// Disconnects (admin+), audited: its webhook answers 404 from now on.
    pub async fn delete_integration(&self, who: &Principal, id: Uuid) -> Result<()> {
        who.require(Role::Admin)?;
        if !self.store.delete_object(who.cx(), KIND, id).await? {
            return Err(Error::NotFound("integration"));
        }
        self.audit(who, "integration.delete", "integration", id, json!({}))
            .await
    }

    /// Asks the platform whether the connection's token works (admin+).
    pub async fn check_integration(&self, who: &Principal, id: Uuid) -> Result<IntegrationCheck> {
        who.require(Role::Admin)?;
        let it = &self.integrations;
        let cx = who.cx();
        let (s, _) = it.load(cx, id).await?;
        let token = match it.token(cx, id, &s).await {
            Ok(t) => t,
            Err(e) => {
                return Ok(IntegrationCheck {
                    ok: false,
                    detail: e.to_string(),
                });
            }
        };
        let c = it.client(s.platform, &token);
        let answer = match s.platform {
            Platform::Slack => slack::check(&c).await,
            Platform::Telegram => telegram::check(&c).await,
            Platform::Line => line::check(&c).await,
            Platform::Messenger => messenger::check(&c).await,
            Platform::Discord => discord::check(&c).await,
            Platform::Github => github::check(&c).await,
        };
        Ok(match answer {
            Ok(v) => IntegrationCheck {
                ok: true,
                detail: v
                    .get("user")
                    .or_else(|| v.pointer("/result/username"))
                    .or_else(|| v.get("displayName"))
                    .or_else(|| v.get("username"))
                    .or_else(|| v.get("name"))
                    .and_then(Value::as_str)
                    .map(|n| format!("connected as {n}"))
                    .unwrap_or_else(|| "connected".into()),
            },
            Err(e) => IntegrationCheck {
                ok: false,
                detail: e.to_string(),
            },
        })
    }

    /// The connection a webhook's path names, found on the platform path (nobody is
    /// authenticated yet): None for an unknown platform or id, or one of another platform.
    async fn connection(
        &self,
        platform: &str,
        id: &str,
    ) -> Result<Option<(Platform, Uuid, TenantCtx, Stored)>> {
        let (Some(p), Ok(id)) = (Platform::parse(platform), Uuid::parse_str(id)) else {
            return Ok(None);
        };
        let Some(tenant) = self.store.object_tenant(KIND, id).await? else {
            return Ok(None);
        };
        let cx = TenantCtx::new(tenant);
        match self.integrations.load(cx, id).await {
            Ok((s, _)) if s.platform == p => Ok(Some((p, id, cx, s))),
            Ok(_) | Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A platform's webhook request for connection `id`. Nothing in the body is read
    /// before the connection's secret verified it; an unknown connection (or one of
    /// another platform) is not found, a missing, wrong or stale signature unauthorized.
    /// A question becomes one `chat_reply` task however often the platform retries it.
    pub async fn receive_hook(
        &self,
        platform: &str,
        id: &str,
        header: &(dyn Fn(&str) -> Option<String> + Sync),
        body: &[u8],
    ) -> Result<HookReply> {
        // The label is a known platform's name: a caller's path must not mint series.
        let label = Platform::parse(platform).map_or("unknown", Platform::as_str);
        let count = |outcome: &'static str| {
            metrics::counter!("morningai_hooks_total", "platform" => label, "outcome" => outcome)
                .increment(1);
        };
        let Some((p, id, cx, s)) = self.connection(platform, id).await? else {
            count("unknown_connection");
            return Err(Error::NotFound("integration"));
        };
        let it = &self.integrations;
        let verdict = match p {
            Platform::Slack => slack::verify(
                &it.secret(cx, &s, "signing_secret")?,
                header("x-slack-request-timestamp").as_deref(),
                header("x-slack-signature").as_deref(),
                body,
                chrono::Utc::now().timestamp(),
            ),
            Platform::Telegram => telegram::verify(
                &it.secret(cx, &s, "secret_token")?,
                header("x-telegram-bot-api-secret-token").as_deref(),
            ),
            Platform::Line => line::verify(
                &it.secret(cx, &s, "channel_secret")?,
                header("x-line-signature").as_deref(),
                body,
            ),
            Platform::Messenger => messenger::verify(
                &it.secret(cx, &s, "app_secret")?,
                header("x-hub-signature-256").as_deref(),
                body,
            ),
            Platform::Discord => discord::verify(
                &it.secret(cx, &s, "public_key")?,
                header("x-signature-ed25519").as_deref(),
                header("x-signature-timestamp").as_deref(),
                body,
                chrono::Utc::now().timestamp(),
            ),
            Platform::Github => github::verify(
                &it.secret(cx, &s, "webhook_secret")?,
                header("x-hub-signature-256").as_deref(),
                body,
            ),
        };
        if let Err(r) = verdict {
            count(match r {
                Rejection::Missing => "rejected_missing",
                Rejection::BadSignature => "rejected_bad_signature",
                Rejection::Stale => "rejected_stale",
            });
            return Err(Error::Unauthorized {
                code: "bad_signature",
                message: format!("the request's signature does not verify ({})", r.reason()),
            });
        }
        let malformed = |m: String| Error::invalid("body", m);
        // What the platform gets back at once.
        let mut ack = HookReply::Empty;
        let questions = match p {
            Platform::Slack => match slack::parse(body).map_err(malformed)? {
                slack::Event::UrlVerification { challenge } => {
                    count("url_verification");
                    return Ok(HookReply::Json(json!({"challenge": challenge})));
                }
                slack::Event::Question(q) => vec![q],
                slack::Event::Command(q) => {
                    it.check_response_url(&q.reply_to)?;
                    ack = HookReply::Json(json!({"response_type": "ephemeral",
                        "text": format!("Looking up: {}", q.text)}));
                    vec![q]
                }
                slack::Event::Decision(d) => {
                    count(self.decide_from_slack(cx, id, d).await?);
                    return Ok(HookReply::Empty);
                }
                slack::Event::Link { code, user } => {
                    let said = self.link_from_slack(cx, id, &s, &code, &user).await?;
                    count("link");
                    return Ok(HookReply::Json(
                        json!({"response_type": "ephemeral", "text": said}),
                    ));
                }
                slack::Event::Usage => {
                    count("ignored");
                    return Ok(HookReply::Json(json!({"response_type": "ephemeral",
                        "text": "Ask with `/morningai ask <your question>`."})));
                }
                slack::Event::Ignored => Vec::new(),
            },
            Platform::Telegram => telegram::parse(body)
                .map_err(malformed)?
                .into_iter()
                .collect(),
            Platform::Line => line::parse(body).map_err(malformed)?,
            Platform::Messenger => messenger::parse(body).map_err(malformed)?,
            Platform::Discord => match discord::parse(body).map_err(malformed)? {
                discord::Interaction::Ping => {
                    count("ping");
                    return Ok(HookReply::Json(json!({"type": 1})));
                }
                discord::Interaction::Other => {
                    count("ignored");
                    return Ok(HookReply::Json(json!({"type": 4, "data": {
                        "content": "MorningAI answers `/ask question:…`.", "flags": 64}})));
                }
                discord::Interaction::Question(q) => vec![q],
            },
            Platform::Github => {
                let (event, delivery) = (header("x-github-event"), header("x-github-delivery"));
                match github::parse(event.as_deref(), delivery.as_deref(), body)
                    .map_err(malformed)?
                {
                    github::Event::Question(q) => vec![q],
                    github::Event::Codegen(q) => {
                        count(match self.codegen_from(cx, id, &s, q).await? {
                            Some(TaskCreated::New(..)) => "accepted",
                            Some(TaskCreated::Existing(_)) => "duplicate",
                            None => "not_allowed",
                        });
                        return Ok(HookReply::Empty);
                    }
                    github::Event::Ping | github::Event::Ignored => Vec::new(),
                }
            }
        };
        if questions.is_empty() {
            count("ignored");
        }
        if p == Platform::Discord {
            // Discord waits for an answer within 3 s: "thinking…", edited when ready.
            ack = HookReply::Json(json!({"type": 5}));
        }
        // A batch is bounded by the body limit; each question is one task.
        for q in questions {
            let created = self.ask_from(cx, p, id, &s, q).await?;
            count(match created {
                TaskCreated::New(..) => "accepted",
                TaskCreated::Existing(_) => "duplicate",
            });
        }
        Ok(ack)
    }

    /// Messenger's subscription handshake (`GET` with `hub.mode`, `hub.verify_token`,
    /// `hub.challenge`): the challenge when the token is the connection's.
    pub async fn hook_handshake(
        &self,
        platform: &str,
        id: &str,
        query: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<String> {
        let it = &self.integrations;
        let Some((Platform::Messenger, _, cx, s)) = self.connection(platform, id).await? else {
            return Err(Error::NotFound("integration"));
        };
        let (mode, token, challenge) = (
            query("hub.mode"),
            query("hub.verify_token"),
            query("hub.challenge"),
        );
        messenger::handshake(
            &it.secret(cx, &s, "verify_token")?,
            mode.as_deref(),
            token.as_deref(),
            challenge.as_deref(),
        )
        .map(str::to_owned)
        .map_err(|r| Error::Unauthorized {
            code: "bad_signature",
            message: format!("the verify token does not match ({})", r.reason()),
        })
    }

    async fn ask_from(
        &self,
        cx: TenantCtx,
        p: Platform,
        id: Uuid,
        s: &Stored,
        q: Question,
    ) -> Result<TaskCreated> {
        let question = checked(&q)?;
        self.tasks
            .submit(
                cx,
                NewTask {
                    id: TaskId::new(),
                    kind: REPLY_KIND.into(),
                    priority: Priority::default(),
                    project_id: s.project_id,
                    trace_id: crate::trace::current_trace_id(),
                    input: json!({"integration": id, "question": question, "reply_to": q.reply_to}),
                    idempotency_key: Some(format!(
                        "{}{}:{id}:{}",
                        crate::tasks::INTERNAL_KEY,
                        p.as_str(),
                        q.event_id
                    )),
                    created_by: Some(s.created_by),
                },
            )
            .await
    }

    /// `/morningai codegen …` in a comment: a `codegen` task on the connection's checkout
    /// whose change becomes a pull request. Only in the connection's repository, only from
    /// its owners, members and collaborators (anyone may comment on a public repository;
    /// a change costs the tenant a model's tokens): None otherwise.
    async fn codegen_from(
        &self,
        cx: TenantCtx,
        id: Uuid,
        s: &Stored,
        q: Question,
    ) -> Result<Option<TaskCreated>> {
        let request = checked(&q)?;
        let (Some(g), Some(project)) = (&s.github, s.project_id) else {
            return Ok(None);
        };
        let repo = q.reply_to["repo"].as_str().unwrap_or_default();
        let trusted = matches!(
            q.reply_to["association"].as_str(),
            Some("OWNER" | "MEMBER" | "COLLABORATOR")
        );
        let Some(path) = g
            .tree_path
            .as_ref()
            .filter(|_| trusted && repo.eq_ignore_ascii_case(&g.repository))
        else {
            return Ok(None);
        };
        let input = json!({
            "request": request, "project_id": project, "path": path,
            "github": {"integration": id, "repo": g.repository, "issue": q.reply_to["issue"]},
        });
        self.tasks
            .submit(
                cx,
                NewTask {
                    id: TaskId::new(),
                    kind: "codegen".into(),
                    priority: Priority::default(),
                    project_id: Some(project),
                    trace_id: crate::trace::current_trace_id(),
                    input,
                    idempotency_key: Some(format!(
                        "{}github:{id}:{}",
                        crate::tasks::INTERNAL_KEY,
                        q.event_id
                    )),
                    created_by: Some(s.created_by),
                },
            )
            .await
            .map(Some)
    }
}

/// A question's text, without NULs (PostgreSQL stores none) and bounded; ids holding one
/// are bogus.
fn checked(q: &Question) -> Result<String> {
    if q.event_id.contains('\0') || q.reply_to.to_string().contains("\\u0000") {
        return Err(Error::invalid("body", "a NUL character in an id"));
    }
    Ok(q.text
        .chars()
        .filter(|c| *c != '\0')
        .take(crate::chat::MAX_QUESTION)
        .collect())
}
