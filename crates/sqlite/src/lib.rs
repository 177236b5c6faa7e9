//! The `Store` port on SQLite: one file, WAL, foreign keys on, migrations applied at open.
//!
//! SQLite allows one writer at a time, so there is one writer connection behind a mutex
//! and a small set of reader connections (WAL lets readers run beside the writer). Every
//! call runs on tokio's blocking pool so a slow disk never stalls the async workers.

mod checkpoints;
mod convert;
mod db;
mod migrate;
mod objects;
mod queue;
mod store;

pub use queue::SqliteQueue;
pub use store::SqliteStore;
