//! The built-in routes as pure functions: a request body → a [`Plan`] (canonical model calls,
//! each with its system prompt, user content and generation options), and the models' answers →
//! the response body (`{"response": …, "generation_time": …}`).
//!
//! Request fields, defaults and result shapes are SPEC §5. `null` counts as absent everywhere
//! (the Python SDK sends every optional field, unset ones as `null`); fields the router does not
//! know are ignored, and nothing but what is built here reaches the provider. A required field
//! that is missing, ill-typed or empty is a 400 naming it.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::prompts::{Language, PromptLibrary, PromptName, QUESTION};
use crate::dialects::canonical::{Message, Options, Request, Role, StopReason};
use crate::dialects::{parse_object, Fields};
use crate::errors::RouterError;

/// A 400 naming the JSON path that is wrong.
fn bad(path: &str, problem: &str) -> RouterError {
    crate::dialects::bad(path, problem).into()
}

/// The built-in routes (paths under `LLM_ROUTER_EP_PREFIX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Conversation,
    ExtendedConversation,
    GenerativeAnswer,
    ArticleFromText,
    FullArticle,
    Translate,
    SimplifyText,
    GenerateQuestions,
    AnonymizeText,
}

impl Route {
    pub const ALL: [Route; 9] = [
        Route::Conversation,
        Route::ExtendedConversation,
        Route::GenerativeAnswer,
        Route::ArticleFromText,
        Route::FullArticle,
        Route::Translate,
        Route::SimplifyText,
        Route::GenerateQuestions,
        Route::AnonymizeText,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Route::Conversation => "/conversation_with_model",
            Route::ExtendedConversation => "/extended_conversation_with_model",
            Route::GenerativeAnswer => "/generative_answer",
            Route::ArticleFromText => "/generate_article_from_text",
            Route::FullArticle => "/create_full_article_from_texts",
            Route::Translate => "/translate",
            Route::SimplifyText => "/simplify_text",
            Route::GenerateQuestions => "/generate_questions",
            Route::AnonymizeText => "/anonymize_text_genai",
        }
    }
}

/// Generation options of the built-in routes, with SPEC §5's defaults. Each provider writer maps
/// them to its own names (README, "Built-in endpoints").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GenOptions {
    pub temperature: f64,
    pub max_new_tokens: u64,
    pub top_k: u64,
    pub top_p: f64,
    pub typical_p: f64,
    pub repetition_penalty: f64,
}

impl Default for GenOptions {
    fn default() -> GenOptions {
        GenOptions {
            temperature: 0.75,
            max_new_tokens: 256,
            top_k: 50,
            top_p: 0.99,
            typical_p: 1.0,
            repetition_penalty: 1.2,
        }
    }
}

impl GenOptions {
    fn read(m: &Map<String, Value>) -> Result<GenOptions, RouterError> {
        let d = GenOptions::default();
        let num = |key: &str, ok: fn(f64) -> bool, what: &str, default: f64| match m.opt_f64(key)? {
            Some(v) if v.is_finite() && ok(v) => Ok(v),
            Some(_) => Err(bad(key, what)),
            None => Ok(default),
        };
        let max_new_tokens = m.opt_u64("max_new_tokens")?.unwrap_or(d.max_new_tokens);
        if max_new_tokens == 0 {
            return Err(bad("max_new_tokens", "must be at least 1"));
        }
        Ok(GenOptions {
            temperature: num("temperature", |v| v >= 0.0, "must be ≥ 0", d.temperature)?,
            max_new_tokens,
            top_k: m.opt_u64("top_k")?.unwrap_or(d.top_k),
            top_p: num(
                "top_p",
                |v| v > 0.0 && v <= 1.0,
                "must be in (0, 1]",
                d.top_p,
            )?,
            typical_p: num(
                "typical_p",
                |v| v > 0.0 && v <= 1.0,
                "must be in (0, 1]",
                d.typical_p,
            )?,
            repetition_penalty: num(
                "repetition_penalty",
                |v| v > 0.0,
                "must be > 0",
                d.repetition_penalty,
            )?,
        })
    }

    /// As canonical options; the writers drop what a provider type has no name for.
    pub fn canonical(&self) -> Options {
        Options {
            max_tokens: Some(self.max_new_tokens),
            temperature: Some(self.temperature),
            top_p: Some(self.top_p),
            top_k: Some(self.top_k),
            typical_p: Some(self.typical_p),
            repetition_penalty: Some(self.repetition_penalty),
            ..Options::default()
        }
    }
}

