//! Per-key rate limits: in-process windows, or one set of windows in Redis for every replica.
//!
//! Redis keys (under the shared prefix, default `llm-router:`):
//! - `rl:req:{key_id}` — sorted set, one member per admitted request, score = Redis' `TIME` in
//!   ms (replicas' clocks don't matter). [`ADMIT`] drops members older than 60 s, checks the
//!   token window, then counts and adds — one atomic script, so N replicas admit exactly `rpm`.
//! - `rl:tok:{key_id}` — sorted set, one member `"{tokens}:{nonce}"` per answer, same scores;
//! - `rl:tsum:{key_id}` — the sum of the tokens in `rl:tok` (a counter), so no script walks
//!   the whole token window: whoever drops expired members (an admission with `tpm`, or the next
//!   answer's [`TOKENS`]) subtracts theirs. Each admission or answer costs O(log n + expired)
//!   whatever the window holds; only a refusal for tokens walks the window (to say when enough
//!   will have left), at most to the entry that frees it.
//!
//! All three expire 60 s after their last write (the two token keys together, so they leave
//! together; a sum found without its set is reset, a set found without its sum — written by a
//! router from before the sum — gets it rebuilt once). [`RateLimiter::usage`] (for
//! `/router/rate-limits`) reads them with a read-only script (`USAGE`) on Redis' clock. When a
//! Redis call fails the limiter answers from its local windows, logs the switch once, counts
//! every such answer (`fallbacks`) and shows `shared_up = false`; a probe every second switches
//! back when Redis answers again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use super::window::{retry_secs, Decision, KeyWindows, Limit, SPAN};

/// Lua shared by the scripts that drop expired token entries: `prune(tok, tsum, cut)` removes
/// the members of `tok` scored at or before `cut`, subtracts them from `tsum` and returns the
/// sum left (0, with `tsum` deleted, when the set is empty). A set without its sum (written by a
/// router from before the sum, or a sum lost on its own) gets the sum rebuilt from the set once.
const PRUNE: &str = r#"
local function prune(tok, tsum, cut)
  if redis.call('EXISTS', tsum) == 0 then
    local all = redis.call('ZRANGE', tok, 0, -1)
    if #all > 0 then
      local total = 0
      for i = 1, #all do
        total = total + tonumber(string.match(all[i], '^(%d+)'))
      end
      redis.call('SET', tsum, total)
      local ttl = redis.call('PTTL', tok)
      if ttl > 0 then redis.call('PEXPIRE', tsum, ttl) end
    end
  end
  local old = redis.call('ZRANGEBYSCORE', tok, '-inf', cut)
  if #old > 0 then
    local gone = 0
    for i = 1, #old do
      gone = gone + tonumber(string.match(old[i], '^(%d+)'))
    end
    redis.call('ZREMRANGEBYSCORE', tok, '-inf', cut)
    redis.call('DECRBY', tsum, gone)
  end
  if redis.call('ZCARD', tok) == 0 then
    redis.call('DEL', tsum)
    return 0
  end
  return tonumber(redis.call('GET', tsum) or '0')
end
"#;

/// KEYS: req, tok, tsum. ARGV: rpm, tpm (0 = none), nonce, span ms.
/// Returns {allowed, wait ms, remaining, tokens used, refused for tokens}.
const ADMIT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local span = tonumber(ARGV[4])
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local used = 0
if tpm > 0 then
  used = prune(KEYS[2], KEYS[3], now - span)
  if used >= tpm then
    local left = used
    local from = 0
    while true do
      local items = redis.call('ZRANGE', KEYS[2], from, from + 63, 'WITHSCORES')
      if #items == 0 then break end
      for i = 1, #items, 2 do
        left = left - tonumber(string.match(items[i], '^(%d+)'))
        if left < tpm then
          return {0, tonumber(items[i + 1]) + span - now, 0, used, 1}
        end
      end
      from = from + 64
    end
    return {0, span, 0, used, 1}
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
local count = redis.call('ZCARD', KEYS[1])
if count >= rpm then
  local k = count - rpm
  local e = redis.call('ZRANGE', KEYS[1], k, k, 'WITHSCORES')
  return {0, tonumber(e[2]) + span - now, 0, used, 0}
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], span)
return {1, 0, rpm - count - 1, used, 0}
"#;

