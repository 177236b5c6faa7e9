//! Real processes, real failures: workers killed with SIGKILL at random moments, Redis
//! flushed mid-run, an embedded server killed and restarted, a worker stopped with
//! SIGTERM. Every task must still end succeeded, with its result written once.
//!
//! Distributed clusters use a PostgreSQL database and a Redis key prefix of their own, so
//! their reconcilers never see another test's tasks.

mod common;

use common::{Proc, clean_cmd, scratch, spawn_ready};
use futures_util::StreamExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

/// The cluster tests each start several processes; running them one at a time keeps the
/// two cores from being the thing under test.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the suite with scripts/test.sh"))
}

async fn fresh_database() -> String {
    let url = env("DATABASE_URL");
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    let name = format!("crash_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    format!("{}/{name}", &url[..url.rfind('/').unwrap()])
}

/// Where the processes of one test find their database, queue and settings.
struct Setup {
    dir: PathBuf,
    database_url: Option<String>,
    redis_url: Option<String>,
}

impl Setup {
    fn cmd(&self) -> Command {
        let mut c = clean_cmd(&self.dir);
        c.env("MORNINGAI_CONFIG", self.dir.join("morningai.toml"))
            .env("MORNINGAI_LOG_LEVEL", "warn");
        if let Some(u) = &self.database_url {
            c.env("DATABASE_URL", u);
        }
        if let Some(u) = &self.redis_url {
            c.env("REDIS_URL", u);
        }
        c
    }

    fn new(tag: &str, database_url: Option<String>, redis: bool) -> Self {
        let dir = scratch(&format!("crash-{tag}"));
        let toml = format!(
            "redis_prefix = \"crash-{}\"\njob_lease_secs = 2\nreconcile_interval_secs = 1\nreconcile_min_age_secs = 2\nworker_concurrency = 8\n",
            uuid::Uuid::new_v4().simple()
        );
        std::fs::write(dir.join("morningai.toml"), toml).unwrap();
        Self {
            dir,
            database_url,
            redis_url: redis.then(|| env("REDIS_URL")),
        }
    }

    /// A user, a tenant and a member API key, made with the CLI.
    fn api_key(&self) -> String {
        let run = |args: &[&str]| {
            let out = self
                .cmd()
                .args(args)
                .env("MORNINGAI_PASSWORD", "crash-test-password")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        run(&["user", "create", "--email", "crash@example.com"]);
        run(&[
            "tenant",
            "create",
            "--name",
            "Crash",
            "--slug",
            "crash",
            "--owner",
            "crash@example.com",
        ]);
        run(&[
            "apikey",
            "create",
            "--tenant",
            "crash",
            "--user",
            "crash@example.com",
            "--role",
            "member",
        ])
        .trim()
        .to_owned()
    }

    /// `serve` on a random port; returns the process and its base URL.
    fn serve(&self) -> (Proc, String) {
        common::serve(&mut self.cmd())
    }

    fn worker(&self, concurrency: usize, grace_secs: u64) -> Proc {
        let (p, line) = spawn_ready(self.cmd().args([
            "worker",
            "--concurrency",
            &concurrency.to_string(),
            "--grace-secs",
            &grace_secs.to_string(),
        ]));
        assert!(line.contains("worker running"), "{line:?}");
        p
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates `n` echo tasks through the API, 16 requests at a time.
async fn submit(api: &str, key: &str, n: usize, sleep_ms: u64) -> Vec<String> {
    let client = reqwest::Client::new();
    futures_util::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            async move {
                let res = client
                    .post(format!("{api}/api/v1/tasks"))
                    .header("x-api-key", key)
                    .json(&serde_json::json!({"kind": "echo", "input": {"n": i, "sleep_ms": sleep_ms}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 201);
                res.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// Counts of tasks by status, over the API (newest first, paginated).
async fn statuses(api: &str, key: &str) -> std::collections::BTreeMap<String, usize> {
    let client = reqwest::Client::new();
    let mut out = std::collections::BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{api}/api/v1/tasks?limit=200");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: serde_json::Value = client
            .get(url)
            .header("x-api-key", key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for t in page["items"].as_array().unwrap() {
            assert_eq!(
                t["status"] == "succeeded",
                t["result"] == t["input"],
                "result written iff succeeded: {t}"
            );
            *out.entry(t["status"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

async fn wait_all_succeeded(api: &str, key: &str, n: usize, timeout: Duration) {
    let start = Instant::now();
    loop {
        let s = statuses(api, key).await;
        if s.get("succeeded") == Some(&n) {
            return;
        }
        assert!(start.elapsed() < timeout, "not every task succeeded: {s:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// (tasks started more than once, succeeded events) from the stored events.
async fn execution_counts(database_url: &str) -> (i64, i64) {
    let (client, conn) = tokio_postgres::connect(database_url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let twice: i64 = client
        .query_one("SELECT count(*) FROM (SELECT task_id FROM task_events WHERE kind = 'started' GROUP BY task_id HAVING count(*) > 1) d", &[])
        .await
        .unwrap()
        .get(0);
    let succeeded: i64 = client
        .query_one(
            "SELECT count(*) FROM task_events WHERE kind = 'succeeded'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    (twice, succeeded)
}

/// Appends a line to `target/tmp/crash-report.txt`, which `scripts/test.sh` prints at the
/// end (passing tests' output is otherwise captured).
fn report(line: String) {
    use std::io::Write;
    eprintln!("{line}");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("crash-report.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn pseudo_random(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_at_random_lose_no_task_and_write_each_result_once() {
    let _serial = SERIAL.lock().await;
    let setup = Setup::new("kill", Some(fresh_database().await), true);
    let key = setup.api_key();
    let (_api, api) = setup.serve();
    let mut workers: Vec<Proc> = (0..3).map(|_| setup.worker(8, 1)).collect();
    const N: usize = 2000;
    let submitting = tokio::spawn({
        let (api, key) = (api.clone(), key.clone());
        async move { submit(&api, &key, N, 5).await }
    });
    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ std::process::id() as u64;
    let mut kills = 0;
    let start = Instant::now();
    while kills < 8 && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200 + pseudo_random(&mut seed) % 400)).await;
        let victim = (pseudo_random(&mut seed) as usize) % workers.len();
        let mut old = std::mem::replace(&mut workers[victim], setup.worker(8, 1));
        old.0.kill().unwrap(); // SIGKILL
        let _ = old.0.wait();
        kills += 1;
    }
    assert_eq!(submitting.await.unwrap().len(), N);
    wait_all_succeeded(&api, &key, N, Duration::from_secs(180)).await;
    let (twice, succeeded) = execution_counts(setup.database_url.as_deref().unwrap()).await;
    report(format!(
        "crash test: {N} tasks, {kills} workers SIGKILLed, {twice} tasks executed more than once, {succeeded} results recorded"
    ));
    assert_eq!(
        succeeded, N as i64,
        "each task's result is recorded exactly once, whatever ran twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushall_mid_run_loses_no_task() {
    let _serial = SERIAL.lock().await;
    let setup = Setup::new("flush", Some(fresh_database().await), true);
    let key = setup.api_key();
    let (_api, api) = setup.serve();
    let _workers: Vec<Proc> = (0..2).map(|_| setup.worker(8, 1)).collect();
    const N: usize = 500;
    let ids = submit(&api, &key, N, 20).await;
    assert_eq!(ids.len(), N);
    // Flush once some, but not all, tasks have finished.
    let start = Instant::now();
    loop {
        let done = statuses(&api, &key)
            .await
            .get("succeeded")
            .copied()
            .unwrap_or(0);
        if done >= N / 5 {
            assert!(
                done < N,
                "everything finished before the flush; make the tasks slower"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no progress before the flush"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = redis_client();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
    wait_all_succeeded(&api, &key, N, Duration::from_secs(120)).await;
    let (twice, succeeded) = execution_counts(setup.database_url.as_deref().unwrap()).await;
    report(format!(
        "flush test: {N} tasks, Redis flushed mid-run, {twice} executed more than once, {succeeded} results recorded"
    ));
    assert_eq!(succeeded, N as i64);
}

fn redis_client() -> redis::Client {
    redis::Client::open(env("REDIS_URL")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_server_killed_and_restarted_loses_no_task() {
    let _serial = SERIAL.lock().await;
    let setup = Setup::new("embedded", None, false);
    let key = setup.api_key();
    let (server, api) = setup.serve();
    const N: usize = 300;
    submit(&api, &key, N, 20).await;
    let start = Instant::now();
    while statuses(&api, &key)
        .await
        .get("succeeded")
        .copied()
        .unwrap_or(0)
        < N / 5
    {
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server); // SIGKILL mid-run
    let (_server, api) = setup.serve();
    wait_all_succeeded(&api, &key, N, Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_process_streams_events_of_tasks_run_by_a_worker_process() {
    let _serial = SERIAL.lock().await;
    let setup = Setup::new("sse", Some(fresh_database().await), true);
    let key = setup.api_key();
    let (_api, api) = setup.serve(); // distributed serve runs no jobs itself
    let _worker = setup.worker(4, 1);
    let client = reqwest::Client::new();
    let res = client
        .get(format!("{api}/api/v1/events"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut stream = res.bytes_stream();
    let id = submit(&api, &key, 1, 0).await.remove(0);
    let mut buf = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !buf.contains("event: succeeded") {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("no succeeded event from the worker process");
        let chunk = tokio::time::timeout(left, stream.next())
            .await
            .expect("stream stalled")
            .unwrap()
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
    for kind in ["queued", "started", "succeeded"] {
        assert!(
            buf.contains(&format!("event: {kind}")),
            "{kind} missing: {buf}"
        );
    }
    assert!(buf.contains(&id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_jobs_finish_then_exits_zero() {
    let _serial = SERIAL.lock().await;
    let setup = Setup::new("term", Some(fresh_database().await), true);
    let key = setup.api_key();
    let (_api, api) = setup.serve();
    let mut worker = setup.worker(2, 10);
    let id = submit(&api, &key, 1, 1500).await.remove(0);
    let client = reqwest::Client::new();
    let status = |client: reqwest::Client, api: String, key: String, id: String| async move {
        let t: serde_json::Value = client
            .get(format!("{api}/api/v1/tasks/{id}"))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        t["status"].as_str().unwrap().to_owned()
    };
    let start = Instant::now();
    while status(client.clone(), api.clone(), key.clone(), id.clone()).await != "running" {
        assert!(start.elapsed() < Duration::from_secs(20), "never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = worker.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exit = tokio::task::spawn_blocking(move || worker.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "worker exit status {exit:?}");
    assert_eq!(
        status(client, api, key, id).await,
        "succeeded",
        "the in-flight job finished before exit"
    );
}

/// A 20-step graph run; its worker is SIGKILLed mid-run. Another worker resumes it from the
/// last checkpoint: the log is exactly 1..=20 and no completed step ran twice (at most the
/// step in flight at the kill runs again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_run_survives_its_worker_being_killed() {
    let _serial = SERIAL.lock().await;
    let setup = Setup::new("graph", Some(fresh_database().await), true);
    let key = setup.api_key();
    let (_api, api) = setup.serve();
    let mut first = setup.worker(2, 1);
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, body: serde_json::Value| {
        let (client, api, key) = (client.clone(), api.clone(), key.clone());
        async move {
            let res = client
                .request(method, format!("{api}{path}"))
                .header("x-api-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "{path}: {}", res.status());
            res.json::<serde_json::Value>().await.unwrap()
        }
    };
    let thread = call(
        reqwest::Method::POST,
        "/threads".into(),
        serde_json::json!({}),
    )
    .await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = call(
        reqwest::Method::POST,
        format!("/threads/{thread}/runs"),
        serde_json::json!({"assistant_id": "steps", "input": {"target": 20, "sleep_ms": 150}}),
    )
    .await;
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    // Kill the worker once a few steps are checkpointed.
    let start = Instant::now();
    loop {
        let state = call(
            reqwest::Method::GET,
            format!("/threads/{thread}/state"),
            serde_json::Value::Null,
        )
        .await;
        if state["values"]["log"].as_array().map_or(0, Vec::len) >= 5 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run made no progress"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.0.kill().unwrap();
    let _ = first.0.wait();
    let _second = setup.worker(2, 1);
    let start = Instant::now();
    loop {
        let r = call(
            reqwest::Method::GET,
            format!("/threads/{thread}/runs/{run_id}"),
            serde_json::Value::Null,
        )
        .await;
        if r["status"] == "success" {
            break;
        }
        assert_ne!(r["status"], "error", "{r}");
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the run never finished: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let state = call(
        reqwest::Method::GET,
        format!("/threads/{thread}/state"),
        serde_json::Value::Null,
    )
    .await;
    let expected: Vec<u64> = (1..=20).collect();
    assert_eq!(
        state["values"]["log"],
        serde_json::json!(expected),
        "{state}"
    );
    // Count step executions from the run's debug events.
    let (pg, conn) = tokio_postgres::connect(setup.database_url.as_deref().unwrap(), NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let executions: i64 = pg
        .query_one(
            "SELECT count(*) FROM task_events WHERE kind = 'progress' AND data->>'mode' = 'debug' AND data->'data'->>'type' = 'task'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    report(format!(
        "graph crash test: 20-step run, worker SIGKILLed mid-run, {executions} step executions for 20 steps"
    ));
    assert!(
        (20..=21).contains(&executions),
        "completed steps ran again: {executions} executions"
    );
}
