//! The relay's two seams for the pipeline (SPEC §6, §7), in plain sight and empty today:
//!
//! - **request stages** run on the request body before a provider is chosen (utils plugins such
//!   as the auto-model router and RAG, then request guardrails, then masking — in that order).
//!   A stage may rewrite the body or refuse the request; a stage that fails refuses (fail closed),
//!   it never skips itself.
//! - **frame stages** run on every chunk on its way to the client, after conversion to the
//!   client's dialect (unmasking, response guardrails, stream continuation). A stage that fails
//!   ends the response with the dialect's in-band error, never forwards what it could not check.

use bytes::{Bytes, BytesMut};
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
}

/// One step of the request side (see the module docs).
pub trait RequestStage: Send + Sync {
    /// Rewrites `body` (the client's JSON request) or refuses the request.
    fn apply(
        &self,
        api: ClientApi,
        body: &mut BytesMut,
        ctx: &mut RequestContext,
    ) -> Result<(), RouterError>;
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
    pub fn run_request(
        &self,
        api: ClientApi,
        body: &mut BytesMut,
        ctx: &mut RequestContext,
    ) -> Result<(), RouterError> {
        self.request
            .iter()
            .try_for_each(|s| s.apply(api, body, ctx))
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
        fn apply(
            &self,
            _: ClientApi,
            body: &mut BytesMut,
            _: &mut RequestContext,
        ) -> Result<(), RouterError> {
            body.extend_from_slice(self.0.as_bytes());
            Ok(())
        }
    }
    struct Refuse;
    impl RequestStage for Refuse {
        fn apply(
            &self,
            _: ClientApi,
            _: &mut BytesMut,
            _: &mut RequestContext,
        ) -> Result<(), RouterError> {
            Err(RouterError::bad_request("refused", None))
        }
    }

    #[test]
    fn request_stages_run_in_order_and_the_first_refusal_stops_the_rest() {
        let api = ClientApi::Generate(Ingress::OpenAiChat);
        let stages = Stages {
            request: vec![Box::new(Append("a")), Box::new(Append("b"))],
            frames: Vec::new(),
        };
        let mut body = BytesMut::new();
        let ctx = &mut RequestContext::default();
        stages.run_request(api, &mut body, ctx).unwrap();
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
        assert!(stages.run_request(api, &mut body, ctx).is_err());
        assert_eq!(&body[..], b"a", "nothing after the refusal ran");
    }
}
