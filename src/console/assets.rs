//! The console's files, compiled into the binary: `GET /ui` (the page) and `GET /ui/assets/{id}`.
//! Plain committed HTML, CSS and JavaScript — no build step, nothing fetched from elsewhere.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::errors::RouterError;
use crate::handlers::AppState;

/// `(file name, content type, contents)`.
const FILES: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
    (
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/i18n.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "status.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/status.js"),
    ),
    (
        "chat.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/chat.js"),
    ),
    (
        "anonymizer.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/anonymizer.js"),
    ),
    (
        "config.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/config.js"),
    ),
];

const INDEX: &str = include_str!("assets/index.html");

/// The security headers of every console file: nothing from other origins, no framing.
fn secured(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header((
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ))
    .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
    .insert_header((header::REFERRER_POLICY, "no-referrer"));
    b
}

fn off(req: &HttpRequest) -> RouterError {
    RouterError::RouteNotFound {
        method: req.method().to_string(),
        path: req.path().to_string(),
    }
}

/// `GET /ui`: the console page (404 with `LLM_ROUTER_WEB_CONSOLE=false`).
pub async fn index(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RouterError> {
    if !state.settings.console.enabled {
        return Err(off(&req));
    }
    Ok(secured(HttpResponse::Ok())
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(INDEX))
}

/// `GET /ui/assets/{id}`: one embedded file; 404 naming it when there is no such file.
pub async fn asset(
    req: HttpRequest,
    file: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RouterError> {
    if !state.settings.console.enabled {
        return Err(off(&req));
    }
    let Some((_, kind, body)) = FILES.iter().find(|(n, _, _)| *n == file.as_str()) else {
        return Ok(crate::handlers::json_response(
            actix_web::http::StatusCode::NOT_FOUND,
            &serde_json::json!({"error": {"message": format!("the console has no file \"{file}\""),
                                          "type": "not_found_error", "param": null, "code": 404}}),
        ));
    };
    Ok(secured(HttpResponse::Ok())
        .content_type(*kind)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(*body))
}
