//! A model of an inference server's prefix (KV) cache, for the cache-affinity benchmark: the time
//! to first token grows with the part of the prompt this instance has not seen before.
//!
//! The prompt is a chain of blocks — the system prompt, then each message in order (a completion
//! prompt is one block) — and block `i` is keyed by a hash of blocks `0..=i`, so a block is only a
//! hit when everything before it matches too, as in vLLM's automatic prefix caching. The next turn
//! of a conversation this instance served repeats its earlier messages, so those are hits and only
//! the new messages cost prefill time. A block's size is `ceil(bytes of its JSON / 4)` tokens; the
//! cache holds at most `capacity_tokens`, evicting the least recently used blocks.
//!
//! Pure: the server asks [`PrefixCache::serve`] and sleeps for what it returns.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hasher};
use std::time::Duration;

use serde_json::Value;

/// Opt-in cost model of a fake instance (`FakeConfig::prefix_cache`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixCacheModel {
    /// Prefill time per prompt token not in the cache (added before the response).
    pub per_uncached_token: Duration,
    /// Tokens the cache holds.
    pub capacity_tokens: usize,
}

/// One block of a prompt: the hash of the prefix ending with it, and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub prefix_hash: u64,
    pub tokens: usize,
}

/// What one request found in the cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lookup {
    pub cached_tokens: usize,
    pub uncached_tokens: usize,
}

/// The prompt's blocks: `system` (Anthropic, Ollama generate), then `messages`, or `prompt`.
pub fn prompt_blocks(request: &Value) -> Vec<Block> {
    let mut parts: Vec<&Value> = Vec::new();
    if let Some(s) = request.get("system") {
        parts.push(s);
    }
    match (request.get("messages"), request.get("prompt")) {
        (Some(Value::Array(m)), _) => parts.extend(m),
        (_, Some(p)) => parts.push(p),
        _ => {}
    }
    let mut h = DefaultHasher::new();
    parts
        .into_iter()
        .map(|part| {
            let text = part.to_string();
            h.write(text.as_bytes());
            h.write_u8(0xff);
            Block {
                prefix_hash: h.finish(),
                tokens: text.len().div_ceil(4).max(1),
            }
        })
        .collect()
}

#[derive(Debug)]
pub struct PrefixCache {
    capacity_tokens: usize,
    used_tokens: usize,
    /// prefix hash → (tokens, stamp of last use)
    blocks: HashMap<u64, (usize, u64)>,
    /// stamp → prefix hash, oldest first
    order: BTreeMap<u64, u64>,
    next_stamp: u64,
}

impl PrefixCache {
    pub fn new(capacity_tokens: usize) -> PrefixCache {
        PrefixCache {
            capacity_tokens,
            used_tokens: 0,
            blocks: HashMap::new(),
            order: BTreeMap::new(),
            next_stamp: 0,
        }
    }

    pub fn capacity_tokens(&self) -> usize {
        self.capacity_tokens
    }

    /// Counts the cached prefix of `prompt`, then caches the whole prompt (most recent last).
    pub fn serve(&mut self, prompt: &[Block]) -> Lookup {
        let hit = prompt
            .iter()
            .take_while(|b| self.blocks.contains_key(&b.prefix_hash))
            .count();
        let cached_tokens = prompt[..hit].iter().map(|b| b.tokens).sum();
        let uncached_tokens = prompt[hit..].iter().map(|b| b.tokens).sum();
        for b in prompt {
            let stamp = self.next_stamp;
            self.next_stamp += 1;
            match self.blocks.insert(b.prefix_hash, (b.tokens, stamp)) {
                Some((_, old)) => {
                    self.order.remove(&old);
                }
                None => self.used_tokens += b.tokens,
            }
            self.order.insert(stamp, b.prefix_hash);
        }
        while self.used_tokens > self.capacity_tokens {
            let Some((_, hash)) = self.order.pop_first() else {
                break;
            };
            if let Some((tokens, _)) = self.blocks.remove(&hash) {
                self.used_tokens -= tokens;
            }
        }
        Lookup {
            cached_tokens,
            uncached_tokens,
        }
    }

