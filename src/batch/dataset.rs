//! Reading an input dataset: a JSON array of objects, or JSONL (one object per line). The kind is
//! taken from the content: a file whose first non-blank character is `[` is a JSON array.
//!
//! Every row gets its 1-based line number in the file (for an array element, the line where it
//! starts) and an id: the `--id-field` value (a string or a number), else the line number (JSONL)
//! or the 0-based element index (JSON array). A row that cannot be used — unparseable line, not an
//! object, text field missing or not a string, id missing, ill-typed or repeated — is a
//! [`BadRow`] with its line number; nothing is dropped without one. Blank JSONL lines are not rows.

use std::collections::HashMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub line: usize,
    pub id: Value,
    pub text: String,
    /// The whole input object (the text and id fields included).
    pub fields: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BadRow {
    pub line: usize,
    pub id: Option<Value>,
    pub reason: String,
}

#[derive(Debug, Default, PartialEq)]
pub struct Dataset {
    pub rows: Vec<Row>,
    pub bad: Vec<BadRow>,
}

/// The key rows are matched on between runs (the id's compact JSON: `3` and `"3"` differ).
pub fn id_key(id: &Value) -> String {
    id.to_string()
}

/// Parses the file's bytes. `Err` only when the file as a whole is unusable (a broken JSON
/// array, or not UTF-8 where the whole must be).
pub fn parse(bytes: &[u8], field: &str, id_field: Option<&str>) -> Result<Dataset, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let items: Vec<(usize, Value, Result<Value, String>)> = if first == Some(&b'[') {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            format!(
                "not UTF-8 text (at byte {}), so not a JSON array",
                e.valid_up_to()
            )
        })?;
        let raws: Vec<&RawValue> =
            serde_json::from_str(text).map_err(|e| format!("not a JSON array of objects: {e}"))?;
        let base = text.as_ptr() as usize;
        raws.into_iter()
            .enumerate()
            .map(|(i, raw)| {
                let offset = raw.get().as_ptr() as usize - base;
                let line = 1 + memchr::memchr_iter(b'\n', &bytes[..offset]).count();
                let parsed = serde_json::from_str(raw.get()).map_err(|e| e.to_string());
                (line, Value::from(i), parsed)
            })
            .collect()
    } else {
        bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, l)| l.iter().any(|b| !b.is_ascii_whitespace()))
            .map(|(i, l)| {
                let parsed = serde_json::from_slice(l).map_err(|e| json_error(&e));
                (i + 1, Value::from(i + 1), parsed)
            })
            .collect()
    };
    let mut out = Dataset::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, default_id, parsed) in items {
        let bad = |id: Option<Value>, reason: String| BadRow { line, id, reason };
        let fields = match parsed {
            Ok(Value::Object(m)) => m,
            Ok(other) => {
                out.bad
                    .push(bad(None, format!("not a JSON object but {}", kind(&other))));
                continue;
            }
            Err(e) => {
                out.bad.push(bad(None, e));
                continue;
            }
        };
        let id = match id_field {
            None => default_id,
            Some(f) => match fields.get(f) {
                Some(v @ (Value::String(_) | Value::Number(_))) => v.clone(),
                None | Some(Value::Null) => {
                    out.bad.push(bad(None, format!("no id field {f:?}")));
                    continue;
                }
                Some(other) => {
                    out.bad.push(bad(
                        None,
                        format!("id field {f:?} is {}, not a string or number", kind(other)),
                    ));
                    continue;
                }
            },
        };
        let text = match fields.get(field) {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => {
                out.bad.push(bad(Some(id), format!("no field {field:?}")));
                continue;
            }
            Some(other) => {
                out.bad.push(bad(
                    Some(id),
                    format!("field {field:?} is {}, not a string", kind(other)),
                ));
                continue;
            }
        };
        if let Some(first) = seen.insert(id_key(&id), line) {
            seen.insert(id_key(&id), first);
            out.bad.push(bad(
                Some(id.clone()),
                format!("id {id} repeats the id of line {first}"),
            ));
            continue;
        }
        out.rows.push(Row {
            line,
            id,
            text,
            fields,
        });
    }
    Ok(out)
}

