//! The texts smart routing reads from a client's request, in any dialect: the last user text (what
//! `simple_semantic_routing` scores, as the original gateway does) and the conversation's opening
//! (system text + first user message, the cache-affinity key when no session id is sent).
//!
//! Shapes: `messages` (OpenAI chat, Anthropic, Ollama chat; content a string or a list of parts
//! with `text`), `input` (Responses: a string or a list of items), `prompt` (completions, Ollama
//! generate: a string or a list of strings), and `system` (Anthropic, Ollama; a string or blocks).

use serde_json::Value;

/// The text of a content value: a string, or the `text` of each part (joined by newlines).
pub fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            let mut out = String::new();
            for p in parts {
                let t = match p {
                    Value::String(s) => Some(s.as_str()),
                    Value::Object(o) => o.get("text").and_then(Value::as_str),
                    _ => None,
                };
                if let Some(t) = t {
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(t);
                }
            }
            out
        }
        _ => String::new(),
    }
}

fn role(m: &Value) -> &str {
    m.get("role").and_then(Value::as_str).unwrap_or("user")
}

/// The conversation's items: `messages`, else Responses' `input` list.
fn items(doc: &Value) -> Option<&Vec<Value>> {
    doc.get("messages")
        .and_then(Value::as_array)
        .or_else(|| doc.get("input").and_then(Value::as_array))
}

fn content(m: &Value) -> String {
    m.get("content").map(text_of).unwrap_or_default()
}

/// The last user text of a request (empty when it has none).
pub fn last_user_text(doc: &Value) -> String {
    if let Some(items) = items(doc) {
        return items
            .iter()
            .rev()
            .find(|m| role(m) == "user")
            .map(content)
            .unwrap_or_default();
    }
    for key in ["input", "prompt"] {
        if let Some(v) = doc.get(key) {
            return match v {
                Value::Array(a) => a.last().map(text_of).unwrap_or_default(),
                other => text_of(other),
            };
        }
    }
    String::new()
}

/// `(system text, first user text)` of a request, for the affinity key.
pub fn opening(doc: &Value) -> (String, String) {
    let mut system = doc.get("system").map(text_of).unwrap_or_default();
    if let Some(s) = doc.get("instructions").and_then(Value::as_str) {
        system.push_str(s);
    }
    let mut first = String::new();
    match items(doc) {
        Some(items) => {
            for m in items {
                match role(m) {
                    "system" | "developer" => system.push_str(&content(m)),
                    "user" => {
                        first = content(m);
                        break;
                    }
                    _ => {}
                }
            }
        }
        None => {
            for key in ["input", "prompt"] {
                if let Some(v) = doc.get(key) {
                    first = match v {
                        Value::Array(a) => a.first().map(text_of).unwrap_or_default(),
                        other => text_of(other),
                    };
                    break;
                }
            }
        }
    }
    (system, first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn texts_in_every_dialect() {
        // (request, last user text, (system, first user))
        let cases = [
            (
                json!({"messages": [{"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},
                    {"role": "user", "content": [{"type": "text", "text": "write code"}]}]}),
                "write code",
                ("be brief", "hi"),
            ),
            (
                json!({"system": [{"type": "text", "text": "sys"}],
                    "messages": [{"role": "user", "content": "a"}]}),
                "a",
                ("sys", "a"),
            ),
            (
                json!({"prompt": "complete me"}),
                "complete me",
                ("", "complete me"),
            ),
            (json!({"prompt": ["one", "two"]}), "two", ("", "one")),
            (json!({"input": "plain"}), "plain", ("", "plain")),
            (
                json!({"instructions": "ins", "input": [{"role": "user", "content":
                    [{"type": "input_text", "text": "q"}]}]}),
                "q",
                ("ins", "q"),
            ),
            (json!({}), "", ("", "")),
        ];
        for (doc, last, (sys, first)) in cases {
            assert_eq!(last_user_text(&doc), last, "{doc}");
            assert_eq!(opening(&doc), (sys.to_string(), first.to_string()), "{doc}");
        }
    }
}
