//! Tenant webhooks: a tenant subscribes URLs to what happens in it (`task.succeeded`,
//! `task.failed`, `approval.requested`, `document.published`) and each event is delivered
//! signed per Standard Webhooks. A delivery is a record (the delivery log, with every
//! attempt) and a `webhook_delivery` task that sends it, so it is queued durably and
//! retried with the queue's backoff; a failed one can be redelivered by hand, under the
//! same `webhook-id` (receivers deduplicate by it).

use crate::auth::Principal;
use crate::secrets::{SecretBox, private_host};
use morningai_core::entities::{NewTask, TaskStatus};
use morningai_core::objects::{ObjectQuery, StoredObject};
use morningai_core::values::Priority;
use morningai_core::{Error, Result, Role, Store, TaskId, TenantCtx};
use morningai_worker::{Finished, Handler, JobContext, JobError, TaskService};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What a tenant may subscribe to.
pub const EVENTS: [&str; 4] = [
    "task.succeeded",
    "task.failed",
    "approval.requested",
    "document.published",
];
const KIND: &str = "webhook";
const DELIVERY: &str = "webhook_delivery";
/// The task kind that sends a delivery.
pub const DELIVERY_KIND: &str = "webhook_delivery";
const MAX_PER_TENANT: u32 = 20;
const MAX_URL: usize = 2_000;
/// Deliveries the log shows.
const LOG: u32 = 100;
/// How long a process trusts its copy of a tenant's subscriptions (another process's
/// change is seen within this; this process's own at once).
const SUBSCRIPTIONS_TTL: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stored {
    url: String,
    events: Vec<String>,
    description: Option<String>,
    secret: String,
    hint: String,
}

/// A subscription as shown: the secret only at creation.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    /// The signing secret's last characters.
    pub secret_hint: String,
    /// The signing secret (`whsec_…`): in the creation's answer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// `https://…` (or `http://`); not an internal address in production.
    pub url: String,
    /// Some of `task.succeeded`, `task.failed`, `approval.requested`, `document.published`.
    pub events: Vec<String>,
    pub description: Option<String>,
}

/// One attempt at a delivery.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryAttempt {
    pub at: chrono::DateTime<chrono::Utc>,
    /// The endpoint's status, if it answered.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// A delivery as the log shows it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: Uuid,
    /// The `webhook-id` header: the same on every attempt and redelivery.
    pub msg_id: String,
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    pub attempts: Vec<DeliveryAttempt>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct DeliveryBody {
    msg_id: String,
    event: String,
    payload: Value,
    attempts: Vec<DeliveryAttempt>,
}

/// A webhook's id and the events it takes.
type Subscription = (Uuid, Vec<String>);

pub struct Webhooks {
    store: Arc<dyn Store>,
    /// The application's task service (weak: it holds this as its observer).
    tasks: Mutex<Weak<TaskService>>,
    secrets: SecretBox,
    sender: morningai_platforms::webhooks::Sender,
    allow_private_urls: bool,
    /// Per tenant: when read, and its subscriptions.
    subscriptions: Mutex<HashMap<morningai_core::TenantId, (Instant, Vec<Subscription>)>>,
}

impl Webhooks {
    pub fn new(config: &crate::config::Config, key: &[u8], store: Arc<dyn Store>) -> Self {
        Self {
            store,
            tasks: Mutex::new(Weak::new()),
            secrets: SecretBox::new(
                key,
                "webhook-secrets",
                "webhook_secret_unreadable",
                "the webhook's signing secret",
            ),
            sender: Default::default(),
            allow_private_urls: config.env != crate::config::Environment::Production,
            subscriptions: Mutex::default(),
        }
    }

    /// Wires the task service that queues deliveries and tells this about finished tasks.
    pub fn attach(self: &Arc<Self>, tasks: &Arc<TaskService>) {
        *self.tasks.lock().unwrap_or_else(|p| p.into_inner()) = Arc::downgrade(tasks);
        tasks.on_finished(self.clone());
    }

