//! Unit tests of `config.rs`.
use super::*;
use serde_json::json;

fn errors(text: &str) -> Vec<String> {
    ModelsConfig::from_json_str(text)
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| e.to_string())
        .collect()
}

const GOOD: &str = r#"{
  "google_models": {
    "gemma": {
      "providers": [
        {"id": "gemma-a", "api_host": "http://10.0.0.11:7000/", "api_type": "vllm",
         "api_token": "sekret", "model_path": "google/gemma-3-12b-it", "input_size": 4096,
         "weight": 3, "keep_alive": "35m", "tool_calling": true, "is_embedding": false,
         "some_python_only_key": {"x": 1}},
        {"id": "gemma-b", "api_host": "http://10.0.0.12:11434", "api_type": "ollama",
         "api_token": null, "model_path": "", "keep_alive": null}
      ],
      "providers_sleep": []
    },
    "inactive": {"providers": "not even a list"}
  },
  "active_models": {"google_models": ["gemma"]}
}"#;

#[test]
fn loads_a_python_gateway_config() {
    let c = ModelsConfig::from_json_str(GOOD).unwrap();
    assert_eq!(c.model_names(), vec!["gemma"]);
    let m = c.model("gemma").unwrap();
    assert_eq!(m.group, "google_models");
    let a = &m.providers[0];
    assert_eq!(a.api_host, "http://10.0.0.11:7000");
    assert_eq!(a.api_type, ApiType::Vllm);
    assert_eq!(a.weight, 3.0, "weights are not clamped to 1");
    assert_eq!(a.keep_alive, Some(Duration::from_secs(35 * 60)));
    assert_eq!(a.upstream_model("gemma"), "google/gemma-3-12b-it");
    assert_eq!(format!("{:?}", a.api_token), "\"***\"");
    assert_eq!(a.api_token.expose(), "sekret");
    let b = &m.providers[1];
    assert_eq!(b.upstream_model("gemma"), "gemma");
    assert_eq!(b.weight, 1.0);
    assert!(b.tool_calling, "absent tool_calling passes tools through");
}

#[test]
fn each_problem_is_named_with_its_path() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"g": {"gemma": {"providers": [{"id":"a","api_host":"http://h","api_type":"vllm"},
               {"id":"b","api_type":"vllm"}]}}, "active_models": {"g": ["gemma"]}}"#,
            "g.\"gemma\".providers[1]: missing \"api_host\"",
        ),
        (
            r#"{"g": {"m": {"providers": []}}, "active_models": {"g": ["m"]}}"#,
            "g.\"m\".providers: must list at least one provider",
        ),
        (
            r#"{"g": {"m": {"providers": [{"id":"a","api_host":"http://h","api_type":"tgi"}]}},
               "active_models": {"g": ["m"]}}"#,
            "g.\"m\".providers[0].api_type: unknown api_type \"tgi\"; valid: openai, vllm, lmstudio, ollama, anthropic, llama.cpp",
        ),
        (
            r#"{"g": {"m": {"providers": [{"id":"a","api_host":"http://h","api_type":"vllm","weight":-1}]}},
               "active_models": {"g": ["m"]}}"#,
            "g.\"m\".providers[0].weight: must be a number ≥ 0",
        ),
        (
            r#"{"g": {}, "active_models": {"g": ["ghost"]}}"#,
            "active_models.g[0]: active model \"ghost\" is not defined under group \"g\"",
        ),
        (
            r#"{"g": {"m": {}}, "active_models": {"g": ["m"]}}"#,
            "g.\"m\": missing \"providers\"",
        ),
        (r#"{"g": {}}"#, "missing \"active_models\""),
        (
            r#"{"g": {"m": {"providers": [{"id":"a","api_host":"10.0.0.1:80","api_type":"vllm"}]}},
               "active_models": {"g": ["m"]}}"#,
            "g.\"m\".providers[0].api_host: must be an http:// or https:// URL, got \"10.0.0.1:80\"",
        ),
        (
            r#"{"g": {"m": {"providers": [{"id":"a","api_host":"http://h","api_type":"vllm","keep_alive":"soon"}]}},
               "active_models": {"g": ["m"]}}"#,
            "g.\"m\".providers[0].keep_alive: not a duration like \"35m\", \"30s\", \"1h\": \"soon\"",
        ),
        (
            r#"{"g": {"m": {"providers": [{"id":"a","api_host":"http://h","api_type":"vllm","tool_calling":"yes"}]}},
               "active_models": {"g": ["m"]}}"#,
            "g.\"m\".providers[0].tool_calling: must be true or false",
        ),
    ];
    for (text, want) in cases {
        let got = errors(text);
        assert_eq!(got, vec![want.to_string()], "config: {text}");
    }
}

