//! The relay's two seams for the pipeline (SPEC §6, §7), in plain sight:
//!
//! - **request stages** run on the request body before a provider is chosen (utils plugins such
//!   as the auto-model router and RAG, then request guardrails, then masking — in that order).
//!   A stage may rewrite the body or refuse the request; a stage that fails refuses (fail closed),
//!   it never skips itself.
//! - **frame stages** run on every chunk on its way to the client, after conversion to the
//!   client's dialect (unmasking, response guardrails, stream continuation). A stage that fails
//!   ends the response with the dialect's in-band error, never forwards what it could not check.
//! - the **gate** (at most one, after the frame stages) is their asynchronous variant: it holds
//!   the output back and releases it only once an asynchronous check (the response guardrails)
//!   has passed it — in windows while a stream runs, whole at its end. A refusal or a failed
//!   check ends the response with the gate's in-band refusal frame; what was held is dropped.
//!   Without a gate the body does no extra work.

use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::future::LocalBoxFuture;
use llm_router_masker::Mappings;

use super::plan::ClientApi;
use crate::errors::RouterError;

/// What request stages learned about one request that its response stages need (the only state
/// they share; it lives and dies with the request).
#[derive(Debug, Default)]
pub struct RequestContext {
    /// The request was masked and the client asked for the originals back: placeholder →
    /// original, for this request only.
    pub restore: Option<Mappings>,
    /// The request's path (for the audit records).
    pub endpoint: String,
    /// A built-in endpoint's payload: its routing field is `model_name` (kept unmasked).
    pub builtin: bool,
    /// The model `simple_semantic_routing` chose for `"model": "auto"`.
    pub auto: Option<crate::smart::stage::AutoChoice>,
}

/// One step of the request side (see the module docs).
pub trait RequestStage: Send + Sync {
    /// Rewrites `body` (the client's JSON request) or refuses the request. `client` is the
    /// worker's HTTP client, for stages that call a plugin service; such a stage bounds its
    /// calls with its own timeout.
    fn apply<'a>(
        &'a self,
        api: ClientApi,
        client: &'a awc::Client,
        body: &'a mut BytesMut,
        ctx: &'a mut RequestContext,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>>;
}

/// One step of the response side, for one response.
pub trait FrameStage {
    /// What the client receives instead of `chunk` (possibly less, holding bytes back).
    fn frame(&mut self, chunk: Bytes) -> Result<Bytes, String>;
    /// What is still held back when the provider's answer ended.
    fn end(&mut self) -> Result<Bytes, String>;
}

/// Makes the frame stage of a response, when this response needs one.
pub trait FrameStageFactory: Send + Sync {
    fn start(&self, api: ClientApi, ctx: &RequestContext) -> Option<Box<dyn FrameStage>>;
}

/// The asynchronous last step of the response side, for one streamed response (see the module
/// docs). The body calls [`Gate::hold`] with every piece of output, [`Gate::close`] when the
/// answer is complete, and polls [`Gate::poll_release`] for what may go to the client.
pub trait Gate {
    /// Output (after the frame stages) to hold until it has been checked.
    fn hold(&mut self, out: Bytes);
    /// The answer is complete: whatever is held is checked, however short.
    fn close(&mut self);
    /// Whether the body should read more from the provider now (false while the gate holds
    /// as much as it may).
    fn wants_input(&self) -> bool;
    /// `Ready(Ok(Some(bytes)))`: checked output for the client; `Ready(Ok(None))`: nothing to
    /// release and no check running (after [`Gate::close`]: everything went out); `Pending`: a
    /// check is running (the waker is registered); `Ready(Err(frame))`: refused or the check
    /// failed — `frame` is the in-band refusal in the client's dialect, the response ends.
    fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, Bytes>>;
}

