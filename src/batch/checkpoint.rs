//! The checkpoint: a JSONL file of finished rows, one JSON object with an `id` per line, appended
//! and flushed row by row (one `write` of the whole line), so a killed run loses at most the rows
//! in flight. For `--format jsonl` it is the output itself; for csv/xlsx it is
//! `<output>.partial.jsonl`, rendered to the output when the run ends.
//!
//! On start the checkpoint is scanned: an unterminated last line (a kill during a write) is cut
//! off the file and its row is done again; any other line that is not a row with an `id` is an
//! error (the file was edited or is not ours), never skipped silently.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::dataset::id_key;

/// The checkpoint path for this output and format.
pub fn path_for(output: &Path, format: super::args::Format) -> PathBuf {
    match format {
        super::args::Format::Jsonl => output.to_path_buf(),
        _ => {
            let mut name = output.as_os_str().to_owned();
            name.push(".partial.jsonl");
            PathBuf::from(name)
        }
    }
}

#[derive(Debug, PartialEq)]
pub struct Scan {
    /// Rows in file order, the first of each id only.
    pub rows: Vec<Value>,
    /// Bytes of complete lines: the file is cut to this length.
    pub keep: usize,
    /// The line number of a dropped unterminated last line.
    pub dropped: Option<usize>,
}

/// Reads checkpoint bytes (pure).
pub fn scan(bytes: &[u8]) -> Result<Scan, String> {
    let keep = memchr::memrchr(b'\n', bytes).map_or(0, |i| i + 1);
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    let mut line_no = 0;
    for line in bytes[..keep].split(|b| *b == b'\n') {
        line_no += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let row: Value = serde_json::from_slice(line).map_err(|e| {
            format!("line {line_no} is not a result row (not JSON: {e}); move the file away to start over")
        })?;
        let Some(id) = row.get("id").filter(|v| !v.is_null()) else {
            return Err(format!(
                "line {line_no} is not a result row (no \"id\"); move the file away to start over"
            ));
        };
        if seen.insert(id_key(id)) {
            rows.push(row);
        }
    }
    let tail = &bytes[keep..];
    let dropped = (!tail.is_empty()).then(|| 1 + memchr::memchr_iter(b'\n', bytes).count());
    Ok(Scan {
        rows,
        keep,
        dropped,
    })
}

/// Loads the checkpoint at `path` (none yet: empty) and cuts a torn last line off the file.
pub fn load(path: &Path) -> Result<Scan, String> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => f
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let scan = scan(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if scan.keep < bytes.len() {
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(scan.keep as u64))
            .map_err(|e| format!("{}: cutting the unfinished last line: {e}", path.display()))?;
    }
    Ok(scan)
}

/// Appends rows, one write per row.
pub struct Writer {
    file: File,
    path: PathBuf,
}

impl Writer {
    pub fn open(path: &Path) -> Result<Writer, String> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Writer {
            file,
            path: path.to_path_buf(),
        })
    }

    /// `line` is one serialized row without its newline.
    pub fn append(&mut self, line: &str) -> Result<(), String> {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.file
            .write_all(&buf)
            .and_then(|_| self.file.flush())
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }

    /// Durable on disk (at the end of a run; per row only the write is needed to survive a kill).
    pub fn sync(&self) -> Result<(), String> {
        self.file
            .sync_data()
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn complete_lines_are_rows() {
        let input = b"{\"id\":1,\"r\":\"a\"}\n\n{\"id\":\"x\"}\n{\"id\":1,\"r\":\"dup\"}\n";
        let s = scan(input).unwrap();
        assert_eq!(s.rows, vec![json!({"id":1,"r":"a"}), json!({"id":"x"})]);
        assert_eq!(s.dropped, None);
        assert_eq!(s.keep, input.len());
    }

    #[test]
    fn an_unterminated_last_line_is_dropped_even_if_it_parses() {
        for tail in ["{\"id\":2,\"r\":\"b", "{\"id\":2}"] {
            let bytes = format!("{{\"id\":1}}\n{tail}");
            let s = scan(bytes.as_bytes()).unwrap();
            assert_eq!(s.rows, vec![json!({"id":1})], "{tail}");
            assert_eq!(s.keep, 9);
            assert_eq!(s.dropped, Some(2));
        }
        assert_eq!(scan(b"{\"id").unwrap().dropped, Some(1));
        assert_eq!(scan(b"").unwrap().rows, Vec::<Value>::new());
    }

    #[test]
    fn a_broken_complete_line_is_an_error() {
        let e = scan(b"{\"id\":1}\n{\"id\":\n{\"id\":3}\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        let e = scan(b"{\"r\":1}\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("no \"id\""), "{e}");
    }

    #[test]
    fn load_cuts_the_torn_line_and_appends_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        assert_eq!(load(&p).unwrap().rows.len(), 0, "no file yet");
        std::fs::write(&p, "{\"id\":1}\n{\"id\":2,\"res").unwrap();
        let s = load(&p).unwrap();
        assert_eq!(s.rows, vec![json!({"id":1})]);
        let mut w = Writer::open(&p).unwrap();
        w.append("{\"id\":2}").unwrap();
        w.sync().unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"id\":1}\n{\"id\":2}\n"
        );
    }

    #[test]
    fn paths() {
        use crate::batch::args::Format;
        let o = Path::new("/d/out.csv");
        assert_eq!(path_for(o, Format::Jsonl), PathBuf::from("/d/out.csv"));
        assert_eq!(
            path_for(o, Format::Csv),
            PathBuf::from("/d/out.csv.partial.jsonl")
        );
    }
}
