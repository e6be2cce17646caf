//! The one normaliser of golden files (the dialect unit goldens under `src/dialects/testdata/`
//! and the router's conformance goldens under `tests/golden/`): replaces the values that differ
//! from run to run with `"<field>"` placeholders, and nothing else.
//!
//! Strict on purpose: only fields whose value really varies are masked (the converter's and this
//! fake's `load_duration` / `prompt_eval_duration` are fixed, so they stay compared), and a field
//! is masked only when its value has the expected type — a `created` that became `null` or a
//! string, or an id without one of the generated prefixes, shows up in the golden diff.

use serde_json::Value;

/// Prefixes of the ids the router (or a provider) generates per response.
const GENERATED_ID_PREFIXES: &[&str] = &["chatcmpl-", "cmpl-", "msg_", "resp_", "fc_"];

/// Whether `val`, under key `key`, is a volatile value to mask.
fn volatile(key: &str, val: &Value) -> bool {
    match key {
        // Unix seconds (OpenAI `created`, Responses `created_at`) or RFC 3339 (Ollama).
        "created" => val.is_u64(),
        "created_at" => val.is_u64() || val.is_string(),
        // Measured nanoseconds.
        "total_duration" | "eval_duration" => val.is_u64(),
        "id" | "item_id" => val
            .as_str()
            .is_some_and(|s| GENERATED_ID_PREFIXES.iter().any(|p| s.starts_with(p))),
        _ => false,
    }
}

/// Replaces generated ids, timestamps and measured durations, at any depth, by `"<key>"`.
pub fn normalise(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if volatile(k, val) {
                    *val = Value::String(format!("<{k}>"));
                } else {
                    normalise(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalise),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_only_volatile_values_of_the_expected_type() {
        let cases = [
            (
                json!({"created": 1_700_000_000u64}),
                json!({"created": "<created>"}),
            ),
            (json!({"created": null}), json!({"created": null})),
            (json!({"created": "soon"}), json!({"created": "soon"})),
            (
                json!({"created_at": "2026-01-01T00:00:00Z"}),
                json!({"created_at": "<created_at>"}),
            ),
            (
                json!({"created_at": 17u64}),
                json!({"created_at": "<created_at>"}),
            ),
            (
                json!({"total_duration": 5u64, "eval_duration": 3u64}),
                json!({"total_duration": "<total_duration>", "eval_duration": "<eval_duration>"}),
            ),
            (json!({"total_duration": -1}), json!({"total_duration": -1})),
            (
                json!({"load_duration": 0, "prompt_eval_duration": 20}),
                json!({"load_duration": 0, "prompt_eval_duration": 20}),
            ),
            (json!({"id": "chatcmpl-abc"}), json!({"id": "<id>"})),
            (
                json!({"id": "call_fake0000"}),
                json!({"id": "call_fake0000"}),
            ),
            (json!({"id": 7}), json!({"id": 7})),
            (json!({"item_id": "fc_1"}), json!({"item_id": "<item_id>"})),
            (
                json!({"choices": [{"delta": {"id": "msg_1", "created": 3u64}}]}),
                json!({"choices": [{"delta": {"id": "<id>", "created": "<created>"}}]}),
            ),
        ];
        for (mut got, want) in cases {
            let before = got.clone();
            normalise(&mut got);
            assert_eq!(got, want, "{before}");
        }
    }
}
