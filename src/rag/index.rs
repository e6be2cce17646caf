//! The embedded vector index: one file per collection, exact cosine top-k in memory.
//!
//! **File format** (`<persist dir>/<collection>.jsonl`, UTF-8 JSON lines): the first line is a
//! header `{"format": "llm-router-rag", "version": 1, "collection", "embedder", "dims"}`, then one
//! line per chunk `{"doc", "chunk", "text", "metadata", "vector"}` (`chunk` is the chunk's index
//! within its document, `vector` its embedding as numbers). A change rewrites the whole file to
//! `<name>.jsonl.tmp` and renames it over the old one, so a crash leaves the old or the new
//! collection, never a torn one. Every file is read at start-up; a malformed one is a start-up
//! error naming the file and line.
//!
//! Why exact search over a flat file and not an ANN crate: see ARCHITECTURE.md (RAG).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

const FORMAT: &str = "llm-router-rag";
const VERSION: u32 = 1;

/// One stored chunk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Chunk {
    pub doc: String,
    pub chunk: usize,
    pub text: String,
    #[serde(default)]
    pub metadata: Value,
    pub vector: Vec<f32>,
    /// `1 / |vector|` (0 for a zero vector), kept so a query costs one dot product per chunk.
    #[serde(skip)]
    inv_norm: f32,
}

impl Chunk {
    pub fn new(doc: &str, chunk: usize, text: String, metadata: Value, vector: Vec<f32>) -> Chunk {
        let mut c = Chunk {
            doc: doc.to_string(),
            chunk,
            text,
            metadata,
            vector,
            inv_norm: 0.0,
        };
        c.inv_norm = inv_norm(&c.vector);
        c
    }
}

/// The dot product in eight independent lanes, so the compiler can use SIMD (a single running
/// sum is a dependency chain it must keep in order).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

fn inv_norm(v: &[f32]) -> f32 {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        1.0 / n
    } else {
        0.0
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    collection: String,
    embedder: String,
    dims: usize,
}

/// A collection: its chunks in ingest order (a document's chunks together).
#[derive(Clone, Debug, Default)]
pub struct Collection {
    pub embedder: String,
    pub dims: usize,
    pub chunks: Vec<Chunk>,
}

impl Collection {
    /// Distinct document ids.
    pub fn documents(&self) -> usize {
        let mut ids: Vec<&str> = self.chunks.iter().map(|c| c.doc.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// The `k` chunks most similar to `query` by cosine, best first (ties: ingest order).
    /// Chunks with a zero vector never match.
    pub fn top_k(&self, query: &[f32], k: usize) -> Vec<(f32, &Chunk)> {
        let qn = inv_norm(query);
        let mut scored: Vec<(f32, usize)> = self
            .chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.inv_norm > 0.0 && c.vector.len() == query.len())
            .map(|(i, c)| (dot(&c.vector, query) * c.inv_norm * qn, i))
            .collect();
        let best_first =
            |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if k < scored.len() {
            // Only the best k need sorting.
            scored.select_nth_unstable_by(k, best_first);
            scored.truncate(k);
        }
        scored.sort_by(best_first);
        scored
            .into_iter()
            .map(|(s, i)| (s, &self.chunks[i]))
            .collect()
    }

    /// This collection with `docs`' chunks replacing any earlier chunks of the same documents.
    pub fn upsert(&self, embedder: &str, dims: usize, docs: Vec<Chunk>) -> Collection {
        let ids: std::collections::HashSet<&str> = docs.iter().map(|c| c.doc.as_str()).collect();
        let mut chunks: Vec<Chunk> = self
            .chunks
            .iter()
            .filter(|c| !ids.contains(c.doc.as_str()))
            .cloned()
            .collect();
        chunks.extend(docs);
        Collection {
            embedder: embedder.to_string(),
            dims,
            chunks,
        }
    }
}

/// Every collection of the persist directory, in memory; changes are written through.
pub struct Index {
    dir: PathBuf,
    collections: Mutex<HashMap<String, Arc<Collection>>>,
    /// Held across a change's read-modify-write-file, so concurrent ingests never lose one.
    writing: tokio::sync::Mutex<()>,
}

/// A valid collection name: 1–64 of `A-Z a-z 0-9 _ - .`, not starting with `.` (it is a file
/// name in the persist directory).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl Index {
    /// Opens (creating it if needed) the persist directory and reads every collection in it.
    pub fn open(dir: &Path) -> Result<Index, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create the RAG directory: {e}", dir.display()))?;
        let mut collections = HashMap::new();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: cannot read the RAG directory: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".jsonl"))
            else {
                continue;
            };
            if !valid_name(name) {
                continue;
            }
            let c = read_file(&path)?;
            collections.insert(name.to_string(), Arc::new(c));
        }
        Ok(Index {
            dir: dir.to_path_buf(),
            collections: Mutex::new(collections),
            writing: tokio::sync::Mutex::new(()),
        })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Collection>> {
        self.lock().get(name).cloned()
    }

    /// Collection names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.lock().keys().cloned().collect();
        n.sort();
        n
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Collection>>> {
        self.collections.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `chunks` to collection `name` (documents already there are replaced), persisting
    /// first: the in-memory collection changes only once the file is written. A vector width
    /// other than the collection's is refused (its embedder changed: re-ingest into a new one).
    pub async fn upsert(
        &self,
        name: &str,
        embedder: &str,
        dims: usize,
        chunks: Vec<Chunk>,
    ) -> Result<Arc<Collection>, String> {
        let _w = self.writing.lock().await;
        let old = self.get(name).unwrap_or_default();
        if !old.chunks.is_empty() && old.dims != dims {
            return Err(format!(
                "the embedding model gave {dims} dimensions; collection \"{name}\" holds {} \
                 (embedded by \"{}\"): delete it and ingest again",
                old.dims, old.embedder
            ));
        }
        let new = Arc::new(old.upsert(embedder, dims, chunks));
        let (path, c) = (self.path(name), new.clone());
        let collection = name.to_string();
        actix_web::web::block(move || write_file(&path, &collection, &c))
            .await
            .map_err(|e| format!("writing the collection: {e}"))??;
        self.lock().insert(name.to_string(), new.clone());
        Ok(new)
    }

    /// Removes collection `name` (its file too); `None` when there was none.
    pub async fn delete(&self, name: &str) -> Result<Option<Arc<Collection>>, String> {
        let _w = self.writing.lock().await;
        let Some(old) = self.get(name) else {
            return Ok(None);
        };
        let path = self.path(name);
        std::fs::remove_file(&path)
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| format!("{}: cannot delete: {e}", path.display()))?;
        self.lock().remove(name);
        Ok(Some(old))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.jsonl"))
    }
}