/// How the answers become the `response` value.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// A string.
    Text,
    /// `{"article_text": str}`.
    Article,
    /// `[{"original", "translated"}]`, one per original.
    Translations(Vec<String>),
    /// `[str]`.
    Simplified,
    /// `[{"text", "questions": [str]}]`, one per text.
    Questions(Vec<String>),
    /// A string, also under `text` (the original's `anonymize_text_genai` answered `{"text"}`).
    Anonymized,
}

impl Shape {
    /// One model call per input text (results in input order).
    pub fn per_text(&self) -> bool {
        matches!(
            self,
            Shape::Translations(_) | Shape::Simplified | Shape::Questions(_)
        )
    }

    /// The `response` value; `answers` are the models' texts, one per call, in call order.
    pub fn response(&self, answers: &[String]) -> Value {
        let first = || json!(answers.first().map_or("", |a| a.trim()));
        match self {
            Shape::Text | Shape::Anonymized => first(),
            Shape::Article => json!({"article_text": first()}),
            Shape::Translations(originals) => originals
                .iter()
                .zip(answers)
                .map(|(o, a)| json!({"original": o, "translated": a.trim()}))
                .collect(),
            Shape::Simplified => answers.iter().map(|a| json!(a.trim())).collect(),
            Shape::Questions(texts) => texts
                .iter()
                .zip(answers)
                .map(|(t, a)| json!({"text": t, "questions": parse_questions(a)}))
                .collect(),
        }
    }

    /// The whole non-stream body.
    pub fn body(&self, answers: &[String], took: Duration) -> Value {
        let mut v = json!({"response": self.response(answers),
                           "generation_time": took.as_secs_f64()});
        if *self == Shape::Anonymized {
            v["text"] = v["response"].clone();
        }
        v
    }

    /// One per-text result as the text of its stream chunk (questions one per line, cleaned).
    pub fn stream_text(&self, answer: &str) -> String {
        match self {
            Shape::Questions(_) => parse_questions(answer).join("\n"),
            _ => answer.trim().to_string(),
        }
    }
}

/// What a built-in request asks for: the model calls to make and how to shape their answers.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub model: String,
    pub language: Language,
    pub stream: bool,
    /// One per model call; per-text routes have one per text (each `stream: false`, since their
    /// results are streamed whole, see [`per_text_chunk`]).
    pub calls: Vec<Request>,
    pub shape: Shape,
}

/// Reads a built-in request body into its plan.
pub fn plan(
    route: Route,
    body: &[u8],
    lib: &PromptLibrary,
    default_language: Language,
) -> Result<Plan, RouterError> {
    let m = parse_object(body)?;
    refuse_masking(&m)?;
    let model = match m.opt_str("model_name")? {
        Some(s) => s,
        // The SDK's other accepted name for it.
        None => m.opt_str("model")?.ok_or_else(|| {
            RouterError::bad_request("missing required field \"model_name\"", Some("model_name"))
        })?,
    };
    if model.trim().is_empty() {
        return Err(bad("model_name", "must not be empty"));
    }
    let language = match m.opt_str("language")? {
        None => default_language,
        Some(s) => Language::parse(s).ok_or_else(|| {
            bad(
                "language",
                &format!(
                    "is not a supported language: \"{s}\"; valid: {}",
                    Language::valid()
                ),
            )
        })?,
    };
    let stream = m.opt_bool("stream")?.unwrap_or(false);
    let options = GenOptions::read(&m)?;
    let call = |system: String, messages: Vec<Message>, stream: bool| {
        let mut r = Request::new(model);
        r.system = Some(system);
        r.messages = messages;
        r.options = options.canonical();
        r.stream = stream;
        r
    };
    let user = |text: String| vec![Message::text(Role::User, text)];
    let prompt = |name: PromptName, value: &str| lib.render(language, name, value);
    let single = |system: String, messages: Vec<Message>, shape: Shape| Plan {
        model: model.to_string(),
        language,
        stream,
        calls: vec![call(system, messages, stream)],
        shape,
    };
    let per_text = |name: PromptName, value: &str, texts: Vec<String>, shape: Shape| Plan {
        model: model.to_string(),
        language,
        stream,
        calls: texts
            .into_iter()
            .map(|t| call(prompt(name, value), user(t), false))
            .collect(),
        shape,
    };
    Ok(match route {
        Route::Conversation => {
            let mut messages = history(&m)?;
            messages.push(Message::text(
                Role::User,
                required_text(&m, "user_last_statement")?,
            ));
            single(
                prompt(PromptName::ChatConversationSimple, ""),
                messages,
                Shape::Text,
            )
        }
        Route::ExtendedConversation => {
            let system = required_text(&m, "system_prompt")?;
            let mut messages = history(&m)?;
            messages.push(Message::text(
                Role::User,
                required_text(&m, "user_last_statement")?,
            ));
            single(system, messages, Shape::Text)
        }
        Route::GenerativeAnswer => {
            let question = required_text(&m, "question_str")?;
            let doc_names = m.opt_bool("doc_name_in_answer")?.unwrap_or(false);
            let context = context(&m, language, doc_names)?;
            let mut system = match optional_text(&m, "system_prompt")? {
                // The question must reach the model whatever prompt the client brings.
                Some(custom) if custom.contains(QUESTION) => custom.replace(QUESTION, &question),
                Some(custom) => format!("{custom}\n\n{}: {question}", labels(language).question),
                None => prompt(PromptName::AnswerFromContextSimple, &question),
            };
            if let Some(extra) = optional_text(&m, "question_prompt")? {
                system = format!("{system}\n\n{extra}");
            }
            single(system, user(context), Shape::Text)
        }
        Route::ArticleFromText => single(
            prompt(PromptName::NewsOnSm, ""),
            user(required_text(&m, "text")?),
            Shape::Article,
        ),
        Route::FullArticle => {
            let query = required_text(&m, "user_query")?;
            let texts = text_list(&m, "texts")?;
            let mut system = prompt(PromptName::FullArticle, &query);
            if let Some(kind) = optional_text(&m, "article_type")? {
                system = format!("{system}\n\n{kind}");
            }
            single(system, user(texts.join("\n\n")), Shape::Article)
        }
        Route::Translate => {
            let texts = text_list(&m, "texts")?;
            let shape = Shape::Translations(texts.clone());
            per_text(PromptName::TranslateToPl, "", texts, shape)
        }
        Route::SimplifyText => per_text(
            PromptName::SimplifyText,
            "",
            text_list(&m, "texts")?,
            Shape::Simplified,
        ),
        Route::GenerateQuestions => {
            let texts = text_list(&m, "texts")?;
            let n = m.opt_u64("number_of_questions")?.unwrap_or(1);
            if !(1..=MAX_QUESTIONS).contains(&n) {
                return Err(bad(
                    "number_of_questions",
                    &format!("must be between 1 and {MAX_QUESTIONS}"),
                ));
            }
            let shape = Shape::Questions(texts.clone());
            per_text(PromptName::GenerateQuestions, &n.to_string(), texts, shape)
        }
        Route::AnonymizeText => single(
            prompt(PromptName::AnonymizeText, ""),
            user(required_text(&m, "text")?),
            Shape::Anonymized,
        ),
    })
}

