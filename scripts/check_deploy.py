#!/usr/bin/env python3
"""Checks the operations kit: the Helm chart, docker-compose.yml, deploy/prometheus.yml, the
Grafana provisioning and dashboard. Run by scripts/check-deploy.sh (part of scripts/test.sh).

- The chart is rendered (scripts/helm_render.py) for its default values and a few variants, and
  every manifest is validated against the bundled Kubernetes schemas (kubernetes-validate, strict:
  unknown fields are errors), then checked for what the schemas cannot see: selectors that select
  the right pods, probes on /health, references to the chart's own ConfigMap/Secret, a models
  config that is JSON.
- A self-test breaks a rendered manifest in known ways and requires the validation to fail, so
  this check cannot pass vacuously.
- Compose, Prometheus and Grafana files are parsed and cross-checked (files they mount exist,
  Prometheus scrapes the router's /metrics, every metric the dashboard queries is one the router
  defines or SPEC §8 names).
"""

import copy
import json
import os
import re
import sys

import kubernetes_validate
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helm_render  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART = os.path.join(ROOT, "deploy/helm/llm-router")
K8S_VERSION = "1.30.0"

# Metrics SPEC §8 names that this build does not emit yet: the dashboard may chart them.
SPEC_METRICS_TO_COME = {"llm_router_tokens_total", "llm_router_overhead_seconds"}

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL {msg}")


def ok(msg):
    print(f"ok   {msg}")


