//! Masking (SPEC §6): every string value of a request's JSON body is masked with the in-process
//! `fast_masker` before a provider is chosen — when `LLM_ROUTER_FORCE_MASKING` (or its older name
//! `LLM_ROUTER_FORCE_ANONYMISATION`) is on, or the body says `"anonymize": true`. The mappings
//! live only for that request. With `LLM_ROUTER_MASKING_RESTORE` or `"anonymize": "restore"` the
//! originals are put back into what the client receives ([`RestoreFactory`]): every dialect's
//! answer and stream frames are JSON, and placeholders (`{TAG_n}`) need no escaping inside JSON
//! strings, so the restorer works on the bytes the client gets — a placeholder split across two
//! frames included — and writes each original JSON-escaped.
//!
//! With `pii_masker` in `LLM_ROUTER_MASKING_STRATEGY_PIPELINE` the document (without its
//! `model`) is POSTed to `{LLM_ROUTER_MASKER_PII_HOST}/api/maskers/pii`, which answers
//! `{"anonymized": <the document masked>, "mappings": {placeholder: original}}`; the plugins run
//! in the variable's order, each on the previous one's output.
//!
//! Fail closed: a request whose body asks for masking but cannot be read is refused (400), and a
//! masker that cannot run blocks the request (503 naming it) — down, timeout, non-2xx, not JSON,
//! or an `anonymized` that is missing, empty or not a document like the one sent. Nothing is
//! ever sent unmasked, and never an empty payload in place of the request.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::future::LocalBoxFuture;
use llm_router_masker::{FastMasker, Mappings, MaskSession, Restorer};
use serde_json::Value;

use super::services::{blocked, PluginError, Service};
use super::Shared;
use crate::errors::RouterError;
use crate::relay::stages::{FrameStage, FrameStageFactory, RequestContext, RequestStage};
use crate::relay::ClientApi;
use crate::settings::parse_bool;

/// A masking plugin of `LLM_ROUTER_MASKING_STRATEGY_PIPELINE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Masker {
    FastMasker,
    PiiMasker,
}

impl Masker {
    pub fn name(self) -> &'static str {
        match self {
            Masker::FastMasker => "fast_masker",
            Masker::PiiMasker => "pii_masker",
        }
    }
}

#[derive(Clone, Debug)]
pub struct MaskingSettings {
    /// Mask every request, asked for or not.
    pub force: bool,
    /// Put the originals back into every masked request's answer.
    pub restore: bool,
    pub pipeline: Vec<Masker>,
    /// The `pii_masker` service (`LLM_ROUTER_MASKER_PII_HOST`).
    pub pii_host: String,
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
            let m = match name {
                "fast_masker" => Masker::FastMasker,
                "pii_masker" => Masker::PiiMasker,
                other => {
                    errs.push(format!(
                        "LLM_ROUTER_MASKING_STRATEGY_PIPELINE: unknown masker \"{other}\"; valid: fast_masker, pii_masker"
                    ));
                    continue;
                }
            };
            if !pipeline.contains(&m) {
                pipeline.push(m);
            }
        }
        if pipeline.is_empty() {
            pipeline.push(Masker::FastMasker);
        }
        let pii_host = super::host(&get, "LLM_ROUTER_MASKER_PII_HOST", errs);
        // Fail closed: a configured masker that cannot run must stop the start, never be skipped.
        if pipeline.contains(&Masker::PiiMasker) && pii_host.is_empty() {
            errs.push(
                "LLM_ROUTER_MASKING_STRATEGY_PIPELINE: pii_masker needs its service: set \
                 LLM_ROUTER_MASKER_PII_HOST"
                    .into(),
            );
        }
        MaskingSettings {
            force,
            restore: parse_bool(&get("LLM_ROUTER_MASKING_RESTORE")),
            pipeline,
            pii_host,
        }
    }
}

