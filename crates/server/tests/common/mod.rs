//! `spawn_app()`: the real server on a random port, against SQLite (a fresh file) or
//! PostgreSQL (the database in DATABASE_URL; tests isolate themselves by creating their own
//! users and tenants).

#![allow(dead_code)]

use morningai_app::Application;
use morningai_app::config::Config;
use morningai_core::Store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub const SIGNING_KEY: &str = "test-signing-key-0123456789abcdef0123456789";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates each listed test once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::spawn_app(super::common::Backend::Sqlite).await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::spawn_app(super::common::Backend::Postgres).await).await
                }
            )*
        }
    };
}

/// Generates each listed test once per backend, handing it the backend (for tests that
/// configure their own app).
#[macro_export]
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::common::Backend::Postgres).await
                }
            )*
        }
    };
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub backend: Backend,
    pub config: Config,
    dir: Option<PathBuf>,
    stop: morningai_worker::CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "morningai-test-{tag}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Polls a task until it has finished.
pub async fn wait_finished(app: &TestApp, who: &Account, id: &str) -> Value {
    for _ in 0..600 {
        let (_, t) = app.get(&format!("/api/v1/tasks/{id}"), &who.access).await;
        if ["succeeded", "failed", "cancelled"].contains(&t["status"].as_str().unwrap_or("")) {
            return t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("task {id} did not finish");
}

/// The app with the real MiniLM weights (from `MORNINGAI_EMBED_MODEL_DIR`).
pub async fn with_model(backend: Backend) -> TestApp {
    let dir = std::env::var("MORNINGAI_EMBED_MODEL_DIR").expect(
        "MORNINGAI_EMBED_MODEL_DIR is not set: run the suite with scripts/test.sh, which fetches the MiniLM weights",
    );
    spawn_app_with(backend, |c| c.embed_model_dir = Some(dir.into())).await
}

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_full(backend, tweak, morningai_worker::Registry::builtin()).await
}

/// A PostgreSQL database of its own (for tests whose reconciler must not see other
/// tests' tasks), created next to the one in DATABASE_URL.
pub async fn fresh_pg_database() -> String {
    let url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the suite with scripts/test.sh");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    match url.rfind('/') {
        Some(i) => format!("{}/{name}", &url[..i]),
        None => panic!("DATABASE_URL without a database name: {url}"),
    }
}

/// A fresh PostgreSQL database on the next release's schema: this binary's migrations,
/// then `crates/postgres/tests/next_schema.sql` (every additive change the rollout rule
/// allows, recorded as one version ahead).
pub async fn next_schema_pg_database() -> String {
    let url = fresh_pg_database().await;
    drop(
        morningai_postgres::PgStore::connect(&url, 1)
            .await
            .expect("migrate"),
    );
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .batch_execute(include_str!("../../../postgres/tests/next_schema.sql"))
        .await
        .expect("apply next_schema.sql");
    url
}

pub async fn spawn_app_full(
    backend: Backend,
    tweak: impl FnOnce(&mut Config),
    registry: morningai_worker::Registry,
) -> TestApp {
    let dir = temp_dir("api");
    let mut config = Config {
        data_dir: dir.clone(),
        signing_key: Some(SIGNING_KEY.into()),
        body_limit_bytes: 64 * 1024,
        // API tests see tasks as they were created; tests that run jobs opt in to workers.
        worker_concurrency: 0,
        // Every test signs up from 127.0.0.1; the limit has a test of its own.
        signup_per_hour_per_ip: 10_000,
        ..Config::default()
    };
    if let Backend::Postgres = backend {
        config.database_url = Some(
            std::env::var("DATABASE_URL")
                .expect("DATABASE_URL is not set: run the suite with scripts/test.sh, which provisions PostgreSQL"),
        );
        config.redis_url = Some(
            std::env::var("REDIS_URL")
                .expect("REDIS_URL is not set: run the suite with scripts/test.sh"),
        );
        config.redis_prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
        config.db_max_connections = 4;
    }
    tweak(&mut config);
    let app = Arc::new(
        Application::build_with(config.clone(), registry)
            .await
            .expect("build the application"),
    );
    let stop = morningai_worker::CancellationToken::new();
    if config.worker_concurrency > 0 {
        let plan = morningai_app::runtime::Plan {
            sweep_every: Some(std::time::Duration::from_millis(300)),
            ..config.plan(config.worker_concurrency)
        };
        morningai_app::runtime::spawn(&app, plan, stop.clone());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http_stop = stop.clone();
    tokio::spawn(morningai_server::serve(listener, app.clone(), async move {
        http_stop.cancelled().await
    }));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        store: app.store.clone(),
        backend,
        config,
        dir: Some(dir),
        stop,
    }
}

/// A signed-up user with their tenant and tokens.
#[derive(Clone, Debug)]
pub struct Account {
    pub user_id: String,
    pub email: String,
    pub tenant_id: String,
    pub access: String,
    pub refresh: String,
}

