//! `simple_semantic_routing` as a request stage (SPEC §7): a generation request for `"auto"` (or
//! for `LLM_ROUTER_EXTERNAL_MODEL_NAME`) gets the model the semantic router chooses from its last
//! user text, written into the body's `model` before guardrails, masking and provider choice see
//! it — from there on it is an ordinary request for that model (its fallbacks, its providers). The
//! choice is kept in the request context for the decision summary.
//!
//! Other requests cost one scan of the body's top-level keys (`model` is compared, nothing
//! else is parsed).

use std::sync::Arc;

use bytes::BytesMut;
use futures_util::future::LocalBoxFuture;
use llm_router_actors::routing::semantic::Decision;
use llm_router_actors::routing::{DecisionSummary, SemanticRouter};
use serde_json::Value;

use crate::dialects::canonical::{Request, Role};
use crate::dialects::raw::RawObject;
use crate::errors::RouterError;
use crate::relay::stages::{RequestContext, RequestStage};
use crate::relay::ClientApi;

/// What the semantic router chose for one request.
#[derive(Clone, Debug, PartialEq)]
pub struct AutoChoice {
    /// The name the client asked for (`auto`, or the external model name).
    pub requested: String,
    pub model: String,
    pub intent: String,
    pub complexity: &'static str,
    pub tokens: usize,
}

impl AutoChoice {
    fn new(requested: &str, d: &Decision<'_>) -> AutoChoice {
        AutoChoice {
            requested: requested.to_string(),
            model: d.model.to_string(),
            intent: d.intent.to_string(),
            complexity: d.complexity.as_str(),
            tokens: d.estimated_tokens,
        }
    }

    /// Its fields in the decision summary.
    pub fn explain(&self, s: &mut DecisionSummary) {
        s.push("auto", &self.model)
            .push("intent", &self.intent)
            .push("complexity", self.complexity)
            .push("tokens", self.tokens);
    }
}

/// The stage; built only when `simple_semantic_routing` is in the pipeline.
pub struct SemanticStage {
    pub router: Arc<SemanticRouter>,
    pub settings: super::SmartSettings,
}

impl SemanticStage {
    fn rewrite(&self, body: &mut BytesMut, ctx: &mut RequestContext) -> Result<(), RouterError> {
        // A body that does not parse is the plan's to reject, with its own message.
        let Ok(raw) = RawObject::parse(body) else {
            return Ok(());
        };
        let requested = match raw.get("model").map(serde_json::from_str::<String>) {
            Some(Ok(m)) if self.settings.is_auto(&m) => m,
            _ => return Ok(()),
        };
        let doc: Value = serde_json::from_slice(body)
            .map_err(|e| RouterError::bad_request(format!("malformed JSON: {e}"), None))?;
        let text = super::text::last_user_text(&doc);
        let d = self.router.decide(&text);
        let model = serde_json::to_string(d.model).unwrap_or_default();
        let rewritten = raw.to_bytes(&[("model", &model)], &[]);
        tracing::debug!(requested = %requested, model = d.model, intent = d.intent,
            complexity = %d.complexity, "model auto");
        ctx.auto = Some(AutoChoice::new(&requested, &d));
        body.clear();
        body.extend_from_slice(&rewritten);
        Ok(())
    }
}

/// The same choice for a request the router built (a built-in endpoint's `model_name`).
pub fn choose_built(smart: &super::SmartSettings, req: &mut Request) -> Option<AutoChoice> {
    let router = smart
        .semantic
        .as_ref()
        .filter(|_| smart.is_auto(&req.model))?;
    let text = req
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.joined_text())
        .unwrap_or_default();
    let d = router.decide(&text);
    let choice = AutoChoice::new(&req.model, &d);
    req.model = choice.model.clone();
    Some(choice)
}

impl RequestStage for SemanticStage {
    fn apply<'a>(
        &'a self,
        api: ClientApi,
        _: &'a awc::Client,
        body: &'a mut BytesMut,
        ctx: &'a mut RequestContext,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>> {
        let r = match api {
            ClientApi::Generate(_) => self.rewrite(body, ctx),
            ClientApi::Embed(_) => Ok(()),
        };
        Box::pin(std::future::ready(r))
    }
}
