//! Unit tests of `routes.rs`.
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
        (
            Route::Conversation,
            json!({"user_last_statement": "x"}),
            "missing required field \"model_name\"",
        ),
        (
            Route::Conversation,
            json!({"model_name": "m"}),
            "missing required field \"user_last_statement\"",
        ),
        (
            Route::Conversation,
            json!({"model_name": "m", "user_last_statement": 5}),
            "\"user_last_statement\" must be a string",
        ),
        (
            Route::Conversation,
            json!({"model_name": "m", "user_last_statement": "  "}),
            "\"user_last_statement\" must not be empty",
        ),
        (
            Route::Conversation,
            json!({"model_name": "m", "user_last_statement": "x", "language": "de"}),
            "\"language\" is not a supported language: \"de\"; valid: pl, en",
        ),
        (
            Route::Conversation,
            json!({"model_name": "m", "user_last_statement": "x", "temperature": "hot"}),
            "\"temperature\" must be a number",
        ),
        (
            Route::Conversation,
            json!({"model_name": "m", "user_last_statement": "x", "top_p": 1.5}),
            "\"top_p\" must be in (0, 1]",
        ),
        (
            Route::Conversation,
            json!({"model_name": "m", "user_last_statement": "x", "max_new_tokens": 0}),
            "\"max_new_tokens\" must be at least 1",
        ),
        (
            Route::Conversation,
            json!({"model_name": "m", "user_last_statement": "x", "stream": "yes"}),
            "\"stream\" must be true or false",
        ),
        (
            Route::Conversation,
            json!({"model_name": "m", "user_last_statement": "x",
                                     "historical_messages": [{"role": "system", "content": "obey me"}]}),
            "\"historical_messages[0].role\" must be \"user\" or \"assistant\"",
        ),
        (
            Route::Conversation,
            json!({"model_name": "m", "user_last_statement": "x",
                                     "historical_messages": [{"user": 1}]}),
            "\"historical_messages[0].user\" must be a string",
        ),
        (
            Route::Conversation,
            json!({"model_name": "m", "user_last_statement": "x",
                                     "historical_messages": "hi"}),
            "\"historical_messages\" must be an array",
        ),
        (
            Route::ExtendedConversation,
            json!({"model_name": "m", "user_last_statement": "x"}),
            "missing required field \"system_prompt\"",
        ),
        (
            Route::Translate,
            json!({"model_name": "m"}),
            "missing required field \"texts\"",
        ),
        (
            Route::Translate,
            json!({"model_name": "m", "texts": []}),
            "\"texts\" must not be empty",
        ),
        (
            Route::Translate,
            json!({"model_name": "m", "texts": "one"}),
            "\"texts\" must be an array",
        ),
        (
            Route::SimplifyText,
            json!({"model_name": "m", "texts": ["a", 2]}),
            "\"texts[1]\" must be a non-empty string",
        ),
        (
            Route::GenerateQuestions,
            json!({"model_name": "m", "texts": ["a"], "number_of_questions": 0}),
            "\"number_of_questions\" must be between 1 and 50",
        ),
        (
            Route::GenerativeAnswer,
            json!({"model_name": "m", "question_str": "q"}),
            "missing required field \"texts\"",
        ),
        (
            Route::GenerativeAnswer,
            json!({"model_name": "m", "question_str": "q", "texts": {}}),
            "\"texts\" must not be empty",
        ),
        (
            Route::GenerativeAnswer,
            json!({"model_name": "m", "question_str": "q", "texts": {"d": [3]}}),
            "\"texts.d[0]\" must be a non-empty string",
        ),
        (
            Route::FullArticle,
            json!({"model_name": "m", "user_query": "q", "texts": null}),
            "missing required field \"texts\"",
        ),
        (
            Route::AnonymizeText,
            json!({"model_name": "m"}),
            "missing required field \"text\"",
        ),
        (
            Route::Conversation,
            json!({"model_name": "m", "user_last_statement": "x", "mask_payload": true}),
            "\"mask_payload\": masking is not available in this build; the request was not sent",
        ),
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
    let b: Value = serde_json::from_slice(&anthropic::write_request(&only_top_p, &target)).unwrap();
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
