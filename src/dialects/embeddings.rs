//! Embeddings in every shape: OpenAI `/v1/embeddings`, Ollama `/api/embed` and the legacy
//! `/api/embeddings`, to OpenAI-wire and Ollama providers (Anthropic has no embeddings API).
//!
//! Batched inputs keep their order: OpenAI answers carry an `index` per vector and are sorted by
//! it; Ollama answers are in input order. OpenAI's `encoding_format: "base64"` (what the OpenAI
//! SDKs ask for by default) is honoured when the answer is converted: little-endian f32 bytes.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::{as_text, bad, parse_object, Fields, Invalid, Target};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// OpenAI `/v1/embeddings`: `input` string/list → `data[].embedding`.
    OpenAi,
    /// Ollama `/api/embed`: `input` string/list → `embeddings`.
    OllamaEmbed,
    /// Ollama `/api/embeddings`: `prompt` → `embedding`.
    OllamaLegacy,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Texts(Vec<String>),
    /// Pre-tokenised input (OpenAI only).
    Tokens(Value),
}

#[derive(Clone, Debug, PartialEq)]
pub struct EmbedRequest {
    pub model: String,
    pub input: Input,
    /// The client sent a single string (answers in Ollama's shape stay a list anyway).
    pub dimensions: Option<u64>,
    pub base64: bool,
    pub shape: Shape,
}

pub struct EmbedResponse {
    pub vectors: Vec<Vec<f64>>,
    pub input_tokens: u64,
}

pub fn read_request(body: &[u8], shape: Shape) -> Result<EmbedRequest, Invalid> {
    let m = parse_object(body)?;
    let model = m.req_str("model")?.to_string();
    let field = if shape == Shape::OllamaLegacy {
        "prompt"
    } else {
        "input"
    };
    let input = match m.get(field) {
        Some(Value::String(s)) => Input::Texts(vec![s.clone()]),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            Input::Texts(a.iter().map(as_text).collect())
        }
        Some(v @ Value::Array(_)) if shape == Shape::OpenAi => Input::Tokens(v.clone()),
        None | Some(Value::Null) => {
            return Err(Invalid::new(
                format!("missing required field \"{field}\""),
                Some(field),
            ))
        }
        Some(_) => {
            return Err(bad(
                field,
                if shape == Shape::OllamaLegacy {
                    "must be a string"
                } else {
                    "must be a string or a list of strings"
                },
            ))
        }
    };
    if shape == Shape::OllamaLegacy && !matches!(m.get(field), Some(Value::String(_))) {
        return Err(bad(field, "must be a string"));
    }
    let base64 = match m.opt_str("encoding_format")? {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(bad(
                "encoding_format",
                &format!("has unknown value \"{other}\" (expected float or base64)"),
            ))
        }
    };
    Ok(EmbedRequest {
        model,
        input,
        dimensions: m.opt_u64("dimensions")?,
        base64,
        shape,
    })
}

/// The body for an OpenAI-wire provider (`/v1/embeddings`), from a client of another shape.
pub fn write_openai_request(req: &EmbedRequest, target: &Target<'_>) -> Bytes {
    let mut body = Map::new();
    body.insert("model".into(), json!(target.model));
    body.insert(
        "input".into(),
        match &req.input {
            Input::Texts(t) => json!(t),
            Input::Tokens(v) => v.clone(),
        },
    );
    body.insert("encoding_format".into(), json!("float"));
    if let Some(d) = req.dimensions {
        body.insert("dimensions".into(), json!(d));
    }
    Bytes::from(Value::Object(body).to_string())
}

/// The body for an Ollama provider (`/api/embed`), from a client of another shape.
pub fn write_ollama_request(req: &EmbedRequest, target: &Target<'_>) -> Result<Bytes, Invalid> {
    let Input::Texts(t) = &req.input else {
        return Err(bad(
            "input",
            "must be text for this model's provider (token arrays pass only to OpenAI-compatible providers)",
        ));
    };
    let mut body = Map::new();
    body.insert("model".into(), json!(target.model));
    body.insert("input".into(), json!(t));
    if let Some(d) = req.dimensions {
        body.insert("dimensions".into(), json!(d));
    }
    Ok(Bytes::from(Value::Object(body).to_string()))
}

