//! A synthetic, deterministic knowledge base shaped like a SaaS's: tenants of
//! Zipf-distributed sizes, documents about topics, chunks whose words and
//! 1024-dimensional embeddings both follow the topic, and known-item queries
//! of three kinds. Everything is derived from seeds, so embeddings are
//! recomputed when needed instead of being held in memory.
//!
//! Embeddings: a chunk is `topic + 0.7 doc + 0.35 own` (each a random unit
//! vector, normalised at the end), so chunks cluster by document, documents by
//! topic. Text: English filler and support vocabulary, the topic's words
//! (Zipf within the topic) and two rare terms of the chunk's own (like error
//! codes or product names).

pub const DIM: usize = 1024;

/// splitmix64: small, fast, good enough for synthetic data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// A generator for entity `index` of kind `kind`, independent of the others.
    pub fn of(kind: u64, index: u64) -> Self {
        let mut r = Rng::new(
            kind.wrapping_mul(0x1000_0000_01B3) ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93),
        );
        r.next();
        r
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }
    pub fn gaussian(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    /// An index in 0..n with P(i) proportional to 1 / (i + 1)^s.
    pub fn zipf(&mut self, cumulative: &[f64]) -> usize {
        let x = self.unit() * cumulative[cumulative.len() - 1];
        cumulative
            .partition_point(|&c| c < x)
            .min(cumulative.len() - 1)
    }
}

pub fn zipf_cumulative(n: usize, s: f64) -> Vec<f64> {
    let mut total = 0.0;
    (0..n)
        .map(|i| {
            total += 1.0 / ((i + 1) as f64).powf(s);
            total
        })
        .collect()
}

