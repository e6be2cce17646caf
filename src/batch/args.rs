//! Command-line arguments of `llm-router batch`: parsed into [`Options`] by a pure function, so
//! every usage error is a message naming the argument (exit 2) and is unit-tested.

use std::path::PathBuf;
use std::time::Duration;

use crate::builtin::prompts::Language;

/// What one run does.
#[derive(Clone, Debug, PartialEq)]
pub enum Task {
    /// Through `P/translate`. `None`: the router's default prompt language.
    Translate { language: Option<Language> },
    /// Through `P/extended_conversation_with_model`, the answer mapped onto one label.
    Classify { labels: Labels, language: Language },
}

impl Task {
    pub fn name(&self) -> &'static str {
        match self {
            Task::Translate { .. } => "translate",
            Task::Classify { .. } => "classify",
        }
    }
}

/// Where the labels come from (a file is read after parsing, in `main`).
#[derive(Clone, Debug, PartialEq)]
pub enum Labels {
    List(Vec<String>),
    File(PathBuf),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// A running router at this base URL (no trailing slash), routes under `prefix`.
    Remote { url: String, prefix: String },
    /// A router started inside this process from the `LLM_ROUTER_*` environment.
    InProcess,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
    Xlsx,
}

impl Format {
    fn parse(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            "xlsx" => Some(Format::Xlsx),
            _ => None,
        }
    }

    /// From the output's extension; JSONL for anything else.
    fn from_path(p: &std::path::Path) -> Format {
        p.extension()
            .and_then(|e| e.to_str())
            .and_then(Format::parse)
            .unwrap_or(Format::Jsonl)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub task: Task,
    pub input: PathBuf,
    pub output: PathBuf,
    pub format: Format,
    pub field: String,
    pub id_field: Option<String>,
    pub target: Target,
    pub api_key: Option<String>,
    pub model: String,
    pub concurrency: usize,
    pub timeout: Duration,
    pub errors: Option<PathBuf>,
}

/// `Help` for `--help` anywhere; otherwise the options or a message naming the bad argument.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Help,
    Run(Box<Options>),
}

const DEFAULT_ROUTER: &str = "http://127.0.0.1:8080";
pub const DEFAULT_CONCURRENCY: usize = 8;
const MAX_CONCURRENCY: usize = 512;

