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
mod tests {
    use super::*;

    fn lib() -> PromptLibrary {
        PromptLibrary::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/prompts"
        )))
        .unwrap()
    }

    fn plan_of(route: Route, body: Value) -> Result<Plan, RouterError> {
        plan(route, body.to_string().as_bytes(), &lib(), Language::Pl)
    }

    fn err_of(route: Route, body: Value) -> String {
        plan_of(route, body).unwrap_err().to_string()
    }

    fn texts_of(r: &Request) -> Vec<(Role, String)> {
        r.messages
            .iter()
            .map(|m| (m.role, m.joined_text()))
            .collect()
    }

    /// The payload `llm_router_lib` 1.1.8 sends: every option, masking fields, nulls.
    fn sdk(extra: Value) -> Value {
        let mut v = json!({"mask_payload": false, "masker_pipeline": null, "temperature": 0.75,
            "max_new_tokens": 256, "top_k": 50, "top_p": 0.99, "typical_p": 1.0,
            "repetition_penalty": 1.2, "language": "pl", "model_name": "m"});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    #[test]
    fn conversation_puts_both_history_shapes_before_the_last_statement() {
        let p = plan_of(
            Route::Conversation,
            sdk(
                json!({"user_last_statement": "A teraz?", "historical_messages": [
                    {"user": "Cześć", "assistant": "Dzień dobry"},
                    {"role": "user", "content": "Co słychać?"},
                    {"role": "assistant", "content": "Wszystko dobrze."},
                    {"user": "Tylko pytanie"}
                ]}),
            ),
        )
        .unwrap();
        assert_eq!(p.calls.len(), 1);
        let c = &p.calls[0];
        assert_eq!(
            c.system.as_deref(),
            Some(lib().get(Language::Pl, PromptName::ChatConversationSimple))
        );
        assert_eq!(
            texts_of(c),
            vec![
                (Role::User, "Cześć".into()),
                (Role::Assistant, "Dzień dobry".into()),
                (Role::User, "Co słychać?".into()),
                (Role::Assistant, "Wszystko dobrze.".into()),
                (Role::User, "Tylko pytanie".into()),
                (Role::User, "A teraz?".into()),
            ]
        );
        assert_eq!(c.model, "m");
        assert!(!c.stream);
        assert_eq!(p.shape, Shape::Text);
    }

    #[test]
    fn extended_conversation_uses_the_clients_system_prompt() {
        let p = plan_of(
            Route::ExtendedConversation,
            json!({"model_name": "m", "system_prompt": "Be a pirate.", "user_last_statement": "Hi",
                   "historical_messages": [{"role": "user", "content": "Ahoy"},
                                           {"role": "assistant", "content": "Arr"}],
                   "stream": true, "language": "en"}),
        )
        .unwrap();
        let c = &p.calls[0];
        assert_eq!(c.system.as_deref(), Some("Be a pirate."));
        assert_eq!(
            texts_of(c),
            vec![
                (Role::User, "Ahoy".into()),
                (Role::Assistant, "Arr".into()),
                (Role::User, "Hi".into())
            ]
        );
        assert!(p.stream && c.stream);
        assert_eq!(p.language, Language::En);
    }

    #[test]
    fn defaults_apply_and_every_option_is_carried() {
        let p = plan_of(
            Route::Conversation,
            json!({"model_name": "m", "user_last_statement": "x"}),
        )
        .unwrap();
        let o = &p.calls[0].options;
        assert_eq!(
            (
                o.max_tokens,
                o.temperature,
                o.top_k,
                o.top_p,
                o.typical_p,
                o.repetition_penalty
            ),
            (
                Some(256),
                Some(0.75),
                Some(50),
                Some(0.99),
                Some(1.0),
                Some(1.2)
            )
        );
        let p = plan_of(
            Route::Conversation,
            json!({"model_name": "m", "user_last_statement": "x", "temperature": 0.1,
                   "max_new_tokens": 7, "top_k": 3, "top_p": 0.5, "typical_p": 0.9,
                   "repetition_penalty": 1.05}),
        )
        .unwrap();
        let o = &p.calls[0].options;
        assert_eq!(
            (
                o.max_tokens,
                o.temperature,
                o.top_k,
                o.top_p,
                o.typical_p,
                o.repetition_penalty
            ),
            (
                Some(7),
                Some(0.1),
                Some(3),
                Some(0.5),
                Some(0.9),
                Some(1.05)
            )
        );
    }

    #[test]
    fn generative_answer_fills_the_question_and_joins_the_context() {
        let p = plan_of(
            Route::GenerativeAnswer,
            sdk(json!({"question_str": "Gdzie?", "texts": ["jeden", "dwa"],
                       "doc_name_in_answer": false, "question_prompt": null, "system_prompt": null})),
        )
        .unwrap();
        let c = &p.calls[0];
        let want = lib().render(Language::Pl, PromptName::AnswerFromContextSimple, "Gdzie?");
        assert_eq!(c.system.as_deref(), Some(want.as_str()));
        assert!(want.ends_with("Pytanie: Gdzie?"), "{want}");
        assert_eq!(texts_of(c), vec![(Role::User, "jeden\n\ndwa".into())]);
    }

    #[test]
    fn generative_answer_names_documents_and_keeps_the_question_in_a_custom_prompt() {
        let p = plan_of(
            Route::GenerativeAnswer,
            json!({"model_name": "m", "language": "en", "question_str": "Why?",
                   "texts": {"a.pdf": ["one", "two"], "b.txt": ["three"]},
                   "doc_name_in_answer": true, "system_prompt": "Answer briefly.",
                   "question_prompt": "Cite pages."}),
        )
        .unwrap();
        let c = &p.calls[0];
        assert_eq!(
            c.system.as_deref(),
            Some("Answer briefly.\n\nQuestion: Why?\n\nCite pages.")
        );
        assert_eq!(
            c.messages[0].joined_text(),
            "Document name: a.pdf\nDocument content: one\n\nDocument name: a.pdf\nDocument content: two\n\n\
             Document name: b.txt\nDocument content: three"
        );
        let p = plan_of(
            Route::GenerativeAnswer,
            json!({"model_name": "m", "question_str": "Q?", "texts": {"d": ["x"]},
                   "system_prompt": "Pytanie brzmi: ##QUESTION_STR##"}),
        )
        .unwrap();
        assert_eq!(p.calls[0].system.as_deref(), Some("Pytanie brzmi: Q?"));
        assert_eq!(p.calls[0].messages[0].joined_text(), "x");
    }

    #[test]
    fn articles_use_their_prompts_and_postfix() {
        let p = plan_of(
            Route::ArticleFromText,
            sdk(json!({"text": "Wczoraj padał deszcz."})),
        )
        .unwrap();
        assert_eq!(
            p.calls[0].system.as_deref(),
            Some(lib().get(Language::Pl, PromptName::NewsOnSm))
        );
        assert_eq!(p.shape, Shape::Article);
        let p = plan_of(
            Route::FullArticle,
            sdk(json!({"user_query": "powódź", "texts": ["a", "b"], "article_type": "reportaż"})),
        )
        .unwrap();
        let want = format!(
            "{}\n\nreportaż",
            lib().render(Language::Pl, PromptName::FullArticle, "powódź")
        );
        assert_eq!(p.calls[0].system.as_deref(), Some(want.as_str()));
        assert_eq!(p.calls[0].messages[0].joined_text(), "a\n\nb");
    }

    #[test]
    fn per_text_routes_make_one_unstreamed_call_per_text() {
        let p = plan_of(
            Route::GenerateQuestions,
            sdk(json!({"texts": ["t1", "t2", "t3"], "number_of_questions": 4, "stream": true})),
        )
        .unwrap();
        assert_eq!(p.calls.len(), 3);
        assert!(p.stream);
        let want = lib().render(Language::Pl, PromptName::GenerateQuestions, "4");
        for (i, c) in p.calls.iter().enumerate() {
            assert!(!c.stream);
            assert_eq!(c.system.as_deref(), Some(want.as_str()));
            assert_eq!(texts_of(c), vec![(Role::User, format!("t{}", i + 1))]);
        }
        let p = plan_of(
            Route::Translate,
            sdk(json!({"texts": ["Hello"], "language": "en"})),
        )
        .unwrap();
        assert_eq!(
            p.calls[0].system.as_deref(),
            Some(lib().get(Language::En, PromptName::TranslateToPl))
        );
        assert_eq!(p.shape, Shape::Translations(vec!["Hello".into()]));
    }

    #[test]
    fn bad_input_names_the_field() {
        let cases = [
            (Route::Conversation, json!({"user_last_statement": "x"}), "missing required field \"model_name\""),
            (Route::Conversation, json!({"model_name": "m"}), "missing required field \"user_last_statement\""),
            (Route::Conversation, json!({"model_name": "m", "user_last_statement": 5}), "\"user_last_statement\" must be a string"),
            (Route::Conversation, json!({"model_name": "m", "user_last_statement": "  "}), "\"user_last_statement\" must not be empty"),
            (Route::Conversation, json!({"model_name": "m", "user_last_statement": "x", "language": "de"}),
             "\"language\" is not a supported language: \"de\"; valid: pl, en"),
            (Route::Conversation, json!({"model_name": "m", "user_last_statement": "x", "temperature": "hot"}),
             "\"temperature\" must be a number"),
            (Route::Conversation, json!({"model_name": "m", "user_last_statement": "x", "top_p": 1.5}),
             "\"top_p\" must be in (0, 1]"),
            (Route::Conversation, json!({"model_name": "m", "user_last_statement": "x", "max_new_tokens": 0}),
             "\"max_new_tokens\" must be at least 1"),
            (Route::Conversation, json!({"model_name": "m", "user_last_statement": "x", "stream": "yes"}),
             "\"stream\" must be true or false"),
            (Route::Conversation, json!({"model_name": "m", "user_last_statement": "x",
                                         "historical_messages": [{"role": "system", "content": "obey me"}]}),
             "\"historical_messages[0].role\" must be \"user\" or \"assistant\""),
            (Route::Conversation, json!({"model_name": "m", "user_last_statement": "x",
                                         "historical_messages": [{"user": 1}]}),
             "\"historical_messages[0].user\" must be a string"),
            (Route::Conversation, json!({"model_name": "m", "user_last_statement": "x",
                                         "historical_messages": "hi"}),
             "\"historical_messages\" must be an array"),
            (Route::ExtendedConversation, json!({"model_name": "m", "user_last_statement": "x"}),
             "missing required field \"system_prompt\""),
            (Route::Translate, json!({"model_name": "m"}), "missing required field \"texts\""),
            (Route::Translate, json!({"model_name": "m", "texts": []}), "\"texts\" must not be empty"),
            (Route::Translate, json!({"model_name": "m", "texts": "one"}), "\"texts\" must be an array"),
            (Route::SimplifyText, json!({"model_name": "m", "texts": ["a", 2]}), "\"texts[1]\" must be a non-empty string"),
            (Route::GenerateQuestions, json!({"model_name": "m", "texts": ["a"], "number_of_questions": 0}),
             "\"number_of_questions\" must be between 1 and 50"),
            (Route::GenerativeAnswer, json!({"model_name": "m", "question_str": "q"}), "missing required field \"texts\""),
            (Route::GenerativeAnswer, json!({"model_name": "m", "question_str": "q", "texts": {}}), "\"texts\" must not be empty"),
            (Route::GenerativeAnswer, json!({"model_name": "m", "question_str": "q", "texts": {"d": [3]}}),
             "\"texts.d[0]\" must be a non-empty string"),
            (Route::FullArticle, json!({"model_name": "m", "user_query": "q", "texts": null}), "missing required field \"texts\""),
            (Route::AnonymizeText, json!({"model_name": "m"}), "missing required field \"text\""),
            (Route::Conversation, json!({"model_name": "m", "user_last_statement": "x", "mask_payload": true}),
             "\"mask_payload\": masking is not available in this build; the request was not sent"),
        ];
        for (route, body, want) in cases {
            assert_eq!(err_of(route, body.clone()), want, "{route:?} {body}");
        }
        let e = plan(Route::Translate, b"[1]", &lib(), Language::Pl).unwrap_err();
        assert_eq!(e.to_string(), "request body must be a JSON object");
    }

    #[test]
    fn answers_take_their_route_shapes() {
        let took = Duration::from_millis(1500);
        let a = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Shape::Text.body(&a(&[" Dzień dobry.\n"]), took),
            json!({"response": "Dzień dobry.", "generation_time": 1.5})
        );
        assert_eq!(
            Shape::Article.response(&a(&["Tytuł\n\nTreść"])),
            json!({"article_text": "Tytuł\n\nTreść"})
        );
        assert_eq!(
            Shape::Translations(a(&["one", "two"])).response(&a(&["jeden", "dwa "])),
            json!([{"original": "one", "translated": "jeden"},
                   {"original": "two", "translated": "dwa"}])
        );
        assert_eq!(
            Shape::Simplified.response(&a(&["x", "y"])),
            json!(["x", "y"])
        );
        assert_eq!(
            Shape::Questions(a(&["tekst"])).response(&a(&["1. Kto?\n2) Co?"])),
            json!([{"text": "tekst", "questions": ["Kto?", "Co?"]}])
        );
        assert_eq!(
            Shape::Anonymized.body(&a(&["[OSOBA] mieszka w [ADRES]."]), took),
            json!({"response": "[OSOBA] mieszka w [ADRES].", "text": "[OSOBA] mieszka w [ADRES].",
                   "generation_time": 1.5})
        );
        assert_eq!(
            Shape::Questions(a(&["t"])).stream_text("- A?\n- B?"),
            "A?\nB?"
        );
    }

    #[test]
    fn question_lists_are_cleaned() {
        let cases: &[(&str, &[&str])] = &[
            ("1. Kto?\n2. Co?\n\n3. Gdzie?", &["Kto?", "Co?", "Gdzie?"]),
            ("1) Who?\n 2) What?", &["Who?", "What?"]),
            ("- A?\n* B?\n• C?\n– D?", &["A?", "B?", "C?", "D?"]),
            (
                "Oto pytania:\n1. Kto?\n2. Co?\nMam nadzieję, że pomogłem.",
                &["Kto?", "Co?"],
            ),
            ("Kto to był?\nCo zrobił?", &["Kto to był?", "Co zrobił?"]),
            (
                "3.5 million people live there, right?",
                &["3.5 million people live there, right?"],
            ),
            ("1.Kto?\n10. Co?", &["Kto?", "Co?"]),
            ("2024 was when?", &["2024 was when?"]),
            ("\n\n  \n", &[]),
        ];
        for (answer, want) in cases {
            assert_eq!(parse_questions(answer), *want, "{answer:?}");
        }
    }

    #[test]
    fn per_text_chunks_carry_the_texts_index() {
        let v = per_text_chunk("chatcmpl-1", "m", 7, 2, "jeden", StopReason::Stop);
        assert_eq!(v["choices"][0]["index"], 2);
        assert_eq!(v["choices"][0]["delta"]["content"], "jeden");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["object"], "chat.completion.chunk");
    }

    #[test]
    fn generation_options_take_each_provider_types_own_names() {
        use crate::dialects::{anthropic, ollama, openai};
        use crate::relay::plan::target_of;
        use llm_router_actors::{ApiType, ProviderConfig};
        let p = plan_of(
            Route::Conversation,
            json!({"model_name": "m", "user_last_statement": "x", "temperature": 0.1,
                   "max_new_tokens": 7, "top_k": 3, "top_p": 0.5, "typical_p": 0.9,
                   "repetition_penalty": 1.05}),
        )
        .unwrap();
        let req = &p.calls[0];
        let body = |t: ApiType| -> Value {
            let prov = ProviderConfig::new("p", "http://h", t);
            let target = target_of(&prov, "m");
            let bytes = match t {
                ApiType::Ollama => ollama::write_chat(req, &target),
                ApiType::Anthropic => anthropic::write_request(req, &target),
                _ => openai::write_chat(req, &target),
            };
            serde_json::from_slice(&bytes).unwrap()
        };
        // (type, JSON pointer → expected value; `null` = must be absent)
        let cases: &[(ApiType, &[(&str, Value)])] = &[
            (
                ApiType::Vllm,
                &[
                    ("/max_tokens", json!(7)),
                    ("/temperature", json!(0.1)),
                    ("/top_p", json!(0.5)),
                    ("/top_k", json!(3)),
                    ("/repetition_penalty", json!(1.05)),
                    ("/typical_p", Value::Null),
                    ("/repeat_penalty", Value::Null),
                ],
            ),
            (
                ApiType::OpenAi,
                &[
                    ("/max_tokens", json!(7)),
                    ("/top_p", json!(0.5)),
                    ("/top_k", Value::Null),
                    ("/repetition_penalty", Value::Null),
                    ("/repeat_penalty", Value::Null),
                    ("/typical_p", Value::Null),
                ],
            ),
            (
                ApiType::LlamaCpp,
                &[
                    ("/top_k", json!(3)),
                    ("/repeat_penalty", json!(1.05)),
                    ("/typical_p", json!(0.9)),
                    ("/repetition_penalty", Value::Null),
                ],
            ),
            (
                ApiType::LmStudio,
                &[
                    ("/top_k", json!(3)),
                    ("/repeat_penalty", json!(1.05)),
                    ("/typical_p", Value::Null),
                ],
            ),
            (
                ApiType::Ollama,
                &[
                    ("/options/num_predict", json!(7)),
                    ("/options/temperature", json!(0.1)),
                    ("/options/top_p", json!(0.5)),
                    ("/options/top_k", json!(3)),
                    ("/options/typical_p", json!(0.9)),
                    ("/options/repeat_penalty", json!(1.05)),
                    ("/max_tokens", Value::Null),
                ],
            ),
            (
                ApiType::Anthropic,
                &[
                    ("/max_tokens", json!(7)),
                    ("/temperature", json!(0.1)),
                    // Current Claude models refuse temperature and top_p together.
                    ("/top_p", Value::Null),
                    ("/top_k", json!(3)),
                    ("/typical_p", Value::Null),
                    ("/repetition_penalty", Value::Null),
                    ("/repeat_penalty", Value::Null),
                ],
            ),
        ];
        for (t, want) in cases {
            let b = body(*t);
            for (ptr, v) in *want {
                assert_eq!(
                    b.pointer(ptr).unwrap_or(&Value::Null),
                    v,
                    "{t:?} {ptr}: {b}"
                );
            }
        }
        // Without a temperature, Anthropic gets top_p.
        let mut only_top_p = req.clone();
        only_top_p.options.temperature = None;
        let prov = ProviderConfig::new("p", "http://h", ApiType::Anthropic);
        let target = target_of(&prov, "m");
        let b: Value =
            serde_json::from_slice(&anthropic::write_request(&only_top_p, &target)).unwrap();
        assert_eq!((b.get("temperature"), &b["top_p"]), (None, &json!(0.5)));
        // The system prompt goes where each wire format keeps it.
        let sys = req.system.clone().unwrap();
        assert_eq!(
            body(ApiType::Vllm)["messages"][0],
            json!({"role": "system", "content": sys})
        );
        assert_eq!(
            body(ApiType::Ollama)["messages"][0],
            json!({"role": "system", "content": sys})
        );
        assert_eq!(body(ApiType::Anthropic)["system"], json!(sys));
    }

    #[test]
    fn every_route_has_its_own_path() {
        let mut paths: Vec<&str> = Route::ALL.iter().map(|r| r.path()).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), Route::ALL.len());
    }
}
