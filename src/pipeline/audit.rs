//! The audit (SPEC §6): with `LLM_ROUTER_MASKING_WITH_AUDIT` /
//! `LLM_ROUTER_GUARDRAIL_WITH_AUDIT_REQUEST` / `_RESPONSE` on, one JSON record per masking or guardrail event,
//! encrypted to the operator's OpenPGP public key (`LLM_ROUTER_AUDIT_PUBLIC_KEY`, ASCII-armored
//! or binary) and written ASCII-armored, one file per event, under `LLM_ROUTER_AUDIT_DIR`
//! (`logs/auditor`). `gpg --decrypt FILE` (or `scripts/audit-decrypt.sh DIR`) reads them.
//!
//! Record shape (the original's `audit_type` names the event and starts the file name,
//! `<audit_type>__<YYYYMMDD_HHMMSS.micros>__<n>.audit`):
//! `{"audit_type": "masker" | "guardrail_request" | "guardrail_response", "timestamp": RFC 3339 UTC, "endpoint",
//! ...}` — masker: `"plugins"`, `"before"`, `"after"`, `"mappings"`; guardrail: `"guardrail"`,
//! `"text"`, `"safe"` (null when the guardrail failed), `"verdict"` (its answer, or
//! `{"error": ...}`).
//!
//! Invariants: a missing or unusable key (unreadable, not OpenPGP, no key that can encrypt) and an
//! unwritable directory are start-up errors. Recording never blocks a request: records go over a
//! bounded queue (`LLM_ROUTER_AUDIT_QUEUE_SIZE`, default [`DEFAULT_QUEUE`]) to one writer thread,
//! which encrypts and writes them; a record it cannot write is logged as an error (the request has
//! long been answered). When the queue is full — the writer cannot keep up — the event's request
//! is refused (503 naming the audit, [`AuditFull`]) instead of memory growing or the event going
//! unaudited: fail closed, like every plugin.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{SystemTime, UNIX_EPOCH};

use pgp::composed::{ArmorOptions, Deserializable, MessageBuilder, SignedPublicKey};
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::types::KeyDetails;
use serde_json::{json, Value};

/// What the audit needs, checked at start-up.
#[derive(Clone)]
pub struct AuditSettings {
    pub masking: bool,
    pub guard_request: bool,
    pub guard_response: bool,
    pub dir: PathBuf,
    /// Records waiting for the writer at most.
    pub queue: usize,
    key: Arc<SignedPublicKey>,
}

impl std::fmt::Debug for AuditSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSettings")
            .field("masking", &self.masking)
            .field("guard_request", &self.guard_request)
            .field("guard_response", &self.guard_response)
            .field("dir", &self.dir)
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

pub const KEY_VAR: &str = "LLM_ROUTER_AUDIT_PUBLIC_KEY";
pub const DIR_VAR: &str = "LLM_ROUTER_AUDIT_DIR";
pub const QUEUE_VAR: &str = "LLM_ROUTER_AUDIT_QUEUE_SIZE";
/// Records waiting for the writer at most, by default.
pub const DEFAULT_QUEUE: usize = 4096;

impl AuditSettings {
    /// `None` when no audit is on; problems go to `errs` (start-up errors).
    pub fn from_vars(
        get: &dyn Fn(&str) -> String,
        errs: &mut Vec<String>,
    ) -> Option<AuditSettings> {
        let on = |v: &str| crate::settings::parse_bool(&get(v));
        let masking = on("LLM_ROUTER_MASKING_WITH_AUDIT");
        let guard_request = on("LLM_ROUTER_GUARDRAIL_WITH_AUDIT_REQUEST");
        let guard_response = on("LLM_ROUTER_GUARDRAIL_WITH_AUDIT_RESPONSE");
        if !masking && !guard_request && !guard_response {
            return None;
        }
        let queue = match get(QUEUE_VAR).trim() {
            "" => DEFAULT_QUEUE,
            raw => match raw.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    errs.push(format!(
                        "{QUEUE_VAR}: expected a whole number of records above 0, got \"{raw}\""
                    ));
                    return None;
                }
            },
        };
        let key_path = PathBuf::from(get(KEY_VAR));
        let dir = PathBuf::from(get(DIR_VAR));
        let key = match read_key(&key_path) {
            Ok(k) => k,
            Err(e) => {
                errs.push(format!("{KEY_VAR}: {}: {e}", key_path.display()));
                return None;
            }
        };
        if let Err(e) = writable(&dir) {
            errs.push(format!("{DIR_VAR}: {}: {e}", dir.display()));
            return None;
        }
        Some(AuditSettings {
            masking,
            guard_request,
            guard_response,
            dir,
            queue,
            key: Arc::new(key),
        })
    }
}

