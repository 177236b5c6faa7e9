//! Ports for models: text embedders (and, next, chat models). Adapters live in `crates/ai`.

use crate::Result;
use async_trait::async_trait;

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
