//! OpenAI-compatible providers (OpenAI, Azure OpenAI's `/openai/v1`, Ollama, vLLM, llama.cpp
//! server): chat completions — streamed, with tool calls and JSON mode — and embeddings.
//!
//! Written on `reqwest` rather than a typed client crate: these servers differ in details a
//! strict typed client rejects (`finish_reason` null or `""`, missing ids and `usage`
//! fields), so the wire types here accept every field as optional and fail only on what
//! the answer cannot do without. Every request goes through [`OpenAiProvider::send`]:
//! a timeout per attempt, retries with exponential backoff and full jitter on 429/5xx,
//! timeouts and connection errors (a `Retry-After` / `retry-after-ms` is honoured), and a
//! circuit breaker per provider that fails calls fast while the provider is down.

use async_trait::async_trait;
use futures_util::StreamExt;
use morningai_core::ai::{
    ChatMessage, ChatModel, ChatRequest, ChatResponse, ChatRole, DeltaSink, Embedder,
    ResponseFormat, TokenUsage, ToolCall,
};
use morningai_core::{Error, Result};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a provider is and how patiently to talk to it.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// Up to and including the version, e.g. `https://api.openai.com/v1` or
    /// `http://localhost:11434/v1` (Ollama).
    pub base_url: String,
    /// Sent as a bearer token (and as `api-key` for Azure) when set.
    pub api_key: Option<String>,
    /// One attempt, or (streaming) the longest silence between two chunks.
    pub timeout: Duration,
    /// Attempts after the first.
    pub max_retries: u32,
    /// First backoff step; doubles per attempt, full jitter.
    pub retry_base: Duration,
    /// A `Retry-After` longer than this is not waited for: the call fails at once.
    pub max_retry_after: Duration,
    /// Consecutive failures (5xx, timeouts, unreachable, malformed) that open the breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker refuses calls before letting one probe through.
    pub breaker_cooldown: Duration,
}

