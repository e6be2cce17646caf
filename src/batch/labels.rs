//! `batch classify`: the label set, the instruction sent as the system prompt, and the mapping of
//! a model's answer onto exactly one label.
//!
//! Invariants: labels are non-empty, trimmed, and distinct ignoring case (so a case-insensitive
//! match can never be ambiguous). An answer maps to a label only when, after trimming whitespace,
//! wrapping quotes/backticks/asterisks and one trailing full stop, it equals the label ignoring
//! case; anything else is an error carrying the answer — never a guess.

use crate::builtin::prompts::Language;

/// Trims the labels and checks them: at least one, none empty, none repeated (any case).
pub fn check(raw: Vec<String>) -> Result<Vec<String>, String> {
    let labels: Vec<String> = raw.iter().map(|l| l.trim().to_string()).collect();
    if labels.iter().all(|l| l.is_empty()) {
        return Err("no labels given".into());
    }
    if let Some(pos) = labels.iter().position(|l| l.is_empty()) {
        return Err(format!("label {} is empty", pos + 1));
    }
    for (i, l) in labels.iter().enumerate() {
        if let Some(j) = labels[..i]
            .iter()
            .position(|e| e.to_lowercase() == l.to_lowercase())
        {
            return Err(format!(
                "labels {} and {} ({:?}, {:?}) are the same ignoring case",
                j + 1,
                i + 1,
                labels[j],
                l
            ));
        }
    }
    Ok(labels)
}

/// A labels file: one label per line; blank lines and lines starting with `#` are skipped.
pub fn from_file(text: &str) -> Result<Vec<String>, String> {
    check(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect(),
    )
}

/// The system prompt: the task and the labels, one per line; the text itself is the user turn.
pub fn instruction(language: Language, labels: &[String]) -> String {
    let list: String = labels.iter().map(|l| format!("- {l}\n")).collect();
    match language {
        Language::En => format!(
            "You are a text classifier. Assign the text in the user's message to exactly one of \
             these categories:\n{list}\nReply with the name of the category only, written exactly \
             as above, with no other words, punctuation or explanation."
        ),
        Language::Pl => format!(
            "Jesteś klasyfikatorem tekstów. Przypisz tekst z wiadomości użytkownika do dokładnie \
             jednej z tych kategorii:\n{list}\nOdpowiedz wyłącznie nazwą kategorii, zapisaną \
             dokładnie tak jak powyżej, bez żadnych innych słów, znaków interpunkcyjnych ani \
             wyjaśnień."
        ),
    }
}

/// The label the answer names, in the label set's own spelling.
pub fn map_answer<'a>(answer: &str, labels: &'a [String]) -> Result<&'a str, String> {
    let mut a = answer.trim();
    let mut stop_seen = false;
    loop {
        let before = a;
        if !stop_seen {
            if let Some(rest) = a.strip_suffix('.') {
                a = rest.trim_end();
                stop_seen = true;
            }
        }
        for (open, close) in [("\"", "\""), ("'", "'"), ("`", "`"), ("*", "*"), ("„", "”")] {
            if a.len() >= open.len() + close.len() && a.starts_with(open) && a.ends_with(close) {
                a = a[open.len()..a.len() - close.len()].trim();
            }
        }
        if before == a {
            break;
        }
    }
    let a = a.to_lowercase();
    labels
        .iter()
        .find(|l| l.to_lowercase() == a)
        .map(String::as_str)
        .ok_or_else(|| {
            let shown: String = answer.chars().take(200).collect();
            format!(
                "the model's answer {shown:?} is none of the labels ({})",
                labels.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn label_sets() {
        assert_eq!(check(v(&[" a ", "B"])), Ok(v(&["a", "B"])));
        assert!(check(v(&["", " "])).unwrap_err().contains("no labels"));
        assert!(check(v(&["a", ""]))
            .unwrap_err()
            .contains("label 2 is empty"));
        assert!(check(v(&["Żółw", "żÓŁW"]))
            .unwrap_err()
            .contains("labels 1 and 2"));
        assert_eq!(
            from_file("# comment\nsport\n\n  polityka \r\nkultura\n"),
            Ok(v(&["sport", "polityka", "kultura"]))
        );
        assert!(from_file("\n# only a comment\n").is_err());
    }

    #[test]
    fn answers_map_onto_one_label_or_fail() {
        let labels = v(&["positive", "Negative", "Bardzo źle"]);
        for (answer, want) in [
            ("positive", Some("positive")),
            ("  POSITIVE\n", Some("positive")),
            ("negative", Some("Negative")),
            ("\"Negative\".", Some("Negative")),
            ("**positive**", Some("positive")),
            ("`positive`", Some("positive")),
            ("„bardzo ŹLE”", Some("Bardzo źle")),
            ("positive.", Some("positive")),
            ("\"positive.\"", Some("positive")),
            ("positive..", None),
            ("positive!", None),
            ("The answer is positive", None),
            ("positive, negative", None),
            ("neutral", None),
            ("", None),
            ("\"", None),
        ] {
            match (map_answer(answer, &labels), want) {
                (Ok(got), Some(w)) => assert_eq!(got, w, "{answer:?}"),
                (Err(e), None) => assert!(e.contains("none of the labels"), "{e}"),
                (got, want) => panic!("{answer:?}: {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn instruction_lists_every_label() {
        for lang in Language::ALL {
            let p = instruction(lang, &v(&["sport", "polityka"]));
            assert!(p.contains("- sport\n- polityka\n"), "{p}");
        }
    }
}
