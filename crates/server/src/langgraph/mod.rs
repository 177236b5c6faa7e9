//! Graphs served the LangGraph Server way: assistants (a graph and its configuration),
//! threads (checkpointed state), runs (queued jobs of kind `graph_run`), SSE streams in
//! the shapes the official `langgraph-sdk` client parses, and human approvals of
//! interrupts, and the long-term store (`/store/*`).

pub mod approvals;
pub mod catalog;
pub mod graphs;
pub mod routes;
pub mod runs;
pub mod store;
pub mod sweeper;

pub use catalog::Catalog;