/// KEYS: tok, tsum. ARGV: member `"{tokens}:{nonce}"`, tokens, span ms.
const TOKENS: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local span = tonumber(ARGV[3])
prune(KEYS[1], KEYS[2], now - span)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('INCRBY', KEYS[2], tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], span)
redis.call('PEXPIRE', KEYS[2], span)
return 1
"#;

/// Read-only. KEYS: req, tok, tsum. ARGV: span ms. Returns {requests, tokens, oldest leaves ms}.
const USAGE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local span = tonumber(ARGV[1])
local cut = now - span
local reqs = redis.call('ZCOUNT', KEYS[1], '(' .. cut, '+inf')
local used = 0
if redis.call('EXISTS', KEYS[3]) == 1 then
  used = tonumber(redis.call('GET', KEYS[3]))
  local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cut)
  for i = 1, #old do
    used = used - tonumber(string.match(old[i], '^(%d+)'))
  end
else
  local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. cut, '+inf')
  for i = 1, #live do
    used = used + tonumber(string.match(live[i], '^(%d+)'))
  end
end
local oldest = -1
local r = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. cut, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #r > 0 then oldest = tonumber(r[2]) + span - now end
local k = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. cut, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #k > 0 then
  local o = tonumber(k[2]) + span - now
  if oldest < 0 or o < oldest then oldest = o end
end
return {reqs, used, oldest}
"#;

/// A key's windows as the status route shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyUsage {
    pub requests: u64,
    pub tokens: u64,
    /// Until the oldest event in either window leaves it (`None`: both empty).
    pub resets_in: Option<Duration>,
    /// Read from Redis (else this replica's local windows).
    pub shared: bool,
}

/// Where the shared windows live.
#[derive(Clone, Debug)]
pub struct SharedLimits {
    pub addr: crate::store::RedisAddr,
    pub prefix: String,
    /// Bound on connecting and on every command.
    pub timeout: Duration,
}

/// Whether the limiter's windows are the shared ones; for `/health` and metrics.
#[derive(Debug, Default)]
pub struct LimiterHealth {
    configured: bool,
    up: AtomicBool,
    fallbacks: AtomicU64,
    /// Set by the first probe: a Redis already away at start-up is reported too.
    probed: AtomicBool,
}

impl LimiterHealth {
    /// Redis is configured for limits.
    pub fn is_shared(&self) -> bool {
        self.configured
    }

    /// Redis is configured and answering (false before the first connection).
    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    /// Requests decided on local windows because Redis was away.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Relaxed)
    }
}

/// Numbers limiters for [`LOCAL_CONNS`] (a pointer could be reused by a later limiter).
static NEXT_LIMITER: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's connection per limiter: each worker talks to Redis over its own
    /// multiplexed connection, driven on its own runtime, so an admission is one round trip to
    /// Redis without a hop to another thread and back (the probe's connection lives on the thread
    /// that started the limiter).
    static LOCAL_CONNS: std::cell::RefCell<Vec<(u64, ConnectionManager)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

async fn connect(opts: &SharedLimits) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(opts.timeout))
        .set_response_timeout(Some(opts.timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(200));
    let client = redis::Client::open(opts.addr.connection_info()?)?;
    ConnectionManager::new_with_config(client, config).await
}

struct Shared {
    id: u64,
    opts: SharedLimits,
    /// The probe's connection (on the thread that called [`RateLimiter::start`]).
    conn: RwLock<Option<ConnectionManager>>,
    admit: Script,
    tokens: Script,
    usage: Script,
    replica: String,
    nonce: AtomicU64,
}

/// The per-key limiter. Cheap to share (`Arc`).
pub struct RateLimiter {
    local: Mutex<HashMap<String, KeyWindows>>,
    shared: Option<Shared>,
    health: Arc<LimiterHealth>,
}