def schema_errors(doc):
    """kubernetes-validate's complaints about one manifest (empty when valid)."""
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        return []
    except kubernetes_validate.ValidationError as e:
        path = "/".join(str(p) for p in e.path)
        return [f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {path}: {e.message}"]
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as e:
        return [f"{doc.get('kind')}: {e}"]


def render(sets):
    docs = []
    for path, text in helm_render.render_chart(CHART, sets):
        for d in yaml.safe_load_all(text):
            if d:
                d["__source"] = path
                docs.append(d)
    return docs


def semantic_errors(docs):
    """What the schemas cannot see."""
    errs = []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    deployments = by_kind.get("Deployment", [])
    router = [d for d in deployments if any(c["name"] == "llm-router" for c in d["spec"]["template"]["spec"]["containers"])]
    if len(router) != 1:
        return [f"expected one router Deployment, found {len(router)}"]
    for d in deployments:
        sel = d["spec"]["selector"]["matchLabels"]
        labels = d["spec"]["template"]["metadata"]["labels"]
        if any(labels.get(k) != v for k, v in sel.items()):
            errs.append(f"Deployment/{d['metadata']['name']}: selector {sel} does not select its pods {labels}")
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in deployments}
    for d in deployments:
        for other, labels in pods.items():
            sel = d["spec"]["selector"]["matchLabels"]
            if other != d["metadata"]["name"] and all(labels.get(k) == v for k, v in sel.items()):
                errs.append(f"Deployment/{d['metadata']['name']}: selector also selects {other}'s pods")
    r = router[0]
    c = r["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        path = c.get(probe, {}).get("httpGet", {}).get("path")
        if path != "/health":
            errs.append(f"router {probe} is on {path!r}, not /health")
    port_names = {p.get("name") for p in c.get("ports", [])}
    for svc in by_kind.get("Service", []):
        sel = svc["spec"]["selector"]
        selected = [n for n, labels in pods.items() if all(labels.get(k) == v for k, v in sel.items())]
        if len(selected) != 1:
            errs.append(f"Service/{svc['metadata']['name']} selects {selected}, want exactly one Deployment's pods")
        if selected == [r["metadata"]["name"]]:
            for p in svc["spec"]["ports"]:
                if isinstance(p.get("targetPort"), str) and p["targetPort"] not in port_names:
                    errs.append(f"Service/{svc['metadata']['name']}: targetPort {p['targetPort']} is not a container port")
    spec = r["spec"]["template"]["spec"]
    for v in spec.get("volumes", []):
        if "configMap" in v and ("ConfigMap", v["configMap"]["name"]) not in names:
            errs.append(f"volume {v['name']}: no ConfigMap {v['configMap']['name']}")
        if "secret" in v and ("Secret", v["secret"]["secretName"]) not in names:
            errs.append(f"volume {v['name']}: no Secret {v['secret']['secretName']}")
    env = {e["name"]: e for e in c.get("env", [])}
    for e in env.values():
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            secret = next((s for s in by_kind.get("Secret", []) if s["metadata"]["name"] == ref["name"]), None)
            if secret is None or ref["key"] not in secret.get("data", {}):
                errs.append(f"env {e['name']}: no key {ref['key']} in Secret {ref['name']}")
    mount = next((m for m in c.get("volumeMounts", []) if m.get("subPath") == "models-config.json"), None)
    if mount is None or env.get("LLM_ROUTER_MODELS_CONFIG", {}).get("value") != mount["mountPath"]:
        errs.append("LLM_ROUTER_MODELS_CONFIG does not name the mounted models-config.json")
    for cm in by_kind.get("ConfigMap", []):
        text = cm.get("data", {}).get("models-config.json")
        if text is not None:
            try:
                cfg = json.loads(text)
                if "active_models" not in cfg:
                    errs.append(f"ConfigMap/{cm['metadata']['name']}: models-config.json has no active_models")
            except ValueError as e:
                errs.append(f"ConfigMap/{cm['metadata']['name']}: models-config.json is not JSON: {e}")
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        ref = hpa["spec"]["scaleTargetRef"]
        if (ref["kind"], ref["name"]) != ("Deployment", r["metadata"]["name"]):
            errs.append(f"HPA scales {ref}, not the router Deployment")
        if "replicas" in r["spec"]:
            errs.append("router Deployment sets replicas although the HPA owns them")
    return errs


def check_chart():
    with open(os.path.join(CHART, "Chart.yaml")) as f:
        chart = yaml.safe_load(f)
    for key in ("apiVersion", "name", "version", "appVersion"):
        if not chart.get(key):
            fail(f"Chart.yaml: missing {key}")
    if chart.get("apiVersion") != "v2":
        fail("Chart.yaml: apiVersion must be v2")
    variants = {
        "default values": [],
        "external Redis, fixed replicas": ["redis.enabled=false", "redis.host=redis.example", "autoscaling.enabled=false"],
        "no Redis, auth on, Redis password": ["redis.enabled=false", "auth.enabled=true", "redis.password=s3cret"],
        "bundled Redis with a password": ["redis.password=s3cret"],
    }
    default_docs = None
    for label, sets in variants.items():
        try:
            docs = render(sets)
        except helm_render.TemplateError as e:
            fail(f"chart renders ({label}): {e}")
            continue
        kinds = sorted({d["kind"] for d in docs})
        errs = []
        for d in docs:
            clean = {k: v for k, v in d.items() if k != "__source"}
            errs += schema_errors(clean)
        if not errs:
            # Cross-checks assume schema-valid manifests.
            errs += semantic_errors(docs)
        if errs:
            for e in errs:
                fail(f"chart ({label}): {e}")
        else:
            ok(f"chart ({label}): {len(docs)} manifests valid against Kubernetes {K8S_VERSION} ({', '.join(kinds)})")
        if not sets:
            default_docs = docs
    if default_docs is None:
        return
    want = {"Deployment", "Service", "ConfigMap", "Secret", "HorizontalPodAutoscaler"}
    missing = want - {d["kind"] for d in default_docs}
    if missing:
        fail(f"chart defaults lack {sorted(missing)}")
    redis_off = render(["redis.enabled=false"])
    if any("REDIS_HOST" in json.dumps(d) for d in redis_off if d["kind"] == "Deployment") or \
            any(d["metadata"]["name"].endswith("-redis") for d in redis_off):
        fail("chart: redis.enabled=false still deploys or points at the bundled Redis")
    else:
        ok("chart: redis.enabled=false leaves Redis out")
    self_test(default_docs)


def self_test(docs):
    """Breaks valid manifests in known ways; each must be caught."""
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "llm-router")
    dep = {k: v for k, v in dep.items() if k != "__source"}
    breakages = {
        "a port that is not a number": lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(containerPort="eighty"),
        "a misspelt field": lambda d: d["spec"].update(replicass=2),
        "a container without a name": lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"),
        "env as a map": lambda d: d["spec"]["template"]["spec"]["containers"][0].update(env={"A": "b"}),
    }
    for label, breakage in breakages.items():
        broken = copy.deepcopy(dep)
        breakage(broken)
        if schema_errors(broken):
            ok(f"self-test: {label} is rejected")
        else:
            fail(f"self-test: {label} passed validation")
    broken = copy.deepcopy(docs)
    for d in broken:
        if d["kind"] == "Service" and d["metadata"]["name"] == "llm-router":
            d["spec"]["selector"] = {"app.kubernetes.io/name": "llm-router"}
    if semantic_errors(broken):
        ok("self-test: a Service selecting the Redis pods too is rejected")
    else:
        fail("self-test: a Service selecting the Redis pods too passed")
    try:
        helm_render.Renderer({}, {}).render(
            helm_render.parse(helm_render.lex("{{ range .Values.x }}{{ end }}", "t"), "t", {}), {}, "t")
        fail("self-test: the renderer accepted `range`")
    except helm_render.TemplateError:
        ok("self-test: template syntax outside the renderer's subset is an error")