/// The operator's public key, which must be able to encrypt.
fn read_key(path: &Path) -> Result<SignedPublicKey, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the audit key ({e})"))?;
    let (key, _) = SignedPublicKey::from_reader_single(&bytes[..])
        .map_err(|e| format!("not an OpenPGP public key ({e})"))?;
    key.verify_bindings()
        .map_err(|e| format!("the key's self-signatures do not verify ({e})"))?;
    if !key
        .public_subkeys
        .iter()
        .any(|k| k.algorithm().can_encrypt())
        && !key.algorithm().can_encrypt()
    {
        return Err("the key has no encryption (sub)key".into());
    }
    Ok(key)
}

/// Creates `dir` if needed and checks a file can be written there.
fn writable(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create the directory ({e})"))?;
    let probe = dir.join(format!(".write-check-{}", std::process::id()));
    std::fs::write(&probe, b"llm-router").map_err(|e| format!("cannot write there ({e})"))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// `record` encrypted to `key`, ASCII-armored.
pub fn encrypt(key: &SignedPublicKey, record: &[u8]) -> Result<String, String> {
    let mut rng = rand::thread_rng();
    let mut builder = MessageBuilder::from_bytes("", record.to_vec())
        .seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    let mut recipients = 0;
    for sub in key
        .public_subkeys
        .iter()
        .filter(|k| k.algorithm().can_encrypt())
    {
        builder
            .encrypt_to_key(&mut rng, sub)
            .map_err(|e| e.to_string())?;
        recipients += 1;
    }
    if recipients == 0 {
        builder
            .encrypt_to_key(&mut rng, key)
            .map_err(|e| e.to_string())?;
    }
    builder
        .to_armored_string(&mut rng, ArmorOptions::default())
        .map_err(|e| e.to_string())
}

/// The running audit: cheap to clone, records go to the writer thread.
#[derive(Clone)]
pub struct Auditor {
    pub masking: bool,
    pub guard_request: bool,
    pub guard_response: bool,
    tx: mpsc::SyncSender<Value>,
    queue: usize,
}

/// A record could not be queued (the queue is full, or the writer is gone): the request it
/// belongs to is refused.
#[derive(Debug, PartialEq)]
pub struct AuditFull {
    pub queue: usize,
}

impl From<AuditFull> for crate::errors::RouterError {
    fn from(e: AuditFull) -> Self {
        crate::errors::RouterError::UpstreamRejected {
            status: 503,
            message: format!(
                "the audit cannot keep up ({} records wait to be written); the request was \
                 refused rather than left unaudited",
                e.queue
            ),
            provider: "audit".into(),
        }
    }
}

impl Auditor {
    /// Starts the writer thread.
    pub fn start(s: &AuditSettings) -> std::io::Result<Auditor> {
        let key = s.key.clone();
        let dir = s.dir.clone();
        let seq = AtomicU64::new(0);
        let events = (s.masking, s.guard_request, s.guard_response);
        Auditor::with_writer(events, s.queue, move |record| {
            if let Err(e) = write(&key, &dir, &record, seq.fetch_add(1, Ordering::Relaxed)) {
                tracing::error!(error = %e, dir = %dir.display(), "audit record not written");
            }
        })
    }

    /// An audit of `events` (masking, request guardrails, response guardrails) with a queue of
    /// `queue` records and `writer` on its writer thread (tests pass a writer of their own).
    fn with_writer(
        events: (bool, bool, bool),
        queue: usize,
        mut writer: impl FnMut(Value) + Send + 'static,
    ) -> std::io::Result<Auditor> {
        let (tx, rx) = mpsc::sync_channel::<Value>(queue);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || rx.into_iter().for_each(&mut writer))?;
        Ok(Auditor {
            masking: events.0,
            guard_request: events.1,
            guard_response: events.2,
            tx,
            queue,
        })
    }

    /// Queues one record (never blocks); `audit_type` and `timestamp` are added here. `Err` when
    /// the queue is full: the caller refuses the request.
    pub fn record(&self, audit_type: &str, mut fields: Value) -> Result<(), AuditFull> {
        if let Value::Object(m) = &mut fields {
            m.insert("audit_type".into(), json!(audit_type));
            m.insert("timestamp".into(), json!(rfc3339(SystemTime::now())));
        }
        match self.tx.try_send(fields) {
            Ok(()) => Ok(()),
            Err(mpsc::TrySendError::Full(_)) => {
                tracing::error!(
                    audit_type,
                    queue = self.queue,
                    "the audit queue is full: request refused"
                );
                Err(AuditFull { queue: self.queue })
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                tracing::error!(audit_type, "the audit writer is gone: request refused");
                Err(AuditFull { queue: self.queue })
            }
        }
    }
}

