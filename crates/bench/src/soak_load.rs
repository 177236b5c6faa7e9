//! The load and the SSE clients of `bench/soak.sh` (bench/soak.py reconciles what this
//! writes against the database). Python threads could not offer more than ~118 slots/s on
//! the soak's two shared cores; this driver keeps one connection pool and costs a fraction
//! of that per request.
//!
//! A slot is an echo task (`POST /api/v1/tasks` with an idempotency key, then a `GET` of a
//! task acknowledged earlier) or, every tenth slot, a small graph run (`POST /threads`, then
//! `POST /threads/{id}/runs`). `open` offers slots at a fixed rate whatever the answers take
//! (up to `--max-in-flight` at once: beyond that the driver is behind, and says so in
//! `slots_offered`); `closed` runs `--concurrency` loops back to back, to measure how many
//! slots/s the deployment sustains (its saturation on this same mix).
//!
//! Writes to `--out`: `acked.tsv` (id, echo|graph, slot, epoch seconds of the POST),
//! `samples.tsv` (epoch seconds, post|get|run, HTTP status or 0, latency s), after the load
//! `load.json` (slots offered and acknowledged); SSE clients follow `/api/v1/events`
//! (resuming with `Last-Event-ID`) until standard input closes, then `sse.json` holds when
//! each attached, its reconnects and the tasks whose terminal event it saw.

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
struct Cli {
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long)]
    base: String,
    #[arg(long)]
    key: String,
    /// Assistant id of the uploaded soak graph.
    #[arg(long)]
    assistant: String,
    /// Slots per second (open mode).
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    #[arg(long, default_value_t = 600.0)]
    seconds: f64,
    #[arg(long, default_value_t = 512)]
    max_in_flight: usize,
    /// Loops (closed mode).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// SSE clients (0: none; then the driver exits after the load).
    #[arg(long, default_value_t = 0)]
    sse: usize,
    /// Echo tasks' idempotency keys are this prefix and the slot number.
    #[arg(long, default_value = "soak-")]
    key_prefix: String,
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Mode {
    Open,
    Closed,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[derive(Default)]
struct Log {
    acked: Vec<(String, &'static str, u64, f64)>,
    samples: Vec<(f64, &'static str, u16, f64)>,
}

struct Load {
    http: reqwest::Client,
    base: String,
    key: String,
    assistant: String,
    key_prefix: String,
    log: Mutex<Log>,
}

impl Load {
    /// Sends one request; status 0 for a connection error or timeout.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("x-api-key", &self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        match req.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                (status, res.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    fn sample(&self, t0: f64, op: &'static str, status: u16) {
        let latency = now() - t0;
        self.log
            .lock()
            .unwrap()
            .samples
            .push((t0, op, status, latency));
    }

    async fn slot(&self, i: u64) {
        use reqwest::Method;
        if i % 10 == 9 {
            let t0 = now();
            let (mut status, mut body) = self.call(Method::POST, "/threads", Some(json!({}))).await;
            if status == 200 {
                let thread = body["thread_id"].as_str().unwrap_or_default().to_owned();
                let run = json!({"assistant_id": self.assistant, "input": {"topic": format!("soak {i}")}});
                (status, body) = self
                    .call(Method::POST, &format!("/threads/{thread}/runs"), Some(run))
                    .await;
            }
            self.sample(t0, "run", status);
            if let (200, Some(task)) = (status, body["task_id"].as_str()) {
                self.log
                    .lock()
                    .unwrap()
                    .acked
                    .push((task.to_owned(), "graph", i, t0));
            }
            return;
        }
        let t0 = now();
        let task = json!({"kind": "echo", "input": {"n": i}, "idempotency_key": format!("{}{i}", self.key_prefix)});
        let (status, body) = self.call(Method::POST, "/api/v1/tasks", Some(task)).await;
        self.sample(t0, "post", status);
        let known = {
            let mut log = self.log.lock().unwrap();
            if let (200..=299, Some(id)) = (status, body["id"].as_str()) {
                log.acked.push((id.to_owned(), "echo", i, t0));
            }
            // An earlier acknowledged task, spread over all of them (Fibonacci hashing).
            let n = log.acked.len() as u64;
            (n > 0).then(|| {
                log.acked[(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % n) as usize]
                    .0
                    .clone()
            })
        };
        if let Some(id) = known {
            let t0 = now();
            let (status, _) = self
                .call(Method::GET, &format!("/api/v1/tasks/{id}"), None)
                .await;
            self.sample(t0, "get", status);
        }
    }
}

#[derive(Default)]
struct SseSeen {
    attached_at: Option<f64>,
    reconnects: u64,
    /// When each reconnection was sent, and the Last-Event-ID it carried.
    resumes: Vec<(f64, Option<String>)>,
    terminal: HashSet<String>,
}

/// Follows the tenant's event stream until `stop`, resuming after the last id it saw.
async fn sse_client(
    load: Arc<Load>,
    seen: Arc<Mutex<SseSeen>>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut last_id: Option<String> = None;
    while !*stop.borrow() {
        let mut req = load
            .http
            .get(format!("{}/api/v1/events", load.base))
            .header("x-api-key", &load.key)
            .header("accept", "text/event-stream")
            .timeout(Duration::from_secs(3600));
        if let Some(id) = &last_id {
            req = req.header("last-event-id", id);
        }
        if seen.lock().unwrap().attached_at.is_some() {
            seen.lock().unwrap().resumes.push((now(), last_id.clone()));
        }
        let followed = async {
            let res = req.send().await.ok().filter(|r| r.status() == 200)?;
            seen.lock().unwrap().attached_at.get_or_insert_with(now);
            let mut stream = res.bytes_stream();
            let (mut buf, mut id, mut data) = (Vec::new(), None::<String>, None::<Value>);
            while let Some(Ok(chunk)) = stream.next().await {
                buf.extend_from_slice(&chunk);
                while let Some(end) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=end).collect();
                    let line = String::from_utf8_lossy(&line);
                    let line = line.trim_end_matches(['\n', '\r']);
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = serde_json::from_str(v.trim()).ok();
                    } else if line.is_empty() {
                        // A frame with only an id (the position announced to a client that
                        // came without Last-Event-ID) moves the resume point too.
                        if let Some(d) = data.take()
                            && ["succeeded", "failed", "cancelled"]
                                .contains(&d["kind"].as_str().unwrap_or(""))
                        {
                            let task = d["task_id"].as_str().unwrap_or_default().to_owned();
                            seen.lock().unwrap().terminal.insert(task);
                        }
                        last_id = id.take().or(last_id.take());
                    }
                }
            }
            Some(())
        };
        let mut stopped = stop.clone();
        tokio::select! {
            _ = followed => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        if !*stop.borrow() {
            seen.lock().unwrap().reconnects += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.out).with_context(|| format!("create {}", cli.out.display()))?;
    if cli.rate <= 0.0 || cli.seconds <= 0.0 {
        bail!("--rate and --seconds must be positive");
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(cli.max_in_flight.max(cli.concurrency))
        .build()?;
    let load = Arc::new(Load {
        http,
        base: cli.base.trim_end_matches('/').to_owned(),
        key: cli.key.clone(),
        assistant: cli.assistant.clone(),
        key_prefix: cli.key_prefix.clone(),
        log: Mutex::default(),
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let clients: Vec<_> = (0..cli.sse)
        .map(|_| {
            let seen = Arc::new(Mutex::new(SseSeen::default()));
            let task = tokio::spawn(sse_client(load.clone(), seen.clone(), stop_rx.clone()));
            (seen, task)
        })
        .collect();
    if cli.sse > 0 {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(cli.seconds);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    match cli.mode {
        Mode::Open => {
            let permits = Arc::new(tokio::sync::Semaphore::new(cli.max_in_flight));
            let mut running = tokio::task::JoinSet::new();
            for k in 0u64.. {
                let due = started + Duration::from_secs_f64(k as f64 / cli.rate);
                if due >= deadline || Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let permit = permits.clone().acquire_owned().await?;
                let (load, i) = (load.clone(), k);
                next.store(i + 1, std::sync::atomic::Ordering::Relaxed);
                running.spawn(async move {
                    load.slot(i).await;
                    drop(permit);
                });
                while running.try_join_next().is_some() {}
            }
            running.join_all().await;
        }
        Mode::Closed => {
            let loops = (0..cli.concurrency).map(|_| {
                let (load, next) = (load.clone(), next.clone());
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        load.slot(i).await;
                    }
                })
            });
            for l in loops.collect::<Vec<_>>() {
                l.await?;
            }
        }
    }
    let took = started.elapsed().as_secs_f64();
    let slots = next.load(std::sync::atomic::Ordering::Relaxed);

    let log = std::mem::take(&mut *load.log.lock().unwrap());
    let mut acked = std::io::BufWriter::new(std::fs::File::create(cli.out.join("acked.tsv"))?);
    for (id, what, i, t) in &log.acked {
        writeln!(acked, "{id}\t{what}\t{i}\t{t:.3}")?;
    }
    acked.flush()?;
    let mut samples = std::io::BufWriter::new(std::fs::File::create(cli.out.join("samples.tsv"))?);
    for (t, op, status, latency) in &log.samples {
        writeln!(samples, "{t:.3}\t{op}\t{status}\t{latency:.5}")?;
    }
    samples.flush()?;
    let summary = json!({
        "seconds": took,
        "slots_offered": slots,
        "slots_offered_per_s": slots as f64 / cli.seconds,
        "acked": log.acked.len(),
        "acked_per_s": log.acked.len() as f64 / took,
    });
    std::fs::write(cli.out.join("load.json"), summary.to_string())?;
    println!("{summary}");

    if cli.sse > 0 {
        // The SSE clients follow until the caller has drained the queue and closes stdin.
        tokio::task::spawn_blocking(|| {
            std::io::copy(&mut std::io::stdin(), &mut std::io::sink()).map(drop)
        })
        .await??;
        stop_tx.send(true)?;
        let mut report = Vec::new();
        for (seen, task) in clients {
            task.await?;
            let seen = std::mem::take(&mut *seen.lock().unwrap());
            report.push(json!({
                "attached_at": seen.attached_at,
                "reconnects": seen.reconnects,
                "resumes": seen.resumes,
                "terminal": seen.terminal,
            }));
        }
        std::fs::write(cli.out.join("sse.json"), Value::from(report).to_string())?;
    }
    Ok(())
}
