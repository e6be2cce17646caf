//! The relay's two seams for the pipeline (SPEC §6, §7), in plain sight:
//!
//! - **request stages** run on the request body before a provider is chosen (utils plugins such
//!   as the auto-model router and RAG, then request guardrails, then masking — in that order).
//!   A stage may rewrite the body or refuse the request; a stage that fails refuses (fail closed),
//!   it never skips itself.
//! - **frame stages** run on every chunk on its way to the client, after conversion to the
//!   client's dialect (unmasking, response guardrails, stream continuation). A stage that fails
//!   ends the response with the dialect's in-band error, never forwards what it could not check.

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

/// The pipeline, in order.
#[derive(Default)]
pub struct Stages {
    pub request: Vec<Box<dyn RequestStage>>,
    pub frames: Vec<Box<dyn FrameStageFactory>>,
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
            frames: Vec::new(),
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
            frames: Vec::new(),
        };
        let mut body = BytesMut::new();
        assert!(stages
            .run_request(api, client, &mut body, ctx)
            .await
            .is_err());
        assert_eq!(&body[..], b"a", "nothing after the refusal ran");
    }
}
