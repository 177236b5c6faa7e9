//! Embedding throughput of the local MiniLM embedder: chunks of ~256 model tokens (the
//! model's window), embedded in the batches the embedder uses. Usage:
//! `embed-bench [CHUNKS] [TEXTS PER CALL] [fp32]` with `MORNINGAI_EMBED_MODEL_DIR` naming the
//! model directory (`scripts/fetch-minilm.sh` prints one); `fp32` measures candle's fp32
//! encoder where the int8 one would run.
//!
//! Also reports the model's useful arithmetic per second (GFLOP/s: the multiply-adds of
//! the encoder's matrix products for the real tokens, padding not counted) against this
//! machine's fp32 peak, measured here by a kernel of independent AVX2 FMA chains on every
//! core (what the cores can retire when nothing else limits them).

use morningai_ai::{MiniLm, Precision};
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
    // Texts per call to the embedder (all at once by default; the background indexing
    // pass makes calls of 4).
    let group: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(n)
        .max(1);
    let dir = std::env::var("MORNINGAI_EMBED_MODEL_DIR")
        .map_err(|_| anyhow::anyhow!("set MORNINGAI_EMBED_MODEL_DIR (scripts/fetch-minilm.sh)"))?;
    // Measured first: after the model runs, its pool's threads spin for a while.
    let peak = best_of_five(12.0 * 8.0 * 2.0, fma_chains);
    let int8_peak = best_of_five(12.0 * 64.0 * 2.0, vnni_chains);
    let precision = match std::env::args().nth(3).as_deref() {
        Some("fp32") => Precision::F32,
        _ => Precision::Auto,
    };
    let model = MiniLm::load_with(std::path::Path::new(&dir), None, precision)?;
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
    let mut v = Vec::with_capacity(n);
    for call in chunks.chunks(group) {
        v.extend(model.embed(call).await?);
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(v.len(), n);
    println!(
        "embed ({}): {n} chunks of {:.0} tokens on average, {group} per call, in {secs:.2} s: {:.1} chunks/s ({:.0} tokens/s)",
        model.precision(),
        tokens as f64 / n as f64,
        n as f64 / secs,
        tokens as f64 / secs
    );
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(
        std::path::Path::new(&dir).join("config.json"),
    )?)?;
    let dim = |k: &str| config[k].as_f64().unwrap_or_default();
    let shape = (
        dim("hidden_size"),
        dim("intermediate_size"),
        dim("num_hidden_layers"),
    );
    // Each sequence as the model sees it: the text's tokens plus [CLS] and [SEP].
    let flop: f64 = chunks
        .iter()
        .map(|c| encoder_flop(model.count_tokens(c) as f64 + 2.0, shape))
        .sum();
    let gflops = flop / secs / 1e9;
    println!(
        "arithmetic: {:.1} GFLOP per chunk, {gflops:.1} GFLOP/s; fp32 FMA peak measured on {} cores: {peak:.1} GFLOP/s; {:.0} % of peak",
        flop / n as f64 / 1e9,
        std::thread::available_parallelism().map_or(1, |p| p.get()),
        100.0 * gflops / peak
    );
    if model.precision() == "int8" {
        println!(
            "int8 peak (AVX-512 VNNI) measured: {int8_peak:.1} GOP/s; {:.0} % of it",
            100.0 * gflops / int8_peak
        );
    }
    Ok(())
}

/// FLOP of one BERT encoder pass over `len` tokens, hidden size `h`, feed-forward size `i`,
/// `layers` layers: per layer and token the Q, K, V and output projections (4 · 2h²) and the
/// feed-forward pair (2 · 2hi); per layer the attention scores and their weighted sum
/// (2 · 2 · len² · h). Softmax, normalisation and activations are left out (a few %).
fn encoder_flop(len: f64, (h, i, layers): (f64, f64, f64)) -> f64 {
    layers * (len * (8.0 * h * h + 4.0 * h * i) + 4.0 * len * len * h)
}

/// A peak in G(FL)OP/s, the best of five runs (on a shared machine a neighbour can only
/// slow a run down): every core runs `kernel`, whose every iteration does `per_iter`
/// operations; 0 where the CPU lacks the kernel's instructions.
fn best_of_five(per_iter: f64, kernel: fn(u64) -> Option<f32>) -> f64 {
    const ITERS: u64 = 100_000_000;
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
    let per_thread = ITERS / threads as u64;
    (0..5)
        .map(|_| {
            let start = Instant::now();
            let sums: Vec<Option<f32>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| s.spawn(move || kernel(per_thread)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().ok().flatten())
                    .collect()
            });
            let secs = start.elapsed().as_secs_f64();
            // The results are used, so the loops cannot be optimised away.
            if sums.iter().all(|s| s.is_some_and(f32::is_finite)) {
                (per_thread * threads as u64) as f64 * per_iter / secs / 1e9
            } else {
                0.0
            }
        })
        .fold(0.0, f64::max)
}

/// fp32: 12 independent chains of 8-lane FMAs (enough to cover the FMA latency on two
/// pipes), 2 FLOP per lane.
fn fma_chains(iters: u64) -> Option<f32> {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA.
        return Some(unsafe { fma_kernel(iters) });
    }
    let _ = iters;
    None
}

/// int8: 12 independent chains of 512-bit `vpdpbusd` (64 multiply-adds each), 2 OP per
/// multiply-add — what the int8 encoder's matrix products run on.
fn vnni_chains(iters: u64) -> Option<f32> {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni") {
        // SAFETY: the CPU has AVX-512 VNNI.
        return Some(unsafe { vnni_kernel(iters) });
    }
    let _ = iters;
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn vnni_kernel(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm512_set1_epi8(1), _mm512_set1_epi8(-1));
    let mut acc = [_mm512_set1_epi32(0); 12];
    for _ in 0..iters {
        for x in &mut acc {
            *x = _mm512_dpbusd_epi32(*x, a, b);
        }
    }
    let total = acc
        .iter()
        .fold(_mm512_setzero_si512(), |s, x| _mm512_add_epi32(s, *x));
    _mm512_reduce_add_epi32(total) as f32
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_kernel(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    let mut acc = [_mm256_set1_ps(1.0); 12];
    for _ in 0..iters {
        for x in &mut acc {
            *x = _mm256_fmadd_ps(*x, a, b);
        }
    }
    let mut out = [0f32; 8];
    let total = acc
        .iter()
        .fold(_mm256_setzero_ps(), |s, x| _mm256_add_ps(s, *x));
    // SAFETY: `out` holds 8 floats.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), total) };
    out.iter().sum()
}
