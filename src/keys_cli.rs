//! `llm-router keys create|list|revoke|rotate`: managing client API keys in the server's store
//! (the keys file, or Redis), configured by the same variables as the server.
//!
//! A new key is printed once, alone on stdout (scripts can capture it); only its digest is stored.
//! Messages go to stderr. Exit codes: 0 done, 1 the operation failed, 2 bad usage or configuration.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use llm_router_actors::access::keys::{
    digest, format_time, generate_key, parse_span, random_base62,
};
use llm_router_actors::access::{AdminStore, NewKey, Policy, RedisKeys};

use crate::access::{AccessSettings, StoreKind};
use crate::settings::{env_vars, RedisSettings};

pub const USAGE: &str = "\
Usage:
  llm-router keys create --policy P [--id ID] [--expires 30d] [--rpm N] [--tpm N] [--models a,b]
  llm-router keys list
  llm-router keys revoke ID
  llm-router keys rotate ID

Policies: admin, developer, chat, embedding, anthropic, ollama, builtin.
--expires takes s, m, h, d or w (e.g. 90d). The store is the server's: the keys file
(LLM_ROUTER_AUTH_MEMORY_SEED_FILE) or Redis (LLM_ROUTER_AUTH_KEY_STORE=redis, LLM_ROUTER_REDIS_*).
";

#[derive(Debug, PartialEq)]
enum Command {
    Create {
        policy: Policy,
        id: Option<String>,
        expires: Option<i64>,
        rpm: Option<u32>,
        tpm: Option<u64>,
        models: Option<Vec<String>>,
    },
    List,
    Revoke(String),
    Rotate(String),
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let (cmd, rest) = args.split_first().ok_or("a keys command is needed")?;
    let one_id = |rest: &[String]| match rest {
        [id] if !id.starts_with('-') => Ok(id.clone()),
        _ => Err(format!("keys {cmd} takes exactly one key id")),
    };
    match cmd.as_str() {
        "list" if rest.is_empty() => Ok(Command::List),
        "list" => Err("keys list takes no arguments".into()),
        "revoke" => one_id(rest).map(Command::Revoke),
        "rotate" => one_id(rest).map(Command::Rotate),
        "create" => {
            let mut opts: HashMap<&str, &str> = HashMap::new();
            let mut it = rest.iter();
            while let Some(flag) = it.next() {
                let name = match flag.as_str() {
                    f @ ("--policy" | "--id" | "--expires" | "--rpm" | "--tpm" | "--models") => f,
                    other => return Err(format!("unknown option {other:?}")),
                };
                let value = it.next().ok_or(format!("{name} needs a value"))?;
                opts.insert(name, value.as_str());
            }
            let policy = opts.get("--policy").ok_or("--policy is required")?;
            let policy = Policy::parse(policy).ok_or_else(|| {
                format!(
                    "unknown policy {policy:?}; known: {}",
                    Policy::ALL.map(|p| p.as_str()).join(", ")
                )
            })?;
            let id = match opts.get("--id") {
                Some(id) if id.is_empty() || !id.chars().all(|c| c.is_ascii_graphic()) => {
                    return Err(format!("--id {id:?}: use visible ASCII characters"))
                }
                other => other.map(|s| s.to_string()),
            };
            let expires = match opts.get("--expires") {
                Some(s) => Some(parse_span(s).ok_or(format!(
                    "--expires {s:?}: expected a span like 30d, 12h, 45m"
                ))?),
                None => None,
            };
            let number = |name: &str| -> Result<Option<u64>, String> {
                match opts.get(name) {
                    Some(s) => match s.parse::<u64>() {
                        Ok(n) if n >= 1 => Ok(Some(n)),
                        _ => Err(format!("{name} {s:?}: expected a whole number ≥ 1")),
                    },
                    None => Ok(None),
                }
            };
            let rpm = number("--rpm")?.map(|n| n.min(u64::from(u32::MAX)) as u32);
            let tpm = number("--tpm")?;
            let models = opts.get("--models").map(|m| {
                m.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            });
            Ok(Command::Create {
                policy,
                id,
                expires,
                rpm,
                tpm,
                models,
            })
        }
        other => Err(format!("unknown keys command {other:?}")),
    }
}

/// The store the server would use with these variables.
fn admin_store(vars: &HashMap<String, String>, s: &AccessSettings) -> Result<AdminStore, String> {
    if s.store == StoreKind::Memory {
        return Ok(AdminStore::File(s.keys_file.clone()));
    }
    let get = |name: &str, default: &str| {
        vars.get(name)
            .map_or(default.to_string(), |v| v.trim().to_string())
    };
    let host = get("LLM_ROUTER_REDIS_HOST", "");
    if host.is_empty() {
        return Err("LLM_ROUTER_AUTH_KEY_STORE=redis needs LLM_ROUTER_REDIS_HOST".into());
    }
    let r = RedisSettings {
        host,
        port: get("LLM_ROUTER_REDIS_PORT", "6379")
            .parse()
            .map_err(|_| "LLM_ROUTER_REDIS_PORT: not a port number")?,
        db: get("LLM_ROUTER_REDIS_DB", "0")
            .parse()
            .map_err(|_| "LLM_ROUTER_REDIS_DB: not a number")?,
        password: llm_router_actors::config::Secret::new(
            vars.get("LLM_ROUTER_REDIS_PASSWORD")
                .cloned()
                .unwrap_or_default(),
        ),
        lease_ttl: Duration::from_secs(10),
        prefix: vars
            .get("LLM_ROUTER_REDIS_PREFIX")
            .cloned()
            .unwrap_or_else(|| "llm-router:".into()),
    };
    Ok(AdminStore::Redis(RedisKeys {
        addr: r.addr(),
        prefix: r.prefix,
        timeout: Duration::from_secs(5),
    }))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs `llm-router keys <args>` with the process environment.
pub fn main(args: &[String]) -> ExitCode {
    run(args, &env_vars())
}

/// Runs a keys command with these variables (tests pass their own).
pub fn run(args: &[String], vars: &HashMap<String, String>) -> ExitCode {
    let cmd = match parse_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("llm-router keys: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let settings = match AccessSettings::parse(vars) {
        Ok(s) => s,
        Err(errs) => {
            eprintln!("llm-router keys: configuration error:");
            for e in errs {
                eprintln!("  {e}");
            }
            return ExitCode::from(2);
        }
    };
    let store = match admin_store(vars, &settings) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("llm-router keys: {e}");
            return ExitCode::from(2);
        }
    };
    let result = actix_rt::System::new().block_on(execute(cmd, &store, &settings));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(errs) => {
            for e in errs {
                eprintln!("llm-router keys: {e}");
            }
            ExitCode::from(1)
        }
    }
}

