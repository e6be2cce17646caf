//! Policies (SPEC §10) and the route table they are checked against.
//!
//! A request path (with the configured prefix `P`) maps to one [`RouteClass`]; a policy is the set
//! of classes it allows. The same table gives the route's error dialect and the body field that
//! names its model, so the access layer answers in the client's own shape and can enforce a key's
//! `models` without knowing the handlers.
//!
//! Model listings (`/models`, `/v1/models[/{id}]`, `P/models`, `P/tags`, `P/show`, `P/v0/models`
//! and the Ollama probe `/`) are allowed to every policy: clients of every dialect list models
//! before calling them, and they expose nothing a key's own calls do not.

/// A key's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    Admin,
    Developer,
    Chat,
    Embedding,
    Anthropic,
    Ollama,
    Builtin,
}

impl Policy {
    pub const ALL: [Policy; 7] = [
        Policy::Admin,
        Policy::Developer,
        Policy::Chat,
        Policy::Embedding,
        Policy::Anthropic,
        Policy::Ollama,
        Policy::Builtin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Admin => "admin",
            Policy::Developer => "developer",
            Policy::Chat => "chat",
            Policy::Embedding => "embedding",
            Policy::Anthropic => "anthropic",
            Policy::Ollama => "ollama",
            Policy::Builtin => "builtin",
        }
    }

    pub fn parse(s: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.as_str() == s.trim())
    }

    pub fn allows(self, class: RouteClass) -> bool {
        use RouteClass as C;
        match self {
            Policy::Admin => true,
            Policy::Developer => class != C::Admin,
            _ if class == C::ModelInfo => true,
            Policy::Chat => matches!(
                class,
                C::OpenAiGenerate | C::Messages | C::OllamaGenerate | C::LmStudio
            ),
            Policy::Embedding => matches!(class, C::Embedding | C::OllamaEmbedding),
            Policy::Anthropic => class == C::Messages,
            Policy::Ollama => matches!(class, C::OllamaGenerate | C::OllamaEmbedding),
            Policy::Builtin => class == C::Builtin,
        }
    }
}

/// What a route is, for policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteClass {
    /// `/router/*`, `/auth/*`, `/admin/*`.
    Admin,
    /// OpenAI chat completions, completions, responses.
    OpenAiGenerate,
    /// Anthropic Messages.
    Messages,
    /// Ollama chat and generate.
    OllamaGenerate,
    /// LM Studio chat.
    LmStudio,
    /// OpenAI embeddings.
    Embedding,
    /// Ollama embed and legacy embeddings.
    OllamaEmbedding,
    /// Model listings and info (see the module docs).
    ModelInfo,
    /// SPEC §5 and §6 built-in routes (and `P/ping`, `P/version`).
    Builtin,
    /// Anything else: `/health`, `/metrics`, docs, unknown paths.
    Other,
}

/// The error body shape a route's clients expect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorDialect {
    OpenAi,
    Anthropic,
    Ollama,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    pub class: RouteClass,
    pub dialect: ErrorDialect,
    /// JSON body field naming the public model (`model`, or `model_name` on built-in routes).
    pub model_field: Option<&'static str>,
}

const BUILTIN_GENERATE: &[&str] = &[
    "/conversation_with_model",
    "/extended_conversation_with_model",
    "/generative_answer",
    "/generate_article_from_text",
    "/create_full_article_from_texts",
    "/translate",
    "/simplify_text",
    "/generate_questions",
];

