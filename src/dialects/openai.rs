//! OpenAI Chat Completions, as far as the same-dialect fast path needs it: validate what routing
//! depends on, rewrite `model`, strip what a provider can't take; everything else passes untouched.

use bytes::Bytes;
use llm_router_actors::ProviderConfig;

use super::raw::RawObject;
use crate::errors::RouterError;

/// Fields removed for providers configured with `tool_calling: false`.
const TOOL_FIELDS: &[&str] = &[
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "parallel_tool_calls",
];
/// Router-level request fields that are never sent upstream.
const ROUTER_FIELDS: &[&str] = &["anonymize"];

pub struct ChatRequest<'a> {
    pub obj: RawObject<'a>,
    pub model: String,
    pub stream: bool,
}

impl<'a> ChatRequest<'a> {
    pub fn parse(body: &'a [u8]) -> Result<ChatRequest<'a>, RouterError> {
        let obj = RawObject::parse(body)?;
        let model = obj.required_str("model")?;
        obj.require_array("messages")?;
        let stream = obj
            .field::<bool>("stream", "true or false")?
            .unwrap_or(false);
        if obj
            .field::<bool>("anonymize", "true or false")?
            .unwrap_or(false)
        {
            // Fail closed: never send a payload upstream unmasked when masking was asked for.
            return Err(RouterError::bad_request(
                "\"anonymize\": masking is not available in this build; the request was not sent",
                Some("anonymize"),
            ));
        }
        Ok(ChatRequest { obj, model, stream })
    }

    /// The body for one provider: its `model_path`, its tool support.
    pub fn upstream_body(&self, provider: &ProviderConfig) -> Bytes {
        let model = serde_json::to_string(provider.upstream_model(&self.model)).unwrap_or_default();
        let mut drop: Vec<&str> = ROUTER_FIELDS.to_vec();
        if !provider.tool_calling {
            drop.extend_from_slice(TOOL_FIELDS);
        }
        self.obj.to_bytes(&[("model", &model)], &drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_router_actors::ApiType;

    #[test]
    fn model_path_replaces_model_and_tools_follow_the_provider() {
        let body = br#"{"model":"gemma","messages":[],"tools":[{"type":"function"}],"anonymize":false,"seed":7}"#;
        let req = ChatRequest::parse(body).unwrap();
        assert_eq!((req.model.as_str(), req.stream), ("gemma", false));
        let mut p = ProviderConfig::new("a", "http://h", ApiType::Vllm);
        p.model_path = "google/gemma-3".into();
        p.tool_calling = true;
        assert_eq!(
            req.upstream_body(&p),
            Bytes::from_static(br#"{"model":"google/gemma-3","messages":[],"tools":[{"type":"function"}],"seed":7}"#)
        );
        p.tool_calling = false;
        p.model_path.clear();
        assert_eq!(
            req.upstream_body(&p),
            Bytes::from_static(br#"{"model":"gemma","messages":[],"seed":7}"#)
        );
    }

    #[test]
    fn bad_requests_name_the_field() {
        let cases: &[(&[u8], &str)] = &[
            (br#"{"messages":[]}"#, "missing required field \"model\""),
            (
                br#"{"model":["x"],"messages":[]}"#,
                "\"model\" must be a string",
            ),
            (br#"{"model":"m"}"#, "missing required field \"messages\""),
            (
                br#"{"model":"m","messages":"hi"}"#,
                "\"messages\" must be an array",
            ),
            (
                br#"{"model":"m","messages":[],"stream":"yes"}"#,
                "\"stream\" must be true or false",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(ChatRequest::parse(body).err().unwrap().to_string(), *want);
        }
        let e = ChatRequest::parse(br#"{"model":"m","messages":[],"anonymize":true}"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("masking is not available"), "{e}");
    }
}