/// Upper bound on `number_of_questions` (a typo like 1000 would otherwise ask for a book).
pub const MAX_QUESTIONS: u64 = 50;

/// Masking is not in this build: a request that asks for it is refused unsent (fail closed).
fn refuse_masking(m: &Map<String, Value>) -> Result<(), RouterError> {
    for key in ["mask_payload", "anonymize"] {
        if m.opt_bool(key)?.unwrap_or(false) {
            return Err(RouterError::bad_request(
                format!(
                    "\"{key}\": masking is not available in this build; the request was not sent"
                ),
                Some(key),
            ));
        }
    }
    Ok(())
}

fn required_text(m: &Map<String, Value>, key: &str) -> Result<String, RouterError> {
    let s = m.req_str(key)?;
    if s.trim().is_empty() {
        return Err(bad(key, "must not be empty"));
    }
    Ok(s.to_string())
}

fn optional_text(m: &Map<String, Value>, key: &str) -> Result<Option<String>, RouterError> {
    Ok(m.opt_str(key)?
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string))
}

/// A required, non-empty list of non-empty strings.
fn text_list(m: &Map<String, Value>, key: &str) -> Result<Vec<String>, RouterError> {
    let items = m.opt_array(key)?.ok_or_else(|| {
        RouterError::bad_request(format!("missing required field \"{key}\""), Some(key))
    })?;
    if items.is_empty() {
        return Err(bad(key, "must not be empty"));
    }
    strings(items, key)
}

fn strings(items: &[Value], path: &str) -> Result<Vec<String>, RouterError> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| match v.as_str() {
            Some(s) if !s.trim().is_empty() => Ok(s.to_string()),
            _ => Err(bad(&format!("{path}[{i}]"), "must be a non-empty string")),
        })
        .collect()
}

