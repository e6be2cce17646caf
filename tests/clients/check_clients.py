#!/usr/bin/env python3
"""Drives a running llm-router with the real client libraries (openai, anthropic, ollama).

Usage: check_clients.py ROUTER_URL EXPECTED_TEXT MODEL[,MODEL...] [--tools] [--embed MODEL,...]

Every client dialect is exercised against every model (each model is served by a different
provider type), stream and not. Each check prints one line; any failure exits non-zero with the
reason. The router's integration test (tests/integration/clients.rs) starts the router and fake
providers, then runs this script.
"""

import json
import sys

import anthropic
import ollama
import openai

WEATHER_TOOL_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
WEATHER_TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": WEATHER_TOOL_OPENAI["function"]["parameters"],
}
WEATHER_TOOL_RESPONSES = {"type": "function", **WEATHER_TOOL_OPENAI["function"]}
ARGS = {"city": "Paris"}

failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f": {detail}"), flush=True)
    if not cond:
        failures.append(name)


def run(name, fn):
    try:
        fn()
    except Exception as e:  # a client raising is a failure of the check, reported by name
        check(name, False, f"{type(e).__name__}: {e}")


def openai_checks(oa, model, text, tools):
    def chat():
        r = oa.chat.completions.create(model=model, messages=[
            {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
        check(f"openai chat [{model}]", r.choices[0].message.content == text, r)
        check(f"openai chat usage [{model}]", r.usage is not None and r.usage.completion_tokens > 0, r.usage)

    def chat_stream():
        s = oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                       stream=True, stream_options={"include_usage": True})
        got, finish, usage = "", None, None
        for chunk in s:
            if chunk.usage:
                usage = chunk.usage
            for c in chunk.choices:
                got += c.delta.content or ""
                finish = c.finish_reason or finish
        check(f"openai chat stream [{model}]", got == text and finish in ("stop", "length"), (got, finish))
        check(f"openai chat stream usage [{model}]", usage is not None and usage.completion_tokens > 0, usage)

    def completions():
        r = oa.completions.create(model=model, prompt="Once upon a time", max_tokens=50)
        check(f"openai completions [{model}]", r.choices[0].text == text, r)

    def responses():
        r = oa.responses.create(model=model, instructions="be brief", input="hi")
        check(f"openai responses [{model}]", r.output_text == text and r.status == "completed", r)
        got, final = "", None
        with oa.responses.stream(model=model, input="hi") as s:
            for ev in s:
                if ev.type == "response.output_text.delta":
                    got += ev.delta
            final = s.get_final_response()
        check(f"openai responses stream [{model}]", got == text and final.output_text == text, (got, final))

    def tool_calls():
        msgs = [{"role": "user", "content": "weather in Paris?"}]
        r = oa.chat.completions.create(model=model, messages=msgs, tools=[WEATHER_TOOL_OPENAI])
        call = r.choices[0].message.tool_calls[0]
        check(f"openai tool call [{model}]",
              call.function.name == "get_weather" and json.loads(call.function.arguments) == ARGS
              and r.choices[0].finish_reason == "tool_calls", r)
        s = oa.chat.completions.create(model=model, messages=msgs, tools=[WEATHER_TOOL_OPENAI], stream=True)
        name, args, finish = None, "", None
        for chunk in s:
            for c in chunk.choices:
                for tc in c.delta.tool_calls or []:
                    name = tc.function.name or name
                    args += tc.function.arguments or ""
                finish = c.finish_reason or finish
        check(f"openai tool call stream [{model}]",
              name == "get_weather" and json.loads(args) == ARGS and finish == "tool_calls", (name, args, finish))
        # The tool's answer goes back in the next turn.
        follow = msgs + [r.choices[0].message.model_dump(exclude_none=True),
                         {"role": "tool", "tool_call_id": call.id, "content": "18C"}]
        r2 = oa.chat.completions.create(model=model, messages=follow, tools=[WEATHER_TOOL_OPENAI],
                                        tool_choice="none")
        check(f"openai tool result turn [{model}]", r2.choices[0].message.content == text, r2)
        r3 = oa.responses.create(model=model, input="weather in Paris?", tools=[WEATHER_TOOL_RESPONSES])
        fc = [o for o in r3.output if o.type == "function_call"]
        check(f"openai responses tool call [{model}]",
              fc and fc[0].name == "get_weather" and json.loads(fc[0].arguments) == ARGS, r3)

    run(f"openai chat [{model}]", chat)
    run(f"openai chat stream [{model}]", chat_stream)
    run(f"openai completions [{model}]", completions)
    run(f"openai responses [{model}]", responses)
    if tools:
        run(f"openai tool calls [{model}]", tool_calls)


def anthropic_checks(an, model, text, tools):
    def messages():
        r = an.messages.create(model=model, max_tokens=64, system="be brief",
                               messages=[{"role": "user", "content": "hi"}])
        check(f"anthropic messages [{model}]",
              r.content[0].text == text and r.stop_reason in ("end_turn", "max_tokens"), r)
        check(f"anthropic usage [{model}]", r.usage.output_tokens > 0, r.usage)

    def stream():
        with an.messages.stream(model=model, max_tokens=64,
                                messages=[{"role": "user", "content": "hi"}]) as s:
            got = "".join(s.text_stream)
            final = s.get_final_message()
        check(f"anthropic stream [{model}]", got == text and final.content[0].text == text, (got, final))

    def tool_calls():
        msgs = [{"role": "user", "content": "weather in Paris?"}]
        r = an.messages.create(model=model, max_tokens=64, messages=msgs, tools=[WEATHER_TOOL_ANTHROPIC])
        uses = [b for b in r.content if b.type == "tool_use"]
        check(f"anthropic tool use [{model}]",
              uses and uses[0].name == "get_weather" and uses[0].input == ARGS and r.stop_reason == "tool_use", r)
        with an.messages.stream(model=model, max_tokens=64, messages=msgs, tools=[WEATHER_TOOL_ANTHROPIC]) as s:
            final = s.get_final_message()
        uses = [b for b in final.content if b.type == "tool_use"]
        check(f"anthropic tool use stream [{model}]",
              uses and uses[0].input == ARGS and final.stop_reason == "tool_use", final)
        follow = msgs + [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in r.content]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": uses[0].id,
                                                       "content": "18C"}]}]
        r2 = an.messages.create(model=model, max_tokens=64, messages=follow, tools=[WEATHER_TOOL_ANTHROPIC],
                                tool_choice={"type": "none"})
        check(f"anthropic tool result turn [{model}]", r2.content[0].text == text, r2)

    run(f"anthropic messages [{model}]", messages)
    run(f"anthropic stream [{model}]", stream)
    if tools:
        run(f"anthropic tool calls [{model}]", tool_calls)


