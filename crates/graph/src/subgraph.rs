//! A compiled graph used as a node of another graph, with its own namespaced state: it
//! receives the parent's values of the channels both declare, runs to its end, and hands
//! back its final values of those shared channels as the node's writes.

use crate::graph::{Graph, GraphError};
use crate::memory::MemoryCheckpointer;
use crate::node::{Command, Node, NodeContext, NodeError};
use crate::run::{Resume, RunConfig, Runner};
use async_trait::async_trait;
use serde_json::Map;
use std::sync::Arc;

pub struct Subgraph {
    pub graph: Arc<Graph>,
}

#[async_trait]
impl Node for Subgraph {
    async fn run(&self, ctx: NodeContext) -> Result<Command, NodeError> {
        let shared: Vec<String> = self
            .graph
            .channel_names()
            .filter(|c| ctx.state.contains_key(*c))
            .map(str::to_owned)
            .collect();
        let input: Map<_, _> = shared
            .iter()
            .filter_map(|c| ctx.state.get(c).map(|v| (c.clone(), v.clone())))
            .collect();
        let (emit, ns) = ctx.child_emit();
        let mut runner = Runner::new(
            self.graph.clone(),
            Arc::new(MemoryCheckpointer::default()),
            morningai_core::TenantCtx::new(Default::default()),
        );
        runner.events = emit;
        runner.ns = ns;
        runner.cancel = ctx.cancel.clone();
        let config = RunConfig {
            config: (*ctx.config).clone(),
            ..RunConfig::new(ctx.task_id.clone())
        };
        // A subgraph interrupt pauses the parent; on resume the subgraph re-runs with the
        // parent task's answers, in order.
        let mut outcome = runner
            .run(Some(input), None, &config)
            .await
            .map_err(|e| NodeError::fatal(e.to_string()))?;
        for answer in ctx.resume_values() {
            if outcome.interrupts.is_empty() {
                break;
            }
            outcome = runner
                .run(None, Some(Resume::Value(answer)), &config)
                .await
                .map_err(|e| NodeError::fatal(e.to_string()))?;
        }
        if let Some(i) = outcome.interrupts.first() {
            return Err(NodeError::Interrupt(i.value.clone()));
        }
        let writes = shared
            .into_iter()
            .filter_map(|c| outcome.state.get(&c).map(|v| (c.clone(), v.clone())))
            .collect();
        Ok(Command::update(writes))
    }
}

impl From<GraphError> for NodeError {
    fn from(e: GraphError) -> Self {
        NodeError::fatal(e.to_string())
    }
}
