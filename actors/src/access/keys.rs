//! Client API keys: the keys file (SPEC §10), digests, lookup, and the pure edits the CLI makes.
//!
//! Invariants:
//! - A key is known only by its SHA-256 digest once loaded; the plain text of a `key_plain` entry
//!   is hashed at parse time and dropped. Lookups go by digest and the stored digest is compared
//!   to the presented one in constant time.
//! - `Debug` of a record never shows its digest; only `key_id` is ever logged.
//! - Edits (`create`, `revoke`, `rotate`) work on the file's raw JSON entries, so fields this
//!   router does not know (the original gateway's `created_at`, `key_prefix`, …) survive a rewrite.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::policy::Policy;

/// A SHA-256 digest of a key.
pub type KeyDigest = [u8; 32];

pub fn digest(key: &str) -> KeyDigest {
    Sha256::digest(key.as_bytes()).into()
}

/// `sha256:<hex>`, the form stored in files and in Redis.
pub fn digest_string(d: &KeyDigest) -> String {
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

pub fn parse_digest(s: &str) -> Option<KeyDigest> {
    let hex = s.strip_prefix("sha256:")?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// One key, validated.
#[derive(Clone, PartialEq)]
pub struct KeyRecord {
    pub key_id: String,
    pub digest: KeyDigest,
    pub policy: Policy,
    pub is_active: bool,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    pub metadata: Value,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    /// Public model names this key may call; `None` = any.
    pub models: Option<Vec<String>>,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("key_id", &self.key_id)
            .field("policy", &self.policy)
            .field("is_active", &self.is_active)
            .field("expires_at", &self.expires_at)
            .field("rpm", &self.rpm)
            .field("tpm", &self.tpm)
            .field("models", &self.models)
            .finish_non_exhaustive()
    }
}

/// Why a request's key was refused (401); the message names which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Unknown,
    Inactive { key_id: String },
    Expired { key_id: String, at: i64 },
}

impl AuthFailure {
    /// Short label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Unknown => "unknown",
            AuthFailure::Inactive { .. } => "inactive",
            AuthFailure::Expired { .. } => "expired",
        }
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::Missing => f.write_str(
                "missing API key: send it as \"Authorization: Bearer <key>\" or \"x-api-key: <key>\"",
            ),
            AuthFailure::Unknown => f.write_str("unknown API key"),
            AuthFailure::Inactive { key_id } => {
                write!(f, "API key \"{key_id}\" is inactive (revoked)")
            }
            AuthFailure::Expired { key_id, at } => {
                write!(f, "API key \"{key_id}\" expired at {}", format_time(*at))
            }
        }
    }
}

impl KeyRecord {
    /// Whether this (already matched) key may be used at `now` (Unix seconds).
    pub fn check(&self, now: i64) -> Result<(), AuthFailure> {
        if !self.is_active {
            return Err(AuthFailure::Inactive {
                key_id: self.key_id.clone(),
            });
        }
        match self.expires_at {
            Some(at) if now >= at => Err(AuthFailure::Expired {
                key_id: self.key_id.clone(),
                at,
            }),
            _ => Ok(()),
        }
    }

    /// Whether the key may call the public model `model`.
    pub fn allows_model(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|m| m.iter().any(|n| n == model))
    }
}

/// The keys of the memory store, indexed by digest.
#[derive(Clone, Debug, Default)]
pub struct KeyTable {
    records: Vec<KeyRecord>,
    by_digest: HashMap<KeyDigest, usize>,
}