async fn execute(cmd: Command, store: &AdminStore, s: &AccessSettings) -> Result<(), Vec<String>> {
    let mut file = store.load().await?;
    let now = now_secs();
    let new_key = || generate_key(&s.key_prefix, s.key_length).map_err(|e| vec![e]);
    let reload_note = || {
        if matches!(store, AdminStore::File(_)) {
            eprintln!(
                "(routers already running read the keys file again on their next key reload)"
            );
        }
    };
    match cmd {
        Command::List => {
            println!(
                "{:<24} {:<10} {:<7} {:<21} {:>6} {:>8}  MODELS",
                "ID", "POLICY", "ACTIVE", "EXPIRES", "RPM", "TPM"
            );
            for r in file.table.records() {
                let state = match r.check(now) {
                    Ok(()) => "yes",
                    Err(_) if !r.is_active => "no",
                    Err(_) => "expired",
                };
                println!(
                    "{:<24} {:<10} {:<7} {:<21} {:>6} {:>8}  {}",
                    r.key_id,
                    r.policy.as_str(),
                    state,
                    r.expires_at.map_or("never".into(), format_time),
                    r.rpm.map_or("-".into(), |n| n.to_string()),
                    r.tpm.map_or("-".into(), |n| n.to_string()),
                    r.models.as_ref().map_or("*".into(), |m| m.join(",")),
                );
            }
            Ok(())
        }
        Command::Create {
            policy,
            id,
            expires,
            rpm,
            tpm,
            models,
        } => {
            let key = new_key()?;
            let key_id = match id {
                Some(id) => id,
                None => format!("key-{}", random_base62(8).map_err(|e| vec![e])?),
            };
            let k = NewKey {
                key_id,
                policy,
                expires_at: expires.map(|e| now + e),
                rpm,
                tpm,
                models,
            };
            let i = file.create(&k, &digest(&key), now).map_err(|e| vec![e])?;
            store.save(&file, &[i]).await.map_err(|e| vec![e])?;
            println!("{key}");
            eprintln!(
                "created key \"{}\" (policy {}, expires {}); it is shown only this once",
                k.key_id,
                policy.as_str(),
                k.expires_at.map_or("never".into(), format_time)
            );
            reload_note();
            Ok(())
        }
        Command::Revoke(id) => {
            let changed = file.revoke(&id).map_err(|e| vec![e])?;
            store.save(&file, &changed).await.map_err(|e| vec![e])?;
            eprintln!("revoked key \"{id}\"");
            reload_note();
            Ok(())
        }
        Command::Rotate(id) => {
            let key = new_key()?;
            let grace = s.rotation_grace.as_secs() as i64;
            let changed = file
                .rotate(&id, &digest(&key), grace, now)
                .map_err(|e| vec![e])?;
            store.save(&file, &changed).await.map_err(|e| vec![e])?;
            println!("{key}");
            eprintln!(
                "rotated key \"{id}\": the new key is shown only this once; the old one works until {}",
                format_time(now + grace)
            );
            reload_note();
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn arguments() {
        assert_eq!(
            parse_args(&args(
                "create --policy chat --id svc --expires 30d --rpm 5 --models a,b"
            )),
            Ok(Command::Create {
                policy: Policy::Chat,
                id: Some("svc".into()),
                expires: Some(30 * 86_400),
                rpm: Some(5),
                tpm: None,
                models: Some(vec!["a".into(), "b".into()]),
            })
        );
        assert_eq!(parse_args(&args("list")), Ok(Command::List));
        assert_eq!(
            parse_args(&args("revoke x")),
            Ok(Command::Revoke("x".into()))
        );
        assert_eq!(
            parse_args(&args("rotate x")),
            Ok(Command::Rotate("x".into()))
        );
        for (bad, want) in [
            ("create", "--policy is required"),
            ("create --policy root", "unknown policy \"root\""),
            (
                "create --policy chat --rpm 0",
                "--rpm \"0\": expected a whole number",
            ),
            ("create --policy chat --expires soon", "--expires \"soon\""),
            ("create --policy chat --force", "unknown option \"--force\""),
            ("create --policy", "--policy needs a value"),
            ("revoke", "exactly one key id"),
            ("rotate a b", "exactly one key id"),
            ("delete x", "unknown keys command \"delete\""),
            ("", "a keys command is needed"),
        ] {
            let e = parse_args(&args(bad)).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
