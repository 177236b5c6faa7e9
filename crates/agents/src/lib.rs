//! Agents and what they stand on: memory ingestion and retrieval today; the built-in
//! agent graphs build on it.

pub mod chunk;
pub mod retrieval;

pub use retrieval::{Found, Retriever, fuse};