/// The compiled maskers, shared by every worker.
pub struct Masking {
    settings: MaskingSettings,
    fast: FastMasker,
    pii: Option<Arc<Service>>,
    shared: Arc<Shared>,
}

/// What masking one request produced: placeholder → original, in issue order.
type MaskMappings = Vec<(String, String)>;

impl Masking {
    /// `pii`: the `pii_masker` service, present exactly when the pipeline names it.
    pub fn new(
        settings: &MaskingSettings,
        pii: Option<Arc<Service>>,
        shared: Arc<Shared>,
    ) -> Masking {
        assert_eq!(
            pii.is_some(),
            settings.pipeline.contains(&Masker::PiiMasker),
            "the pii_masker service goes with the pipeline naming it"
        );
        Masking {
            settings: settings.clone(),
            fast: FastMasker::new(),
            pii,
            shared,
        }
    }

    /// `P/fast_text_mask`: `{"text": masked, "mappings": {placeholder: original}}`.
    pub fn fast_text_mask(&self, text: &str) -> Value {
        self.fast.fast_text_mask(text)
    }

    /// The console's anonymizer: `text` through `fast_masker` and/or `pii_masker` (in that
    /// order); the masked text and placeholder → original. `pii` needs
    /// `LLM_ROUTER_MASKER_PII_HOST` (the pipeline's service, else one made for this call).
    pub async fn mask_text(
        &self,
        client: &awc::Client,
        text: &str,
        fast: bool,
        pii: bool,
        timeout: std::time::Duration,
    ) -> Result<(String, MaskMappings), RouterError> {
        let mut mappings = MaskMappings::new();
        let mut text = text.to_string();
        if fast {
            let mut session = MaskSession::new();
            let mut v = Value::String(text);
            self.fast.mask_json(&mut v, &mut session);
            text = v.as_str().unwrap_or_default().to_string();
            mappings.extend_from_slice(session.mappings());
        }
        if pii {
            let service = match &self.pii {
                Some(s) => s.clone(),
                None if !self.settings.pii_host.is_empty() => Arc::new(Service::new(
                    "pii_masker",
                    &self.settings.pii_host,
                    "api/maskers/pii",
                    timeout,
                )),
                None => {
                    return Err(RouterError::bad_request(
                        "the pii algorithm needs the pii_masker service: set LLM_ROUTER_MASKER_PII_HOST",
                        Some("algorithm"),
                    ))
                }
            };
            let doc = serde_json::json!({ "text": text });
            let (masked, found) = pii_mask(&service, client, doc)
                .await
                .map_err(|e| blocked(service.name, &e))?;
            text = masked["text"].as_str().unwrap_or_default().to_string();
            mappings.extend(found);
        }
        Ok((text, mappings))
    }

    /// Masks every string value of `doc` but its top-level `routing` field (`model`, or a
    /// built-in payload's `model_name`: routing needs it), with
    /// each masker of the pipeline in order; returns the request's mappings. On error `doc` may
    /// be half-masked: the caller drops the request.
    async fn mask_document(
        &self,
        client: &awc::Client,
        endpoint: &str,
        routing: &str,
        doc: &mut serde_json::Map<String, Value>,
    ) -> Result<MaskMappings, RouterError> {
        let mut mappings = MaskMappings::new();
        let model = doc.remove(routing);
        let mut value = Value::Object(std::mem::take(doc));
        let before = self.shared.audit.as_ref().map(|_| value.clone());
        for m in &self.settings.pipeline {
            match m {
                Masker::FastMasker => {
                    let mut session = MaskSession::new();
                    self.fast.mask_json(&mut value, &mut session);
                    mappings.extend_from_slice(session.mappings());
                }
                Masker::PiiMasker => {
                    let pii = self.pii.as_ref().expect("built with the pipeline");
                    match pii_mask(pii, client, value).await {
                        Ok((masked, found)) => {
                            value = masked;
                            mappings.extend(found);
                        }
                        Err(e) => {
                            self.shared.metrics.masker_incident(pii.name, e.kind());
                            tracing::warn!(masker = pii.name, error = %e, "masker failed: blocked");
                            return Err(blocked(pii.name, &e));
                        }
                    }
                }
            }
        }
        if !mappings.is_empty() {
            self.shared.metrics.masker_incident("pipeline", "masked");
        }
        if let Some(before) = before {
            let plugins: Vec<&str> = self.settings.pipeline.iter().map(|m| m.name()).collect();
            self.shared
                .audit_masking(endpoint, &plugins, &before, &value, &mappings)?;
        }
        if let Value::Object(masked) = value {
            *doc = masked;
        }
        if let Some(model) = model {
            doc.insert(routing.into(), model);
        }
        Ok(mappings)
    }
}

