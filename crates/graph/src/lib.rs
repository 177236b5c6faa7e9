//! MorningAI's workflow engine: LangGraph semantics in Rust.
//!
//! A graph has named channels, each with a reducer; nodes read the state and return
//! writes (or a [`Command`] with writes and where to go next). Execution is Pregel-style:
//! every task of a superstep runs in parallel on the same snapshot, writes apply at the
//! barrier through the reducers (two writes to a last-value channel in one step are an
//! error), then edges, routers, `Send`s and `Command` gotos decide the next step.
//! After every step a checkpoint records what the step changed; `interrupt()` pauses a run,
//! and resuming continues without re-running work that already finished.

mod channels;
mod definition;
pub mod events;
mod graph;
mod memory;
mod node;
mod persist;
mod run;
mod state;
mod subgraph;

pub use channels::Reducer;
pub use definition::{Definition, DefinitionError, NodeTypes};
pub use graph::{END, Graph, GraphBuilder, GraphError, RetryPolicy, Router, START};
pub use memory::MemoryCheckpointer;
pub use node::{Command, Node, NodeContext, NodeError, NodeFn, StreamEvent, Target};
pub use run::{Durability, Outcome, Resume, RunConfig, Runner, json_size};
pub use state::{State, StateSnapshot, get_state, history, update_state};
pub use subgraph::Subgraph;