impl RateLimiter {
    /// In-process windows only, or shared ones in Redis when `shared` is given.
    pub fn new(shared: Option<SharedLimits>) -> Arc<RateLimiter> {
        let health = Arc::new(LimiterHealth {
            configured: shared.is_some(),
            ..Default::default()
        });
        let replica = super::keys::random_base62(12)
            .unwrap_or_else(|_| format!("{}-{:?}", std::process::id(), Instant::now()));
        Arc::new(RateLimiter {
            local: Mutex::new(HashMap::new()),
            shared: shared.map(|opts| Shared {
                id: NEXT_LIMITER.fetch_add(1, Relaxed),
                opts,
                conn: RwLock::new(None),
                admit: Script::new(&format!("{PRUNE}{ADMIT}")),
                tokens: Script::new(&format!("{PRUNE}{TOKENS}")),
                usage: Script::new(USAGE),
                replica,
                nonce: AtomicU64::new(0),
            }),
            health,
        })
    }

    pub fn health(&self) -> Arc<LimiterHealth> {
        self.health.clone()
    }

    /// Connects to Redis and probes it every second, keeping `health` current. Must be called
    /// inside an actix System (it spawns there); without Redis it does nothing.
    pub fn start(self: &Arc<Self>) {
        if self.shared.is_none() {
            return;
        }
        let me = Arc::downgrade(self);
        actix_rt::spawn(async move {
            loop {
                let Some(this) = me.upgrade() else { return };
                this.probe().await;
                drop(this);
                actix_rt::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    async fn probe(&self) {
        let Some(sh) = &self.shared else { return };
        let conn = sh.conn.read().ok().and_then(|c| c.clone());
        let ok = match conn {
            Some(mut c) => redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .is_ok(),
            None => match connect(&sh.opts).await {
                Ok(c) => {
                    if let Ok(mut slot) = sh.conn.write() {
                        *slot = Some(c);
                    }
                    true
                }
                Err(_) => false,
            },
        };
        self.set_up(ok);
    }

    fn set_up(&self, ok: bool) {
        let was = self.health.up.swap(ok, Relaxed);
        let first = !self.health.probed.swap(true, Relaxed);
        if (was || first) && !ok {
            tracing::warn!("rate limits: Redis unreachable; enforcing per-replica local windows until it is back");
        } else if !was && ok {
            tracing::info!("rate limits: shared windows in Redis in use");
        }
    }

    /// This thread's connection for `sh`, made on first use.
    async fn thread_conn(sh: &Shared) -> redis::RedisResult<ConnectionManager> {
        let mine = LOCAL_CONNS.with(|c| {
            c.borrow()
                .iter()
                .find(|(id, _)| *id == sh.id)
                .map(|(_, c)| c.clone())
        });
        if let Some(c) = mine {
            return Ok(c);
        }
        let c = connect(&sh.opts).await?;
        LOCAL_CONNS.with(|v| {
            let mut v = v.borrow_mut();
            if !v.iter().any(|(id, _)| *id == sh.id) {
                v.push((sh.id, c.clone()));
            }
        });
        Ok(c)
    }

    fn key(&self, sh: &Shared, kind: &str, key_id: &str) -> String {
        format!("{}rl:{kind}:{key_id}", sh.opts.prefix)
    }

    fn nonce(sh: &Shared) -> String {
        format!("{}-{}", sh.replica, sh.nonce.fetch_add(1, Relaxed))
    }

    /// Admits (and counts) one request of `key_id`, or refuses it.
    pub async fn admit(&self, key_id: &str, rpm: u32, tpm: Option<u64>) -> Decision {
        if let Some(sh) = &self.shared {
            if self.health.is_up() {
                // Twice: a connection Redis dropped (a restart) fails its next command and
                // starts reconnecting, and the second call waits for that reconnect — so the
                // first request after Redis came back is counted there, not locally. (A Redis
                // that stopped answering costs the request that finds out two timeouts.)
                for _ in 0..2 {
                    if let Ok(d) = self.admit_shared(sh, key_id, rpm, tpm).await {
                        return d;
                    }
                }
                self.set_up(false);
            }
            self.health.fallbacks.fetch_add(1, Relaxed);
        }
        self.admit_local(key_id, rpm, tpm, Instant::now())
    }

    fn admit_local(&self, key_id: &str, rpm: u32, tpm: Option<u64>, now: Instant) -> Decision {
        let mut map = self.local.lock().unwrap_or_else(|e| e.into_inner());
        // Forget keys idle for a window, so the table stays as small as the set of active keys.
        if map.len() > 1024 {
            map.retain(|_, w| !w.idle(now));
        }
        map.entry(key_id.to_string())
            .or_default()
            .admit(now, rpm, tpm)
    }

    async fn admit_shared(
        &self,
        sh: &Shared,
        key_id: &str,
        rpm: u32,
        tpm: Option<u64>,
    ) -> redis::RedisResult<Decision> {
        let mut conn = Self::thread_conn(sh).await?;
        let (ok, wait_ms, remaining, used, which): (i64, i64, i64, i64, i64) = sh
            .admit
            .key(self.key(sh, "req", key_id))
            .key(self.key(sh, "tok", key_id))
            .key(self.key(sh, "tsum", key_id))
            .arg(rpm)
            .arg(tpm.unwrap_or(0))
            .arg(Self::nonce(sh))
            .arg(SPAN.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        let refused = (ok == 0).then(|| {
            let limit = if which == 1 {
                Limit::Tokens
            } else {
                Limit::Requests
            };
            (
                limit,
                retry_secs(Duration::from_millis(wait_ms.max(0) as u64)),
            )
        });
        Ok(Decision {
            allowed: ok == 1,
            rpm,
            remaining: remaining.max(0) as u32,
            tpm,
            tokens_used: used.max(0) as u64,
            refused,
        })
    }

    /// Counts `n` tokens of an answer against `key_id`'s token window. Never blocks: the Redis
    /// write is spawned (so it must be called inside an actix System when Redis is configured).
    pub fn record_tokens(self: &Arc<Self>, key_id: &str, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(sh) = &self.shared {
            if self.health.is_up() {
                let key = self.key(sh, "tok", key_id);
                let sum = self.key(sh, "tsum", key_id);
                let member = format!("{n}:{}", Self::nonce(sh));
                let me = self.clone();
                let key_id = key_id.to_string();
                actix_rt::spawn(async move {
                    let sh = me.shared.as_ref().expect("shared");
                    let r: redis::RedisResult<i64> = match Self::thread_conn(sh).await {
                        Ok(mut conn) => {
                            sh.tokens
                                .key(key)
                                .key(sum)
                                .arg(member)
                                .arg(n)
                                .arg(SPAN.as_millis() as u64)
                                .invoke_async(&mut conn)
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    if r.is_err() {
                        me.set_up(false);
                        me.record_local(&key_id, n, Instant::now());
                    }
                });
                return;
            }
        }
        self.record_local(key_id, n, Instant::now());
    }

    fn record_local(&self, key_id: &str, n: u64, now: Instant) {
        let mut map = self.local.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key_id.to_string())
            .or_default()
            .tokens
            .add(now, n);
    }

    /// `key_id`'s windows now: from Redis while it answers, else the local ones.
    pub async fn usage(&self, key_id: &str) -> KeyUsage {
        if let Some(sh) = &self.shared {
            if self.health.is_up() {
                if let Ok(mut conn) = Self::thread_conn(sh).await {
                    let r: redis::RedisResult<(i64, i64, i64)> = sh
                        .usage
                        .key(self.key(sh, "req", key_id))
                        .key(self.key(sh, "tok", key_id))
                        .key(self.key(sh, "tsum", key_id))
                        .arg(SPAN.as_millis() as u64)
                        .invoke_async(&mut conn)
                        .await;
                    if let Ok((requests, tokens, oldest)) = r {
                        return KeyUsage {
                            requests: requests.max(0) as u64,
                            tokens: tokens.max(0) as u64,
                            resets_in: (oldest >= 0).then(|| Duration::from_millis(oldest as u64)),
                            shared: true,
                        };
                    }
                }
            }
        }
        let now = Instant::now();
        let mut map = self.local.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(key_id) {
            None => KeyUsage {
                requests: 0,
                tokens: 0,
                resets_in: None,
                shared: false,
            },
            Some(w) => KeyUsage {
                requests: w.requests.used(now),
                tokens: w.tokens.used(now),
                resets_in: w.oldest_leaves_in(now),
                shared: false,
            },
        }
    }

    /// Requests and tokens of `key_id` in its local window (for status routes and tests).
    pub fn local_usage(&self, key_id: &str) -> (u64, u64) {
        let now = Instant::now();
        let mut map = self.local.lock().unwrap_or_else(|e| e.into_inner());
        map.get_mut(key_id)
            .map_or((0, 0), |w| (w.requests.used(now), w.tokens.used(now)))
    }
}
