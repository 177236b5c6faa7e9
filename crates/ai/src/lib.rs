//! Model adapters behind the `morningai_core::ai` ports: the local MiniLM embedder (candle),
//! OpenAI-compatible chat and embedding providers, and the metering wrapper that enforces
//! budgets and records cost.

mod metered;
mod minilm;
mod openai;

pub use metered::Metered;
pub use minilm::MiniLm;
pub use openai::{OpenAiChat, OpenAiEmbedder, OpenAiProvider, ProviderConfig};