pub fn unique_email(tag: &str) -> String {
    format!(
        "{tag}-{}@example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub const PASSWORD: &str = "correct horse battery";

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request with an optional bearer credential and JSON body; returns the status
    /// and the parsed body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    pub async fn get(&self, path: &str, auth: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(auth), None).await
    }

    pub async fn post(&self, path: &str, auth: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(auth), Some(body)).await
    }

    pub async fn put(&self, path: &str, auth: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(auth), Some(body)).await
    }

    pub async fn patch(&self, path: &str, auth: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(auth), Some(body)).await
    }

    pub async fn delete(&self, path: &str, auth: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(auth), None).await
    }

    pub async fn signup(&self, tag: &str) -> Account {
        let email = unique_email(tag);
        let (s, b) = self
            .call(
                Method::POST,
                "/api/v1/auth/signup",
                None,
                Some(json!({"email": email, "password": PASSWORD, "name": tag})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "signup: {b}");
        account(&b)
    }

    /// A new user added to `owner`'s tenant with `role`, logged in there.
    pub async fn member(&self, owner: &Account, tag: &str, role: &str) -> Account {
        let other = self.signup(tag).await;
        let (s, b) = self
            .post(
                "/api/v1/tenant/members",
                &owner.access,
                json!({"email": other.email, "role": role}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "add member: {b}");
        self.login(&other.email, Some(&owner.tenant_id)).await
    }

    pub async fn login(&self, email: &str, tenant: Option<&str>) -> Account {
        let mut body = json!({"email": email, "password": PASSWORD});
        if let Some(t) = tenant {
            body["tenant_id"] = json!(t);
        }
        let (s, b) = self
            .call(Method::POST, "/api/v1/auth/login", None, Some(body))
            .await;
        assert_eq!(s, StatusCode::OK, "login: {b}");
        account(&b)
    }

    pub async fn api_key(&self, who: &Account, role: Option<&str>) -> String {
        let mut body = json!({"name": "test key"});
        if let Some(r) = role {
            body["role"] = json!(r);
        }
        let (s, b) = self.post("/api/v1/api-keys", &who.access, body).await;
        assert_eq!(s, StatusCode::CREATED, "create key: {b}");
        b["secret"].as_str().unwrap().to_owned()
    }
}

pub fn account(b: &Value) -> Account {
    Account {
        user_id: b["user"]["id"].as_str().expect("user.id").to_owned(),
        email: b["user"]["email"].as_str().unwrap().to_owned(),
        tenant_id: b["tenant"]["id"].as_str().unwrap().to_owned(),
        access: b["access_token"].as_str().unwrap().to_owned(),
        refresh: b["refresh_token"].as_str().unwrap().to_owned(),
    }
}

/// Asserts a problem+json response with the given status and code.
pub fn assert_problem(status: StatusCode, body: &Value, want_status: StatusCode, want_code: &str) {
    assert_eq!(status, want_status, "body: {body}");
    assert_eq!(body["code"], want_code, "body: {body}");
    assert_eq!(body["status"], want_status.as_u16(), "body: {body}");
    assert!(
        body["trace_id"].as_str().is_some_and(|t| t.len() == 32),
        "trace_id missing: {body}"
    );
    assert!(
        body["title"].is_string() && body["type"].is_string() && body["detail"].is_string(),
        "{body}"
    );
}

/// Generates each listed test once per backend, on an app whose workers run jobs.
#[macro_export]
macro_rules! running_on_both_backends {
    ($make:path; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($make(super::common::Backend::Sqlite).await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($make(super::common::Backend::Postgres).await).await
                }
            )*
        }
    };
}

/// A database of its own on PostgreSQL (its reconciler must not see other tests' tasks).
pub async fn own_database(backend: Backend) -> Option<String> {
    match backend {
        Backend::Postgres => Some(fresh_pg_database().await),
        Backend::Sqlite => None,
    }
}

/// An app whose price table knows `fake-model` ($2 / $8 per million tokens), with no
/// provider retries.
pub async fn priced_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |c| {
        c.provider_max_retries = 0;
        c.prices = serde_json::from_value(
            json!({"fake-model": {"input_per_mtok": 2.0, "output_per_mtok": 8.0}}),
        )
        .unwrap();
    })
    .await
}

/// A `docs` collection holding `docs/queue.md` (three lines about retries); its id.
pub async fn remember(app: &TestApp, who: &Account) -> String {
    let (s, c) = app
        .post(
            "/api/v1/memory/collections",
            &who.access,
            json!({"name": "docs"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    let text =
        "# Queue\n\nJobs are leased for thirty seconds and retried with exponential backoff.\n";
    let (s, b) = app
        .post(
            &format!("/api/v1/memory/collections/{id}/items"),
            &who.access,
            json!({"source": "docs/queue.md", "text": text}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    id
}
