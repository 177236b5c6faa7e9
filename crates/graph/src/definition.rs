//! Declarative graphs: a JSON definition (channels, nodes by registered type, edges,
//! conditional edges) validated on upload — unknown node types, edges to nowhere,
//! unreachable nodes and missing channels are reported with the path of the offending
//! field — then compiled into a [`Graph`].

use crate::channels::Reducer;
use crate::graph::{END, Graph, GraphBuilder, RetryPolicy, Router, START};
use crate::node::{Command, Node, NodeContext, NodeError, Target};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub channels: BTreeMap<String, ChannelDef>,
    pub nodes: BTreeMap<String, NodeDef>,
    pub edges: Vec<EdgeDef>,
    #[serde(default)]
    pub conditional_edges: Vec<ConditionalDef>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChannelDef {
    /// `last_value` (default), `append` or `merge`.
    #[serde(default)]
    pub reducer: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeDef {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub config: Value,
    #[serde(default)]
    pub retry: Option<RetryDef>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryDef {
    pub max_attempts: u32,
    #[serde(default)]
    pub initial_backoff_ms: Option<u64>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EdgeDef {
    pub from: String,
    pub to: String,
}

/// Routes by the value of `channel` — or of a field inside it, `channel.field.sub` — by its
/// string form (`true`/`false` for booleans); `default` when no route matches.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConditionalDef {
    pub from: String,
    pub channel: String,
    pub routes: BTreeMap<String, String>,
    #[serde(default)]
    pub default: Option<String>,
}

/// One precise problem in a definition.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DefinitionError {
    /// Where, e.g. `nodes.review.type` or `edges[2].to`.
    pub path: String,
    pub message: String,
}

/// Builds a node from its `config`; returns the node and the channels it uses.
pub type NodeFactory =
    Arc<dyn Fn(&Value) -> Result<(Arc<dyn Node>, Vec<String>), String> + Send + Sync>;

/// Node types a definition may use, by name.
#[derive(Clone)]
pub struct NodeTypes {
    types: BTreeMap<String, NodeFactory>,
}

fn str_field<'a>(config: &'a Value, field: &str) -> Result<&'a str, String> {
    config
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("config.{field}: required string"))
}

struct SetNode {
    channel: String,
    value: Value,
}

#[async_trait]
impl Node for SetNode {
    async fn run(&self, _: NodeContext) -> Result<Command, NodeError> {
        Ok(Command::update(Map::from_iter([(
            self.channel.clone(),
            self.value.clone(),
        )])))
    }
}

struct CopyNode {
    from: String,
    to: String,
}

#[async_trait]
impl Node for CopyNode {
    async fn run(&self, ctx: NodeContext) -> Result<Command, NodeError> {
        let v = ctx.state.get(&self.from).cloned().unwrap_or(Value::Null);
        Ok(Command::update(Map::from_iter([(self.to.clone(), v)])))
    }
}

/// Asks a human: pauses with `{prompt, node}` and writes the answer to `channel`.
struct AskNode {
    channel: String,
    prompt: String,
}

#[async_trait]
impl Node for AskNode {
    async fn run(&self, ctx: NodeContext) -> Result<Command, NodeError> {
        let answer = ctx.interrupt(json!({"prompt": self.prompt, "node": ctx.node}))?;
        Ok(Command::update(Map::from_iter([(
            self.channel.clone(),
            answer,
        )])))
    }
}

/// Fills `{channel}` placeholders of `template` from the state into `channel`.
struct TemplateNode {
    channel: String,
    template: String,
    reads: Vec<String>,
}

#[async_trait]
impl Node for TemplateNode {
    async fn run(&self, ctx: NodeContext) -> Result<Command, NodeError> {
        let mut out = self.template.clone();
        for r in &self.reads {
            let v = match ctx.state.get(r) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            out = out.replace(&format!("{{{r}}}"), &v);
        }
        Ok(Command::update(Map::from_iter([(
            self.channel.clone(),
            Value::String(out),
        )])))
    }
}

fn placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start + 1..].find('}') else {
            break;
        };
        out.push(rest[start + 1..start + 1 + len].to_owned());
        rest = &rest[start + 1 + len + 1..];
    }
    out
}

