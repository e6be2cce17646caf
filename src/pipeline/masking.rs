//! Masking (SPEC §6): every string value of a request's JSON body is masked with the in-process
//! `fast_masker` before a provider is chosen — when `LLM_ROUTER_FORCE_MASKING` (or its older name
//! `LLM_ROUTER_FORCE_ANONYMISATION`) is on, or the body says `"anonymize": true`. The mappings
//! live only for that request. With `LLM_ROUTER_MASKING_RESTORE` or `"anonymize": "restore"` the
//! originals are put back into what the client receives ([`RestoreFactory`]): every dialect's
//! answer and stream frames are JSON, and placeholders (`{TAG_n}`) need no escaping inside JSON
//! strings, so the restorer works on the bytes the client gets — a placeholder split across two
//! frames included — and writes each original JSON-escaped.
//!
//! Fail closed: a request whose body asks for masking but cannot be read is refused (400), and a
//! masker that cannot run blocks the request; nothing is ever sent unmasked.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use llm_router_masker::{FastMasker, Mappings, MaskSession, Restorer};
use serde_json::Value;

use crate::errors::RouterError;
use crate::relay::stages::{FrameStage, FrameStageFactory, RequestContext, RequestStage};
use crate::relay::ClientApi;
use crate::settings::parse_bool;

/// A masking plugin of `LLM_ROUTER_MASKING_STRATEGY_PIPELINE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Masker {
    FastMasker,
}

#[derive(Clone, Debug)]
pub struct MaskingSettings {
    /// Mask every request, asked for or not.
    pub force: bool,
    /// Put the originals back into every masked request's answer.
    pub restore: bool,
    pub pipeline: Vec<Masker>,
}

impl MaskingSettings {
    /// Reads the masking variables; problems go to `errs` (start-up errors).
    pub fn from_vars(get: &dyn Fn(&str) -> String, errs: &mut Vec<String>) -> MaskingSettings {
        let force = parse_bool(&get("LLM_ROUTER_FORCE_MASKING"))
            || parse_bool(&get("LLM_ROUTER_FORCE_ANONYMISATION"));
        let mut pipeline = Vec::new();
        let raw = get("LLM_ROUTER_MASKING_STRATEGY_PIPELINE");
        for name in raw
            .split([',', '|', ' '])
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            match name {
                "fast_masker" => pipeline.push(Masker::FastMasker),
                // Fail closed: a configured masker that cannot run must stop the start, never be
                // skipped.
                "pii_masker" => errs.push(
                    "LLM_ROUTER_MASKING_STRATEGY_PIPELINE: pii_masker is not available in this \
                     build; refusing to start rather than send requests it should have masked"
                        .into(),
                ),
                other => errs.push(format!(
                    "LLM_ROUTER_MASKING_STRATEGY_PIPELINE: unknown masker \"{other}\"; valid: fast_masker, pii_masker"
                )),
            }
        }
        if pipeline.is_empty() {
            pipeline.push(Masker::FastMasker);
        }
        MaskingSettings {
            force,
            restore: parse_bool(&get("LLM_ROUTER_MASKING_RESTORE")),
            pipeline,
        }
    }
}

/// The compiled maskers, shared by every worker.
pub struct Masking {
    settings: MaskingSettings,
    fast: FastMasker,
}

impl Masking {
    pub fn new(settings: &MaskingSettings) -> Masking {
        Masking {
            settings: settings.clone(),
            fast: FastMasker::new(),
        }
    }

    /// `P/fast_text_mask`: `{"text": masked, "mappings": {placeholder: original}}`.
    pub fn fast_text_mask(&self, text: &str) -> Value {
        self.fast.fast_text_mask(text)
    }

    /// Masks every string value of `doc` but its top-level `model` (routing needs it); returns
    /// the request's mappings.
    fn mask_document(&self, doc: &mut serde_json::Map<String, Value>) -> MaskSession {
        let mut session = MaskSession::new();
        let model = doc.remove("model");
        let mut value = Value::Object(std::mem::take(doc));
        for m in &self.settings.pipeline {
            match m {
                Masker::FastMasker => self.fast.mask_json(&mut value, &mut session),
            }
        }
        if let Value::Object(masked) = value {
            *doc = masked;
        }
        if let Some(model) = model {
            doc.insert("model".into(), model);
        }
        session
    }
}

/// The request-side stage: masks when forced or asked for.
pub struct MaskingStage(pub Arc<Masking>);

/// What the body's `anonymize` field asks for.
fn asked(v: Option<&Value>) -> Result<(bool, bool), RouterError> {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok((false, false)),
        Some(Value::Bool(true)) => Ok((true, false)),
        Some(Value::String(s)) if s == "restore" => Ok((true, true)),
        Some(_) => Err(RouterError::bad_request(
            "\"anonymize\" must be true, false or \"restore\"",
            Some("anonymize"),
        )),
    }
}

