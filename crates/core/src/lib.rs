//! MorningAI domain: entities, parse-don't-validate newtypes, the error type and the ports
//! every adapter implements. No I/O lives here.

pub mod ai;
pub mod checkpoint;
pub mod coalesce;
pub mod entities;
pub mod error;
pub mod events;
pub mod ids;
pub mod kv;
pub mod lexical;
pub mod memory;
pub mod objects;
pub mod queue;
pub mod schedules;
pub mod store;
pub mod task_kinds;
pub mod usage;
pub mod values;

pub use error::{Error, FieldProblem, Result};
pub use ids::{ApiKeyId, CollectionId, ItemId, ProjectId, TaskId, TenantId, UserId};
pub use store::{AccountStore, AuditLog, ObjectStore, ScheduleStore, Store, TaskStore, TenantCtx};
pub use values::{Email, Priority, Role, Slug};

/// The current UTC time at microsecond precision, the precision every backend stores.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
