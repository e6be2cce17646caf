//! `llm-bench`: a keep-alive HTTP/1.1 load generator for chat completions. Prints one JSON line
//! with throughput, latency percentiles and time to first body byte.
//!
//! Built to cost little next to what it measures (it shares a core with the fake provider in
//! `scripts/bench.sh`): one thread, one task per connection, the request serialised once, each
//! response read into one reused buffer and decoded in place (`http.rs`), latencies counted in
//! fixed histograms (`histogram.rs`). A request counts when it starts inside the measured window
//! (after the warm-up, before the end); a stream counts as an error unless its proper last frame
//! arrived. With `--cpu-pid` it also reads that process's CPU time over the measured window, as
//! CPU per request.

#![forbid(unsafe_code)]

mod histogram;
mod http;

use std::cell::RefCell;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant};

use histogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const USAGE: &str =
    "llm-bench --url URL [--concurrency 64] [--duration 10] [--warmup 1] [--stream] \
[--model fake-model] [--max-tokens N] [--dialect openai|ollama|anthropic] [--cpu-pid PID] \
[--clk-tck 100] [--header 'Name: value']...
(prints one JSON line; with LLM_BENCH_SPREAD=1 also p1..p99 of latency on stderr)";

/// How long after the end requests still in flight are waited for; then they count as errors.
/// (One deadline for the run instead of a timer per request, which cost 3 % of llm-bench's CPU.)
const GRACE: Duration = Duration::from_secs(30);
/// The last bytes of a stream searched for its end marker.
const TAIL: usize = 512;
const READ_BUFFER: usize = 64 * 1024;

/// What every connection does, fixed before the first request.
struct Plan {
    addr: SocketAddr,
    request: Vec<u8>,
    stream: bool,
    end_marker: &'static [u8],
    measure_from: Instant,
    end: Instant,
}

#[derive(Default)]
struct Stats {
    total: Histogram,
    ttfb: Histogram,
    errors: u64,
    /// Responses completed at any time, the warm-up's included.
    completed: u64,
    /// Measured requests sent and not answered yet.
    in_flight: u64,
    first_error: Option<String>,
}

impl Stats {
    fn error(&mut self, measured: bool, why: impl FnOnce() -> String) {
        if measured {
            self.errors += 1;
            if self.first_error.is_none() {
                self.first_error = Some(why());
            }
        }
    }
}

/// One response, read whole.
struct Answer {
    ok: bool,
    keep_alive: bool,
    ttfb: Option<Duration>,
}

