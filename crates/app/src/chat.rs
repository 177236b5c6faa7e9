//! Conversations with an assistant, for the surfaces that speak someone else's protocol
//! (the OpenAI-compatible endpoint, chat platforms): the tenant's `faq` assistants are the
//! models; a question is answered from the memory the assistant is configured to search —
//! by the tenant's chat model when one is configured (metered against its budget, the
//! assistant's model name, temperature and prompt addition on the tenant's provider),
//! extractively otherwise — with the citations it rests on.

use crate::Application;
use crate::agents::AgentDeps;
use crate::assistants::{self, AssistantConfig};
use crate::auth::Principal;
use crate::memory::{Hit, cite};
use morningai_agents::answer::{Answer, GROUNDED_PROMPT, Instructions, extractive, grounded};
use morningai_core::ai::DeltaSink;
use morningai_core::{Error, Result, Store, TaskId, TenantCtx};
use serde::Serialize;

/// The built-in documentation assistant's model id.
pub const BUILTIN: &str = "faq";

/// An assistant that answers questions, as a model a client can name.
#[derive(Clone, Debug, Serialize)]
pub struct ChatAssistant {
    /// `faq` (the built-in assistant) or an assistant's id.
    pub id: String,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip)]
    pub config: AssistantConfig,
}

/// An answer and what it rests on.
#[derive(Clone, Debug, Serialize)]
pub struct Reply {
    /// The model id the question was put to.
    pub assistant: String,
    pub answer: Answer,
    /// The passages retrieved (the answer cites some of them).
    pub hits: Vec<Hit>,
    /// The collections searched, by name.
    pub searched: String,
    /// What the model call cost, when a priced model wrote the answer.
    pub cost_usd: Option<f64>,
}

/// Texts embedded, and the model's tokens they held.
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    pub tokens: usize,
}

/// Longest question taken, in characters.
pub const MAX_QUESTION: usize = 4_000;
/// Texts one embeddings request may carry.
pub const MAX_EMBED_INPUTS: usize = 64;
/// Longest text embedded, in characters (the model reads its first 256 tokens).
pub const MAX_EMBED_CHARS: usize = 20_000;

/// The assistants that answer questions in a tenant: the built-in one and the tenant's
/// `faq` assistants.
pub(crate) async fn assistants_of(store: &dyn Store, cx: TenantCtx) -> Result<Vec<ChatAssistant>> {
    let builtin = ChatAssistant {
        id: BUILTIN.into(),
        name: "MorningAI documentation assistant".into(),
        created_at: chrono::DateTime::UNIX_EPOCH,
        config: AssistantConfig::default(),
    };
    let own = assistants::list(store, cx)
        .await?
        .into_iter()
        .filter(|a| a.graph_id == BUILTIN)
        .map(|a| ChatAssistant {
            id: a.assistant_id.to_string(),
            name: a.name,
            created_at: a.created_at,
            config: a.config,
        });
    Ok(std::iter::once(builtin).chain(own).collect())
}

/// One of [`assistants_of`], by id or by its exact name.
pub(crate) async fn assistant_named(
    store: &dyn Store,
    cx: TenantCtx,
    model: &str,
) -> Result<ChatAssistant> {
    let all = assistants_of(store, cx).await?;
    let mut named = all.iter().filter(|a| a.name == model);
    let by_name = match (named.next(), named.next()) {
        (Some(a), None) => Some(a),
        _ => None,
    };
    all.iter()
        .find(|a| a.id == model)
        .or(by_name)
        .cloned()
        .ok_or(Error::NotFound("model"))
}

