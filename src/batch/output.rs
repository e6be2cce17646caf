//! Result rows and the CSV / XLSX renderings of a finished checkpoint.
//!
//! A result row is one JSON object: `id`, `input` (the text sent), `result`, then the input row's
//! other fields (the text and id fields are `input` and `id` now). An input field named `id`,
//! `input` or `result` that is not one of those is kept as `row.<name>`, so nothing is
//! overwritten. CSV/XLSX columns: `id`, `input`, `result`, then every other field seen, sorted;
//! strings as text, numbers and booleans as such (CSV: as JSON writes them), arrays and objects
//! as compact JSON, null or absent as an empty cell. Both are written to `<output>.tmp` and
//! renamed, so an interrupted render never leaves half a file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::dataset::Row;

/// The keys the tool writes itself.
pub const RESERVED: [&str; 3] = ["id", "input", "result"];

/// One result row as a JSONL line (no newline), keys in the documented order.
pub fn result_line(row: &Row, field: &str, id_field: Option<&str>, result: &Value) -> String {
    let mut out = String::with_capacity(row.text.len() * 2 + 64);
    let json = |v: &Value| serde_json::to_string(v).expect("a Value serializes");
    out.push_str("{\"id\":");
    out.push_str(&json(&row.id));
    out.push_str(",\"input\":");
    out.push_str(&json(&Value::String(row.text.clone())));
    out.push_str(",\"result\":");
    out.push_str(&json(result));
    for (k, v) in &row.fields {
        if k == field || Some(k.as_str()) == id_field {
            continue;
        }
        let name = if RESERVED.contains(&k.as_str()) {
            format!("row.{k}")
        } else {
            k.clone()
        };
        out.push(',');
        out.push_str(&json(&Value::String(name)));
        out.push(':');
        out.push_str(&json(v));
    }
    out.push('}');
    out
}

/// Column names for these rows.
pub fn columns(rows: &[Value]) -> Vec<String> {
    let mut others = BTreeSet::new();
    for r in rows {
        if let Some(m) = r.as_object() {
            others.extend(
                m.keys()
                    .filter(|k| !RESERVED.contains(&k.as_str()))
                    .cloned(),
            );
        }
    }
    RESERVED
        .iter()
        .map(|s| s.to_string())
        .chain(others)
        .collect()
}

fn text_cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn tmp_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

fn finish(tmp: &Path, output: &Path) -> Result<(), String> {
    std::fs::rename(tmp, output).map_err(|e| format!("{}: {e}", output.display()))
}

/// Writes `rows` (already in output order) as CSV (RFC 4180 quoting, by the `csv` crate).
pub fn write_csv(output: &Path, rows: &[Value]) -> Result<(), String> {
    let tmp = tmp_path(output);
    let err = |e: csv::Error| format!("{}: {e}", tmp.display());
    let cols = columns(rows);
    let mut w = csv::Writer::from_path(&tmp).map_err(err)?;
    w.write_record(&cols).map_err(err)?;
    for r in rows {
        w.write_record(cols.iter().map(|c| text_cell(r.get(c))))
            .map_err(err)?;
    }
    w.flush().map_err(|e| format!("{}: {e}", tmp.display()))?;
    drop(w);
    finish(&tmp, output)
}

/// Excel's limit for one cell's text.
const XLSX_MAX_CHARS: usize = 32_767;

/// Writes `rows` as one worksheet, `results`, with a bold frozen header row. Returns how many
/// cells were cut to Excel's 32,767-character limit.
pub fn write_xlsx(output: &Path, rows: &[Value]) -> Result<usize, String> {
    use rust_xlsxwriter::{Format, Workbook};
    let tmp = tmp_path(output);
    let err = |e: rust_xlsxwriter::XlsxError| format!("{}: {e}", output.display());
    let cols = columns(rows);
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("results").map_err(err)?;
    let bold = Format::new().set_bold();
    for (c, name) in cols.iter().enumerate() {
        sheet
            .write_string_with_format(0, c as u16, name, &bold)
            .map_err(err)?;
    }
    let mut cut = 0;
    for (i, r) in rows.iter().enumerate() {
        let row = u32::try_from(i + 1).map_err(|_| "too many rows for XLSX".to_string())?;
        for (c, name) in cols.iter().enumerate() {
            let col = c as u16;
            match r.get(name) {
                None | Some(Value::Null) => {}
                Some(Value::Bool(b)) => {
                    sheet.write_boolean(row, col, *b).map_err(err)?;
                }
                // Only numbers a double holds exactly; bigger integers stay text.
                Some(Value::Number(n))
                    if n.as_f64()
                        .is_some_and(|f| n.is_f64() || f.abs() <= 9_007_199_254_740_992.0) =>
                {
                    sheet
                        .write_number(row, col, n.as_f64().expect("checked"))
                        .map_err(err)?;
                }
                v => {
                    let mut s = text_cell(v);
                    if s.chars().count() > XLSX_MAX_CHARS {
                        s = s.chars().take(XLSX_MAX_CHARS).collect();
                        cut += 1;
                    }
                    sheet.write_string(row, col, &s).map_err(err)?;
                }
            }
        }
    }
    sheet.set_freeze_panes(1, 0).map_err(err)?;
    book.save(&tmp).map_err(err)?;
    finish(&tmp, output)?;
    Ok(cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(fields: Value, id: Value, text: &str) -> Row {
        Row {
            line: 1,
            id,
            text: text.into(),
            fields: fields.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn result_lines_keep_the_other_fields_without_overwriting() {
        let r = row(
            json!({"text": "hi", "lang": "en", "id": 9, "result": "old", "input": [1]}),
            json!(3),
            "hi",
        );
        let line = result_line(&r, "text", None, &json!("cześć"));
        assert!(
            line.starts_with("{\"id\":3,\"input\":\"hi\",\"result\":\"cześć\","),
            "{line}"
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            json!({"id": 3, "input": "hi", "result": "cześć", "lang": "en",
                   "row.id": 9, "row.result": "old", "row.input": [1]})
        );
        let r = row(json!({"body": "x", "uid": "u1", "n": 1}), json!("u1"), "x");
        let v: Value =
            serde_json::from_str(&result_line(&r, "body", Some("uid"), &json!("sport"))).unwrap();
        assert_eq!(
            v,
            json!({"id": "u1", "input": "x", "result": "sport", "n": 1})
        );
    }

    #[test]
    fn columns_are_fixed_then_sorted() {
        let rows = vec![
            json!({"id": 1, "input": "a", "result": "x", "zeta": 1}),
            json!({"id": 2, "input": "b", "result": "y", "alpha": true}),
        ];
        assert_eq!(
            columns(&rows),
            vec!["id", "input", "result", "alpha", "zeta"]
        );
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("o.csv");
        let rows = vec![
            json!({"id": 1, "input": "a, \"quoted\"\nline", "result": "x",
                               "n": 2.5, "tags": ["a"], "none": null}),
        ];
        write_csv(&p, &rows).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "id,input,result,n,none,tags\n1,\"a, \"\"quoted\"\"\nline\",x,2.5,,\"[\"\"a\"\"]\"\n"
        );
        assert!(!dir.path().join("o.csv.tmp").exists());
    }
}
