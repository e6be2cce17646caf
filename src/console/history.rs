//! The version history of configs applied from the console: one file per version,
//! `<LLM_ROUTER_STATE_DIR>/config-history/v000001.json` = `{"id", "applied_at", "cause",
//! "config"}` with the whole config as applied (tokens included: a restore must not lose them, so
//! the directory is made private to the router's user). Nothing is written until the first
//! change made from the console, which first records the config running before it.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::{json, Value};

pub struct History {
    dir: PathBuf,
    lock: Mutex<()>,
}

/// One version's description (the listing).
#[derive(Debug, Clone)]
pub struct Meta {
    pub id: u64,
    pub applied_at: String,
    pub cause: String,
    pub models: usize,
}

fn file_id(name: &str) -> Option<u64> {
    name.strip_prefix('v')?.strip_suffix(".json")?.parse().ok()
}

/// Active models of a config document.
pub fn active_count(config: &Value) -> usize {
    config
        .get("active_models")
        .and_then(Value::as_object)
        .map_or(0, |g| {
            g.values()
                .filter_map(Value::as_array)
                .map(|a| a.len())
                .sum()
        })
}

impl History {
    pub fn new(dir: PathBuf) -> History {
        History {
            dir,
            lock: Mutex::new(()),
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn ids(&self) -> std::io::Result<Vec<u64>> {
        let mut ids = Vec::new();
        match std::fs::read_dir(&self.dir) {
            Ok(entries) => {
                for e in entries {
                    if let Some(id) = e?.file_name().to_str().and_then(file_id) {
                        ids.push(id);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        ids.sort_unstable();
        Ok(ids)
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("v{id:06}.json"))
    }

    /// One version's record, `None` when there is no such version.
    pub fn get(&self, id: u64) -> std::io::Result<Option<Value>> {
        match std::fs::read(self.path(id)) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every version, newest first.
    pub fn list(&self) -> std::io::Result<Vec<Meta>> {
        let mut out = Vec::new();
        for id in self.ids()?.into_iter().rev() {
            if let Some(v) = self.get(id)? {
                out.push(Meta {
                    id,
                    applied_at: v["applied_at"].as_str().unwrap_or("").to_string(),
                    cause: v["cause"].as_str().unwrap_or("").to_string(),
                    models: active_count(&v["config"]),
                });
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> std::io::Result<bool> {
        Ok(self.ids()?.is_empty())
    }

    /// Stores `config` as the next version; returns its id.
    pub fn record(&self, cause: &str, config: &Value) -> std::io::Result<u64> {
        let _one = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if !self.dir.exists() {
            std::fs::create_dir_all(&self.dir)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))?;
            }
        }
        let id = self.ids()?.last().map_or(1, |l| l + 1);
        let record = json!({
            "id": id,
            "applied_at": crate::pipeline::audit::rfc3339(SystemTime::now()),
            "cause": cause,
            "config": config,
        });
        let path = self.path(id);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&record)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_numbered_and_listed_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::new(dir.path().join("h"));
        assert!(h.is_empty().unwrap());
        let c = json!({"active_models": {"g": ["a", "b"]}});
        assert_eq!(h.record("start", &c).unwrap(), 1);
        assert_eq!(h.record("edit", &json!({})).unwrap(), 2);
        let l = h.list().unwrap();
        assert_eq!(l.iter().map(|m| m.id).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(l[1].models, 2);
        assert_eq!(l[1].cause, "start");
        assert_eq!(h.get(1).unwrap().unwrap()["config"], c);
        assert!(h.get(9).unwrap().is_none());
    }
}