/// Reads a provider's answer (OpenAI list or Ollama `embeddings`/`embedding`), in input order.
pub fn read_response(body: &[u8]) -> Result<EmbedResponse, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let floats = |e: &Value| -> Vec<f64> {
        e.as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    if let Some(data) = v.get("data").and_then(Value::as_array) {
        let mut items: Vec<(u64, Vec<f64>)> = data
            .iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    d.get("index").and_then(Value::as_u64).unwrap_or(i as u64),
                    floats(d.get("embedding").unwrap_or(&Value::Null)),
                )
            })
            .collect();
        items.sort_by_key(|(i, _)| *i);
        return Ok(EmbedResponse {
            vectors: items.into_iter().map(|(_, e)| e).collect(),
            input_tokens: v
                .pointer("/usage/prompt_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        });
    }
    if let Some(list) = v.get("embeddings").and_then(Value::as_array) {
        return Ok(EmbedResponse {
            vectors: list.iter().map(floats).collect(),
            input_tokens: v
                .get("prompt_eval_count")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        });
    }
    if let Some(one) = v.get("embedding") {
        return Ok(EmbedResponse {
            vectors: vec![floats(one)],
            input_tokens: 0,
        });
    }
    Err("the answer has no embeddings".into())
}

/// The client's answer in its own shape.
pub fn write_response(req: &EmbedRequest, r: &EmbedResponse) -> Value {
    match req.shape {
        Shape::OpenAi => {
            let data: Vec<Value> = r
                .vectors
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let embedding = if req.base64 {
                        let bytes: Vec<u8> =
                            e.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect();
                        json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                    } else {
                        json!(e)
                    };
                    json!({"object": "embedding", "index": i, "embedding": embedding})
                })
                .collect();
            json!({"object": "list", "data": data, "model": req.model,
                   "usage": {"prompt_tokens": r.input_tokens, "total_tokens": r.input_tokens}})
        }
        Shape::OllamaEmbed => json!({"model": req.model, "embeddings": r.vectors,
            "total_duration": 0, "load_duration": 0, "prompt_eval_count": r.input_tokens}),
        Shape::OllamaLegacy => {
            json!({"embedding": r.vectors.first().cloned().unwrap_or_default()})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_answers_are_put_back_in_input_order_and_base64_is_little_endian_f32() {
        let body = br#"{"object":"list","data":[{"index":1,"embedding":[2.0]},{"index":0,"embedding":[1.0,0.5]}],"usage":{"prompt_tokens":3}}"#;
        let r = read_response(body).unwrap();
        assert_eq!(r.vectors, vec![vec![1.0, 0.5], vec![2.0]]);
        let req = read_request(
            br#"{"model":"e","input":["a","b"],"encoding_format":"base64"}"#,
            Shape::OpenAi,
        )
        .unwrap();
        let out = write_response(&req, &r);
        // 1.0f32 = 00 00 80 3f, 0.5f32 = 00 00 00 3f
        assert_eq!(out["data"][0]["embedding"], json!("AACAPwAAAD8="));
        assert_eq!(out["data"][1]["index"], json!(1));
        assert_eq!(out["usage"]["prompt_tokens"], json!(3));
    }

    #[test]
    fn requests_convert_per_provider_type() {
        let req = read_request(br#"{"model":"e","input":"hi"}"#, Shape::OllamaEmbed).unwrap();
        let json = |b: &Bytes| serde_json::from_slice::<Value>(b).unwrap();
        let target = |model| Target {
            model,
            tools: true,
            top_k: true,
            keep_alive: None,
            repetition_penalty: None,
            typical_p: false,
        };
        assert_eq!(
            json(&write_openai_request(&req, &target("bge"))),
            json!({"model":"bge","input":["hi"],"encoding_format":"float"})
        );
        assert_eq!(
            json(&write_ollama_request(&req, &target("e")).unwrap()),
            json!({"model":"e","input":["hi"]})
        );
        let tokens = read_request(br#"{"model":"e","input":[[1,2]]}"#, Shape::OpenAi).unwrap();
        assert!(write_ollama_request(&tokens, &target("e"))
            .unwrap_err()
            .to_string()
            .contains("must be text"));
        let e = read_request(br#"{"model":"e","prompt":["x"]}"#, Shape::OllamaLegacy).unwrap_err();
        assert_eq!(e.to_string(), "\"prompt\" must be a string");
    }
}