impl KeyTable {
    pub fn new(records: Vec<KeyRecord>) -> KeyTable {
        let by_digest = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.digest, i))
            .collect();
        KeyTable { records, by_digest }
    }

    /// The record whose digest is `d`; the final comparison is constant-time.
    pub fn find(&self, d: &KeyDigest) -> Option<&KeyRecord> {
        let r = &self.records[*self.by_digest.get(d)?];
        bool::from(r.digest.ct_eq(d)).then_some(r)
    }

    pub fn records(&self) -> &[KeyRecord] {
        &self.records
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Formats Unix seconds as RFC 3339 (UTC).
pub fn format_time(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

fn parse_time(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Parses one raw entry; `Err` lists every problem with it.
pub fn parse_entry(raw: &Map<String, Value>) -> Result<KeyRecord, Vec<String>> {
    let mut errs = Vec::new();
    let str_field = |name: &str, errs: &mut Vec<String>| -> Option<String> {
        match raw.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                errs.push(format!("\"{name}\" must be a string, got {other}"));
                None
            }
        }
    };
    let plain = str_field("key_plain", &mut errs);
    let hash = str_field("key_hash", &mut errs);
    let key_id = str_field("key_id", &mut errs);
    let digest = match (&plain, &hash) {
        (Some(_), Some(_)) => {
            errs.push("give \"key_plain\" or \"key_hash\", not both".into());
            None
        }
        (Some(p), None) if p.is_empty() => {
            errs.push("\"key_plain\" is empty".into());
            None
        }
        (Some(p), None) => Some(digest(p)),
        (None, Some(h)) => {
            let d = parse_digest(h);
            if d.is_none() {
                errs.push("\"key_hash\" must be \"sha256:\" followed by 64 hex digits".into());
            }
            d
        }
        (None, None) => {
            errs.push("missing \"key_plain\" or \"key_hash\"".into());
            None
        }
    };
    let key_id = match (key_id, &plain) {
        (Some(id), _) if id.trim().is_empty() => {
            errs.push("\"key_id\" is empty".into());
            String::new()
        }
        (Some(id), _) => id,
        (None, Some(p)) => p.chars().take(12).collect(),
        (None, None) => {
            if hash.is_some() {
                errs.push("\"key_id\" is required with \"key_hash\"".into());
            }
            String::new()
        }
    };
    let policy = match str_field("policy_name", &mut errs) {
        None => Policy::Developer,
        Some(name) => Policy::parse(&name).unwrap_or_else(|| {
            errs.push(format!(
                "unknown policy \"{name}\"; known: {}",
                Policy::ALL.map(|p| p.as_str()).join(", ")
            ));
            Policy::Developer
        }),
    };
    let is_active = match raw.get("is_active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            errs.push(format!("\"is_active\" must be true or false, got {other}"));
            false
        }
    };
    // RFC 3339; the original gateway wrote Unix seconds, which load too.
    let expires_at = match raw.get("expires_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => parse_time(s).or_else(|| {
            errs.push(format!(
                "\"expires_at\" must be an RFC 3339 time (e.g. 2026-12-31T23:59:59Z), got \"{s}\""
            ));
            None
        }),
        Some(Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => {
            n.as_f64().map(|f| f as i64)
        }
        Some(other) => {
            errs.push(format!(
                "\"expires_at\" must be an RFC 3339 time or null, got {other}"
            ));
            None
        }
    };
    let mut positive = |name: &str| -> Option<u64> {
        match raw.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => Some(n),
                _ => {
                    errs.push(format!("\"{name}\" must be a whole number ≥ 1, got {v}"));
                    None
                }
            },
        }
    };
    let rpm = positive("rpm").map(|n| n.min(u64::from(u32::MAX)) as u32);
    let tpm = positive("tpm");
    let models = match raw.get("models") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Some(
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        ),
        Some(other) => {
            errs.push(format!(
                "\"models\" must be a list of model names, got {other}"
            ));
            None
        }
    };
    let metadata = raw.get("metadata").cloned().unwrap_or(Value::Null);
    match digest {
        Some(digest) if errs.is_empty() => Ok(KeyRecord {
            key_id,
            digest,
            policy,
            is_active,
            expires_at,
            metadata,
            rpm,
            tpm,
            models,
        }),
        _ => Err(errs),
    }
}

/// A keys file: its raw entries (kept for rewriting) and the validated records, in order.
#[derive(Clone, Debug, Default)]
pub struct KeysFile {
    pub entries: Vec<Map<String, Value>>,
    pub table: KeyTable,
}

impl KeysFile {
    /// Parses the file's text; every problem is `"{file}: [index]: what"`, all reported at once.
    pub fn parse(file: &str, text: &str) -> Result<KeysFile, Vec<String>> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| vec![format!("{file}: not valid JSON: {e}")])?;
        let Value::Array(items) = value else {
            return Err(vec![format!("{file}: must be a JSON array of key entries")]);
        };
        let mut errs = Vec::new();
        let mut entries = Vec::new();
        let mut records: Vec<KeyRecord> = Vec::new();
        let mut seen: HashMap<KeyDigest, usize> = HashMap::new();
        for (i, item) in items.into_iter().enumerate() {
            let Value::Object(raw) = item else {
                errs.push(format!("{file}: [{i}]: must be an object"));
                continue;
            };
            match parse_entry(&raw) {
                Ok(r) => {
                    if let Some(first) = seen.insert(r.digest, i) {
                        errs.push(format!("{file}: [{i}]: the same key as entry [{first}]"));
                    }
                    records.push(r);
                }
                Err(es) => errs.extend(es.into_iter().map(|e| format!("{file}: [{i}]: {e}"))),
            }
            entries.push(raw);
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(KeysFile {
            entries,
            table: KeyTable::new(records),
        })
    }

    /// The file's text (pretty JSON, one entry per key).
    pub fn render(&self) -> String {
        let arr = Value::Array(self.entries.iter().cloned().map(Value::Object).collect());
        let mut s = serde_json::to_string_pretty(&arr).unwrap_or_else(|_| "[]".into());
        s.push('\n');
        s
    }

    fn reindex(&mut self) -> Result<(), String> {
        let records = self
            .entries
            .iter()
            .map(|e| parse_entry(e).map_err(|es| es.join("; ")))
            .collect::<Result<Vec<_>, _>>()?;
        self.table = KeyTable::new(records);
        Ok(())
    }
}

