//! `llm-router batch translate|classify`: the original gateway's companion CLI. Reads a JSON or
//! JSONL dataset, sends each row's text to a router (running, or started in this process),
//! `--concurrency` rows at a time, and writes one result row per input row.
//!
//! Invariants:
//! - every finished row is in the checkpoint ([`checkpoint`]) before it counts as done, so a run
//!   that is killed, interrupted or loses its router continues, when started again with the same
//!   arguments, from the rows not yet written — a written row is never sent again;
//! - every input row ends up written or reported (stderr, the summary, `--errors`) with its line
//!   number; the exit code is 0 only when every row was written.
//!
//! Exit codes: 0 all rows written; 1 the run stopped (router unreachable, key refused, output not
//! writable), 2 bad arguments or an unusable input/checkpoint, 3 some rows failed, 130 Ctrl-C.

pub mod args;
pub mod checkpoint;
pub mod client;
pub mod dataset;
pub mod labels;
pub mod output;
pub mod progress;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use futures_util::future::{select, Either};
use futures_util::StreamExt as _;
use serde_json::{json, Value};

use args::{Format, Labels, Options, Parsed, Target, Task};
use client::{CallError, RouterClient};
use dataset::{id_key, BadRow, Dataset, Row};
use progress::Progress;

pub const USAGE: &str = "\
Usage:
  llm-router batch translate --input FILE --output FILE --model M [options]
  llm-router batch classify  --input FILE --output FILE --model M --labels a,b,c [options]

Sends the text of every row of a JSON / JSONL dataset through an llm-router and writes one result
row per input row. A run that was killed or interrupted continues, when started again with the same
arguments, where it stopped: rows already written are not sent again.

