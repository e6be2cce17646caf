//! Unit tests of `semantic.rs`.
use super::*;

const RULES: &str = r##"{
    "complexity_thresholds": {"simple": 5, "medium": 20},
    "intents": {
        "code": {"min_tier": "medium",
                 "keywords": ["python", "kod", "programow*", "```:3"],
                 "phrases": ["napisz funkcję:4", "write a function"],
                 "patterns": ["\\bdef \\w+\\(", {"regex": "#include", "weight": 5}]},
        "math": {"min_tier": "complex", "keywords": ["całka", "całkę", "integral", "√"],
                 "patterns": ["\\d+ ?[-+*/^] ?\\d+"]},
        "creative": {"keywords": ["wiersz", "poem", "story:2"]},
        "general": {"keywords": ["what", "co"]}
    }
}"##;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut v: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.entry(MODELS_VAR.into())
        .or_insert("small|mid|large".into());
    v
}

fn router(pairs: &[(&str, &str)]) -> SemanticRouter {
    SemanticRouter::from_parts(&vars(pairs), RULES, "rules.json").expect("valid rules")
}

fn errors(pairs: &[(&str, &str)], rules: &str) -> Vec<String> {
    SemanticRouter::from_parts(&vars(pairs), rules, "rules.json").expect_err("invalid")
}

#[test]
fn intent_complexity_and_model_per_prompt() {
    let r = router(&[]);
    // (text, intent, complexity, model)
    let cases = [
        ("Write a poem", "creative", Complexity::Simple, "small"),
        ("hello there", NO_INTENT, Complexity::Simple, "small"),
        // Code raises a simple prompt to the middle tier.
        ("Fix my Python", "code", Complexity::Simple, "mid"),
        // Polish capitals are lowercased (Ł, Ą) and stems match inflections.
        ("PROGRAMOWANIE", "code", Complexity::Simple, "mid"),
        ("Policz CAŁKĘ", "math", Complexity::Simple, "large"),
        ("ile to 2+2", "math", Complexity::Simple, "large"),
        (
            "co to jest wiersz biały i jak go pisać w szkole średniej dziś",
            "creative",
            Complexity::Medium,
            "mid",
        ),
        ("#include <stdio.h>", "code", Complexity::Simple, "mid"),
    ];
    for (text, intent, complexity, model) in cases {
        let d = r.decide(text);
        assert_eq!(
            (d.intent, d.complexity, d.model),
            (intent, complexity, model),
            "{text:?}: {d:?}"
        );
    }
}

#[test]
fn keywords_match_whole_words_and_stems_match_prefixes() {
    let r = router(&[]);
    // "kod" must not fire inside "kodeks", "co" not inside "coś"; "what" needs a boundary.
    assert_eq!(r.decide("kodeks cywilny").intent, NO_INTENT);
    assert_eq!(r.decide("cośtam whatever").intent, NO_INTENT);
    assert_eq!(r.decide("kod, proszę").intent, "code");
    assert_eq!(r.decide("(kod)").intent, "code");
    // Symbols match without boundaries.
    assert_eq!(r.decide("x√2").intent, "math");
    assert_eq!(r.decide("a```b").intent, "code");
    assert_eq!(r.decide("programowaniu").intent, "code");
    assert_eq!(r.decide("reprogramowanie").intent, NO_INTENT);
}

#[test]
fn scores_sum_each_term_once_and_phrases_span_whitespace() {
    let r = router(&[]);
    assert_eq!(r.decide("kod").intent_score, 1.0);
    assert_eq!(r.decide("kod kod KOD").intent_score, 1.0);
    // keyword 1 + phrase 4; the phrase matches across a newline and double spaces.
    assert_eq!(r.decide("Napisz\n  funkcję, kod").intent_score, 5.0);
    // Pattern (3) + keyword (1).
    assert_eq!(r.decide("def foo(x): python").intent_score, 4.0);
    // Weighted pattern object.
    assert_eq!(r.decide("#include").intent_score, 5.0);
}

#[test]
fn the_highest_score_wins_and_ties_go_to_the_first_category() {
    let r = router(&[]);
    // creative 2 (story) vs code 1 (kod).
    assert_eq!(r.decide("story about kod").intent, "creative");
    // code 1 vs creative 1: code is listed first.
    assert_eq!(r.decide("kod wiersz").intent, "code");
    assert_eq!(r.decide("wiersz kod").intent, "code");
}

