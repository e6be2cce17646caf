//! Shared state in Redis, for router replicas that must behave as one (SPEC §4 "Shared state").
//!
//! Keys (all under a prefix, default `llm-router:`):
//! - `lease:{provider}` — sorted set of lease tokens, score = expiry in ms of Redis' own clock
//!   (`TIME`, so replicas' clocks don't matter). [`ACQUIRE`] drops expired tokens, then adds the
//!   token if fewer than `cap` remain — atomically, so two replicas can never both take the last
//!   slot. Leases live `ttl` and are renewed by their holder every `ttl / 3` (only tokens still
//!   there: a renewal racing a release never resurrects it); a crashed replica's leases expire
//!   within `ttl`. When Redis comes back after being away, the holder re-adds its tokens once —
//!   how held leases are re-established after Redis restarts empty.
//! - `rpm:{provider}` — sorted set of the requests started on a provider with `rpm` in its
//!   window, score = start in ms of Redis' clock. The same [`ACQUIRE`] step drops starts older
//!   than the window and admits a request only while fewer than `rpm` remain, so N replicas
//!   together keep to the provider's `rpm`; a refusal carries the milliseconds until the oldest
//!   start leaves the window. With Redis away each replica falls back to its own window.
//! - `usage:{model}` — hash provider → requests started (all replicas).
//! - `circuit:{provider}` — "open until" (epoch ms), expiring when the circuit closes by time.
//! - `host:{host}` — hash `{replica}|{model}` → requests in flight there; each replica rewrites
//!   its own fields every sync and the key expires 3 s after the last write (a dead replica's
//!   occupancy vanishes).
//! - `hostlast:{host}` — `{epoch ms}|{model}` of the latest request started on the host by any
//!   replica (`first_available_optim`'s warm host, the keep-alive schedule).
//! - `keepalive:{provider}` — `SET NX PX` claim, so one replica sends each keep-warm ping.
//! - `affinity:{model}:{session hash}` — the provider id that served a cache-affinity session
//!   last (any replica), `SET EX` the affinity TTL on every placement; read before placing a
//!   session, so a session that moved on one replica is followed by the others.
//!
//! Every call is async and bounded by the connection manager's response timeout; callers never
//! await these in an actor's handler (they spawn them), and treat an error as "Redis is down":
//! serve on local state, retry later.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
    AsyncCommands, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo,
    RedisResult, Script,
};

use crate::config::Secret;

const ACQUIRE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local rpm = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  -- Tokens this replica released but whose own release may not have arrived yet.
  for i = 6, #ARGV do
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
  if not (redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < cap) then
    return 0
  end
end
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if not redis.call('ZSCORE', KEYS[2], ARGV[1]) and redis.call('ZCARD', KEYS[2]) >= rpm then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return -math.max(1, tonumber(oldest[2]) + window - now)
  end
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], window)
end
if cap > 0 then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl * 2)
end
return 1
"#;

const RENEW: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if ARGV[2] == 'readd' then
    redis.call('ZADD', key, now + ttl, ARGV[i + 2])
  else
    redis.call('ZADD', key, 'XX', now + ttl, ARGV[i + 2])
  end
  redis.call('PEXPIRE', key, ttl * 2)
end
return #KEYS
"#;

const HOLDERS: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"#;

/// How a shared admission ([`Store::admit`]) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    Taken,
    /// Every slot is held by other replicas.
    Held,
    /// The shared `rpm` window is full; a start leaves it after this long.
    RateLimited(Duration),
}

/// Connection settings for the shared store. The password is a [`Secret`]: `Debug` shows `***`,
/// and no URL carrying it is ever built.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub host: String,
    pub port: u16,
    pub db: i64,
    /// Empty: no `AUTH`.
    pub password: Secret,
    pub prefix: String,
    pub lease_ttl: Duration,
    /// Bound on connecting and on every command: a dead Redis fails fast.
    pub timeout: Duration,
}

impl StoreOptions {
    /// The server these options connect to.
    pub fn addr(&self) -> RedisAddr {
        RedisAddr {
            host: self.host.clone(),
            port: self.port,
            db: self.db,
            password: self.password.clone(),
        }
    }

    /// The redis client's connection settings, built from the parts (plain TCP).
    pub fn connection_info(&self) -> RedisResult<ConnectionInfo> {
        self.addr().connection_info()
    }
}

/// A Redis server and database, with its password as a [`Secret`]; `Display` names the server
/// without the password (for error messages), and no URL carrying it is ever built.
#[derive(Clone, Debug)]
pub struct RedisAddr {
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub password: Secret,
}

impl RedisAddr {
    /// The redis client's connection settings (plain TCP).
    pub fn connection_info(&self) -> RedisResult<ConnectionInfo> {
        let mut redis = RedisConnectionInfo::default().set_db(self.db);
        if !self.password.is_empty() {
            redis = redis.set_password(self.password.expose());
        }
        Ok(ConnectionAddr::Tcp(self.host.clone(), self.port)
            .into_connection_info()?
            .set_redis_settings(redis))
    }
}

