//! The relay's own HTTP/1.1 client for plain-`http://` providers (the self-hosted fleet: vLLM,
//! Ollama, LM Studio, llama.cpp). `https://` providers go through `awc` (TLS), as do probes and
//! plugin calls.
//!
//! Why not `awc` here too: per request, awc builds a header map, a boxed request future chain
//! and a fresh `ClientCodec` whose default `ServiceConfig` spawns a date-keeping task with its own
//! 500 ms timer (a task spawned, a timer registered — which wakes the worker's own event loop
//! through its eventfd — and aborted again, every request). Here a request is one buffer written
//! in one `send`, the head is parsed in place with `httparse`, and the body is a stream over the
//! connection's read buffer.
//!
//! - **Pool**: one per worker thread (a worker's futures never leave it), idle connections kept per
//!   `host:port` for [`KEEP_ALIVE`], last used first. A pooled connection is checked before reuse:
//!   one the provider closed (or wrote to unasked) is dropped, not used.
//! - **Reuse** only after the answer was read to its end (the chunked terminator, or
//!   `Content-Length` bytes) and neither side said `Connection: close`; a body dropped part-way
//!   (client gone, hedge lost) closes its connection, which is how the provider learns to stop.
//! - **Framing**: chunked (extensions and trailers skipped), `Content-Length`, or until close;
//!   a body that ends early is `PayloadError::Incomplete`, broken chunk framing
//!   `PayloadError::EncodingCorrupted` — the relay treats both as the provider's failure.
//! - **Errors before a response head** are told apart the way the relay's failover needs:
//!   [`SendError::Connect`] (nobody there), [`SendError::Reset`] (connected, then cut or garbled),
//!   [`SendError::Timeout`] (the caller's budget ran out).

use std::cell::RefCell;
use std::io::{self, Write as _};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_http::error::PayloadError;
use actix_rt::net::TcpStream;
use awc::http::header::HeaderValue;
use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;
use tokio::io::AsyncWriteExt;

/// How long an idle connection is kept for reuse (as the awc client's `conn_keep_alive`).
pub const KEEP_ALIVE: Duration = Duration::from_secs(60);
/// Longest wait for a TCP connection (as the awc connector's).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Most response header lines accepted (hosted APIs send 20–30).
const MAX_HEADERS: usize = 96;
/// Idle connections kept per `host:port`.
const MAX_IDLE: usize = 1024;
/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;
/// Request bodies up to this size are written in the same `send` as the head.
const COPY_BODY: usize = 64 * 1024;
/// Body pieces up to this size are copied out of the read buffer (see [`take`]).
const COPY_OUT: usize = 4096;
/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Why a request got no response head (awc's errors are mapped onto it too, in `attempt.rs`).
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// No connection could be made (refused, unreachable, unresolvable, connect timed out), or the
    /// request could not be written as asked (a header value with a line break).
    Connect,
    /// Connected, then the connection was cut or answered with something that is not HTTP/1.x.
    Reset,
    /// The caller's budget ran out before the response head.
    Timeout,
}

/// Where a plain-HTTP request goes, read off its URL.
#[derive(Debug, PartialEq, Eq)]
pub struct Target<'u> {
    /// `host[:port]` as the URL wrote it: the `Host` header and the pool's key.
    authority: &'u str,
    host: &'u str,
    port: u16,
    /// Path and query (`/` when the URL has none).
    path: &'u str,
}

impl<'u> Target<'u> {
    /// `Some` for an `http://` URL this client can take (no user info, a valid port); `None`
    /// sends the request to awc instead.
    pub fn parse(url: &'u str) -> Option<Self> {
        let rest = url
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &url[7..])?;
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], &rest[i..]),
            Some(_) => return None,
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') || path.contains('#') {
            return None;
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']')?;
                match after {
                    "" => (host, 80),
                    p => (host, p.strip_prefix(':')?.parse().ok()?),
                }
            }
            None => match authority.rsplit_once(':') {
                Some((host, p)) => (host, p.parse().ok()?),
                None => (authority, 80),
            },
        };
        if host.is_empty() || host.contains(':') && !authority.starts_with('[') {
            return None;
        }
        Some(Target {
            authority,
            host,
            port,
            path,
        })
    }
}

/// A response head and its body.
pub struct Response {
    pub status: u16,
    pub content_type: Option<HeaderValue>,
    pub content_length: Option<u64>,
    pub retry_after: Option<HeaderValue>,
    pub body: Body,
}

struct Conn {
    io: TcpStream,
    buf: BytesMut,
}

