//! Conversion cost per stream frame: a provider stream decoded and re-encoded in another client
//! dialect, one provider frame per chunk (as they arrive over the network). No criterion: a
//! plain timed loop, run with `cargo bench --bench conversion` (release profile).

use std::hint::black_box;
use std::time::Instant;

use bytes::BytesMut;
use llm_router::dialects::canonical::{Decoder, Encoder, Event, Request};
use llm_router::dialects::{anthropic, ollama, openai, responses};

const TOKENS: usize = 1000;

fn openai_frames() -> Vec<Vec<u8>> {
    let mut v = vec![br#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

"#.to_vec()];
    for i in 0..TOKENS {
        v.push(format!("data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{i} \"}},\"finish_reason\":null}}]}}\n\n").into_bytes());
    }
    v.push(br#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1000,"total_tokens":1005}}

"#.to_vec());
    v.push(b"data: [DONE]\n\n".to_vec());
    v
}

fn anthropic_frames() -> Vec<Vec<u8>> {
    let mut v = vec![b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_vec()];
    for i in 0..TOKENS {
        v.push(format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"t{i} \"}}}}\n\n").into_bytes());
    }
    v.push(b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":1000}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_vec());
    v
}

fn ollama_frames() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for i in 0..TOKENS {
        v.push(format!("{{\"model\":\"m\",\"created_at\":\"2026-11-22T10:00:00.1Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"t{i} \"}},\"done\":false}}\n").into_bytes());
    }
    v.push(b"{\"model\":\"m\",\"created_at\":\"2026-11-22T10:00:00.1Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done_reason\":\"stop\",\"done\":true,\"prompt_eval_count\":5,\"eval_count\":1000}\n".to_vec());
    v
}

fn run(
    name: &str,
    frames: &[Vec<u8>],
    dec: fn() -> Box<dyn Decoder>,
    enc: &dyn Fn(&Request) -> Box<dyn Encoder>,
) {
    let mut req = Request::new("m");
    req.stream = true;
    let rounds = 30;
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let mut d = dec();
        let mut e = enc(&req);
        let mut events: Vec<Event> = Vec::new();
        let t0 = Instant::now();
        for f in frames {
            d.feed(f, &mut events);
            let mut out = BytesMut::new();
            for ev in events.drain(..) {
                e.encode(&ev, &mut out);
            }
            black_box(&out);
        }
        assert!(d.finished());
        best = best.min(t0.elapsed().as_nanos() as f64 / frames.len() as f64);
    }
    println!(
        "{name:<28} {best:>8.0} ns/frame (best of {rounds} runs of {} frames)",
        frames.len()
    );
}

fn main() {
    let oa = openai_frames();
    let an = anthropic_frames();
    let ol = ollama_frames();
    let dec_oa = || -> Box<dyn Decoder> { Box::<openai::ChatDecoder>::default() };
    let dec_an = || -> Box<dyn Decoder> { Box::<anthropic::StreamDecoder>::default() };
    let dec_ol = || -> Box<dyn Decoder> { Box::<ollama::StreamDecoder>::default() };
    let to_oa = |r: &Request| -> Box<dyn Encoder> { Box::new(openai::ChatEncoder::new(r)) };
    let to_an = |r: &Request| -> Box<dyn Encoder> { Box::new(anthropic::StreamEncoder::new(r)) };
    let to_ol = |r: &Request| -> Box<dyn Encoder> { Box::new(ollama::StreamEncoder::new(r)) };
    let to_rs = |r: &Request| -> Box<dyn Encoder> { Box::new(responses::StreamEncoder::new(r)) };
    run("openai -> ollama client", &oa, dec_oa, &to_ol);
    run("openai -> anthropic client", &oa, dec_oa, &to_an);
    run("openai -> responses client", &oa, dec_oa, &to_rs);
    run("anthropic -> openai client", &an, dec_an, &to_oa);
    run("ollama -> openai client", &ol, dec_ol, &to_oa);
    run("ollama -> anthropic client", &ol, dec_ol, &to_an);
    println!("passthrough (same dialect)           0 ns/frame of conversion: bytes are forwarded untouched");
}