    pub fn used_tokens(&self) -> usize {
        self.used_tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn turn(history: &[(&str, &str)]) -> Value {
        let messages: Vec<Value> = history
            .iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect();
        json!({"model": "m", "messages": messages})
    }

    fn tokens(v: &Value) -> usize {
        prompt_blocks(v).iter().map(|b| b.tokens).sum()
    }

    #[test]
    fn the_next_turn_of_a_served_conversation_hits_its_prefix() {
        let mut c = PrefixCache::new(1_000_000);
        let sys = ("system", "You are a helpful assistant. ".repeat(40));
        let t1 = turn(&[(sys.0, &sys.1), ("user", "first question")]);
        let t2 = turn(&[
            (sys.0, &sys.1),
            ("user", "first question"),
            ("assistant", "t0 t1 t2 t3 "),
            ("user", "second question"),
        ]);
        let first = c.serve(&prompt_blocks(&t1));
        assert_eq!(
            first,
            Lookup {
                cached_tokens: 0,
                uncached_tokens: tokens(&t1)
            }
        );
        let second = c.serve(&prompt_blocks(&t2));
        assert_eq!(second.cached_tokens, tokens(&t1));
        assert_eq!(second.uncached_tokens, tokens(&t2) - tokens(&t1));
        assert!(
            second.uncached_tokens * 10 < second.cached_tokens,
            "{second:?}"
        );
        // The same request again is a full hit.
        assert_eq!(c.serve(&prompt_blocks(&t2)).uncached_tokens, 0);
    }

    #[test]
    fn a_changed_earlier_message_invalidates_everything_after_it() {
        let mut c = PrefixCache::new(1_000_000);
        let a = turn(&[
            ("system", "S"),
            ("user", "one"),
            ("assistant", "x"),
            ("user", "two"),
        ]);
        let b = turn(&[
            ("system", "S"),
            ("user", "ONE"),
            ("assistant", "x"),
            ("user", "two"),
        ]);
        c.serve(&prompt_blocks(&a));
        let l = c.serve(&prompt_blocks(&b));
        let system_only = prompt_blocks(&a)[0].tokens;
        assert_eq!(l.cached_tokens, system_only);
        assert_eq!(l.uncached_tokens, tokens(&b) - system_only);
    }

    #[test]
    fn other_shapes_system_field_and_prompt() {
        let anthropic = json!({"system": "S", "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(prompt_blocks(&anthropic).len(), 2);
        let completion = json!({"prompt": "once upon a time"});
        let blocks = prompt_blocks(&completion);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].tokens, "\"once upon a time\"".len().div_ceil(4));
        assert!(prompt_blocks(&json!({"model": "m"})).is_empty());
        let mut c = PrefixCache::new(100);
        assert_eq!(c.serve(&[]), Lookup::default());
    }

    #[test]
    fn capacity_evicts_the_least_recently_used_blocks() {
        let p = |s: &str| prompt_blocks(&json!({ "prompt": s }));
        let (a, b, c) = (
            p(&"a".repeat(398)),
            p(&"b".repeat(398)),
            p(&"c".repeat(398)),
        );
        assert_eq!(a[0].tokens, 100);
        let mut cache = PrefixCache::new(250);
        cache.serve(&a);
        cache.serve(&b);
        cache.serve(&a); // a is now the most recent
        assert_eq!(cache.serve(&c).uncached_tokens, 100); // evicts b
        assert_eq!(cache.used_tokens(), 200);
        assert_eq!(cache.serve(&a).cached_tokens, 100);
        assert_eq!(cache.serve(&b).cached_tokens, 0);
        // A prompt larger than the cache is never kept.
        let mut tiny = PrefixCache::new(10);
        tiny.serve(&a);
        assert_eq!((tiny.used_tokens(), tiny.serve(&a).cached_tokens), (0, 0));
    }
}
