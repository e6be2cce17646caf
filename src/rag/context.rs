//! Where a request's last user text is, per client API, and how the retrieved context is appended
//! to it (SPEC §7, the original plugin's wording). Pure; table-tested.

use serde_json::Value;

use crate::relay::{ClientApi, Ingress};

/// The lines put between the user's text and the retrieved chunks.
pub const LEAD: &str =
    "If the context below will help answer the above question, use it.\nContext separated with double enter:";

/// `text` followed by a blank line, [`LEAD`], a blank line and the chunks joined by blank lines.
pub fn extend(text: &str, chunks: &[&str]) -> String {
    format!("{text}\n\n{LEAD}\n\n{}", chunks.join("\n\n"))
}

/// Where the last user text of a request body lives.
#[derive(Debug, PartialEq)]
pub enum Slot {
    /// A string value at this JSON pointer.
    Str(String),
    /// An array of content parts at this pointer with no text part: a text part is appended.
    Parts(String, &'static str),
}

/// The last user text of `body` for `api` (`builtin`: a built-in route's payload) and where it
/// is; `Ok(None)` when the request has nothing RAG applies to (embeddings; a built-in route
/// without a conversation or question field); `Err(field)` when a generation request has no user
/// text (the field that should hold it).
pub fn locate(
    api: ClientApi,
    builtin: bool,
    body: &Value,
) -> Result<Option<(String, Slot)>, &'static str> {
    let ingress = match api {
        ClientApi::Embed(_) => return Ok(None),
        ClientApi::Generate(i) => i,
    };
    if builtin {
        for f in ["user_last_statement", "question_str"] {
            if let Some(s) = body.get(f).and_then(Value::as_str) {
                return Ok(Some((s.to_string(), Slot::Str(format!("/{f}")))));
            }
        }
        return Ok(None);
    }
    match ingress {
        Ingress::OpenAiChat | Ingress::OllamaChat | Ingress::Anthropic => {
            last_user(body, "messages", "text").ok_or("messages")
        }
        Ingress::Responses => match body.get("input") {
            Some(Value::String(s)) => Ok(Some((s.clone(), Slot::Str("/input".into())))),
            _ => last_user(body, "input", "input_text").ok_or("input"),
        },
        Ingress::OpenAiCompletions | Ingress::OllamaGenerate => match body.get("prompt") {
            Some(Value::String(s)) => Ok(Some((s.clone(), Slot::Str("/prompt".into())))),
            Some(Value::Array(a)) => match a.last() {
                Some(Value::String(s)) => Ok(Some((
                    s.clone(),
                    Slot::Str(format!("/prompt/{}", a.len() - 1)),
                ))),
                _ => Err("prompt"),
            },
            _ => Err("prompt"),
        },
    }
}

/// The last `role: user` item of the array `field`: its string content, or the last text part
/// (`type` = `text` / `input_text`) of its content parts.
fn last_user(body: &Value, field: &str, part_type: &'static str) -> Option<Option<(String, Slot)>> {
    let items = body.get(field)?.as_array()?;
    let (i, m) = items
        .iter()
        .enumerate()
        .rev()
        .find(|(_, m)| m.get("role").and_then(Value::as_str) == Some("user"))?;
    let base = format!("/{field}/{i}/content");
    match m.get("content")? {
        Value::String(s) => Some(Some((s.clone(), Slot::Str(base)))),
        Value::Array(parts) => {
            let text = parts.iter().enumerate().rev().find(|(_, p)| {
                matches!(
                    p.get("type").and_then(Value::as_str),
                    Some("text" | "input_text")
                ) && p.get("text").is_some_and(Value::is_string)
            });
            Some(Some(match text {
                Some((j, p)) => (
                    p["text"].as_str().unwrap_or_default().to_string(),
                    Slot::Str(format!("{base}/{j}/text")),
                ),
                None => (String::new(), Slot::Parts(base, part_type)),
            }))
        }
        _ => None,
    }
}