/// Earlier turns: `[{"role", "content"}]` items or `[{"user", "assistant"}]` pairs (either key
/// may be missing from a pair). Only user and assistant turns: the system prompt is the route's.
fn history(m: &Map<String, Value>) -> Result<Vec<Message>, RouterError> {
    let Some(items) = m.opt_array("historical_messages")? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("historical_messages[{i}]");
        let obj = item
            .as_object()
            .ok_or_else(|| bad(&path, "must be an object"))?;
        let text = |key: &str| -> Result<Option<&str>, RouterError> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(bad(&format!("{path}.{key}"), "must be a string")),
            }
        };
        let mut push = |role: Role, s: &str| {
            // Empty turns carry nothing, and some providers refuse empty text blocks.
            if !s.trim().is_empty() {
                out.push(Message::text(role, s));
            }
        };
        if obj.contains_key("role") || obj.contains_key("content") {
            let role = match text("role")? {
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                _ => {
                    return Err(bad(
                        &format!("{path}.role"),
                        "must be \"user\" or \"assistant\"",
                    ))
                }
            };
            let content = text("content")?
                .ok_or_else(|| bad(&format!("{path}.content"), "must be a string"))?;
            push(role, content);
        } else if obj.contains_key("user") || obj.contains_key("assistant") {
            if let Some(u) = text("user")? {
                push(Role::User, u);
            }
            if let Some(a) = text("assistant")? {
                push(Role::Assistant, a);
            }
        } else {
            return Err(bad(
                &path,
                "must have \"role\" and \"content\", or \"user\" and/or \"assistant\"",
            ));
        }
    }
    Ok(out)
}

struct Labels {
    question: &'static str,
    document: &'static str,
    content: &'static str,
}

fn labels(lang: Language) -> Labels {
    match lang {
        Language::Pl => Labels {
            question: "Pytanie",
            document: "Nazwa dokumentu",
            content: "Treść dokumentu",
        },
        Language::En => Labels {
            question: "Question",
            document: "Document name",
            content: "Document content",
        },
    }
}

/// `generative_answer`'s context: a list of passages, or `{doc_name: [passages]}` (document
/// names written before each passage when `doc_name_in_answer`), joined by blank lines.
fn context(m: &Map<String, Value>, lang: Language, doc_names: bool) -> Result<String, RouterError> {
    let missing = || RouterError::bad_request("missing required field \"texts\"", Some("texts"));
    let passages: Vec<String> = match m.get("texts") {
        None | Some(Value::Null) => return Err(missing()),
        Some(Value::Array(items)) => strings(items, "texts")?,
        Some(Value::Object(docs)) => {
            let l = labels(lang);
            let mut out = Vec::new();
            for (name, v) in docs {
                let path = format!("texts.{name}");
                let texts = match v {
                    Value::Array(items) => strings(items, &path)?,
                    Value::String(s) if !s.trim().is_empty() => vec![s.clone()],
                    _ => return Err(bad(&path, "must be a list of non-empty strings")),
                };
                out.extend(texts.into_iter().map(|t| {
                    if doc_names {
                        format!("{}: {name}\n{}: {t}", l.document, l.content)
                    } else {
                        t
                    }
                }));
            }
            out
        }
        Some(_) => {
            return Err(bad(
                "texts",
                "must be a list of strings or an object {document name: [strings]}",
            ))
        }
    };
    if passages.is_empty() {
        return Err(bad("texts", "must not be empty"));
    }
    Ok(passages.join("\n\n"))
}

/// A model's list of questions as clean strings: one per line, numbering (`1.`, `1)`) and bullets
/// (`-`, `*`, `•`) stripped, empty lines dropped. When some lines are numbered or bulleted, the
/// others (an introduction, a closing remark) are not questions and are dropped too.
pub fn parse_questions(answer: &str) -> Vec<String> {
    let lines: Vec<(bool, &str)> = answer
        .lines()
        .map(strip_marker)
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let any_marked = lines.iter().any(|(marked, _)| *marked);
    lines
        .into_iter()
        .filter(|(marked, _)| *marked || !any_marked)
        .map(|(_, l)| l.to_string())
        .collect()
}

/// `(had a list marker, the line without it)`.
fn strip_marker(line: &str) -> (bool, &str) {
    let l = line.trim();
    for bullet in ['-', '*', '•', '–'] {
        if let Some(rest) = l.strip_prefix(bullet) {
            return (true, rest.trim());
        }
    }
    let digits = l.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=3).contains(&digits) {
        let rest = &l[digits..];
        if let Some(after) = rest.strip_prefix(['.', ')', ':']) {
            // `3.5 million?` is a question starting with a number, not item 3.
            if !after.starts_with(|c: char| c.is_ascii_digit()) {
                return (true, after.trim());
            }
        }
    }
    (false, l)
}

/// One per-text result as an OpenAI `chat.completion.chunk`, `choices[0].index` being the text's
/// index in the request (clients collect the results by index; they arrive as they complete).
pub fn per_text_chunk(
    id: &str,
    model: &str,
    created: u64,
    index: usize,
    text: &str,
    stop: StopReason,
) -> Value {
    json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
           "choices": [{"index": index, "delta": {"role": "assistant", "content": text},
                        "logprobs": null, "finish_reason": stop.openai()}]})
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
