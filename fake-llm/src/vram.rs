//! Ollama's model memory, as far as a router sees it: `GET /api/ps` lists the loaded models
//! (`name`, `model`, `size`, `digest`, `details`, `expires_at`, `size_vram`, `context_length`,
//! the shape of Ollama's docs); a generation loads its model (or renews its `expires_at`, five
//! minutes after the last use, Ollama's default keep-alive); a chat with no messages or a
//! generate with no prompt and `"keep_alive": 0` unloads the model and answers with
//! `"done_reason": "unload"`, as Ollama does. With `FakeConfig::vram_capacity` set, a load that
//! does not fit in what is free fails like Ollama's: 500 `{"error": "model requires more system
//! memory (X GiB) than is available (Y GiB)"}`. Model sizes come from `FakeConfig::model_sizes`
//! (default [`DEFAULT_SIZE`], the size `/api/tags` lists).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::Kind;

/// The size of a model the config does not size (also listed by `/api/tags`).
pub const DEFAULT_SIZE: u64 = 4_000_000_000;
const KEEP_ALIVE: Duration = Duration::from_secs(300);

#[derive(Clone, Debug)]
struct Resident {
    name: String,
    size: u64,
    expires: SystemTime,
}

/// The models loaded on this fake host.
#[derive(Debug, Default)]
pub struct Memory {
    loaded: Vec<Resident>,
    /// Models unloaded by a `keep_alive: 0` request, in order.
    unloaded: Vec<String>,
}

impl Memory {
    /// `GET /api/ps`.
    pub fn ps(&self) -> Value {
        let models: Vec<Value> = self
            .loaded
            .iter()
            .map(|r| {
                json!({"name": r.name, "model": r.name, "size": r.size,
                       "digest": format!("{:064x}", r.name.len()),
                       "details": {"parent_model": "", "format": "gguf", "family": "llama",
                                   "families": ["llama"], "parameter_size": "8B",
                                   "quantization_level": "Q4_K_M"},
                       "expires_at": rfc3339(r.expires), "size_vram": r.size,
                       "context_length": 4096})
            })
            .collect();
        json!({"models": models})
    }

    pub fn loaded(&self) -> Vec<String> {
        self.loaded.iter().map(|r| r.name.clone()).collect()
    }

    pub fn unloaded(&self) -> Vec<String> {
        self.unloaded.clone()
    }

    /// Loads `name` (or renews it); `Err` is Ollama's message when it does not fit.
    pub fn load(&mut self, name: &str, size: u64, capacity: Option<u64>) -> Result<(), String> {
        let expires = SystemTime::now() + KEEP_ALIVE;
        if let Some(r) = self.loaded.iter_mut().find(|r| r.name == name) {
            r.expires = expires;
            return Ok(());
        }
        if let Some(cap) = capacity {
            let used: u64 = self.loaded.iter().map(|r| r.size).sum();
            let free = cap.saturating_sub(used);
            if size > free {
                let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
                return Err(format!(
                    "model requires more system memory ({:.1} GiB) than is available ({:.1} GiB)",
                    gib(size),
                    gib(free)
                ));
            }
        }
        self.loaded.push(Resident {
            name: name.to_string(),
            size,
            expires,
        });
        Ok(())
    }

    pub fn unload(&mut self, name: &str) {
        self.loaded.retain(|r| r.name != name);
        self.unloaded.push(name.to_string());
    }
}

/// Whether an Ollama request is the unload request (no prompt or messages, `keep_alive` 0).
pub fn is_unload(kind: Kind, request: &Value) -> bool {
    let zero = match request.get("keep_alive") {
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::String(s)) => matches!(s.as_str(), "0" | "0s" | "0m"),
        _ => false,
    };
    let empty = match kind {
        Kind::OllamaGenerate => request
            .get("prompt")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty),
        Kind::OllamaChat => request
            .get("messages")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty),
        Kind::Chat | Kind::Completions | Kind::Anthropic => false,
    };
    zero && empty
}

/// Ollama's answer to an unload.
pub fn unload_reply(kind: Kind, model: &str) -> Value {
    let at = rfc3339(SystemTime::now());
    match kind {
        Kind::OllamaChat => json!({"model": model, "created_at": at,
            "message": {"role": "assistant", "content": ""}, "done_reason": "unload", "done": true}),
        _ => json!({"model": model, "created_at": at, "response": "", "done": true,
            "done_reason": "unload"}),
    }
}

/// UTC RFC 3339 with nanoseconds, as Go prints it.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 → civil date (Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        assert_eq!(rfc3339(t), "2026-11-30T00:53:20.000000000Z");
    }

    #[test]
    fn a_load_that_does_not_fit_fails_like_ollama() {
        let mut m = Memory::default();
        m.load("a", 3 << 30, Some(4 << 30)).unwrap();
        let e = m.load("b", 2 << 30, Some(4 << 30)).unwrap_err();
        assert_eq!(
            e,
            "model requires more system memory (2.0 GiB) than is available (1.0 GiB)"
        );
        m.unload("a");
        m.load("b", 2 << 30, Some(4 << 30)).unwrap();
        assert_eq!(m.loaded(), vec!["b"]);
        assert_eq!(m.unloaded(), vec!["a"]);
    }

    #[test]
    fn the_unload_request_is_recognised() {
        let gen = json!({"model": "m", "keep_alive": 0});
        assert!(is_unload(Kind::OllamaGenerate, &gen));
        assert!(is_unload(
            Kind::OllamaChat,
            &json!({"model": "m", "messages": [], "keep_alive": 0})
        ));
        assert!(!is_unload(
            Kind::OllamaGenerate,
            &json!({"model": "m", "prompt": "hi", "keep_alive": 0})
        ));
        assert!(!is_unload(
            Kind::OllamaChat,
            &json!({"model": "m", "messages": []})
        ));
    }
}
