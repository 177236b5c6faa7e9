//! Ports for models: text embedders and chat models. Adapters live in `crates/ai`.

use crate::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Turns texts into unit-length vectors. Vectors of different models never mix: every
/// stored vector records `model()`.
#[async_trait]
pub trait Embedder: Send + Sync + 'static {
    /// Identity stored with each vector, e.g. `all-MiniLM-L6-v2`.
    fn model(&self) -> &str;
    fn dims(&self) -> usize;
    /// The longest input the model reads, in its own tokens; longer input is truncated, so
    /// chunkers keep below it.
    fn max_tokens(&self) -> usize;
    /// Length of `text` in the model's tokens (without the model's special tokens).
    fn count_tokens(&self, text: &str) -> usize;
    /// One L2-normalised vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}

/// Cosine similarity; for unit vectors the dot product.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// Who wrote a chat message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    User,
    Assistant,
    Tool,
}

/// One message of a conversation. An assistant message may carry tool calls; a tool
/// message answers the call named by `tool_call_id`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    fn of(role: ChatRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::of(ChatRole::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::of(ChatRole::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::of(ChatRole::Assistant, content)
    }
    /// The result of the tool call `call_id`.
    pub fn tool(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(call_id.into()),
            ..Self::of(ChatRole::Tool, content)
        }
    }
}

/// A function the model may call, with its JSON Schema parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// A call the model asked for; `arguments` is the JSON text the model produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// The shape of the answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    #[default]
    Text,
    /// Any JSON object (OpenAI's JSON mode).
    JsonObject,
    /// JSON matching `schema` (structured output).
    JsonSchema { name: String, schema: Value },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
    #[serde(default)]
    pub response_format: ResponseFormat,
    pub temperature: Option<f32>,
    /// Most completion tokens; budgets reserve this much before a call is sent.
    pub max_tokens: Option<u32>,
}

/// Tokens as the provider counted them (its `usage` field), never estimated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl TokenUsage {
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The model that answered, as the provider names it.
    pub model: String,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    /// `stop`, `length`, `tool_calls`, … as reported (providers differ; kept as text).
    pub finish_reason: Option<String>,
    /// None when the provider did not report usage.
    pub usage: Option<TokenUsage>,
}

/// Receives streamed text as it arrives.
pub type DeltaSink<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// A chat completion model.
#[async_trait]
pub trait ChatModel: Send + Sync + 'static {
    /// Who serves the model, e.g. the provider's base URL.
    fn provider(&self) -> &str;
    /// The configured model name.
    fn model(&self) -> &str;
    /// One completion. With `on_delta` the answer is streamed: each piece of text is passed
    /// to it as it arrives, and the whole answer is returned at the end.
    async fn chat(
        &self,
        req: &ChatRequest,
        on_delta: Option<DeltaSink<'_>>,
    ) -> Result<ChatResponse>;
}