#[test]
fn duplicate_ids_across_models_are_rejected_and_all_errors_are_collected() {
    let text = r#"{"g": {
        "m1": {"providers": [{"id":"x","api_host":"http://h","api_type":"vllm"}]},
        "m2": {"providers": [{"id":"x","api_host":"http://h","api_type":"vllm"},
                              {"api_host":"http://h","api_type":"vllm"}]}},
        "active_models": {"g": ["m1", "m2"]}}"#;
    assert_eq!(
        errors(text),
        vec![
            "g.\"m2\".providers[0].id: provider id \"x\" is used more than once".to_string(),
            "g.\"m2\".providers[1]: missing \"id\"".to_string(),
        ]
    );
}

#[test]
fn invalid_json_names_line_and_column() {
    let e = errors("{\n  \"a\": ,\n}");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("(line 2, column 8): not valid JSON"),
        "{}",
        e[0]
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("35m"), Some(Duration::from_secs(2100)));
    assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("m"), None);
    assert_eq!(parse_duration("5x"), None);
    assert_eq!(parse_duration_or_secs("90"), Some(Duration::from_secs(90)));
}

#[test]
fn fallbacks_must_name_active_models_without_cycles_or_deep_chains() {
    let provider = |id: &str| json!([{"id": id, "api_host": "http://h", "api_type": "vllm"}]);
    let cfg = |defs: Value| {
        let names: Vec<String> = defs.as_object().unwrap().keys().cloned().collect();
        json!({"g": defs, "active_models": {"g": names}}).to_string()
    };
    let ok = cfg(json!({
        "a": {"providers": provider("a"), "fallbacks": ["b"], "context_window_fallbacks": ["c"]},
        "b": {"providers": provider("b")},
        "c": {"providers": provider("c"), "content_policy_fallbacks": ["b"]},
    }));
    let m = ModelsConfig::from_json_str(&ok).unwrap();
    assert_eq!(m.model("a").unwrap().fallbacks, vec!["b".to_string()]);
    assert_eq!(
        m.model("c").unwrap().content_policy_fallbacks,
        vec!["b".to_string()]
    );
    let cases = [
        (
            json!({"a": {"providers": provider("a"), "fallbacks": ["nope"]}}),
            "g.\"a\".fallbacks[0]: \"nope\" is not an active model",
        ),
        (
            json!({"a": {"providers": provider("a"), "fallbacks": ["a"]}}),
            "g.\"a\".fallbacks[0]: a model cannot fall back to itself",
        ),
        (
            json!({"a": {"providers": provider("a"), "fallbacks": [1]}}),
            "g.\"a\".fallbacks[0]: must be a model name (a string)",
        ),
        (
            json!({
                "a": {"providers": provider("a"), "fallbacks": ["b"]},
                "b": {"providers": provider("b"), "context_window_fallbacks": ["a"]},
            }),
            "fallbacks form a cycle: \"a\" → \"b\" → \"a\"",
        ),
        (
            json!({
                "a": {"providers": provider("a"), "fallbacks": ["b"]},
                "b": {"providers": provider("b"), "fallbacks": ["c"]},
                "c": {"providers": provider("c"), "fallbacks": ["d"]},
                "d": {"providers": provider("d"), "fallbacks": ["e"]},
                "e": {"providers": provider("e")},
            }),
            "g.\"a\": its fallback chain is 4 deep; at most 3 allowed",
        ),
    ];
    for (defs, want) in cases {
        let errs = ModelsConfig::from_json_str(&cfg(defs))
            .unwrap_err()
            .render("f.json");
        assert!(errs.contains(want), "want {want:?} in:\n{errs}");
    }
}
