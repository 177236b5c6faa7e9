//! Tasks that run: the worker pool, retries and dead letters, cancellation, SSE with
//! resume, schedules and the operations API — on SQLite (embedded queue) and on
//! PostgreSQL + Redis (each test with a database and key prefix of its own).

mod common;

use async_trait::async_trait;
use common::*;
use futures_util::StreamExt;
use morningai_worker::{Handler, JobContext, JobError, Registry};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

running_on_both_backends!(super::running_app;
    echo_runs_to_success_and_records_events,
    retries_then_dead_letter_then_retry_from_the_operations_api,
    cancelling_queued_and_running_tasks,
    sse_streams_live_and_resumes_after_last_event_id,
    sse_is_tenant_isolated,
    schedules_validate_and_fire,
    queue_operations_are_admin_only_and_validate_input,
    platform_admins_list_tenants_and_work_their_dead_letters,
);

/// Succeeds on attempt `fail_times + 1`.
struct Flaky;
#[async_trait]
impl Handler for Flaky {
    async fn run(&self, ctx: JobContext) -> Result<Value, JobError> {
        let fail_times = ctx.input["fail_times"].as_u64().unwrap_or(0) as u32;
        if ctx.attempt <= fail_times {
            return Err(JobError::retryable(format!(
                "flaky failure {}",
                ctx.attempt
            )));
        }
        ctx.progress(json!({"attempt": ctx.attempt})).await;
        Ok(ctx.input)
    }
}

struct Fatal;
#[async_trait]
impl Handler for Fatal {
    async fn run(&self, ctx: JobContext) -> Result<Value, JobError> {
        Err(JobError::fatal(
            ctx.input["message"].as_str().unwrap_or("fatal").to_owned(),
        ))
    }
}

/// Sleeps in steps; counts how often it was stopped mid-way (its future dropped at an
/// await point) and how often it ran to the end.
struct Slow {
    stopped: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
}
struct StopGuard(Arc<AtomicUsize>, bool);
impl Drop for StopGuard {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}
#[async_trait]
impl Handler for Slow {
    async fn run(&self, ctx: JobContext) -> Result<Value, JobError> {
        let mut guard = StopGuard(self.stopped.clone(), false);
        let ms = ctx.input["ms"].as_u64().unwrap_or(10_000);
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(ms) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        guard.1 = true;
        self.finished.fetch_add(1, Ordering::SeqCst);
        Ok(json!({"slept_ms": ms}))
    }
}

static SLOW_STOPPED: std::sync::LazyLock<Arc<AtomicUsize>> =
    std::sync::LazyLock::new(Default::default);
static SLOW_FINISHED: std::sync::LazyLock<Arc<AtomicUsize>> =
    std::sync::LazyLock::new(Default::default);

fn registry() -> Registry {
    let mut r = Registry::builtin();
    r.register("flaky", Arc::new(Flaky), |_| Ok(()));
    r.register("fatal", Arc::new(Fatal), |_| Ok(()));
    r.register(
        "slow",
        Arc::new(Slow {
            stopped: SLOW_STOPPED.clone(),
            finished: SLOW_FINISHED.clone(),
        }),
        |_| Ok(()),
    );
    r
}

async fn running_app(backend: Backend) -> TestApp {
    let db = own_database(backend).await;
    spawn_app_full(
        backend,
        |c| {
            c.worker_concurrency = 4;
            c.job_lease_secs = 1;
            c.retry_base_ms = 100;
            c.reconcile_interval_secs = 1;
            c.reconcile_min_age_secs = 1;
            c.sse_heartbeat_secs = 1;
            if db.is_some() {
                c.database_url = db;
            }
        },
        registry(),
    )
    .await
}

