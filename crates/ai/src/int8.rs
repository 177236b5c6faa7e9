//! The BERT encoder run directly on the CPU's int8 dot-product instruction (AVX-512 VNNI's
//! `vpdpbusd`: 64 multiply-adds per instruction, four times the fp32 FMA's 16), for the
//! local embedder on CPUs that have it.
//!
//! - The four matrix products of every layer (Q/K/V fused into one, the attention output,
//!   the feed-forward pair: ~90 % of the arithmetic) are int8. Weights are quantised once,
//!   at load, per output channel and symmetric; activations at each product per token
//!   (row) onto 0..=255 between the row's minimum and maximum (asymmetric: GELU's output
//!   is mostly positive), the unsigned operand `vpdpbusd` takes — the row's minimum is
//!   added back with the weights' column sums.
//! - Attention (scores, softmax, weighted sum), layer norms and GELU stay fp32, on 16-lane
//!   AVX-512 kernels.
//! - Each sequence runs alone at its own length, so nothing is padding, and the sequences of
//!   a call are shared out among the cores (`encode_all`).
//!
//! Why by hand: candle's quantized matmul has no VNNI kernel and no crate in the registry
//! runs a BERT encoder on int8 without a C++ runtime. The kernels are checked against
//! plain integer and fp32 arithmetic in this file's tests, and the whole encoder against
//! candle's fp32 one in `tests/minilm.rs`.

use candle_core::{DType, Device};
use candle_transformers::models::bert::{Config, HiddenAct};
use std::arch::x86_64::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Rows of a matrix-product block: 8 rows × 32 columns = 16 accumulators of 32 registers.
const MR: usize = 8;
/// Rows of an attention block.
const AR: usize = 4;
/// Lanes of an AVX-512 f32 or i32 register.
const LANES: usize = 16;

/// Whether this CPU can run the int8 encoder.
pub(crate) fn supported() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni")
}

/// A linear layer `y = x Wᵀ + b` with W quantised to int8 per output channel.
struct QLinear {
    k: usize,
    n: usize,
    /// W packed for `vpdpbusd`: panels of 16 output channels, and within a panel groups of
    /// 4 inputs × 16 channels × 4 bytes, so that one 64-byte load feeds one instruction.
    packed: Vec<i8>,
    /// Per output channel: W's scale, the sum of its int8 values (what the activations'
    /// offset multiplies), and the bias.
    scale: Vec<f32>,
    colsum: Vec<f32>,
    bias: Vec<f32>,
}

impl QLinear {
    /// From PyTorch's layout: `w` is [n, k] row-major.
    fn new(w: &[f32], bias: Vec<f32>, n: usize, k: usize) -> Self {
        let mut packed = vec![0i8; n * k];
        let mut scale = vec![0f32; n];
        let mut colsum = vec![0f32; n];
        for col in 0..n {
            let row = &w[col * k..(col + 1) * k];
            let amax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let s = if amax > 0.0 { amax / 127.0 } else { 1.0 };
            scale[col] = s;
            let (panel, lane) = (col / LANES, col % LANES);
            for (kk, v) in row.iter().enumerate() {
                let q = (v / s).round().clamp(-127.0, 127.0) as i8;
                colsum[col] += f32::from(q);
                packed[((panel * (k / 4) + kk / 4) * LANES + lane) * 4 + kk % 4] = q;
            }
        }
        Self {
            k,
            n,
            packed,
            scale,
            colsum,
            bias,
        }
    }
}

struct Norm {
    w: Vec<f32>,
    b: Vec<f32>,
}

struct Layer {
    qkv: QLinear,
    out: QLinear,
    norm1: Norm,
    up: QLinear,
    down: QLinear,
    norm2: Norm,
}

pub(crate) struct Int8Bert {
    word: Vec<f32>,
    position: Vec<f32>,
    /// Token type 0's row: every input is a single segment.
    segment: Vec<f32>,
    norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    inter: usize,
    heads: usize,
    max_positions: usize,
    eps: f32,
}

/// Working memory of one sequence's pass, reused from one sequence to the next.
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    y: Vec<f32>,
    wide: Vec<f32>,
    quant: Rows,
    q: Vec<f32>,
    kt: Vec<f32>,
    scores: Vec<f32>,
}

fn grow<T: Default + Clone>(v: &mut Vec<T>, len: usize) {
    if v.len() < len {
        v.resize(len, T::default());
    }
}