fn main() {
    let mut url = String::new();
    let (mut conc, mut dur, mut warm, mut stream) = (64usize, 10.0f64, 1.0f64, false);
    let mut model = "fake-model".to_string();
    let mut max_tokens: Option<u64> = None;
    let mut dialect = "openai".to_string();
    let (mut cpu_pid, mut clk_tck): (Option<u32>, f64) = (None, 100.0);
    let mut extra_headers = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--help" | "-h" => {
                println!("{USAGE}");
                return;
            }
            "--stream" => stream = true,
            _ => {
                let v = args
                    .next()
                    .unwrap_or_else(|| fail(&format!("{flag} needs a value")));
                let num = |what: &str| -> f64 {
                    v.parse()
                        .ok()
                        .filter(|x: &f64| x.is_finite() && *x >= 0.0)
                        .unwrap_or_else(|| fail(&format!("{what}: not a number ≥ 0: {v}")))
                };
                match flag.as_str() {
                    "--url" => url = v,
                    "--concurrency" => conc = num("--concurrency") as usize,
                    "--duration" => dur = num("--duration"),
                    "--warmup" => warm = num("--warmup"),
                    "--model" => model = v,
                    "--max-tokens" => max_tokens = Some(num("--max-tokens") as u64),
                    "--dialect" => dialect = v,
                    "--cpu-pid" => cpu_pid = Some(num("--cpu-pid") as u32),
                    "--clk-tck" => clk_tck = num("--clk-tck"),
                    "--header" => {
                        extra_headers.push_str(&header_line(&v).unwrap_or_else(|e| fail(&e)))
                    }
                    _ => fail(&format!("unknown flag {flag}")),
                }
            }
        }
    }
    if url.is_empty() {
        fail("--url is required");
    }
    if conc == 0 || dur <= 0.0 || clk_tck <= 0.0 {
        fail("--concurrency, --duration and --clk-tck must be above 0");
    }
    let mut body = serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hello"}],
                                       "stream": stream});
    // The request body and the stream's proper last frame, per client dialect.
    let end_marker: &'static [u8] = match dialect.as_str() {
        "openai" => {
            if let Some(m) = max_tokens {
                body["max_tokens"] = m.into();
            }
            b"data: [DONE]"
        }
        "anthropic" => {
            body["max_tokens"] = max_tokens.unwrap_or(1024).into();
            b"message_stop"
        }
        "ollama" => {
            if let Some(m) = max_tokens {
                body["options"] = serde_json::json!({ "num_predict": m });
            }
            b"\"done\":true"
        }
        other => fail(&format!("unknown dialect {other}")),
    };
    let (addr, authority, path) = parse_url(&url).unwrap_or_else(|e| fail(&e));
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\nuser-agent: llm-bench\r\n\
         content-type: application/json\r\n{extra_headers}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(warm);
    let end = measure_from + Duration::from_secs_f64(dur);
    let plan = Rc::new(Plan {
        addr,
        request,
        stream,
        end_marker,
        measure_from,
        end,
    });
    let stats = Rc::new(RefCell::new(Stats::default()));
    let local = tokio::task::LocalSet::new();
    let cpu = local.block_on(&runtime, async {
        let tasks: Vec<_> = (0..conc)
            .map(|_| tokio::task::spawn_local(connection(plan.clone(), stats.clone())))
            .collect();
        let cpu = tokio::task::spawn_local(cpu_window(cpu_pid, measure_from, end));
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout_at((end + GRACE).into(), all)
            .await
            .is_err()
        {
            let mut s = stats.borrow_mut();
            let hung = s.in_flight;
            s.errors += hung;
            s.first_error.get_or_insert_with(|| {
                format!("{hung} requests unanswered {GRACE:?} after the end")
            });
        }
        cpu.await.unwrap_or_default()
    });
    let stats = stats.take();
    report(&stats, dur, conc, stream, cpu, clk_tck);
}

/// `Name: value` as one request-head line (`name: value\r\n`), or why it can't be one.
fn header_line(arg: &str) -> Result<String, String> {
    let (name, value) = arg
        .split_once(':')
        .ok_or_else(|| format!("--header {arg:?}: expected 'Name: value'"))?;
    let (name, value) = (name.trim(), value.trim());
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!("--header {arg:?}: {name:?} is not a header name"));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(format!("--header {arg:?}: control characters in the value"));
    }
    Ok(format!("{name}: {value}\r\n"))
}

fn fail(why: &str) -> ! {
    eprintln!("llm-bench: {why}\n{USAGE}");
    std::process::exit(2)
}

