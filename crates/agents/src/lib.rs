//! Agents and what they stand on: memory ingestion (`ingest`), retrieval, and answers
//! grounded in retrieved passages (`answer`: by a chat model, or extractively offline); the
//! built-in agent graphs build on them.

pub mod answer;
pub mod chunk;
pub mod ingest;
pub mod retrieval;
pub mod syntax;

pub use retrieval::{Found, Retriever, fuse};