impl Int8Bert {
    /// Quantises the model in `safetensors` (candle's BERT layout, tensors named without a
    /// prefix). `None` when this CPU lacks AVX-512 VNNI or the model is one these kernels do
    /// not cover (another activation than exact GELU, a shape they do not tile); an error
    /// when a tensor is missing or not the shape `config` says. Either way the caller keeps
    /// candle's fp32 encoder.
    pub(crate) fn load(safetensors: &[u8], config: &Config) -> candle_core::Result<Option<Self>> {
        let (h, i, heads) = (
            config.hidden_size,
            config.intermediate_size,
            config.num_attention_heads,
        );
        if !supported()
            || config.hidden_act != HiddenAct::Gelu
            || h == 0
            || i == 0
            || heads == 0
            || config.type_vocab_size == 0
            || h % 32 != 0
            || i % 32 != 0
            || h % heads != 0
            || (h / heads) % LANES != 0
            || h / heads > 64
        {
            return Ok(None);
        }
        let tensors = candle_core::safetensors::load_buffer(safetensors, &Device::Cpu)?;
        // Every tensor is checked against the shape the kernels index it by.
        let get = |name: &str, shape: &[usize]| -> candle_core::Result<Vec<f32>> {
            let t = tensors
                .get(name)
                .ok_or_else(|| candle_core::Error::Msg(format!("no tensor {name}")))?;
            if t.dims() != shape {
                return Err(candle_core::Error::Msg(format!(
                    "tensor {name} is {:?}, the config says {shape:?}",
                    t.dims()
                )));
            }
            t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
        };
        let norm = |prefix: &str| -> candle_core::Result<Norm> {
            Ok(Norm {
                w: get(&format!("{prefix}.LayerNorm.weight"), &[h])?,
                b: get(&format!("{prefix}.LayerNorm.bias"), &[h])?,
            })
        };
        let linear = |prefix: &str, n: usize, k: usize| -> candle_core::Result<QLinear> {
            Ok(QLinear::new(
                &get(&format!("{prefix}.weight"), &[n, k])?,
                get(&format!("{prefix}.bias"), &[n])?,
                n,
                k,
            ))
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let (mut w, mut b) = (Vec::with_capacity(3 * h * h), Vec::with_capacity(3 * h));
            for part in ["query", "key", "value"] {
                w.extend(get(&format!("{p}.attention.self.{part}.weight"), &[h, h])?);
                b.extend(get(&format!("{p}.attention.self.{part}.bias"), &[h])?);
            }
            layers.push(Layer {
                qkv: QLinear::new(&w, b, 3 * h, h),
                out: linear(&format!("{p}.attention.output.dense"), h, h)?,
                norm1: norm(&format!("{p}.attention.output"))?,
                up: linear(&format!("{p}.intermediate.dense"), i, h)?,
                down: linear(&format!("{p}.output.dense"), h, i)?,
                norm2: norm(&format!("{p}.output"))?,
            });
        }
        let segment = get(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?;
        Ok(Some(Self {
            word: get("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
            position: get(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            segment: segment[..h].to_vec(),
            norm: norm("embeddings")?,
            layers,
            hidden: h,
            inter: i,
            heads,
            max_positions: config.max_position_embeddings,
            eps: config.layer_norm_eps as f32,
        }))
    }

    /// The mean-pooled, L2-normalised embedding of each text, tokenised by `tokenize`: the
    /// texts are shared out among `threads` threads (longest first, taken one at a time as
    /// threads free up), each tokenising what it encodes.
    pub(crate) fn encode_all<E: Send>(
        &self,
        texts: &[String],
        threads: usize,
        tokenize: impl Fn(&str) -> Result<Vec<u32>, E> + Sync,
    ) -> Vec<Result<Vec<f32>, E>> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&t| std::cmp::Reverse(texts[t].len()));
        let next = AtomicUsize::new(0);
        let work = || {
            let mut scratch = Scratch::default();
            let mut done = Vec::new();
            while let Some(&t) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                done.push((
                    t,
                    tokenize(&texts[t]).map(|ids| self.encode(&ids, &mut scratch)),
                ));
            }
            done
        };
        let threads = threads.clamp(1, texts.len().max(1));
        let parts: Vec<Vec<_>> = std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
            let mut parts = vec![work()];
            parts.extend(
                helpers
                    .into_iter()
                    .map(|h| h.join().expect("encoder thread")),
            );
            parts
        });
        // Every index was handed out once: sorted, they are the texts' order.
        let mut done: Vec<_> = parts.into_iter().flatten().collect();
        done.sort_unstable_by_key(|(t, _)| *t);
        done.into_iter().map(|(_, v)| v).collect()
    }

    /// One text's vector. `ids` are its tokens alone (no padding), so no attention mask.
    fn encode(&self, ids: &[u32], s: &mut Scratch) -> Vec<f32> {
        let (h, i) = (self.hidden, self.inter);
        let len = ids.len().min(self.max_positions);
        if len == 0 {
            return vec![0.0; h];
        }
        let padded = len.div_ceil(MR) * MR;
        grow(&mut s.x, len * h);
        grow(&mut s.y, len * i.max(3 * h));
        grow(&mut s.wide, len * i.max(3 * h));
        grow(&mut s.quant.bytes, padded * i.max(h));
        grow(&mut s.quant.scale, padded);
        grow(&mut s.quant.min, padded);
        // SAFETY: `supported()` was checked before the model was made (`MiniLm::load`); the
        // kernels index only within the buffers sized above.
        unsafe {
            for (t, &id) in ids[..len].iter().enumerate() {
                let word = (id as usize).min(self.word.len() / h - 1);
                let x = &mut s.x[t * h..(t + 1) * h];
                for (j, v) in x.iter_mut().enumerate() {
                    *v = self.word[word * h + j] + self.position[t * h + j] + self.segment[j];
                }
                layer_norm(x, None, &self.norm, self.eps);
            }
            for layer in &self.layers {
                linear(&s.x[..len * h], len, &layer.qkv, &mut s.quant, &mut s.wide);
                self.attention(len, s);
                linear(&s.y[..len * h], len, &layer.out, &mut s.quant, &mut s.wide);
                for t in 0..len {
                    let x = &mut s.x[t * h..(t + 1) * h];
                    layer_norm(x, Some(&s.wide[t * h..(t + 1) * h]), &layer.norm1, self.eps);
                }
                linear(&s.x[..len * h], len, &layer.up, &mut s.quant, &mut s.y);
                gelu(&mut s.y[..len * i]);
                linear(&s.y[..len * i], len, &layer.down, &mut s.quant, &mut s.wide);
                for t in 0..len {
                    let x = &mut s.x[t * h..(t + 1) * h];
                    layer_norm(x, Some(&s.wide[t * h..(t + 1) * h]), &layer.norm2, self.eps);
                }
            }
        }
        let mut mean = vec![0f32; h];
        for row in s.x[..len * h].chunks_exact(h) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        mean.iter_mut().for_each(|v| *v /= norm);
        mean
    }

    /// Self-attention over `s.wide` (Q, K, V side by side, [len, 3h]) into `s.y` ([len, h]).
    unsafe fn attention(&self, len: usize, s: &mut Scratch) {
        let (h, heads) = (self.hidden, self.heads);
        let dh = h / heads;
        let rows = len.div_ceil(AR) * AR;
        let cols = len.div_ceil(LANES) * LANES;
        grow(&mut s.q, rows * dh);
        grow(&mut s.kt, dh * cols);
        grow(&mut s.scores, rows * cols);
        let scale = 1.0 / (dh as f32).sqrt();
        for head in 0..heads {
            let (qo, ko, vo) = (head * dh, h + head * dh, 2 * h + head * dh);
            // Q scaled (padding rows zero); K transposed, so scores are rows × 16-lane blocks.
            s.q[..rows * dh].fill(0.0);
            s.kt[..dh * cols].fill(0.0);
            for t in 0..len {
                let row = &s.wide[t * 3 * h..(t + 1) * 3 * h];
                for d in 0..dh {
                    s.q[t * dh + d] = row[qo + d] * scale;
                    s.kt[d * cols + t] = row[ko + d];
                }
            }
            // SAFETY: the caller checked the CPU (see `encode`); the buffers hold
            // `rows` × `cols` scores, `rows` × `dh` queries and `dh` × `cols` keys.
            unsafe {
                scores(&s.q, &s.kt, &mut s.scores, rows, cols, dh);
                for t in 0..len {
                    softmax(&mut s.scores[t * cols..t * cols + len]);
                }
                weighted_sum(
                    &s.scores,
                    cols,
                    len,
                    &s.wide[vo..],
                    3 * h,
                    dh,
                    &mut s.y[qo..],
                    h,
                );
            }
        }
    }
}

