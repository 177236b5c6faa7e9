//! Queue benchmark driver. `fill` enqueues no-op jobs, `drain` runs a worker pool in burst
//! mode (exits when the queue is empty) and reports jobs/s, `latency` measures enqueue →
//! handler start on an idle queue. `bench/queue.sh` runs it beside Python RQ.

use anyhow::{Context, Result};
use async_trait::async_trait;
use clap::{Parser, Subcommand, ValueEnum};
use futures_util::StreamExt;
use morningai_core::queue::{JobQueue, NewJob};
use morningai_core::{TaskId, TenantId};
use morningai_worker::{
    CancellationToken, Handler, JobContext, JobError, NoHooks, Registry, WorkerConfig, run_pool,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Cli {
    #[arg(long, value_enum)]
    backend: Backend,
    /// Redis URL (redis backend) or SQLite file (sqlite backend).
    #[arg(long)]
    target: String,
    #[arg(long, default_value = "bench")]
    prefix: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    Redis,
    Sqlite,
}

#[derive(Subcommand)]
enum Cmd {
    /// Enqueue N no-op jobs (64 in flight) and print the enqueue rate.
    Fill {
        #[arg(long)]
        jobs: usize,
    },
    /// Run a worker pool until the queue is empty; print jobs done and jobs/s.
    Drain {
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Fill and drain in one process (SQLite, where a second process would only contend).
    FillDrain {
        #[arg(long)]
        jobs: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// Enqueue one job at a time on an idle queue; report pickup latency percentiles.
    Latency {
        #[arg(long, default_value_t = 1000)]
        samples: usize,
    },
}

async fn open(cli: &Cli) -> Result<Arc<dyn JobQueue>> {
    Ok(match cli.backend {
        // A high tenant limit: the benchmark's jobs all belong to one tenant.
        Backend::Redis => {
            Arc::new(morningai_redis::RedisQueue::connect(&cli.target, &cli.prefix, 100_000).await?)
        }
        Backend::Sqlite => {
            let store = morningai_sqlite::SqliteStore::open(&cli.target).await?;
            Arc::new(morningai_sqlite::SqliteQueue::new(&store, 100_000))
        }
    })
}

struct Noop(Arc<AtomicU64>);

#[async_trait]
impl Handler for Noop {
    async fn run(&self, _: JobContext) -> Result<Value, JobError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(Value::Null)
    }
}

/// Reports when it started, for the latency probe.
struct Probe(tokio::sync::mpsc::UnboundedSender<(u64, Instant)>);

#[async_trait]
impl Handler for Probe {
    async fn run(&self, ctx: JobContext) -> Result<Value, JobError> {
        let _ = self
            .0
            .send((ctx.input["seq"].as_u64().unwrap_or(0), Instant::now()));
        Ok(Value::Null)
    }
}

async fn fill(queue: &Arc<dyn JobQueue>, jobs: usize) -> Result<f64> {
    let tenant = TenantId::new();
    let start = Instant::now();
    let results: Vec<_> = futures_util::stream::iter(0..jobs)
        .map(|_| {
            let q = queue.clone();
            async move {
                q.enqueue(NewJob::new(TaskId::new(), tenant, "noop", json!({})))
                    .await
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    for r in results {
        r.context("enqueue")?;
    }
    Ok(jobs as f64 / start.elapsed().as_secs_f64())
}

/// Runs the pool until nothing was done for a short while (burst mode).
/// (jobs, jobs/s, first and last job as Unix milliseconds).
async fn drain(queue: Arc<dyn JobQueue>, concurrency: usize) -> (u64, f64, u128, u128) {
    let done = Arc::new(AtomicU64::new(0));
    let mut registry = Registry::builtin();
    registry.register("noop", Arc::new(Noop(done.clone())), |_| Ok(()));
    let stop = CancellationToken::new();
    let config = WorkerConfig {
        concurrency,
        idle_poll: Duration::from_millis(20),
        ..WorkerConfig::default()
    };
    let pool = tokio::spawn(run_pool(
        queue,
        registry,
        Arc::new(NoHooks),
        config,
        stop.clone(),
    ));
    // Start the clock at the first job, stop it at the last one.
    while done.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let start = Instant::now();
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let mut last = (0, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let n = done.load(Ordering::Relaxed);
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(300) {
            break;
        }
    }
    stop.cancel();
    let _ = pool.await;
    let (n, at) = last;
    let end = epoch + (at - start).as_millis();
    (
        n,
        n as f64 / (at - start).as_secs_f64().max(1e-9),
        epoch,
        end,
    )
}

async fn latency(queue: Arc<dyn JobQueue>, samples: usize) -> Vec<Duration> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut registry = Registry::builtin();
    registry.register("probe", Arc::new(Probe(tx)), |_| Ok(()));
    let stop = CancellationToken::new();
    let config = WorkerConfig {
        concurrency: 8,
        idle_poll: Duration::from_millis(500),
        ..WorkerConfig::default()
    };
    let pool = tokio::spawn(run_pool(
        queue.clone(),
        registry,
        Arc::new(NoHooks),
        config,
        stop.clone(),
    ));
    let tenant = TenantId::new();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut out = Vec::with_capacity(samples);
    for seq in 0..samples as u64 {
        // Let the pool go idle (waiting for work) before each sample.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let t0 = Instant::now();
        queue
            .enqueue(NewJob::new(
                TaskId::new(),
                tenant,
                "probe",
                json!({"seq": seq}),
            ))
            .await
            .expect("enqueue");
        let (got, at) = rx.recv().await.expect("probe ran");
        assert_eq!(got, seq);
        out.push(at - t0);
    }
    stop.cancel();
    let _ = pool.await;
    out
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let queue = open(&cli).await?;
    match cli.cmd {
        Cmd::Fill { jobs } => println!(
            "enqueued {jobs} jobs: {:.0} jobs/s",
            fill(&queue, jobs).await?
        ),
        Cmd::Drain { concurrency } => {
            let (n, rate, from, to) = drain(queue, concurrency).await;
            println!("drained {n} jobs: {rate:.0} jobs/s (window {from}..{to})");
        }
        Cmd::FillDrain { jobs, concurrency } => {
            println!(
                "enqueued {jobs} jobs: {:.0} jobs/s",
                fill(&queue, jobs).await?
            );
            let (n, rate, _, _) = drain(queue, concurrency).await;
            println!("drained {n} jobs: {rate:.0} jobs/s");
        }
        Cmd::Latency { samples } => {
            let mut l = latency(queue, samples).await;
            l.sort();
            println!(
                "pickup latency over {samples} samples: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                pct(&l, 0.5),
                pct(&l, 0.99),
                pct(&l, 1.0)
            );
        }
    }
    Ok(())
}