fn write_file(path: &Path, name: &str, c: &Collection) -> Result<(), String> {
    use std::io::Write as _;
    let tmp = path.with_extension("jsonl.tmp");
    let fail = |e: std::io::Error| format!("{}: {e}", tmp.display());
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(fail)?);
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        collection: name.into(),
        embedder: c.embedder.clone(),
        dims: c.dims,
    };
    let json = |e: serde_json::Error| e.to_string();
    writeln!(w, "{}", serde_json::to_string(&header).map_err(json)?).map_err(fail)?;
    for chunk in &c.chunks {
        writeln!(w, "{}", serde_json::to_string(chunk).map_err(json)?).map_err(fail)?;
    }
    let f = w.into_inner().map_err(|e| fail(e.into_error()))?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_file(path: &Path) -> Result<Collection, String> {
    let file = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: cannot read: {e}"))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines
        .next()
        .ok_or_else(|| format!("{file}: empty (expected a header line)"))?;
    let h: Header =
        serde_json::from_str(first).map_err(|e| format!("{file}: line 1: bad header: {e}"))?;
    if h.format != FORMAT || h.version != VERSION {
        return Err(format!(
            "{file}: line 1: not an {FORMAT} version {VERSION} file"
        ));
    }
    let mut chunks = Vec::new();
    for (i, l) in lines {
        let c: Chunk =
            serde_json::from_str(l).map_err(|e| format!("{file}: line {}: {e}", i + 1))?;
        if c.vector.len() != h.dims {
            return Err(format!(
                "{file}: line {}: vector has {} dimensions, the header says {}",
                i + 1,
                c.vector.len(),
                h.dims
            ));
        }
        chunks.push(Chunk::new(&c.doc, c.chunk, c.text, c.metadata, c.vector));
    }
    Ok(Collection {
        embedder: h.embedder,
        dims: h.dims,
        chunks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(doc: &str, i: usize, v: &[f32]) -> Chunk {
        Chunk::new(doc, i, format!("{doc}#{i}"), Value::Null, v.to_vec())
    }

    #[test]
    fn top_k_ranks_by_cosine_and_skips_zero_vectors() {
        let c = Collection::default().upsert(
            "e",
            2,
            vec![
                chunk("a", 0, &[1.0, 0.0]),
                chunk("b", 0, &[0.0, 1.0]),
                chunk("c", 0, &[3.0, 3.0]),
                chunk("z", 0, &[0.0, 0.0]),
            ],
        );
        let top: Vec<&str> = c
            .top_k(&[1.0, 0.1], 10)
            .iter()
            .map(|(_, c)| c.doc.as_str())
            .collect();
        assert_eq!(top, ["a", "c", "b"]);
        assert_eq!(c.top_k(&[1.0, 0.1], 1).len(), 1);
        assert!(
            (c.top_k(&[2.0, 0.0], 1)[0].0 - 1.0).abs() < 1e-6,
            "scale-free"
        );
    }

    #[test]
    fn upsert_replaces_a_documents_chunks() {
        let c = Collection::default().upsert(
            "e",
            1,
            vec![chunk("a", 0, &[1.0]), chunk("a", 1, &[1.0])],
        );
        let c = c.upsert("e", 1, vec![chunk("b", 0, &[1.0])]);
        let c = c.upsert("e", 1, vec![chunk("a", 0, &[2.0])]);
        assert_eq!(c.chunks.len(), 2);
        assert_eq!(c.documents(), 2);
    }

    #[actix_rt::test]
    async fn collections_survive_reopening_and_deletion_removes_the_file() {
        let dir = std::env::temp_dir().join(format!("rag-index-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ix = Index::open(&dir).unwrap();
        ix.upsert("docs", "emb", 2, vec![chunk("a", 0, &[1.0, 2.0])])
            .await
            .unwrap();
        let err = ix
            .upsert("docs", "emb", 3, vec![chunk("b", 0, &[1.0, 2.0, 3.0])])
            .await
            .unwrap_err();
        assert!(err.contains("3 dimensions"), "{err}");
        let again = Index::open(&dir).unwrap();
        let c = again.get("docs").unwrap();
        assert_eq!((c.dims, c.chunks.len(), c.embedder.as_str()), (2, 1, "emb"));
        assert_eq!(c.top_k(&[1.0, 2.0], 1)[0].1.text, "a#0");
        assert!(again.delete("docs").await.unwrap().is_some());
        assert!(Index::open(&dir).unwrap().get("docs").is_none());
        std::fs::write(dir.join("bad.jsonl"), "{\"format\":\"x\"}\n").unwrap();
        let err = Index::open(&dir).err().unwrap();
        assert!(err.contains("bad.jsonl: line 1"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn names_are_checked() {
        for ok in ["docs", "a.b-c_1", "X"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "a b", "../x", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
