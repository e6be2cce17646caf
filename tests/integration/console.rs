//! The web console's HTTP side (SPEC §12) over real sockets: the embedded page and assets, the
//! off switch, log-in sessions (cookie attributes, CSRF, policies), the anonymizer route, and the
//! config routes (secrets never sent, placeholder round-trip, validation, history, restore).
//! The pages themselves are driven in a real browser by `console_browser.rs`.

use std::path::Path;

use serde_json::{json, Value};

use crate::common::*;

pub const ADMIN: &str = "sk-console-admin-0123456789";
pub const DEV: &str = "sk-console-dev-0123456789ab";
pub const SECRET: &str = "sk-upstream-secret-token-42";

pub fn write_keys(dir: &Path) -> String {
    let path = dir.join("keys.json");
    let keys = json!([
        {"key_plain": ADMIN, "key_id": "console-admin", "policy_name": "admin"},
        {"key_plain": DEV, "key_id": "console-dev", "policy_name": "developer"},
    ]);
    std::fs::write(&path, keys.to_string()).unwrap();
    path.display().to_string()
}

/// Model "m" on provider "a" (with an upstream token the console must never show).
pub fn config(up: &FakeUpstream) -> Value {
    let mut p = provider("a", up);
    p["api_token"] = json!(SECRET);
    models_config(&[("m", vec![p])])
}

