//! The router as the batch tools call it: `P/ping`, `P/models`, `P/translate` (one text per
//! call) and `P/extended_conversation_with_model` (classify: the label instruction as the system
//! prompt, the text as the user turn — as the original gateway's classifier tool calls it).
//!
//! Failures are sorted by what the run should do: [`CallError::Unreachable`] (no connection, or
//! it broke twice in a row) and [`CallError::Refused`] (401/403: the key) stop the run with every
//! written row kept; [`CallError::Row`] (any other error answer, a timeout, an unreadable body)
//! fails that row only. A 429/503 with a `Retry-After` of at most a minute is waited out (three
//! times at most) before it counts.

use std::time::Duration;

use serde_json::{json, Value};

use crate::builtin::prompts::Language;

#[derive(Debug, PartialEq)]
pub enum CallError {
    Unreachable(String),
    Refused(String),
    Row(String),
}

pub struct RouterClient {
    http: awc::Client,
    base: String,
    prefix: String,
    key: Option<String>,
    timeout: Duration,
}

/// Classify answers are one label: a short answer, and as deterministic as the model allows.
const CLASSIFY_MAX_TOKENS: u64 = 64;

impl RouterClient {
    /// `base` without a trailing slash; `prefix` like `/api` (may be empty).
    pub fn new(base: &str, prefix: &str, key: Option<String>, timeout: Duration) -> RouterClient {
        crate::relay::client::install_crypto();
        RouterClient {
            http: awc::Client::builder().disable_timeout().finish(),
            base: base.to_string(),
            prefix: prefix.to_string(),
            key,
            timeout,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}{path}", self.base, self.prefix)
    }

    /// One request; a broken connection is tried once more (a pooled connection the router had
    /// closed looks the same as a router that is gone).
    async fn call(&self, path: &str, body: Option<&Value>) -> Result<Value, CallError> {
        let url = self.url(path);
        let mut last = String::new();
        let (mut broken, mut limited) = (0, 0);
        while broken < 2 {
            let mut req = match body {
                Some(_) => self.http.post(&url),
                None => self.http.get(&url),
            }
            .timeout(self.timeout);
            if let Some(k) = &self.key {
                req = req.bearer_auth(k);
            }
            let sent = match body {
                Some(b) => req.send_json(b).await,
                None => req.send().await,
            };
            let mut res = match sent {
                Ok(r) => r,
                Err(awc::error::SendRequestError::Timeout) => {
                    return Err(CallError::Row(format!(
                        "no answer from the router within {} s (--timeout)",
                        self.timeout.as_secs()
                    )))
                }
                Err(e) => {
                    last = e.to_string();
                    broken += 1;
                    continue;
                }
            };
            let status = res.status();
            let retry_after = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let bytes = match res.body().limit(256 << 20).await {
                Ok(b) => b,
                Err(e) => {
                    return Err(CallError::Row(format!(
                        "reading the router's answer ({status}): {e}"
                    )))
                }
            };
            let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
            if status.is_success() {
                return parsed.ok_or_else(|| {
                    CallError::Row(format!("the router's answer ({status}) is not JSON"))
                });
            }
            let message = parsed
                .as_ref()
                .and_then(|v| {
                    v["error"]["message"]
                        .as_str()
                        .or(v["error"].as_str())
                        .map(String::from)
                })
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
            if let Some(wait) = retry_wait(status.as_u16(), retry_after.as_deref(), limited) {
                limited += 1;
                actix_rt::time::sleep(wait).await;
                continue;
            }
            let msg = format!("the router answered {}: {message}", status.as_u16());
            return Err(match status.as_u16() {
                401 | 403 => CallError::Refused(msg),
                _ => CallError::Row(msg),
            });
        }
        Err(CallError::Unreachable(format!(
            "cannot reach the router at {}: {last}",
            self.base
        )))
    }

    /// `P/ping`: is the router there and does it accept us?
    pub async fn ping(&self) -> Result<(), CallError> {
        self.call("/ping", None).await.map(|_| ())
    }

    /// The model names `P/models` lists; `None` when the listing is not available to us (a key
    /// with another policy), so the caller skips the check.
    pub async fn models(&self) -> Option<Vec<String>> {
        let v = self.call("/models", None).await.ok()?;
        v["data"].as_array().map(|d| {
            d.iter()
                .filter_map(|m| m["id"].as_str().map(String::from))
                .collect()
        })
    }

    /// One text through `P/translate`.
    pub async fn translate(
        &self,
        model: &str,
        language: Option<Language>,
        text: &str,
    ) -> Result<String, CallError> {
        let mut body = json!({"model_name": model, "texts": [text], "stream": false});
        if let Some(l) = language {
            body["language"] = json!(l.as_str());
        }
        let v = self.call("/translate", Some(&body)).await?;
        v["response"][0]["translated"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| {
                CallError::Row(format!(
                    "the router's translate answer has no response[0].translated: {}",
                    short(&v)
                ))
            })
    }

    /// One text through `P/extended_conversation_with_model` with this system prompt.
    pub async fn ask(&self, model: &str, system: &str, text: &str) -> Result<String, CallError> {
        let body = json!({"model_name": model, "system_prompt": system,
                          "user_last_statement": text, "temperature": 0.0,
                          "max_new_tokens": CLASSIFY_MAX_TOKENS, "stream": false});
        let v = self
            .call("/extended_conversation_with_model", Some(&body))
            .await?;
        v["response"].as_str().map(String::from).ok_or_else(|| {
            CallError::Row(format!(
                "the router's answer has no string \"response\": {}",
                short(&v)
            ))
        })
    }
}

/// Waits one row's call sits out on a 429/503 that says when to come back.
pub const RETRIES: u32 = 3;
/// A longer `Retry-After` fails the row at once.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// How long to wait before trying again after this answer, when at all (`tried`: waits so far).
pub fn retry_wait(status: u16, retry_after: Option<&str>, tried: u32) -> Option<Duration> {
    if !(status == 429 || status == 503) || tried >= RETRIES {
        return None;
    }
    let secs: u64 = retry_after?.trim().parse().ok()?;
    let wait = Duration::from_secs(secs.max(1));
    (wait <= MAX_WAIT).then_some(wait)
}

fn short(v: &Value) -> String {
    v.to_string().chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_only_on_a_rate_limit_that_says_when() {
        let s = Duration::from_secs;
        for (status, header, tried, want) in [
            (429, Some("2"), 0, Some(s(2))),
            (503, Some(" 7 "), 2, Some(s(7))),
            (429, Some("0"), 0, Some(s(1))),
            (429, Some("60"), 0, Some(s(60))),
            (429, Some("61"), 0, None),
            (429, Some("2"), 3, None),
            (429, None, 0, None),
            (429, Some("Wed, 21 Oct 2015 07:28:00 GMT"), 0, None),
            (502, Some("2"), 0, None),
            (400, Some("2"), 0, None),
        ] {
            assert_eq!(
                retry_wait(status, header, tried),
                want,
                "{status} {header:?} {tried}"
            );
        }
    }
}
