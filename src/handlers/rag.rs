//! `langchain_rag`'s routes (SPEC §7): `POST P/rag/collections/{name}/documents` ingests
//! documents (chunked, embedded through the router, persisted), `GET P/rag/collections` lists the
//! collections, `GET P/rag/collections/{name}` shows one, `DELETE P/rag/collections/{name}`
//! removes it. Without the plugin every one answers 404 saying so.

use std::collections::HashSet;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{json_response, read_body, request_id, AppState};
use crate::errors::RouterError;
use crate::rag::{chunk, index, Rag};

/// The plugin, or 404 when it is off (the routes exist in every build, so they are documented).
fn rag(state: &AppState, req: &HttpRequest) -> Result<std::sync::Arc<Rag>, RouterError> {
    state.rag.clone().ok_or_else(|| {
        RouterError::FeatureOff(format!(
            "{} {}: the langchain_rag plugin is off (add it to LLM_ROUTER_UTILS_PLUGINS_PIPELINE)",
            req.method(),
            req.path()
        ))
    })
}

fn name_of(req: &HttpRequest) -> Result<String, RouterError> {
    let name = req.match_info().get("name").unwrap_or_default().to_string();
    if !index::valid_name(&name) {
        return Err(RouterError::bad_request(
            format!(
                "collection name \"{name}\": use 1–64 of A-Z a-z 0-9 _ - ., not starting with ."
            ),
            Some("name"),
        ));
    }
    Ok(name)
}

/// One document of an ingest request, validated.
struct Doc {
    id: String,
    text: String,
    metadata: Value,
}

/// `{"documents": [{"id", "text", "metadata"}]}` → documents; a 400 names the field.
fn documents(body: &[u8]) -> Result<Vec<Doc>, RouterError> {
    let bad = |field: &str, what: &str| {
        RouterError::bad_request(format!("field \"{field}\": {what}"), Some(field))
    };
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        RouterError::bad_request(format!("the request body is not valid JSON: {e}"), None)
    })?;
    let list = match v.get("documents") {
        None => {
            return Err(bad(
                "documents",
                "missing (a list of {\"id\", \"text\", \"metadata\"})",
            ))
        }
        Some(Value::Array(a)) if a.is_empty() => return Err(bad("documents", "empty")),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad("documents", "expected a list")),
    };
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, d) in list.iter().enumerate() {
        let f = |k: &str| format!("documents[{i}].{k}");
        if !d.is_object() {
            return Err(bad(&format!("documents[{i}]"), "expected an object"));
        }
        let id = match d.get("id") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            None => return Err(bad(&f("id"), "missing")),
            Some(_) => return Err(bad(&f("id"), "expected a non-empty string")),
        };
        if !seen.insert(id.clone()) {
            return Err(bad(
                &f("id"),
                &format!("\"{id}\" appears twice in this request"),
            ));
        }
        let text = match d.get("text") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            None => return Err(bad(&f("text"), "missing")),
            Some(_) => return Err(bad(&f("text"), "expected a non-empty string")),
        };
        let metadata = match d.get("metadata") {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(m @ Value::Object(_)) => m.clone(),
            Some(_) => return Err(bad(&f("metadata"), "expected an object")),
        };
        out.push(Doc { id, text, metadata });
    }
    Ok(out)
}

fn summary(name: &str, c: &index::Collection) -> Value {
    json!({"name": name, "documents": c.documents(), "chunks": c.chunks.len(),
           "dims": c.dims, "embedder": c.embedder})
}

