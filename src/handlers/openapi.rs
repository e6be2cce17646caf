//! `GET /openapi.json` (OpenAPI 3.1) and `GET /docs` (a page rendering it, everything embedded).
//!
//! The description is built from the route table ([`super::table`]) that also registers the
//! routes, with the running configuration: the prefix, whether `/metrics` is on, and which routes
//! need a key (auth on and not public). Each operation names its request and answer schemas and
//! its dialect's error shape; the schemas below describe the fields the router reads (the
//! dialects accept more, passed on or ignored as each dialect's section of the README says).

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpResponse};
use serde_json::{json, Map, Value};

use super::{json_response, table, AppState};
use crate::builtin::routes::Route::AnonymizeText;

const DOCS_HTML: &str = include_str!("docs.html");

/// `/v1/models/{id:.+}` → (`/v1/models/{id}`, `["id"]`).
fn openapi_path(path: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(path.len());
    let mut params = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        let inner = &rest[open + 1..close];
        let name = inner.split(':').next().unwrap_or(inner);
        out.push('{');
        out.push_str(name);
        out.push('}');
        params.push(name.to_string());
        rest = &rest[(close + 1).min(rest.len())..];
    }
    out.push_str(rest);
    (out, params)
}

fn error_schema(tag: &str) -> &'static str {
    match tag {
        "anthropic" => "AnthropicError",
        "ollama" => "OllamaError",
        _ => "OpenAIError",
    }
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for part in path.split(|c: char| !c.is_ascii_alphanumeric()) {
        if !part.is_empty() {
            id.push('_');
            id.push_str(part);
        }
    }
    id
}

/// The whole description for a router with this prefix, metrics switch, optional route and key
/// requirement.
pub fn document(
    prefix: &str,
    prometheus: bool,
    genai_anonymize: bool,
    needs_key: &dyn Fn(&str) -> bool,
) -> Value {
    let mut paths = Map::new();
    let anonymize = format!("{prefix}{}", AnonymizeText.path());
    for e in table(prefix, prometheus) {
        for raw in &e.paths {
            if !genai_anonymize && *raw == anonymize {
                // Registered, but it answers 404 while not enabled.
                continue;
            }
            let (path, params) = openapi_path(raw);
            let d = e.doc;
            let err = schema_ref(error_schema(d.tag));
            let error = |what: &str| json!({"description": what, "content": {"application/json": {"schema": err}}});
            let ok_content = match d.answer {
                "Text" => json!({"text/plain": {"schema": {"type": "string"}}}),
                answer => {
                    let mut c = json!({"application/json": {"schema": schema_ref(answer)}});
                    if d.stream {
                        let (ct, what) = if d.tag == "ollama" {
                            (
                                "application/x-ndjson",
                                "NDJSON lines; the last has \"done\": true",
                            )
                        } else if d.tag == "anthropic" {
                            (
                                "text/event-stream",
                                "event:/data: frames, message_start … message_stop",
                            )
                        } else {
                            (
                                "text/event-stream",
                                "data: {chunk} frames, ending data: [DONE]",
                            )
                        };
                        c[ct] = json!({"schema": {"type": "string", "description": what}});
                    }
                    c
                }
            };
            let mut responses = Map::new();
            responses.insert(
                "200".into(),
                json!({"description": "OK", "content": ok_content}),
            );
            let keyed = needs_key(&path);
            if keyed {
                responses.insert(
                    "401".into(),
                    error("missing, unknown, inactive or expired API key"),
                );
                responses.insert(
                    "403".into(),
                    error("the key's policy or models do not allow this"),
                );
                responses.insert(
                    "429".into(),
                    error("over the key's rpm or tpm (Retry-After says when to retry)"),
                );
            }
            responses.insert("405".into(), error("another method than the listed one"));
            if d.body.is_some() {
                responses.insert(
                    "400".into(),
                    error("malformed JSON or a missing / wrong-typed field (named)"),
                );
                responses.insert(
                    "413".into(),
                    error("the body is over LLM_ROUTER_MAX_REQUEST_BODY_SIZE"),
                );
            }
            if d.stream {
                responses.insert(
                    "404".into(),
                    error("unknown model (the message lists the available ones)"),
                );
                responses.insert("422".into(), error("rejected by a guardrail"));
                responses.insert(
                    "502".into(),
                    error("every provider failed (named, never its URL)"),
                );
                responses.insert("503".into(), error("no healthy provider"));
                responses.insert("504".into(), error("upstream timeout"));
            }
            if !params.is_empty() {
                responses.insert("404".into(), error("unknown id (named)"));
            }
            if path == "/health" {
                responses.insert(
                    "503".into(),
                    json!({"description": "no model can serve, or draining",
                    "content": {"application/json": {"schema": schema_ref("Health")}}}),
                );
            }
            let mut op = json!({
                "operationId": operation_id(&e.method, &path),
                "summary": d.summary,
                "tags": [d.tag],
                "responses": responses,
            });
            if !params.is_empty() {
                op["parameters"] = params
                    .iter()
                    .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"},
                                    "description": "may contain slashes"}))
                    .collect();
            }
            if let Some(b) = d.body {
                op["requestBody"] = json!({"required": true,
                    "content": {"application/json": {"schema": schema_ref(b)}}});
            }
            op["security"] = if keyed {
                json!([{"bearer": []}, {"apiKey": []}])
            } else {
                json!([])
            };
            let method = e.method.as_str().to_ascii_lowercase();
            paths
                .entry(path)
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("an object")
                .insert(method, op);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "llm-router", "version": env!("CARGO_PKG_VERSION"),
                 "description": "An LLM gateway speaking the OpenAI, Anthropic, Ollama and LM Studio APIs over many providers."},
        "paths": paths,
        "components": {"schemas": schemas(), "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}}},
    })
}

