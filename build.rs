//! Lays out the release binary's code so that what runs is together (`scripts/symbol-order.sh`).
//!
//! The functions a running router executes (startup and the request path: about 2.2 MB of the
//! 12 MB of machine code) are scattered over the whole `.text` when the linker keeps the
//! compiler's order, and the kernel maps code in 64 KiB windows around each page touched, so
//! most of the binary ends up resident. `scripts/symbol-order.txt` lists the executed functions,
//! hottest first; LLD places them at the start of `.text` in that order. Only the release
//! `llm-router` binary of an x86_64 Linux build linked by rustc's own LLD (the default since
//! Rust 1.90) is given the list; anything else links exactly as before. Names the list has that
//! the binary lacks (code changed since it was recorded) are skipped by the linker.

use std::env;
use std::process::Command;

const ORDER: &str = "scripts/symbol-order.txt";

fn main() {
    println!("cargo:rerun-if-changed={ORDER}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LLM_ROUTER_NO_SYMBOL_ORDER");
    if links_with_rust_lld() && env::var_os("LLM_ROUTER_NO_SYMBOL_ORDER").is_none() {
        let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bin=llm-router=-Wl,--symbol-ordering-file={dir}/{ORDER}");
        println!("cargo:rustc-link-arg-bin=llm-router=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether the final link is rustc's default LLD: a release x86_64 Linux GNU target, rustc
/// 1.90 or newer, and no linker chosen by the user (flags or `CARGO_TARGET_*_LINKER`).
fn links_with_rust_lld() -> bool {
    let var = |k: &str| env::var(k).unwrap_or_default();
    if var("PROFILE") != "release" || var("TARGET") != "x86_64-unknown-linux-gnu" {
        return false;
    }
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    if ["linker", "link-self-contained", "fuse-ld"]
        .iter()
        .any(|k| flags.contains(k))
    {
        return false;
    }
    if env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some() {
        return false;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let text = String::from_utf8_lossy(&out.stdout);
    let minor = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse::<u32>().ok());
    matches!(minor, Some(m) if m >= 90)
}