/// Classifies `path` for a router whose prefix is `prefix` (normalised: `/api`, or empty).
pub fn classify(path: &str, prefix: &str) -> RouteInfo {
    use ErrorDialect as D;
    use RouteClass as C;
    let info = |class, dialect, model_field| RouteInfo {
        class,
        dialect,
        model_field,
    };
    let model = Some("model");
    if ["/router", "/auth", "/admin"]
        .iter()
        .any(|a| path == *a || path.strip_prefix(a).is_some_and(|r| r.starts_with('/')))
    {
        return info(C::Admin, D::OpenAi, None);
    }
    // Unprefixed routes first: with an empty prefix `P/chat/completions` is `/chat/completions`.
    match path {
        "/v1/chat/completions"
        | "/chat/completions"
        | "/v1/completions"
        | "/v1/responses"
        | "/responses" => return info(C::OpenAiGenerate, D::OpenAi, model),
        "/v1/messages" => return info(C::Messages, D::Anthropic, model),
        "/v1/embeddings" | "/embeddings" => return info(C::Embedding, D::OpenAi, model),
        "/models" | "/v1/models" => return info(C::ModelInfo, D::OpenAi, None),
        "/" => return info(C::ModelInfo, D::Ollama, None),
        _ => {}
    }
    if path.starts_with("/v1/models/") {
        return info(C::ModelInfo, D::OpenAi, None);
    }
    let Some(rest) = path.strip_prefix(prefix) else {
        return info(C::Other, D::OpenAi, None);
    };
    match rest {
        "/chat/completions" | "/v1/chat/completions" | "/v1/completions" => {
            info(C::OpenAiGenerate, D::OpenAi, model)
        }
        "/v1/messages" => info(C::Messages, D::Anthropic, model),
        "/chat" | "/generate" => info(C::OllamaGenerate, D::Ollama, model),
        "/v0/chat/completions" => info(C::LmStudio, D::OpenAi, model),
        "/v1/embeddings" => info(C::Embedding, D::OpenAi, model),
        "/embed" | "/embeddings" => info(C::OllamaEmbedding, D::Ollama, model),
        "/show" => info(C::ModelInfo, D::Ollama, model),
        "/tags" => info(C::ModelInfo, D::Ollama, None),
        "/models" | "/v0/models" => info(C::ModelInfo, D::OpenAi, None),
        "/ping" | "/version" | "/fast_text_mask" => info(C::Builtin, D::OpenAi, None),
        r if BUILTIN_GENERATE.contains(&r) => info(C::Builtin, D::OpenAi, Some("model_name")),
        _ => info(C::Other, D::OpenAi, None),
    }
}