/// Parses `batch`'s arguments (without the leading `batch`). `env_key` is
/// `LLM_ROUTER_BATCH_API_KEY`, used when `--api-key` is absent.
pub fn parse(args: &[String], env_key: Option<String>) -> Result<Parsed, String> {
    if args.iter().any(|a| a == "-h" || a == "--help") || args.is_empty() {
        return Ok(Parsed::Help);
    }
    let (cmd, rest) = args.split_first().expect("non-empty");
    if cmd != "translate" && cmd != "classify" {
        return Err(format!(
            "unknown batch command {cmd:?}; expected translate or classify"
        ));
    }
    let mut values: Vec<(&'static str, String)> = Vec::new();
    let mut in_process = false;
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if name == "--in-process" {
            if inline.is_some() {
                return Err("--in-process takes no value".into());
            }
            in_process = true;
            continue;
        }
        let known: &'static str = match name {
            "--input" => "--input",
            "--output" => "--output",
            "--format" => "--format",
            "--field" => "--field",
            "--id-field" => "--id-field",
            "--router" => "--router",
            "--prefix" => "--prefix",
            "--api-key" => "--api-key",
            "--model" => "--model",
            "--concurrency" => "--concurrency",
            "--timeout" => "--timeout",
            "--language" => "--language",
            "--labels" => "--labels",
            "--labels-file" => "--labels-file",
            "--errors" => "--errors",
            other => return Err(format!("unknown argument {other:?} for batch {cmd}")),
        };
        let value = match inline {
            Some(v) => v,
            None => it.next().cloned().ok_or(format!("{known} needs a value"))?,
        };
        if values.iter().any(|(n, _)| *n == known) {
            return Err(format!("{known} given twice"));
        }
        values.push((known, value));
    }
    let get = |n: &str| {
        values
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.as_str())
    };
    let non_empty = |n: &'static str| -> Result<Option<String>, String> {
        match get(n) {
            Some("") => Err(format!("{n} must not be empty")),
            other => Ok(other.map(String::from)),
        }
    };
    let required = |n: &'static str| non_empty(n)?.ok_or(format!("{n} is required"));

    let input = PathBuf::from(required("--input")?);
    let output = PathBuf::from(required("--output")?);
    let model = required("--model")?;
    let format = match get("--format") {
        Some(f) => {
            Format::parse(f).ok_or(format!("--format {f:?}: expected jsonl, csv or xlsx"))?
        }
        None => Format::from_path(&output),
    };
    let field = non_empty("--field")?.unwrap_or_else(|| "text".into());
    let id_field = non_empty("--id-field")?;
    let language = match get("--language") {
        Some(l) => Some(Language::parse(l).ok_or(format!(
            "--language {l:?}: expected one of {}",
            Language::valid()
        ))?),
        None => None,
    };
    let concurrency = match get("--concurrency") {
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_CONCURRENCY).contains(&n) => n,
            _ => {
                return Err(format!(
                    "--concurrency {s:?}: expected a whole number from 1 to {MAX_CONCURRENCY}"
                ))
            }
        },
        None => DEFAULT_CONCURRENCY,
    };
    let timeout = match get("--timeout") {
        Some(s) => match s.parse::<u64>() {
            Ok(n) if n >= 1 => Duration::from_secs(n),
            _ => return Err(format!("--timeout {s:?}: expected whole seconds ≥ 1")),
        },
        None => Duration::from_secs(600),
    };
    let target = match (in_process, get("--router")) {
        (true, Some(_)) => return Err("--router and --in-process exclude each other".into()),
        (true, None) => {
            if get("--prefix").is_some() {
                return Err(
                    "--prefix is for --router; in-process the prefix is LLM_ROUTER_EP_PREFIX"
                        .into(),
                );
            }
            Target::InProcess
        }
        (false, router) => {
            let url = router.unwrap_or(DEFAULT_ROUTER).trim_end_matches('/');
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 9 {
                return Err(format!(
                    "--router {url:?}: expected an http:// or https:// URL"
                ));
            }
            let prefix = get("--prefix").unwrap_or("/api").trim_end_matches('/');
            if !prefix.is_empty() && !prefix.starts_with('/') {
                return Err(format!("--prefix {prefix:?}: must start with /"));
            }
            Target::Remote {
                url: url.to_string(),
                prefix: prefix.to_string(),
            }
        }
    };
    let api_key = non_empty("--api-key")?.or(env_key.filter(|k| !k.is_empty()));
    let task = match cmd.as_str() {
        "translate" => {
            for n in ["--labels", "--labels-file"] {
                if get(n).is_some() {
                    return Err(format!("{n} is for batch classify"));
                }
            }
            Task::Translate { language }
        }
        _ => {
            let labels = match (get("--labels"), get("--labels-file")) {
                (Some(_), Some(_)) => {
                    return Err("--labels and --labels-file exclude each other".into())
                }
                (None, None) => return Err("--labels or --labels-file is required".into()),
                (Some(list), None) => Labels::List(
                    super::labels::check(list.split(',').map(str::to_string).collect())
                        .map_err(|e| format!("--labels: {e}"))?,
                ),
                (None, Some("")) => return Err("--labels-file must not be empty".into()),
                (None, Some(path)) => Labels::File(PathBuf::from(path)),
            };
            Task::Classify {
                labels,
                language: language.unwrap_or(Language::Pl),
            }
        }
    };
    Ok(Parsed::Run(Box::new(Options {
        task,
        input,
        output,
        format,
        field,
        id_field,
        target,
        api_key,
        model,
        concurrency,
        timeout,
        errors: non_empty("--errors")?.map(PathBuf::from),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn run(s: &str) -> Options {
        match parse(&args(s), None) {
            Ok(Parsed::Run(o)) => *o,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let o = run("translate --input in.jsonl --output out.jsonl --model m");
        assert_eq!(o.task, Task::Translate { language: None });
        assert_eq!(o.field, "text");
        assert_eq!(o.id_field, None);
        assert_eq!(o.format, Format::Jsonl);
        assert_eq!(o.concurrency, 8);
        assert_eq!(o.timeout, Duration::from_secs(600));
        assert_eq!(
            o.target,
            Target::Remote {
                url: "http://127.0.0.1:8080".into(),
                prefix: "/api".into()
            }
        );
        assert_eq!(o.api_key, None);
    }

    #[test]
    fn every_option() {
        let o = run(
            "classify --input=a.json --output out.xlsx --model m --field body \
             --id-field uid --router http://h:1/ --prefix /x/ --api-key K --concurrency 3 \
             --timeout 5 --language EN --labels a,b --errors e.jsonl",
        );
        assert_eq!(o.format, Format::Xlsx, "from the extension");
        assert_eq!(o.field, "body");
        assert_eq!(o.id_field.as_deref(), Some("uid"));
        assert_eq!(
            o.target,
            Target::Remote {
                url: "http://h:1".into(),
                prefix: "/x".into()
            }
        );
        assert_eq!(o.api_key.as_deref(), Some("K"));
        assert_eq!(o.concurrency, 3);
        assert_eq!(o.timeout, Duration::from_secs(5));
        assert_eq!(
            o.task,
            Task::Classify {
                labels: Labels::List(vec!["a".into(), "b".into()]),
                language: Language::En
            }
        );
        assert_eq!(o.errors, Some(PathBuf::from("e.jsonl")));
        let o = run(
            "classify --input a --output o.xlsx --format csv --model m --in-process \
             --labels-file l.txt",
        );
        assert_eq!(o.format, Format::Csv, "--format wins over the extension");
        assert_eq!(o.target, Target::InProcess);
        assert_eq!(
            o.task,
            Task::Classify {
                labels: Labels::File("l.txt".into()),
                language: Language::Pl
            }
        );
    }

    #[test]
    fn api_key_from_the_environment_unless_given() {
        let a = args("translate --input i --output o --model m");
        let Ok(Parsed::Run(o)) = parse(&a, Some("E".into())) else {
            panic!()
        };
        assert_eq!(o.api_key.as_deref(), Some("E"));
        let a = args("translate --input i --output o --model m --api-key F");
        let Ok(Parsed::Run(o)) = parse(&a, Some("E".into())) else {
            panic!()
        };
        assert_eq!(o.api_key.as_deref(), Some("F"));
    }

    #[test]
    fn help() {
        assert_eq!(parse(&[], None), Ok(Parsed::Help));
        assert_eq!(parse(&args("classify --help"), None), Ok(Parsed::Help));
    }

    #[test]
    fn errors_name_the_argument() {
        let base = "--input i --output o --model m";
        for (line, needle) in [
            ("sort --input i", "unknown batch command \"sort\""),
            ("translate --output o --model m", "--input is required"),
            ("translate --input i --model m", "--output is required"),
            ("translate --input i --output o", "--model is required"),
            (
                &format!("translate {base} --bogus 1"),
                "unknown argument \"--bogus\"",
            ),
            (
                &format!("translate {base} --concurrency 0"),
                "--concurrency \"0\"",
            ),
            (
                &format!("translate {base} --concurrency x"),
                "--concurrency \"x\"",
            ),
            (&format!("translate {base} --timeout 0"), "--timeout \"0\""),
            (
                &format!("translate {base} --language de"),
                "--language \"de\"",
            ),
            (
                &format!("translate {base} --format xml"),
                "--format \"xml\"",
            ),
            (
                &format!("translate {base} --router ftp://x"),
                "--router \"ftp://x\"",
            ),
            (
                &format!("translate {base} --prefix api"),
                "--prefix \"api\"",
            ),
            (
                &format!("translate {base} --labels a"),
                "--labels is for batch classify",
            ),
            (
                &format!("translate {base} --field"),
                "--field needs a value",
            ),
            (
                &format!("translate {base} --field="),
                "--field must not be empty",
            ),
            (
                &format!("translate {base} --model n"),
                "--model given twice",
            ),
            (
                &format!("translate {base} --in-process --router http://h"),
                "exclude",
            ),
            (
                &format!("classify {base}"),
                "--labels or --labels-file is required",
            ),
            (
                &format!("classify {base} --labels a --labels-file f"),
                "exclude",
            ),
            (&format!("classify {base} --labels a,A"), "--labels: "),
            (&format!("classify {base} --labels ,"), "--labels: "),
        ] {
            let err = parse(&args(line), None).expect_err(line);
            assert!(err.contains(needle), "{line}: {err}");
        }
    }
}