impl std::fmt::Display for RedisAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redis://{}:{}/{}", self.host, self.port, self.db)
    }
}

/// A handle to the shared store; cheap to clone (the connection is multiplexed).
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    prefix: String,
    ttl_ms: u64,
    acquire: Script,
    renew: Script,
    holders: Script,
}

impl Store {
    /// Connects (bounded by `opts.timeout`); the manager reconnects by itself afterwards.
    pub async fn connect(opts: &StoreOptions) -> RedisResult<Store> {
        let client = redis::Client::open(opts.connection_info()?)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(opts.timeout))
            .set_response_timeout(Some(opts.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Store {
            conn,
            prefix: opts.prefix.clone(),
            ttl_ms: opts.lease_ttl.as_millis().max(1) as u64,
            acquire: Script::new(ACQUIRE),
            renew: Script::new(RENEW),
            holders: Script::new(HOLDERS),
        })
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    /// Takes one of `cap` slots of `provider` for `token`; false when all are held elsewhere.
    /// `released` are this replica's tokens already given back: they are removed first, in the
    /// same atomic step, so a release still in flight never makes the provider look held.
    pub async fn acquire(
        &self,
        provider: &str,
        token: &str,
        cap: u32,
        released: &[String],
    ) -> RedisResult<bool> {
        let admit = self
            .admit(provider, token, Some(cap), None, released)
            .await?;
        Ok(admit == Admit::Taken)
    }

    /// One atomic admission of a request to `provider`: a slot of `cap` (when capped, as
    /// [`Store::acquire`]) and a start in the shared `rpm` window (when `rpm` is
    /// `(requests, window)`). Nothing is taken unless both admit.
    pub async fn admit(
        &self,
        provider: &str,
        token: &str,
        cap: Option<u32>,
        rpm: Option<(u32, Duration)>,
        released: &[String],
    ) -> RedisResult<Admit> {
        let mut conn = self.conn.clone();
        let mut inv = self.acquire.key(self.key("lease", provider));
        inv.key(self.key("rpm", provider));
        let (limit, window) = rpm.map_or((0, 0), |(n, w)| (n, w.as_millis().max(1) as u64));
        inv.arg(token)
            .arg(cap.map_or(0, |c| c.max(1)))
            .arg(self.ttl_ms)
            .arg(limit)
            .arg(window);
        for t in released {
            inv.arg(t);
        }
        let n: i64 = inv.invoke_async(&mut conn).await?;
        Ok(match n {
            1 => Admit::Taken,
            0 => Admit::Held,
            wait => Admit::RateLimited(Duration::from_millis(wait.unsigned_abs())),
        })
    }

    /// Extends the given `(provider, token)` leases by one TTL. With `readd`, tokens Redis lost
    /// (it restarted empty) are added back; without, a token already released stays released —
    /// a renewal racing a release must not resurrect it.
    pub async fn renew(&self, leases: &[(String, String)], readd: bool) -> RedisResult<()> {
        if leases.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let mut inv = self.renew.prepare_invoke();
        inv.arg(self.ttl_ms)
            .arg(if readd { "readd" } else { "extend" });
        for (provider, token) in leases {
            inv.key(self.key("lease", provider));
            inv.arg(token);
        }
        let _: i64 = inv.invoke_async(&mut conn).await?;
        Ok(())
    }

    pub async fn release(&self, provider: &str, token: &str) -> RedisResult<()> {
        let mut conn = self.conn.clone();
        let _: i64 = conn.zrem(self.key("lease", provider), token).await?;
        Ok(())
    }

    /// The provider that served a cache-affinity session last (`key`: see
    /// `registry::session_key`), by any replica.
    pub async fn get_session(&self, key: &str) -> RedisResult<Option<String>> {
        let mut conn = self.conn.clone();
        conn.get(format!("{}{key}", self.prefix)).await
    }

    /// Records a session's provider for `ttl` (refreshed by every placement).
    pub async fn put_session(&self, key: &str, provider: &str, ttl: Duration) -> RedisResult<()> {
        let mut conn = self.conn.clone();
        let secs = ttl.as_secs().max(1);
        let _: () = conn
            .set_ex(format!("{}{key}", self.prefix), provider, secs)
            .await?;
        Ok(())
    }

    /// Live leases of `provider` across all replicas.
    pub async fn holders(&self, provider: &str) -> RedisResult<u64> {
        let mut conn = self.conn.clone();
        self.holders
            .key(self.key("lease", provider))
            .invoke_async(&mut conn)
            .await
    }

    pub async fn count_use(&self, model: &str, provider: &str) -> RedisResult<()> {
        let mut conn = self.conn.clone();
        let _: i64 = conn.hincr(self.key("usage", model), provider, 1).await?;
        Ok(())
    }

    /// Requests started per provider of `model`, all replicas together.
    pub async fn usage(&self, model: &str) -> RedisResult<HashMap<String, u64>> {
        let mut conn = self.conn.clone();
        conn.hgetall(self.key("usage", model)).await
    }

    /// Publishes that `provider`'s circuit is open until `until_ms` (epoch ms), for `ttl`.
    pub async fn publish_open(
        &self,
        provider: &str,
        until_ms: u64,
        ttl: Duration,
    ) -> RedisResult<()> {
        let mut conn = self.conn.clone();
        let ms = ttl.as_millis().max(1) as u64;
        let _: () = conn
            .pset_ex(self.key("circuit", provider), until_ms, ms)
            .await?;
        Ok(())
    }

    /// Circuit verdicts published by any replica: `Some(until epoch ms)` per provider, in order.
    pub async fn open_circuits(&self, providers: &[String]) -> RedisResult<Vec<Option<u64>>> {
        if providers.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let keys: Vec<String> = providers.iter().map(|p| self.key("circuit", p)).collect();
        let mut cmd = redis::cmd("MGET");
        for k in &keys {
            cmd.arg(k);
        }
        cmd.query_async(&mut conn).await
    }

    /// Publishes this replica's in-flight counts on `host` (`(model, count)`), replacing its
    /// previous ones, and returns every replica's `(model, count)` there.
    pub async fn exchange_occupancy(
        &self,
        host: &str,
        replica: &str,
        mine: &[(String, u32)],
    ) -> RedisResult<Vec<(String, String, u32)>> {
        let mut conn = self.conn.clone();
        let key = self.key("host", host);
        let mut pipe = redis::pipe();
        for (model, n) in mine {
            pipe.hset(&key, format!("{replica}|{model}"), *n).ignore();
        }
        pipe.pexpire(&key, 3000).ignore();
        pipe.hgetall(&key);
        let (all,): (HashMap<String, u32>,) = pipe.query_async(&mut conn).await?;
        Ok(all
            .into_iter()
            .filter_map(|(k, n)| {
                let (r, m) = k.split_once('|')?;
                Some((r.to_string(), m.to_string(), n))
            })
            .collect())
    }

    /// Records that `model` was just served on `host` (if later than what is there).
    pub async fn publish_last(&self, host: &str, model: &str, at_ms: u64) -> RedisResult<()> {
        let mut conn = self.conn.clone();
        let key = self.key("hostlast", host);
        let cur: Option<String> = conn.get(&key).await?;
        let newer = cur
            .and_then(|c| c.split_once('|').and_then(|(t, _)| t.parse::<u64>().ok()))
            .is_none_or(|t| t < at_ms);
        if newer {
            let _: () = conn
                .set_ex(&key, format!("{at_ms}|{model}"), 24 * 3600)
                .await?;
        }
        Ok(())
    }

    /// The latest `(epoch ms, model)` served on each host, in order.
    pub async fn last_served(&self, hosts: &[String]) -> RedisResult<Vec<Option<(u64, String)>>> {
        if hosts.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("MGET");
        for h in hosts {
            cmd.arg(self.key("hostlast", h));
        }
        let raw: Vec<Option<String>> = cmd.query_async(&mut conn).await?;
        Ok(raw
            .into_iter()
            .map(|v| {
                let v = v?;
                let (t, m) = v.split_once('|')?;
                Some((t.parse().ok()?, m.to_string()))
            })
            .collect())
    }

    /// Claims the next keep-warm ping of `provider` for `hold`; false if another replica has it.
    pub async fn claim_keepalive(
        &self,
        provider: &str,
        replica: &str,
        hold: Duration,
    ) -> RedisResult<bool> {
        let mut conn = self.conn.clone();
        let ok: Option<String> = redis::cmd("SET")
            .arg(self.key("keepalive", provider))
            .arg(replica)
            .arg("NX")
            .arg("PX")
            .arg(hold.as_millis().max(1) as u64)
            .query_async(&mut conn)
            .await?;
        Ok(ok.is_some())
    }

    pub async fn ping(&self) -> RedisResult<()> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch (for circuit verdicts shared between hosts).
pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(password: &str) -> StoreOptions {
        StoreOptions {
            host: "redis.internal".into(),
            port: 6380,
            db: 2,
            password: Secret::new(password),
            prefix: "p:".into(),
            lease_ttl: Duration::from_secs(10),
            timeout: Duration::from_millis(500),
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let printed = format!("{:?}", opts("hunter2-s3cret"));
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("***"), "{printed}");
    }

    #[test]
    fn connection_info_is_built_from_the_parts() {
        let cases = [
            ("with a password", "p@ss:/word", Some("p@ss:/word")),
            ("without", "", None),
        ];
        for (name, password, want) in cases {
            let info = opts(password).connection_info().unwrap();
            match info.addr() {
                ConnectionAddr::Tcp(host, port) => {
                    assert_eq!((host.as_str(), *port), ("redis.internal", 6380), "{name}")
                }
                other => panic!("{name}: not plain TCP: {other:?}"),
            }
            assert_eq!(info.redis_settings().db(), 2, "{name}");
            assert_eq!(info.redis_settings().password(), want, "{name}");
        }
    }
}
