//! Task kinds register their handlers here, in one registry. The same names validate
//! `POST /tasks` input (`TaskKinds`) and route jobs to code.

use async_trait::async_trait;
use morningai_core::events::TaskEventKind;
use morningai_core::task_kinds::TaskKinds;
use morningai_core::{TaskId, TenantId, UserId};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A failed attempt. Retryable errors are retried with backoff up to the job's attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct JobError {
    pub message: String,
    pub retryable: bool,
}

impl JobError {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}

/// Sends progress and log events for the running task.
#[async_trait]
pub trait Emitter: Send + Sync {
    async fn emit(&self, tenant: TenantId, task: TaskId, kind: TaskEventKind, data: Value);
}

/// What a handler gets for one attempt.
#[derive(Clone)]
pub struct JobContext {
    pub task_id: TaskId,
    pub tenant_id: TenantId,
    pub input: Value,
    pub attempt: u32,
    /// Attempts the job has in all: the last one is `attempt == max_attempts`.
    pub max_attempts: u32,
    /// The trace id of the request that created the task ("" when unknown).
    pub trace_id: String,
    /// Who created the task.
    pub created_by: Option<UserId>,
    /// Cancelled when the task is cancelled or the worker must stop; the runtime also
    /// drops the handler's future then, so it stops at its next await point.
    pub cancel: CancellationToken,
    pub(crate) emitter: Arc<dyn Emitter>,
}

impl JobContext {
    pub async fn progress(&self, data: Value) {
        self.emitter
            .emit(self.tenant_id, self.task_id, TaskEventKind::Progress, data)
            .await;
    }

    pub async fn log(&self, message: &str) {
        self.emitter
            .emit(
                self.tenant_id,
                self.task_id,
                TaskEventKind::Log,
                serde_json::json!({"message": message}),
            )
            .await;
    }
}

#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn run(&self, ctx: JobContext) -> Result<Value, JobError>;
}

/// `echo`: its result is its input. With `{"sleep_ms": n}` in the input it takes that
/// long first (tests and benchmarks use it to simulate work).
pub struct Echo;

#[async_trait]
impl Handler for Echo {
    async fn run(&self, ctx: JobContext) -> Result<Value, JobError> {
        if let Some(ms) = ctx.input.get("sleep_ms").and_then(Value::as_u64) {
            tokio::time::sleep(Duration::from_millis(ms.min(600_000))).await;
        }
        Ok(ctx.input)
    }
}

/// Handlers by task kind, plus the input validators the API checks.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
    kinds: TaskKinds,
}

impl Registry {
    /// Every built-in kind.
    pub fn builtin() -> Self {
        let mut r = Self {
            handlers: HashMap::new(),
            kinds: TaskKinds::builtin(),
        };
        r.handlers.insert("echo", Arc::new(Echo));
        r
    }

    pub fn register(
        &mut self,
        name: &'static str,
        handler: Arc<dyn Handler>,
        validate: morningai_core::task_kinds::InputValidator,
    ) {
        self.handlers.insert(name, handler);
        self.kinds.register(name, validate);
    }

    /// A kind the application creates itself; requests cannot (see [`TaskKinds::validate`]).
    pub fn register_internal(
        &mut self,
        name: &'static str,
        handler: Arc<dyn Handler>,
        validate: morningai_core::task_kinds::InputValidator,
    ) {
        self.handlers.insert(name, handler);
        self.kinds.register_internal(name, validate);
    }

    pub fn get(&self, kind: &str) -> Option<Arc<dyn Handler>> {
        self.handlers.get(kind).cloned()
    }

    pub fn kinds(&self) -> &TaskKinds {
        &self.kinds
    }
}