/// `POST P/rag/collections/{name}/documents`.
pub async fn ingest(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    client: web::Data<awc::Client>,
) -> Result<HttpResponse, RouterError> {
    let rag = rag(&state, &req)?;
    let name = name_of(&req)?;
    let body = read_body(&req, payload, state.settings.max_body).await?;
    let docs = documents(&body)?;
    let s = &rag.settings;
    let mut texts = Vec::new();
    let mut owners = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        for (i, c) in chunk::chunks(&doc.text, s.chunk_size, s.chunk_overlap)
            .into_iter()
            .enumerate()
        {
            texts.push(c);
            owners.push((d, i));
        }
    }
    let vectors = rag.embed_all(&client, &request_id(&req), &texts).await?;
    let dims = vectors.first().map_or(0, Vec::len);
    let added = texts.len();
    let chunks: Vec<index::Chunk> = texts
        .into_iter()
        .zip(vectors)
        .zip(owners)
        .map(|((text, v), (d, i))| {
            let doc = &docs[d];
            index::Chunk::new(&doc.id, i, text, doc.metadata.clone(), v)
        })
        .collect();
    let c = rag
        .index
        .upsert(&name, &s.embedder, dims, chunks)
        .await
        .map_err(|e| RouterError::bad_request(format!("collection \"{name}\": {e}"), None))?;
    let mut out = summary(&name, &c);
    out["ingested"] = json!({"documents": docs.len(), "chunks": added});
    Ok(json_response(StatusCode::OK, &out))
}

/// `GET P/rag/collections`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RouterError> {
    let rag = rag(&state, &req)?;
    let all: Vec<Value> = rag
        .index
        .names()
        .into_iter()
        .filter_map(|n| rag.index.get(&n).map(|c| summary(&n, &c)))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"collections": all, "query_collection": rag.settings.collection}),
    ))
}

fn not_found(rag: &Rag, name: &str) -> RouterError {
    RouterError::CollectionNotFound {
        name: name.to_string(),
        known: rag.index.names(),
    }
}

/// `GET P/rag/collections/{name}`.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RouterError> {
    let rag = rag(&state, &req)?;
    let name = name_of(&req)?;
    let c = rag.index.get(&name).ok_or_else(|| not_found(&rag, &name))?;
    Ok(json_response(StatusCode::OK, &summary(&name, &c)))
}

/// `DELETE P/rag/collections/{name}`.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, RouterError> {
    let rag = rag(&state, &req)?;
    let name = name_of(&req)?;
    match rag
        .index
        .delete(&name)
        .await
        .map_err(RouterError::Internal)?
    {
        Some(c) => Ok(json_response(
            StatusCode::OK,
            &json!({"deleted": name, "documents": c.documents(), "chunks": c.chunks.len()}),
        )),
        None => Err(not_found(&rag, &name)),
    }
}

#[cfg(test)]
mod tests {
    use super::documents;

    #[test]
    fn a_malformed_ingest_body_names_the_field() {
        let cases: &[(&str, &str)] = &[
            ("{}", "\"documents\": missing"),
            (r#"{"documents": {}}"#, "\"documents\": expected a list"),
            (r#"{"documents": []}"#, "\"documents\": empty"),
            (
                r#"{"documents": [3]}"#,
                "\"documents[0]\": expected an object",
            ),
            (
                r#"{"documents": [{"text": "t"}]}"#,
                "\"documents[0].id\": missing",
            ),
            (
                r#"{"documents": [{"id": "a", "text": ""}]}"#,
                "\"documents[0].text\": expected a non-empty string",
            ),
            (
                r#"{"documents": [{"id": "a", "text": "t", "metadata": 1}]}"#,
                "\"documents[0].metadata\": expected an object",
            ),
            (
                r#"{"documents": [{"id": "a", "text": "t"}, {"id": "a", "text": "u"}]}"#,
                "\"documents[1].id\": \"a\" appears twice",
            ),
            ("not json", "not valid JSON"),
        ];
        for (body, want) in cases {
            let e = documents(body.as_bytes()).err().unwrap().to_string();
            assert!(e.contains(want), "{body}: {e}");
        }
        let ok =
            documents(br#"{"documents": [{"id": 7, "text": "t", "metadata": null}]}"#).unwrap();
        assert_eq!((ok[0].id.as_str(), ok[0].metadata.is_object()), ("7", true));
    }
}