/// Activations quantised per row: `x ≈ min + scale · byte`.
#[derive(Default)]
struct Rows {
    bytes: Vec<u8>,
    scale: Vec<f32>,
    min: Vec<f32>,
}

/// `out[len, n] = x[len, k] · Wᵀ + b`, x quantised per row into `rows` first.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn linear(x: &[f32], len: usize, w: &QLinear, rows: &mut Rows, out: &mut [f32]) {
    let k = w.k;
    let padded = len.div_ceil(MR) * MR;
    for t in 0..padded {
        let q = &mut rows.bytes[t * k..(t + 1) * k];
        if t >= len {
            q.fill(0);
            continue;
        }
        // SAFETY: the row holds k floats and k bytes, k a multiple of 16.
        (rows.min[t], rows.scale[t]) = unsafe { quantize_row(&x[t * k..(t + 1) * k], q) };
    }
    // SAFETY: as above; `out` holds len × n floats.
    unsafe {
        gemm_u8i8(
            &rows.bytes[..padded * k],
            &rows.scale,
            &rows.min,
            len,
            w,
            out,
        )
    };
}

/// Quantises a row onto 0..=255 between its minimum and maximum; returns both the minimum
/// and the step.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantize_row(x: &[f32], q: &mut [u8]) -> (f32, f32) {
    let (mut lo, mut hi) = (_mm512_set1_ps(f32::MAX), _mm512_set1_ps(f32::MIN));
    for c in x.chunks_exact(LANES) {
        // SAFETY: `c` holds 16 floats.
        let v = unsafe { _mm512_loadu_ps(c.as_ptr()) };
        (lo, hi) = (_mm512_min_ps(lo, v), _mm512_max_ps(hi, v));
    }
    let (lo, hi) = (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
    if hi <= lo {
        q.fill(0);
        return (lo, 0.0);
    }
    let step = (hi - lo) / 255.0;
    let (min, inv) = (_mm512_set1_ps(lo), _mm512_set1_ps(1.0 / step));
    for (c, out) in x.chunks_exact(LANES).zip(q.chunks_exact_mut(LANES)) {
        // SAFETY: 16 floats in, 16 bytes out.
        unsafe {
            let v = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(c.as_ptr()), min), inv);
            let b =
                _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(_mm512_max_ps(v, _mm512_setzero_ps())));
            _mm_storeu_si128(out.as_mut_ptr().cast(), b);
        }
    }
    (lo, step)
}