/// `http://host:port/path` → the address to connect to, the `Host` header, the request target.
fn parse_url(url: &str) -> Result<(SocketAddr, String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("--url {url}: only http:// URLs are supported (a plain-HTTP local server)")
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let has_port = match authority.strip_prefix('[') {
        Some(v6) => v6.contains("]:"),
        None => authority.contains(':'),
    };
    let with_port = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("--url {url}: cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("--url {url}: {authority} has no address"))?;
    Ok((addr, authority.to_string(), path.to_string()))
}

/// One keep-alive connection sending requests back to back until the end, reconnecting when the
/// server closes or a request fails.
async fn connection(plan: Rc<Plan>, stats: Rc<RefCell<Stats>>) {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut tail = Vec::with_capacity(4 * TAIL);
    while Instant::now() < plan.end {
        let mut conn = match TcpStream::connect(plan.addr).await {
            Ok(c) => c,
            Err(e) => {
                let measured = Instant::now() >= plan.measure_from;
                stats
                    .borrow_mut()
                    .error(measured, || format!("connect {}: {e}", plan.addr));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = conn.set_nodelay(true);
        loop {
            let t0 = Instant::now();
            if t0 >= plan.end {
                return;
            }
            let measured = t0 >= plan.measure_from;
            stats.borrow_mut().in_flight += u64::from(measured);
            let answer = exchange(&mut conn, &plan, &mut buf, &mut tail, t0).await;
            let mut s = stats.borrow_mut();
            s.in_flight -= u64::from(measured);
            match answer {
                Ok(a) => {
                    s.completed += 1;
                    if !measured {
                    } else if a.ok {
                        let total = t0.elapsed();
                        s.total.record(total.as_nanos() as u64);
                        s.ttfb.record(a.ttfb.unwrap_or(total).as_nanos() as u64);
                    } else {
                        s.error(true, || {
                            "a non-2xx status or a stream without its end".into()
                        });
                    }
                    if !a.keep_alive {
                        break;
                    }
                }
                Err(e) => {
                    s.error(measured, || e);
                    break;
                }
            }
        }
    }
}

/// Sends the request and reads its whole response.
async fn exchange(
    conn: &mut TcpStream,
    plan: &Plan,
    buf: &mut [u8],
    tail: &mut Vec<u8>,
    t0: Instant,
) -> Result<Answer, String> {
    conn.write_all(&plan.request)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut filled = 0;
    let head = loop {
        if filled == buf.len() {
            return Err(http::Error::HeadTooLarge.to_string());
        }
        let n = conn
            .read(&mut buf[filled..])
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed before the response head".into());
        }
        filled += n;
        if let Some(h) = http::parse_head(&buf[..filled]).map_err(|e| e.to_string())? {
            break h;
        }
    };
    let mut body = head.body;
    let mut ttfb = None;
    tail.clear();
    let (mut from, mut to) = (head.len, filled);
    loop {
        if from < to {
            let used = body
                .feed(&buf[from..to], |data| {
                    ttfb.get_or_insert_with(|| t0.elapsed());
                    if plan.stream {
                        tail.extend_from_slice(data);
                        if tail.len() > 2 * TAIL {
                            tail.drain(..tail.len() - TAIL);
                        }
                    }
                })
                .map_err(|e| e.to_string())?;
            if used < to - from {
                return Err("bytes after the response body (the server answered twice)".into());
            }
        }
        if body.done() {
            break;
        }
        let n = conn.read(buf).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            if body == http::Body::UntilClose {
                break;
            }
            return Err("connection closed in the middle of the body".into());
        }
        (from, to) = (0, n);
    }
    let last = &tail[tail.len().saturating_sub(TAIL)..];
    let ended = !plan.stream
        || last
            .windows(plan.end_marker.len())
            .any(|w| w == plan.end_marker);
    Ok(Answer {
        ok: (200..300).contains(&head.status) && ended,
        keep_alive: !head.close,
        ttfb,
    })
}

/// CPU seconds used over the measured window: (the watched process's, this process's, window).
#[derive(Default, Clone, Copy)]
struct Cpu {
    pid_ticks: Option<u64>,
    self_ticks: u64,
    window: Duration,
}

async fn cpu_window(pid: Option<u32>, from: Instant, end: Instant) -> Cpu {
    tokio::time::sleep_until(from.into()).await;
    let (p0, s0, t0) = (pid.and_then(cpu_ticks), cpu_ticks_self(), Instant::now());
    tokio::time::sleep_until(end.into()).await;
    let (p1, s1) = (pid.and_then(cpu_ticks), cpu_ticks_self());
    Cpu {
        pid_ticks: p0.zip(p1).map(|(a, b)| b.saturating_sub(a)),
        self_ticks: s1.saturating_sub(s0),
        window: t0.elapsed(),
    }
}

/// utime + stime of a process, all its threads, in clock ticks (from `/proc/<pid>/stat`).
fn cpu_ticks(pid: u32) -> Option<u64> {
    stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn cpu_ticks_self() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| stat_ticks(&s))
        .unwrap_or(0)
}

