//! The task runtime: the registry of task handlers, the worker pool that runs jobs from a
//! `JobQueue`, the task service that keeps task rows, events and the queue in step, the
//! reconciler that re-enqueues what a broker lost, and the cron scheduler.
//!
//! The queue semantics (leases, retries, dead letters, fairness) are the product itself,
//! so they are written here and in the queue backends rather than taken from a crate.

pub mod handlers;
pub mod pool;
pub mod reconciler;
pub mod scheduler;
pub mod service;

pub use handlers::{Handler, JobContext, JobError, Registry};
pub use pool::{Hooks, NoHooks, Started, WorkerConfig, run_pool};
pub use service::{Finished, TaskService};
pub use tokio_util::sync::CancellationToken;
