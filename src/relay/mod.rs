//! The request's path through the router, top to bottom:
//!
//! 1. **read** the client's body (≤ `LLM_ROUTER_MAX_REQUEST_BODY_SIZE`);
//! 2. **request stages** ([`stages`]): the pipeline's seam — utils plugins, guardrails, masking;
//! 3. **plan** ([`plan`]): parse what routing needs, once; per attempt, decide what goes to the
//!    chosen provider's wire (passthrough or conversion) and carry that decision ([`plan::Route`])
//!    with the committed response;
//! 4. **attempts** ([`attempt`]): choose a provider (a `Lease`), send, wait for the commit point,
//!    fail over before it;
//! 5. **respond** ([`respond`]): the answer through [`body::RelayBody`] (passthrough or
//!    frame-by-frame conversion, then the frame stages), or read whole and converted;
//! 6. **finish** ([`finish`]): the one place that records the outcome and metrics and lets the
//!    lease go (exactly once, on every path).
//!
//! Handlers only pick the client API and call [`run`].

mod attempt;
pub mod body;
pub mod client;
mod explain;
mod finish;
pub mod h1;
pub mod plan;
mod respond;
mod resume;
pub mod stages;

use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};

pub use attempt::provider_message;
pub use explain::HEADER as DECISION_HEADER;
pub use plan::{ClientApi, Ingress};
pub use respond::{MODEL_HEADER, PROVIDER_HEADER};

use crate::errors::RouterError;
use crate::handlers::{read_body, request_id, AppState};

/// One proxied request, as the attempts see it.
pub struct Call<'a> {
    pub plan: &'a plan::Plan<'a>,
    /// What the request stages learned, for the response stages.
    pub ctx: &'a stages::RequestContext,
    pub request_id: &'a str,
    pub started: Instant,
    /// Bound on the whole client request (`LLM_ROUTER_TIMEOUT`), if any.
    pub deadline: Option<Instant>,
    pub external_timeout: Duration,
    /// The client's request body (for a stream continuation; empty for a built request).
    pub raw: &'a bytes::Bytes,
    /// The request's cache-affinity session, when affinity is on and it has one.
    pub session: Option<llm_router_actors::routing::SessionKey>,
    /// Send to `http://` providers through awc too (`LLM_ROUTER_UPSTREAM_AWC`), not `h1.rs`.
    pub upstream_awc: bool,
}

static NO_BODY: bytes::Bytes = bytes::Bytes::new();

/// Serves one request of a proxied client API; errors are rendered in the client's dialect.
pub async fn run(
    api: ClientApi,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    client: web::Data<awc::Client>,
) -> HttpResponse {
    match serve(api, &req, payload, &state, &client).await {
        Ok(r) => r,
        Err(e) => e.render(api.dialect()),
    }
}

/// Runs a request the router built itself (the built-in endpoints) on the model's providers, as
/// a converted OpenAI chat request runs: failover, fallbacks, the answer as OpenAI chat JSON, or
/// SSE chunks when `req.stream`. `ctx`: what the request stages learned about the client's
/// request, for the response stages (restore, response guardrails).
pub async fn run_built(
    state: &AppState,
    client: &awc::Client,
    request_id: &str,
    started: Instant,
    mut req: crate::dialects::canonical::Request,
    ctx: &stages::RequestContext,
) -> Result<HttpResponse, RouterError> {
    let s = &state.settings;
    // `model: "auto"` of a built-in request: the choice joins the caller's context (a copy,
    // made only then; the caller's per-text calls share theirs).
    let with_auto;
    let ranking = (s.profiles.enabled).then(|| (&*state.profiles, s.models.current()));
    let ctx = match crate::smart::stage::choose_built(&s.smart, ranking, &mut req) {
        Some(auto) => {
            with_auto = stages::RequestContext {
                restore: ctx.restore.clone(),
                endpoint: ctx.endpoint.clone(),
                builtin: ctx.builtin,
                auto: Some(auto),
            };
            &with_auto
        }
        None => ctx,
    };
    let session = s
        .smart
        .affinity
        .and_then(|_| crate::smart::session::of_built(&req));
    let plan = plan::Plan::built(req);
    let call = Call {
        plan: &plan,
        ctx,
        request_id,
        started,
        deadline: s.request_timeout.map(|t| started + t),
        external_timeout: s.external_timeout,
        upstream_awc: s.upstream_awc,
        raw: &NO_BODY,
        session,
    };
    let committed = attempt::failover(client, state, &call).await?;
    respond::respond(committed, state, client, &call).await
}

/// Runs a client-shaped body the router made itself (RAG's embedding calls, say) on its model's
/// providers, without the request stages: failover and fallbacks as for any request; the answer
/// as the client API `api` would get it.
pub async fn run_body(
    state: &AppState,
    client: &awc::Client,
    api: ClientApi,
    request_id: &str,
    body: bytes::Bytes,
) -> Result<HttpResponse, RouterError> {
    let started = Instant::now();
    let s = &state.settings;
    let plan = plan::Plan::new(api, &body)?;
    let ctx = stages::RequestContext::default();
    let call = Call {
        plan: &plan,
        ctx: &ctx,
        request_id,
        started,
        deadline: s.request_timeout.map(|t| started + t),
        external_timeout: s.external_timeout,
        upstream_awc: s.upstream_awc,
        raw: &body,
        // The router's own calls (embeddings) have no conversation to keep on one replica.
        session: None,
    };
    let committed = attempt::failover(client, state, &call).await?;
    respond::respond(committed, state, client, &call).await
}

async fn serve(
    api: ClientApi,
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    client: &awc::Client,
) -> Result<HttpResponse, RouterError> {
    let started = Instant::now();
    let s = &state.settings;
    let mut body = read_body(req, payload, s.max_body).await?;
    // From the body as the client sent it: the bytes its next turn repeats.
    let session = match (api, s.smart.affinity) {
        (ClientApi::Generate(_), Some(_)) => crate::smart::session::of_request(req, &body),
        _ => None,
    };
    let mut ctx = stages::RequestContext {
        endpoint: req.path().to_string(),
        ..Default::default()
    };
    state
        .stages
        .run_request(api, client, &mut body, &mut ctx)
        .await?;
    let body = body.freeze();
    let plan = plan::Plan::new(api, &body)?;
    let rid = request_id(req);
    let call = Call {
        plan: &plan,
        ctx: &ctx,
        request_id: &rid,
        started,
        deadline: s.request_timeout.map(|t| started + t),
        external_timeout: s.external_timeout,
        upstream_awc: s.upstream_awc,
        raw: &body,
        session,
    };
    let committed = attempt::failover(client, state, &call).await?;
    respond::respond(committed, state, client, &call).await
}
