//! Tests of the fake provider itself: its wire formats and the frame templates.

use super::*;
use crate::wire::Reply;
use bytes::Bytes;
use std::time::Instant;

async fn chat(
    up: &FakeUpstream,
    messages: &[(&str, &str)],
) -> (Option<usize>, Option<usize>, Duration) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let messages: Vec<Value> = messages
        .iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let t = Instant::now();
    let res = awc::Client::default()
        .post(format!("{}/v1/chat/completions", up.url()))
        .send_json(&json!({"model": "fake-model", "messages": messages}))
        .await
        .expect("fake answers");
    let elapsed = t.elapsed();
    assert_eq!(res.status(), 200);
    let header = |n: &str| {
        res.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().parse::<usize>().unwrap())
    };
    (
        header("x-fake-cached-tokens"),
        header("x-fake-uncached-tokens"),
        elapsed,
    )
}

#[actix_rt::test]
async fn a_next_turn_is_fast_only_on_the_instance_that_served_the_conversation() {
    let model = PrefixCacheModel {
        per_uncached_token: Duration::from_micros(200),
        capacity_tokens: 100_000,
    };
    let cfg = FakeConfig {
        prefix_cache: Some(model),
        ..Default::default()
    };
    let (a, b) = (FakeUpstream::start(cfg.clone()), FakeUpstream::start(cfg));
    let system = "You are a careful assistant. ".repeat(100);
    let turn1 = [("system", system.as_str()), ("user", "hello")];
    let turn2 = [
        ("system", system.as_str()),
        ("user", "hello"),
        ("assistant", "t0 t1 t2 t3 "),
        ("user", "and then?"),
    ];
    let (cached, uncached, took) = chat(&a, &turn1).await;
    let first = uncached.expect("header");
    assert_eq!(cached, Some(0));
    assert!(first > 700, "{first}");
    // The prefill delay is a lower bound on the answer time.
    assert!(took >= model.per_uncached_token * first as u32, "{took:?}");

    // Only the two new messages are prefilled on the instance that served turn 1.
    let new_tokens: usize = turn2[2..]
        .iter()
        .map(|(role, content)| {
            json!({"role": role, "content": content})
                .to_string()
                .len()
                .div_ceil(4)
        })
        .sum();
    let (cached, uncached, _) = chat(&a, &turn2).await;
    assert_eq!((cached, uncached), (Some(first), Some(new_tokens)));
    assert!(new_tokens * 20 < first, "{new_tokens} vs {first}");
    let (cached, uncached, took) = chat(&b, &turn2).await;
    assert_eq!(cached, Some(0));
    assert!(uncached.unwrap() > first);
    assert!(took >= model.per_uncached_token * uncached.unwrap() as u32);
    assert_eq!(a.prefix_cache_tokens().0, first as u64);
    assert_eq!(b.prefix_cache_tokens().0, 0);
}

#[actix_rt::test]
async fn without_the_model_nothing_changes() {
    let up = FakeUpstream::start(FakeConfig::default());
    let (cached, uncached, _) = chat(&up, &[("user", "hi")]).await;
    assert_eq!((cached, uncached), (None, None));
    assert_eq!(up.prefix_cache_tokens(), (0, 0));
}

/// A template made from one answer gives, for another counter, the very bytes a fresh reply
/// for that counter has (same second), for every id-carrying format, streamed or not.
#[test]
fn templates_give_the_bytes_a_fresh_reply_gives() {
    for (kind, request) in [
        (
            Kind::Chat,
            json!({"model": "m", "messages": [{"role": "user", "content": "a b"}]}),
        ),
        (
            Kind::Chat,
            json!({"model": "m", "messages": [], "stream": true, "max_tokens": 3,
                            "stream_options": {"include_usage": true}}),
        ),
        (
            Kind::Completions,
            json!({"model": "m", "prompt": "x", "stream": true}),
        ),
        (
            Kind::Anthropic,
            json!({"model": "m", "max_tokens": 9, "stream": true,
                                 "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            Kind::Anthropic,
            json!({"model": "m", "max_tokens": 9, "messages": []}),
        ),
    ] {
        let body = request.to_string();
        let key = (kind, 5, body.as_bytes());
        let frames = |n: u64, created: Option<u64>| {
            let mut r = Reply::new(kind, &request, 5, None, n);
            r.created = created.unwrap_or(r.created);
            let f = if kind.stream(&request) {
                r.frames(true)
            } else {
                vec![Bytes::from(r.whole().to_string())]
            };
            (r.created, f)
        };
        let (created, first) = frames(3, None);
        let t = Template::new(key, created, &first, 3).expect("a template");
        assert_eq!(t.frames(key, created, 3).unwrap(), first, "{kind:?}");
        let (_, fresh) = frames(0xbeef, Some(created));
        assert_eq!(
            t.frames(key, created, 0xbeef).unwrap(),
            fresh,
            "{kind:?} {request}"
        );
        // Another request, another second or another token count: not this template's.
        assert!(t.frames((kind, 5, b"{}"), created, 4).is_none());
        assert!(t.frames(key, created + 1, 4).is_none());
        assert!(t.frames((kind, 6, body.as_bytes()), created, 4).is_none());
        assert!(t.frames(key, created, 1 << 32).is_none());
    }
}