/// One `pii_masker` call: the masked document and its mappings, or why there are none. The
/// answer must carry an `anonymized` document of the same kind as the one sent (an object for
/// an object) — never an empty payload in its place — and `mappings`, when present, must map
/// strings to strings.
async fn pii_mask(
    pii: &Service,
    client: &awc::Client,
    doc: Value,
) -> Result<(Value, MaskMappings), PluginError> {
    let mut answer = pii.call(client, &doc).await?;
    let bad = |why: &str| PluginError::BadAnswer(why.to_string());
    let masked = match answer.get_mut("anonymized").map(Value::take) {
        Some(v @ Value::Object(_)) if doc.is_object() => v,
        Some(_) => return Err(bad("\"anonymized\" is not the request document")),
        None => return Err(bad("no \"anonymized\"")),
    };
    let mut found = MaskMappings::new();
    match answer.get("mappings") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (p, o) in m {
                let o = o.as_str().ok_or_else(|| bad("a mapping is not a string"))?;
                found.push((p.clone(), o.to_string()));
            }
        }
        Some(_) => return Err(bad("\"mappings\" is not an object")),
    }
    Ok((masked, found))
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
    fn apply<'a>(
        &'a self,
        _api: ClientApi,
        client: &'a awc::Client,
        body: &'a mut BytesMut,
        ctx: &'a mut RequestContext,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>> {
        Box::pin(self.mask(client, body, ctx))
    }
}

impl MaskingStage {
    async fn mask(
        &self,
        client: &awc::Client,
        body: &mut BytesMut,
        ctx: &mut RequestContext,
    ) -> Result<(), RouterError> {
        let s = &self.0.settings;
        // The fast path: nothing to do for a body that neither must nor asks to be masked.
        static ANONYMIZE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"anonymize\""));
        static MASK_PAYLOAD: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"mask_payload\""));
        if !s.force && ANONYMIZE.find(body).is_none() && MASK_PAYLOAD.find(body).is_none() {
            return Ok(());
        }
        let mut doc = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            // Not a JSON object: the plan refuses it with the precise message; nothing is sent.
            _ => return Ok(()),
        };
        let (asked, restore) = asked(doc.get("anonymize"))?;
        // The built-in endpoints' name for it (llm_router_lib), a boolean.
        let asked = asked || mask_payload(doc.get("mask_payload"))?;
        doc.remove("anonymize");
        doc.remove("mask_payload");
        let routing = if ctx.builtin { "model_name" } else { "model" };
        if s.force || asked {
            let mappings = self
                .0
                .mask_document(client, &ctx.endpoint, routing, &mut doc)
                .await?;
            if (s.restore || restore) && !mappings.is_empty() {
                let escaped = mappings.iter().map(|(p, o)| (p.clone(), json_escaped(o)));
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

/// What the body's `mask_payload` field asks for.
fn mask_payload(v: Option<&Value>) -> Result<bool, RouterError> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(RouterError::bad_request(
            "\"mask_payload\" must be true or false",
            Some("mask_payload"),
        )),
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