def known_metrics():
    """Metric names the router defines (src/) plus those of actix-web-prom."""
    names = {"http_requests_total", "http_request_duration_seconds"}
    for dirpath, _, files in os.walk(os.path.join(ROOT, "src")):
        for f in files:
            if f.endswith(".rs"):
                with open(os.path.join(dirpath, f)) as fh:
                    names |= set(re.findall(r'"(llm_router_[a-z0-9_]+|(?:guardrail|masker)_incidents_total)"', fh.read()))
    return names


def check_dashboard():
    path = os.path.join(ROOT, "resources/grafana/llm-router.json")
    with open(path) as f:
        dash = json.load(f)
    errs = []
    panels = dash.get("panels", [])
    ids = [p["id"] for p in panels]
    if len(ids) != len(set(ids)):
        errs.append("panel ids repeat")
    variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    known = known_metrics() | SPEC_METRICS_TO_COME
    used = set()
    for p in panels:
        if p["type"] == "row":
            continue
        for t in p.get("targets", []):
            expr = t.get("expr", "")
            if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
                errs.append(f"panel {p['title']!r}: unbalanced expression {expr}")
            # Metric names, once label matchers and `by (...)` label lists are taken out.
            bare = re.sub(r"\{[^}]*\}", "", expr)
            bare = re.sub(r"\b(?:by|without)\s*\([^)]*\)", "", bare)
            for m in re.findall(r"\b((?:llm_router|http|guardrail|masker)_[a-z0-9_]+)\b", bare):
                base = re.sub(r"_(bucket|sum|count)$", "", m)
                used.add(base)
                if base not in known:
                    errs.append(f"panel {p['title']!r}: unknown metric {m}")
            for v in re.findall(r"\$(\w+)", expr):
                if not v.startswith("__") and v not in variables:
                    errs.append(f"panel {p['title']!r}: undefined variable ${v}")
        ds = p.get("datasource", {}).get("uid", "")
        if ds.startswith("${") and ds[2:-1] not in variables:
            errs.append(f"panel {p['title']!r}: data source variable {ds} undefined")
    for must in ("http_requests_total", "http_request_duration_seconds", "llm_router_provider_calls_total",
                 "llm_router_provider_errors_total", "llm_router_provider_latency_seconds",
                 "llm_router_provider_ttft_seconds", "llm_router_provider_in_flight",
                 "llm_router_provider_healthy", "llm_router_retry_total", "llm_router_tokens_total",
                 "llm_router_config_reload_total"):
        if must not in used:
            errs.append(f"no panel charts {must}")
    for e in errs:
        fail(f"dashboard: {e}")
    if not errs:
        ok(f"dashboard: {len(panels)} panels, {len(used)} metrics, all defined by the router or SPEC §8")


