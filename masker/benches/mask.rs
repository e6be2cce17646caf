//! Throughput of the fast masker on ~64 KiB of Polish and English text:
//! without PII (`*_clean`), dense with identifiers (`*_pii`, one every ~25
//! bytes) and realistic customer-service mail with a handful of identifiers
//! per KiB (`*_mixed`); and the time to mask a ~4 KiB JSON chat request (with
//! masking off — parse and serialize only — in the same run for comparison).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use llm_router_masker::{FastMasker, MaskSession};
use std::hint::black_box;

const PL_CLEAN: &str = include_str!("../testdata/pl_clean.txt");
const PL_PII: &str = include_str!("../testdata/pl_pii.txt");
const EN_CLEAN: &str = include_str!("../testdata/en_clean.txt");
const EN_PII: &str = include_str!("../testdata/en_pii.txt");
const PL_MIXED: &str = include_str!("../testdata/pl_mixed.txt");
const EN_MIXED: &str = include_str!("../testdata/en_mixed.txt");

fn repeat_to(s: &str, n: usize) -> String {
    let mut out = String::with_capacity(n + s.len());
    while out.len() < n {
        out.push_str(s);
        out.push('\n');
    }
    out
}

fn chat_body() -> String {
    let user = format!(
        "{PL_PII}\n{}",
        &PL_CLEAN[..PL_CLEAN.char_indices().nth(1800).unwrap().0]
    );
    let body = serde_json::json!({
        "model": "bielik-11b",
        "stream": true,
        "anonymize": true,
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "Jesteś asystentem działu obsługi klienta. Odpowiadaj zwięźle, po polsku."},
            {"role": "user", "content": user},
            {"role": "assistant", "content": EN_PII},
            {"role": "user", "content": "Przygotuj odpowiedź do klienta z podsumowaniem kwot i terminów."}
        ]
    });
    serde_json::to_string(&body).unwrap()
}

fn throughput(c: &mut Criterion) {
    let masker = FastMasker::new();
    let mut g = c.benchmark_group("mask_64k");
    for (name, base) in [
        ("pl_clean", PL_CLEAN),
        ("pl_pii", PL_PII),
        ("en_clean", EN_CLEAN),
        ("en_pii", EN_PII),
        ("pl_mixed", PL_MIXED),
        ("en_mixed", EN_MIXED),
    ] {
        let text = repeat_to(base, 64 * 1024);
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &text, |b, t| {
            b.iter(|| {
                let mut s = MaskSession::new();
                black_box(masker.mask(black_box(t), &mut s).len())
            })
        });
    }
    g.finish();
}

fn json_request(c: &mut Criterion) {
    let masker = FastMasker::new();
    let body = chat_body();
    let mut g = c.benchmark_group("chat_request_4k");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("masking_off", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_str(black_box(&body)).unwrap();
            black_box(serde_json::to_vec(&v).unwrap().len())
        })
    });
    g.bench_function("masking_on", |b| {
        b.iter(|| {
            let mut v: serde_json::Value = serde_json::from_str(black_box(&body)).unwrap();
            let mut s = MaskSession::new();
            masker.mask_json(&mut v, &mut s);
            black_box(serde_json::to_vec(&v).unwrap().len())
        })
    });
    let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
    g.bench_function("mask_json_only", |b| {
        b.iter_batched(
            || parsed.clone(),
            |mut v| {
                let mut s = MaskSession::new();
                masker.mask_json(&mut v, &mut s);
                black_box(s.mappings().len())
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, throughput, json_request);
criterion_main!(benches);
