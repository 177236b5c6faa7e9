//! Every port on SQLite (store, queue, checkpoints, workflow documents, memory): one file,
//! WAL, foreign keys on, migrations applied at open.
//!
//! SQLite allows one writer at a time, so there is one write connection (a writer thread
//! with group commit, borrowed by lone short writes) and a small set of reader connections
//! beside it; see `db.rs`.

mod accounts;
mod audit;
pub mod backup;
mod checkpoints;
mod convert;
mod db;
mod kv;
mod memory;
mod migrate;
mod objects;
mod queue;
mod schedules;
mod store;
mod tasks;
mod usage;

pub use migrate::{latest as latest_schema, schema_version};
pub use queue::SqliteQueue;
pub use store::SqliteStore;
