//! The privacy and safety pipeline's stages (SPEC §6), plugged into the relay's seams
//! ([`crate::relay::stages`]), in SPEC order: request guardrails ([`guardrails`]), then masking
//! with `fast_masker` and/or the `pii_masker` service ([`masking`]), then — on the way back —
//! restoring the originals ([`masking::RestoreFactory`]) and the response guardrails
//! ([`response_guard`], the relay's gate). The plugin services are called and
//! probed through [`services`].
//!
//! Fail closed everywhere: configuration that cannot work (an unknown plugin, a plugin without
//! its host) is a start-up error; a plugin that fails at run time blocks the request (503 naming
//! the plugin), an unsafe verdict refuses it (422 naming the guardrail); neither reaches a
//! provider.

pub mod audit;
pub mod guardrails;
pub mod masking;
pub mod response_guard;
pub mod services;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::relay::stages::{RequestStage, Stages};
use crate::settings::{parse_bool, Settings};
use crate::telemetry::PipelineMetrics;
use guardrails::Guard;
use services::{Service, ServicesMonitor};

/// The default bound on one plugin call (`LLM_ROUTER_PLUGINS_TIMEOUT_SECONDS`).
pub const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The guardrail variables (SPEC §1, §6).
#[derive(Clone, Debug, Default)]
pub struct PipelineSettings {
    /// Check every request (`LLM_ROUTER_FORCE_GUARDRAIL_REQUEST`) with these guards in order.
    pub guard_request: Vec<Guard>,
    /// Check every answer (`LLM_ROUTER_FORCE_GUARDRAIL_RESPONSE`) with these guards in order.
    pub guard_response: Vec<Guard>,
    /// Characters of new text between two checks of a stream
    /// (`LLM_ROUTER_GUARDRAIL_RESPONSE_WINDOW_CHARS`).
    pub response_window: usize,
    pub nask_host: String,
    pub sojka_host: String,
    /// Bound on every plugin call and probe.
    pub timeout: Duration,
    /// The audit, when any `*_WITH_AUDIT*` is on.
    pub audit: Option<audit::AuditSettings>,
}

impl PipelineSettings {
    /// Reads the guardrail variables; problems go to `errs` (start-up errors).
    pub fn from_vars(
        get: &dyn Fn(&str) -> String,
        seconds: &dyn Fn(&str) -> Result<Duration, String>,
        errs: &mut Vec<String>,
    ) -> PipelineSettings {
        let mut s = PipelineSettings {
            nask_host: host(get, Guard::NaskGuard.host_var(), errs),
            sojka_host: host(get, Guard::SojkaGuard.host_var(), errs),
            timeout: DEFAULT_PLUGIN_TIMEOUT,
            response_window: response_guard::DEFAULT_WINDOW,
            ..Default::default()
        };
        let var = "LLM_ROUTER_PLUGINS_TIMEOUT_SECONDS";
        match seconds(&get(var)) {
            Ok(d) if !d.is_zero() => s.timeout = d,
            Ok(_) => errs.push(format!("{var}: must be more than 0")),
            Err(e) => errs.push(format!("{var}: {e}")),
        }
        s.guard_request = s.guard_pipeline("REQUEST", get, errs);
        s.guard_response = s.guard_pipeline("RESPONSE", get, errs);
        let var = "LLM_ROUTER_GUARDRAIL_RESPONSE_WINDOW_CHARS";
        match get(var).trim() {
            "" => {}
            raw => match raw.parse::<usize>() {
                Ok(n) if n > 0 => s.response_window = n,
                _ => errs.push(format!(
                    "{var}: expected a whole number of characters above 0, got \"{raw}\""
                )),
            },
        }
        s.audit = audit::AuditSettings::from_vars(get, errs);
        s
    }

    /// One direction's guardrails (`LLM_ROUTER_FORCE_GUARDRAIL_<dir>` and
    /// `LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_<dir>`): empty unless forced; forced with no
    /// guardrail or one without its host is a start-up error.
    fn guard_pipeline(
        &self,
        dir: &str,
        get: &dyn Fn(&str) -> String,
        errs: &mut Vec<String>,
    ) -> Vec<Guard> {
        let force_var = format!("LLM_ROUTER_FORCE_GUARDRAIL_{dir}");
        let pipeline_var = format!("LLM_ROUTER_GUARDRAIL_STRATEGY_PIPELINE_{dir}");
        let pipeline = guardrails::parse_pipeline(&pipeline_var, &get(&pipeline_var), errs);
        if !parse_bool(&get(&force_var)) {
            return Vec::new();
        }
        if pipeline.is_empty() {
            let what = if dir == "REQUEST" {
                "requests"
            } else {
                "answers"
            };
            errs.push(format!(
                "{force_var}: on, but {pipeline_var} names no guardrail (nask_guard, \
                 sojka_guard); refusing to start rather than send unchecked {what}"
            ));
        }
        for g in &pipeline {
            if self.host_of(*g).is_empty() {
                errs.push(format!(
                    "{pipeline_var}: {} needs its service: set {}",
                    g.name(),
                    g.host_var()
                ));
            }
        }
        pipeline
    }

    pub fn host_of(&self, g: Guard) -> &str {
        match g {
            Guard::NaskGuard => &self.nask_host,
            Guard::SojkaGuard => &self.sojka_host,
        }
    }
}

/// A plugin host variable: empty, or an `http(s)://` URL.
pub fn host(get: &dyn Fn(&str) -> String, var: &str, errs: &mut Vec<String>) -> String {
    let h = get(var).trim().trim_end_matches('/').to_string();
    if !h.is_empty() && !h.starts_with("http://") && !h.starts_with("https://") {
        errs.push(format!(
            "{var}: expected an http:// or https:// URL, got \"{h}\""
        ));
    }
    h
}