impl Conn {
    /// An idle connection is usable when nothing arrived on it since its last answer: a close
    /// (EOF), a reset or stray bytes all mean it must not carry another request. (One `recv`
    /// that finds nothing: the body stopped reading at its last byte, so tokio still holds the
    /// socket readable and really asks the kernel.)
    fn still_idle(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// Idle connections per `host:port`, oldest first, each with when it went idle.
type Pool = llm_router_actors::FastMap<Box<str>, Vec<(Conn, Instant)>>;

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

fn checkout(authority: &str) -> Option<Conn> {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = pool.get_mut(authority)?;
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < KEEP_ALIVE && conn.still_idle() {
                return Some(conn);
            }
        }
        None
    })
}

fn checkin(authority: &str, conn: Conn) {
    if !conn.buf.is_empty() {
        // Bytes past the end of the answer: the connection is out of step; drop it.
        return;
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let idle = match pool.get_mut(authority) {
            Some(idle) => idle,
            None => pool.entry(authority.into()).or_default(),
        };
        // The oldest are at the front: drop those past their time.
        let expired = idle
            .iter()
            .take_while(|(_, since)| since.elapsed() >= KEEP_ALIVE)
            .count();
        idle.drain(..expired);
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    });
}

/// Idle connections in this thread's pool for `authority`.
#[cfg(test)]
fn idle_count(authority: &str) -> usize {
    POOL.with(|pool| pool.borrow().get(authority).map_or(0, Vec::len))
}

/// The request's head: method, target, `Host`, `Content-Length`, then the caller's header lines.
pub struct Head {
    buf: Vec<u8>,
    invalid: bool,
}

impl Head {
    fn new(t: &Target<'_>, body_len: usize) -> Head {
        let mut buf = Vec::with_capacity(256 + body_len.min(COPY_BODY));
        buf.extend_from_slice(b"POST ");
        buf.extend_from_slice(t.path.as_bytes());
        buf.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        buf.extend_from_slice(t.authority.as_bytes());
        buf.extend_from_slice(b"\r\ncontent-length: ");
        let _ = write!(buf, "{body_len}");
        buf.extend_from_slice(b"\r\n");
        Head {
            buf,
            invalid: false,
        }
    }

    /// Adds `name: prefix value`. A value with a line break or NUL would split the head: the
    /// request is refused instead ([`SendError::Connect`], as awc refuses such a header).
    pub fn header(&mut self, name: &str, prefix: &str, value: &str) {
        let bad = |s: &str| memchr::memchr3(b'\r', b'\n', 0, s.as_bytes()).is_some();
        if bad(name) || bad(prefix) || bad(value) {
            self.invalid = true;
            return;
        }
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        self.buf.extend_from_slice(prefix.as_bytes());
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }
}

/// POSTs `body` to `t` with the header lines `headers` writes, and waits (at most `budget`) for
/// the response head.
pub async fn post(
    t: &Target<'_>,
    headers: impl FnOnce(&mut Head),
    body: Bytes,
    budget: Duration,
) -> Result<Response, SendError> {
    let mut head = Head::new(t, body.len());
    headers(&mut head);
    if head.invalid {
        return Err(SendError::Connect);
    }
    head.buf.extend_from_slice(b"\r\n");
    match tokio::time::timeout(budget, exchange(t, head.buf, body)).await {
        Ok(r) => r,
        Err(_) => Err(SendError::Timeout),
    }
}

async fn connect(t: &Target<'_>) -> Result<Conn, SendError> {
    let io = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((t.host, t.port))).await
    {
        Ok(Ok(io)) => io,
        Ok(Err(_)) | Err(_) => return Err(SendError::Connect),
    };
    // Without it a stream's first frame can wait for a delayed ACK.
    let _ = io.set_nodelay(true);
    Ok(Conn {
        io,
        buf: BytesMut::new(),
    })
}

async fn exchange(t: &Target<'_>, mut head: Vec<u8>, body: Bytes) -> Result<Response, SendError> {
    let mut conn = match checkout(t.authority) {
        Some(conn) => conn,
        None => connect(t).await?,
    };
    let sent = if body.len() <= COPY_BODY {
        head.extend_from_slice(&body);
        conn.io.write_all(&head).await
    } else {
        match conn.io.write_all(&head).await {
            Ok(()) => conn.io.write_all(&body).await,
            Err(e) => Err(e),
        }
    };
    if sent.is_err() {
        return Err(SendError::Reset);
    }
    let parsed = read_head(&mut conn).await?;
    let framing = if parsed.status == 204 || parsed.status == 304 {
        Framing::Length(0)
    } else if parsed.chunked {
        Framing::Chunked(Chunk::Size)
    } else if let Some(n) = parsed.content_length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let reuse = parsed.keep_alive && !matches!(framing, Framing::UntilClose);
    let mut body = Body {
        conn: Some(conn),
        framing,
        reuse,
        authority: t.authority.into(),
    };
    if matches!(body.framing, Framing::Length(0)) {
        body.finish();
    }
    Ok(Response {
        status: parsed.status,
        content_type: parsed.content_type,
        content_length: parsed.content_length,
        retry_after: parsed.retry_after,
        body,
    })
}