impl ProviderConfig {
    pub fn new(base_url: impl Into<String>, api_key: Option<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
            timeout: Duration::from_secs(120),
            max_retries: 3,
            retry_base: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(60),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// One provider endpoint: its HTTP client, its retry policy and its circuit breaker, shared
/// by every model served from it.
pub struct OpenAiProvider {
    config: ProviderConfig,
    http: reqwest::Client,
    breaker: Breaker,
}

impl OpenAiProvider {
    pub fn new(mut config: ProviderConfig) -> Result<Arc<Self>> {
        config.base_url = config.base_url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&config.base_url)
            .map_err(|e| Error::invalid("base_url", format!("not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::invalid("base_url", "must be an http or https URL"));
        }
        // No redirects: a provider that redirects would take the API key (also sent as
        // `api-key`, which reqwest does not strip) to another host.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .read_timeout(config.timeout)
            .build()
            .map_err(|e| Error::internal("build the HTTP client", e))?;
        let breaker = Breaker::new(config.breaker_threshold, config.breaker_cooldown);
        Ok(Arc::new(Self {
            config,
            http,
            breaker,
        }))
    }

    pub fn base_url(&self) -> &str {
        &self.config.base_url
    }

    /// A chat model served by this provider.
    pub fn chat_model(self: &Arc<Self>, model: impl Into<String>) -> OpenAiChat {
        OpenAiChat {
            provider: self.clone(),
            model: model.into(),
        }
    }

    /// `req` with the API key, when one is set: as a bearer token and as `api-key` (Azure).
    fn authorized(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.api_key {
            Some(key) => req.bearer_auth(key).header("api-key", key),
            None => req,
        }
    }

    /// The models the provider lists (`GET /models`): one attempt, for a health check (the
    /// key is sent as for every call, so a refused key shows here).
    pub async fn models(&self) -> Result<Vec<String>> {
        let url = format!("{}/models", self.config.base_url);
        let req = self.authorized(self.http.get(&url).timeout(self.config.timeout));
        let res = req.send().await.map_err(|e| {
            Error::unavailable("provider_unavailable", format!("cannot reach {url}: {e}"))
        })?;
        let status = res.status();
        if !status.is_success() {
            let message = provider_message(res.text().await.unwrap_or_default());
            let code = if matches!(status.as_u16(), 401 | 403) {
                "provider_auth"
            } else {
                "provider_rejected"
            };
            return Err(Error::unavailable(
                code,
                format!("{url} answered HTTP {}: {message}", status.as_u16()),
            ));
        }
        let body: Value = res
            .json()
            .await
            .map_err(|e| Error::unavailable("provider_rejected", format!("{url}: {e}")))?;
        let ids = body
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                Error::unavailable(
                    "provider_rejected",
                    format!("{url} answered without a `data` list of models"),
                )
            })?
            .iter()
            .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect();
        Ok(ids)
    }

    /// POSTs `body` to `path` and returns the successful response, retrying as configured.
    async fn send(&self, path: &str, body: &Value, streaming: bool) -> Result<reqwest::Response> {
        let url = format!("{}{path}", self.config.base_url);
        let mut last = String::new();
        for attempt in 0..=self.config.max_retries {
            self.breaker.admit(&self.config.base_url)?;
            let mut req = self.authorized(self.http.post(&url).json(body));
            if !streaming {
                req = req.timeout(self.config.timeout);
            }
            let wait = match req.send().await {
                Ok(res) if res.status().is_success() => {
                    self.breaker.success();
                    return Ok(res);
                }
                Ok(res) => {
                    let status = res.status();
                    let retry_after = retry_after(res.headers());
                    let message = provider_message(res.text().await.unwrap_or_default());
                    last = format!("HTTP {}: {message}", status.as_u16());
                    // Any answer but a 5xx shows the provider is up (this also ends a
                    // half-open probe that met a 4xx, which would otherwise stay pending).
                    if status.is_server_error() {
                        self.breaker.failure();
                    } else {
                        self.breaker.success();
                    }
                    match status.as_u16() {
                        429 | 500.. => {}
                        401 | 403 => {
                            return Err(Error::unavailable(
                                "provider_auth",
                                format!("{} refused the API key ({last})", self.config.base_url),
                            ));
                        }
                        _ => {
                            return Err(Error::unavailable(
                                "provider_rejected",
                                format!("{} rejected the request ({last})", self.config.base_url),
                            ));
                        }
                    }
                    match retry_after {
                        Some(d) if d > self.config.max_retry_after => {
                            return Err(Error::unavailable(
                                "provider_rate_limited",
                                format!(
                                    "{} asks to retry after {} s, longer than the {} s we wait ({last})",
                                    self.config.base_url,
                                    d.as_secs(),
                                    self.config.max_retry_after.as_secs()
                                ),
                            ));
                        }
                        // Honour the provider's wait, spreading retries by up to 10 %.
                        Some(d) => d + jitter(d / 10),
                        None => self.backoff(attempt),
                    }
                }
                Err(e) => {
                    self.breaker.failure();
                    last = if e.is_timeout() {
                        format!("no answer within {} ms", self.config.timeout.as_millis())
                    } else {
                        format!("cannot reach it: {e}")
                    };
                    self.backoff(attempt)
                }
            };
            if attempt < self.config.max_retries {
                tracing::warn!(provider = %self.config.base_url, attempt, error = %last, wait_ms = wait.as_millis() as u64, "model provider call failed; retrying");
                tokio::time::sleep(wait).await;
            }
        }
        Err(Error::unavailable(
            "provider_unavailable",
            format!(
                "{} failed {} attempts; last: {last}",
                self.config.base_url,
                self.config.max_retries + 1
            ),
        ))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .config
            .retry_base
            .saturating_mul(1 << attempt.min(16))
            .min(Duration::from_secs(20));
        jitter(cap)
    }

    /// A malformed answer: the provider is not behaving, which counts against it.
    fn bad_response(&self, what: impl std::fmt::Display) -> Error {
        self.breaker.failure();
        Error::unavailable(
            "provider_bad_response",
            format!("{} sent a malformed answer: {what}", self.config.base_url),
        )
    }
}

/// Uniform in `[0, max]`.
fn jitter(max: Duration) -> Duration {
    use rand::Rng;
    let ms = max.as_millis() as u64;
    Duration::from_millis(rand::rng().random_range(0..=ms))
}

/// `retry-after-ms` (OpenAI), else `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        return Some(Duration::from_millis(ms.max(0.0) as u64));
    }
    let v = text("retry-after")?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return Some(Duration::from_millis((secs.max(0.0) * 1000.0) as u64));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or_default(),
    )
}