/// What `keys create` asks for.
#[derive(Clone, Debug)]
pub struct NewKey {
    pub key_id: String,
    pub policy: Policy,
    pub expires_at: Option<i64>,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    pub models: Option<Vec<String>>,
}

/// A raw entry storing only the digest of a key.
pub fn hashed_entry(k: &NewKey, d: &KeyDigest, now: i64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("key_hash".into(), digest_string(d).into());
    m.insert("key_id".into(), k.key_id.clone().into());
    m.insert("policy_name".into(), k.policy.as_str().into());
    m.insert("is_active".into(), true.into());
    m.insert(
        "expires_at".into(),
        k.expires_at.map_or(Value::Null, |t| format_time(t).into()),
    );
    m.insert("created_at".into(), format_time(now).into());
    m.insert("metadata".into(), Value::Object(Map::new()));
    if let Some(r) = k.rpm {
        m.insert("rpm".into(), r.into());
    }
    if let Some(t) = k.tpm {
        m.insert("tpm".into(), t.into());
    }
    if let Some(models) = &k.models {
        m.insert("models".into(), models.clone().into());
    }
    m
}

impl KeysFile {
    /// Adds a key stored by digest; the id must not name a key already there.
    pub fn create(&mut self, k: &NewKey, d: &KeyDigest, now: i64) -> Result<usize, String> {
        if self.table.records.iter().any(|r| r.key_id == k.key_id) {
            return Err(format!("a key with id \"{}\" already exists", k.key_id));
        }
        if self.table.by_digest.contains_key(d) {
            return Err("that key is already stored".into());
        }
        self.entries.push(hashed_entry(k, d, now));
        self.reindex()?;
        Ok(self.entries.len() - 1)
    }

    /// Deactivates every key with this id; returns the indexes changed.
    pub fn revoke(&mut self, key_id: &str) -> Result<Vec<usize>, String> {
        let idx = self.indexes(key_id)?;
        for &i in &idx {
            self.entries[i].insert("is_active".into(), false.into());
        }
        self.reindex()?;
        Ok(idx)
    }

    /// Adds a new key under the same id (same policy and limits) and lets the active old ones
    /// expire `grace` seconds from `now` (or earlier, if they already did). Returns the indexes
    /// changed, the new one last.
    pub fn rotate(
        &mut self,
        key_id: &str,
        d: &KeyDigest,
        grace: i64,
        now: i64,
    ) -> Result<Vec<usize>, String> {
        let idx: Vec<usize> = self
            .indexes(key_id)?
            .into_iter()
            .filter(|&i| self.table.records[i].check(now).is_ok())
            .collect();
        let Some(&newest) = idx.last() else {
            return Err(format!(
                "key \"{key_id}\" has no active, unexpired key to rotate"
            ));
        };
        let old = self.table.records[newest].clone();
        let new = NewKey {
            key_id: key_id.to_string(),
            policy: old.policy,
            expires_at: old.expires_at,
            rpm: old.rpm,
            tpm: old.tpm,
            models: old.models.clone(),
        };
        let until = now + grace;
        for &i in &idx {
            let keep = self.table.records[i]
                .expires_at
                .map_or(until, |e| e.min(until));
            self.entries[i].insert("expires_at".into(), format_time(keep).into());
        }
        let mut entry = hashed_entry(&new, d, now);
        if !old.metadata.is_null() {
            entry.insert("metadata".into(), old.metadata);
        }
        self.entries.push(entry);
        self.reindex()?;
        let mut changed = idx;
        changed.push(self.entries.len() - 1);
        Ok(changed)
    }