fn obj(required: &[&str], props: Value) -> Value {
    json!({"type": "object", "required": required, "properties": props, "additionalProperties": true})
}

fn schemas() -> Value {
    let messages = json!({"type": "array", "items": {"type": "object", "required": ["role"],
        "properties": {"role": {"type": "string"}, "content": {}}}});
    let stream_false = json!({"type": "boolean", "default": false});
    let stream_true = json!({"type": "boolean", "default": true});
    let model = json!({"type": "string", "description": "a public model name (see /v1/models)"});
    let items: Vec<(&str, Value)> = vec![
        (
            "OpenAIError",
            obj(
                &["error"],
                json!({"error": obj(&["message", "type", "code"], json!({
            "message": {"type": "string"}, "type": {"type": "string"},
            "param": {"type": ["string", "null"]}, "code": {"type": "integer"}}))}),
            ),
        ),
        (
            "AnthropicError",
            obj(
                &["type", "error"],
                json!({"type": {"const": "error"},
            "error": obj(&["type", "message"], json!({"type": {"type": "string"}, "message": {"type": "string"}}))}),
            ),
        ),
        (
            "OllamaError",
            obj(&["error"], json!({"error": {"type": "string"}})),
        ),
        (
            "ChatCompletionRequest",
            obj(
                &["model", "messages"],
                json!({"model": model, "messages": messages,
            "stream": stream_false, "stream_options": {"type": "object"}, "tools": {"type": "array"},
            "max_tokens": {"type": "integer"}, "temperature": {"type": "number"}}),
            ),
        ),
        (
            "CompletionRequest",
            obj(
                &["model", "prompt"],
                json!({"model": model,
            "prompt": {"type": ["string", "array"]}, "stream": stream_false, "max_tokens": {"type": "integer"}}),
            ),
        ),
        (
            "ResponsesRequest",
            obj(
                &["model", "input"],
                json!({"model": model,
            "input": {"type": ["string", "array"]}, "instructions": {"type": "string"}, "stream": stream_false}),
            ),
        ),
        (
            "MessagesRequest",
            obj(
                &["model", "messages", "max_tokens"],
                json!({"model": model,
            "messages": messages, "max_tokens": {"type": "integer"}, "system": {},
            "stream": stream_false, "tools": {"type": "array"}}),
            ),
        ),
        (
            "OllamaChatRequest",
            obj(
                &["model", "messages"],
                json!({"model": model, "messages": messages,
            "stream": stream_true, "options": {"type": "object"}}),
            ),
        ),
        (
            "OllamaGenerateRequest",
            obj(
                &["model", "prompt"],
                json!({"model": model,
            "prompt": {"type": "string"}, "system": {"type": "string"}, "stream": stream_true}),
            ),
        ),
        (
            "OllamaShowRequest",
            obj(&[], json!({"model": model, "name": {"type": "string"}})),
        ),
        (
            "TextRequest",
            obj(&["text"], json!({"text": {"type": "string"}})),
        ),
        (
            "EmbeddingsRequest",
            obj(
                &["model", "input"],
                json!({"model": model, "input": {"type": ["string", "array"]}}),
            ),
        ),
        (
            "OllamaEmbedRequest",
            obj(
                &["model", "input"],
                json!({"model": model, "input": {"type": ["string", "array"]}}),
            ),
        ),
        (
            "OllamaEmbeddingsRequest",
            obj(
                &["model", "prompt"],
                json!({"model": model, "prompt": {"type": "string"}}),
            ),
        ),
        (
            "BuiltinRequest",
            obj(
                &["model_name"],
                json!({"model_name": model, "stream": stream_false,
            "language": {"type": "string", "enum": ["pl", "en"]}}),
            ),
        ),
        (
            "Model",
            obj(
                &["id", "object", "created", "owned_by"],
                json!({"id": {"type": "string"},
            "object": {"const": "model"}, "created": {"type": "integer"}, "owned_by": {"type": "string"}}),
            ),
        ),
        (
            "ModelList",
            obj(
                &["object", "data"],
                json!({"object": {"const": "list"},
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}}}),
            ),
        ),
        (
            "Ping",
            obj(
                &["status", "body"],
                json!({"status": {"const": true}, "body": {"const": "pong"}}),
            ),
        ),
        (
            "Version",
            obj(&["version"], json!({"version": {"type": "string"}})),
        ),
        (
            "Health",
            obj(
                &["status", "models"],
                json!({"status": {"enum": ["ok", "unavailable", "draining"]},
            "shared_state": {"type": "object"}, "rate_limits": {"type": "object"}, "models": {"type": "array"}}),
            ),
        ),
        (
            "ChatCompletion",
            obj(
                &["choices"],
                json!({"id": {"type": "string"}, "model": {"type": "string"},
            "choices": {"type": "array"}, "usage": {"type": "object"}}),
            ),
        ),
        (
            "Completion",
            obj(
                &["choices"],
                json!({"choices": {"type": "array"}, "usage": {"type": "object"}}),
            ),
        ),
        (
            "Response",
            obj(
                &["output"],
                json!({"output": {"type": "array"}, "usage": {"type": "object"}}),
            ),
        ),
        (
            "Message",
            obj(
                &["content"],
                json!({"content": {"type": "array"}, "stop_reason": {"type": "string"},
            "usage": {"type": "object"}}),
            ),
        ),
        (
            "OllamaChat",
            obj(
                &["message", "done"],
                json!({"message": {"type": "object"}, "done": {"type": "boolean"}}),
            ),
        ),
        (
            "OllamaGenerate",
            obj(
                &["response", "done"],
                json!({"response": {"type": "string"}, "done": {"type": "boolean"}}),
            ),
        ),
        (
            "OllamaShow",
            obj(
                &[],
                json!({"modelfile": {"type": "string"}, "capabilities": {"type": "array"}}),
            ),
        ),
        (
            "OllamaTags",
            obj(&["models"], json!({"models": {"type": "array"}})),
        ),
        (
            "MaskedText",
            obj(
                &["text", "mappings"],
                json!({"text": {"type": "string"}, "mappings": {"type": "object"}}),
            ),
        ),
        (
            "Embeddings",
            obj(
                &["data"],
                json!({"object": {"const": "list"}, "data": {"type": "array"}}),
            ),
        ),
        (
            "OllamaEmbed",
            obj(&["embeddings"], json!({"embeddings": {"type": "array"}})),
        ),
        (
            "OllamaEmbedding",
            obj(&["embedding"], json!({"embedding": {"type": "array"}})),
        ),
        (
            "BuiltinAnswer",
            obj(
                &["response"],
                json!({"response": {}, "generation_time": {"type": "number"}}),
            ),
        ),
        (
            "Stats",
            obj(&["models"], json!({"models": {"type": "array"}})),
        ),
        (
            "RouterHealth",
            obj(
                &["status", "providers"],
                json!({"status": {"type": "string"},
            "providers": {"type": "array"}, "shared_state": {"type": "object"},
            "rate_limits": {"type": "object"}, "key_store": {"type": "object"}, "plugins": {"type": "object"}}),
            ),
        ),
        (
            "RateLimits",
            obj(
                &["keys", "providers"],
                json!({"limiter": {"type": "object"},
            "keys": {"type": "array"}, "providers": {"type": "array"}}),
            ),
        ),
        (
            "AuthStatus",
            obj(
                &["auth_enabled", "store"],
                json!({"auth_enabled": {"type": "boolean"},
            "store": {"enum": ["memory", "redis"]}, "keys": {}, "rate_limits": {"type": "object"}}),
            ),
        ),
        (
            "AuthMetrics",
            obj(
                &["keys"],
                json!({"auth_enabled": {"type": "boolean"}, "keys": {"type": "array"}}),
            ),
        ),
        (
            "KeysReloaded",
            obj(
                &["reloaded"],
                json!({"reloaded": {"type": "boolean"}, "keys": {"type": "integer"}}),
            ),
        ),
        (
            "RagDocuments",
            obj(
                &["documents"],
                json!({"documents": {"type": "array", "items": obj(&["id", "text"], json!({
                    "id": {"type": "string"}, "text": {"type": "string"},
                    "metadata": {"type": "object"}}))}}),
            ),
        ),
        ("Object", json!({"type": "object"})),
    ];
    Value::Object(items.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// `GET /openapi.json`.
pub async fn spec(state: web::Data<AppState>) -> HttpResponse {
    let s = &state.settings;
    let access = &state.access;
    let needs_key = |path: &str| access.enabled() && !access.is_public(path);
    json_response(
        StatusCode::OK,
        &document(
            &s.prefix,
            s.prometheus,
            s.builtin.genai_anonymize,
            &needs_key,
        ),
    )
}

/// `GET /docs`: a self-contained page (no external assets) that renders `/openapi.json`.
pub async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "content-security-policy",
            "default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline'",
        ))
        .body(DOCS_HTML)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_patterns_become_openapi_paths() {
        assert_eq!(
            openapi_path("/v1/models/{id:.+}"),
            ("/v1/models/{id}".to_string(), vec!["id".to_string()])
        );
        assert_eq!(openapi_path("/api/chat"), ("/api/chat".to_string(), vec![]));
        assert_eq!(
            operation_id(&Method::POST, "/v1/chat/completions"),
            "post_v1_chat_completions"
        );
    }

    #[test]
    fn every_registered_path_is_described_with_its_method_and_schemas_resolve() {
        let doc = document("/api", true, true, &|p| p != "/health");
        let paths = doc["paths"].as_object().unwrap();
        let mut n = 0;
        for e in table("/api", true) {
            for raw in &e.paths {
                let (p, _) = openapi_path(raw);
                let m = e.method.as_str().to_ascii_lowercase();
                assert!(paths[&p].get(&m).is_some(), "{m} {p}");
                n += 1;
            }
        }
        assert_eq!(
            paths
                .values()
                .map(|v| v.as_object().unwrap().len())
                .sum::<usize>(),
            n,
            "nothing described that is not registered"
        );
        // Every $ref points at a defined schema.
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for piece in text.split("#/components/schemas/").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            assert!(schemas.contains_key(&name), "{name}");
        }
        assert_eq!(doc["paths"]["/health"]["get"]["security"], json!([]));
        assert_eq!(
            doc["paths"]["/v1/messages"]["post"]["responses"]["401"]["content"]["application/json"]
                ["schema"]["$ref"],
            "#/components/schemas/AnthropicError"
        );
        assert!(
            doc["paths"]["/api/chat"]["post"]["responses"]["200"]["content"]
                .get("application/x-ndjson")
                .is_some()
        );
        // Without Prometheus, no /metrics.
        let doc = document("/api", false, false, &|_| false);
        assert!(doc["paths"].get("/metrics").is_none());
        assert!(doc["paths"].get("/api/anonymize_text_genai").is_none());
    }
}
