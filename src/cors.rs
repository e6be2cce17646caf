//! CORS for browser clients (`LLM_ROUTER_CORS_ORIGINS`): allowed origins, the preflight answer,
//! and the headers every response to an allowed origin carries.
//!
//! The middleware sits outside the access guard, so a preflight needs no API key and every
//! refusal (401/403/429), 404/405 and provider error carries the headers too (all of them are
//! responses by the time they pass here). Streams get
//! them on their head like any response. A disallowed origin gets no CORS headers at all (the
//! browser then blocks the page from reading the answer); with the variable empty nothing
//! changes.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse};

use crate::handlers::AppState;

/// Headers a page may send (besides the CORS-safelisted ones); a preflight asking for others
/// gets those echoed back too, so SDK headers (`x-stainless-*`, `anthropic-version`) pass.
const ALLOW_HEADERS: &str = "authorization, x-api-key, content-type, x-request-id, \
                             anthropic-version, openai-organization, openai-project";
/// Response headers a page may read.
const EXPOSE_HEADERS: &str = "x-llm-router-model, x-llm-router-provider, x-request-id, \
                              x-ratelimit-limit-requests, x-ratelimit-remaining-requests, \
                              x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, retry-after";
const ALLOW_METHODS: &str = "GET, POST, OPTIONS";
/// How long a browser may cache a preflight answer, seconds.
const MAX_AGE: u32 = 600;

/// The allowed origins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Cors {
    /// No CORS headers (the default).
    #[default]
    Off,
    /// `*`: every origin.
    Any,
    /// Exact origins, lower-cased (`https://app.example.com`, `http://localhost:3000`).
    Origins(Vec<String>),
}

/// Checks one configured origin: `scheme://host[:port]`, nothing after.
fn origin(raw: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("\"{raw}\" is not an origin ({why})"));
    let lower = raw.to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once("://") else {
        return bad("expected scheme://host[:port], e.g. https://app.example.com");
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return bad("the scheme is not valid");
    }
    if rest.contains(['/', '?', '#']) {
        return bad("an origin has no path, query or trailing slash");
    }
    // An IPv6 host is bracketed: `[::1]:8080`.
    let (host, port) = match rest.find(']') {
        Some(end) if rest.starts_with('[') => match &rest[end + 1..] {
            "" => (&rest[..=end], None),
            tail => match tail.strip_prefix(':') {
                Some(p) => (&rest[..=end], Some(p)),
                None => return bad("the host is empty or holds characters a host cannot"),
            },
        },
        _ => match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        },
    };
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "@\\\"'<>,".contains(c))
    {
        return bad("the host is empty or holds characters a host cannot");
    }
    if let Some(p) = port {
        if p.is_empty() || p.parse::<u16>().is_err() {
            return bad("the port is not a number from 0 to 65535");
        }
    }
    Ok(lower)
}

impl Cors {
    /// Parses `LLM_ROUTER_CORS_ORIGINS`: empty → off, `*` → any, else a comma list of origins.
    pub fn parse(raw: &str) -> Result<Cors, String> {
        let items: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Ok(Cors::Off);
        }
        if items.contains(&"*") {
            return if items.len() == 1 {
                Ok(Cors::Any)
            } else {
                Err("\"*\" allows every origin; list origins or give \"*\" alone".into())
            };
        }
        let mut errs = Vec::new();
        let mut out = Vec::new();
        for i in items {
            match origin(i) {
                Ok(o) => out.push(o),
                Err(e) => errs.push(e),
            }
        }
        if errs.is_empty() {
            Ok(Cors::Origins(out))
        } else {
            Err(errs.join("; "))
        }
    }

    pub fn is_off(&self) -> bool {
        *self == Cors::Off
    }

    /// Whether a request's `Origin` is allowed.
    pub fn allows(&self, origin: &HeaderValue) -> bool {
        match self {
            Cors::Off => false,
            Cors::Any => true,
            Cors::Origins(list) => origin
                .to_str()
                .is_ok_and(|o| list.iter().any(|a| a.eq_ignore_ascii_case(o))),
        }
    }
}

/// The preflight answer for an allowed origin.
fn preflight(origin: &HeaderValue, req: &ServiceRequest) -> HttpResponse {
    let mut res = HttpResponse::NoContent();
    res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()))
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, MAX_AGE))
        .insert_header((header::VARY, "Origin"));
    // The headers asked for, if they are a well-formed list, else the fixed list.
    let asked = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            v.split(',').all(|h| {
                let h = h.trim();
                !h.is_empty() && header::HeaderName::from_bytes(h.as_bytes()).is_ok()
            })
        });
    let allow = match asked {
        Some(a) => format!("{ALLOW_HEADERS}, {a}"),
        None => ALLOW_HEADERS.to_string(),
    };
    res.insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, allow));
    res.finish()
}

/// Middleware: answers preflights and adds the CORS headers (a no-op while CORS is off).
pub async fn cors<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let settings = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings.clone());
    let Some(settings) = settings.filter(|s| !s.cors.is_off()) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .filter(|o| settings.cors.allows(o))
        .cloned();
    if let Some(o) = &origin {
        if req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            let res = preflight(o, &req);
            return Ok(req.into_response(res).map_into_right_body());
        }
    }
    // Handlers and the guard render their errors as responses, so every refusal and error
    // passes through here as one (the request cannot be kept to render an `Err` here: routing
    // needs it unshared).
    let mut res = next.call(req).await?.map_into_left_body();
    let h = res.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(o) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_and_bad_ones_are_named() {
        assert_eq!(Cors::parse("").unwrap(), Cors::Off);
        assert_eq!(Cors::parse(" , ").unwrap(), Cors::Off);
        assert_eq!(Cors::parse("*").unwrap(), Cors::Any);
        assert_eq!(
            Cors::parse("https://App.example.com, http://localhost:3000,http://[::1]:8080")
                .unwrap(),
            Cors::Origins(vec![
                "https://app.example.com".into(),
                "http://localhost:3000".into(),
                "http://[::1]:8080".into()
            ])
        );
        assert!(Cors::parse("http://[::1]").is_ok());
        let cases = [
            (
                "app.example.com",
                "\"app.example.com\" is not an origin (expected scheme",
            ),
            (
                "https://a.com/",
                "\"https://a.com/\" is not an origin (an origin has no path",
            ),
            ("https://a.com:99999", "the port is not a number"),
            ("https://", "the host is empty"),
            ("*, https://a.com", "give \"*\" alone"),
        ];
        for (raw, want) in cases {
            let e = Cors::parse(raw).unwrap_err();
            assert!(e.contains(want), "{raw}: {e}");
        }
        let e = Cors::parse("https://ok.com, bad, https://x.com/p").unwrap_err();
        assert!(
            e.contains("\"bad\"") && e.contains("\"https://x.com/p\""),
            "{e}"
        );
    }

    #[test]
    fn only_listed_origins_are_allowed() {
        let c = Cors::parse("https://a.com,http://localhost:3000").unwrap();
        let allows = |o: &'static str| c.allows(&HeaderValue::from_static(o));
        assert!(allows("https://a.com"));
        assert!(allows("HTTPS://A.COM"));
        assert!(allows("http://localhost:3000"));
        assert!(!allows("https://a.com:443"));
        assert!(!allows("https://evil.com"));
        assert!(!allows("http://localhost:3001"));
        assert!(!allows("null"));
        assert!(Cors::Any.allows(&HeaderValue::from_static("https://x.org")));
        assert!(!Cors::Off.allows(&HeaderValue::from_static("https://a.com")));
    }
}