/// `out[m, n] = w.scale[n] · (scale[m] · Σₖ a[m, k] · q(W)[n, k] + min[m] · w.colsum[n]) +
/// w.bias[n]` for the first `len` rows of `a` (which has `len` rounded up to `MR` rows of
/// `k` bytes).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn gemm_u8i8(
    a: &[u8],
    scale: &[f32],
    min: &[f32],
    len: usize,
    w: &QLinear,
    out: &mut [f32],
) {
    let (k, n) = (w.k, w.n);
    let groups = k / 4;
    let a = a.as_ptr();
    for panel in (0..n / LANES).step_by(2) {
        let col = panel * LANES;
        // SAFETY: every pointer below stays inside `a`, `w.packed` and `out`: panels are
        // `groups` × 64 bytes, rows `k` bytes, and rows past `len` are read, never written.
        unsafe {
            let b0 = w.packed.as_ptr().add(panel * groups * 64);
            let b1 = b0.add(groups * 64);
            let per_col = |v: &[f32]| {
                [
                    _mm512_loadu_ps(v.as_ptr().add(col)),
                    _mm512_loadu_ps(v.as_ptr().add(col + LANES)),
                ]
            };
            let (colsum, wscale, bias) = (per_col(&w.colsum), per_col(&w.scale), per_col(&w.bias));
            for m0 in (0..len).step_by(MR) {
                let mut acc = [[_mm512_setzero_si512(); 2]; MR];
                let rows = a.add(m0 * k);
                for g in 0..groups {
                    let v0 = _mm512_loadu_si512(b0.add(g * 64).cast());
                    let v1 = _mm512_loadu_si512(b1.add(g * 64).cast());
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let x = _mm512_set1_epi32(
                            rows.add(r * k + g * 4).cast::<i32>().read_unaligned(),
                        );
                        acc[0] = _mm512_dpbusd_epi32(acc[0], x, v0);
                        acc[1] = _mm512_dpbusd_epi32(acc[1], x, v1);
                    }
                }
                for (r, acc) in acc.iter().enumerate().take(len - m0) {
                    let m = m0 + r;
                    let (rs, rm) = (_mm512_set1_ps(scale[m]), _mm512_set1_ps(min[m]));
                    for half in 0..2 {
                        let dot = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[half]), rs);
                        let v = _mm512_fmadd_ps(colsum[half], rm, dot);
                        let y = _mm512_fmadd_ps(v, wscale[half], bias[half]);
                        _mm512_storeu_ps(out.as_mut_ptr().add(m * n + col + half * LANES), y);
                    }
                }
            }
        }
    }
}