/// The `error.message` of an OpenAI error body, else the body itself (shortened).
fn provider_message(body: String) -> String {
    let parsed: Option<Value> = serde_json::from_str(&body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error"))
            .or_else(|| v.get("detail"))
            .and_then(Value::as_str)
    });
    let mut s = message.map(str::to_owned).unwrap_or(body);
    if s.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Closed → (threshold consecutive failures) → open for the cooldown → half-open: one probe
/// call; its success closes the breaker, its failure opens it again.
struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<BreakerState>,
}

#[derive(Default)]
struct BreakerState {
    failures: u32,
    open_until: Option<Instant>,
    /// When the current half-open probe started. A probe whose caller went away (a
    /// cancelled run drops the request) never reports back; after a cooldown it counts as
    /// lost and another call may probe.
    probing: Option<Instant>,
}

impl Breaker {
    fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn admit(&self, provider: &str) -> Result<()> {
        let mut s = self.lock();
        let Some(until) = s.open_until else {
            return Ok(());
        };
        let now = Instant::now();
        let probe_pending = s
            .probing
            .is_some_and(|started| now.duration_since(started) < self.cooldown);
        if now < until || probe_pending {
            let wait = until.saturating_duration_since(now).as_secs() + 1;
            return Err(Error::unavailable(
                "provider_unavailable",
                format!(
                    "{provider} is failing: {} consecutive failures opened its circuit breaker; calls resume within {wait} s",
                    s.failures
                ),
            ));
        }
        s.probing = Some(now);
        Ok(())
    }

    fn success(&self) {
        *self.lock() = BreakerState::default();
    }

    fn failure(&self) {
        let mut s = self.lock();
        s.failures += 1;
        if s.probing.is_some() || s.failures >= self.threshold {
            s.open_until = Some(Instant::now() + self.cooldown);
            s.probing = None;
        }
    }
}

// ---- chat ---------------------------------------------------------------------------------

/// A chat model on an OpenAI-compatible provider.
pub struct OpenAiChat {
    provider: Arc<OpenAiProvider>,
    model: String,
}

fn wire_message(m: &ChatMessage) -> Value {
    let role = match m.role {
        ChatRole::System => "system",
        ChatRole::User => "user",
        ChatRole::Assistant => "assistant",
        ChatRole::Tool => "tool",
    };
    let mut v = json!({"role": role, "content": m.content});
    if !m.tool_calls.is_empty() {
        v["tool_calls"] = m
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = json!(id);
    }
    v
}