impl TestApp {
    async fn wait_status(&self, auth: &str, id: &str, want: &[&str]) -> Value {
        let start = Instant::now();
        loop {
            let (s, t) = self.get(&format!("/api/v1/tasks/{id}"), auth).await;
            assert_eq!(s, StatusCode::OK, "{t}");
            if want.contains(&t["status"].as_str().unwrap()) {
                return t;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "task stuck in {}: {t}",
                t["status"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn create_task(&self, auth: &str, body: Value) -> String {
        let (s, t) = self.post("/api/v1/tasks", auth, body).await;
        assert_eq!(s, StatusCode::CREATED, "{t}");
        t["id"].as_str().unwrap().to_owned()
    }

    async fn event_kinds(&self, tenant: &str, task: &str) -> Vec<String> {
        let cx = morningai_core::TenantCtx::new(tenant.parse().unwrap());
        let events = self
            .store
            .task_events(cx, Some(task.parse().unwrap()), 0, 1000)
            .await
            .unwrap();
        events.iter().map(|e| e.kind.as_str().to_owned()).collect()
    }

    async fn sse(&self, path: &str, auth: &str, last_event_id: Option<i64>) -> Sse {
        let mut req = self.client.get(self.url(path)).bearer_auth(auth);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Sse {
            stream: Box::pin(res.bytes_stream()),
            buf: String::new(),
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Frame {
    id: Option<i64>,
    event: Option<String>,
    data: Option<Value>,
    comment: Option<String>,
}

struct Sse {
    stream:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl Sse {
    /// The next frame (event or comment), or None after `timeout`.
    async fn next(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..end + 2).collect();
                let mut f = Frame::default();
                for line in raw.lines() {
                    if let Some(c) = line.strip_prefix(':') {
                        f.comment = Some(c.trim().to_owned());
                    } else if let Some((k, v)) = line.split_once(':') {
                        let v = v.strip_prefix(' ').unwrap_or(v);
                        match k {
                            "id" => f.id = v.parse().ok(),
                            "event" => f.event = Some(v.to_owned()),
                            "data" => f.data = serde_json::from_str(v).ok(),
                            _ => {}
                        }
                    }
                }
                return Some(f);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.stream.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// Events (not comments) until one of `until` kinds arrives for `task`.
    async fn events_until(&mut self, task: &str, until: &[&str]) -> Vec<Frame> {
        let mut out = Vec::new();
        loop {
            let f = self
                .next(Duration::from_secs(20))
                .await
                .expect("stream ended or stalled");
            if f.id.is_none() {
                continue;
            }
            let done = f.data.as_ref().is_some_and(|d| d["task_id"] == task)
                && until.contains(&f.event.as_deref().unwrap_or(""));
            out.push(f);
            if done {
                return out;
            }
        }
    }
}

async fn echo_runs_to_success_and_records_events(app: TestApp) {
    let a = app.signup("run").await;
    let input = json!({"hello": "world", "n": [1, 2, 3]});
    let id = app
        .create_task(&a.access, json!({"kind": "echo", "input": input}))
        .await;
    let t = app.wait_status(&a.access, &id, &["succeeded"]).await;
    assert_eq!(t["result"], input, "echo's result is its input");
    assert_eq!(
        app.event_kinds(&a.tenant_id, &id).await,
        ["queued", "started", "succeeded"]
    );
    let id2 = app
        .create_task(
            &a.access,
            json!({"kind": "flaky", "input": {"fail_times": 0}}),
        )
        .await;
    app.wait_status(&a.access, &id2, &["succeeded"]).await;
    assert_eq!(
        app.event_kinds(&a.tenant_id, &id2).await,
        ["queued", "started", "progress", "succeeded"]
    );
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for m in [
        "morningai_jobs_enqueued_total",
        "morningai_jobs_started_total",
        "morningai_jobs_succeeded_total",
        "morningai_job_queue_latency_seconds",
        "morningai_job_run_seconds",
    ] {
        assert!(metrics.contains(m), "{m} missing from /metrics");
    }
}

async fn retries_then_dead_letter_then_retry_from_the_operations_api(app: TestApp) {
    let a = app.signup("retry").await;
    // Fails twice, succeeds on the third (and last) attempt.
    let id = app
        .create_task(
            &a.access,
            json!({"kind": "flaky", "input": {"fail_times": 2}}),
        )
        .await;
    let t = app.wait_status(&a.access, &id, &["succeeded"]).await;
    assert_eq!(t["error"], Value::Null);
    let kinds = app.event_kinds(&a.tenant_id, &id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "retrying").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "started").count(),
        3,
        "{kinds:?}"
    );
    // Out of attempts: failed, dead-lettered with its last error.
    let id = app
        .create_task(
            &a.access,
            json!({"kind": "flaky", "input": {"fail_times": 5}}),
        )
        .await;
    let t = app.wait_status(&a.access, &id, &["failed"]).await;
    assert_eq!(t["error"], "flaky failure 3");
    let (s, dead) = app.get("/api/v1/queue/dead", &a.access).await;
    assert_eq!(s, StatusCode::OK, "{dead}");
    assert_eq!(dead[0]["id"], id.as_str());
    assert_eq!(
        (dead[0]["attempts"].as_u64(), dead[0]["last_error"].as_str()),
        (Some(3), Some("flaky failure 3"))
    );
    let (_, depth) = app.get("/api/v1/queue", &a.access).await;
    assert_eq!(depth["dead"], 1);
    // Non-retryable errors dead-letter at once.
    let fatal = app
        .create_task(
            &a.access,
            json!({"kind": "fatal", "input": {"message": "bad input"}}),
        )
        .await;
    let t = app.wait_status(&a.access, &fatal, &["failed"]).await;
    assert_eq!(t["error"], "bad input");
    assert_eq!(
        app.event_kinds(&a.tenant_id, &fatal)
            .await
            .iter()
            .filter(|k| *k == "started")
            .count(),
        1
    );
    // Retry from the dead-letter store: the task is queued and runs again (and fails again).
    let (s, b) = app
        .post(
            &format!("/api/v1/queue/dead/{fatal}/retry"),
            &a.access,
            json!(null),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    app.wait_status(&a.access, &fatal, &["failed"]).await;
    let started = app
        .event_kinds(&a.tenant_id, &fatal)
        .await
        .iter()
        .filter(|k| *k == "started")
        .count();
    assert_eq!(started, 2, "the retried job ran again");
    // Purge one, then all.
    let (s, _) = app
        .delete(&format!("/api/v1/queue/dead/{id}"), &a.access)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = app
        .delete(&format!("/api/v1/queue/dead/{id}"), &a.access)
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (_, purged) = app.delete("/api/v1/queue/dead", &a.access).await;
    assert_eq!(purged["purged"], 1);
    let (_, dead) = app.get("/api/v1/queue/dead", &a.access).await;
    assert_eq!(dead, json!([]));
}

/// A job that ends while its database is unreachable still records its outcome once the
/// database is back — by the worker's own retries: the reconciler, which would run the task
/// again much later, is kept out of it here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_reached_during_a_database_outage_is_recorded() {
    let url = fresh_pg_database().await;
    let name = url.rsplit('/').next().unwrap().to_owned();
    let app = spawn_app_full(
        Backend::Postgres,
        |c| {
            c.worker_concurrency = 2;
            c.reconcile_min_age_secs = 3600;
            c.database_url = Some(url.clone());
        },
        registry(),
    )
    .await;
    let a = app.signup("outage").await;
    let id = app
        .create_task(&a.access, json!({"kind": "slow", "input": {"ms": 1500}}))
        .await;
    app.wait_status(&a.access, &id, &["running"]).await;

    // The database refuses connections and drops the open ones while the handler ends.
    let admin_url = std::env::var("DATABASE_URL").unwrap();
    let (admin, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .await
        .unwrap();
    let before = SLOW_FINISHED.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        SLOW_FINISHED.load(Ordering::SeqCst) > before,
        "the handler ended during the outage"
    );
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();

    let t = app.wait_status(&a.access, &id, &["succeeded"]).await;
    assert_eq!(t["result"], json!({"slept_ms": 1500}));
    assert_eq!(
        app.event_kinds(&a.tenant_id, &id).await,
        ["queued", "started", "succeeded"]
    );
}

async fn cancelling_queued_and_running_tasks(app: TestApp) {
    let a = app.signup("cancel").await;
    let stopped_before = SLOW_STOPPED.load(Ordering::SeqCst);
    let id = app
        .create_task(&a.access, json!({"kind": "slow", "input": {"ms": 20_000}}))
        .await;
    app.wait_status(&a.access, &id, &["running"]).await;
    let (s, t) = app
        .post(
            &format!("/api/v1/tasks/{id}/cancel"),
            &a.access,
            json!(null),
        )
        .await;
    assert_eq!(
        (s, t["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{t}"
    );
    // The handler is stopped at its next await point (within a heartbeat, ~1/3 s here).
    let start = Instant::now();
    while SLOW_STOPPED.load(Ordering::SeqCst) == stopped_before {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the running handler was never stopped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = app.wait_status(&a.access, &id, &["cancelled"]).await;
    assert_eq!(t["result"], Value::Null);
    let (s, b) = app
        .post(
            &format!("/api/v1/tasks/{id}/cancel"),
            &a.access,
            json!(null),
        )
        .await;
    assert_problem(s, &b, StatusCode::CONFLICT, "task_finished");
    // A queued task that is cancelled never runs: hold the tenant's slots with slow jobs.
    let blockers: Vec<String> = futures_util::future::join_all(
        (0..8).map(|_| app.create_task(&a.access, json!({"kind": "slow", "input": {"ms": 1500}}))),
    )
    .await;
    let queued = app
        .create_task(&a.access, json!({"kind": "echo", "input": {"x": 1}}))
        .await;
    let (s, _) = app
        .post(
            &format!("/api/v1/tasks/{queued}/cancel"),
            &a.access,
            json!(null),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    for b in &blockers {
        app.wait_status(&a.access, b, &["succeeded"]).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = app.wait_status(&a.access, &queued, &["cancelled"]).await;
    assert_eq!(t["result"], Value::Null);
    assert!(
        !app.event_kinds(&a.tenant_id, &queued)
            .await
            .contains(&"started".to_owned()),
        "a cancelled queued task never starts"
    );
}

async fn sse_streams_live_and_resumes_after_last_event_id(app: TestApp) {
    let a = app.signup("sse").await;
    let id = app
        .create_task(
            &a.access,
            json!({"kind": "flaky", "input": {"fail_times": 1}}),
        )
        .await;
    let mut live = app
        .sse(&format!("/api/v1/tasks/{id}/events"), &a.access, None)
        .await;
    let frames = live.events_until(&id, &["succeeded"]).await;
    let kinds: Vec<&str> = frames.iter().map(|f| f.event.as_deref().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "queued",
            "started",
            "retrying",
            "started",
            "progress",
            "succeeded"
        ]
    );
    let ids: Vec<i64> = frames.iter().map(|f| f.id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    for f in &frames {
        let d = f.data.as_ref().unwrap();
        assert_eq!(
            (d["task_id"].as_str(), d["id"].as_i64()),
            (Some(id.as_str()), f.id)
        );
    }
    // Heartbeats are comments.
    let hb = live
        .next(Duration::from_secs(5))
        .await
        .expect("a heartbeat within the interval");
    assert_eq!((hb.comment.as_deref(), hb.id), (Some("heartbeat"), None));
    drop(live);
    // Resume after the second event: exactly the rest, nothing missed, nothing repeated.
    let mut resumed = app
        .sse(
            &format!("/api/v1/tasks/{id}/events"),
            &a.access,
            Some(ids[1]),
        )
        .await;
    let rest = resumed.events_until(&id, &["succeeded"]).await;
    assert_eq!(
        rest.iter().map(|f| f.id.unwrap()).collect::<Vec<_>>(),
        ids[2..].to_vec()
    );
    // The tenant-wide stream starts now, or resumes by id across tasks. Without
    // Last-Event-ID it first names its position: an id alone, no event.
    let mut all = app.sse("/api/v1/events", &a.access, None).await;
    let position = all
        .next(Duration::from_secs(20))
        .await
        .expect("a first frame");
    assert_eq!(position.id, ids.last().copied(), "{position:?}");
    assert!(
        position.event.is_none() && position.data.is_none(),
        "{position:?}"
    );
    let second = app.create_task(&a.access, json!({"kind": "echo"})).await;
    let frames = all.events_until(&second, &["succeeded"]).await;
    assert_eq!(
        frames
            .first()
            .and_then(|f| f.data.as_ref())
            .map(|d| d["task_id"].clone()),
        Some(json!(second)),
        "starts live"
    );
    let mut replay = app.sse("/api/v1/events", &a.access, Some(ids[0])).await;
    let again = replay.events_until(&second, &["succeeded"]).await;
    assert_eq!(
        again.len(),
        ids.len() - 1 + frames.len(),
        "every event of both tasks after the first"
    );
    // Bad Last-Event-ID.
    let res = app
        .client
        .get(app.url("/api/v1/events"))
        .bearer_auth(&a.access)
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

async fn sse_is_tenant_isolated(app: TestApp) {
    let a = app.signup("sse-a").await;
    let b = app.signup("sse-b").await;
    let a_task = app.create_task(&a.access, json!({"kind": "echo"})).await;
    let (s, body) = app
        .get(&format!("/api/v1/tasks/{a_task}/events"), &b.access)
        .await;
    assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
    let mut b_stream = app.sse("/api/v1/events", &b.access, Some(0)).await;
    let mut a_stream = app.sse("/api/v1/events", &a.access, Some(0)).await;
    let a2 = app.create_task(&a.access, json!({"kind": "echo"})).await;
    a_stream.events_until(&a2, &["succeeded"]).await;
    let b_task = app.create_task(&b.access, json!({"kind": "echo"})).await;
    let seen = b_stream.events_until(&b_task, &["succeeded"]).await;
    assert!(
        seen.iter()
            .all(|f| f.data.as_ref().unwrap()["task_id"] == b_task.as_str()),
        "B saw another tenant's events: {seen:?}"
    );
    // Even replaying from the very first id, B sees only its own.
    assert!(
        seen.iter()
            .all(|f| f.data.as_ref().unwrap()["tenant_id"] == b.tenant_id.as_str())
    );
}

async fn schedules_validate_and_fire(app: TestApp) {
    let a = app.signup("cron").await;
    for (body, field) in [
        (
            json!({"name": "x", "cron": "* * * *", "kind": "echo"}),
            "cron",
        ),
        (
            json!({"name": "x", "cron": "0 0 * * * *", "kind": "echo"}),
            "cron",
        ),
        (
            json!({"name": "x", "cron": "99 * * * *", "kind": "echo"}),
            "cron",
        ),
        (
            json!({"name": "x", "cron": "0 9 * * *", "timezone": "Mars/Base", "kind": "echo"}),
            "timezone",
        ),
        (
            json!({"name": "x", "cron": "0 9 * * *", "kind": "nope"}),
            "kind",
        ),
        (
            json!({"name": "x", "cron": "0 9 * * *", "kind": "echo", "priority": 12}),
            "priority",
        ),
        (
            json!({"name": "", "cron": "0 9 * * *", "kind": "echo"}),
            "name",
        ),
    ] {
        let (s, b) = app.post("/api/v1/schedules", &a.access, body.clone()).await;
        assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(b["errors"][0]["field"], field, "{body} → {b}");
    }
    let (s, sched) = app
        .post("/api/v1/schedules", &a.access, json!({"name": "nightly", "cron": "30 2 * * *", "timezone": "Asia/Tokyo", "kind": "echo", "input": {"report": true}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sched}");
    let next: chrono::DateTime<chrono::Utc> =
        sched["next_run_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        next.format("%H:%M").to_string(),
        "17:30",
        "02:30 in Tokyo is 17:30 UTC"
    );
    let (_, list) = app.get("/api/v1/schedules", &a.access).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Make it due now; the scheduler (1 s tick) fires it once and moves it to the next day.
    let sid: uuid::Uuid = sched["id"].as_str().unwrap().parse().unwrap();
    let past = morningai_core::now() - chrono::Duration::seconds(1);
    assert!(app.store.advance_schedule(sid, next, past).await.unwrap());
    let start = Instant::now();
    let task = loop {
        let (_, tasks) = app.get("/api/v1/tasks", &a.access).await;
        if let Some(t) = tasks["items"].as_array().unwrap().first() {
            break t.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the schedule never fired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (task["kind"].as_str(), &task["input"]),
        (Some("echo"), &json!({"report": true}))
    );
    assert!(
        task["idempotency_key"]
            .as_str()
            .unwrap()
            .starts_with(&format!("schedule:{sid}:"))
    );
    // Exactly once: the fire moved next_run_at by compare-and-set (the conformance suite
    // proves a second process cannot fire the same time), and one task exists.
    let (_, tasks) = app.get("/api/v1/tasks", &a.access).await;
    assert_eq!(
        tasks["items"].as_array().unwrap().len(),
        1,
        "fired exactly once"
    );
    let (_, list) = app.get("/api/v1/schedules", &a.access).await;
    let moved: chrono::DateTime<chrono::Utc> =
        list[0]["next_run_at"].as_str().unwrap().parse().unwrap();
    assert!(moved > chrono::Utc::now());
    // Delete: unknown ids and other tenants' schedules answer 404.
    let b = app.signup("cron-b").await;
    let (s, body) = app
        .delete(&format!("/api/v1/schedules/{sid}"), &b.access)
        .await;
    assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        app.delete(&format!("/api/v1/schedules/{sid}"), &a.access)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (s, body) = app
        .delete(&format!("/api/v1/schedules/{sid}"), &a.access)
        .await;
    assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
}

async fn queue_operations_are_admin_only_and_validate_input(app: TestApp) {
    let a = app.signup("ops").await;
    let m = app.member(&a, "ops-member", "member").await;
    for (method, path) in [
        (Method::GET, "/api/v1/queue".to_owned()),
        (Method::GET, "/api/v1/queue/dead".to_owned()),
        (Method::DELETE, "/api/v1/queue/dead".to_owned()),
        (
            Method::POST,
            format!("/api/v1/queue/dead/{}/retry", uuid::Uuid::now_v7()),
        ),
    ] {
        let (s, b) = app.call(method, &path, Some(&m.access), None).await;
        assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    }
    let (s, b) = app
        .post(
            &format!("/api/v1/queue/dead/{}/retry", uuid::Uuid::now_v7()),
            &a.access,
            json!(null),
        )
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
    let (s, b) = app.get("/api/v1/queue/dead?limit=0", &a.access).await;
    assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let (s, depth) = app.get("/api/v1/queue", &a.access).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(depth["ready_by_priority"].as_array().unwrap().len(), 10);
    // Another tenant's dead job is invisible and untouchable.
    let dead = app.create_task(&a.access, json!({"kind": "fatal"})).await;
    app.wait_status(&a.access, &dead, &["failed"]).await;
    let b = app.signup("ops-b").await;
    let (_, theirs) = app.get("/api/v1/queue/dead", &b.access).await;
    assert_eq!(theirs, json!([]));
    let (s, body) = app
        .post(
            &format!("/api/v1/queue/dead/{dead}/retry"),
            &b.access,
            json!(null),
        )
        .await;
    assert_problem(s, &body, StatusCode::NOT_FOUND, "not_found");
    let (_, purged) = app.delete("/api/v1/queue/dead", &b.access).await;
    assert_eq!(purged["purged"], 0);
    let (_, mine) = app.get("/api/v1/queue/dead", &a.access).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
}

async fn platform_admins_list_tenants_and_work_their_dead_letters(app: TestApp) {
    // Platform admins are made by the CLI (`user create --platform-admin`): the store path.
    let email = unique_email("root");
    let root = app
        .store
        .create_user(morningai_core::entities::NewUser {
            email: morningai_core::Email::parse(&email).unwrap(),
            name: None,
            password_hash: morningai_app::auth::hash_password(PASSWORD).unwrap(),
            is_platform_admin: true,
        })
        .await
        .unwrap();
    let slug = format!(
        "operators-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    app.store
        .create_tenant(
            morningai_core::entities::NewTenant {
                slug: morningai_core::Slug::parse(&slug).unwrap(),
                name: "Operators".into(),
            },
            root.id,
        )
        .await
        .unwrap();
    let root = app.login(&email, None).await;
    let a = app.signup("plat-a").await;
    let dead = app.create_task(&a.access, json!({"kind": "fatal"})).await;
    app.wait_status(&a.access, &dead, &["failed"]).await;
    let tenant = &a.tenant_id;
    let routes = [
        (Method::GET, "/api/v1/platform/tenants".to_owned()),
        (
            Method::GET,
            format!("/api/v1/platform/tenants/{tenant}/queue/dead"),
        ),
        (
            Method::DELETE,
            format!("/api/v1/platform/tenants/{tenant}/queue/dead"),
        ),
        (
            Method::DELETE,
            format!("/api/v1/platform/tenants/{tenant}/queue/dead/{dead}"),
        ),
        (
            Method::POST,
            format!("/api/v1/platform/tenants/{tenant}/queue/dead/{dead}/retry"),
        ),
    ];
    // A tenant's owner is no platform admin, and a platform admin's API key speaks for
    // one tenant only.
    let root_key = app.api_key(&root, None).await;
    for auth in [&a.access, &root_key] {
        for (method, path) in &routes {
            let (s, b) = app.call(method.clone(), path, Some(auth), None).await;
            assert_problem(s, &b, StatusCode::FORBIDDEN, "platform_admin_required");
        }
    }
    // The tenant, found by keyset paging on slugs, with its counts and its queue.
    let (_, t) = app.get("/api/v1/tenant", &a.access).await;
    let a_slug = t["slug"].as_str().unwrap();
    let (s, page) = app
        .get(
            &format!(
                "/api/v1/platform/tenants?limit=1&after={}",
                &a_slug[..a_slug.len() - 1]
            ),
            &root.access,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page[0]["tenant"]["id"], tenant.as_str(), "{page}");
    assert_eq!(
        (
            &page[0]["members"],
            &page[0]["tasks"],
            &page[0]["active_tasks"]
        ),
        (&json!(1), &json!(1), &json!(0))
    );
    assert_eq!(page[0]["queue"]["dead"], 1, "{page}");
    let long = "a".repeat(201);
    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "after=%00",
        &format!("after={long}"),
    ] {
        let (s, b) = app
            .get(&format!("/api/v1/platform/tenants?{bad}"), &root.access)
            .await;
        assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    let (s, b) = app
        .get(
            &format!(
                "/api/v1/platform/tenants/{}/queue/dead",
                uuid::Uuid::now_v7()
            ),
            &root.access,
        )
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
    // The tenant's dead letters: list, retry (it runs again), purge one, purge all.
    let (s, list) = app.get(&routes[1].1, &root.access).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list[0]["id"], dead.as_str());
    let (s, b) = app.post(&routes[4].1, &root.access, json!(null)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    app.wait_status(&a.access, &dead, &["failed"]).await;
    let kinds = app.event_kinds(tenant, &dead).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "started").count(),
        2,
        "{kinds:?}"
    );
    let (s, _) = app.delete(&routes[3].1, &root.access).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = app.delete(&routes[3].1, &root.access).await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
    let again = app.create_task(&a.access, json!({"kind": "fatal"})).await;
    app.wait_status(&a.access, &again, &["failed"]).await;
    let (_, purged) = app.delete(&routes[2].1, &root.access).await;
    assert_eq!(purged["purged"], 1);
    // The tenant's own admins see what the platform admin did, and its audit log says who.
    let (_, mine) = app.get("/api/v1/queue/dead", &a.access).await;
    assert_eq!(mine, json!([]));
    let cx = morningai_core::TenantCtx::new(tenant.parse::<uuid::Uuid>().unwrap().into());
    let log = app.store.audit_log(cx, 50, None).await.unwrap();
    let by_root: Vec<&str> = log
        .iter()
        .filter(|e| {
            matches!(e.actor, morningai_core::entities::Actor::User { id } if id.to_string() == root.user_id)
        })
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(
        by_root,
        ["queue.purge_dead", "queue.purge_dead", "queue.retry_dead"],
        "{log:?}"
    );
}