    fn forget(&self, cx: TenantCtx) {
        self.subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&cx.tenant_id);
    }

    async fn subscribed(&self, cx: TenantCtx, event: &str) -> Result<Vec<Uuid>> {
        let cached = self
            .subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&cx.tenant_id)
            .filter(|(at, _)| at.elapsed() < SUBSCRIPTIONS_TTL)
            .map(|(_, subs)| subs.clone());
        let subs = match cached {
            Some(s) => s,
            None => {
                let rows = self
                    .store
                    .list_objects(cx, KIND, &ObjectQuery::first(MAX_PER_TENANT))
                    .await?;
                let subs: Vec<Subscription> = rows
                    .into_iter()
                    .filter_map(|o| {
                        let s: Stored = serde_json::from_value(o.body).ok()?;
                        Some((o.id, s.events))
                    })
                    .collect();
                self.subscriptions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(cx.tenant_id, (Instant::now(), subs.clone()));
                subs
            }
        };
        Ok(subs
            .into_iter()
            .filter(|(_, events)| events.iter().any(|e| e == event))
            .map(|(id, _)| id)
            .collect())
    }

    /// Queues `event` for every subscription of the tenant. The event already happened:
    /// a failure here is logged, not returned.
    pub async fn emit(&self, cx: TenantCtx, event: &str, data: Value) {
        if let Err(e) = self.try_emit(cx, event, data).await {
            tracing::error!(error = %e, event, "queueing webhook deliveries failed");
        }
    }

    async fn try_emit(&self, cx: TenantCtx, event: &str, data: Value) -> Result<()> {
        for webhook in self.subscribed(cx, event).await? {
            let id = Uuid::now_v7();
            let now = morningai_core::now();
            let body = DeliveryBody {
                msg_id: format!("msg_{}", id.simple()),
                event: event.to_owned(),
                payload: json!({"type": event, "timestamp": now, "data": data}),
                attempts: Vec::new(),
            };
            self.store
                .put_object(
                    cx,
                    &StoredObject {
                        kind: DELIVERY.into(),
                        id,
                        parent: Some(webhook),
                        status: "pending".into(),
                        body: serde_json::to_value(&body)
                            .map_err(|e| Error::internal("encode a delivery", e))?,
                        due_at: None,
                        created_at: now,
                        updated_at: now,
                    },
                )
                .await?;
            self.queue(cx, webhook, id).await?;
        }
        Ok(())
    }

    async fn queue(&self, cx: TenantCtx, webhook: Uuid, delivery: Uuid) -> Result<()> {
        let tasks = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .upgrade()
            .ok_or_else(|| Error::Internal("webhooks are not attached".into()))?;
        tasks
            .submit(
                cx,
                NewTask {
                    id: TaskId::new(),
                    kind: DELIVERY_KIND.into(),
                    priority: Priority::default(),
                    project_id: None,
                    trace_id: crate::trace::current_trace_id(),
                    input: json!({"webhook": webhook, "delivery": delivery}),
                    idempotency_key: None,
                    created_by: None,
                },
            )
            .await?;
        Ok(())
    }

    fn check_url(&self, raw: &str) -> Result<String> {
        let url = raw.trim();
        let parsed =
            url::Url::parse(url).map_err(|e| Error::invalid("url", format!("not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "https" | "http") || url.len() > MAX_URL {
            return Err(Error::invalid(
                "url",
                format!("must be an http(s) URL of at most {MAX_URL} characters"),
            ));
        }
        if !self.allow_private_urls && private_host(url) {
            return Err(Error::invalid(
                "url",
                "must not point at a loopback, private or link-local address in production",
            ));
        }
        Ok(url.to_owned())
    }

    fn view(o: StoredObject, secret: Option<String>) -> Result<Webhook> {
        let s: Stored =
            serde_json::from_value(o.body).map_err(|e| Error::internal("read a webhook", e))?;
        Ok(Webhook {
            id: o.id,
            url: s.url,
            events: s.events,
            description: s.description,
            secret_hint: s.hint,
            secret,
            created_at: o.created_at,
        })
    }
}

#[async_trait::async_trait]
impl Finished for Webhooks {
    async fn finished(
        &self,
        cx: TenantCtx,
        task: TaskId,
        kind: &str,
        status: TaskStatus,
        error: Option<&str>,
    ) {
        // A delivery's own outcome is in the delivery log, not another delivery.
        if kind == DELIVERY_KIND {
            return;
        }
        let event = match status {
            TaskStatus::Succeeded => "task.succeeded",
            TaskStatus::Failed => "task.failed",
            _ => return,
        };
        let data = json!({"task_id": task, "kind": kind, "status": status, "error": error});
        self.emit(cx, event, data).await;
    }
}

/// Sends one delivery: `{webhook, delivery}`.
pub struct DeliveryTask(pub Arc<Webhooks>);

#[derive(Deserialize)]
struct DeliveryInput {
    webhook: Uuid,
    delivery: Uuid,
}

fn delivery_input(input: &Value) -> std::result::Result<DeliveryInput, String> {
    DeliveryInput::deserialize(input)
        .map_err(|e| format!("webhook_delivery needs webhook and delivery ids: {e}"))
}

pub fn validate_delivery(input: &Value) -> std::result::Result<(), String> {
    delivery_input(input).map(|_| ())
}

#[async_trait::async_trait]
impl Handler for DeliveryTask {
    async fn run(&self, ctx: JobContext) -> std::result::Result<Value, JobError> {
        let DeliveryInput { webhook, delivery } =
            delivery_input(&ctx.input).map_err(JobError::fatal)?;
        let w = &self.0;
        let cx = TenantCtx::new(ctx.tenant_id);
        let retry = |e: Error| JobError::retryable(e.to_string());
        let (Some(hook), Some(record)) = (
            w.store.get_object(cx, KIND, webhook).await.map_err(retry)?,
            w.store
                .get_object(cx, DELIVERY, delivery)
                .await
                .map_err(retry)?,
        ) else {
            return Err(JobError::fatal("the webhook or its delivery was deleted"));
        };
        let hook: Stored = serde_json::from_value(hook.body)
            .map_err(|e| JobError::fatal(format!("read the webhook: {e}")))?;
        let mut body: DeliveryBody = serde_json::from_value(record.body.clone())
            .map_err(|e| JobError::fatal(format!("read the delivery: {e}")))?;
        let secret = w
            .secrets
            .open(cx, &hook.secret)
            .map_err(|e| JobError::fatal(e.to_string()))?;
        // Checked again at sending: the rule may have changed since the subscription.
        if let Err(e) = w.check_url(&hook.url) {
            return Err(JobError::fatal(e.to_string()));
        }
        let payload = serde_json::to_vec(&body.payload)
            .map_err(|e| JobError::fatal(format!("encode the payload: {e}")))?;
        let started = Instant::now();
        let sent = w
            .sender
            .send(
                &hook.url,
                &secret,
                &body.msg_id,
                chrono::Utc::now().timestamp(),
                payload,
            )
            .await;
        let (status, error) = match &sent {
            Ok(s) => (Some(*s), None),
            Err((s, e)) => (*s, Some(e.clone())),
        };
        body.attempts.push(DeliveryAttempt {
            at: morningai_core::now(),
            status,
            error: error.clone(),
            duration_ms: started.elapsed().as_millis() as u64,
        });
        let last = ctx.attempt >= ctx.max_attempts;
        let state = match (&sent, last) {
            (Ok(_), _) => "delivered",
            (Err(_), true) => "failed",
            (Err(_), false) => "pending",
        };
        let updated = StoredObject {
            status: state.into(),
            body: serde_json::to_value(&body).map_err(|e| JobError::fatal(e.to_string()))?,
            updated_at: morningai_core::now(),
            ..record
        };
        w.store.put_object(cx, &updated).await.map_err(retry)?;
        match sent {
            Ok(status) => {
                Ok(json!({"delivery": delivery, "status": status, "attempts": body.attempts.len()}))
            }
            Err((_, e)) => Err(JobError::retryable(format!("{}: {e}", hook.url))),
        }
    }
}

impl crate::Application {
    /// Subscribes a URL to events (admin+), audited. The answer holds the signing secret,
    /// which is never shown again.
    pub async fn create_webhook(&self, who: &Principal, req: CreateWebhook) -> Result<Webhook> {
        who.require(Role::Admin)?;
        let cx = who.cx();
        let w = &self.webhooks;
        let url = w.check_url(&req.url)?;
        let mut events = req.events;
        events.sort();
        events.dedup();
        if events.is_empty() {
            return Err(Error::invalid("events", "subscribe to at least one event"));
        }
        if let Some(e) = events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
            return Err(Error::invalid(
                "events",
                format!("unknown event {e:?} (known: {})", EVENTS.join(", ")),
            ));
        }
        let description = req
            .description
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 500)
        {
            return Err(Error::invalid("description", "at most 500 characters"));
        }
        let existing = self
            .store
            .list_objects(cx, KIND, &ObjectQuery::first(MAX_PER_TENANT))
            .await?;
        if existing.len() as u32 >= MAX_PER_TENANT {
            return Err(Error::conflict(
                "too_many_webhooks",
                format!("a tenant has at most {MAX_PER_TENANT} webhooks"),
            ));
        }
        let secret = {
            use rand::RngCore;
            let mut bytes = [0u8; 24];
            rand::rng().fill_bytes(&mut bytes);
            morningai_platforms::webhooks::new_secret(bytes)
        };
        let stored = Stored {
            url,
            events,
            description,
            hint: crate::secrets::hint(&secret),
            secret: w.secrets.seal(cx, &secret)?,
        };
        let now = morningai_core::now();
        let object = StoredObject {
            kind: KIND.into(),
            id: Uuid::now_v7(),
            parent: None,
            status: "active".into(),
            body: serde_json::to_value(&stored)
                .map_err(|e| Error::internal("encode a webhook", e))?,
            due_at: None,
            created_at: now,
            updated_at: now,
        };
        self.store.put_object(cx, &object).await?;
        w.forget(cx);
        self.audit(
            who,
            "webhook.create",
            "webhook",
            object.id,
            json!({"url": stored.url, "events": stored.events}),
        )
        .await?;
        Webhooks::view(object, Some(secret))
    }

    /// The tenant's webhooks (admin+).
    pub async fn webhooks(&self, who: &Principal) -> Result<Vec<Webhook>> {
        who.require(Role::Admin)?;
        self.store
            .list_objects(who.cx(), KIND, &ObjectQuery::first(MAX_PER_TENANT))
            .await?
            .into_iter()
            .map(|o| Webhooks::view(o, None))
            .collect()
    }

    async fn own_webhook(&self, who: &Principal, id: Uuid) -> Result<StoredObject> {
        who.require(Role::Admin)?;
        self.store
            .get_object(who.cx(), KIND, id)
            .await?
            .ok_or(Error::NotFound("webhook"))
    }

    pub async fn webhook(&self, who: &Principal, id: Uuid) -> Result<Webhook> {
        Webhooks::view(self.own_webhook(who, id).await?, None)
    }

    /// Unsubscribes (admin+), audited; queued deliveries of it fail as deleted.
    pub async fn delete_webhook(&self, who: &Principal, id: Uuid) -> Result<()> {
        who.require(Role::Admin)?;
        if !self.store.delete_object(who.cx(), KIND, id).await? {
            return Err(Error::NotFound("webhook"));
        }
        self.webhooks.forget(who.cx());
        self.audit(who, "webhook.delete", "webhook", id, json!({}))
            .await
    }

    /// The webhook's latest deliveries, newest first (admin+).
    pub async fn webhook_deliveries(&self, who: &Principal, id: Uuid) -> Result<Vec<Delivery>> {
        self.own_webhook(who, id).await?;
        let rows = self
            .store
            .list_objects(who.cx(), DELIVERY, &ObjectQuery::first(LOG).parent(id))
            .await?;
        rows.into_iter().map(delivery_view).collect()
    }

    /// Sends a delivery again (admin+), with the same `webhook-id`.
    pub async fn redeliver(&self, who: &Principal, id: Uuid, delivery: Uuid) -> Result<Delivery> {
        self.own_webhook(who, id).await?;
        let cx = who.cx();
        let record = self
            .store
            .get_object(cx, DELIVERY, delivery)
            .await?
            .filter(|o| o.parent == Some(id))
            .ok_or(Error::NotFound("delivery"))?;
        let pending = StoredObject {
            status: "pending".into(),
            updated_at: morningai_core::now(),
            ..record
        };
        self.store.put_object(cx, &pending).await?;
        self.webhooks.queue(cx, id, delivery).await?;
        self.audit(
            who,
            "webhook.redeliver",
            "webhook",
            id,
            json!({"delivery": delivery}),
        )
        .await?;
        delivery_view(pending)
    }
}

fn delivery_view(o: StoredObject) -> Result<Delivery> {
    let b: DeliveryBody =
        serde_json::from_value(o.body).map_err(|e| Error::internal("read a delivery", e))?;
    Ok(Delivery {
        id: o.id,
        msg_id: b.msg_id,
        event: b.event,
        status: o.status,
        payload: b.payload,
        attempts: b.attempts,
        created_at: o.created_at,
    })
}
