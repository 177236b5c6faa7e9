//! The conformance suite of the `Memory` port. The macro's expression yields
//! `(tenant A, tenant B, memory)`: two tenants that exist in the backend.

use morningai_core::memory::{Density, Memory, NewChunk, NewItem, SearchScope, query_terms};
use morningai_core::{CollectionId, Error, TenantCtx};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub type Setup = (TenantCtx, TenantCtx, Arc<dyn Memory>);

#[macro_export]
macro_rules! memory_conformance {
    ($make:expr) => {
        $crate::memory_conformance!($make;
            collections_and_items_round_trip,
            re_putting_a_source_replaces_its_chunks,
            tenants_never_see_each_other_in_any_mode,
            a_tenant_with_one_percent_of_the_vectors_gets_k_results,
            search_ranks_and_filters,
            embeddings_are_cached_per_tenant,
            keyword_ranking_is_bm25_over_the_tenants_own_chunks,
            vectors_stored_after_their_chunks_fill_in_density,
        );
    };
    ($make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let setup: $crate::memory::Setup = $make.await;
                $crate::memory::$case(setup).await;
            }
        )*
    };
}

const DIMS: u32 = 384;
const MODEL: &str = "test-model";

/// Deterministic unit vectors (xorshift), so every backend sees the same data.
struct Vectors(u64);

impl Vectors {
    fn next(&mut self) -> Vec<f32> {
        let mut v: Vec<f32> = (0..DIMS)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 % 2001) as f32 / 1000.0 - 1.0
            })
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
        v
    }
}

fn chunk(text: &str, line: u32, embedding: Vec<f32>) -> NewChunk {
    NewChunk {
        text: text.into(),
        start_line: line,
        end_line: line + 9,
        language: Some("rust".into()),
        heading: Some("Intro".into()),
        embedding: Some(embedding),
        embed_key: None,
    }
}

fn item(source: &str, metadata: Value, chunks: Vec<NewChunk>) -> NewItem {
    NewItem {
        source: source.into(),
        content_hash: format!("hash-{source}-{}", chunks.len()),
        metadata,
        chunks,
    }
}

fn scope(collection: Option<CollectionId>, k: usize) -> SearchScope {
    SearchScope {
        collection,
        filter: Map::new(),
        k,
    }
}

async fn collection(m: &Arc<dyn Memory>, cx: TenantCtx, name: &str) -> CollectionId {
    m.create_collection(cx, name, Some("docs"), MODEL, DIMS)
        .await
        .unwrap()
        .id
}