impl Default for NodeTypes {
    fn default() -> Self {
        let mut t = Self {
            types: BTreeMap::new(),
        };
        t.register(
            "set",
            Arc::new(|c| {
                let channel = str_field(c, "channel")?.to_owned();
                let value = c.get("value").cloned().ok_or("config.value: required")?;
                Ok((
                    Arc::new(SetNode {
                        channel: channel.clone(),
                        value,
                    }) as Arc<dyn Node>,
                    vec![channel],
                ))
            }),
        );
        t.register(
            "copy",
            Arc::new(|c| {
                let (from, to) = (
                    str_field(c, "from")?.to_owned(),
                    str_field(c, "to")?.to_owned(),
                );
                Ok((
                    Arc::new(CopyNode {
                        from: from.clone(),
                        to: to.clone(),
                    }) as Arc<dyn Node>,
                    vec![from, to],
                ))
            }),
        );
        t.register(
            "ask",
            Arc::new(|c| {
                let channel = str_field(c, "channel")?.to_owned();
                let prompt = str_field(c, "prompt")?.to_owned();
                Ok((
                    Arc::new(AskNode {
                        channel: channel.clone(),
                        prompt,
                    }) as Arc<dyn Node>,
                    vec![channel],
                ))
            }),
        );
        t.register(
            "template",
            Arc::new(|c| {
                let channel = str_field(c, "channel")?.to_owned();
                let template = str_field(c, "template")?.to_owned();
                let reads = placeholders(&template);
                let mut uses = reads.clone();
                uses.push(channel.clone());
                Ok((
                    Arc::new(TemplateNode {
                        channel,
                        template,
                        reads,
                    }) as Arc<dyn Node>,
                    uses,
                ))
            }),
        );
        t
    }
}

impl NodeTypes {
    pub fn register(&mut self, name: &str, factory: NodeFactory) {
        self.types.insert(name.to_owned(), factory);
    }

    pub fn names(&self) -> Vec<&str> {
        self.types.keys().map(String::as_str).collect()
    }
}

fn err(path: impl Into<String>, message: impl Into<String>) -> DefinitionError {
    DefinitionError {
        path: path.into(),
        message: message.into(),
    }
}

/// The router of a conditional edge: the value at `channel` (a dotted path) picks the
/// route; no match takes the default (or nothing).
fn route_on(c: &ConditionalDef) -> Router {
    let (channel, routes, default) = (c.channel.clone(), c.routes.clone(), c.default.clone());
    Arc::new(move |state| {
        let mut path = channel.split('.');
        let mut value = path.next().and_then(|c| state.get(c));
        for field in path {
            value = value.and_then(|v| v.get(field));
        }
        let key = match value {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        };
        routes
            .get(&key)
            .or(default.as_ref())
            .map(|t| vec![Target::node(t)])
            .unwrap_or_default()
    })
}

impl Definition {
    pub fn from_json(v: &Value) -> Result<Self, Vec<DefinitionError>> {
        serde_path_to_error_like(v)
    }

    /// The same definition written in YAML.
    pub fn from_yaml(text: &str) -> Result<Self, Vec<DefinitionError>> {
        let v: Value = serde_yaml_ng::from_str(text)
            .map_err(|e| vec![err("", format!("not valid YAML: {e}"))])?;
        Self::from_json(&v)
    }

