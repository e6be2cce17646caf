//! Wire formats and conversions.
//!
//! - `raw` is the fast path's view of a JSON request: the top-level object with its values left
//!   as unparsed slices of the client's bytes, so a passthrough request is re-emitted with only the
//!   fields the router changes (e.g. `model`) and never re-serialised deeply.
//! - `canonical` is the one model every conversion goes through; each dialect file reads its
//!   requests/answers into it and writes them out of it (both directions, stream frames included).
//!
//! Dialects are pure: they read and write wire formats and canonical events, never see the engine
//! or HTTP. Writers take a [`Target`] (what the provider needs to know about itself); readers
//! return [`Invalid`], which the HTTP layer maps to a 400 at its edge.

pub mod anthropic;
pub mod canonical;
pub mod embeddings;
#[cfg(test)]
mod golden;
pub mod ollama;
pub mod openai;
pub mod raw;
pub mod responses;

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// A request the client got wrong: the message names the field (`param`) that is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub message: String,
    pub param: Option<String>,
}

impl Invalid {
    pub fn new(message: impl Into<String>, param: Option<&str>) -> Invalid {
        Invalid {
            message: message.into(),
            param: param.map(String::from),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a request writer needs to know about the provider it writes for.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The `model` sent upstream (the provider's `model_path`, else the public name).
    pub model: &'a str,
    /// Tool definitions are sent (`tool_calling` not switched off).
    pub tools: bool,
    /// The provider takes `top_k` (OpenAI's own API does not; self-hosted servers do).
    pub top_k: bool,
    /// Ollama `keep_alive` to ask for.
    pub keep_alive: Option<Duration>,
    /// The name an OpenAI-wire server takes a repetition penalty under (vLLM
    /// `repetition_penalty`, llama.cpp / LM Studio `repeat_penalty`), if it takes one.
    pub repetition_penalty: Option<&'static str>,
    /// The server takes `typical_p` (llama.cpp).
    pub typical_p: bool,
}

/// A 400 naming the JSON path that is wrong.
pub(crate) fn bad(path: &str, problem: &str) -> Invalid {
    Invalid::new(format!("\"{path}\" {problem}"), Some(path))
}

/// Parses a request body as a JSON object (400 naming the problem otherwise).
pub(crate) fn parse_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Invalid> {
    // RawObject gives the same messages as the fast path for empty/malformed bodies.
    raw::RawObject::parse(body)?;
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Invalid::new("request body must be a JSON object", None)),
        Err(e) => Err(Invalid::new(format!("malformed JSON: {e}"), None)),
    }
}

/// Typed access to optional fields, with 400s that name the field.
pub(crate) trait Fields {
    fn opt_str(&self, key: &str) -> Result<Option<&str>, Invalid>;
    fn req_str(&self, key: &str) -> Result<&str, Invalid>;
    fn opt_bool(&self, key: &str) -> Result<Option<bool>, Invalid>;
    fn opt_f64(&self, key: &str) -> Result<Option<f64>, Invalid>;
    fn opt_u64(&self, key: &str) -> Result<Option<u64>, Invalid>;
    fn opt_i64(&self, key: &str) -> Result<Option<i64>, Invalid>;
    fn opt_array(&self, key: &str) -> Result<Option<&Vec<Value>>, Invalid>;
    /// A string or a list of strings (`stop`).
    fn strings(&self, key: &str) -> Result<Vec<String>, Invalid>;
}

fn present<'a>(m: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

impl Fields for serde_json::Map<String, Value> {
    fn opt_str(&self, key: &str) -> Result<Option<&str>, Invalid> {
        match present(self, key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(bad(key, "must be a string")),
        }
    }

    fn req_str(&self, key: &str) -> Result<&str, Invalid> {
        self.opt_str(key)?
            .ok_or_else(|| Invalid::new(format!("missing required field \"{key}\""), Some(key)))
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>, Invalid> {
        match present(self, key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(bad(key, "must be true or false")),
        }
    }

    fn opt_f64(&self, key: &str) -> Result<Option<f64>, Invalid> {
        match present(self, key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| bad(key, "must be a number")),
        }
    }

    fn opt_u64(&self, key: &str) -> Result<Option<u64>, Invalid> {
        match present(self, key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| bad(key, "must be a non-negative integer")),
        }
    }

    fn opt_i64(&self, key: &str) -> Result<Option<i64>, Invalid> {
        match present(self, key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| bad(key, "must be an integer")),
        }
    }

    fn opt_array(&self, key: &str) -> Result<Option<&Vec<Value>>, Invalid> {
        match present(self, key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(bad(key, "must be an array")),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, Invalid> {
        match present(self, key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(String::from)
                        .ok_or_else(|| bad(key, "must be a string or a list of strings"))
                })
                .collect(),
            Some(_) => Err(bad(key, "must be a string or a list of strings")),
        }
    }
}

/// One tool definition: `name` (required), `description`, and its JSON Schema under
/// `schema_key` (`parameters` in OpenAI/Ollama/Responses, `input_schema` in Anthropic).
pub(crate) fn read_tool(
    t: &Value,
    schema_key: &str,
    path: &str,
) -> Result<canonical::Tool, Invalid> {
    let name = t
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&format!("{path}.name"), "must be a string"))?;
    Ok(canonical::Tool {
        name: name.into(),
        description: t
            .get("description")
            .and_then(Value::as_str)
            .map(String::from),
        parameters: t
            .get(schema_key)
            .cloned()
            .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
    })
}

/// A JSON value as text: strings as they are, anything else serialised (tool results, arguments).
pub(crate) fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
