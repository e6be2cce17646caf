//! The console's rows of the route table ([`crate::handlers::table`]).

use actix_web::http::Method;
use actix_web::{web, Route};

use super::{anonymize, assets, config, session};
use crate::handlers::{doc, Doc};

/// Adds the console's routes through the table's `add`.
pub fn rows(add: &mut impl FnMut(Vec<String>, Method, fn() -> Route, Doc)) {
    let s = |v: &str| vec![v.to_string()];
    use Method as M;
    add(
        vec!["/ui".into(), "/ui/".into()],
        M::GET,
        || web::route().to(assets::index),
        doc(
            "The web console (404 with LLM_ROUTER_WEB_CONSOLE=false)",
            "console",
            None,
            false,
            "Text",
        ),
    );
    add(
        s("/ui/assets/{id}"),
        M::GET,
        || web::route().to(assets::asset),
        doc(
            "A file of the web console, embedded in the binary",
            "console",
            None,
            false,
            "Text",
        ),
    );
    add(
        s("/ui/api/session"),
        M::GET,
        || web::route().to(session::show),
        doc(
            "The console's session: logged in, key_id, policy, what the pages may do",
            "console",
            None,
            false,
            "Object",
        ),
    );
    add(
        s("/ui/api/login"),
        M::POST,
        || web::route().to(session::login),
        doc("Console log-in with an API key `{key}`: sets an HttpOnly SameSite=Strict session cookie; 401 naming why a key is refused", "console", Some("Object"), false, "Object"),
    );
    add(
        s("/ui/api/logout"),
        M::POST,
        || web::route().to(session::logout),
        doc("Ends the console session", "console", None, false, "Object"),
    );
    add(
        s("/ui/api/anonymize"),
        M::POST,
        || web::route().to(anonymize::anonymize),
        doc("Masks a text `{text, algorithm: fast|pii|fast+pii}`: masked text and mappings with types", "console", Some("Object"), false, "Object"),
    );
    add(
        s("/router/config"),
        M::GET,
        || web::route().to(config::show),
        doc(
            "The models config, secrets replaced by a placeholder",
            "console",
            None,
            false,
            "Object",
        ),
    );
    add(
        s("/router/config/apply"),
        M::POST,
        || web::route().to(config::apply),
        doc("Validates (as at start-up) and applies a models config through the reload path; 400 listing every problem, the running config stays", "console", Some("Object"), false, "Object"),
    );
    add(
        s("/router/config/history"),
        M::GET,
        || web::route().to(config::history),
        doc(
            "Versions of the config applied from the console, newest first",
            "console",
            None,
            false,
            "Object",
        ),
    );
    add(
        s("/router/config/history/{id}"),
        M::GET,
        || web::route().to(config::version),
        doc(
            "One config version (secrets redacted); 404 naming an unknown one",
            "console",
            None,
            false,
            "Object",
        ),
    );
    add(
        s("/router/config/history/{id}/restore"),
        M::POST,
        || web::route().to(config::restore),
        doc(
            "Applies a config version again (recorded as a new version)",
            "console",
            None,
            false,
            "Object",
        ),
    );
}
