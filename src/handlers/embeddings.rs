//! Embeddings routes: OpenAI `/v1/embeddings`, Ollama `P/embed` and legacy `P/embeddings`, to
//! OpenAI-wire or Ollama providers. Each only names its client shape; the request's path is
//! [`crate::relay`].

use actix_web::{web, HttpRequest, HttpResponse};

use super::AppState;
use crate::dialects::embeddings::Shape;
use crate::relay::{self, ClientApi};

macro_rules! route {
    ($name:ident, $shape:expr) => {
        pub async fn $name(
            req: HttpRequest,
            payload: web::Payload,
            state: web::Data<AppState>,
            client: web::Data<awc::Client>,
        ) -> HttpResponse {
            relay::run(ClientApi::Embed($shape), req, payload, state, client).await
        }
    };
}

route!(openai, Shape::OpenAi);
route!(ollama_embed, Shape::OllamaEmbed);
route!(ollama_legacy, Shape::OllamaLegacy);
