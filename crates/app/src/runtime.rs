//! Background work of a process: the reconciler, the scheduler and the graph sweeper (safe
//! to run in every process), and the worker pool where this process runs jobs.

use crate::Application;
use morningai_worker::reconciler::{ReconcilerConfig, run_reconciler};
use morningai_worker::scheduler::run_scheduler;
use morningai_worker::{CancellationToken, Hooks, WorkerConfig, run_pool};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Handles of the spawned loops; `join` waits for them after `shutdown` fired.
pub struct Background {
    loops: Vec<JoinHandle<()>>,
    pool: Option<JoinHandle<usize>>,
}

impl Background {
    /// Waits for every loop; returns the number of jobs released unfinished by the pool.
    pub async fn join(self) -> usize {
        for l in self.loops {
            let _ = l.await;
        }
        match self.pool {
            Some(p) => p.await.unwrap_or(0),
            None => 0,
        }
    }
}

/// What to run in this process.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Worker pool size (0: this process runs no jobs).
    pub workers: usize,
    /// How long in-flight jobs may finish after shutdown before they are released.
    pub grace: Duration,
    pub lease: Duration,
    pub scheduler: bool,
    pub reconciler: ReconcilerConfig,
    /// How often approvals are expired and checkpoint retention applied (None: never).
    pub sweep_every: Option<Duration>,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            workers: 0,
            grace: Duration::from_secs(20),
            lease: Duration::from_secs(30),
            scheduler: true,
            reconciler: ReconcilerConfig::default(),
            sweep_every: None,
        }
    }
}

/// Spawns what `plan` asks for; it all stops when `shutdown` fires.
pub fn spawn(app: &Application, plan: Plan, shutdown: CancellationToken) -> Background {
    let mut loops = vec![tokio::spawn(run_reconciler(
        app.store.clone(),
        app.queue.clone(),
        plan.reconciler,
        shutdown.clone(),
    ))];
    if plan.scheduler {
        loops.push(tokio::spawn(run_scheduler(
            app.tasks.clone(),
            Duration::from_secs(1),
            shutdown.clone(),
        )));
    }
    if let Some(every) = plan.sweep_every {
        loops.push(tokio::spawn(crate::graphs::sweeper::run(
            app.graphs.clone(),
            app.config.checkpoint_ttl_days,
            every,
            shutdown.clone(),
        )));
    }
    let pool = (plan.workers > 0).then(|| {
        let config = WorkerConfig {
            concurrency: plan.workers,
            grace: plan.grace,
            lease: plan.lease,
            ..WorkerConfig::default()
        };
        let hooks: Arc<dyn Hooks> = app.tasks.clone();
        tokio::spawn(run_pool(
            app.queue.clone(),
            app.registry.clone(),
            hooks,
            config,
            shutdown,
        ))
    });
    Background { loops, pool }
}