#[test]
fn complexity_follows_the_token_estimate_and_thresholds() {
    let r = router(&[]);
    // 4 words → 5 tokens (≤ 5, simple); 5 words → 6 (medium); 17 words → 21 (complex).
    let words = |n: usize| vec!["ab"; n].join(" ");
    assert_eq!(r.decide(&words(4)).estimated_tokens, 5);
    assert_eq!(r.decide(&words(4)).complexity, Complexity::Simple);
    assert_eq!(r.decide(&words(5)).complexity, Complexity::Medium);
    assert_eq!(r.decide(&words(17)).complexity, Complexity::Complex);
    assert_eq!(r.decide(&words(17)).model, "large");
    // One long "word" (code without spaces) counts by characters: 40 chars → 10 tokens.
    let d = r.decide(&"x".repeat(40));
    assert_eq!((d.estimated_tokens, d.complexity), (10, Complexity::Medium));
}

#[test]
fn empty_text_goes_to_the_default_model() {
    let r = router(&[(DEFAULT_MODEL_VAR, "fallback")]);
    for text in ["", "  \n\t "] {
        let d = r.decide(text);
        assert_eq!(
            (d.model, d.intent, d.estimated_tokens),
            ("fallback", NO_INTENT, 0)
        );
    }
    // Without the variable: the pool's first model.
    assert_eq!(router(&[]).decide("").model, "small");
}

#[test]
fn pools_of_one_two_and_four_models() {
    // (pool, text, model)
    let cases = [
        (
            "only",
            "ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab",
            "only",
        ),
        ("a|b", "hi", "a"),
        ("a|b", "ab ab ab ab ab ab", "b"),
        ("a|b", "python", "b"),
        ("a|b|c|d", "ab ab ab ab ab ab", "c"),
        ("a|b|c|d", "python", "c"),
        ("a|b|c|d", "całka", "d"),
    ];
    for (pool, text, model) in cases {
        let r = router(&[(MODELS_VAR, pool)]);
        assert_eq!(r.decide(text).model, model, "{pool} {text:?}");
    }
}

#[test]
fn env_overrides_replace_a_category_or_add_one() {
    let r = router(&[
        (
            "LLM_ROUTER_ROUTING_INTENT_CODE",
            "rust|cargo build:5|borrow checker",
        ),
        ("LLM_ROUTER_ROUTING_INTENT_LEGAL", "umowa|kodeks:3"),
        (THRESHOLDS_VAR, "1|2"),
    ]);
    // The file's code terms are gone, the override's count; code keeps its min tier.
    assert_eq!(r.decide("python").intent, NO_INTENT);
    let d = r.decide("rust");
    assert_eq!((d.intent, d.intent_score, d.model), ("code", 1.0, "mid"));
    assert_eq!(r.decide("cargo   build").intent_score, 5.0);
    // A multi-word entry without a weight is a phrase (weight 2).
    assert_eq!(r.decide("the borrow checker").intent_score, 2.0);
    let d = r.decide("kodeks");
    assert_eq!((d.intent, d.intent_score), ("legal", 3.0));
    assert_eq!(r.thresholds(), (1, 2));
}

#[test]
fn term_syntax() {
    let t = |s: &str| parse_term(s, 1.0);
    let term = |text: &str, weight, stem| Term {
        text: text.into(),
        weight,
        stem,
    };
    assert_eq!(t("Kod"), Ok(term("kod", 1.0, false)));
    assert_eq!(t("ŁÓDŹ:2.5"), Ok(term("łódź", 2.5, false)));
    assert_eq!(t("programow*:2"), Ok(term("programow", 2.0, true)));
    assert_eq!(t("std::vector"), Ok(term("std::vector", 1.0, false)));
    assert_eq!(t("  write   code :4"), Ok(term("write code", 4.0, false)));
    assert!(t("x:0").unwrap_err().contains("positive"));
    assert!(t(":3").unwrap_err().contains("no text"));
}

