//! Every text-generation route, whatever the client's dialect: OpenAI chat / completions /
//! responses, LM Studio chat, Anthropic messages, Ollama chat / generate. Each only names its
//! client API; the request's path is [`crate::relay`].

use actix_web::{web, HttpRequest, HttpResponse};

use super::AppState;
use crate::relay::{self, ClientApi, Ingress};

macro_rules! route {
    ($name:ident, $ingress:expr) => {
        pub async fn $name(
            req: HttpRequest,
            payload: web::Payload,
            state: web::Data<AppState>,
            client: web::Data<awc::Client>,
        ) -> HttpResponse {
            relay::run(ClientApi::Generate($ingress), req, payload, state, client).await
        }
    };
}

route!(openai_chat, Ingress::OpenAiChat);
route!(openai_completions, Ingress::OpenAiCompletions);
route!(openai_responses, Ingress::Responses);
route!(anthropic_messages, Ingress::Anthropic);
route!(ollama_chat, Ingress::OllamaChat);
route!(ollama_generate, Ingress::OllamaGenerate);