struct Answer {
    status: u16,
    headers: awc::http::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

async fn call(
    r: &Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Answer {
    let mut req = client().request(method.parse().unwrap(), r.url(path));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let mut res = match body {
        Some(b) => req.send_json(b).await.unwrap(),
        None => req.send().await.unwrap(),
    };
    let bytes = res.body().limit(10 << 20).await.unwrap();
    Answer {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn authed(up: &FakeUpstream, dir: &Path) -> Router {
    let keys = write_keys(dir);
    let state = dir.join("state").display().to_string();
    Router::start(
        &config(up),
        &[
            ("LLM_ROUTER_AUTH_ENABLED", "1"),
            ("LLM_ROUTER_AUTH_MEMORY_SEED_FILE", &keys),
            ("LLM_ROUTER_STATE_DIR", &state),
        ],
    )
}

/// Logs in with `key`; returns (the `Cookie` header to send, the CSRF token).
async fn login(r: &Router, key: &str) -> (String, String) {
    let a = call(r, "POST", "/ui/api/login", &[], Some(&json!({"key": key}))).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let set = a.headers.get("set-cookie").unwrap().to_str().unwrap();
    let cookie = set.split(';').next().unwrap().to_string();
    (cookie, a.json()["csrf"].as_str().unwrap().to_string())
}

#[actix_rt::test]
async fn console_page_and_assets_are_embedded_and_can_be_switched_off() {
    let (_up, r) = single(FakeConfig::default(), &[]);
    let page = call(&r, "GET", "/ui", &[], None).await;
    assert_eq!(page.status, 200);
    assert!(page
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text.contains("/ui/assets/app.js"), "{}", page.text);
    let csp = page
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    // Nothing from another origin: no http(s) URL in any file but the router's own paths.
    for f in [
        "app.js",
        "app.css",
        "i18n.js",
        "status.js",
        "chat.js",
        "anonymizer.js",
        "config.js",
    ] {
        let a = call(&r, "GET", &format!("/ui/assets/{f}"), &[], None).await;
        assert_eq!(a.status, 200, "{f}");
        assert!(
            !a.text.contains("http://") && !a.text.contains("https://"),
            "{f} names an external URL"
        );
    }
    let missing = call(&r, "GET", "/ui/assets/nope.js", &[], None).await;
    assert_eq!(missing.status, 404);
    let s = call(&r, "GET", "/ui/api/session", &[], None).await.json();
    assert_eq!(s["auth_enabled"], false);
    assert_eq!(s["logged_in"], true);
    assert_eq!(s["language"], "pl");

    let (_up2, off) = single(
        FakeConfig::default(),
        &[
            ("LLM_ROUTER_WEB_CONSOLE", "false"),
            ("LLM_ROUTER_DEFAULT_EP_LANGUAGE", "en"),
        ],
    );
    assert_eq!(call(&off, "GET", "/ui", &[], None).await.status, 404);
    assert_eq!(
        call(&off, "GET", "/ui/assets/app.js", &[], None)
            .await
            .status,
        404
    );
    assert_eq!(
        call(&off, "GET", "/ui/api/session", &[], None).await.status,
        404
    );
    // The proxy routes are untouched.
    assert_eq!(off.chat("m", false).await.status().as_u16(), 200);
}

#[actix_rt::test]
async fn console_login_sets_a_strict_httponly_cookie_and_writes_need_the_csrf_token() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let r = authed(&up, dir.path());
    // Page and log-in are public; the API behind them is not.
    assert_eq!(call(&r, "GET", "/ui", &[], None).await.status, 200);
    let s = call(&r, "GET", "/ui/api/session", &[], None).await.json();
    assert_eq!(
        (s["auth_enabled"].clone(), s["logged_in"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(
        call(&r, "GET", "/router/stats", &[], None).await.status,
        401
    );
    let bad = call(
        &r,
        "POST",
        "/ui/api/login",
        &[],
        Some(&json!({"key": "sk-nope"})),
    )
    .await;
    assert_eq!(bad.status, 401);
    assert!(bad.text.contains("unknown"), "{}", bad.text);
    assert!(bad.headers.get("set-cookie").is_none());
    let missing = call(&r, "POST", "/ui/api/login", &[], Some(&json!({}))).await;
    assert_eq!(missing.status, 400);
    assert!(
        missing.text.contains("\\\"key\\\"") || missing.text.contains("key"),
        "{}",
        missing.text
    );

    let a = call(
        &r,
        "POST",
        "/ui/api/login",
        &[],
        Some(&json!({"key": ADMIN})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let set = a
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(set.starts_with("llmr_session="), "{set}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(!a.text.contains(ADMIN), "the key is never echoed");
    let me = a.json();
    assert_eq!(me["key_id"], "console-admin");
    assert_eq!(me["can"]["config"], true);
    let cookie = set.split(';').next().unwrap().to_string();
    let csrf = me["csrf"].as_str().unwrap().to_string();
    // The cookie stands for the key on reads…
    let stats = call(&r, "GET", "/router/stats", &[("cookie", &cookie)], None).await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    let s = call(&r, "GET", "/ui/api/session", &[("cookie", &cookie)], None)
        .await
        .json();
    assert_eq!(s["logged_in"], true);
    // …and on writes only with its CSRF token.
    let body = json!({"text": "mail jan@example.pl", "algorithm": "fast"});
    let no_token = call(
        &r,
        "POST",
        "/ui/api/anonymize",
        &[("cookie", &cookie)],
        Some(&body),
    )
    .await;
    assert_eq!(no_token.status, 403, "{}", no_token.text);
    assert!(no_token.text.contains("x-csrf-token"), "{}", no_token.text);
    let wrong = [("cookie", cookie.as_str()), ("x-csrf-token", "forged")];
    assert_eq!(
        call(&r, "POST", "/ui/api/anonymize", &wrong, Some(&body))
            .await
            .status,
        403
    );
    let right = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let ok = call(&r, "POST", "/ui/api/anonymize", &right, Some(&body)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json()["text"], "mail {EMAIL_1}");
    assert_eq!(ok.json()["mappings"][0]["type"], "EMAIL");
    // A chat through the session.
    let chat = call(
        &r,
        "POST",
        "/api/chat/completions",
        &right,
        Some(&chat_body("m", false)),
    )
    .await;
    assert_eq!(chat.status, 200, "{}", chat.text);
    // Log-out ends the session.
    let out = call(&r, "POST", "/ui/api/logout", &[("cookie", &cookie)], None).await;
    assert!(out
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        call(&r, "GET", "/router/stats", &[("cookie", &cookie)], None)
            .await
            .status,
        401
    );
}

#[actix_rt::test]
async fn console_config_edits_need_an_admin_key() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let r = authed(&up, dir.path());
    let (cookie, csrf) = login(&r, DEV).await;
    let h = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let s = call(&r, "GET", "/ui/api/session", &h, None).await.json();
    assert_eq!(s["can"]["config"], false);
    assert_eq!(s["can"]["chat"], true);
    let view = call(&r, "GET", "/router/config", &h, None).await;
    assert_eq!(view.status, 403, "{}", view.text);
    let apply = call(&r, "POST", "/router/config/apply", &h, Some(&config(&up))).await;
    assert_eq!(apply.status, 403, "{}", apply.text);
    assert!(apply.text.contains("console-dev"), "{}", apply.text);
    // The same through a developer key header.
    let bearer = format!("Bearer {DEV}");
    let a = call(
        &r,
        "POST",
        "/router/config/apply",
        &[("authorization", &bearer)],
        Some(&config(&up)),
    )
    .await;
    assert_eq!(a.status, 403);
    // The developer may still anonymize.
    let anon = call(
        &r,
        "POST",
        "/ui/api/anonymize",
        &h,
        Some(&json!({"text": "x"})),
    )
    .await;
    assert_eq!(anon.status, 200, "{}", anon.text);
}

#[actix_rt::test]
async fn console_config_never_shows_tokens_keeps_them_through_edits_and_keeps_a_history() {
    let up = FakeUpstream::start(FakeConfig {
        require_bearer: Some(SECRET.into()),
        ..Default::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let r = Router::start(
        &config(&up),
        &[("LLM_ROUTER_STATE_DIR", &state.display().to_string())],
    );
    let shown = call(&r, "GET", "/router/config", &[], None).await;
    assert_eq!(shown.status, 200);
    assert!(!shown.text.contains(SECRET), "{}", shown.text);
    let doc = shown.json();
    let file = doc["path"].as_str().unwrap().to_string();
    let mut edited = doc["config"].clone();
    assert_eq!(
        edited["test_models"]["m"]["providers"][0]["api_token"],
        "__stored_secret__"
    );
    // Add model "m2" on the same provider host, the token kept by the placeholder.
    let mut p2 = edited["test_models"]["m"]["providers"][0].clone();
    p2["id"] = json!("a2");
    p2["api_token"] = json!(SECRET);
    edited["test_models"]["m2"] = json!({"providers": [p2]});
    edited["active_models"]["test_models"] = json!(["m", "m2"]);
    let a = call(
        &r,
        "POST",
        "/router/config/apply?cause=test",
        &[],
        Some(&edited),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(!a.text.contains(SECRET));
    assert_eq!(
        a.json()["version"],
        2,
        "version 1 is the config running before"
    );
    let on_disk = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        on_disk.matches(SECRET).count(),
        2,
        "the stored token was kept: {on_disk}"
    );
    let models = call(&r, "GET", "/v1/models", &[], None).await.text;
    assert!(models.contains("\"m2\""), "{models}");
    // The kept token still works upstream (the fake refuses any other).
    assert_eq!(r.chat("m", false).await.status().as_u16(), 200);
    // History: files in the state dir, listed newest first, never showing a token.
    let files: Vec<_> = std::fs::read_dir(state.join("config-history"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 2);
    let h = call(&r, "GET", "/router/config/history", &[], None).await;
    let versions = h.json()["versions"].clone();
    assert_eq!(versions[0]["id"], 2);
    assert_eq!(versions[0]["cause"], "console: test");
    assert_eq!(versions[1]["id"], 1);
    let v1 = call(&r, "GET", "/router/config/history/1", &[], None).await;
    assert_eq!(v1.status, 200);
    assert!(!v1.text.contains(SECRET), "{}", v1.text);
    assert_eq!(
        call(&r, "GET", "/router/config/history/99", &[], None)
            .await
            .status,
        404
    );
    // Restore version 1: m2 is gone again, as version 3.
    let back = call(&r, "POST", "/router/config/history/1/restore", &[], None).await;
    assert_eq!(back.status, 200, "{}", back.text);
    assert_eq!(back.json()["version"], 3);
    let models = call(&r, "GET", "/v1/models", &[], None).await.text;
    assert!(!models.contains("\"m2\""), "{models}");
    assert_eq!(r.chat("m", false).await.status().as_u16(), 200);
    // A config applied by another reload path is a version too.
    let mut changed: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    changed["test_models"]["m"]["providers"][0]["weight"] = json!(2.0);
    std::fs::write(&file, changed.to_string()).unwrap();
    let rl = call(&r, "POST", "/router/reload", &[], None).await;
    assert_eq!(rl.status, 200, "{}", rl.text);
    assert_eq!(rl.json()["version"], 4);
    let h = call(&r, "GET", "/router/config/history", &[], None)
        .await
        .json();
    assert_eq!(h["versions"][0]["cause"], "POST /router/reload");
    // Applying the running config again is no new version.
    let same = call(&r, "GET", "/router/config", &[], None).await.json()["config"].clone();
    let a = call(&r, "POST", "/router/config/apply", &[], Some(&same)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json()["version"], Value::Null);
    assert_eq!(
        std::fs::read_dir(state.join("config-history"))
            .unwrap()
            .count(),
        4
    );
}

#[actix_rt::test]
async fn console_bad_config_is_refused_naming_the_problem_and_the_running_one_stays() {
    let up = FakeUpstream::start(FakeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let r = Router::start(
        &config(&up),
        &[("LLM_ROUTER_STATE_DIR", &state.display().to_string())],
    );
    let doc = call(&r, "GET", "/router/config", &[], None).await.json();
    let file = doc["path"].as_str().unwrap().to_string();
    let before = std::fs::read_to_string(&file).unwrap();
    let mut bad = doc["config"].clone();
    bad["test_models"]["m"]["providers"][0]
        .as_object_mut()
        .unwrap()
        .remove("api_host");
    let a = call(&r, "POST", "/router/config/apply", &[], Some(&bad)).await;
    assert_eq!(a.status, 400, "{}", a.text);
    let problems = a.json()["error"]["problems"].to_string();
    assert!(
        problems.contains("providers[0]") && problems.contains("api_host"),
        "{problems}"
    );
    assert!(problems.contains("models-config.json"), "{problems}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        before,
        "the file is untouched"
    );
    assert!(!state.join("config-history").exists(), "nothing recorded");
    assert_eq!(r.chat("m", false).await.status().as_u16(), 200);
    // A placeholder standing for no stored token is refused too, naming where it is.
    let mut orphan = doc["config"].clone();
    orphan["test_models"]["m"]["providers"][0]["id"] = json!("new-id");
    let o = call(&r, "POST", "/router/config/apply", &[], Some(&orphan)).await;
    assert_eq!(o.status, 400);
    assert!(
        o.text.contains("test_models.m.providers[0].api_token"),
        "{}",
        o.text
    );
    // Not JSON, and not sent as JSON.
    let nj = client()
        .post(r.url("/router/config/apply"))
        .insert_header(("content-type", "application/json"))
        .send_body("{nope")
        .await
        .unwrap();
    assert_eq!(nj.status().as_u16(), 400);
    let form = client()
        .post(r.url("/router/config/apply"))
        .insert_header(("content-type", "text/plain"))
        .send_body("{}")
        .await
        .unwrap();
    assert_eq!(form.status().as_u16(), 400);
    // An unknown algorithm of the anonymizer is named.
    let alg = call(
        &r,
        "POST",
        "/ui/api/anonymize",
        &[],
        Some(&json!({"text": "x", "algorithm": "zzz"})),
    )
    .await;
    assert_eq!(alg.status, 400);
    assert!(alg.text.contains("zzz"), "{}", alg.text);
    let pii = call(
        &r,
        "POST",
        "/ui/api/anonymize",
        &[],
        Some(&json!({"text": "x", "algorithm": "pii"})),
    )
    .await;
    assert_eq!(pii.status, 400);
    assert!(
        pii.text.contains("LLM_ROUTER_MASKER_PII_HOST"),
        "{}",
        pii.text
    );
}

#[actix_rt::test]
async fn console_anonymizer_runs_fast_pii_and_both_in_that_order() {
    use crate::plugins::{Mode, Plugins};
    let pii = Plugins::start(Mode::Faithful);
    let (_up, r) = single(
        FakeConfig::default(),
        &[("LLM_ROUTER_MASKER_PII_HOST", &pii.url())],
    );
    let text = "Jan Kowalski, mail jan@example.pl";
    let run = |algorithm: &'static str| {
        let r = &r;
        async move {
            let a = call(
                r,
                "POST",
                "/ui/api/anonymize",
                &[],
                Some(&json!({"text": text, "algorithm": algorithm})),
            )
            .await;
            assert_eq!(a.status, 200, "{algorithm}: {}", a.text);
            a.json()
        }
    };
    let fast = run("fast").await;
    assert_eq!(fast["text"], "Jan Kowalski, mail {EMAIL_1}");
    assert!(
        pii.calls("/api/maskers/pii").is_empty(),
        "fast calls no service"
    );
    let only_pii = run("pii").await;
    assert_eq!(only_pii["text"], "Jan {NAME_1}, mail jan@example.pl");
    assert_eq!(
        only_pii["mappings"],
        json!([{"placeholder": "{NAME_1}", "original": "Kowalski", "type": "NAME"}])
    );
    let both = run("fast+pii").await;
    assert_eq!(both["text"], "Jan {NAME_1}, mail {EMAIL_1}");
    assert_eq!(both["mappings"].as_array().unwrap().len(), 2);
    // The service got the fast-masked text: the e-mail never left the router.
    let sent = pii.calls("/api/maskers/pii");
    assert_eq!(sent.last().unwrap()["text"], "Jan Kowalski, mail {EMAIL_1}");
}
