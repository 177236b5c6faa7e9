//! Agents and what they stand on: memory ingestion (`ingest`) and retrieval today; the
//! built-in agent graphs build on it.

pub mod chunk;
pub mod ingest;
pub mod retrieval;

pub use retrieval::{Found, Retriever, fuse};