impl RequestStage for MaskingStage {
    fn apply(
        &self,
        _api: ClientApi,
        body: &mut BytesMut,
        ctx: &mut RequestContext,
    ) -> Result<(), RouterError> {
        let s = &self.0.settings;
        // The fast path: nothing to do for a body that neither must nor asks to be masked.
        static ANONYMIZE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"anonymize\""));
        if !s.force && ANONYMIZE.find(body).is_none() {
            return Ok(());
        }
        let mut doc = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            // Not a JSON object: the plan refuses it with the precise message; nothing is sent.
            _ => return Ok(()),
        };
        let (asked, restore) = asked(doc.get("anonymize"))?;
        doc.remove("anonymize");
        if s.force || asked {
            let session = self.0.mask_document(&mut doc);
            if (s.restore || restore) && !session.is_empty() {
                let escaped = session
                    .mappings()
                    .iter()
                    .map(|(p, o)| (p.clone(), json_escaped(o)));
                ctx.restore = Some(Mappings::new(escaped));
            }
        }
        let bytes = serde_json::to_vec(&Value::Object(doc))
            .map_err(|e| RouterError::Internal(format!("re-serialising a masked request: {e}")))?;
        body.clear();
        body.extend_from_slice(&bytes);
        Ok(())
    }
}

/// `s` as it is written inside a JSON string (without the quotes).
fn json_escaped(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted[1..quoted.len().saturating_sub(1)].to_string()
}

/// Starts a [`RestoreStage`] for responses whose request asked for the originals back.
pub struct RestoreFactory;

impl FrameStageFactory for RestoreFactory {
    fn start(&self, _api: ClientApi, ctx: &RequestContext) -> Option<Box<dyn FrameStage>> {
        let mappings = ctx.restore.clone()?;
        Some(Box::new(RestoreStage {
            restorer: Restorer::new(mappings),
            partial: Vec::new(),
        }))
    }
}

/// Puts originals back into the bytes on their way to the client, holding back only what may
/// still be the start of a placeholder (and a UTF-8 sequence cut between two chunks).
pub struct RestoreStage {
    restorer: Restorer,
    partial: Vec<u8>,
}

impl FrameStage for RestoreStage {
    fn frame(&mut self, chunk: Bytes) -> Result<Bytes, String> {
        self.partial.extend_from_slice(&chunk);
        let valid = match std::str::from_utf8(&self.partial) {
            Ok(_) => self.partial.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => return Err("the answer is not valid UTF-8".into()),
        };
        let text = std::str::from_utf8(&self.partial[..valid]).expect("checked above");
        let out = self.restorer.push(text);
        self.partial.drain(..valid);
        Ok(Bytes::from(out))
    }

    fn end(&mut self) -> Result<Bytes, String> {
        if !self.partial.is_empty() {
            return Err("the answer ended inside a UTF-8 sequence".into());
        }
        let rest = std::mem::replace(&mut self.restorer, Restorer::new(Mappings::default()));
        Ok(Bytes::from(rest.finish()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restorer_puts_escaped_originals_back_across_any_split() {
        let mappings = Mappings::new([("{EMAIL_1}", json_escaped("jan\"x@firma.pl"))]);
        let sent = "data: {\"content\":\"write to {EMAIL_1} — ż\"}\n\n";
        let want = "data: {\"content\":\"write to jan\\\"x@firma.pl — ż\"}\n\n";
        let bytes = sent.as_bytes();
        for split in 1..bytes.len() {
            let mut st = RestoreStage {
                restorer: Restorer::new(mappings.clone()),
                partial: Vec::new(),
            };
            let mut out = Vec::new();
            for part in [&bytes[..split], &bytes[split..]] {
                out.extend_from_slice(&st.frame(Bytes::copy_from_slice(part)).unwrap());
            }
            out.extend_from_slice(&st.end().unwrap());
            assert_eq!(String::from_utf8(out).unwrap(), want, "split at {split}");
        }
    }

    #[test]
    fn anonymize_takes_true_false_or_restore() {
        assert_eq!(asked(None).unwrap(), (false, false));
        assert_eq!(asked(Some(&Value::Bool(true))).unwrap(), (true, false));
        assert_eq!(
            asked(Some(&Value::String("restore".into()))).unwrap(),
            (true, true)
        );
        let e = asked(Some(&Value::String("yes".into()))).unwrap_err();
        assert!(e.to_string().contains("\"anonymize\" must be"), "{e}");
    }
}