#[test]
fn bad_variables_are_named() {
    let cases = [
        ((MODELS_VAR, " | "), MODELS_VAR),
        ((MODELS_VAR, "a|b|a"), "listed twice"),
        ((THRESHOLDS_VAR, "25"), THRESHOLDS_VAR),
        ((THRESHOLDS_VAR, "25|x"), "\"x\" is not a whole number"),
        ((THRESHOLDS_VAR, "150|25"), "above"),
        ((DEFAULT_MODEL_VAR, " "), DEFAULT_MODEL_VAR),
        (
            ("LLM_ROUTER_ROUTING_INTENT_CODE", "||"),
            "LLM_ROUTER_ROUTING_INTENT_CODE",
        ),
        (
            ("LLM_ROUTER_ROUTING_INTENT_NONE", "x"),
            "LLM_ROUTER_ROUTING_INTENT_NONE",
        ),
        (("LLM_ROUTER_ROUTING_INTENT_CODE", "x:-1"), "positive"),
    ];
    for ((var, value), want) in cases {
        let e = errors(&[(var, value)], RULES);
        assert!(e.iter().any(|e| e.contains(want)), "{var}={value:?}: {e:?}");
    }
}

#[test]
fn bad_rules_are_reported_with_their_path_all_at_once() {
    let rules = r#"{"complexity_thresholds": {"simple": 1, "medium": 2},
        "intents": {"code": {"min_tier": "huge", "keywords": ["two words", "ok"],
                             "patterns": ["(unclosed"]},
                    "Bad": {}}}"#;
    let e = errors(&[], rules);
    for want in [
        "rules.json: intents.code.min_tier: \"huge\"",
        "rules.json: intents.code.keywords[0]: \"two words\" has several words",
        "rules.json: intents.code.patterns[0]: not a valid regex",
        "rules.json: intents.Bad:",
    ] {
        assert!(e.iter().any(|e| e.starts_with(want)), "{want}: {e:?}");
    }
    assert_eq!(e.len(), 4, "{e:?}");
    let e = errors(
        &[],
        r#"{"intents": {}, "complexity_thresholds": {"simple": 1}}"#,
    );
    assert!(e[0].contains("medium"), "{e:?}");
    let e = errors(
        &[],
        r#"{"intents": {}, "complexity_thresholds": {"simple": 1, "medium": 2}, "extra": 1}"#,
    );
    assert!(e[0].contains("unknown field `extra`"), "{e:?}");
    let e = errors(
        &[],
        r#"{"intents": {"a": {}, "a": {}}, "complexity_thresholds": {"simple": 1, "medium": 2}}"#,
    );
    assert!(e[0].contains("defined twice"), "{e:?}");
    let no_pool = SemanticRouter::from_parts(&HashMap::new(), RULES, "rules.json").unwrap_err();
    assert!(no_pool[0].starts_with(MODELS_VAR), "{no_pool:?}");
    let missing =
        SemanticRouter::from_vars(&vars(&[]), Path::new("/nonexistent/simple.json")).unwrap_err();
    assert!(
        missing[0].starts_with("/nonexistent/simple.json: cannot read"),
        "{missing:?}"
    );
}

/// The shipped rules file parses and routes obvious prompts in both languages.
#[test]
fn the_shipped_rules_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../")
        .join(DEFAULT_RULES_PATH);
    let r = SemanticRouter::from_vars(&vars(&[]), &path).expect("shipped rules are valid");
    assert_eq!(r.thresholds(), (25, 150));
    let cases = [
        ("Napisz funkcję w Pythonie, która sortuje listę", "code"),
        ("Write a Rust function that parses JSON", "code"),
        (
            "Mam błąd w kodzie: TypeError: undefined is not a function",
            "code",
        ),
        ("Oblicz pochodną funkcji f(x) = x^2 + 3x", "math"),
        ("Solve the equation 2x + 5 = 13", "math"),
        ("Ile wynosi całka z sin(x)?", "math"),
        ("Napisz wiersz o jesieni", "creative"),
        ("Write a short story about a dragon", "creative"),
        ("Jaka jest stolica Francji?", "general"),
        ("What is the capital of France?", "general"),
        ("Wyjaśnij, dlaczego niebo jest niebieskie", "general"),
    ];
    for (text, intent) in cases {
        assert_eq!(
            r.decide(text).intent,
            intent,
            "{text:?}: {:?}",
            r.decide(text)
        );
    }
    assert_eq!(r.decide("Napisz funkcję w Pythonie").model, "mid");
    assert_eq!(r.decide("Jaka jest stolica Francji?").model, "small");
}
