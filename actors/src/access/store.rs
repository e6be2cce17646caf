//! Where keys live: the keys file (memory store) or Redis; the server's lookups and the CLI's edits.
//!
//! Redis layout (under the shared prefix): `auth:keys` — hash, field `sha256:<hex>` of a key →
//! its entry as JSON (the keys-file shape, with `key_hash`, never a plain key). One `HGET` per
//! request; the CLI reads the whole hash, edits entries like the file's, and writes back only the
//! entries it changed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use serde_json::{Map, Value};

use super::keys::{digest_string, parse_entry, KeyDigest, KeyRecord, KeyTable, KeysFile};

/// Connection settings of the Redis key store.
#[derive(Clone, Debug)]
pub struct RedisKeys {
    pub addr: crate::store::RedisAddr,
    pub prefix: String,
    pub timeout: Duration,
}

impl RedisKeys {
    fn hash_key(&self) -> String {
        format!("{}auth:keys", self.prefix)
    }

    pub async fn connect(&self) -> redis::RedisResult<ConnectionManager> {
        let client = redis::Client::open(self.addr.connection_info()?)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        ConnectionManager::new_with_config(client, config).await
    }
}

/// Reads and validates a keys file.
pub fn load_file(path: &Path) -> Result<KeysFile, Vec<String>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![format!(
            "{file}: cannot read the keys file (LLM_ROUTER_AUTH_MEMORY_SEED_FILE): {e}"
        )]
    })?;
    KeysFile::parse(&file, &text)
}

/// Writes a keys file atomically (temporary file, then rename), readable by its owner only.
pub fn save_file(path: &Path, f: &KeysFile) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut out = opts.open(&tmp)?;
        out.write_all(f.render().as_bytes())?;
        out.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// A key-store failure on the request path (Redis away): the request is refused, never let in.
#[derive(Debug, thiserror::Error)]
#[error("the key store is unavailable: {0}")]
pub struct StoreUnavailable(pub String);

/// The server's view of the keys.
pub enum KeyStore {
    Memory {
        path: PathBuf,
        table: RwLock<Arc<KeyTable>>,
    },
    Redis {
        opts: RedisKeys,
        conn: tokio::sync::OnceCell<ConnectionManager>,
    },
}

impl KeyStore {
    pub fn memory(path: PathBuf, table: KeyTable) -> KeyStore {
        KeyStore::Memory {
            path,
            table: RwLock::new(Arc::new(table)),
        }
    }

    pub fn redis(opts: RedisKeys) -> KeyStore {
        KeyStore::Redis {
            opts,
            conn: tokio::sync::OnceCell::new(),
        }
    }

    /// The record whose digest is `d`, if any.
    pub async fn find(&self, d: &KeyDigest) -> Result<Option<KeyRecord>, StoreUnavailable> {
        match self {
            KeyStore::Memory { table, .. } => {
                let t = table.read().unwrap_or_else(|e| e.into_inner()).clone();
                Ok(t.find(d).cloned())
            }
            KeyStore::Redis { opts, conn } => {
                let c = conn
                    .get_or_try_init(|| opts.connect())
                    .await
                    .map_err(|e| StoreUnavailable(format!("Redis: {:?}", e.kind())))?;
                let mut c = c.clone();
                let raw: Option<String> = c
                    .hget(opts.hash_key(), digest_string(d))
                    .await
                    .map_err(|e| StoreUnavailable(format!("Redis: {:?}", e.kind())))?;
                let Some(raw) = raw else { return Ok(None) };
                let entry: Map<String, Value> = serde_json::from_str(&raw).map_err(|e| {
                    StoreUnavailable(format!("an entry in Redis is not valid JSON: {e}"))
                })?;
                let r = parse_entry(&entry).map_err(|e| {
                    StoreUnavailable(format!("an entry in Redis is invalid: {}", e.join("; ")))
                })?;
                // The field matched; the digest inside must too (constant-time, in `find`).
                Ok(KeyTable::new(vec![r]).find(d).cloned())
            }
        }
    }

