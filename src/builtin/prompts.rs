//! The prompt library: the built-in endpoints' system prompts, read once at start-up from
//! `<LLM_ROUTER_PROMPTS_DIR>/builtin/system/<lang>/<name>.prompt`.
//!
//! Invariants: a loaded [`PromptLibrary`] holds every [`PromptName`] in every [`Language`], each
//! non-empty and containing the placeholder its endpoint fills (a prompt that lost its
//! placeholder would silently drop the question or the topic, so that is a start-up error too).
//! Placeholders are replaced per request; the library itself never changes after loading.

use std::path::{Path, PathBuf};

/// The languages prompts exist in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Language {
    Pl,
    En,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::Pl, Language::En];

    pub fn as_str(self) -> &'static str {
        match self {
            Language::Pl => "pl",
            Language::En => "en",
        }
    }

    /// `pl` or `en`, any case, surrounding spaces ignored.
    pub fn parse(s: &str) -> Option<Language> {
        let s = s.trim().to_ascii_lowercase();
        Language::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The valid values, for error messages.
    pub fn valid() -> String {
        Language::ALL.map(Language::as_str).join(", ")
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The prompts of SPEC §5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PromptName {
    ChatConversationSimple,
    AnswerFromContextSimple,
    FullArticle,
    NewsOnSm,
    TranslateToPl,
    SimplifyText,
    GenerateQuestions,
    AnonymizeText,
}

impl PromptName {
    pub const ALL: [PromptName; 8] = [
        PromptName::ChatConversationSimple,
        PromptName::AnswerFromContextSimple,
        PromptName::FullArticle,
        PromptName::NewsOnSm,
        PromptName::TranslateToPl,
        PromptName::SimplifyText,
        PromptName::GenerateQuestions,
        PromptName::AnonymizeText,
    ];

    /// The file name without `.prompt`.
    pub fn file_stem(self) -> &'static str {
        match self {
            PromptName::ChatConversationSimple => "chat-conversation-simple",
            PromptName::AnswerFromContextSimple => "answer-from-context-simple",
            PromptName::FullArticle => "full-article",
            PromptName::NewsOnSm => "news-on-sm",
            PromptName::TranslateToPl => "translate-to-pl",
            PromptName::SimplifyText => "simplify-text",
            PromptName::GenerateQuestions => "generate-questions",
            PromptName::AnonymizeText => "anonymize-text",
        }
    }

    /// The placeholder the endpoint fills in, if any.
    pub fn placeholder(self) -> Option<&'static str> {
        match self {
            PromptName::AnswerFromContextSimple => Some(QUESTION),
            PromptName::FullArticle => Some(USER_QUERY),
            PromptName::GenerateQuestions => Some(QUESTION_NUM),
            _ => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Filled with the question (`answer-from-context-simple`).
pub const QUESTION: &str = "##QUESTION_STR##";
/// Filled with the user's topic or request (`full-article`).
pub const USER_QUERY: &str = "##USER_Q_STR##";
/// Filled with the number of questions wanted (`generate-questions`).
pub const QUESTION_NUM: &str = "##QUESTION_NUM_STR##";

/// Every prompt in every language, loaded and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptLibrary {
    /// `[language][prompt]`, trimmed.
    texts: Vec<Vec<String>>,
}

/// Where a prompt lives under the prompts root.
pub fn prompt_path(root: &Path, lang: Language, name: PromptName) -> PathBuf {
    root.join("builtin")
        .join("system")
        .join(lang.as_str())
        .join(format!("{}.prompt", name.file_stem()))
}

impl PromptLibrary {
    /// Reads every prompt under `root`; every missing, unreadable, empty or placeholder-less file
    /// is reported (each message names the file).
    pub fn load(root: &Path) -> Result<PromptLibrary, Vec<String>> {
        let mut errs = Vec::new();
        let mut texts = Vec::new();
        for lang in Language::ALL {
            let mut row = Vec::new();
            for name in PromptName::ALL {
                let path = prompt_path(root, lang, name);
                let file = path.display();
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        let text = text.trim().to_string();
                        if text.is_empty() {
                            errs.push(format!("{file}: the prompt is empty"));
                        } else if let Some(p) = name.placeholder().filter(|p| !text.contains(p)) {
                            errs.push(format!(
                                "{file}: the prompt lacks its placeholder {p} (the endpoint fills it per request)"
                            ));
                        }
                        row.push(text);
                    }
                    Err(e) => {
                        errs.push(format!(
                            "{file}: cannot read prompt (LLM_ROUTER_PROMPTS_DIR={}): {e}",
                            root.display()
                        ));
                        row.push(String::new());
                    }
                }
            }
            texts.push(row);
        }
        if errs.is_empty() {
            Ok(PromptLibrary { texts })
        } else {
            Err(errs)
        }
    }

    /// A prompt as loaded, placeholders unfilled.
    pub fn get(&self, lang: Language, name: PromptName) -> &str {
        &self.texts[lang.index()][name.index()]
    }

    /// A prompt with its placeholder (if it has one) replaced by `value`.
    pub fn render(&self, lang: Language, name: PromptName, value: &str) -> String {
        let text = self.get(lang, name);
        match name.placeholder() {
            Some(p) => text.replace(p, value),
            None => text.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"))
    }

    #[test]
    fn the_shipped_tree_loads_with_every_prompt_in_both_languages() {
        let lib = PromptLibrary::load(&shipped()).unwrap();
        for lang in Language::ALL {
            for name in PromptName::ALL {
                assert!(!lib.get(lang, name).is_empty(), "{lang:?} {name:?}");
            }
        }
        // The two languages are really different texts.
        assert_ne!(
            lib.get(Language::Pl, PromptName::SimplifyText),
            lib.get(Language::En, PromptName::SimplifyText)
        );
    }

    #[test]
    fn placeholders_are_filled() {
        let lib = PromptLibrary::load(&shipped()).unwrap();
        for (name, value) in [
            (PromptName::AnswerFromContextSimple, "Gdzie leży Kraków?"),
            (PromptName::FullArticle, "wybory samorządowe"),
            (PromptName::GenerateQuestions, "3"),
        ] {
            for lang in Language::ALL {
                let s = lib.render(lang, name, value);
                assert!(s.contains(value), "{lang:?} {name:?}: {s}");
                assert!(!s.contains("##"), "{lang:?} {name:?}: {s}");
            }
        }
        assert_eq!(
            lib.render(Language::En, PromptName::SimplifyText, "ignored"),
            lib.get(Language::En, PromptName::SimplifyText)
        );
    }

    #[test]
    fn every_missing_or_broken_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        // Copy the shipped tree, then break three files.
        for lang in Language::ALL {
            std::fs::create_dir_all(dir.path().join("builtin/system").join(lang.as_str())).unwrap();
            for name in PromptName::ALL {
                std::fs::copy(
                    prompt_path(&shipped(), lang, name),
                    prompt_path(dir.path(), lang, name),
                )
                .unwrap();
            }
        }
        std::fs::remove_file(prompt_path(dir.path(), Language::En, PromptName::NewsOnSm)).unwrap();
        std::fs::write(
            prompt_path(dir.path(), Language::Pl, PromptName::SimplifyText),
            " \n",
        )
        .unwrap();
        std::fs::write(
            prompt_path(dir.path(), Language::Pl, PromptName::FullArticle),
            "Napisz artykuł.",
        )
        .unwrap();
        let errs = PromptLibrary::load(dir.path()).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(
            errs.iter()
                .any(|e| e.contains("en/news-on-sm.prompt: cannot read prompt")),
            "{errs:#?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("pl/simplify-text.prompt: the prompt is empty")),
            "{errs:#?}"
        );
        assert!(
            errs.iter().any(|e| e.contains(
                "pl/full-article.prompt: the prompt lacks its placeholder ##USER_Q_STR##"
            )),
            "{errs:#?}"
        );
    }

    #[test]
    fn languages_parse_leniently_and_list_the_valid_ones() {
        assert_eq!(Language::parse(" EN "), Some(Language::En));
        assert_eq!(Language::parse("pl"), Some(Language::Pl));
        assert_eq!(Language::parse("de"), None);
        assert_eq!(Language::valid(), "pl, en");
    }
}
