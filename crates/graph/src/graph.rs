//! Building and validating graphs.

use crate::channels::Reducer;
use crate::node::{Node, Target};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

pub const START: &str = "__start__";
pub const END: &str = "__end__";

/// Picks where to go after a node, from the state after its step.
pub type Router = Arc<dyn Fn(&serde_json::Map<String, Value>) -> Vec<Target> + Send + Sync>;

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Total attempts, including the first.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub factor: f64,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            factor: 2.0,
            max_backoff: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GraphError {
    #[error("graph definition: {0}")]
    Invalid(String),
    #[error(
        "recursion limit of {limit} steps reached without hitting END (raise recursion_limit if the graph is meant to loop this long)"
    )]
    RecursionLimit { limit: usize },
    #[error("the state grew to {size} bytes, over this run's limit of {limit} bytes")]
    StateTooLarge { limit: usize, size: usize },
    #[error("the run sent {limit} stream events, its limit")]
    TooManyEvents { limit: u64 },
    #[error("node {node:?} failed: {message}")]
    NodeFailed { node: String, message: String },
    #[error("node {node:?} timed out after {after:?}")]
    Timeout { node: String, after: Duration },
    #[error("step {step}: {message}")]
    InvalidUpdate { step: i64, message: String },
    #[error("the run was cancelled")]
    Cancelled,
    /// Stopped by whoever runs it, for the reason given (a limit it reached).
    #[error("the run was stopped: {0}")]
    Stopped(String),
    #[error("checkpoint storage: {0}")]
    Storage(String),
    #[error("{0}")]
    Resume(String),
}

#[derive(Clone)]
pub(crate) struct NodeSpec {
    pub node: Arc<dyn Node>,
    pub retry: Option<RetryPolicy>,
    pub timeout: Option<Duration>,
}

/// A compiled graph: immutable, cheap to share between runs.
pub struct Graph {
    pub(crate) channels: BTreeMap<String, Reducer>,
    pub(crate) nodes: BTreeMap<String, NodeSpec>,
    pub(crate) edges: BTreeMap<String, Vec<String>>,
    pub(crate) routers: BTreeMap<String, Router>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("channels", &self.channels)
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .field("edges", &self.edges)
            .finish()
    }
}

impl Graph {
    pub fn builder() -> GraphBuilder {
        GraphBuilder::default()
    }

    pub fn channel_names(&self) -> impl Iterator<Item = &str> {
        self.channels.keys().map(String::as_str)
    }

    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }
}

#[derive(Default)]
pub struct GraphBuilder {
    channels: BTreeMap<String, Reducer>,
    nodes: BTreeMap<String, NodeSpec>,
    edges: BTreeMap<String, Vec<String>>,
    routers: BTreeMap<String, Router>,
    errors: Vec<String>,
}

impl GraphBuilder {
    pub fn channel(mut self, name: &str, reducer: Reducer) -> Self {
        if self.channels.insert(name.to_owned(), reducer).is_some() {
            self.errors
                .push(format!("channel {name:?} is declared twice"));
        }
        self
    }

    pub fn node(self, name: &str, node: impl Node) -> Self {
        self.node_with(name, Arc::new(node), None, None)
    }

    pub fn node_with(
        mut self,
        name: &str,
        node: Arc<dyn Node>,
        retry: Option<RetryPolicy>,
        timeout: Option<Duration>,
    ) -> Self {
        if name == START || name == END {
            self.errors.push(format!("{name:?} is reserved"));
        }
        if self
            .nodes
            .insert(
                name.to_owned(),
                NodeSpec {
                    node,
                    retry,
                    timeout,
                },
            )
            .is_some()
        {
            self.errors.push(format!("node {name:?} is declared twice"));
        }
        self
    }

    pub fn edge(mut self, from: &str, to: &str) -> Self {
        self.edges
            .entry(from.to_owned())
            .or_default()
            .push(to.to_owned());
        self
    }

    /// Routes from `from` by a function of the state. Its targets are nodes, `END`, or
    /// `Send`s; `possible` lists the nodes it may route to (for validation).
    pub fn conditional_edge(mut self, from: &str, router: Router, possible: &[&str]) -> Self {
        self.routers.insert(from.to_owned(), router);
        for p in possible {
            self.edges
                .entry(format!("{from}\u{0}route"))
                .or_default()
                .push((*p).to_owned());
        }
        self
    }

    pub fn compile(self) -> Result<Graph, GraphError> {
        let mut errors = self.errors;
        let known = |n: &str| n == END || self.nodes.contains_key(n);
        for (from, tos) in &self.edges {
            let src = from.split('\u{0}').next().unwrap_or(from);
            if src != START && !self.nodes.contains_key(src) {
                errors.push(format!("edge from unknown node {src:?}"));
            }
            for to in tos {
                if !known(to) {
                    errors.push(format!(
                        "edge {src:?} → {to:?} leads nowhere (no such node)"
                    ));
                }
            }
        }
        for from in self.routers.keys() {
            if from != START && !self.nodes.contains_key(from) {
                errors.push(format!("conditional edge from unknown node {from:?}"));
            }
        }
        if !self.edges.contains_key(START) && !self.routers.contains_key(START) {
            errors.push("no entry point: add an edge from START".to_owned());
        }
        // Reachability from START over static edges and declared router targets.
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([START.to_owned()]);
        while let Some(n) = queue.pop_front() {
            for key in [n.clone(), format!("{n}\u{0}route")] {
                for to in self.edges.get(&key).into_iter().flatten() {
                    if seen.insert(to.clone()) {
                        queue.push_back(to.clone());
                    }
                }
            }
        }
        for n in self.nodes.keys() {
            if !seen.contains(n) {
                errors.push(format!("node {n:?} is unreachable from START"));
            }
        }
        if !errors.is_empty() {
            return Err(GraphError::Invalid(errors.join("; ")));
        }
        let edges = self
            .edges
            .into_iter()
            .filter(|(k, _)| !k.contains('\u{0}'))
            .collect();
        Ok(Graph {
            channels: self.channels,
            nodes: self.nodes,
            edges,
            routers: self.routers,
        })
    }
}
