//! One conformance suite per port, run against every backend: [`store`] for `Store`
//! (SQLite, PostgreSQL), [`queue`] for `JobQueue` (SQLite, Redis), [`checkpoint`] for
//! `Checkpointer` (memory, SQLite, PostgreSQL), [`memory`] for `Memory`, [`usage`] for
//! `UsageLedger` and [`kv`] for `KeyValueStore` (SQLite, PostgreSQL); and
//! [`fake_openai`], a local server speaking the OpenAI protocol for the provider tests, and
//! [`corpus`], real source trees from Cargo's registry.

pub mod checkpoint;
pub mod corpus;
pub mod fake_github;
pub mod fake_openai;
pub mod kv;
pub mod memory;
pub mod queue;
pub mod store;
pub mod usage;

pub use store::{DynStore, owner, two_tenants};