pub async fn collections_and_items_round_trip((a, b, m): Setup) {
    let c = collection(&m, a, "main").await;
    assert!(matches!(
        m.create_collection(a, "main", None, MODEL, DIMS).await,
        Err(Error::Conflict {
            code: "collection_exists",
            ..
        })
    ));
    // The same name in another tenant is another collection.
    collection(&m, b, "main").await;
    let got = m.get_collection(a, c).await.unwrap();
    assert_eq!(
        (got.name.as_str(), got.dims, got.embed_model.as_str()),
        ("main", DIMS, MODEL)
    );
    assert_eq!(m.list_collections(a).await.unwrap().len(), 1);
    assert!(matches!(
        m.get_collection(b, c).await,
        Err(Error::NotFound(_))
    ));

    let mut vs = Vectors(7);
    let it = m
        .put_item(
            a,
            c,
            item(
                "src/lib.rs",
                json!({"lang": "rust"}),
                vec![chunk("fn main() {}", 1, vs.next())],
            ),
        )
        .await
        .unwrap();
    assert_eq!((it.chunks, it.source.as_str()), (1, "src/lib.rs"));
    m.put_item(
        a,
        c,
        item("README.md", json!({}), vec![chunk("# Hello", 1, vs.next())]),
    )
    .await
    .unwrap();
    let hashes = m.source_hashes(a, c).await.unwrap();
    assert_eq!(hashes.len(), 2);
    assert_eq!(hashes["src/lib.rs"], "hash-src/lib.rs-1");
    // Wrong dimensions are refused, nothing stored.
    assert!(matches!(
        m.put_item(
            a,
            c,
            item("bad", json!({}), vec![chunk("x", 1, vec![0.5; 3])])
        )
        .await,
        Err(Error::Invalid { .. })
    ));
    // Another tenant can neither write to, list, nor delete from this collection.
    assert!(matches!(
        m.put_item(b, c, item("x", json!({}), vec![])).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(m.list_items(b, c).await, Err(Error::NotFound(_))));
    assert!(matches!(
        m.delete_item(b, c, it.id).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        m.delete_sources(b, c, &["README.md".into()]).await.unwrap(),
        0
    );

    m.delete_item(a, c, it.id).await.unwrap();
    assert!(matches!(
        m.delete_item(a, c, it.id).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        m.delete_sources(a, c, &["README.md".into(), "gone".into()])
            .await
            .unwrap(),
        1
    );
    assert!(m.list_items(a, c).await.unwrap().is_empty());
    let q = vs.next();
    assert!(
        m.dense_search(a, &scope(Some(c), 5), MODEL, &q)
            .await
            .unwrap()
            .is_empty(),
        "deleted chunks are gone from the vector side"
    );
    assert!(
        m.lexical_search(a, &scope(Some(c), 5), &query_terms("hello main"))
            .await
            .unwrap()
            .is_empty(),
        "and from the lexical side"
    );
    m.delete_collection(a, c).await.unwrap();
    assert!(matches!(
        m.get_collection(a, c).await,
        Err(Error::NotFound(_))
    ));
}

pub async fn re_putting_a_source_replaces_its_chunks((a, _b, m): Setup) {
    let c = collection(&m, a, "replace").await;
    let mut vs = Vectors(11);
    let first = m
        .put_item(
            a,
            c,
            item(
                "doc.md",
                json!({"v": 1}),
                vec![
                    chunk("alpha one", 1, vs.next()),
                    chunk("alpha two", 11, vs.next()),
                ],
            ),
        )
        .await
        .unwrap();
    let second = m
        .put_item(
            a,
            c,
            item(
                "doc.md",
                json!({"v": 2}),
                vec![chunk("omega", 1, vs.next())],
            ),
        )
        .await
        .unwrap();
    assert_eq!(first.id, second.id, "same source, same item");
    let items = m.list_items(a, c).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!((items[0].chunks, &items[0].metadata), (1, &json!({"v": 2})));
    assert!(
        m.lexical_search(a, &scope(Some(c), 5), &query_terms("alpha"))
            .await
            .unwrap()
            .is_empty(),
        "old chunks left the index"
    );
    assert_eq!(
        m.lexical_search(a, &scope(Some(c), 5), &query_terms("omega"))
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn tenants_never_see_each_other_in_any_mode((a, b, m): Setup) {
    let (ca, cb) = (
        collection(&m, a, "iso").await,
        collection(&m, b, "iso").await,
    );
    let shared = Vectors(3).next();
    for (cx, c) in [(a, ca), (b, cb)] {
        m.put_item(
            cx,
            c,
            item(
                "same.md",
                json!({}),
                vec![chunk("the same secret words", 1, shared.clone())],
            ),
        )
        .await
        .unwrap();
    }
    for (cx, own, other) in [(a, ca, cb), (b, cb, ca)] {
        let dense = m
            .dense_search(cx, &scope(None, 10), MODEL, &shared)
            .await
            .unwrap();
        let lexical = m
            .lexical_search(cx, &scope(None, 10), &query_terms("secret words"))
            .await
            .unwrap();
        for hits in [&dense, &lexical] {
            assert_eq!(hits.len(), 1);
            assert_eq!(hits[0].collection_id, own);
        }
        // Naming the other tenant's collection yields nothing, in both modes.
        assert!(
            m.dense_search(cx, &scope(Some(other), 10), MODEL, &shared)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            m.lexical_search(cx, &scope(Some(other), 10), &query_terms("secret"))
                .await
                .unwrap()
                .is_empty()
        );
    }
}

pub async fn a_tenant_with_one_percent_of_the_vectors_gets_k_results((a, b, m): Setup) {
    let (big, small) = (
        collection(&m, a, "big").await,
        collection(&m, b, "small").await,
    );
    let mut vs = Vectors(42);
    // 2,970 vectors for tenant A, 30 (1%) for tenant B; the same words everywhere.
    for f in 0..99 {
        let chunks = (0..30)
            .map(|i| chunk("shared vocabulary token", i * 10, vs.next()))
            .collect();
        m.put_item(a, big, item(&format!("big/{f}.rs"), json!({}), chunks))
            .await
            .unwrap();
    }
    let mut mine = Vec::new();
    for f in 0..3 {
        let chunks: Vec<NewChunk> = (0..10)
            .map(|i| chunk("shared vocabulary token", i * 10, vs.next()))
            .collect();
        mine.extend(chunks.iter().map(|c| c.embedding.clone().unwrap()));
        let lang = if f == 0 { "go" } else { "rust" };
        m.put_item(
            b,
            small,
            item(&format!("small/{f}.rs"), json!({"lang": lang}), chunks),
        )
        .await
        .unwrap();
    }
    let q = &mine[17];
    let dense = m.dense_search(b, &scope(None, 10), MODEL, q).await.unwrap();
    assert_eq!(dense.len(), 10, "k results for the small tenant");
    assert!(dense.iter().all(|h| h.collection_id == small));
    assert!(
        dense[0].score > 0.999,
        "its own vector comes first: {}",
        dense[0].score
    );
    // The exact top 10 of the tenant's 30 vectors.
    let mut exact: Vec<f32> = mine
        .iter()
        .map(|v| morningai_core::ai::cosine(v, q))
        .collect();
    exact.sort_by(|x, y| y.total_cmp(x));
    for (h, e) in dense.iter().zip(&exact) {
        assert!(
            (h.score - e).abs() < 1e-3,
            "recall: got {} expected {}",
            h.score,
            e
        );
    }
    let lexical = m
        .lexical_search(b, &scope(None, 10), &query_terms("vocabulary"))
        .await
        .unwrap();
    assert_eq!(lexical.len(), 10);
    assert!(lexical.iter().all(|h| h.collection_id == small));
    // A metadata filter applies before the limit too: 20 chunks are "rust".
    let mut filtered = scope(None, 15);
    filtered.filter.insert("lang".into(), json!("rust"));
    let dense = m.dense_search(b, &filtered, MODEL, q).await.unwrap();
    assert_eq!(dense.len(), 15);
    assert!(dense.iter().all(|h| h.metadata["lang"] == "rust"));
    let lexical = m
        .lexical_search(b, &filtered, &query_terms("token"))
        .await
        .unwrap();
    assert_eq!(lexical.len(), 15);
    assert!(lexical.iter().all(|h| h.metadata["lang"] == "rust"));
}

pub async fn search_ranks_and_filters((a, _b, m): Setup) {
    let (c1, c2) = (
        collection(&m, a, "one").await,
        collection(&m, a, "two").await,
    );
    let mut vs = Vectors(99);
    let target = vs.next();
    m.put_item(
        a,
        c1,
        item(
            "guide.md",
            json!({"kind": "guide", "tier": 2}),
            vec![
                chunk(
                    "Reciprocal rank fusion merges the dense and lexical lists.",
                    1,
                    target.clone(),
                ),
                chunk(
                    "Unrelated text about gardening and tomatoes.",
                    20,
                    vs.next(),
                ),
            ],
        ),
    )
    .await
    .unwrap();
    m.put_item(
        a,
        c2,
        item(
            "other.md",
            json!({"kind": "faq"}),
            vec![chunk("Fusion cuisine recipes.", 1, vs.next())],
        ),
    )
    .await
    .unwrap();
    let lexical = m
        .lexical_search(a, &scope(None, 5), &query_terms("reciprocal rank fusion?"))
        .await
        .unwrap();
    assert_eq!(lexical.len(), 2);
    assert_eq!(
        lexical[0].source, "guide.md",
        "more matching terms rank first"
    );
    assert!(lexical[0].score > lexical[1].score);
    let h = &lexical[0];
    assert_eq!(
        (
            h.start_line,
            h.end_line,
            h.heading.as_deref(),
            h.language.as_deref()
        ),
        (1, 10, Some("Intro"), Some("rust"))
    );
    assert_eq!(
        m.lexical_search(a, &scope(Some(c2), 5), &query_terms("fusion"))
            .await
            .unwrap()
            .len(),
        1
    );
    let dense = m
        .dense_search(a, &scope(Some(c1), 1), MODEL, &target)
        .await
        .unwrap();
    assert_eq!(
        dense[0].text,
        "Reciprocal rank fusion merges the dense and lexical lists."
    );
    // Vectors of another model are not compared.
    assert!(
        m.dense_search(a, &scope(None, 5), "other-model", &target)
            .await
            .unwrap()
            .is_empty()
    );
    // Filters: numbers and strings match exactly; bad filters are refused clearly.
    let mut f = scope(None, 5);
    f.filter.insert("tier".into(), json!(2));
    assert_eq!(
        m.lexical_search(a, &f, &query_terms("fusion"))
            .await
            .unwrap()
            .len(),
        1
    );
    f.filter.insert("kind".into(), json!("faq"));
    assert!(
        m.lexical_search(a, &f, &query_terms("fusion"))
            .await
            .unwrap()
            .is_empty()
    );
    let mut bad = scope(None, 5);
    bad.filter.insert("kind".into(), json!({"$ne": 1}));
    assert!(matches!(
        m.dense_search(a, &bad, MODEL, &target).await,
        Err(Error::Invalid { .. })
    ));
    // No usable terms: no hits, no error.
    assert!(
        m.lexical_search(a, &scope(None, 5), &query_terms("?!"))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn embeddings_are_cached_per_tenant((a, b, m): Setup) {
    let c = collection(&m, a, "cache").await;
    let mut vs = Vectors(5);
    let (v1, v2) = (vs.next(), vs.next());
    let mut first = chunk("one", 1, v1.clone());
    first.embed_key = Some("k1".into());
    let mut second = chunk("two", 11, v2);
    second.embed_key = Some("k2".into());
    m.put_item(a, c, item("doc.md", json!({}), vec![first, second]))
        .await
        .unwrap();
    let got = m
        .cached_embeddings(a, &["k1".into(), "k3".into()])
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "only stored keys are found");
    assert!(
        got["k1"].iter().zip(&v1).all(|(x, y)| (x - y).abs() < 1e-6),
        "the stored vector comes back"
    );
    assert!(
        m.cached_embeddings(b, &["k1".into()])
            .await
            .unwrap()
            .is_empty(),
        "another tenant's vectors are not its cache"
    );
}

/// A chunk for keyword tests: `text` in `source` under `heading`, without a vector.
fn words(source: &str, heading: &str, text: &str) -> NewItem {
    let mut c = chunk(text, 1, Vec::new());
    c.heading = Some(heading.into());
    c.embedding = None;
    item(source, json!({}), vec![c])
}

pub async fn keyword_ranking_is_bm25_over_the_tenants_own_chunks((a, b, m): Setup) {
    let c = collection(&m, a, "code").await;
    for (source, heading, text) in [
        (
            "src/queue.rs",
            "impl Queue > function lease",
            "Leases the next job of the queue for a worker.",
        ),
        (
            "src/worker.rs",
            "function run",
            "The worker loop takes a job from the queue, runs it and acknowledges the job.",
        ),
        ("src/registry.rs", "struct Registry", "Holds what is known."),
        (
            "src/kinds.rs",
            "function kinds",
            "Every kind a registry holds is listed here, from the registry.",
        ),
        (
            "src/http.rs",
            "function parse_header",
            "Reads one line of the request.",
        ),
        (
            "src/json.rs",
            "struct Serializers",
            "Turns values into bytes.",
        ),
        (
            "src/notes.md",
            "Notes",
            "The queue, the queue, the queue: a long note about nothing in particular that mentions the queue and the job and the worker many times over, worker after worker.",
        ),
    ] {
        m.put_item(a, c, words(source, heading, text))
            .await
            .unwrap();
    }
    let search = |q: &'static str| {
        let m = m.clone();
        async move {
            m.lexical_search(a, &scope(Some(c), 10), &query_terms(q))
                .await
                .unwrap()
        }
    };
    let first = |hits: &[morningai_core::memory::ChunkHit]| hits.first().map(|h| h.source.clone());
    // A rare term outweighs a common one; a short chunk beats a long one that repeats.
    let hits = search("lease a job from the queue").await;
    assert_eq!(first(&hits).as_deref(), Some("src/queue.rs"), "{hits:?}");
    assert!(
        hits.windows(2).all(|w| w[0].score >= w[1].score),
        "best first"
    );
    // The item path and the file path count more than the body.
    let hits = search("where is the registry").await;
    assert_eq!(first(&hits).as_deref(), Some("src/registry.rs"), "{hits:?}");
    // Identifiers are split into words and also kept whole; words are stemmed.
    for q in ["parse the header", "parseHeader", "parse_header"] {
        assert_eq!(
            first(&search(q).await).as_deref(),
            Some("src/http.rs"),
            "{q}"
        );
    }
    assert_eq!(
        first(&search("how are values serialized").await).as_deref(),
        Some("src/json.rs")
    );
    assert!(search("absent zebras").await.is_empty());

    // Statistics are the tenant's own: another tenant making "lease" common (and adding
    // chunks) changes neither the order nor a single score of tenant A's results.
    let before = search("lease a job from the queue").await;
    let other = collection(&m, b, "noise").await;
    for i in 0..40 {
        m.put_item(
            b,
            other,
            words(
                &format!("lease/{i}.md"),
                "lease lease",
                "lease lease lease the lease",
            ),
        )
        .await
        .unwrap();
    }
    let after = search("lease a job from the queue").await;
    let scored = |hits: &[morningai_core::memory::ChunkHit]| {
        hits.iter()
            .map(|h| (h.chunk_id, h.score))
            .collect::<Vec<_>>()
    };
    assert_eq!(scored(&before), scored(&after));
}

/// A chunk with an embed key and no vector yet: what indexing stores before the
/// background pass.
fn pending(text: &str, line: u32, key: &str) -> NewChunk {
    let mut c = chunk(text, line, Vec::new());
    c.embedding = None;
    c.embed_key = Some(key.into());
    c
}

pub async fn vectors_stored_after_their_chunks_fill_in_density((a, b, m): Setup) {
    let c = collection(&m, a, "later").await;
    let other = collection(&m, a, "other").await;
    let mut vs = Vectors(11);
    let done = vs.next();
    let mut embedded = chunk("already embedded", 1, done.clone());
    embedded.embed_key = Some("k0".into());
    let mut lexical_only = chunk("lexical only", 41, Vec::new());
    lexical_only.embedding = None;
    let chunks = vec![
        embedded,
        pending("first pending", 11, "k1"),
        pending("second pending", 21, "k2"),
        pending("third pending", 31, "k3"),
        lexical_only,
    ];
    m.put_item(a, c, item("doc.md", json!({}), chunks))
        .await
        .unwrap();
    m.put_item(
        a,
        other,
        item("x.md", json!({}), vec![pending("elsewhere", 1, "kx")]),
    )
    .await
    .unwrap();
    let density = |cx, col| {
        let m = m.clone();
        async move { m.density(cx, col).await.unwrap() }
    };
    assert_eq!(
        density(a, Some(c)).await,
        Density {
            embedded: 1,
            total: 4
        },
        "lexical-only chunks count in neither"
    );
    assert_eq!(
        density(a, None).await,
        Density {
            embedded: 1,
            total: 5
        },
        "the tenant's whole memory"
    );
    assert_eq!(
        density(b, None).await,
        Density::default(),
        "another tenant has none"
    );

    // Paged by id, in id order, only the pending chunks of that collection.
    let page = m.pending_embeddings(a, c, 0, 2).await.unwrap();
    let texts: Vec<&str> = page.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(texts, ["first pending", "second pending"]);
    assert_eq!(page[0].embed_key, "k1");
    assert_eq!(page[0].heading.as_deref(), Some("Intro"));
    assert!(page[0].chunk_id < page[1].chunk_id);
    let rest = m
        .pending_embeddings(a, c, page[1].chunk_id, 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].text, "third pending");
    assert!(
        matches!(
            m.pending_embeddings(b, c, 0, 10).await,
            Err(Error::NotFound(_))
        ),
        "another tenant's collection looks missing"
    );

    // Dense search sees only what has a vector.
    let near = |v: Vec<f32>| {
        let m = m.clone();
        async move {
            m.dense_search(a, &scope(Some(c), 10), MODEL, &v)
                .await
                .unwrap()
                .into_iter()
                .map(|h| h.text)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(near(done.clone()).await, ["already embedded"]);

    let (v1, v2) = (vs.next(), vs.next());
    let writes = vec![
        (page[0].chunk_id, page[0].embed_key.clone(), v1.clone()),
        // A key that is not the chunk's (its item was re-put meanwhile): left alone.
        (page[1].chunk_id, "stale".to_owned(), v2.clone()),
    ];
    assert!(
        matches!(
            m.set_embeddings(b, c, &writes).await,
            Err(Error::NotFound(_))
        ),
        "another tenant cannot write into the collection"
    );
    assert!(
        matches!(
            m.set_embeddings(a, c, &[(page[0].chunk_id, "k1".into(), vec![0.5; 3])])
                .await,
            Err(Error::Invalid { .. })
        ),
        "vectors must have the collection's dimensions"
    );
    assert_eq!(m.set_embeddings(a, c, &writes).await.unwrap(), 1);
    // Storing again changes nothing: a vector once stored stays.
    assert_eq!(
        m.set_embeddings(a, c, &[(page[0].chunk_id, "k1".into(), v2.clone())])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        density(a, Some(c)).await,
        Density {
            embedded: 2,
            total: 4
        }
    );
    let pending_now: Vec<String> = m
        .pending_embeddings(a, c, 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.text)
        .collect();
    assert_eq!(pending_now, ["second pending", "third pending"]);
    assert_eq!(
        near(v1.clone()).await.first().map(String::as_str),
        Some("first pending")
    );
    let cached = m.cached_embeddings(a, &["k1".into()]).await.unwrap();
    assert!(
        cached["k1"]
            .iter()
            .zip(&v1)
            .all(|(x, y)| (x - y).abs() < 1e-6),
        "a vector stored later serves the embedding cache"
    );
}
