#!/usr/bin/env python3
"""Drives a router with auth on (LLM_ROUTER_AUTH_ENABLED=1) with the real client libraries.

Usage: check_auth.py ROUTER_URL VALID_KEY RESTRICTED_KEY MODEL

VALID_KEY may call MODEL; RESTRICTED_KEY is a known key whose `models` list leaves MODEL out. For
openai, anthropic and ollama, each in a plain and a streaming request: the valid key is served (and
the key went out in the header the SDK is documented to use, read off the request it sent), while a
missing key, a wrong key (WRONG_KEY below) and the restricted key each raise the SDK's own error
with the status and the router's message in the SDK's parsed error. One line per check; any failed
check exits non-zero. Run by tests/integration/auth_clients.rs, which greps the router's log for
these keys afterwards.

What the pinned SDKs send (read from their sources in target/py-venv):
- openai: `api_key=` → `Authorization: Bearer`; a request with no key needs
  `extra_headers={"Authorization": openai.omit}` (the client refuses to build without a key).
- anthropic: `api_key=` and `auth_token=` both → `Authorization: Bearer` (this SDK generation sends
  no `x-api-key` of its own); `default_headers={"x-api-key": ...}` sends that header alone;
  `default_headers={"Authorization": anthropic.omit}` sends no key.
- ollama: no key unless `headers=` (or OLLAMA_API_KEY, cleared here) gives one; errors are
  `ResponseError` with `status_code` and `error` (the body's `error` string).
"""

import os
import sys
import tempfile

# Nothing from the caller's environment may add or replace a key: every client below says which
# key it sends. The anthropic client given no key of its own also looks for a profile in
# ~/.config/anthropic: an empty home has none (an ANTHROPIC_CONFIG_DIR without one is an error).
for _var in [v for v in os.environ if v.startswith(("OPENAI_", "ANTHROPIC_", "OLLAMA_"))]:
    del os.environ[_var]
_home = tempfile.TemporaryDirectory(prefix="check-auth-home-")
os.environ["HOME"] = _home.name

import anthropic  # noqa: E402
import ollama  # noqa: E402
import openai  # noqa: E402

# The wrong key every SDK sends; tests/integration/auth_clients.rs greps the log for it.
WRONG_KEY = "sk-test-wrong-from-sdk-5150deadbeef"
MISSING = "missing API key"
UNKNOWN = "unknown API key"

failures = []
# The key headers of the last request a client sent, lower-cased names.
sent = {}


def record(request):
    sent.clear()
    sent.update({k.lower(): v for k, v in request.headers.items() if k.lower() in ("authorization", "x-api-key")})


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"), flush=True)
    if not cond:
        failures.append(name)


def run(name, fn):
    try:
        fn()
    except Exception as e:  # an unexpected exception fails the check, reported by name
        check(name, False, f"{type(e).__name__}: {e}")


def refused(name, fn, error_type, status, message_of, want):
    """`fn` must raise `error_type` with `status`; `message_of(e)` must hold `want` (a predicate)."""
    try:
        fn()
    except error_type as e:
        got = (getattr(e, "status_code", None), message_of(e))
        check(name, got[0] == status and want(got[1]), f"got {got}")
        return
    except Exception as e:
        check(name, False, f"raised {type(e).__name__} (not {error_type.__name__}): {e}")
        return
    check(name, False, f"no error raised (want {error_type.__name__} {status})")


def starts(prefix):
    return lambda msg: isinstance(msg, str) and msg.startswith(prefix)


def equals(text):
    return lambda msg: msg == text


def may_not_use(model):
    return lambda msg: isinstance(msg, str) and f'may not use model "{model}"' in msg


def openai_checks(url, valid, restricted, model):
    def client(key):
        hooks = {"request": [record]}
        return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0,
                             http_client=openai.DefaultHttpxClient(event_hooks=hooks))

    msgs = [{"role": "user", "content": "hi"}]

    def chat(c, **extra):
        return c.chat.completions.create(model=model, messages=msgs, **extra)

    def stream(c, **extra):
        return "".join(ch.choices[0].delta.content or "" for ch in
                       chat(c, stream=True, **extra) if ch.choices)

    def ok():
        c = client(valid)
        r = chat(c)
        check("openai valid key: chat served", bool(r.choices[0].message.content), r)
        check("openai api_key= is sent as Authorization: Bearer", sent == {"authorization": f"Bearer {valid}"}, sent)
        check("openai valid key: chat stream served", bool(stream(c)))

    # openai's parsed error: `e.body` is the body's `error` object.
    def message(e):
        return (e.body or {}).get("message")

    no_key = {"extra_headers": {"Authorization": openai.omit}}
    run("openai valid key", ok)
    for kind, c, extra, err, status, want in [
        ("missing key", client(valid), no_key, openai.AuthenticationError, 401, starts(MISSING)),
        ("wrong key", client(WRONG_KEY), {}, openai.AuthenticationError, 401, equals(UNKNOWN)),
        ("restricted key", client(restricted), {}, openai.PermissionDeniedError, 403, may_not_use(model)),
    ]:
        refused(f"openai {kind}: chat -> {err.__name__} {status}", lambda: chat(c, **extra), err, status, message, want)
        refused(f"openai {kind}: chat stream -> {err.__name__} {status}", lambda: stream(c, **extra), err, status,
                message, want)
    # The no-key request really went without one.
    refused("openai missing key: nothing sent", lambda: chat(client(valid), **no_key), openai.AuthenticationError,
            401, lambda e: sent, equals({}))