struct Parsed {
    status: u16,
    content_type: Option<HeaderValue>,
    content_length: Option<u64>,
    retry_after: Option<HeaderValue>,
    chunked: bool,
    keep_alive: bool,
}

/// Reads until a whole final response head is in the buffer (1xx heads are skipped), then
/// consumes it, leaving any body bytes that came with it.
async fn read_head(conn: &mut Conn) -> Result<Parsed, SendError> {
    loop {
        if !conn.buf.is_empty() {
            match parse_head(&conn.buf)? {
                Some((len, parsed)) => {
                    conn.buf.advance(len);
                    if (100..200).contains(&parsed.status) {
                        continue;
                    }
                    return Ok(parsed);
                }
                None if conn.buf.len() > MAX_HEAD => return Err(SendError::Reset),
                None => {}
            }
        }
        conn.buf.reserve(READ_CHUNK);
        match read_some(&conn.io, &mut conn.buf).await {
            Ok(0) | Err(_) => return Err(SendError::Reset),
            Ok(_) => {}
        }
    }
}

async fn read_some(io: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    loop {
        io.readable().await?;
        match io.try_read_buf(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            r => return r,
        }
    }
}

/// The content types providers send, without copying them out of the read buffer.
fn content_type(value: &[u8]) -> Option<HeaderValue> {
    const COMMON: [&str; 5] = [
        "application/json",
        "text/event-stream",
        "application/x-ndjson",
        "application/json; charset=utf-8",
        "text/event-stream; charset=utf-8",
    ];
    match COMMON.iter().find(|c| c.as_bytes() == value) {
        Some(c) => Some(HeaderValue::from_static(c)),
        None => HeaderValue::from_bytes(value).ok(),
    }
}

/// `Some((head length, what the relay needs of it))` once the head is complete.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Parsed)>, SendError> {
    let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut res,
        buf,
        &mut headers,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(SendError::Reset),
    };
    let status = res.code.ok_or(SendError::Reset)?;
    let http10 = res.version == Some(0);
    let mut parsed = Parsed {
        status,
        content_type: None,
        content_length: None,
        retry_after: None,
        chunked: false,
        keep_alive: !http10,
    };
    for h in res.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-type") {
            parsed.content_type = content_type(h.value);
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or(SendError::Reset)?;
            if parsed.content_length.is_some_and(|m| m != n) {
                return Err(SendError::Reset);
            }
            parsed.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked must be the last coding; anything else here cannot be framed.
            let last = h.value.rsplit(|b| *b == b',').next().unwrap_or_default();
            if !last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(SendError::Reset);
            }
            parsed.chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    parsed.keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    parsed.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("retry-after") {
            parsed.retry_after = HeaderValue::from_bytes(h.value).ok();
        }
    }
    if parsed.chunked {
        // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3); such a message may not be
        // followed on the same connection.
        parsed.content_length = None;
        if res
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("content-length"))
        {
            parsed.keep_alive = false;
        }
    }
    Ok(Some((len, parsed)))
}

enum Framing {
    /// This many body bytes left.
    Length(u64),
    Chunked(Chunk),
    /// The body ends when the provider closes the connection (never reused).
    UntilClose,
    Done,
}

enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of the current chunk left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to an empty one.
    Trailers,
}

/// A response body: yields what has arrived, gives its connection back when read to the end.
pub struct Body {
    conn: Option<Conn>,
    framing: Framing,
    reuse: bool,
    authority: Box<str>,
}

impl Body {
    fn finish(&mut self) {
        self.framing = Framing::Done;
        if let Some(conn) = self.conn.take() {
            if self.reuse {
                checkin(&self.authority, conn);
            }
        }
    }

    fn fail(&mut self, e: PayloadError) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.framing = Framing::Done;
        self.conn = None;
        Poll::Ready(Some(Err(e)))
    }

    /// Decodes what the buffer holds: `Some` an item to yield (`Ok(None)`: the body's end),
    /// `None` when more bytes are needed.
    fn decode(&mut self) -> Option<Result<Option<Bytes>, PayloadError>> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Some(Ok(None));
            };
            match step(&mut conn.buf, &mut self.framing) {
                Step::More => return None,
                Step::Again => {}
                Step::Data(data) => return Some(Ok(Some(data))),
                Step::Last(data) => {
                    self.finish();
                    return Some(Ok(Some(data)));
                }
                Step::End => {
                    self.finish();
                    return Some(Ok(None));
                }
                Step::Broken(e) => return Some(Err(e)),
            }
        }
    }
}

