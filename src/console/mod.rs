//! The built-in web console (SPEC §12): `GET /ui` and its assets, embedded in the binary, plus
//! the few routes the pages need beyond the public API.
//!
//! - [`assets`]: the HTML/CSS/JS, committed as plain files and compiled in (`include_str!`), so
//!   the console works offline and needs no build step.
//! - [`session`]: log-in with an API key (auth on) → an `HttpOnly; SameSite=Strict` cookie
//!   naming an in-memory session; [`crate::access::guard`] accepts that cookie in place of a key
//!   and checks the session's CSRF token on every write.
//! - [`config`]: the models config as the console sees it (tokens replaced by a placeholder),
//!   applied through the hot-reload path ([`crate::handlers::reload::Reloader`]), with a version
//!   history in `LLM_ROUTER_STATE_DIR`.
//! - [`anonymize`]: text masking with `fast`, `pii` or `fast+pii`.
//!
//! The console adds no middleware: its routes are rows of [`crate::handlers::table`] like any
//! other, so the proxy routes pay nothing for it (the guard looks for a session cookie only when a
//! request carries no key).

pub mod anonymize;
pub mod assets;
pub mod config;
pub mod history;
pub mod routes;
pub mod session;

use std::path::PathBuf;

/// `LLM_ROUTER_WEB_CONSOLE` and `LLM_ROUTER_STATE_DIR`.
#[derive(Clone, Debug)]
pub struct ConsoleSettings {
    pub enabled: bool,
    /// Where the config version history is kept (`<dir>/config-history/`).
    pub state_dir: PathBuf,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            enabled: true,
            state_dir: PathBuf::from("data"),
        }
    }
}

/// The console's shared state (one per server, in [`crate::handlers::AppState`]).
pub struct Console {
    pub settings: ConsoleSettings,
    pub sessions: session::Sessions,
    pub history: std::sync::Arc<history::History>,
}

impl Console {
    pub fn new(settings: &ConsoleSettings) -> Console {
        Console {
            settings: settings.clone(),
            sessions: session::Sessions::new(session::SESSION_TTL),
            history: std::sync::Arc::new(history::History::new(
                settings.state_dir.join("config-history"),
            )),
        }
    }
}

/// Console paths served without a key even with auth on: the page, its assets, and the log-in
/// routes (everything else the pages call goes through the access guard).
pub fn is_public(path: &str) -> bool {
    path == "/ui"
        || path == "/ui/"
        || path == "/ui/api/login"
        || path == "/ui/api/logout"
        || path == "/ui/api/session"
        || path
            .strip_prefix("/ui/assets/")
            .is_some_and(|f| !f.is_empty())
}
