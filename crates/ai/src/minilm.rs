//! The local embedder: a BERT sentence encoder (all-MiniLM-L6-v2 by default) run in-process,
//! mean-pooled over the attention mask and L2-normalised, as sentence-transformers does.
//! Loaded from a directory holding `config.json`, `tokenizer.json` and `model.safetensors`.
//! On CPUs with AVX-512 VNNI the encoder is this crate's int8 one (`int8.rs`); elsewhere,
//! or when asked for, candle's fp32 `BertModel`.

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use morningai_core::ai::Embedder;
use morningai_core::{Error, Result};
use std::path::Path;
use std::sync::Arc;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// sentence-transformers reads at most 256 tokens with this model (its
/// `max_seq_length`); the bundled tokenizer.json says 128, which would cut chunks short.
const MAX_TOKENS: usize = 256;
/// Texts per forward pass. Small batches are faster on CPU, not only smaller: a pass's
/// attention scores (texts × 12 heads × 256² floats) stay near the cache at 4 and spill far
/// past it at 32 — `embed-bench 64 N` measured 12.1 chunks/s with 4 per call against 11.4
/// (8), 9.2 (16), 7.0 (32) and 8.5 (1) on 246-token chunks.
const BATCH: usize = 4;

/// Which arithmetic the encoder uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// int8 matrix products where the CPU has AVX-512 VNNI, fp32 elsewhere.
    Auto,
    /// candle's fp32 encoder everywhere (the reference the int8 one is checked against).
    F32,
}

pub struct MiniLm {
    inner: Arc<Inner>,
    model_name: String,
}

enum Encoder {
    Candle(BertModel),
    #[cfg(target_arch = "x86_64")]
    Int8(crate::int8::Int8Bert),
}

struct Inner {
    encoder: Encoder,
    /// Truncates to the model's window and pads batches: for model input.
    tokenizer: Tokenizer,
    /// Neither truncates nor pads: for measuring text.
    counter: Tokenizer,
    dims: usize,
    /// Threads the int8 encoder shares a call's texts over: the cores, read once (on Linux
    /// `available_parallelism` reads the cgroup's files).
    threads: usize,
}

fn load_err(what: &str, dir: &Path, e: impl std::fmt::Display) -> Error {
    Error::internal(&format!("load {what} from {}", dir.display()), e)
}

impl MiniLm {
    /// Loads the model in `dir`; `model_name` is what vectors record (the directory name
    /// when none is given). int8 where the CPU allows it (`Precision::Auto`).
    pub fn load(dir: &Path, model_name: Option<&str>) -> Result<Self> {
        Self::load_with(dir, model_name, Precision::Auto)
    }

    /// As `load`, with the encoder's arithmetic chosen.
    pub fn load_with(dir: &Path, model_name: Option<&str>, precision: Precision) -> Result<Self> {
        let config: Config = serde_json::from_slice(
            &std::fs::read(dir.join("config.json")).map_err(|e| load_err("config.json", dir, e))?,
        )
        .map_err(|e| load_err("config.json", dir, e))?;
        let mut counter = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| load_err("tokenizer.json", dir, e))?;
        let mut tokenizer = counter.clone();
        counter
            .with_truncation(None)
            .map_err(|e| load_err("tokenizer.json", dir, e))?;
        counter.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| load_err("tokenizer.json", dir, e))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        let weights = std::fs::read(dir.join("model.safetensors"))
            .map_err(|e| load_err("model.safetensors", dir, e))?;
        let encoder = match int8_encoder(&weights, &config, precision) {
            Ok(Some(encoder)) => encoder,
            Ok(None) => candle_encoder(weights, &config, dir)?,
            // candle reads what the int8 loader does not (prefixed tensor names, say); a
            // file neither can read fails there.
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "int8 encoder not loaded: fp32 instead");
                candle_encoder(weights, &config, dir)?
            }
        };
        let model_name = model_name.map(str::to_owned).unwrap_or_else(|| {
            dir.file_name()
                .map_or("local".into(), |n| n.to_string_lossy().into_owned())
        });
        Ok(Self {
            inner: Arc::new(Inner {
                encoder,
                tokenizer,
                counter,
                dims: config.hidden_size,
                threads: std::thread::available_parallelism().map_or(1, |p| p.get()),
            }),
            model_name,
        })
    }

    /// "int8" or "fp32": the arithmetic this embedder's encoder uses.
    pub fn precision(&self) -> &'static str {
        match self.inner.encoder {
            Encoder::Candle(_) => "fp32",
            #[cfg(target_arch = "x86_64")]
            Encoder::Int8(_) => "int8",
        }
    }
}