/// Writes `extended` into `body` at `slot`.
pub fn write(body: &mut Value, slot: &Slot, extended: String) {
    match slot {
        Slot::Str(ptr) => {
            if let Some(v) = body.pointer_mut(ptr) {
                *v = Value::String(extended);
            }
        }
        Slot::Parts(ptr, ty) => {
            if let Some(Value::Array(parts)) = body.pointer_mut(ptr) {
                parts.push(serde_json::json!({"type": ty, "text": extended}));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialects::embeddings::Shape;
    use serde_json::json;

    fn run(api: ClientApi, builtin: bool, mut body: Value) -> Result<Option<Value>, &'static str> {
        let Some((text, slot)) = locate(api, builtin, &body)? else {
            return Ok(None);
        };
        write(&mut body, &slot, extend(&text, &["A", "B"]));
        Ok(Some(body))
    }

    const CTX: &str = "\n\nIf the context below will help answer the above question, use it.\nContext separated with double enter:\n\nA\n\nB";

    #[test]
    fn the_last_user_text_of_every_dialect_gets_the_context() {
        use Ingress as I;
        let g = ClientApi::Generate;
        let cases: Vec<(ClientApi, bool, Value, &str)> = vec![
            (
                g(I::OpenAiChat),
                false,
                json!({"messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "q2"}]}),
                "/messages/2/content",
            ),
            (
                g(I::OpenAiChat),
                false,
                json!({"messages": [{"role": "user", "content": [{"type": "image_url"}, {"type": "text", "text": "q"}]}]}),
                "/messages/0/content/1/text",
            ),
            (
                g(I::Anthropic),
                false,
                json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]}, {"role": "assistant", "content": "x"}]}),
                "/messages/0/content/0/text",
            ),
            (
                g(I::OllamaChat),
                false,
                json!({"messages": [{"role": "user", "content": "q"}]}),
                "/messages/0/content",
            ),
            (
                g(I::OllamaGenerate),
                false,
                json!({"prompt": "q"}),
                "/prompt",
            ),
            (
                g(I::OpenAiCompletions),
                false,
                json!({"prompt": ["x", "q"]}),
                "/prompt/1",
            ),
            (g(I::Responses), false, json!({"input": "q"}), "/input"),
            (
                g(I::Responses),
                false,
                json!({"input": [{"role": "user", "content": [{"type": "input_text", "text": "q"}]}]}),
                "/input/0/content/0/text",
            ),
            (
                g(I::OpenAiChat),
                true,
                json!({"user_last_statement": "q"}),
                "/user_last_statement",
            ),
            (
                g(I::OpenAiChat),
                true,
                json!({"question_str": "q", "texts": []}),
                "/question_str",
            ),
        ];
        for (api, builtin, body, ptr) in cases {
            let out = run(api, builtin, body.clone()).unwrap().unwrap();
            let before = body
                .pointer(ptr)
                .and_then(Value::as_str)
                .unwrap()
                .to_string();
            assert_eq!(
                out.pointer(ptr).unwrap(),
                &json!(format!("{before}{CTX}")),
                "{api:?} {ptr}"
            );
        }
    }

    #[test]
    fn parts_without_text_get_a_text_part() {
        let body = json!({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]});
        let out = run(ClientApi::Generate(Ingress::OpenAiChat), false, body)
            .unwrap()
            .unwrap();
        assert_eq!(out["messages"][0]["content"][1]["type"], "text");
        assert_eq!(out["messages"][0]["content"][1]["text"], json!(CTX));
    }

    #[test]
    fn requests_without_user_text_name_the_field_and_others_are_left_alone() {
        let chat = ClientApi::Generate(Ingress::OpenAiChat);
        assert_eq!(
            run(
                chat,
                false,
                json!({"messages": [{"role": "system", "content": "s"}]})
            ),
            Err("messages")
        );
        assert_eq!(run(chat, false, json!({})), Err("messages"));
        assert_eq!(
            run(
                ClientApi::Generate(Ingress::OllamaGenerate),
                false,
                json!({"prompt": 3})
            ),
            Err("prompt")
        );
        assert_eq!(
            run(
                ClientApi::Embed(Shape::OpenAi),
                false,
                json!({"input": "x"})
            ),
            Ok(None)
        );
        assert_eq!(run(chat, true, json!({"texts": ["a"]})), Ok(None));
    }
}