def anthropic_checks(url, valid, restricted, model):
    def client(**kw):
        hooks = {"request": [record]}
        return anthropic.Anthropic(base_url=url, max_retries=0,
                                   http_client=anthropic.DefaultHttpxClient(event_hooks=hooks), **kw)

    msgs = [{"role": "user", "content": "hi"}]

    def create(c):
        return c.messages.create(model=model, max_tokens=32, messages=msgs)

    def stream(c):
        with c.messages.stream(model=model, max_tokens=32, messages=msgs) as s:
            return "".join(s.text_stream)

    def raw_stream(c):
        return [ev.type for ev in c.messages.create(model=model, max_tokens=32, messages=msgs, stream=True)]

    def ok():
        for how, kw, header in [
            ("api_key=", {"api_key": valid}, {"authorization": f"Bearer {valid}"}),
            ("auth_token=", {"auth_token": valid}, {"authorization": f"Bearer {valid}"}),
            ("x-api-key header", {"default_headers": {"x-api-key": valid}}, {"x-api-key": valid}),
        ]:
            c = client(**kw)
            r = create(c)
            check(f"anthropic valid key by {how}: messages served", bool(r.content[0].text), r)
            check(f"anthropic {how} is sent as {list(header)[0]}", sent == header, sent)
            check(f"anthropic valid key by {how}: stream served", bool(stream(c)))
        events = raw_stream(client(api_key=valid))
        check("anthropic valid key: create(stream=True) served", events[-1:] == ["message_stop"], events)

    # anthropic's parsed error: `e.body` is the whole body, {"type": "error", "error": {...}}.
    def message(e):
        body = e.body if isinstance(e.body, dict) else {}
        return body.get("error", {}).get("message") if body.get("type") == "error" else body

    run("anthropic valid key", ok)
    no_key = client(api_key=valid, default_headers={"Authorization": anthropic.omit})
    for kind, c, err, status, want in [
        ("missing key", no_key, anthropic.AuthenticationError, 401, starts(MISSING)),
        ("wrong key (Bearer)", client(api_key=WRONG_KEY), anthropic.AuthenticationError, 401, equals(UNKNOWN)),
        ("wrong key (x-api-key)", client(default_headers={"x-api-key": WRONG_KEY}), anthropic.AuthenticationError,
         401, equals(UNKNOWN)),
        ("restricted key", client(api_key=restricted), anthropic.PermissionDeniedError, 403, may_not_use(model)),
        ("restricted key (x-api-key)", client(default_headers={"x-api-key": restricted}),
         anthropic.PermissionDeniedError, 403, may_not_use(model)),
    ]:
        name = f"anthropic {kind}"
        refused(f"{name}: messages -> {err.__name__} {status}", lambda: create(c), err, status, message, want)
        refused(f"{name}: stream -> {err.__name__} {status}", lambda: stream(c), err, status, message, want)
        refused(f"{name}: create(stream=True) -> {err.__name__} {status}", lambda: raw_stream(c), err, status,
                message, want)
    refused("anthropic missing key: nothing sent", lambda: create(no_key), anthropic.AuthenticationError, 401,
            lambda e: sent, equals({}))


def ollama_checks(url, valid, restricted, model):
    def client(key):
        headers = {"Authorization": f"Bearer {key}"} if key else None
        return ollama.Client(host=url, headers=headers, event_hooks={"request": [record]})

    msgs = [{"role": "user", "content": "hi"}]

    def chat(c):
        return c.chat(model=model, messages=msgs)

    def chat_stream(c):
        return "".join(p.message.content or "" for p in c.chat(model=model, messages=msgs, stream=True))

    def generate_stream(c):
        return "".join(p.response for p in c.generate(model=model, prompt="why?", stream=True))

    def ok():
        c = client(valid)
        r = chat(c)
        check("ollama valid key: chat served", bool(r.message.content) and r.done, r)
        check("ollama headers= Authorization is sent as given", sent == {"authorization": f"Bearer {valid}"}, sent)
        check("ollama valid key: chat stream served", bool(chat_stream(c)))
        check("ollama valid key: generate stream served", bool(generate_stream(c)))

    run("ollama valid key", ok)
    for kind, key, status, want in [
        ("missing key", None, 401, starts(MISSING)),
        ("wrong key", WRONG_KEY, 401, equals(UNKNOWN)),
        ("restricted key", restricted, 403, may_not_use(model)),
    ]:
        c = client(key)
        for what, fn in [("chat", chat), ("chat stream", chat_stream), ("generate stream", generate_stream)]:
            refused(f"ollama {kind}: {what} -> ResponseError {status}", lambda: fn(c), ollama.ResponseError, status,
                    lambda e: e.error, want)
    refused("ollama missing key: nothing sent", lambda: chat(client(None)), ollama.ResponseError, 401,
            lambda e: sent, equals({}))


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    url, valid, restricted, model = sys.argv[1:]
    url = url.rstrip("/")
    openai_checks(url, valid, restricted, model)
    anthropic_checks(url, valid, restricted, model)
    ollama_checks(url, valid, restricted, model)
    if failures:
        print(f"{len(failures)} check(s) failed: {', '.join(failures)}")
        sys.exit(1)
    print("all auth checks passed")


if __name__ == "__main__":
    main()