fn write(key: &SignedPublicKey, dir: &Path, record: &Value, seq: u64) -> Result<(), String> {
    let audit_type = record["audit_type"].as_str().unwrap_or("event");
    let text = serde_json::to_vec_pretty(record).map_err(|e| e.to_string())?;
    let armored = encrypt(key, &text)?;
    let name = format!(
        "{audit_type}__{}__{seq}.audit",
        file_stamp(SystemTime::now())
    );
    let tmp = dir.join(format!(".{name}.tmp"));
    // Written whole, then renamed: a reader never sees half a record.
    std::fs::write(&tmp, armored).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, dir.join(name)).map_err(|e| e.to_string())
}

/// (year, month, day, hour, minute, second, micros) in UTC.
fn civil(t: SystemTime) -> (i64, u32, u32, u64, u64, u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros(),
    )
}

/// `2026-12-02T01:23:45.123456Z`
pub fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, us) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z")
}

/// `20261202_012345.123456` (the original's file-name stamp, in UTC).
fn file_stamp(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, us) = civil(t);
    format!("{y:04}{mo:02}{d:02}_{h:02}{mi:02}{s:02}.{us:06}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_civil_time() {
        let t = |s: u64, us: u64| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_micros(us);
        assert_eq!(rfc3339(t(0, 0)), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(t(951_782_400, 5)), "2000-02-29T00:00:00.000005Z");
        assert_eq!(
            rfc3339(t(1_796_174_625, 123_456)),
            "2026-12-02T01:23:45.123456Z"
        );
        assert_eq!(
            file_stamp(t(1_796_174_625, 123_456)),
            "20261202_012345.123456"
        );
    }

    #[test]
    fn a_full_queue_refuses_the_record_and_frees_up_as_the_writer_catches_up() {
        // The writer signals each record it takes, then waits for `go` before taking the next.
        let (took_tx, took) = mpsc::channel::<()>();
        let (go, go_rx) = mpsc::channel::<()>();
        let a = Auditor::with_writer((true, false, false), 2, move |_| {
            let _ = took_tx.send(());
            let _ = go_rx.recv();
        })
        .unwrap();
        a.record("masker", json!({})).unwrap();
        took.recv().unwrap(); // the writer holds record 1 and waits
        a.record("masker", json!({})).unwrap();
        a.record("masker", json!({})).unwrap();
        assert_eq!(a.record("masker", json!({})), Err(AuditFull { queue: 2 }));
        let e: crate::errors::RouterError = AuditFull { queue: 2 }.into();
        assert_eq!(actix_web::ResponseError::status_code(&e).as_u16(), 503);
        assert!(e.to_string().starts_with("the audit cannot keep up"), "{e}");
        go.send(()).unwrap();
        took.recv().unwrap(); // record 1 written, record 2 taken: one place free
        a.record("masker", json!({})).unwrap();
        for _ in 0..3 {
            go.send(()).unwrap();
        }
    }

    #[test]
    fn a_missing_or_bad_key_is_a_start_up_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let not_key = dir.path().join("not-a-key.asc");
        std::fs::write(&not_key, "hello").unwrap();
        for (path, want) in [
            (dir.path().join("absent.asc"), "cannot read the audit key"),
            (not_key, "not an OpenPGP public key"),
        ] {
            let vars = [
                ("LLM_ROUTER_MASKING_WITH_AUDIT", "1".to_string()),
                (KEY_VAR, path.display().to_string()),
                (DIR_VAR, dir.path().join("out").display().to_string()),
            ];
            let get = |n: &str| {
                vars.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let mut errs = Vec::new();
            assert!(AuditSettings::from_vars(&get, &mut errs).is_none());
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert!(
                errs[0].starts_with(&format!("{KEY_VAR}: {}", path.display())),
                "{errs:?}"
            );
            assert!(errs[0].contains(want), "{errs:?}");
        }
        let mut errs = Vec::new();
        assert!(AuditSettings::from_vars(&|_| String::new(), &mut errs).is_none());
        assert!(errs.is_empty(), "no audit on, no key needed");
    }
}