/// Makes the gate of a response, when this response needs one.
pub trait GateFactory: Send + Sync {
    /// A gate for a stream answer.
    fn start(
        &self,
        api: ClientApi,
        ctx: &RequestContext,
        client: &awc::Client,
    ) -> Option<Box<dyn Gate>>;
    /// Checks a whole (non-stream) answer `body` before it is sent; `Err` is the client's error.
    fn check_whole<'a>(
        &'a self,
        api: ClientApi,
        ctx: &'a RequestContext,
        client: &'a awc::Client,
        body: &'a [u8],
    ) -> Option<LocalBoxFuture<'a, Result<(), RouterError>>>;
}

/// The pipeline, in order.
#[derive(Default)]
pub struct Stages {
    pub request: Vec<Box<dyn RequestStage>>,
    pub frames: Vec<Box<dyn FrameStageFactory>>,
    pub gate: Option<Box<dyn GateFactory>>,
}

impl Stages {
    /// Runs every request stage in order; the first refusal ends the request.
    pub async fn run_request(
        &self,
        api: ClientApi,
        client: &awc::Client,
        body: &mut BytesMut,
        ctx: &mut RequestContext,
    ) -> Result<(), RouterError> {
        for s in &self.request {
            s.apply(api, client, body, ctx).await?;
        }
        Ok(())
    }

    /// The frame stages of one response (empty: the body forwards chunks untouched).
    pub fn start_frames(&self, api: ClientApi, ctx: &RequestContext) -> Vec<Box<dyn FrameStage>> {
        self.frames
            .iter()
            .filter_map(|f| f.start(api, ctx))
            .collect()
    }

    /// The gate of one streamed response, if it needs one.
    pub fn start_gate(
        &self,
        api: ClientApi,
        ctx: &RequestContext,
        client: &awc::Client,
    ) -> Option<Box<dyn Gate>> {
        self.gate.as_ref()?.start(api, ctx, client)
    }

    /// Checks a whole answer with the gate (when there is one) before it is sent.
    pub async fn check_whole(
        &self,
        api: ClientApi,
        ctx: &RequestContext,
        client: &awc::Client,
        body: &[u8],
    ) -> Result<(), RouterError> {
        match self
            .gate
            .as_ref()
            .and_then(|g| g.check_whole(api, ctx, client, body))
        {
            Some(check) => check.await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::plan::Ingress;

    struct Append(&'static str);
    impl RequestStage for Append {
        fn apply<'a>(
            &'a self,
            _: ClientApi,
            _: &'a awc::Client,
            body: &'a mut BytesMut,
            _: &'a mut RequestContext,
        ) -> LocalBoxFuture<'a, Result<(), RouterError>> {
            body.extend_from_slice(self.0.as_bytes());
            Box::pin(async { Ok(()) })
        }
    }
    struct Refuse;
    impl RequestStage for Refuse {
        fn apply<'a>(
            &'a self,
            _: ClientApi,
            _: &'a awc::Client,
            _: &'a mut BytesMut,
            _: &'a mut RequestContext,
        ) -> LocalBoxFuture<'a, Result<(), RouterError>> {
            Box::pin(async { Err(RouterError::bad_request("refused", None)) })
        }
    }

    #[actix_rt::test]
    async fn request_stages_run_in_order_and_the_first_refusal_stops_the_rest() {
        let client = &awc::Client::default();
        let api = ClientApi::Generate(Ingress::OpenAiChat);
        let stages = Stages {
            request: vec![Box::new(Append("a")), Box::new(Append("b"))],
            ..Default::default()
        };
        let mut body = BytesMut::new();
        let ctx = &mut RequestContext::default();
        stages
            .run_request(api, client, &mut body, ctx)
            .await
            .unwrap();
        assert_eq!(&body[..], b"ab");
        let stages = Stages {
            request: vec![
                Box::new(Append("a")),
                Box::new(Refuse),
                Box::new(Append("c")),
            ],
            ..Default::default()
        };
        let mut body = BytesMut::new();
        assert!(stages
            .run_request(api, client, &mut body, ctx)
            .await
            .is_err());
        assert_eq!(&body[..], b"a", "nothing after the refusal ran");
    }
}
