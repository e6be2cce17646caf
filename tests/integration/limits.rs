//! The shared per-key limiter against a real Redis, at the level of its scripts: token windows
//! counted across handles, and the running token sum kept right as entries age out.

use std::time::Duration;

use llm_router_actors::access::{Limit, RateLimiter, SharedLimits};

use crate::common::*;

fn limits(redis: &RedisServer, prefix: &str) -> SharedLimits {
    SharedLimits {
        addr: llm_router_actors::store::RedisAddr {
            host: "127.0.0.1".into(),
            port: redis.port,
            db: 0,
            password: Default::default(),
        },
        prefix: prefix.into(),
        timeout: Duration::from_millis(500),
    }
}

async fn started(opts: SharedLimits) -> std::sync::Arc<RateLimiter> {
    let l = RateLimiter::new(Some(opts));
    l.start();
    assert!(eventually(Duration::from_secs(5), || async { l.health().is_up() }).await);
    l
}

fn conn(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("redis answers")
}

/// Redis' clock in ms, the one the scripts score entries with.
fn redis_now_ms(c: &mut redis::Connection) -> i64 {
    let (s, us): (i64, i64) = redis::cmd("TIME").query(c).unwrap();
    s * 1000 + us / 1000
}

#[actix_rt::test]
async fn access_shared_limiter_counts_tokens_in_redis_across_handles() {
    let server = RedisServer::start();
    let (a, b) = (
        started(limits(&server, "tok:")).await,
        started(limits(&server, "tok:")).await,
    );
    let d = a.admit("k", 100, Some(1000)).await;
    assert!(d.allowed && d.tokens_used == 0);
    a.record_tokens("k", 600);
    b.record_tokens("k", 500);
    assert!(
        eventually(Duration::from_secs(2), || async {
            b.admit("k", 100, Some(2000)).await.tokens_used == 1100
        })
        .await
    );
    let d = a.admit("k", 100, Some(1000)).await;
    assert!(!d.allowed);
    assert_eq!(d.refused.unwrap().0, Limit::Tokens);
    assert!((59..=60).contains(&d.refused.unwrap().1), "{:?}", d.refused);
    assert_eq!(a.health().fallbacks() + b.health().fallbacks(), 0);
}

/// Entries older than the window leave the running sum whichever script drops them (an answer's
/// or an admission's), the status read subtracts ones not dropped yet, and a sum left without
/// its set counts nothing. Aged entries are written straight into Redis with scores 61 s back.
#[actix_rt::test]
async fn access_shared_token_sum_follows_entries_out_of_the_window() {
    let server = RedisServer::start();
    let l = started(limits(&server, "age:")).await;
    let mut c = conn(&server);
    let (tok, sum) = ("age:rl:tok:k", "age:rl:tsum:k");
    let aged = |c: &mut redis::Connection, member: &str, n: i64| {
        let old = redis_now_ms(c) - 61_000;
        let _: () = redis::pipe()
            .cmd("ZADD")
            .arg(tok)
            .arg(old)
            .arg(member)
            .ignore()
            .cmd("INCRBY")
            .arg(sum)
            .arg(n)
            .ignore()
            .cmd("PEXPIRE")
            .arg(tok)
            .arg(60_000)
            .ignore()
            .cmd("PEXPIRE")
            .arg(sum)
            .arg(60_000)
            .ignore()
            .query(c)
            .unwrap();
    };

    // An answer's write drops the aged entry and subtracts it.
    aged(&mut c, "700:old-1", 700);
    l.record_tokens("k", 300);
    assert!(
        eventually(Duration::from_secs(2), || async {
            let s: i64 = redis::cmd("GET")
                .arg(sum)
                .query(&mut conn(&server))
                .unwrap();
            s == 300
        })
        .await,
        "the aged entry was not subtracted"
    );
    let card: i64 = redis::cmd("ZCARD").arg(tok).query(&mut c).unwrap();
    assert_eq!(card, 1, "the aged entry was not dropped");
    assert_eq!(l.admit("k", 100, Some(1000)).await.tokens_used, 300);

    // The status read subtracts an aged entry nothing has dropped yet (it writes nothing) ...
    aged(&mut c, "500:old-2", 500);
    let u = l.usage("k").await;
    assert!(u.shared);
    assert_eq!(u.tokens, 300);
    let s: i64 = redis::cmd("GET").arg(sum).query(&mut c).unwrap();
    assert_eq!(s, 800, "the status read must not write");
    // ... and an admission with a token limit drops it: 800 would refuse at tpm 600, 300 does not.
    let d = l.admit("k", 100, Some(600)).await;
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.tokens_used, 300);
    let s: i64 = redis::cmd("GET").arg(sum).query(&mut c).unwrap();
    assert_eq!(s, 300);

    // A token refusal names when enough leaves: the oldest live entry's age, not the whole span.
    let d = l.admit("k", 100, Some(300)).await;
    assert!(!d.allowed);
    assert_eq!(d.refused.unwrap().0, Limit::Tokens);
    assert!((58..=60).contains(&d.refused.unwrap().1), "{:?}", d.refused);

    // A set without its sum (written by a router from before the sum): the status read sums the
    // set, and the next admission rebuilds the sum from it, then keeps it.
    let _: () = redis::cmd("DEL").arg(sum).query(&mut c).unwrap();
    assert_eq!(l.usage("k").await.tokens, 300);
    let d = l.admit("k", 100, Some(1000)).await;
    assert_eq!(d.tokens_used, 300);
    let s: i64 = redis::cmd("GET").arg(sum).query(&mut c).unwrap();
    assert_eq!(s, 300);
    let ttl: i64 = redis::cmd("PTTL").arg(sum).query(&mut c).unwrap();
    assert!(
        ttl > 0 && ttl <= 60_000,
        "the rebuilt sum expires with its set: {ttl}"
    );

    // A sum whose set is gone counts nothing and is reset.
    let _: () = redis::cmd("DEL").arg(tok).query(&mut c).unwrap();
    let d = l.admit("k", 100, Some(300)).await;
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.tokens_used, 0);
    let exists: i64 = redis::cmd("EXISTS").arg(sum).query(&mut c).unwrap();
    assert_eq!(exists, 0);
    assert_eq!(l.health().fallbacks(), 0);
}
