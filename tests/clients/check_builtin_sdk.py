"""The original gateway's Python SDK (`llm_router_lib` from PyPI `radlab-llm-router`), unchanged,
against the router: ping, version, and the built-in endpoints it wraps, called both with named
arguments and with its own pydantic payload models (which dump every generation option,
`mask_payload`, `masker_pipeline` and nulls for unset fields).

Usage: check_builtin_sdk.py <router base url> <model> <the model's expected answer>
Prints `ok   <check>` per check and `all sdk checks passed` at the end; any failure raises.
"""

import sys

from llm_router_lib.client import LLMRouterClient
from llm_router_lib.data_models.builtin_chat import (
    ConversationWithModelRequest,
    ExtendedConversationWithModelRequest,
)
from llm_router_lib.data_models.builtin_utils import GenerativeAnswerModel, TranslateModel


def check(name, cond, detail=""):
    if not cond:
        raise AssertionError(f"FAIL {name}: {detail}")
    print(f"ok   {name}", flush=True)


def main():
    url, model, answer = sys.argv[1], sys.argv[2], sys.argv[3]
    c = LLMRouterClient(api=url, timeout=30, retries=0)

    p = c.ping()
    check("ping", p.status is True and p.body == "pong", p)
    v = c.version()
    check("version", bool(v.version), v)

    r = c.conversation_with_model(
        user_last_statement="Co dalej?",
        historical_messages=[{"user": "Cześć", "assistant": "Dzień dobry"}],
        model=model,
    )
    check("conversation pairs", r.response == answer, r)
    check("generation_time", r.generation_time is not None and r.generation_time >= 0, r)

    r = c.conversation_with_model(
        payload=ConversationWithModelRequest(
            model_name=model,
            user_last_statement="A teraz?",
            historical_messages=[
                {"role": "user", "content": "Pierwsze"},
                {"role": "assistant", "content": "Drugie"},
            ],
            language="en",
        )
    )
    check("conversation role items", r.response == answer, r)

    r = c.extended_conversation_with_model(
        user_last_statement="Hi",
        system_prompt="You are terse.",
        model=model,
        temperature=0.2,
        max_new_tokens=64,
    )
    check("extended conversation", r.response == answer, r)

    r = c.extended_conversation_with_model(
        payload=ExtendedConversationWithModelRequest(
            model_name=model,
            user_last_statement="Hi again",
            system_prompt="You are terse.",
            historical_messages=[{"role": "user", "content": "Before"}],
        )
    )
    check("extended conversation payload", r.response == answer, r)

    r = c.translate(texts=["Good morning", "Thank you"], model=model)
    check(
        "translate",
        [(i.original, i.translated) for i in r.response]
        == [("Good morning", answer), ("Thank you", answer)],
        r,
    )
    r = c.translate(payload=TranslateModel(model_name=model, texts=["One"]))
    check("translate payload", [i.translated for i in r.response] == [answer], r)

    r = c.generative_answer(
        texts=["Paris is in France."], question_str="Where is Paris?", model=model
    )
    check("generative answer list", r.response == answer, r)
    r = c.generative_answer(
        payload=GenerativeAnswerModel(
            model_name=model,
            question_str="Where is Paris?",
            texts={"geo.txt": ["Paris is in France."]},
            doc_name_in_answer=True,
            language="en",
        )
    )
    check("generative answer documents", r.response == answer, r)

    print("all sdk checks passed", flush=True)


if __name__ == "__main__":
    main()
