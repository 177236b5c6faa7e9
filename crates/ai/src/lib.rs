//! Model adapters behind the `morningai_core::ai` ports: the local MiniLM embedder (int8 on
//! AVX-512 VNNI, candle fp32 elsewhere),
//! OpenAI-compatible chat and embedding providers, and the metering wrapper that enforces
//! budgets and records cost.

#[cfg(target_arch = "x86_64")]
mod int8;
mod metered;
mod minilm;
mod openai;

pub use metered::Metered;
pub use minilm::{MiniLm, Precision};
pub use openai::{OpenAiChat, OpenAiEmbedder, OpenAiProvider, ProviderConfig};