/// `scores[rows, cols] = q[rows, dh] · kt[dh, cols]`, in blocks of `AR` rows × 4 × 16 columns.
#[target_feature(enable = "avx512f")]
unsafe fn scores(q: &[f32], kt: &[f32], scores: &mut [f32], rows: usize, cols: usize, dh: usize) {
    let (q, kt, out) = (q.as_ptr(), kt.as_ptr(), scores.as_mut_ptr());
    // SAFETY: rows is a multiple of AR and cols of 16; the caller sized the buffers.
    unsafe {
        for r0 in (0..rows).step_by(AR) {
            let mut c0 = 0;
            while c0 < cols {
                let blocks = ((cols - c0) / LANES).min(4);
                let mut acc = [[_mm512_setzero_ps(); 4]; AR];
                for d in 0..dh {
                    let mut k = [_mm512_setzero_ps(); 4];
                    for (b, k) in k.iter_mut().enumerate().take(blocks) {
                        *k = _mm512_loadu_ps(kt.add(d * cols + c0 + b * LANES));
                    }
                    for (r, acc) in acc.iter_mut().enumerate() {
                        let x = _mm512_set1_ps(*q.add((r0 + r) * dh + d));
                        for b in 0..blocks {
                            acc[b] = _mm512_fmadd_ps(x, k[b], acc[b]);
                        }
                    }
                }
                for (r, acc) in acc.iter().enumerate() {
                    for (b, v) in acc.iter().enumerate().take(blocks) {
                        _mm512_storeu_ps(out.add((r0 + r) * cols + c0 + b * LANES), *v);
                    }
                }
                c0 += blocks * LANES;
            }
        }
    }
}

/// `out[t, 0..dh] = Σⱼ p[t, j] · v[j, 0..dh]` for t < rows, j < len; rows of `p` are `cols`
/// apart, of `v` `v_stride`, of `out` `out_stride`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
unsafe fn weighted_sum(
    p: &[f32],
    cols: usize,
    len: usize,
    v: &[f32],
    v_stride: usize,
    dh: usize,
    out: &mut [f32],
    out_stride: usize,
) {
    let vectors = dh / LANES;
    let (p, v, o) = (p.as_ptr(), v.as_ptr(), out.as_mut_ptr());
    // SAFETY: `p` holds len rounded up to AR rows; `v` and `out` hold len rows of dh ≤ 64.
    unsafe {
        for r0 in (0..len).step_by(AR) {
            let mut acc = [[_mm512_setzero_ps(); 4]; AR];
            for j in 0..len {
                let mut vj = [_mm512_setzero_ps(); 4];
                for (x, vj) in vj.iter_mut().enumerate().take(vectors) {
                    *vj = _mm512_loadu_ps(v.add(j * v_stride + x * LANES));
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    let w = _mm512_set1_ps(*p.add((r0 + r) * cols + j));
                    for x in 0..vectors {
                        acc[x] = _mm512_fmadd_ps(w, vj[x], acc[x]);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate().take(len - r0) {
                for (x, a) in acc.iter().enumerate().take(vectors) {
                    _mm512_storeu_ps(o.add((r0 + r) * out_stride + x * LANES), *a);
                }
            }
        }
    }
}

/// e^x on 16 lanes: x = n·ln2 + r, |r| ≤ ln2/2, e^r by its degree-6 Taylor polynomial
/// (relative error < 2e-7), times 2ⁿ.
#[inline]
#[target_feature(enable = "avx512f")]
fn exp16(x: __m512) -> __m512 {
    let x = _mm512_max_ps(
        _mm512_min_ps(x, _mm512_set1_ps(88.0)),
        _mm512_set1_ps(-87.0),
    );
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_145_75), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428_606_8e-6), r);
    let mut p = _mm512_set1_ps(1.0 / 720.0);
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    _mm512_scalef_ps(p, n)
}

