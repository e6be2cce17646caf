//! Masks one ~64 KiB corpus N times, for instruction counts under callgrind:
//! `valgrind --tool=callgrind target/release/examples/mask_count pl_pii 100`
//! (instructions per call = (total with N) − (total with 0), divided by N; a
//! large N amortises the lazy DFA's first determinizations). `chat` masks the
//! bench's ~4.3 KiB chat request as JSON instead (a fresh session each time);
//! `-` masks stdin; a third argument `show` with N = 0 prints the masked corpus.

use llm_router_masker::{FastMasker, MaskSession};
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "pl_pii".into());
    let n: usize = args.next().map_or(10, |s| s.parse().expect("a count"));
    const PL_CLEAN: &str = include_str!("../testdata/pl_clean.txt");
    let base = match name.as_str() {
        "chat" => include_str!("../testdata/pl_pii.txt"),
        "pl_clean" => include_str!("../testdata/pl_clean.txt"),
        "pl_pii" => include_str!("../testdata/pl_pii.txt"),
        "en_clean" => include_str!("../testdata/en_clean.txt"),
        "en_pii" => include_str!("../testdata/en_pii.txt"),
        "pl_mixed" => include_str!("../testdata/pl_mixed.txt"),
        "en_mixed" => include_str!("../testdata/en_mixed.txt"),
        "-" => Box::leak(
            std::io::read_to_string(std::io::stdin())
                .expect("stdin")
                .into_boxed_str(),
        ),
        other => panic!("unknown corpus {other}"),
    };
    let mut text = String::with_capacity(64 * 1024 + base.len());
    while text.len() < 64 * 1024 {
        text.push_str(base);
        text.push('\n');
    }
    let masker = FastMasker::new();
    if name == "chat" {
        // the bench's ~4.3 KiB chat request, masked as JSON N times
        let user = format!(
            "{base}\n{}",
            &PL_CLEAN[..PL_CLEAN.char_indices().nth(1800).unwrap().0]
        );
        let body = serde_json::json!({
            "model": "bielik-11b",
            "messages": [
                {"role": "system", "content": "Jesteś asystentem działu obsługi klienta."},
                {"role": "user", "content": user},
                {"role": "assistant", "content": include_str!("../testdata/en_pii.txt")},
                {"role": "user", "content": "Przygotuj odpowiedź do klienta."}
            ]
        });
        let mut total = 0;
        for _ in 0..n {
            let mut v = body.clone();
            let mut s = MaskSession::new();
            masker.mask_json(&mut v, &mut s);
            total += s.mappings().len();
        }
        println!("chat: {n} calls, {total}");
        return;
    }
    if n == 0 && args.next().as_deref() == Some("show") {
        println!("{}", masker.mask(base, &mut MaskSession::new()));
    }
    let mut total = 0;
    for _ in 0..n {
        let mut s = MaskSession::new();
        total += masker.mask(black_box(&text), &mut s).len();
    }
    println!("{name}: {} bytes, {n} calls, {total}", text.len());
}