fn candle_encoder(weights: Vec<u8>, config: &Config, dir: &Path) -> Result<Encoder> {
    let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
        .map_err(|e| load_err("model.safetensors", dir, e))?;
    Ok(Encoder::Candle(
        BertModel::load(vb, config).map_err(|e| load_err("the model", dir, e))?,
    ))
}

#[cfg(target_arch = "x86_64")]
fn int8_encoder(
    weights: &[u8],
    config: &Config,
    precision: Precision,
) -> candle_core::Result<Option<Encoder>> {
    if precision != Precision::Auto {
        return Ok(None);
    }
    Ok(crate::int8::Int8Bert::load(weights, config)?.map(Encoder::Int8))
}

#[cfg(not(target_arch = "x86_64"))]
fn int8_encoder(_: &[u8], _: &Config, _: Precision) -> candle_core::Result<Option<Encoder>> {
    Ok(None)
}

impl Inner {
    /// The embeddings of `texts`, in order.
    fn embed_all(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        match &self.encoder {
            Encoder::Candle(model) => {
                // Similar lengths share a batch, so little of each pass is padding.
                let mut order: Vec<usize> = (0..texts.len()).collect();
                order.sort_by_key(|&i| texts[i].len());
                let mut out = vec![Vec::new(); texts.len()];
                for idxs in order.chunks(BATCH) {
                    let batch: Vec<String> = idxs.iter().map(|&i| texts[i].clone()).collect();
                    let vectors = self
                        .embed_batch(model, &batch)
                        .map_err(|e| Error::internal("embed", e))?;
                    for (&i, v) in idxs.iter().zip(vectors) {
                        out[i] = v;
                    }
                }
                Ok(out)
            }
            // Every text alone at its own length, tokenised on the thread that encodes it.
            #[cfg(target_arch = "x86_64")]
            Encoder::Int8(model) => model
                .encode_all(texts, self.threads, |text| {
                    self.tokenizer
                        .encode_fast(text, true)
                        .map(|e| e.get_ids().to_vec())
                        .map_err(|e| Error::internal("tokenize", e))
                })
                .into_iter()
                .collect(),
        }
    }

    fn embed_batch(
        &self,
        model: &BertModel,
        texts: &[String],
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(candle_core::Error::wrap)?;
        let rows = |f: fn(&tokenizers::Encoding) -> &[u32]| -> candle_core::Result<Tensor> {
            let rows = encodings
                .iter()
                .map(|e| Tensor::new(f(e), &Device::Cpu))
                .collect::<candle_core::Result<Vec<_>>>()?;
            Tensor::stack(&rows, 0)
        };
        let ids = rows(|e| e.get_ids())?;
        let mask = rows(|e| e.get_attention_mask())?;
        let types = ids.zeros_like()?;
        let hidden = model.forward(&ids, &types, Some(&mask))?;
        // Mean over the real tokens: padding positions weigh zero.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f32::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f32::MAX)?;
        mean.broadcast_div(&norms)?.to_vec2::<f32>()
    }
}

#[async_trait]
impl Embedder for MiniLm {
    fn model(&self) -> &str {
        &self.model_name
    }

    fn dims(&self) -> usize {
        self.inner.dims
    }

    fn max_tokens(&self) -> usize {
        MAX_TOKENS - 2 // [CLS] and [SEP]
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.inner
            .counter
            .encode_fast(text, false)
            .map_or(text.len() / 4, |e| e.get_ids().len())
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inner = self.inner.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || inner.embed_all(&texts))
            .await
            .map_err(|e| Error::internal("embed task", e))?
    }
}
