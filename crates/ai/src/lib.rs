//! Model adapters behind the `morningai_core::ai` ports.

mod minilm;

pub use minilm::MiniLm;
