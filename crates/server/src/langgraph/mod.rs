//! The LangGraph Server API (assistants, threads, runs and their streams, the long-term
//! store) that the official `langgraph-sdk` clients call, and the platform's approvals of
//! graph interrupts and uploaded graphs. Auth is the platform's (`x-api-key` or bearer);
//! everything is tenant-scoped. The use cases are `morningai_app::graphs`.

pub mod approvals;
pub mod graphs;
pub mod runs;
pub mod store;
pub mod threads;