/// Softmax of one row of scores, in place.
#[target_feature(enable = "avx512f")]
unsafe fn softmax(row: &mut [f32]) {
    let len = row.len();
    let full = len / LANES * LANES;
    let tail: __mmask16 = (1u32 << (len - full)).wrapping_sub(1) as u16;
    let p = row.as_mut_ptr();
    // SAFETY: full vectors below `full`, the masked tail within `len`.
    unsafe {
        let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
        for c in (0..full).step_by(LANES) {
            max = _mm512_max_ps(max, _mm512_loadu_ps(p.add(c)));
        }
        max = _mm512_mask_max_ps(max, tail, max, _mm512_maskz_loadu_ps(tail, p.add(full)));
        let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
        let mut sum = _mm512_setzero_ps();
        for c in (0..full).step_by(LANES) {
            let e = exp16(_mm512_sub_ps(_mm512_loadu_ps(p.add(c)), max));
            _mm512_storeu_ps(p.add(c), e);
            sum = _mm512_add_ps(sum, e);
        }
        let e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, p.add(full)), max));
        _mm512_mask_storeu_ps(p.add(full), tail, e);
        sum = _mm512_mask_add_ps(sum, tail, sum, e);
        let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(sum));
        for c in (0..full).step_by(LANES) {
            _mm512_storeu_ps(p.add(c), _mm512_mul_ps(_mm512_loadu_ps(p.add(c)), inv));
        }
        let t = _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, p.add(full)), inv);
        _mm512_mask_storeu_ps(p.add(full), tail, t);
    }
}

/// GELU with the exact erf (BERT's `gelu`), erf by Abramowitz and Stegun 7.1.26 (absolute
/// error < 1.5e-7), in place; `x.len()` is a multiple of 16.
#[target_feature(enable = "avx512f")]
unsafe fn gelu(x: &mut [f32]) {
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152_1,
        1.061_405_4,
    ];
    for c in x.chunks_exact_mut(LANES) {
        // SAFETY: `c` holds 16 floats.
        unsafe {
            let v = _mm512_loadu_ps(c.as_ptr());
            let z = _mm512_abs_ps(_mm512_mul_ps(
                v,
                _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2),
            ));
            let t = _mm512_div_ps(
                _mm512_set1_ps(1.0),
                _mm512_fmadd_ps(z, _mm512_set1_ps(0.327_591_1), _mm512_set1_ps(1.0)),
            );
            let mut poly = _mm512_set1_ps(A[4]);
            for a in A[..4].iter().rev() {
                poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(*a));
            }
            poly = _mm512_mul_ps(poly, t);
            let e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(z, z)));
            let erf_abs = _mm512_fnmadd_ps(poly, e, _mm512_set1_ps(1.0));
            // erf is odd: take the sign of v.
            let sign = _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(i32::MIN));
            let erf = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(erf_abs), sign));
            let y = _mm512_mul_ps(
                _mm512_mul_ps(v, _mm512_set1_ps(0.5)),
                _mm512_add_ps(erf, _mm512_set1_ps(1.0)),
            );
            _mm512_storeu_ps(c.as_mut_ptr(), y);
        }
    }
}