def ollama_checks(ol, model, text, tools):
    def chat():
        r = ol.chat(model=model, messages=[{"role": "user", "content": "hi"}])
        check(f"ollama chat [{model}]", r.message.content == text and r.done, r)
        got, last = "", None
        for part in ol.chat(model=model, messages=[{"role": "user", "content": "hi"}], stream=True):
            got += part.message.content or ""
            last = part
        check(f"ollama chat stream [{model}]", got == text and last.done, (got, last))

    def generate():
        r = ol.generate(model=model, prompt="why?", system="be brief")
        check(f"ollama generate [{model}]", r.response == text and r.done, r)
        got = "".join(p.response for p in ol.generate(model=model, prompt="why?", stream=True))
        check(f"ollama generate stream [{model}]", got == text, got)

    def listing():
        names = [m.model for m in ol.list().models]
        check(f"ollama list [{model}]", model in names, names)
        s = ol.show(model)
        check(f"ollama show [{model}]", "completion" in (s.capabilities or []), s)

    def tool_calls():
        msgs = [{"role": "user", "content": "weather in Paris?"}]
        r = ol.chat(model=model, messages=msgs, tools=[WEATHER_TOOL_OPENAI])
        calls = r.message.tool_calls or []
        check(f"ollama tool call [{model}]",
              calls and calls[0].function.name == "get_weather" and dict(calls[0].function.arguments) == ARGS, r)
        follow = msgs + [r.message, {"role": "tool", "content": "18C", "tool_name": "get_weather"}]
        r2 = ol.chat(model=model, messages=follow)
        check(f"ollama tool result turn [{model}]", r2.message.content == text, r2)

    run(f"ollama chat [{model}]", chat)
    run(f"ollama generate [{model}]", generate)
    run(f"ollama list/show [{model}]", listing)
    if tools:
        run(f"ollama tool calls [{model}]", tool_calls)


def embedding_checks(oa, ol, model):
    def go():
        r = oa.embeddings.create(model=model, input=["alpha", "beta"])
        rev = oa.embeddings.create(model=model, input=["beta", "alpha"])
        a, b = r.data[0].embedding, r.data[1].embedding
        check(f"openai embeddings order [{model}]",
              len(r.data) == 2 and a and a != b and rev.data[0].embedding == b and rev.data[1].embedding == a,
              (a[:3], b[:3]))
        e = ol.embed(model=model, input=["alpha", "beta"])
        check(f"ollama embed [{model}]", len(e.embeddings) == 2 and e.embeddings[0] != e.embeddings[1], e)
        approx = all(abs(x - y) < 1e-5 for x, y in zip(e.embeddings[0], a))
        check(f"ollama embed matches openai [{model}]", approx and len(e.embeddings[0]) == len(a))
        legacy = ol.embeddings(model=model, prompt="alpha")
        check(f"ollama legacy embeddings [{model}]",
              all(abs(x - y) < 1e-5 for x, y in zip(legacy.embedding, a)) and len(legacy.embedding) == len(a))

    run(f"embeddings [{model}]", go)


def main():
    args = sys.argv[1:]
    tools = "--tools" in args
    embed = []
    if "--embed" in args:
        embed = args[args.index("--embed") + 1].split(",")
    router, text, models = args[0], args[1], args[2].split(",")
    oa = openai.OpenAI(base_url=router + "/v1", api_key="unused", max_retries=0)
    an = anthropic.Anthropic(base_url=router, api_key="unused", max_retries=0)
    ol = ollama.Client(host=router)
    for model in models:
        openai_checks(oa, model, text, tools)
        anthropic_checks(an, model, text, tools)
        ollama_checks(ol, model, text, tools)
    for model in embed:
        embedding_checks(oa, ol, model)
    if failures:
        print(f"{len(failures)} check(s) failed: {', '.join(failures)}")
        sys.exit(1)
    print("all client checks passed")


if __name__ == "__main__":
    main()