    /// Validates and compiles; every problem found is reported, not just the first.
    pub fn compile(&self, types: &NodeTypes) -> Result<Graph, Vec<DefinitionError>> {
        let mut errors = Vec::new();
        let builder = self.channels(Graph::builder(), &mut errors);
        let builder = self.nodes(builder, types, &mut errors);
        let builder = self.edges(builder, &mut errors);
        let builder = self.conditional_edges(builder, &mut errors);
        self.check_reachable(&mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        builder.compile().map_err(|e| vec![err("", e.to_string())])
    }

    fn channels(
        &self,
        mut builder: GraphBuilder,
        errors: &mut Vec<DefinitionError>,
    ) -> GraphBuilder {
        for (name, c) in &self.channels {
            let reducer = match c.reducer.as_deref().unwrap_or("last_value") {
                "last_value" => Reducer::LastValue,
                "append" => Reducer::Append,
                "merge" => Reducer::Merge,
                other => {
                    errors.push(err(
                        format!("channels.{name}.reducer"),
                        format!("unknown reducer {other:?} (last_value, append, merge)"),
                    ));
                    continue;
                }
            };
            builder = builder.channel(name, reducer);
        }
        builder
    }

    fn nodes(
        &self,
        mut builder: GraphBuilder,
        types: &NodeTypes,
        errors: &mut Vec<DefinitionError>,
    ) -> GraphBuilder {
        for (name, n) in &self.nodes {
            if name == START || name == END {
                errors.push(err(format!("nodes.{name}"), "this name is reserved"));
                continue;
            }
            let Some(factory) = types.types.get(&n.kind) else {
                errors.push(err(
                    format!("nodes.{name}.type"),
                    format!(
                        "unknown node type {:?} (known: {})",
                        n.kind,
                        types.names().join(", ")
                    ),
                ));
                continue;
            };
            match factory(&n.config) {
                Err(m) => errors.push(err(
                    format!("nodes.{name}.{}", m.split(':').next().unwrap_or("config")),
                    m.split_once(": ").map_or(m.clone(), |x| x.1.to_owned()),
                )),
                Ok((node, uses)) => {
                    for ch in uses.iter().filter(|c| !self.channels.contains_key(*c)) {
                        errors.push(err(
                            format!("nodes.{name}.config"),
                            format!("uses channel {ch:?}, which is not declared in channels"),
                        ));
                    }
                    let retry = n.retry.as_ref().map(|r| RetryPolicy {
                        max_attempts: r.max_attempts.max(1),
                        initial_backoff: Duration::from_millis(r.initial_backoff_ms.unwrap_or(100)),
                        ..RetryPolicy::default()
                    });
                    builder = builder.node_with(
                        name,
                        node,
                        retry,
                        n.timeout_ms.map(Duration::from_millis),
                    );
                }
            }
        }
        builder
    }

    /// Whether an edge may end at `n`: a declared node or END.
    fn exists(&self, n: &str) -> bool {
        n == END || self.nodes.contains_key(n)
    }

    fn edges(&self, mut builder: GraphBuilder, errors: &mut Vec<DefinitionError>) -> GraphBuilder {
        for (i, e) in self.edges.iter().enumerate() {
            if e.from != START && !self.nodes.contains_key(&e.from) {
                errors.push(err(
                    format!("edges[{i}].from"),
                    format!("no node {:?}", e.from),
                ));
            }
            if !self.exists(&e.to) {
                errors.push(err(
                    format!("edges[{i}].to"),
                    format!("no node {:?} (an edge to nowhere)", e.to),
                ));
            }
            builder = builder.edge(&e.from, &e.to);
        }
        builder
    }

    fn conditional_edges(
        &self,
        mut builder: GraphBuilder,
        errors: &mut Vec<DefinitionError>,
    ) -> GraphBuilder {
        for (i, c) in self.conditional_edges.iter().enumerate() {
            if c.from != START && !self.nodes.contains_key(&c.from) {
                errors.push(err(
                    format!("conditional_edges[{i}].from"),
                    format!("no node {:?}", c.from),
                ));
            }
            if !self
                .channels
                .contains_key(c.channel.split('.').next().unwrap_or_default())
            {
                errors.push(err(
                    format!("conditional_edges[{i}].channel"),
                    format!("no channel {:?}", c.channel),
                ));
            }
            for (k, to) in c
                .routes
                .iter()
                .map(|(k, v)| (format!("routes.{k}"), v))
                .chain(c.default.iter().map(|d| ("default".to_owned(), d)))
            {
                if !self.exists(to) {
                    errors.push(err(
                        format!("conditional_edges[{i}].{k}"),
                        format!("no node {to:?} (an edge to nowhere)"),
                    ));
                }
            }
            let router = route_on(c);
            let possible: Vec<&str> = c
                .routes
                .values()
                .chain(c.default.iter())
                .map(String::as_str)
                .collect();
            builder = builder.conditional_edge(&c.from, router, &possible);
        }
        builder
    }

    /// Every node must be reachable from START.
    fn check_reachable(&self, errors: &mut Vec<DefinitionError>) {
        let mut adj: HashMap<&str, Vec<&str>> = HashMap::new();
        for e in &self.edges {
            adj.entry(e.from.as_str()).or_default().push(e.to.as_str());
        }
        for c in &self.conditional_edges {
            adj.entry(c.from.as_str()).or_default().extend(
                c.routes
                    .values()
                    .chain(c.default.iter())
                    .map(String::as_str),
            );
        }
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([START]);
        while let Some(n) = queue.pop_front() {
            for to in adj.get(n).into_iter().flatten() {
                if seen.insert(*to) {
                    queue.push_back(to);
                }
            }
        }
        if !adj.contains_key(START) {
            errors.push(err(
                "edges",
                "no edge from __start__: the graph has no entry point",
            ));
        }
        for name in self.nodes.keys() {
            if !seen.contains(name.as_str()) {
                errors.push(err(format!("nodes.{name}"), "unreachable from __start__"));
            }
        }
    }
}

fn serde_path_to_error_like(v: &Value) -> Result<Definition, Vec<DefinitionError>> {
    Definition::deserialize(v).map_err(|e| vec![err("", e.to_string())])
}