enum Step {
    /// Nothing decodable until more bytes arrive.
    More,
    /// State advanced; decode again.
    Again,
    Data(Bytes),
    /// The body's last bytes.
    Last(Bytes),
    End,
    Broken(PayloadError),
}

/// One decoding step over the read buffer.
fn step(buf: &mut BytesMut, framing: &mut Framing) -> Step {
    match framing {
        Framing::Done => Step::End,
        Framing::Length(0) => Step::End,
        Framing::Length(left) => {
            if buf.is_empty() {
                return Step::More;
            }
            let n = (*left).min(buf.len() as u64) as usize;
            let data = take(buf, n);
            *left -= n as u64;
            if *left == 0 {
                Step::Last(data)
            } else {
                Step::Data(data)
            }
        }
        Framing::UntilClose if buf.is_empty() => Step::More,
        Framing::UntilClose => Step::Data(take(buf, buf.len())),
        Framing::Chunked(state) => match state {
            Chunk::Size => match line(buf) {
                Ok(Some((len, with_end))) => {
                    let size = chunk_size(&buf[..len]);
                    buf.advance(with_end);
                    match size {
                        Some(0) => *state = Chunk::Trailers,
                        Some(size) => *state = Chunk::Data(size),
                        None => return Step::Broken(PayloadError::EncodingCorrupted),
                    }
                    Step::Again
                }
                Ok(None) => Step::More,
                Err(e) => Step::Broken(e),
            },
            Chunk::Data(left) => {
                if buf.is_empty() {
                    return Step::More;
                }
                let n = (*left).min(buf.len() as u64) as usize;
                // Split, not copied: a stream's frames are many and small, and splitting them
                // off a shared buffer costs no allocation each (callgrind: copying them out
                // cost ~140 instructions a frame).
                let data = buf.split_to(n).freeze();
                *left -= n as u64;
                if *left == 0 {
                    *state = Chunk::DataEnd;
                }
                // What arrived of this chunk goes on at once (a stream's frame does not wait for
                // its chunk's CRLF).
                Step::Data(data)
            }
            Chunk::DataEnd => {
                if buf.len() < 2 {
                    Step::More
                } else if &buf[..2] != b"\r\n" {
                    Step::Broken(PayloadError::EncodingCorrupted)
                } else {
                    buf.advance(2);
                    *state = Chunk::Size;
                    Step::Again
                }
            }
            Chunk::Trailers => match line(buf) {
                Ok(Some((len, with_end))) => {
                    buf.advance(with_end);
                    if len == 0 {
                        Step::End
                    } else {
                        Step::Again
                    }
                }
                Ok(None) => Step::More,
                Err(e) => Step::Broken(e),
            },
        },
    }
}

/// Takes `n` bytes off the front of the read buffer. A small piece (a whole non-stream answer of
/// a few hundred bytes) is copied out, so the buffer stays the connection's own and its next
/// read reuses the same allocation instead of a new 16 KiB one; large ones are split off.
fn take(buf: &mut BytesMut, n: usize) -> Bytes {
    if n <= COPY_OUT {
        let data = Bytes::copy_from_slice(&buf[..n]);
        buf.advance(n);
        data
    } else {
        buf.split_to(n).freeze()
    }
}

/// The length of the buffer's first line (without its CRLF) and of the line with it, once a
/// whole line is there.
fn line(buf: &[u8]) -> Result<Option<(usize, usize)>, PayloadError> {
    match memchr::memchr(b'\n', buf) {
        Some(i) if i > 0 && buf[i - 1] == b'\r' => Ok(Some((i - 1, i + 1))),
        Some(i) => Ok(Some((i, i + 1))),
        None if buf.len() > MAX_LINE => Err(PayloadError::EncodingCorrupted),
        None => Ok(None),
    }
}

/// A chunk-size line's size (hex, extensions after `;` ignored).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let hex = line.split(|b| *b == b';').next()?.trim_ascii();
    if hex.is_empty() || hex.len() > 15 {
        return None;
    }
    let hex = std::str::from_utf8(hex).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

impl Stream for Body {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.decode() {
                Some(Ok(Some(data))) => return Poll::Ready(Some(Ok(data))),
                Some(Ok(None)) => return Poll::Ready(None),
                Some(Err(e)) => return this.fail(e),
                None => {}
            }
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match conn.io.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return this.fail(PayloadError::Io(e)),
                Poll::Ready(Ok(())) => {}
            }
            conn.buf.reserve(READ_CHUNK);
            match conn.io.try_read_buf(&mut conn.buf) {
                Ok(0) if matches!(this.framing, Framing::UntilClose) => {
                    this.framing = Framing::Done;
                    this.conn = None;
                    return Poll::Ready(None);
                }
                Ok(0) => return this.fail(PayloadError::Incomplete(None)),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return this.fail(PayloadError::Io(e)),
            }
        }
    }
}

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;