def load_yaml(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return yaml.safe_load(f)


def check_compose_and_prometheus():
    compose = load_yaml("docker-compose.yml")
    services = compose.get("services", {})
    errs = []
    for s in ("router", "redis", "prometheus", "grafana"):
        if s not in services:
            errs.append(f"no service {s}")
    for name, svc in services.items():
        if not isinstance(svc, dict) or not ("image" in svc or "build" in svc):
            errs.append(f"service {name}: neither image nor build")
            continue
        for dep in svc.get("depends_on", []) or []:
            if dep not in services:
                errs.append(f"service {name}: depends on unknown {dep}")
        for vol in svc.get("volumes", []) or []:
            src = vol.split(":")[0]
            if src.startswith("."):
                if not os.path.exists(os.path.join(ROOT, src)):
                    errs.append(f"service {name}: mounts missing {src}")
        env = svc.get("environment", {}) or {}
        if isinstance(env, list):
            errs.append(f"service {name}: environment as a list (use a map)")
    router = services.get("router", {})
    build = router.get("build", {})
    if not os.path.exists(os.path.join(ROOT, build.get("context", "."), build.get("dockerfile", "Dockerfile"))):
        errs.append("router: Dockerfile missing")
    env = router.get("environment", {})
    if str(env.get("LLM_ROUTER_USE_PROMETHEUS", "")).lower() not in ("1", "true", "t", "yes", "y", "tak"):
        errs.append("router: LLM_ROUTER_USE_PROMETHEUS is off, Prometheus would scrape nothing")
    if env.get("LLM_ROUTER_REDIS_HOST") != "redis":
        errs.append("router: LLM_ROUTER_REDIS_HOST is not the redis service")
    prom = load_yaml("deploy/prometheus.yml")
    jobs = prom.get("scrape_configs", [])
    port = str(env.get("LLM_ROUTER_SERVER_PORT", "8080"))
    scrapes = [j for j in jobs if j.get("metrics_path", "/metrics") == "/metrics"
               and any(f"router:{port}" in t for sc in j.get("static_configs", []) for t in sc.get("targets", []))]
    if not scrapes:
        errs.append("prometheus.yml: no job scrapes router:%s/metrics" % port)
    ds = load_yaml("deploy/grafana/provisioning/datasources/prometheus.yml")
    if not any(d.get("url", "").startswith("http://prometheus:9090") for d in ds.get("datasources", [])):
        errs.append("grafana data source does not point at the prometheus service")
    dashboards = load_yaml("deploy/grafana/provisioning/dashboards/llm-router.yml")
    graf = services.get("grafana", {})
    mounted = {v.split(":")[1] for v in graf.get("volumes", [])}
    for p in dashboards.get("providers", []):
        if p.get("options", {}).get("path") not in mounted:
            errs.append(f"grafana dashboards path {p.get('options', {}).get('path')} is not mounted")
    for e in errs:
        fail(f"compose: {e}")
    if not errs:
        ok(f"docker-compose.yml: {', '.join(services)}; prometheus.yml scrapes router:{port}/metrics; grafana provisioned")


def main():
    check_chart()
    check_dashboard()
    check_compose_and_prometheus()
    if failures:
        print(f"check-deploy: {len(failures)} problem(s)")
        return 1
    print("check-deploy: all deployment files valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