/// Answers `question` in the tenant as the assistant `model`, metered for `task` when a
/// task asked: streamed through `on_delta` when a chat model writes it.
pub(crate) async fn answer(
    deps: &AgentDeps,
    store: &dyn Store,
    cx: TenantCtx,
    task: Option<TaskId>,
    model: &str,
    question: &str,
    on_delta: Option<DeltaSink<'_>>,
) -> Result<Reply> {
    let question = question.trim();
    if question.is_empty() {
        return Err(Error::invalid("messages", "the last user message is empty"));
    }
    if question.chars().count() > MAX_QUESTION {
        return Err(Error::invalid(
            "messages",
            format!("the last user message is longer than {MAX_QUESTION} characters"),
        ));
    }
    let assistant = assistant_named(store, cx, model).await?;
    let cfg = &assistant.config;
    let (hits, searched) = deps.sources(cx, question, cfg, None).await?;
    let chat = deps.models.chat_as(cx, task, cfg.model.as_deref()).await?;
    let answer = match chat {
        Some(m) => {
            // The assistant's own prompt addition and temperature.
            let how = Instructions {
                system: crate::agents::system_prompt(GROUNDED_PROMPT, cfg),
                temperature: cfg
                    .temperature
                    .unwrap_or(Instructions::default().temperature),
            };
            grounded(m.as_ref(), question, &hits, how, on_delta).await?
        }
        None => extractive(question, &hits, 4_000),
    };
    let cost_usd = match &answer.generated_by {
        morningai_agents::answer::GeneratedBy::Model {
            model,
            usage: Some(u),
            ..
        } => deps.models.cost_usd(model, *u),
        _ => None,
    };
    Ok(Reply {
        assistant: assistant.id,
        answer,
        hits: cite(hits),
        searched,
        cost_usd,
    })
}

impl Application {
    /// The assistants that answer questions: the built-in one and the tenant's `faq`
    /// assistants (any role may list them).
    pub async fn chat_assistants(&self, who: &Principal) -> Result<Vec<ChatAssistant>> {
        assistants_of(&*self.store, who.cx()).await
    }

    /// One of [`Self::chat_assistants`], by id or by its exact name.
    pub async fn chat_assistant(&self, who: &Principal, model: &str) -> Result<ChatAssistant> {
        assistant_named(&*self.store, who.cx(), model).await
    }

    /// Answers `question` as the assistant `model` (any role): streamed through `on_delta`
    /// when a chat model writes it.
    pub async fn reply(
        &self,
        who: &Principal,
        model: &str,
        question: &str,
        on_delta: Option<DeltaSink<'_>>,
    ) -> Result<Reply> {
        answer(
            &self.agent_deps,
            &*self.store,
            who.cx(),
            None,
            model,
            question,
            on_delta,
        )
        .await
    }

    /// Embeds `texts` with the deployment's embedding model, named `model` (any role): at
    /// most [`MAX_EMBED_INPUTS`] texts of at most [`MAX_EMBED_CHARS`] characters each.
    pub async fn embed_texts(&self, model: &str, texts: &[String]) -> Result<Embedded> {
        if texts.is_empty() || texts.len() > MAX_EMBED_INPUTS {
            return Err(Error::invalid(
                "input",
                format!("give 1 to {MAX_EMBED_INPUTS} texts"),
            ));
        }
        if let Some(i) = texts
            .iter()
            .position(|t| t.is_empty() || t.chars().count() > MAX_EMBED_CHARS)
        {
            return Err(Error::invalid(
                format!("input[{i}]"),
                format!("must be 1 to {MAX_EMBED_CHARS} characters"),
            ));
        }
        let embedder = self.embedder.as_ref().ok_or_else(|| {
            Error::unavailable(
                "no_embedding_model",
                "this deployment has no embedding model (set MORNINGAI_EMBED_MODEL_DIR)",
            )
        })?;
        if model != embedder.model() {
            return Err(Error::NotFound("model"));
        }
        Ok(Embedded {
            vectors: embedder.embed(texts).await?,
            tokens: texts.iter().map(|t| embedder.count_tokens(t)).sum(),
        })
    }

    /// The deployment's embedding model and its dimensions, if it has one.
    pub fn embedding_model(&self) -> Option<(&str, usize)> {
        self.embedder.as_ref().map(|e| (e.model(), e.dims()))
    }
}
