//! The built-in text endpoints of SPEC §5 (conversation, answers from supplied context, articles,
//! translation, simplification, question generation, generative anonymisation), as pure parts:
//!
//! - [`prompts`]: the prompt library, loaded once at start-up and checked (every file present,
//!   non-empty, with its placeholder);
//! - [`routes`]: a request body → a [`routes::Plan`] (the canonical model calls to make, each with
//!   its system prompt and the generation options), and the models' answers → the response body;
//!   the per-text stream chunk; the question-list parser.
//!
//! The HTTP side (`handlers/builtin.rs`) only reads the body, runs the plan's calls through one
//! function each for stream and non-stream, and writes what `routes` shapes.

pub mod prompts;
pub mod routes;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use prompts::PromptLibrary;

/// `(name, default, meaning)` of the variables this module reads (joined into `--help`).
pub const VARS: &[(&str, &str, &str)] = &[(
    "LLM_ROUTER_ENABLE_GENAI_ANONYMIZE_TEXT_EP",
    "false",
    "serve {prefix}/anonymize_text_genai (a model rewrites the text with personal data replaced)",
)];

/// The built-in endpoints' configuration: the loaded prompts and the optional route.
#[derive(Clone, Debug)]
pub struct BuiltinSettings {
    pub prompts: Arc<PromptLibrary>,
    /// `LLM_ROUTER_ENABLE_GENAI_ANONYMIZE_TEXT_EP`: `P/anonymize_text_genai` exists (else 404).
    pub genai_anonymize: bool,
}

impl BuiltinSettings {
    /// Reads the variables and loads every prompt under `LLM_ROUTER_PROMPTS_DIR` (default
    /// `prompts`); every problem is returned, each naming its variable or file.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<BuiltinSettings, Vec<String>> {
        let get = |name: &str, default: &str| -> String {
            vars.get(name)
                .cloned()
                .unwrap_or_else(|| default.to_string())
        };
        let default_of = |name: &str| {
            VARS.iter()
                .find(|(n, _, _)| *n == name)
                .map_or("", |(_, d, _)| d)
        };
        let root = PathBuf::from(get("LLM_ROUTER_PROMPTS_DIR", "prompts"));
        let genai_anonymize = crate::settings::parse_bool(&get(
            "LLM_ROUTER_ENABLE_GENAI_ANONYMIZE_TEXT_EP",
            default_of("LLM_ROUTER_ENABLE_GENAI_ANONYMIZE_TEXT_EP"),
        ));
        let prompts = PromptLibrary::load(&root)?;
        Ok(BuiltinSettings {
            prompts: Arc::new(prompts),
            genai_anonymize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut v: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.entry("LLM_ROUTER_PROMPTS_DIR".into())
            .or_insert_with(|| concat!(env!("CARGO_MANIFEST_DIR"), "/prompts").into());
        v
    }

    #[test]
    fn the_anonymize_route_is_off_unless_asked_for() {
        assert!(
            !BuiltinSettings::from_vars(&vars(&[]))
                .unwrap()
                .genai_anonymize
        );
        let on = vars(&[("LLM_ROUTER_ENABLE_GENAI_ANONYMIZE_TEXT_EP", "Tak")]);
        assert!(BuiltinSettings::from_vars(&on).unwrap().genai_anonymize);
    }

    #[test]
    fn help_lists_this_modules_variables() {
        let h = crate::settings::help_text();
        for (name, default, _) in VARS {
            assert!(h.contains(name), "{name}");
            assert!(h.contains(&format!("[default: {default}]")), "{name}");
        }
    }

    #[test]
    fn a_missing_prompt_tree_names_the_files() {
        let errs = BuiltinSettings::from_vars(&vars(&[(
            "LLM_ROUTER_PROMPTS_DIR",
            "/nonexistent/prompts",
        )]))
        .unwrap_err();
        assert_eq!(errs.len(), 16, "{errs:#?}");
        assert!(errs[0].starts_with(
            "/nonexistent/prompts/builtin/system/pl/chat-conversation-simple.prompt: cannot read"
        ));
    }
}