    /// `memory` or `redis`.
    pub fn kind(&self) -> &'static str {
        match self {
            KeyStore::Memory { .. } => "memory",
            KeyStore::Redis { .. } => "redis",
        }
    }

    /// The keys now in use: the memory store's table, or every entry of the Redis hash.
    pub async fn records(&self) -> Result<Vec<KeyRecord>, StoreUnavailable> {
        match self {
            KeyStore::Memory { table, .. } => Ok(table
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .records()
                .to_vec()),
            KeyStore::Redis { opts, .. } => AdminStore::Redis(opts.clone())
                .load()
                .await
                .map(|f| f.table.records().to_vec())
                .map_err(|e| StoreUnavailable(e.join("; "))),
        }
    }

    /// Re-reads the keys file (memory store); a bad file keeps the running keys. Returns the
    /// number of keys now loaded.
    pub fn reload(&self) -> Result<usize, Vec<String>> {
        match self {
            KeyStore::Memory { path, table } => {
                let f = load_file(path)?;
                let n = f.table.len();
                *table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(f.table);
                Ok(n)
            }
            KeyStore::Redis { .. } => Ok(0),
        }
    }
}

/// The CLI's access to a store: load every entry, edit, save the changed ones.
pub enum AdminStore {
    File(PathBuf),
    Redis(RedisKeys),
}

impl AdminStore {
    /// Every entry (a missing keys file is an empty one: `keys create` makes it).
    pub async fn load(&self) -> Result<KeysFile, Vec<String>> {
        match self {
            AdminStore::File(path) if !path.exists() => Ok(KeysFile::default()),
            AdminStore::File(path) => load_file(path),
            AdminStore::Redis(opts) => {
                let mut c = opts
                    .connect()
                    .await
                    .map_err(|e| vec![format!("cannot reach Redis at {}: {e}", opts.addr)])?;
                let all: std::collections::HashMap<String, String> = c
                    .hgetall(opts.hash_key())
                    .await
                    .map_err(|e| vec![format!("Redis: {e}")])?;
                let mut fields: Vec<(String, String)> = all.into_iter().collect();
                fields.sort();
                let items: Vec<Value> = fields
                    .into_iter()
                    .map(|(_, v)| serde_json::from_str(&v).unwrap_or(Value::Null))
                    .collect();
                let name = format!("redis {}", opts.hash_key());
                KeysFile::parse(&name, &Value::Array(items).to_string())
            }
        }
    }

    /// Persists the entries at `changed` (the file store rewrites the whole file).
    pub async fn save(&self, f: &KeysFile, changed: &[usize]) -> Result<(), String> {
        match self {
            AdminStore::File(path) => {
                save_file(path, f).map_err(|e| format!("{}: cannot write: {e}", path.display()))
            }
            AdminStore::Redis(opts) => {
                let mut c = opts
                    .connect()
                    .await
                    .map_err(|e| format!("cannot reach Redis at {}: {e}", opts.addr))?;
                let mut pipe = redis::pipe();
                pipe.atomic();
                for &i in changed {
                    let (Some(entry), Some(rec)) = (f.entries.get(i), f.table.records().get(i))
                    else {
                        continue;
                    };
                    let mut entry = entry.clone();
                    // Redis never holds a plain key, even one that came from a file.
                    entry.remove("key_plain");
                    entry.insert("key_hash".into(), digest_string(&rec.digest).into());
                    entry.insert("key_id".into(), rec.key_id.clone().into());
                    pipe.hset(
                        opts.hash_key(),
                        digest_string(&rec.digest),
                        Value::Object(entry).to_string(),
                    )
                    .ignore();
                }
                pipe.query_async::<()>(&mut c)
                    .await
                    .map_err(|e| format!("Redis: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::keys::{digest, NewKey};
    use crate::access::policy::Policy;

    #[test]
    fn file_round_trip_is_owner_only_and_reloads_atomically() {
        let dir = tempfile_dir();
        let path = dir.join("auth/keys.json");
        let mut f = KeysFile::default();
        let k = NewKey {
            key_id: "a".into(),
            policy: Policy::Admin,
            expires_at: None,
            rpm: None,
            tpm: None,
            models: None,
        };
        f.create(&k, &digest("s1"), 0).unwrap();
        save_file(&path, &f).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let store = KeyStore::memory(path.clone(), load_file(&path).unwrap().table);
        let found = futures_lite_block(store.find(&digest("s1"))).unwrap();
        assert_eq!(found.unwrap().key_id, "a");
        // A broken file keeps the running keys.
        std::fs::write(&path, "[{").unwrap();
        assert!(store.reload().unwrap_err()[0].contains("not valid JSON"));
        assert!(futures_lite_block(store.find(&digest("s1")))
            .unwrap()
            .is_some());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "llm-router-keys-{}-{}",
            std::process::id(),
            crate::access::keys::random_base62(8).unwrap()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
        actix_rt::System::new().block_on(f)
    }
}