Input and output:
  --input FILE        a JSON array of objects, or JSONL (one object per line); a file whose first
                      non-blank character is [ is read as a JSON array
  --field NAME        the field holding the text (default: text); it must be a string
  --id-field NAME     the field identifying a row (a string or number, unique); default: the line
                      number (JSONL) or the 0-based element index (JSON array) — then a run
                      continues correctly only if the input was not edited in between
  --output FILE       where the results go
  --format F          jsonl, csv or xlsx (default: from --output's extension, else jsonl)
  --errors FILE       also write this run's failed rows as JSONL: {\"line\", \"id\", \"error\"}

  A result row is {\"id\", \"input\": the text, \"result\", ...the input row's other fields}; an input
  field named id, input or result (other than the --id-field) is kept as row.<name>. JSONL rows are
  written as they finish (completion order; match them by id), each line written and flushed at
  once: the JSONL output is its own checkpoint. For csv and xlsx, rows go to the checkpoint
  <output>.partial.jsonl and are rendered to <output> in input order when the run has gone through
  every row (columns id, input, result, then the other fields sorted by name; xlsx: one sheet,
  \"results\"). The checkpoint stays: run again, the same command sends nothing and renders
  <output> again; delete both files to start over.

The router:
  --router URL        a running router (default: http://127.0.0.1:8080)
  --prefix P          its LLM_ROUTER_EP_PREFIX (default: /api)
  --in-process        start a router inside this process instead, configured like the server by
                      the LLM_ROUTER_* variables (see llm-router --help), on a free 127.0.0.1 port
  --api-key KEY       sent as Authorization: Bearer KEY (or set LLM_ROUTER_BATCH_API_KEY, which
                      keeps the key out of the process list); a key needs the builtin policy
  --model M           the model (public name) to use; required
  --concurrency N     rows in flight at once (default: 8)
  --timeout S         seconds to wait for one row's answer (default: 600)

translate:
  One text per call to the router's P/translate (the built-in translation into Polish; its
  result is the row's result).
  --language pl|en    the language of the router's translate prompt (default: the router's
                      LLM_ROUTER_DEFAULT_EP_LANGUAGE)

classify:
  One call per row to P/extended_conversation_with_model: a system prompt listing the labels and
  asking for exactly one of them, the text as the user turn, temperature 0. The answer must be one
  of the labels ignoring case (surrounding whitespace, quotes, backticks, asterisks and a final full
  stop are ignored); the result is that label as given. Any other answer fails the row (reported
  with the answer), it is never guessed.
  --labels a,b,c      the labels, comma-separated
  --labels-file FILE  or one label per line (blank lines and lines starting with # are skipped)
  --language pl|en    the language of the instruction (default: pl)

Failures:
  A row that cannot be used (a line that is not JSON, not an object, the text field missing or not
  a string, a missing or repeated id) or that fails (the router's error for it, no answer within
  --timeout, a classify answer that is none of the labels) is reported on stderr with its line
  number and in the closing summary, and skipped; it is tried again by the next run. A 429 or 503
  answer with a Retry-After of at most 60 s is waited out (three times at most) before it counts.
  A router that cannot be reached, or refuses the API key, stops the run: everything written so
  far is kept.
  A progress bar with rows/s and ETA is shown on a terminal; otherwise a plain progress line goes
  to stderr every 10 s.

Exit codes: 0 every row written; 1 the run stopped early; 2 bad arguments or an unusable input;
3 some rows failed; 130 interrupted (Ctrl-C).

Examples:
  llm-router batch translate --input news.jsonl --output news-pl.jsonl --model gemma --language en
  llm-router batch classify --input posts.json --field body --id-field uid --model gemma \\
      --labels sport,polityka,kultura --format xlsx --output posts.xlsx --errors posts-errors.jsonl
";

/// The variable `--api-key` falls back to.
pub const API_KEY_VAR: &str = "LLM_ROUTER_BATCH_API_KEY";

const EXIT_STOPPED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_ROWS_FAILED: u8 = 3;
const EXIT_INTERRUPTED: u8 = 130;

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("llm-router batch: {msg}\nSee `llm-router batch --help`.");
    ExitCode::from(EXIT_USAGE)
}

/// What a row's call needs to know, fixed for the run.
enum Work {
    Translate {
        language: Option<crate::builtin::prompts::Language>,
    },
    Classify {
        labels: Vec<String>,
        instruction: String,
    },
}

/// Entry point of `llm-router batch …` (arguments after `batch`).
pub fn main(argv: &[String]) -> ExitCode {
    let opts = match args::parse(argv, std::env::var(API_KEY_VAR).ok()) {
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(o)) => *o,
        Err(e) => return usage_error(&e),
    };
    let work = match &opts.task {
        Task::Translate { language } => Work::Translate {
            language: *language,
        },
        Task::Classify { labels, language } => {
            let labels = match labels {
                Labels::List(l) => l.clone(),
                Labels::File(p) => match std::fs::read_to_string(p)
                    .map_err(|e| e.to_string())
                    .and_then(|t| labels::from_file(&t))
                {
                    Ok(l) => l,
                    Err(e) => return usage_error(&format!("--labels-file {}: {e}", p.display())),
                },
            };
            Work::Classify {
                instruction: labels::instruction(*language, &labels),
                labels,
            }
        }
    };
    if let Some(dir) = opts.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return usage_error(&format!(
                "--output {}: the directory {} does not exist",
                opts.output.display(),
                dir.display()
            ));
        }
    }
    if same_file(&opts.input, &opts.output) {
        return usage_error("--output is the --input file");
    }
    let data = match std::fs::read(&opts.input)
        .map_err(|e| e.to_string())
        .and_then(|b| dataset::parse(&b, &opts.field, opts.id_field.as_deref()))
    {
        Ok(d) => d,
        Err(e) => return usage_error(&format!("--input {}: {e}", opts.input.display())),
    };
    let ckpt_path = checkpoint::path_for(&opts.output, opts.format);
    let earlier = match checkpoint::load(&ckpt_path) {
        Ok(s) => s,
        Err(e) => return usage_error(&format!("--output: checkpoint {e}")),
    };
    let mut errors = match &opts.errors {
        Some(p) => match File::create(p) {
            Ok(f) => Some(f),
            Err(e) => return usage_error(&format!("--errors {}: {e}", p.display())),
        },
        None => None,
    };
    let label = format!("batch {}", opts.task.name());
    if let Some(line) = earlier.dropped {
        eprintln!(
            "{label}: {}: dropped the unfinished line {line} (its row is done again)",
            ckpt_path.display()
        );
    }
    let done: HashSet<String> = earlier
        .rows
        .iter()
        .filter_map(|r| r.get("id").map(id_key))
        .collect();
    let pending: Vec<Row> = data
        .rows
        .iter()
        .filter(|r| !done.contains(&id_key(&r.id)))
        .cloned()
        .collect();
    let done_before = data.rows.len() - pending.len();
    for b in &data.bad {
        report(&label, None, b, errors.as_mut());
    }
    eprintln!(
        "{label}: {} rows in {}: {done_before} already written, {} to send, {} unusable",
        data.rows.len() + data.bad.len(),
        opts.input.display(),
        pending.len(),
        data.bad.len()
    );
    let outcome = actix_rt::System::new().block_on(run(
        &opts,
        &work,
        &ckpt_path,
        pending,
        &label,
        errors.as_mut(),
    ));
    finish(&opts, &data, &ckpt_path, done_before, outcome, &label)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// One failed row: a line on stderr (through the progress bar when there is one) and in `--errors`.
fn report(label: &str, progress: Option<&Progress>, b: &BadRow, errors: Option<&mut File>) {
    let id =
        b.id.as_ref()
            .map(|i| format!(" (id {i})"))
            .unwrap_or_default();
    let msg = format!("{label}: line {}{id}: {}", b.line, b.reason);
    match progress {
        Some(p) => p.say(&msg),
        None => eprintln!("{msg}"),
    }
    if let Some(f) = errors {
        let line = json!({"line": b.line, "id": b.id, "error": b.reason}).to_string() + "\n";
        if let Err(e) = f.write_all(line.as_bytes()) {
            eprintln!("{label}: --errors: {e}");
        }
    }
}

enum Stop {
    /// Went through every pending row.
    Done,
    /// Could not go on (router gone, key refused, output not writable).
    Stopped(String),
    /// Ctrl-C.
    Interrupted,
    /// Bad configuration found only now (in-process settings, unknown model): exit 2.
    Usage(String),
}

struct Outcome {
    stop: Stop,
    written: usize,
    failed: usize,
}

async fn run(
    opts: &Options,
    work: &Work,
    ckpt_path: &Path,
    pending: Vec<Row>,
    label: &str,
    mut errors: Option<&mut File>,
) -> Outcome {
    let mut out = Outcome {
        stop: Stop::Done,
        written: 0,
        failed: 0,
    };
    let (client, server) = match &opts.target {
        Target::Remote { url, prefix } => (
            RouterClient::new(url, prefix, opts.api_key.clone(), opts.timeout),
            None,
        ),
        Target::InProcess => match start_in_process().await {
            Ok((base, prefix, handle)) => (
                RouterClient::new(&base, &prefix, opts.api_key.clone(), opts.timeout),
                Some(handle),
            ),
            Err(stop) => {
                out.stop = stop;
                return out;
            }
        },
    };
    out.stop = async {
        if let Err(e) = client.ping().await {
            return Stop::Stopped(match e {
                CallError::Row(m) => {
                    format!("{m} (from {}/ping; is --prefix right?)", client.base())
                }
                CallError::Unreachable(m) | CallError::Refused(m) => m,
            });
        }
        if let Some(models) = client.models().await {
            if !models.contains(&opts.model) {
                return Stop::Usage(format!(
                    "--model {:?}: the router has no such model; it has: {}",
                    opts.model,
                    models.join(", ")
                ));
            }
        }
        if pending.is_empty() {
            return Stop::Done;
        }
        let mut writer = match checkpoint::Writer::open(ckpt_path) {
            Ok(w) => w,
            Err(e) => return Stop::Stopped(e),
        };
        let mut progress = Progress::new(label, pending.len() as u64);
        let client = &client;
        let results = futures_util::stream::iter(pending)
            .map(|row| async move {
                let r = call(client, work, &opts.model, &row).await;
                (row, r)
            })
            .buffer_unordered(opts.concurrency);
        let mut results = std::pin::pin!(results);
        let mut interrupt = std::pin::pin!(actix_rt::signal::ctrl_c());
        let stop = loop {
            let (row, result) = match select(results.next(), interrupt.as_mut()).await {
                Either::Left((Some(r), _)) => r,
                Either::Left((None, _)) => break Stop::Done,
                Either::Right(_) => break Stop::Interrupted,
            };
            match result {
                Ok(v) => {
                    let line = output::result_line(&row, &opts.field, opts.id_field.as_deref(), &v);
                    if let Err(e) = writer.append(&line) {
                        break Stop::Stopped(e);
                    }
                    out.written += 1;
                    progress.row(true);
                }
                Err(CallError::Row(reason)) => {
                    let bad = BadRow {
                        line: row.line,
                        id: Some(row.id.clone()),
                        reason,
                    };
                    report(label, Some(&progress), &bad, errors.as_deref_mut());
                    out.failed += 1;
                    progress.row(false);
                }
                Err(CallError::Unreachable(m) | CallError::Refused(m)) => break Stop::Stopped(m),
            }
        };
        progress.finish();
        if let Err(e) = writer.sync() {
            return Stop::Stopped(e);
        }
        stop
    }
    .await;
    if let Some(h) = server {
        h.stop(false).await;
    }
    out
}

/// The router in this process, from the environment, on a free loopback port.
async fn start_in_process() -> Result<(String, String, actix_web::dev::ServerHandle), Stop> {
    let settings = crate::Settings::from_env().map_err(|errs| {
        Stop::Usage(format!(
            "--in-process: the LLM_ROUTER_* configuration is not valid:\n  {}",
            errs.join("\n  ")
        ))
    })?;
    let prefix = settings.prefix.trim_end_matches('/').to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Stop::Stopped(format!("--in-process: cannot listen on 127.0.0.1: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Stop::Stopped(format!("--in-process: {e}")))?;
    let server = crate::run(listener, settings)
        .await
        .map_err(|e| Stop::Stopped(format!("--in-process: the router did not start: {e}")))?;
    let handle = server.handle();
    actix_rt::spawn(server);
    Ok((format!("http://{addr}"), prefix, handle))
}

/// One row's call and its result value.
async fn call(
    client: &RouterClient,
    work: &Work,
    model: &str,
    row: &Row,
) -> Result<Value, CallError> {
    match work {
        Work::Translate { language } => client
            .translate(model, *language, &row.text)
            .await
            .map(Value::String),
        Work::Classify {
            labels,
            instruction,
        } => {
            let answer = client.ask(model, instruction, &row.text).await?;
            labels::map_answer(&answer, labels)
                .map(|l| Value::String(l.to_string()))
                .map_err(CallError::Row)
        }
    }
}

/// Renders csv/xlsx, prints the summary, picks the exit code.
fn finish(
    opts: &Options,
    data: &Dataset,
    ckpt_path: &Path,
    done_before: usize,
    outcome: Outcome,
    label: &str,
) -> ExitCode {
    let failed = outcome.failed + data.bad.len();
    let written = done_before + outcome.written;
    let total = data.rows.len() + data.bad.len();
    let summary = format!(
        "{label}: {written} of {total} rows written ({} now, {done_before} earlier), {failed} failed{}",
        outcome.written,
        opts.errors
            .as_ref()
            .map(|p| format!(" (listed in {})", p.display()))
            .unwrap_or_default()
    );
    match outcome.stop {
        Stop::Usage(m) => return usage_error(&m),
        Stop::Stopped(m) => {
            eprintln!("{label}: stopped: {m}");
            eprintln!("{summary}; the {written} written rows are kept in {}: run the same command again to continue", ckpt_path.display());
            return ExitCode::from(EXIT_STOPPED);
        }
        Stop::Interrupted => {
            eprintln!("{label}: interrupted");
            eprintln!("{summary}; run the same command again to continue");
            return ExitCode::from(EXIT_INTERRUPTED);
        }
        Stop::Done => {}
    }
    if opts.format != Format::Jsonl {
        if let Err(e) = render(opts, data, ckpt_path, label) {
            eprintln!("{label}: writing {}: {e}", opts.output.display());
            return ExitCode::from(EXIT_STOPPED);
        }
    }
    eprintln!("{summary}; output: {}", opts.output.display());
    if failed > 0 {
        eprintln!("{label}: the failed rows are tried again when the same command is run again");
        ExitCode::from(EXIT_ROWS_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

/// The checkpoint's rows in input order (rows whose id is no longer in the input last).
fn render(opts: &Options, data: &Dataset, ckpt_path: &Path, label: &str) -> Result<(), String> {
    let rows = checkpoint::load(ckpt_path)?.rows;
    let order: HashMap<String, usize> = data
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| (id_key(&r.id), i))
        .collect();
    let mut keyed: Vec<(usize, usize, Value)> = rows
        .into_iter()
        .enumerate()
        .map(|(n, r)| {
            let at = r.get("id").and_then(|i| order.get(&id_key(i)).copied());
            (at.unwrap_or(usize::MAX), n, r)
        })
        .collect();
    keyed.sort_by_key(|(at, n, _)| (*at, *n));
    let rows: Vec<Value> = keyed.into_iter().map(|(_, _, r)| r).collect();
    match opts.format {
        Format::Csv => output::write_csv(&opts.output, &rows),
        Format::Xlsx => {
            let cut = output::write_xlsx(&opts.output, &rows)?;
            if cut > 0 {
                eprintln!("{label}: {cut} cells were cut to Excel's 32,767 characters (the checkpoint keeps them whole)");
            }
            Ok(())
        }
        Format::Jsonl => Ok(()),
    }
}
