//! Embedding throughput of the local MiniLM embedder: chunks of ~256 model tokens (the
//! model's window), embedded in the batches the embedder uses. Usage:
//! `embed-bench [CHUNKS]` with `MORNINGAI_EMBED_MODEL_DIR` naming the model directory
//! (`scripts/fetch-minilm.sh` prints one).

use morningai_ai::MiniLm;
use morningai_core::ai::Embedder;
use std::time::Instant;

const WORDS: &[&str] = &[
    "the",
    "queue",
    "leases",
    "jobs",
    "to",
    "workers",
    "and",
    "retries",
    "failures",
    "with",
    "exponential",
    "backoff",
    "tenant",
    "isolation",
    "holds",
    "in",
    "every",
    "query",
    "graph",
    "checkpoint",
    "stores",
    "deltas",
    "per",
    "step",
    "embedding",
    "vectors",
    "search",
    "hybrid",
    "fusion",
    "ranks",
    "documents",
    "answer",
    "questions",
    "about",
    "repository",
    "sources",
];

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(256);
    let dir = std::env::var("MORNINGAI_EMBED_MODEL_DIR")
        .map_err(|_| anyhow::anyhow!("set MORNINGAI_EMBED_MODEL_DIR (scripts/fetch-minilm.sh)"))?;
    let model = MiniLm::load(std::path::Path::new(&dir), None)?;
    let mut seed = 1u64;
    let chunks: Vec<String> = (0..n)
        .map(|_| {
            let mut text = String::new();
            while model.count_tokens(&text) < model.max_tokens() - 8 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                text.push_str(WORDS[(seed >> 33) as usize % WORDS.len()]);
                text.push(' ');
            }
            text
        })
        .collect();
    let tokens: usize = chunks.iter().map(|c| model.count_tokens(c)).sum();
    model.embed(&chunks[..8.min(n)]).await?; // warm-up
    let start = Instant::now();
    let v = model.embed(&chunks).await?;
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(v.len(), n);
    println!(
        "embed: {n} chunks of {:.0} tokens on average in {secs:.2} s: {:.1} chunks/s ({:.0} tokens/s)",
        tokens as f64 / n as f64,
        n as f64 / secs,
        tokens as f64 / secs
    );
    Ok(())
}