/// `x = LayerNorm(x + residual)`; `x.len()` is a multiple of 16.
#[target_feature(enable = "avx512f")]
unsafe fn layer_norm(x: &mut [f32], residual: Option<&[f32]>, norm: &Norm, eps: f32) {
    let n = x.len();
    let p = x.as_mut_ptr();
    // SAFETY: `x`, `residual`, `norm.w` and `norm.b` hold n floats.
    unsafe {
        let mut sum = _mm512_setzero_ps();
        for c in (0..n).step_by(LANES) {
            let mut v = _mm512_loadu_ps(p.add(c));
            if let Some(r) = residual {
                v = _mm512_add_ps(v, _mm512_loadu_ps(r.as_ptr().add(c)));
                _mm512_storeu_ps(p.add(c), v);
            }
            sum = _mm512_add_ps(sum, v);
        }
        let mean = _mm512_set1_ps(_mm512_reduce_add_ps(sum) / n as f32);
        let mut var = _mm512_setzero_ps();
        for c in (0..n).step_by(LANES) {
            let d = _mm512_sub_ps(_mm512_loadu_ps(p.add(c)), mean);
            var = _mm512_fmadd_ps(d, d, var);
        }
        let inv = _mm512_set1_ps(1.0 / (_mm512_reduce_add_ps(var) / n as f32 + eps).sqrt());
        for c in (0..n).step_by(LANES) {
            let d = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(p.add(c)), mean), inv);
            let y = _mm512_fmadd_ps(
                d,
                _mm512_loadu_ps(norm.w.as_ptr().add(c)),
                _mm512_loadu_ps(norm.b.as_ptr().add(c)),
            );
            _mm512_storeu_ps(p.add(c), y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// The packed int8 product equals plain arithmetic on the same quantised values, for
    /// row counts that are and are not multiples of the block, and the whole layer stays
    /// within int8's error of the fp32 product.
    #[test]
    fn int8_linear_matches_plain_arithmetic() {
        if !supported() {
            eprintln!("this CPU has no AVX-512 VNNI: the int8 encoder is not used here");
            return;
        }
        let mut seed = 7;
        let (n, k) = (64, 96);
        let w: Vec<f32> = (0..n * k).map(|_| noise(&mut seed)).collect();
        let bias: Vec<f32> = (0..n).map(|_| noise(&mut seed)).collect();
        let lin = QLinear::new(&w, bias.clone(), n, k);
        for len in [1, 7, 8, 13] {
            let x: Vec<f32> = (0..len * k).map(|_| 3.0 * noise(&mut seed)).collect();
            let padded = len.div_ceil(MR) * MR;
            let mut rows = Rows {
                bytes: vec![0; padded * k],
                scale: vec![0.0; padded],
                min: vec![0.0; padded],
            };
            let mut out = vec![0f32; len * n];
            // SAFETY: checked `supported()` above.
            unsafe { linear(&x, len, &lin, &mut rows, &mut out) };
            for m in 0..len {
                for c in 0..n {
                    let (dot, sum) = (0..k).fold((0i64, 0i64), |(dot, sum), kk| {
                        let q = (w[c * k + kk] / lin.scale[c]).round() as i64;
                        (dot + i64::from(rows.bytes[m * k + kk]) * q, sum + q)
                    });
                    let want = lin.scale[c]
                        * (rows.scale[m] * dot as f32 + rows.min[m] * sum as f32)
                        + bias[c];
                    let got = out[m * n + c];
                    assert!(
                        (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                        "{len}: [{m},{c}] {got} vs {want}"
                    );
                    let fp32: f32 =
                        (0..k).map(|kk| x[m * k + kk] * w[c * k + kk]).sum::<f32>() + bias[c];
                    assert!(
                        (got - fp32).abs() < 0.25,
                        "{len}: [{m},{c}] int8 {got} vs fp32 {fp32}"
                    );
                }
            }
        }
    }

    /// Attention, softmax, GELU and the layer norm against scalar fp32.
    #[test]
    fn fp32_kernels_match_scalar_arithmetic() {
        if !supported() {
            eprintln!("this CPU has no AVX-512 VNNI: the int8 encoder is not used here");
            return;
        }
        let mut seed = 11;
        for len in [1, 5, 16, 37] {
            let mut row: Vec<f32> = (0..len).map(|_| 20.0 * noise(&mut seed)).collect();
            let max = row.iter().cloned().fold(f32::MIN, f32::max);
            let total: f32 = row.iter().map(|v| (v - max).exp()).sum();
            let want: Vec<f32> = row.iter().map(|v| (v - max).exp() / total).collect();
            // SAFETY: checked `supported()` above.
            unsafe { softmax(&mut row) };
            for (g, w) in row.iter().zip(&want) {
                assert!((g - w).abs() < 1e-6, "softmax {g} vs {w}");
            }
        }
        let mut x: Vec<f32> = (0..64).map(|i| (i as f32 - 32.0) / 6.0).collect();
        let want: Vec<f32> = x.iter().map(|&v| gelu_scalar(v)).collect();
        // SAFETY: as above.
        unsafe { gelu(&mut x) };
        for (g, w) in x.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "gelu {g} vs {w}");
        }
        // Past one block of 4 × 16 columns (cols 80), past 16 rows, and heads of 64.
        for (len, dh) in [(6usize, 32usize), (37, 32), (70, 64)] {
            let (rows, cols) = (len.div_ceil(AR) * AR, len.div_ceil(LANES) * LANES);
            let q: Vec<f32> = (0..rows * dh).map(|_| noise(&mut seed)).collect();
            let kt: Vec<f32> = (0..dh * cols).map(|_| noise(&mut seed)).collect();
            let mut s = vec![0f32; rows * cols];
            // SAFETY: as above; sizes as the kernel requires.
            unsafe { scores(&q, &kt, &mut s, rows, cols, dh) };
            for r in 0..rows {
                for c in 0..cols {
                    let want: f32 = (0..dh).map(|d| q[r * dh + d] * kt[d * cols + c]).sum();
                    assert!(
                        (s[r * cols + c] - want).abs() < 1e-4,
                        "{len}×{dh} score [{r},{c}]"
                    );
                }
            }
            // V inside rows twice as wide, the output in the second half of its rows: as
            // a head's columns sit in the Q/K/V and context matrices.
            let v: Vec<f32> = (0..len * 2 * dh).map(|_| noise(&mut seed)).collect();
            let mut out = vec![0f32; len * 2 * dh];
            // SAFETY: as above.
            unsafe { weighted_sum(&s, cols, len, &v[dh..], 2 * dh, dh, &mut out[dh..], 2 * dh) };
            for r in 0..len {
                for d in 0..dh {
                    let want: f32 = (0..len)
                        .map(|j| s[r * cols + j] * v[j * 2 * dh + dh + d])
                        .sum();
                    assert!(
                        (out[r * 2 * dh + dh + d] - want).abs() < 1e-3,
                        "{len}×{dh} sum [{r},{d}]"
                    );
                    assert_eq!(out[r * 2 * dh + d], 0.0, "nothing written outside the head");
                }
            }
        }
    }

    /// A config that does not match the weights is refused before any kernel can index
    /// past a tensor, and a model whose activation these kernels do not compute is left to
    /// candle.
    #[test]
    fn models_the_kernels_do_not_fit_are_refused() {
        if !supported() {
            eprintln!("this CPU has no AVX-512 VNNI: the int8 encoder is not used here");
            return;
        }
        let dir = std::path::PathBuf::from(std::env::var("MORNINGAI_EMBED_MODEL_DIR").expect(
            "MORNINGAI_EMBED_MODEL_DIR is not set: run the suite with scripts/test.sh, which fetches the MiniLM weights",
        ));
        let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
        let config = |edit: &dyn Fn(&mut serde_json::Value)| -> Config {
            let mut c: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
            edit(&mut c);
            serde_json::from_value(c).unwrap()
        };
        let fits = Int8Bert::load(&weights, &config(&|_| {})).unwrap();
        assert!(fits.is_some(), "all-MiniLM-L6-v2 runs on int8");
        // 416 = 13 heads of 32: a shape the kernels tile, but not these weights'.
        let wider = config(&|c| {
            c["hidden_size"] = 416.into();
            c["num_attention_heads"] = 13.into();
        });
        let err = Int8Bert::load(&weights, &wider)
            .err()
            .expect("a shape mismatch is an error");
        assert!(err.to_string().contains("the config says"), "{err}");
        let longer = config(&|c| c["max_position_embeddings"] = 1024.into());
        assert!(Int8Bert::load(&weights, &longer).is_err());
        let relu = config(&|c| c["hidden_act"] = "relu".into());
        assert!(
            Int8Bert::load(&weights, &relu).unwrap().is_none(),
            "relu is candle's"
        );
        let odd = config(&|c| c["num_attention_heads"] = 7.into());
        assert!(
            Int8Bert::load(&weights, &odd).unwrap().is_none(),
            "heads must divide the width"
        );
    }

    fn gelu_scalar(x: f32) -> f32 {
        // erf by its series, to double precision for |x| ≤ 6.
        let z = f64::from(x) / std::f64::consts::SQRT_2;
        let (mut term, mut erf, mut n) = (z, z, 0.0);
        while term.abs() > 1e-17 {
            n += 1.0;
            term *= -z * z / n;
            erf += term / (2.0 * n + 1.0);
        }
        let erf = (erf * 2.0 / std::f64::consts::PI.sqrt()).clamp(-1.0, 1.0);
        (0.5 * f64::from(x) * (1.0 + erf)) as f32
    }
}
