//! The pure decision of VRAM management: given what an Ollama host has loaded (`/api/ps`), its
//! capacity, and the model a request needs, does it fit — and if not, which idle models to
//! unload, or whether to wait for busy ones.
//!
//! Victims are idle (no request in flight on this router), unpinned models, least recently used
//! first (the soonest `expires_at`: Ollama sets it to the last use plus the keep-alive), larger
//! first on a tie; only as many as are needed. A pinned model is never a victim; a busy one is
//! waited for, never unloaded under a request.

/// One model resident on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resident {
    pub name: String,
    /// Bytes of the host's model memory it holds (`size_vram`).
    pub bytes: u64,
    /// Ollama's RFC 3339 `expires_at` (ordering only; empty when unknown).
    pub expires_at: String,
    pub pinned: bool,
    /// Requests in flight on it (or a load this router started and Ollama has not listed yet).
    pub busy: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Loaded already, or fits in what is free.
    Fits,
    /// Unload these idle models (in this order); then it fits.
    Unload(Vec<String>),
    /// It fits only once these busy models are idle (and unloaded).
    Wait { busy: Vec<String> },
    /// Not even unloading every unpinned model frees enough.
    Never { pinned: Vec<String> },
}

/// Ollama names `m` and `m:latest` the same model.
pub fn same_model(a: &str, b: &str) -> bool {
    fn base(s: &str) -> &str {
        s.strip_suffix(":latest").unwrap_or(s)
    }
    base(a) == base(b)
}

/// What to do to load `want` (`need` bytes) on a host of `capacity` bytes holding `resident`.
pub fn plan(capacity: u64, resident: &[Resident], want: &str, need: u64) -> Verdict {
    if resident.iter().any(|r| same_model(&r.name, want)) {
        return Verdict::Fits;
    }
    let used: u64 = resident.iter().map(|r| r.bytes).sum();
    let free = capacity.saturating_sub(used);
    if need <= free {
        return Verdict::Fits;
    }
    let pinned_bytes: u64 = resident.iter().filter(|r| r.pinned).map(|r| r.bytes).sum();
    if need > capacity.saturating_sub(pinned_bytes) {
        return Verdict::Never {
            pinned: resident
                .iter()
                .filter(|r| r.pinned)
                .map(|r| r.name.clone())
                .collect(),
        };
    }
    let mut idle: Vec<&Resident> = resident.iter().filter(|r| !r.pinned && !r.busy).collect();
    idle.sort_by(|a, b| {
        a.expires_at
            .cmp(&b.expires_at)
            .then(b.bytes.cmp(&a.bytes))
            .then(a.name.cmp(&b.name))
    });
    let mut freed = free;
    let mut victims = Vec::new();
    for r in idle {
        if freed >= need {
            break;
        }
        freed += r.bytes;
        victims.push(r.name.clone());
    }
    if freed >= need {
        return Verdict::Unload(victims);
    }
    Verdict::Wait {
        busy: resident
            .iter()
            .filter(|r| r.busy && !r.pinned)
            .map(|r| r.name.clone())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1 << 30;

    fn r(name: &str, gb: u64, expires: &str, pinned: bool, busy: bool) -> Resident {
        Resident {
            name: name.into(),
            bytes: gb * GB,
            expires_at: expires.into(),
            pinned,
            busy,
        }
    }

    /// Name, capacity (GiB), resident models, wanted model, its size (GiB), expected verdict.
    type Case = (&'static str, u64, Vec<Resident>, &'static str, u64, Verdict);

    #[test]
    fn verdicts() {
        let t1 = "2026-12-02T05:00:00Z";
        let t2 = "2026-12-02T05:10:00Z";
        let cases: Vec<Case> = vec![
            (
                "loaded already",
                8,
                vec![r("a:latest", 6, t1, false, false)],
                "a",
                6,
                Verdict::Fits,
            ),
            (
                "fits in free",
                8,
                vec![r("a", 4, t1, false, false)],
                "b",
                4,
                Verdict::Fits,
            ),
            (
                "least recently used goes first, only as many as needed",
                12,
                vec![
                    r("new", 4, t2, false, false),
                    r("old", 4, t1, false, false),
                    r("x", 2, t2, false, false),
                ],
                "b",
                6,
                Verdict::Unload(vec!["old".into()]),
            ),
            (
                "pinned stays, idle goes",
                8,
                vec![r("p", 3, t1, true, false), r("i", 4, t2, false, false)],
                "b",
                5,
                Verdict::Unload(vec!["i".into()]),
            ),
            (
                "busy is waited for",
                8,
                vec![r("busy", 6, t1, false, true), r("i", 1, t2, false, false)],
                "b",
                6,
                Verdict::Wait {
                    busy: vec!["busy".into()],
                },
            ),
            (
                "pinned makes it impossible",
                8,
                vec![r("p", 5, t1, true, false), r("i", 1, t2, false, false)],
                "b",
                4,
                Verdict::Never {
                    pinned: vec!["p".into()],
                },
            ),
            (
                "larger than the host",
                8,
                vec![],
                "huge",
                9,
                Verdict::Never { pinned: vec![] },
            ),
        ];
        for (name, cap, resident, want, need, expected) in cases {
            assert_eq!(
                plan(cap * GB, &resident, want, need * GB),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn latest_is_the_default_tag() {
        assert!(same_model("llama3", "llama3:latest"));
        assert!(!same_model("llama3:8b", "llama3"));
    }
}