/// The public routes: the comma list with `P` standing for the prefix, as exact paths.
pub fn expand_public(list: &str, prefix: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix('P') {
            Some(rest) if rest.starts_with('/') => format!("{prefix}{rest}"),
            _ => s.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use ErrorDialect as D;
    use Policy as P;
    use RouteClass as C;

    #[test]
    fn every_route_of_the_spec_has_its_class_dialect_and_model_field() {
        let cases: &[(&str, C, D, Option<&str>)] = &[
            (
                "/v1/chat/completions",
                C::OpenAiGenerate,
                D::OpenAi,
                Some("model"),
            ),
            (
                "/chat/completions",
                C::OpenAiGenerate,
                D::OpenAi,
                Some("model"),
            ),
            (
                "/api/chat/completions",
                C::OpenAiGenerate,
                D::OpenAi,
                Some("model"),
            ),
            (
                "/api/v1/chat/completions",
                C::OpenAiGenerate,
                D::OpenAi,
                Some("model"),
            ),
            (
                "/v1/completions",
                C::OpenAiGenerate,
                D::OpenAi,
                Some("model"),
            ),
            (
                "/api/v1/completions",
                C::OpenAiGenerate,
                D::OpenAi,
                Some("model"),
            ),
            ("/v1/responses", C::OpenAiGenerate, D::OpenAi, Some("model")),
            ("/responses", C::OpenAiGenerate, D::OpenAi, Some("model")),
            ("/v1/messages", C::Messages, D::Anthropic, Some("model")),
            ("/api/v1/messages", C::Messages, D::Anthropic, Some("model")),
            ("/api/chat", C::OllamaGenerate, D::Ollama, Some("model")),
            ("/api/generate", C::OllamaGenerate, D::Ollama, Some("model")),
            (
                "/api/v0/chat/completions",
                C::LmStudio,
                D::OpenAi,
                Some("model"),
            ),
            ("/v1/embeddings", C::Embedding, D::OpenAi, Some("model")),
            ("/embeddings", C::Embedding, D::OpenAi, Some("model")),
            ("/api/v1/embeddings", C::Embedding, D::OpenAi, Some("model")),
            ("/api/embed", C::OllamaEmbedding, D::Ollama, Some("model")),
            (
                "/api/embeddings",
                C::OllamaEmbedding,
                D::Ollama,
                Some("model"),
            ),
            ("/api/show", C::ModelInfo, D::Ollama, Some("model")),
            ("/api/tags", C::ModelInfo, D::Ollama, None),
            ("/", C::ModelInfo, D::Ollama, None),
            ("/models", C::ModelInfo, D::OpenAi, None),
            ("/v1/models", C::ModelInfo, D::OpenAi, None),
            ("/v1/models/gemma", C::ModelInfo, D::OpenAi, None),
            ("/api/models", C::ModelInfo, D::OpenAi, None),
            ("/api/v0/models", C::ModelInfo, D::OpenAi, None),
            ("/api/ping", C::Builtin, D::OpenAi, None),
            ("/api/version", C::Builtin, D::OpenAi, None),
            ("/api/fast_text_mask", C::Builtin, D::OpenAi, None),
            ("/api/translate", C::Builtin, D::OpenAi, Some("model_name")),
            (
                "/api/conversation_with_model",
                C::Builtin,
                D::OpenAi,
                Some("model_name"),
            ),
            (
                "/api/generate_questions",
                C::Builtin,
                D::OpenAi,
                Some("model_name"),
            ),
            ("/router/stats", C::Admin, D::OpenAi, None),
            ("/auth/status", C::Admin, D::OpenAi, None),
            ("/admin", C::Admin, D::OpenAi, None),
            ("/routerx", C::Other, D::OpenAi, None),
            ("/health", C::Other, D::OpenAi, None),
            ("/metrics", C::Other, D::OpenAi, None),
            ("/api/nope", C::Other, D::OpenAi, None),
            ("/chat", C::Other, D::OpenAi, None),
        ];
        for &(path, class, dialect, field) in cases {
            let got = classify(path, "/api");
            assert_eq!(
                (got.class, got.dialect, got.model_field),
                (class, dialect, field),
                "{path}"
            );
        }
        // Another prefix, and none.
        assert_eq!(classify("/x/chat", "/x").class, C::OllamaGenerate);
        assert_eq!(classify("/api/chat", "/x").class, C::Other);
        assert_eq!(classify("/chat", "").class, C::OllamaGenerate);
        assert_eq!(classify("/chat/completions", "").class, C::OpenAiGenerate);
        assert_eq!(classify("/translate", "").class, C::Builtin);
    }

    #[test]
    fn policy_table() {
        use RouteClass::*;
        let classes = [
            Admin,
            OpenAiGenerate,
            Messages,
            OllamaGenerate,
            LmStudio,
            Embedding,
            OllamaEmbedding,
            ModelInfo,
            Builtin,
            Other,
        ];
        // Allowed classes per policy, in the order above.
        let table: &[(Policy, [u8; 10])] = &[
            (P::Admin, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
            (P::Developer, [0, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
            (P::Chat, [0, 1, 1, 1, 1, 0, 0, 1, 0, 0]),
            (P::Embedding, [0, 0, 0, 0, 0, 1, 1, 1, 0, 0]),
            (P::Anthropic, [0, 0, 1, 0, 0, 0, 0, 1, 0, 0]),
            (P::Ollama, [0, 0, 0, 1, 0, 0, 1, 1, 0, 0]),
            (P::Builtin, [0, 0, 0, 0, 0, 0, 0, 1, 1, 0]),
        ];
        for (policy, row) in table {
            for (class, allowed) in classes.iter().zip(row) {
                assert_eq!(policy.allows(*class), *allowed == 1, "{policy:?} {class:?}");
            }
        }
        for p in Policy::ALL {
            assert_eq!(Policy::parse(p.as_str()), Some(p));
        }
        assert_eq!(Policy::parse("readonly"), None);
    }

    #[test]
    fn public_list_expands_the_prefix() {
        assert_eq!(
            expand_public("/,/health, P/ping ,P/version,,Pnot", "/api"),
            ["/", "/health", "/api/ping", "/api/version", "Pnot"]
        );
        assert_eq!(expand_public("P/ping", ""), ["/ping"]);
    }
}