fn stat_ticks(stat: &str) -> Option<u64> {
    // Fields after the command name (which may hold spaces, so split after its last ')'):
    // state is field 3, utime 14, stime 15.
    let mut f = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e3).round() / 1e3
}

fn report(s: &Stats, dur: f64, conc: usize, stream: bool, cpu: Cpu, clk_tck: f64) {
    let n = s.total.count();
    if std::env::var_os("LLM_BENCH_SPREAD").is_some() {
        let spread: Vec<String> = [1, 5, 10, 25, 50, 75, 90, 95, 99]
            .iter()
            .map(|p| format!("p{p}={:.2}", ms(s.total.quantile(f64::from(*p) / 100.0))))
            .collect();
        eprintln!("{}", spread.join(" "));
    }
    if let Some(e) = &s.first_error {
        eprintln!("llm-bench: {} errors; the first: {e}", s.errors);
    }
    let per_req = |ticks: u64| {
        (n > 0).then(|| ((ticks as f64 / clk_tck * 1e6 / n as f64) * 10.0).round() / 10.0)
    };
    let window = cpu.window.as_secs_f64().max(1e-9);
    println!(
        "{}",
        serde_json::json!({
            "requests": n, "errors": s.errors, "rps": ((n as f64 / dur) * 10.0).round() / 10.0,
            "p50_ms": ms(s.total.quantile(0.50)), "p90_ms": ms(s.total.quantile(0.90)),
            "p99_ms": ms(s.total.quantile(0.99)), "p999_ms": ms(s.total.quantile(0.999)),
            "max_ms": ms(s.total.quantile(1.0)),
            "ttfb_p50_ms": ms(s.ttfb.quantile(0.50)), "ttfb_p99_ms": ms(s.ttfb.quantile(0.99)),
            "concurrency": conc, "stream": stream, "completed_total": s.completed,
            "cpu_us_per_req": cpu.pid_ticks.and_then(per_req),
            "bench_cpu_us_per_req": per_req(cpu.self_ticks),
            "bench_cpu_share": ((cpu.self_ticks as f64 / clk_tck / window) * 1000.0).round() / 1000.0,
        })
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_address_host_and_target() {
        let (addr, host, path) = parse_url("http://127.0.0.1:9000/v1/chat/completions").unwrap();
        assert_eq!(addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(
            (host.as_str(), path.as_str()),
            ("127.0.0.1:9000", "/v1/chat/completions")
        );
        let (addr, _, path) = parse_url("http://[::1]:81").unwrap();
        assert_eq!((addr, path.as_str()), ("[::1]:81".parse().unwrap(), "/"));
        assert_eq!(parse_url("http://127.0.0.1/x").unwrap().0.port(), 80);
        let e = parse_url("https://127.0.0.1:1/").unwrap_err();
        assert!(e.contains("only http://"), "{e}");
    }

    #[test]
    fn stat_lines_give_user_plus_system_ticks() {
        let line =
            "4242 (llm router (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 157 43 0 0 20 0 9 0 1";
        assert_eq!(stat_ticks(line), Some(200));
        assert_eq!(stat_ticks("garbage"), None);
    }

    #[test]
    fn header_flags_become_head_lines_and_bad_ones_are_refused() {
        assert_eq!(
            header_line("Authorization: Bearer sk-1").unwrap(),
            "Authorization: Bearer sk-1\r\n"
        );
        assert_eq!(header_line("x-api-key:k").unwrap(), "x-api-key: k\r\n");
        assert!(header_line("no colon").is_err());
        assert!(header_line(": empty name").is_err());
        assert!(header_line("bad name: v").is_err());
        assert!(header_line("x: a\r\nHost: evil").is_err());
    }
}
