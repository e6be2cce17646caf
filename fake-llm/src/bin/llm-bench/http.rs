//! The client side of HTTP/1.1 responses, as far as a load generator needs it: the head (status,
//! body framing, whether the server keeps the connection) and a body decoder for `Content-Length`,
//! `chunked` and read-until-close bodies that hands out the body's bytes without copying or
//! buffering them. Pure: bytes in, events out; the caller owns the socket and the buffer.

use std::fmt;

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// The head is not HTTP/1.x (httparse's reason).
    Head(&'static str),
    /// The head does not fit in the read buffer.
    HeadTooLarge,
    BadContentLength,
    /// A chunk size line or chunk delimiter is malformed (the byte found).
    BadChunk(u8),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Head(why) => write!(f, "malformed response head: {why}"),
            Error::HeadTooLarge => write!(f, "response head larger than the read buffer"),
            Error::BadContentLength => write!(f, "malformed Content-Length"),
            Error::BadChunk(b) => write!(f, "malformed chunked body at byte {b:#04x}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of the head, the blank line included.
    pub len: usize,
    /// The server closes the connection after this response.
    pub close: bool,
    pub body: Body,
}

/// Parses a response head at the start of `buf`; `Ok(None)` until it is complete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, Error> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Error::Head(head_reason(e))),
    };
    let status = res.code.unwrap_or(0);
    let mut close = res.version == Some(0);
    let (mut length, mut chunked) = (None, false);
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).map_err(|_| Error::BadContentLength)?;
            length = Some(v.trim().parse().map_err(|_| Error::BadContentLength)?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = contains_token(h.value, b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            if contains_token(h.value, b"close") {
                close = true;
            } else if contains_token(h.value, b"keep-alive") {
                close = false;
            }
        }
    }
    let body = if status == 204 || status == 304 || (100..200).contains(&status) {
        Body::Length(0)
    } else if chunked {
        Body::Chunked(Chunked::Size { n: 0, digits: 0 })
    } else if let Some(n) = length {
        Body::Length(n)
    } else {
        close = true;
        Body::UntilClose
    };
    Ok(Some(Head {
        status,
        len,
        close,
        body,
    }))
}

fn head_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid new line",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "more than 32 headers",
        httparse::Error::Version => "not HTTP/1.x",
    }
}

fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Where a body decoder stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// This many body bytes still to come.
    Length(u64),
    Chunked(Chunked),
    /// Everything up to the server's close (done only at end of stream).
    UntilClose,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunked {
    /// Reading a size line's hex digits (`digits` so far).
    Size {
        n: u64,
        digits: u8,
    },
    /// In the size line's extension, until its CR.
    Extension {
        n: u64,
    },
    /// Size line CR seen.
    SizeLf {
        n: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// After the last chunk: at the start of a trailer line (an empty one ends the body).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

impl Body {
    pub fn done(&self) -> bool {
        matches!(self, Body::Length(0) | Body::Chunked(Chunked::Done))
    }

    /// Consumes body bytes from `buf`, calling `data` with each run of payload bytes; returns how
    /// many bytes of `buf` belong to the body (the rest, if any, came after it).
    pub fn feed(&mut self, buf: &[u8], mut data: impl FnMut(&[u8])) -> Result<usize, Error> {
        match self {
            Body::Length(left) => {
                let n = (*left).min(buf.len() as u64) as usize;
                if n > 0 {
                    data(&buf[..n]);
                }
                *left -= n as u64;
                Ok(n)
            }
            Body::UntilClose => {
                if !buf.is_empty() {
                    data(buf);
                }
                Ok(buf.len())
            }
            Body::Chunked(state) => {
                let mut i = 0;
                while i < buf.len() && *state != Chunked::Done {
                    if let Chunked::Data { left } = state {
                        let n = (*left).min((buf.len() - i) as u64) as usize;
                        data(&buf[i..i + n]);
                        i += n;
                        *left -= n as u64;
                        if *left == 0 {
                            *state = Chunked::DataCr;
                        }
                        continue;
                    }
                    *state = chunk_step(*state, buf[i])?;
                    i += 1;
                }
                Ok(i)
            }
        }
    }
}

/// One framing byte of a chunked body (anything but chunk data).
fn chunk_step(state: Chunked, b: u8) -> Result<Chunked, Error> {
    use Chunked::*;
    Ok(match (state, b) {
        (Size { n, digits }, _) if b.is_ascii_hexdigit() => {
            if digits >= 15 {
                return Err(Error::BadChunk(b));
            }
            let d = (b as char).to_digit(16).unwrap_or(0);
            Size {
                n: n * 16 + u64::from(d),
                digits: digits + 1,
            }
        }
        (Size { n, digits }, b';' | b' ' | b'\t') if digits > 0 => Extension { n },
        (Size { n, digits }, b'\r') if digits > 0 => SizeLf { n },
        (Extension { n }, b'\r') => SizeLf { n },
        (Extension { n }, _) => Extension { n },
        (SizeLf { n: 0 }, b'\n') => TrailerStart,
        (SizeLf { n }, b'\n') => Data { left: n },
        (DataCr, b'\r') => DataLf,
        (DataLf, b'\n') => Size { n: 0, digits: 0 },
        (TrailerStart, b'\r') => EndLf,
        (TrailerLine, b'\r') => TrailerLf,
        (TrailerStart | TrailerLine, _) => TrailerLine,
        (TrailerLf, b'\n') => TrailerStart,
        (EndLf, b'\n') => Done,
        _ => return Err(Error::BadChunk(b)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `body` fed in pieces of `step` bytes; returns the payload and the bytes left over.
    fn decode(mut body: Body, wire: &[u8], step: usize) -> Result<(Vec<u8>, usize), Error> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < wire.len() && !body.done() {
            let end = (at + step).min(wire.len());
            at += body.feed(&wire[at..end], |d| out.extend_from_slice(d))?;
        }
        assert!(
            body.done() || body == Body::UntilClose,
            "not done: {body:?}"
        );
        Ok((out, wire.len() - at))
    }

    fn head(s: &str) -> Head {
        parse_head(s.as_bytes()).unwrap().expect("complete head")
    }

    #[test]
    fn heads_give_status_framing_and_keep_alive() {
        let h = head(
            "HTTP/1.1 200 OK\r\ncontent-length: 432\r\ncontent-type: application/json\r\n\r\n{",
        );
        assert_eq!((h.status, h.close, h.body), (200, false, Body::Length(432)));
        assert_eq!(h.len, 72);
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n");
        assert!(matches!(h.body, Body::Chunked(_)) && !h.close);
        let h = head("HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert_eq!((h.status, h.close, h.body.done()), (503, true, true));
        // No length and not chunked: the body runs to the close.
        let h = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((h.close, h.body), (true, Body::UntilClose));
        // HTTP/1.0 closes unless it says keep-alive.
        assert!(head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").close);
        assert!(
            !head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: Keep-Alive\r\n\r\n").close
        );
        assert_eq!(
            head("HTTP/1.1 204 No Content\r\n\r\n").body,
            Body::Length(0)
        );
    }

    #[test]
    fn incomplete_and_malformed_heads() {
        let full = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse_head(&full[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            parse_head(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(Error::Head("not HTTP/1.x"))
        );
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n"),
            Err(Error::BadContentLength)
        );
    }

    #[test]
    fn sized_bodies_stop_at_their_length_in_any_split() {
        for step in [1, 3, 1000] {
            let (out, rest) = decode(Body::Length(5), b"hello", step).unwrap();
            assert_eq!((out.as_slice(), rest), (&b"hello"[..], 0));
        }
        // Bytes after the body are not the body's.
        let mut b = Body::Length(2);
        assert_eq!(b.feed(b"okHTTP", |_| {}), Ok(2));
        assert!(b.done());
    }

    #[test]
    fn chunked_bodies_decode_in_any_split() {
        let wire = b"5\r\nhello\r\n1;ext=\"x\"\r\n \r\n10\r\n0123456789abcdef\r\n0\r\n\r\nNEXT";
        for step in 1..wire.len() {
            let (out, rest) = decode(Body::Chunked(Chunked::Size { n: 0, digits: 0 }), wire, step)
                .unwrap_or_else(|e| panic!("step {step}: {e}"));
            assert_eq!(out, b"hello 0123456789abcdef", "step {step}");
            assert_eq!(rest, 4, "step {step}");
        }
        // Trailers after the last chunk are skipped.
        let wire = b"2\r\nhi\r\n0\r\nx-usage: 3\r\nx-b: 4\r\n\r\n";
        let (out, rest) =
            decode(Body::Chunked(Chunked::Size { n: 0, digits: 0 }), wire, 2).unwrap();
        assert_eq!((out.as_slice(), rest), (&b"hi"[..], 0));
    }

    #[test]
    fn malformed_chunked_bodies_are_refused() {
        let start = Body::Chunked(Chunked::Size { n: 0, digits: 0 });
        for (wire, bad) in [
            (&b"zz\r\n"[..], b'z'),
            (b"\r\n", b'\r'),
            (b"2\r\nhiX", b'X'),
            (b"2\nhi", b'\n'),
            (b"1234567890abcdef0\r\n", b'f'),
        ] {
            assert_eq!(
                decode(start, wire, 1),
                Err(Error::BadChunk(bad)),
                "{wire:?}"
            );
        }
    }
}
