//! `simple_semantic_routing` as a request stage (SPEC §7): a generation request for `"auto"` (or
//! for `LLM_ROUTER_EXTERNAL_MODEL_NAME`) gets the model the semantic router chooses from its last
//! user text, written into the body's `model` before guardrails, masking and provider choice see
//! it — from there on it is an ordinary request for that model (its fallbacks, its providers). The
//! choice is kept in the request context for the decision summary.
//!
//! With profiles on (`LLM_ROUTER_PROFILES`), the semantic router still reads the prompt's intent
//! and complexity, but the model is the best of its pool by [`Profiles::rank`] (category score ×
//! complexity fit × measured speed, `profiles::rank`'s module docs) for the intent's category —
//! so a model that measures slow or fails its probes on this hardware loses to one that does
//! not. A prompt with no text keeps the default model.
//!
//! Other requests cost one scan of the body's top-level keys (`model` is compared, nothing
//! else is parsed).

use std::sync::Arc;

use bytes::BytesMut;
use futures_util::future::LocalBoxFuture;
use llm_router_actors::config::{LiveModels, ModelsConfig};
use llm_router_actors::routing::semantic::Decision;
use llm_router_actors::routing::{DecisionSummary, SemanticRouter};
use serde_json::Value;

use crate::dialects::canonical::{Request, Role};
use crate::dialects::raw::{Put, RawObject};
use crate::errors::RouterError;
use crate::profiles::{rank::category_of, Profiles};
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
    /// When profiles ranked the pool: the category ranked for and the winner's score.
    pub ranked: Option<(&'static str, f64)>,
}

impl AutoChoice {
    fn new(requested: &str, d: &Decision<'_>) -> AutoChoice {
        AutoChoice {
            requested: requested.to_string(),
            model: d.model.to_string(),
            intent: d.intent.to_string(),
            complexity: d.complexity.as_str(),
            tokens: d.estimated_tokens,
            ranked: None,
        }
    }

    /// Its fields in the decision summary.
    pub fn explain(&self, s: &mut DecisionSummary) {
        s.push("auto", &self.model)
            .push("intent", &self.intent)
            .push("complexity", self.complexity)
            .push("tokens", self.tokens);
        if let Some((category, score)) = self.ranked {
            s.push("ranked", category)
                .push("score", format_args!("{score:.3}"));
        }
    }
}

/// What ranks the auto pool when profiles are on: the measurements and the models in force.
#[derive(Clone)]
pub struct Ranking {
    pub profiles: Arc<Profiles>,
    pub models: LiveModels,
}

/// The choice for `text` of a request for `requested`: the semantic router's, then (with
/// `ranking`) the best of its pool for the intent's category and the prompt's complexity.
pub fn choose(
    router: &SemanticRouter,
    ranking: Option<(&Profiles, &'static ModelsConfig)>,
    requested: &str,
    text: &str,
) -> AutoChoice {
    let d = router.decide(text);
    let mut choice = AutoChoice::new(requested, &d);
    let Some((profiles, models)) = ranking.filter(|_| d.estimated_tokens > 0) else {
        return choice;
    };
    let pool: Vec<&str> = router.models().iter().map(String::as_str).collect();
    let category = category_of(d.intent);
    if let Some(best) = profiles.best(models, &pool, category, d.complexity) {
        choice.model = best.model;
        choice.ranked = Some((category, best.score));
    }
    choice
}

/// The stage; built only when `simple_semantic_routing` is in the pipeline.
pub struct SemanticStage {
    pub router: Arc<SemanticRouter>,
    pub settings: super::SmartSettings,
    /// Profiles on: rank the pool.
    pub ranking: Option<Ranking>,
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
        let ranking = self
            .ranking
            .as_ref()
            .map(|r| (&*r.profiles, r.models.current()));
        let choice = choose(&self.router, ranking, &requested, &text);
        let rewritten = raw.to_bytes(&[("model", Put::Str(&choice.model))], |_| false);
        tracing::debug!(requested = %requested, model = %choice.model, intent = %choice.intent,
            complexity = choice.complexity, ranked = ?choice.ranked, "model auto");
        ctx.auto = Some(choice);
        body.clear();
        body.extend_from_slice(&rewritten);
        Ok(())
    }
}

/// The same choice for a request the router built (a built-in endpoint's `model_name`);
/// `ranking` as for [`choose`].
pub fn choose_built(
    smart: &super::SmartSettings,
    ranking: Option<(&Profiles, &'static ModelsConfig)>,
    req: &mut Request,
) -> Option<AutoChoice> {
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
    let choice = choose(router, ranking, &req.model, &text);
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