/// What every stage shares: the incident counters and the audit, when on.
pub struct Shared {
    pub metrics: PipelineMetrics,
    pub audit: Option<audit::Auditor>,
}

impl Shared {
    /// One guardrail event, for the audit (when on for that direction). `verdict`: the
    /// guardrail's answer, or `{"error": ...}` when it failed. `Err` when the audit's queue is
    /// full: the request is refused.
    pub fn audit_guardrail(
        &self,
        endpoint: &str,
        direction: &str,
        guard: &str,
        text: &str,
        verdict: &Value,
    ) -> Result<(), audit::AuditFull> {
        let Some(a) = &self.audit else { return Ok(()) };
        let on = match direction {
            "request" => a.guard_request,
            _ => a.guard_response,
        };
        if on {
            let safe = guardrails::verdict(verdict).ok();
            a.record(
                if direction == "request" {
                    "guardrail_request"
                } else {
                    "guardrail_response"
                },
                json!({"endpoint": endpoint, "guardrail": guard, "text": text,
                       "safe": safe, "verdict": verdict}),
            )?;
        }
        Ok(())
    }

    /// One masking event, for the audit (when on); `Err` as for [`Shared::audit_guardrail`].
    pub fn audit_masking(
        &self,
        endpoint: &str,
        plugins: &[&str],
        before: &Value,
        after: &Value,
        mappings: &[(String, String)],
    ) -> Result<(), audit::AuditFull> {
        let Some(a) = &self.audit else { return Ok(()) };
        if a.masking {
            let mappings: serde_json::Map<String, Value> = mappings
                .iter()
                .map(|(p, o)| (p.clone(), Value::String(o.clone())))
                .collect();
            a.record(
                "masker",
                json!({"endpoint": endpoint, "plugins": plugins, "before": before,
                       "after": after, "mappings": mappings}),
            )?;
        }
        Ok(())
    }
}

/// The pipeline for these settings, in SPEC order (utils → guardrails → masking), and the masker
/// itself (for `P/fast_text_mask`). Starts the [`ServicesMonitor`] for the configured plugin
/// services, so it must run inside an actix System. `registry`: where the incident counters are
/// registered (Prometheus on). `rag`: the `langchain_rag` plugin, when on (a utils plugin).
/// `profiles`: the measurements `model: "auto"` ranks by when profiles are on.
pub fn build(
    settings: &Settings,
    registry: Option<&prometheus::Registry>,
    rag: Option<Arc<crate::rag::Rag>>,
    profiles: Option<Arc<crate::profiles::Profiles>>,
) -> std::io::Result<(Stages, Arc<masking::Masking>)> {
    let metrics = PipelineMetrics::new(registry).map_err(std::io::Error::other)?;
    let p = &settings.pipeline;
    let audit = p.audit.as_ref().map(audit::Auditor::start).transpose()?;
    let shared = Arc::new(Shared { metrics, audit });
    let mut services: Vec<Arc<Service>> = Vec::new();
    // One service per guardrail, shared by both directions (one probe, one verdict).
    let mut service_of = |g: Guard| -> Arc<Service> {
        if let Some(s) = services.iter().find(|s| s.name == g.name()) {
            return s.clone();
        }
        let s = Arc::new(Service::new(g.name(), p.host_of(g), g.path(), p.timeout));
        services.push(s.clone());
        s
    };
    let request_guards: Vec<Arc<Service>> =
        p.guard_request.iter().map(|g| service_of(*g)).collect();
    let response_guards: Vec<Arc<Service>> =
        p.guard_response.iter().map(|g| service_of(*g)).collect();
    let mut request: Vec<Box<dyn RequestStage>> = Vec::new();
    // Utils plugins first (SPEC §6 order), in their pipeline order.
    for plugin in &settings.smart.utils {
        match plugin {
            crate::smart::UtilsPlugin::SimpleSemanticRouting => {
                if let Some(router) = &settings.smart.semantic {
                    request.push(Box::new(crate::smart::stage::SemanticStage {
                        router: router.clone(),
                        settings: settings.smart.clone(),
                        ranking: profiles.clone().filter(|_| settings.profiles.enabled).map(
                            |profiles| crate::smart::stage::Ranking {
                                profiles,
                                models: settings.models.clone(),
                            },
                        ),
                    }));
                }
            }
            crate::smart::UtilsPlugin::LangchainRag => {
                if let Some(rag) = &rag {
                    request.push(Box::new(crate::rag::RagStage(rag.clone())));
                }
            }
        }
    }
    if !request_guards.is_empty() {
        let guards = request_guards;
        request.push(Box::new(guardrails::GuardrailStage {
            guards,
            shared: shared.clone(),
        }));
    }
    let pii = settings
        .masking
        .pipeline
        .contains(&masking::Masker::PiiMasker)
        .then(|| {
            Arc::new(Service::new(
                "pii_masker",
                &settings.masking.pii_host,
                "api/maskers/pii",
                p.timeout,
            ))
        });
    services.extend(pii.iter().cloned());
    let masking = Arc::new(masking::Masking::new(
        &settings.masking,
        pii,
        shared.clone(),
    ));
    request.push(Box::new(masking::MaskingStage(masking.clone())));
    ServicesMonitor::start(services, settings.services_monitor_interval);
    let gate = (!response_guards.is_empty()).then(|| {
        Box::new(response_guard::ResponseGuardFactory {
            guards: response_guards.into(),
            shared: shared.clone(),
            window: p.response_window,
        }) as Box<dyn crate::relay::stages::GateFactory>
    });
    let stages = Stages {
        request,
        // Restore first: the response guardrails judge what the client would get.
        frames: vec![Box::new(masking::RestoreFactory)],
        gate,
    };
    Ok((stages, masking))
}
