//! Wire formats and conversions.
//!
//! - `raw` is the fast path's view of a JSON request: the top-level object with its values left
//!   as unparsed slices of the client's bytes, so a passthrough request is re-emitted with only the
//!   fields the router changes (e.g. `model`) and never re-serialised deeply.
//! - `canonical` is the one model every conversion goes through; each dialect file reads its
//!   requests/answers into it and writes them out of it (both directions, stream frames included).

pub mod anthropic;
pub mod canonical;
pub mod embeddings;
#[cfg(test)]
mod golden;
pub mod ollama;
pub mod openai;
pub mod raw;
pub mod responses;

use serde_json::Value;

use crate::errors::RouterError;

/// A 400 naming the JSON path that is wrong.
pub(crate) fn bad(path: &str, problem: &str) -> RouterError {
    RouterError::bad_request(format!("\"{path}\" {problem}"), Some(path))
}

/// Parses a request body as a JSON object (400 naming the problem otherwise).
pub(crate) fn parse_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, RouterError> {
    // RawObject gives the same messages as the fast path for empty/malformed bodies.
    raw::RawObject::parse(body)?;
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(RouterError::bad_request(
            "request body must be a JSON object",
            None,
        )),
        Err(e) => Err(RouterError::bad_request(
            format!("malformed JSON: {e}"),
            None,
        )),
    }
}

/// Typed access to optional fields, with 400s that name the field.
pub(crate) trait Fields {
    fn opt_str(&self, key: &str) -> Result<Option<&str>, RouterError>;
    fn req_str(&self, key: &str) -> Result<&str, RouterError>;
    fn opt_bool(&self, key: &str) -> Result<Option<bool>, RouterError>;
    fn opt_f64(&self, key: &str) -> Result<Option<f64>, RouterError>;
    fn opt_u64(&self, key: &str) -> Result<Option<u64>, RouterError>;
    fn opt_i64(&self, key: &str) -> Result<Option<i64>, RouterError>;
    fn opt_array(&self, key: &str) -> Result<Option<&Vec<Value>>, RouterError>;
    /// A string or a list of strings (`stop`).
    fn strings(&self, key: &str) -> Result<Vec<String>, RouterError>;
}

fn present<'a>(m: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

impl Fields for serde_json::Map<String, Value> {
    fn opt_str(&self, key: &str) -> Result<Option<&str>, RouterError> {
        match present(self, key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(bad(key, "must be a string")),
        }
    }

    fn req_str(&self, key: &str) -> Result<&str, RouterError> {
        self.opt_str(key)?.ok_or_else(|| {
            RouterError::bad_request(format!("missing required field \"{key}\""), Some(key))
        })
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>, RouterError> {
        match present(self, key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(bad(key, "must be true or false")),
        }
    }

    fn opt_f64(&self, key: &str) -> Result<Option<f64>, RouterError> {
        match present(self, key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| bad(key, "must be a number")),
        }
    }

    fn opt_u64(&self, key: &str) -> Result<Option<u64>, RouterError> {
        match present(self, key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| bad(key, "must be a non-negative integer")),
        }
    }

    fn opt_i64(&self, key: &str) -> Result<Option<i64>, RouterError> {
        match present(self, key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| bad(key, "must be an integer")),
        }
    }

    fn opt_array(&self, key: &str) -> Result<Option<&Vec<Value>>, RouterError> {
        match present(self, key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(bad(key, "must be an array")),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, RouterError> {
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
) -> Result<canonical::Tool, RouterError> {
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

/// Refuses `"anonymize": true`: masking is not built yet, and the router fails closed.
pub(crate) fn refuse_anonymize(m: &serde_json::Map<String, Value>) -> Result<(), RouterError> {
    if m.opt_bool("anonymize")?.unwrap_or(false) {
        return Err(RouterError::bad_request(
            "\"anonymize\": masking is not available in this build; the request was not sent",
            Some("anonymize"),
        ));
    }
    Ok(())
}