    fn indexes(&self, key_id: &str) -> Result<Vec<usize>, String> {
        let idx: Vec<usize> = self
            .table
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.key_id == key_id)
            .map(|(i, _)| i)
            .collect();
        if idx.is_empty() {
            Err(format!("no key with id \"{key_id}\""))
        } else {
            Ok(idx)
        }
    }
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` base62 characters from the OS CSPRNG (rejection sampling: no modulo bias).
pub fn random_base62(len: usize) -> Result<String, String> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(|e| format!("no secure random numbers: {e}"))?;
        for &b in &buf {
            // 248 = 4 × 62: bytes ≥ 248 would favour the first characters.
            if b < 248 && out.len() < len {
                out.push(BASE62[(b % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

/// A new key: `{prefix}-{len base62 chars}`.
pub fn generate_key(prefix: &str, len: usize) -> Result<String, String> {
    Ok(format!("{prefix}-{}", random_base62(len)?))
}

/// `30d`, `12h`, `45m`, `90s`, `2w` or plain seconds → seconds.
pub fn parse_span(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: i64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    (n > 0).then(|| n.checked_mul(mult)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<KeysFile, Vec<String>> {
        KeysFile::parse("keys.json", text)
    }

    #[test]
    fn an_original_gateway_seed_file_loads_unchanged() {
        // As the Python gateway's docs and `_persist_seeds` write it: plain keys, Unix-second
        // expiry, created_at, metadata, optional key_id.
        let f = parse(
            r#"[
              {"key_plain": "sk-litm-my-key-1234567890abcdefghij", "policy_name": "developer",
               "is_active": true, "expires_at": null, "created_at": 1718000000, "metadata": {},
               "key_id": "manual-key-001"},
              {"key_plain": "sk-litm-other-0987654321zyxwvutsrq", "policy_name": "chat",
               "is_active": true, "expires_at": 1750000000, "created_at": 1718000000.5,
               "metadata": {"team": "backend"}},
              {"key_plain": "sk-litm-third-key-aaaaaaaaaaaaaaaa"}
            ]"#,
        )
        .unwrap();
        let r = f.table.records();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].key_id, "manual-key-001");
        assert_eq!(r[1].key_id, "sk-litm-othe", "first 12 characters");
        assert_eq!(r[1].expires_at, Some(1_750_000_000));
        assert_eq!(r[1].policy, Policy::Chat);
        assert_eq!(r[2].policy, Policy::Developer);
        assert!(r[2].is_active);
        let found = f
            .table
            .find(&digest("sk-litm-my-key-1234567890abcdefghij"))
            .unwrap();
        assert_eq!(found.key_id, "manual-key-001");
        assert!(f
            .table
            .find(&digest("sk-litm-my-key-1234567890abcdefghiJ"))
            .is_none());
    }

    #[test]
    fn hashed_entries_with_limits_models_and_rfc3339_expiry() {
        let h = digest_string(&digest("secret-1"));
        let f = parse(&format!(
            r#"[{{"key_hash": "{h}", "key_id": "svc", "policy_name": "embedding",
                 "expires_at": "2030-01-01T00:00:00Z", "rpm": 5, "tpm": 1000,
                 "models": ["e5"], "is_active": false}}]"#
        ))
        .unwrap();
        let r = f.table.find(&digest("secret-1")).unwrap();
        assert_eq!(
            (r.key_id.as_str(), r.policy, r.rpm, r.tpm),
            ("svc", Policy::Embedding, Some(5), Some(1000))
        );
        assert_eq!(r.expires_at, Some(1_893_456_000));
        assert!(r.allows_model("e5") && !r.allows_model("gemma"));
        assert_eq!(
            r.check(0),
            Err(AuthFailure::Inactive {
                key_id: "svc".into()
            })
        );
    }

    #[test]
    fn every_bad_entry_is_named_by_file_and_index() {
        let h = digest_string(&digest("x"));
        let errs = parse(&format!(
            r#"[{{"key_plain": "ok-key-000000000"}},
                {{"key_plain": "k2", "policy_name": "readonly"}},
                {{"key_hash": "{h}"}},
                {{"key_hash": "md5:abc", "key_id": "a"}},
                {{"policy_name": "admin"}},
                {{"key_plain": "k5", "expires_at": "tomorrow", "rpm": 0, "models": "m"}},
                "just a string",
                {{"key_plain": "ok-key-000000000"}}]"#
        ))
        .unwrap_err();
        let want = [
            "keys.json: [1]: unknown policy \"readonly\"; known: admin, developer, chat, embedding, anthropic, ollama, builtin",
            "keys.json: [2]: \"key_id\" is required with \"key_hash\"",
            "keys.json: [3]: \"key_hash\" must be \"sha256:\" followed by 64 hex digits",
            "keys.json: [4]: missing \"key_plain\" or \"key_hash\"",
            "keys.json: [5]: \"expires_at\" must be an RFC 3339 time (e.g. 2026-12-31T23:59:59Z), got \"tomorrow\"",
            "keys.json: [5]: \"rpm\" must be a whole number ≥ 1, got 0",
            "keys.json: [5]: \"models\" must be a list of model names, got \"m\"",
            "keys.json: [6]: must be an object",
            "keys.json: [7]: the same key as entry [0]",
        ];
        assert_eq!(errs, want);
        assert_eq!(
            parse("{}").unwrap_err(),
            ["keys.json: must be a JSON array of key entries"]
        );
        assert!(parse("[").unwrap_err()[0].starts_with("keys.json: not valid JSON"));
    }

    #[test]
    fn expiry_and_activity_checks() {
        let f =
            parse(r#"[{"key_plain": "abc", "expires_at": "2026-01-01T00:00:00+01:00"}]"#).unwrap();
        let r = &f.table.records()[0];
        let at = 1_767_222_000; // 2025-12-31T23:00:00Z
        assert_eq!(r.check(at - 1), Ok(()));
        let e = r.check(at).unwrap_err();
        assert_eq!(
            e.to_string(),
            "API key \"abc\" expired at 2025-12-31T23:00:00Z"
        );
        assert_eq!(e.reason(), "expired");
    }

    #[test]
    fn keys_are_prefix_dash_base62_of_the_asked_length_and_differ() {
        let a = generate_key("sk-litm", 48).unwrap();
        let b = generate_key("sk-litm", 48).unwrap();
        let body = a.strip_prefix("sk-litm-").unwrap();
        assert_eq!(body.len(), 48);
        assert!(body.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        // Rejection sampling keeps every character reachable.
        let many = random_base62(20_000).unwrap();
        for &c in BASE62 {
            assert!(many.as_bytes().contains(&c), "{}", c as char);
        }
    }

    #[test]
    fn spans() {
        for (s, want) in [
            ("30d", Some(2_592_000)),
            ("12h", Some(43_200)),
            ("45m", Some(2700)),
            ("90", Some(90)),
            ("2w", Some(1_209_600)),
            ("0d", None),
            ("3y", None),
            ("d", None),
        ] {
            assert_eq!(parse_span(s), want, "{s}");
        }
    }

    #[test]
    fn create_revoke_rotate_keep_unknown_fields_and_only_digests() {
        let mut f = parse(
            r#"[{"key_plain": "sk-litm-old-aaaaaaaaaaaa", "key_id": "old", "created_at": 1718000000}]"#,
        )
        .unwrap();
        let now = 1_800_000_000;
        let new = NewKey {
            key_id: "svc".into(),
            policy: Policy::Chat,
            expires_at: Some(now + 86_400),
            rpm: Some(7),
            tpm: None,
            models: None,
        };
        f.create(&new, &digest("k1"), now).unwrap();
        assert!(f
            .create(&new, &digest("k2"), now)
            .unwrap_err()
            .contains("already exists"));
        let text = f.render();
        assert!(!text.contains("\"k1\"") && text.contains(&digest_string(&digest("k1"))));
        assert!(text.contains("\"created_at\": 1718000000"), "{text}");
        // Rotate: the old key works for the grace period, the new one as long as the old did.
        let changed = f.rotate("svc", &digest("k2"), 3600, now).unwrap();
        assert_eq!(changed, vec![1, 2]);
        let f = KeysFile::parse("keys.json", &f.render()).unwrap();
        let old = f.table.find(&digest("k1")).unwrap();
        let rotated = f.table.find(&digest("k2")).unwrap();
        assert_eq!(old.expires_at, Some(now + 3600));
        assert_eq!(rotated.expires_at, Some(now + 86_400));
        assert_eq!((rotated.key_id.as_str(), rotated.rpm), ("svc", Some(7)));
        assert!(old.check(now + 3599).is_ok() && old.check(now + 3600).is_err());
        // Revoke deactivates every key of the id.
        let mut f = f;
        assert_eq!(f.revoke("svc").unwrap(), vec![1, 2]);
        assert!(f.table.records()[1..].iter().all(|r| !r.is_active));
        assert!(f.table.records()[0].is_active);
        assert!(f.revoke("nope").is_err());
        assert!(f.rotate("svc", &digest("k3"), 60, now).is_err(), "revoked");
    }
}