fn random_unit(rng: &mut Rng) -> Vec<f64> {
    let v: Vec<f64> = (0..DIM).map(|_| rng.gaussian()).collect();
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

/// `sum of weight * part`, normalised, as f32.
pub fn combine(parts: &[(f64, &[f64])]) -> Vec<f32> {
    let mut v = vec![0.0f64; DIM];
    for (weight, part) in parts {
        for (acc, x) in v.iter_mut().zip(part.iter()) {
            *acc += weight * x;
        }
    }
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.into_iter().map(|x| (x / norm) as f32).collect()
}

const KIND_TOPIC: u64 = 1;
const KIND_DOC: u64 = 2;
const KIND_CHUNK: u64 = 3;
const KIND_TEXT: u64 = 4;
const KIND_QUERY: u64 = 5;
const KIND_FRESH: u64 = 6;

pub fn topic_vector(topic: usize) -> Vec<f64> {
    random_unit(&mut Rng::of(KIND_TOPIC, topic as u64))
}
pub fn doc_vector(doc: usize) -> Vec<f64> {
    random_unit(&mut Rng::of(KIND_DOC, doc as u64))
}
pub fn chunk_vector(chunk: usize) -> Vec<f64> {
    random_unit(&mut Rng::of(KIND_CHUNK, chunk as u64))
}

const SYLLABLES: [&str; 48] = [
    "ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "be", "da", "fu", "go", "hi", "ja", "ke", "lu",
    "ma", "no", "pa", "qui", "ri", "so", "tu", "ve", "wa", "xo", "ya", "ze", "bra", "cro", "dri",
    "fle", "gra", "plo", "tri", "sna", "spe", "sto", "klu", "mor", "nal", "pex", "ros", "tal",
    "vin", "dex", "lor", "zan",
];

/// A pseudo-word for `n`: distinct `n` give distinct words.
pub fn word(mut n: usize, min_syllables: usize) -> String {
    let mut w = String::new();
    let mut count = 0;
    while n > 0 || count < min_syllables {
        w.push_str(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
        count += 1;
    }
    w
}

const FILLER: [&str; 24] = [
    "the", "a", "to", "of", "and", "in", "is", "for", "with", "on", "you", "your", "we", "our",
    "can", "this", "that", "it", "when", "if", "be", "are", "from", "by",
];
const GENERAL: [&str; 40] = [
    "customer", "account", "settings", "update", "service", "team", "issue", "support", "page",
    "user", "option", "feature", "request", "report", "change", "access", "data", "process",
    "time", "order", "email", "plan", "system", "error", "guide", "setup", "policy", "payment",
    "device", "message", "version", "login", "profile", "status", "review", "window", "limit",
    "store", "button", "share",
];

pub const TOPIC_WORDS: usize = 60;

pub fn topic_word(topic: usize, i: usize) -> String {
    word(SYLLABLES.len().pow(2) + topic * TOPIC_WORDS + i, 3)
}

/// Two rare terms of a chunk: nearly unique in the corpus.
pub fn rare_terms(chunk: usize) -> [String; 2] {
    let base = SYLLABLES.len().pow(3);
    [word(base + 2 * chunk, 4), word(base + 2 * chunk + 1, 4)]
}

pub struct Tenant {
    pub chunks: usize,
    pub topics: Vec<usize>,
}

pub struct Doc {
    pub tenant: usize,
    pub topic: usize,
    pub first_chunk: usize,
    pub chunks: usize,
}

pub struct Corpus {
    pub tenants: Vec<Tenant>,
    pub docs: Vec<Doc>,
    /// The document of each chunk.
    pub chunk_doc: Vec<usize>,
    topic_words_cdf: Vec<f64>,
}

impl Corpus {
    /// `total_chunks` over `tenant_count` tenants whose sizes follow a Zipf law
    /// with the exponent that gives the largest about `top_share` of the rows.
    pub fn generate(total_chunks: usize, tenant_count: usize, top_share: f64) -> Corpus {
        let mut s_low: f64 = 0.5;
        let mut s_high: f64 = 3.0;
        for _ in 0..60 {
            let s = (s_low + s_high) / 2.0;
            let c = zipf_cumulative(tenant_count, s);
            if 1.0 / c[tenant_count - 1] > top_share {
                s_high = s;
            } else {
                s_low = s;
            }
        }
        let cdf = zipf_cumulative(tenant_count, s_low);
        let total_weight = cdf[tenant_count - 1];
        let topic_count = 200; // topics in the whole corpus
        let topic_cdf = zipf_cumulative(topic_count, 0.8);
        let mut rng = Rng::new(42);
        let tenants: Vec<Tenant> = (0..tenant_count)
            .map(|r| {
                let weight = 1.0 / ((r + 1) as f64).powf(s_low);
                let chunks = ((total_chunks as f64) * weight / total_weight)
                    .round()
                    .max(1.0) as usize;
                let wanted = (2.0 + (chunks as f64 / 50.0).max(1.0).log2()).min(12.0) as usize;
                let mut topics = Vec::new();
                while topics.len() < wanted {
                    let t = rng.zipf(&topic_cdf);
                    if !topics.contains(&t) {
                        topics.push(t);
                    }
                }
                Tenant { chunks, topics }
            })
            .collect();
        let mut docs = Vec::new();
        let mut chunk_doc = Vec::new();
        for (t, tenant) in tenants.iter().enumerate() {
            let mut left = tenant.chunks;
            while left > 0 {
                let n = (4 + rng.below(9)).min(left);
                let topic = tenant.topics[rng.below(tenant.topics.len())];
                docs.push(Doc {
                    tenant: t,
                    topic,
                    first_chunk: chunk_doc.len(),
                    chunks: n,
                });
                chunk_doc.extend(std::iter::repeat_n(docs.len() - 1, n));
                left -= n;
            }
        }
        Corpus {
            tenants,
            docs,
            chunk_doc,
            topic_words_cdf: zipf_cumulative(TOPIC_WORDS, 1.0),
        }
    }

    pub fn chunk_embedding(&self, chunk: usize) -> Vec<f32> {
        let doc = self.chunk_doc[chunk];
        combine(&[
            (1.0, &topic_vector(self.docs[doc].topic)),
            (0.7, &doc_vector(doc)),
            (0.35, &chunk_vector(chunk)),
        ])
    }

    /// The document's own embedding: its topic and its direction.
    pub fn doc_embedding(&self, doc: usize) -> Vec<f32> {
        combine(&[
            (1.0, &topic_vector(self.docs[doc].topic)),
            (0.7, &doc_vector(doc)),
        ])
    }

    fn topic_words(&self, rng: &mut Rng, topic: usize, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| topic_word(topic, rng.zipf(&self.topic_words_cdf)))
            .collect()
    }

    /// About 70 words in sentences: filler, support vocabulary, the topic's
    /// words and, somewhere, the chunk's two rare terms.
    pub fn chunk_text(&self, chunk: usize) -> String {
        let mut rng = Rng::of(KIND_TEXT, chunk as u64);
        let topic = self.docs[self.chunk_doc[chunk]].topic;
        let rare = rare_terms(chunk);
        let sentences = 5 + rng.below(3);
        let rare_at = [rng.below(sentences), rng.below(sentences)];
        let mut text = String::new();
        for s in 0..sentences {
            let mut words: Vec<String> = Vec::new();
            for _ in 0..(8 + rng.below(7)) {
                let roll = rng.unit();
                words.push(if roll < 0.4 {
                    FILLER[rng.below(FILLER.len())].to_owned()
                } else if roll < 0.65 {
                    GENERAL[rng.below(GENERAL.len())].to_owned()
                } else {
                    self.topic_words(&mut rng, topic, 1).remove(0)
                });
            }
            for (i, at) in rare_at.iter().enumerate() {
                if *at == s {
                    let place = rng.below(words.len());
                    words.insert(place, rare[i].clone());
                }
            }
            let mut sentence = words.join(" ");
            sentence[..1].make_ascii_uppercase();
            text.push_str(&sentence);
            text.push_str(". ");
        }
        text.trim_end().to_owned()
    }

    pub fn doc_title(&self, doc: usize) -> String {
        let mut rng = Rng::of(KIND_TEXT, (1 << 40) + doc as u64);
        let topic = self.docs[doc].topic;
        let mut words = self.topic_words(&mut rng, topic, 3);
        words.push(GENERAL[rng.below(GENERAL.len())].to_owned());
        words.join(" ")
    }

    pub fn category(&self, doc: usize) -> String {
        format!("topic-{}", self.docs[doc].topic)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryKind {
    /// A rare term of the target and a couple of common words; the embedding
    /// only knows the topic.
    RareTerm,
    /// Near the target in vector space; words of the topic, few of the target.
    Paraphrase,
    /// Some of the target's own words and an embedding near its document.
    Mixed,
}

impl QueryKind {
    pub fn name(self) -> &'static str {
        match self {
            QueryKind::RareTerm => "rare-term",
            QueryKind::Paraphrase => "paraphrase",
            QueryKind::Mixed => "mixed",
        }
    }
}

pub struct Query {
    pub kind: QueryKind,
    pub tenant: usize,
    pub target_chunk: usize,
    pub target_doc: usize,
    pub text: String,
    pub embedding: Vec<f32>,
}

impl Corpus {
    /// A known-item query for `target_chunk`.
    pub fn query(&self, index: usize, kind: QueryKind, target_chunk: usize) -> Query {
        let mut rng = Rng::of(KIND_QUERY, index as u64);
        let doc = self.chunk_doc[target_chunk];
        let topic = self.docs[doc].topic;
        let fresh = random_unit(&mut Rng::of(KIND_FRESH, index as u64));
        let d = &self.docs[doc];
        // Another chunk of the same document: what makes chunks hard to tell apart.
        let sibling = d.first_chunk
            + (target_chunk - d.first_chunk + 1 + rng.below(d.chunks.max(2) - 1)) % d.chunks;
        let target_text = self.chunk_text(target_chunk).to_lowercase();
        let target_words: Vec<&str> = target_text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let (text, embedding) = match kind {
            QueryKind::RareTerm => {
                let rare = &rare_terms(target_chunk)[rng.below(2)];
                let text = format!(
                    "{} {} {}",
                    GENERAL[rng.below(GENERAL.len())],
                    rare,
                    GENERAL[rng.below(GENERAL.len())]
                );
                (text, combine(&[(1.0, &topic_vector(topic)), (0.6, &fresh)]))
            }
            QueryKind::Paraphrase => {
                let mut words: Vec<String> = self
                    .topic_words(&mut rng, topic, 8)
                    .into_iter()
                    .filter(|w| !target_words.contains(&w.as_str()))
                    .take(3)
                    .collect();
                words.insert(0, format!("how {} I", FILLER[rng.below(FILLER.len())]));
                words.push(GENERAL[rng.below(GENERAL.len())].to_owned());
                let embedding = combine(&[
                    (1.0, &topic_vector(topic)),
                    (0.7, &doc_vector(doc)),
                    (0.25, &chunk_vector(target_chunk)),
                    (0.15, &chunk_vector(sibling)),
                    (0.3, &fresh),
                ]);
                (words.join(" "), embedding)
            }
            QueryKind::Mixed => {
                let topical: Vec<&str> = target_words
                    .iter()
                    .copied()
                    .filter(|w| {
                        !FILLER.contains(w) && !rare_terms(target_chunk).iter().any(|r| r == w)
                    })
                    .collect();
                let mut words: Vec<String> = (0..3)
                    .map(|_| topical[rng.below(topical.len())].to_owned())
                    .collect();
                words.dedup();
                let embedding = combine(&[
                    (1.0, &topic_vector(topic)),
                    (0.7, &doc_vector(doc)),
                    (0.12, &chunk_vector(target_chunk)),
                    (0.2, &chunk_vector(sibling)),
                    (0.4, &fresh),
                ]);
                (words.join(" "), embedding)
            }
        };
        Query {
            kind,
            tenant: d.tenant,
            target_chunk,
            target_doc: doc,
            text,
            embedding,
        }
    }
}

impl crate::load::KnowledgeBase for Corpus {
    fn tenant_names(&self) -> Vec<String> {
        (1..=self.tenants.len())
            .map(|n| format!("Tenant {n}"))
            .collect()
    }
    fn document_count(&self) -> usize {
        self.docs.len()
    }
    fn document(&self, d: usize) -> crate::load::DocumentRow {
        let doc = &self.docs[d];
        let content: Vec<String> = (doc.first_chunk..doc.first_chunk + doc.chunks)
            .map(|c| self.chunk_text(c))
            .collect();
        crate::load::DocumentRow {
            tenant: doc.tenant,
            title: self.doc_title(d),
            content: content.join("\n\n"),
            category: self.category(d),
            embedding: self.doc_embedding(d),
        }
    }
    fn chunk_count(&self) -> usize {
        self.chunk_doc.len()
    }
    fn chunk(&self, c: usize) -> crate::load::ChunkRow {
        let d = self.chunk_doc[c];
        crate::load::ChunkRow {
            document: d,
            position: c - self.docs[d].first_chunk,
            content: self.chunk_text(c),
            embedding: self.chunk_embedding(c),
        }
    }
}