impl OpenAiChat {
    fn body(&self, req: &ChatRequest, stream: bool) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": req.messages.iter().map(wire_message).collect::<Vec<_>>(),
        });
        if !req.tools.is_empty() {
            body["tools"] = req
                .tools
                .iter()
                .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
                .collect();
        }
        match &req.response_format {
            ResponseFormat::Text => {}
            ResponseFormat::JsonObject => body["response_format"] = json!({"type": "json_object"}),
            ResponseFormat::JsonSchema { name, schema } => {
                body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": true}})
            }
        }
        if let Some(t) = req.temperature {
            // As written (0.7), not the f32 widened to f64 (0.699999988…).
            body["temperature"] = json!(t.to_string().parse::<f64>().unwrap_or(f64::from(t)));
        }
        if let Some(m) = req.max_tokens {
            body["max_tokens"] = json!(m);
        }
        if stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }

    async fn stream(&self, res: reqwest::Response, sink: DeltaSink<'_>) -> Result<ChatResponse> {
        use eventsource_stream::Eventsource;
        let p = &self.provider;
        let mut events = res.bytes_stream().eventsource();
        let mut answer = Assembly::new(&self.model);
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| {
                p.breaker.failure();
                Error::unavailable(
                    "provider_unavailable",
                    format!("{}: the stream broke off: {e}", p.base_url()),
                )
            })?;
            if event.data.trim() == "[DONE]" {
                return Ok(answer.finish());
            }
            let chunk: Completion = serde_json::from_str(&event.data)
                .map_err(|e| p.bad_response(format!("stream chunk {:?}: {e}", event.data)))?;
            if let Some(err) = chunk.error {
                p.breaker.failure();
                return Err(Error::unavailable(
                    "provider_unavailable",
                    format!(
                        "{} failed mid-stream: {}",
                        p.base_url(),
                        provider_message(err.to_string())
                    ),
                ));
            }
            answer.absorb(chunk, Some(sink));
        }
        // Servers that close the stream without `[DONE]` (llama.cpp, older Ollama) still
        // send a finish reason; a stream cut off before one is an incomplete answer.
        if answer.is_empty() || answer.response.finish_reason.is_none() {
            return Err(p.bad_response("the stream ended before the answer was complete"));
        }
        Ok(answer.finish())
    }
}

#[async_trait]
impl ChatModel for OpenAiChat {
    fn provider(&self) -> &str {
        self.provider.base_url()
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        on_delta: Option<DeltaSink<'_>>,
    ) -> Result<ChatResponse> {
        let body = self.body(req, on_delta.is_some());
        let res = self
            .provider
            .send("/chat/completions", &body, on_delta.is_some())
            .await?;
        if let Some(sink) = on_delta {
            return self.stream(res, sink).await;
        }
        let text = res.text().await.map_err(|e| {
            self.provider.breaker.failure();
            Error::unavailable(
                "provider_unavailable",
                format!(
                    "{}: reading the answer failed: {e}",
                    self.provider.base_url()
                ),
            )
        })?;
        let completion: Completion =
            serde_json::from_str(&text).map_err(|e| self.provider.bad_response(format!("{e}")))?;
        if completion.choices.is_empty() {
            return Err(self.provider.bad_response("no choices in the answer"));
        }
        let mut answer = Assembly::new(&self.model);
        answer.absorb(completion, None);
        Ok(answer.finish())
    }
}

// Wire types: every field optional, unknown fields ignored.
#[derive(Deserialize)]
struct Completion {
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<WireMessage>,
    delta: Option<WireMessage>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize)]
struct WireToolCall {
    index: Option<usize>,
    id: Option<String>,
    function: Option<WireFunction>,
}