/// serde_json's message with the column, without its "line 1" (a JSONL line is one line).
fn json_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let msg = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(m, _)| m);
    format!("not valid JSON at column {}: {msg}", e.column())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines_ids(d: &Dataset) -> Vec<(usize, Value, &str)> {
        d.rows
            .iter()
            .map(|r| (r.line, r.id.clone(), r.text.as_str()))
            .collect()
    }

    fn bad(d: &Dataset) -> Vec<(usize, String)> {
        d.bad.iter().map(|b| (b.line, b.reason.clone())).collect()
    }

    #[test]
    fn jsonl_rows_and_bad_lines() {
        let input = "{\"text\": \"a\", \"k\": 1}\n\n  \r\n{\"text\": 5}\n{broken\n[1]\n\
                     {\"other\": \"x\"}\r\n{\"text\": \"b\"}\r\n{\"text\": \"c\"}";
        let d = parse(input.as_bytes(), "text", None).unwrap();
        assert_eq!(
            lines_ids(&d),
            vec![(1, json!(1), "a"), (8, json!(8), "b"), (9, json!(9), "c")]
        );
        assert_eq!(
            d.rows[0].fields,
            *json!({"text": "a", "k": 1}).as_object().unwrap()
        );
        let b = bad(&d);
        assert_eq!(
            b.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
            vec![4, 5, 6, 7]
        );
        assert!(b[0].1.contains("field \"text\" is a number"), "{b:?}");
        assert_eq!(b[1].1, "not valid JSON at column 2: key must be a string");
        assert!(b[2].1.contains("not a JSON object but an array"), "{b:?}");
        assert!(b[3].1.contains("no field \"text\""), "{b:?}");
        assert_eq!(d.bad[0].id, Some(json!(4)), "the id is known once parsed");
    }

    #[test]
    fn json_array_rows_carry_their_line() {
        let input = "\u{feff}[\n  {\"body\": \"a\"},\n  {\"body\": \"b\",\n   \"n\": 2},\n  3,\n  {\"body\": \"c\"}\n]\n";
        let d = parse(input.as_bytes(), "body", None).unwrap();
        assert_eq!(
            lines_ids(&d),
            vec![(2, json!(0), "a"), (3, json!(1), "b"), (6, json!(3), "c")]
        );
        assert_eq!(bad(&d)[0].0, 5);
        assert!(bad(&d)[0].1.contains("not a JSON object but a number"));
    }

    #[test]
    fn a_broken_array_is_an_error_for_the_whole_file() {
        let e = parse(b"[{\"text\": \"a\"},\n{\"text\": ]", "text", None).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(parse(b"[\"\xff\"]", "text", None)
            .unwrap_err()
            .contains("UTF-8"));
    }

    #[test]
    fn id_field() {
        let input = "{\"t\":\"a\",\"id\":\"x1\"}\n{\"t\":\"b\",\"id\":7}\n{\"t\":\"c\"}\n\
                     {\"t\":\"d\",\"id\":[1]}\n{\"t\":\"e\",\"id\":\"x1\"}\n{\"t\":\"f\",\"id\":\"7\"}\n";
        let d = parse(input.as_bytes(), "t", Some("id")).unwrap();
        assert_eq!(
            lines_ids(&d),
            vec![
                (1, json!("x1"), "a"),
                (2, json!(7), "b"),
                (6, json!("7"), "f")
            ]
        );
        let b = bad(&d);
        assert_eq!(b[0], (3, "no id field \"id\"".into()));
        assert_eq!(
            b[1],
            (
                4,
                "id field \"id\" is an array, not a string or number".into()
            )
        );
        assert_eq!(b[2], (5, "id \"x1\" repeats the id of line 1".into()));
    }

    #[test]
    fn empty_inputs() {
        assert_eq!(parse(b"", "text", None).unwrap(), Dataset::default());
        assert_eq!(parse(b" [ ] ", "text", None).unwrap(), Dataset::default());
    }
}