#[derive(Deserialize)]
struct WireFunction {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// Builds one answer from a whole completion or from stream chunks (tool calls arrive in
/// fragments keyed by `index`: the first names the call, the rest append arguments).
struct Assembly {
    response: ChatResponse,
    chunks: usize,
}

impl Assembly {
    fn new(model: &str) -> Self {
        Self {
            response: ChatResponse {
                model: model.to_owned(),
                content: String::new(),
                tool_calls: Vec::new(),
                finish_reason: None,
                usage: None,
            },
            chunks: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.chunks == 0
    }

    fn absorb(&mut self, c: Completion, sink: Option<DeltaSink<'_>>) {
        self.chunks += 1;
        let r = &mut self.response;
        if let Some(m) = c.model.filter(|m| !m.is_empty()) {
            r.model = m;
        }
        if let Some(u) = c.usage {
            r.usage = Some(TokenUsage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            });
        }
        // Only the first choice is used (we never ask for n > 1).
        let Some(choice) = c.choices.into_iter().next() else {
            return;
        };
        if let Some(f) = choice.finish_reason.filter(|f| !f.is_empty()) {
            r.finish_reason = Some(f);
        }
        let Some(m) = choice.message.or(choice.delta) else {
            return;
        };
        if let Some(text) = m.content.filter(|t| !t.is_empty()) {
            if let Some(sink) = sink {
                sink(&text);
            }
            r.content.push_str(&text);
        }
        for (n, call) in m.tool_calls.into_iter().enumerate() {
            let index = call.index.unwrap_or(n);
            while r.tool_calls.len() <= index {
                r.tool_calls.push(ToolCall {
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
            }
            let slot = &mut r.tool_calls[index];
            if let Some(id) = call.id.filter(|i| !i.is_empty()) {
                slot.id = id;
            }
            if let Some(f) = call.function {
                if let Some(name) = f.name.filter(|n| !n.is_empty()) {
                    slot.name = name;
                }
                slot.arguments
                    .push_str(f.arguments.as_deref().unwrap_or(""));
            }
        }
    }

    fn finish(mut self) -> ChatResponse {
        for (n, call) in self.response.tool_calls.iter_mut().enumerate() {
            if call.id.is_empty() {
                call.id = format!("call_{n}");
            }
        }
        self.response
    }
}

// ---- embeddings ------------------------------------------------------------------------

/// An embedding model on an OpenAI-compatible provider (`POST /embeddings`).
pub struct OpenAiEmbedder {
    provider: Arc<OpenAiProvider>,
    model: String,
    dims: usize,
    max_tokens: usize,
    batch: usize,
}

impl OpenAiProvider {
    /// An embedding model with `dims` dimensions reading at most `max_tokens` tokens
    /// (text-embedding-3-small: 1536 and 8191).
    pub fn embedder(
        self: &Arc<Self>,
        model: impl Into<String>,
        dims: usize,
        max_tokens: usize,
    ) -> OpenAiEmbedder {
        OpenAiEmbedder {
            provider: self.clone(),
            model: model.into(),
            dims,
            max_tokens,
            batch: 64,
        }
    }
}

#[derive(Deserialize)]
struct Embeddings {
    data: Vec<EmbeddingRow>,
}

#[derive(Deserialize)]
struct EmbeddingRow {
    index: usize,
    embedding: Vec<f32>,
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model(&self) -> &str {
        &self.model
    }

    fn dims(&self) -> usize {
        self.dims
    }

    fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The provider's tokenizer is not available locally; chunk sizing uses a conservative
    /// bound (a token per 3 bytes — BPE vocabularies average about 4 on English and code).
    fn count_tokens(&self, text: &str) -> usize {
        text.len().div_ceil(3)
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let p = &self.provider;
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.batch) {
            let mut body = json!({"model": self.model, "input": batch, "encoding_format": "float"});
            // text-embedding-3 models shorten to the requested size; others ignore it.
            if self.model.starts_with("text-embedding-3") {
                body["dimensions"] = json!(self.dims);
            }
            let res = p.send("/embeddings", &body, false).await?;
            let text = res.text().await.map_err(|e| p.bad_response(e))?;
            let mut parsed: Embeddings =
                serde_json::from_str(&text).map_err(|e| p.bad_response(e))?;
            parsed.data.sort_by_key(|r| r.index);
            if parsed.data.len() != batch.len()
                || parsed.data.iter().enumerate().any(|(i, r)| r.index != i)
            {
                return Err(p.bad_response(format!(
                    "{} embeddings for {} inputs",
                    parsed.data.len(),
                    batch.len()
                )));
            }
            for row in parsed.data {
                if row.embedding.len() != self.dims {
                    return Err(p.bad_response(format!(
                        "a {}-dimensional embedding from a model configured with {}",
                        row.embedding.len(),
                        self.dims
                    )));
                }
                out.push(unit(row.embedding));
            }
        }
        Ok(out)
    }
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}
