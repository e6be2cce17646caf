//! [`Selection::reload`]: a new config swapped into the running core, keeping what stays; and
//! where the slots of an older generation are now, for its leases coming back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::config::{ModelsConfig, ProviderConfig};

use super::super::diff::{classify, Change};
use super::super::pool::{Pool, Slot};
use super::super::ChooseError;
use super::{Alive, Dest, Effect, OldGeneration, Selection};

/// How a provider of a reloaded config relates to the running one, for the actor: reuse the
/// provider actor of the old `(model, provider)` as is, reuse it publishing into the new
/// snapshot ([`Rebind`](crate::provider::Rebind)), or start a fresh one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Same(usize, usize),
    Carried(usize, usize),
    Fresh,
}

impl Selection {
    /// Swaps in a new (validated) config. Providers whose `id` and `api_host` are unchanged
    /// keep their slot — in-flight count, rpm window, Redis tokens, probe flag — and snapshot
    /// (the same one when nothing else changed, else a [`carried`](ProviderSnapshot::carried)
    /// copy); queued requests of models that remain stay queued, those of removed models are
    /// refused. Leases of earlier generations release into the slot their provider has now, or,
    /// for a provider that is gone, only give back their Redis token. Returns, per new
    /// `[model][provider]`, where its provider actor comes from.
    pub fn reload(
        &mut self,
        config: &ModelsConfig,
        now: Instant,
        alive: Alive,
        fx: &mut Vec<Effect>,
    ) -> Vec<Vec<Origin>> {
        let mut old_pools = std::mem::take(&mut self.pools);
        let old_hosts = std::mem::take(&mut self.hosts);
        let old_names: Vec<String> = old_pools.iter().map(|p| p.name.clone()).collect();
        let mut old_at: HashMap<String, (usize, usize)> = HashMap::new();
        for (mi, pool) in old_pools.iter().enumerate() {
            for (pi, slot) in pool.slots.iter().enumerate() {
                old_at.insert(slot.snapshot.config.id.clone(), (mi, pi));
            }
        }
        // The identity rule (same `id` and `api_host`) is the diff's, decided once per provider.
        let change: HashMap<String, Change> = {
            let old: HashMap<&str, (&str, &ProviderConfig)> = old_pools
                .iter()
                .flat_map(|pool| {
                    pool.slots.iter().map(|s| {
                        (
                            s.snapshot.config.id.as_str(),
                            (&*s.snapshot.model, &s.snapshot.config),
                        )
                    })
                })
                .collect();
            config
                .all()
                .flat_map(|m| m.providers.iter().map(move |p| (m.name.as_str(), p)))
                .map(|(model, p)| (p.id.clone(), classify(&old, model, p)))
                .collect()
        };
        let mut taken: HashMap<(usize, usize), Origin> = HashMap::new();
        let (mut pools, mut hosts) = {
            let mut reuse = |model: &Arc<str>, p: &ProviderConfig| -> Option<Slot> {
                let &(mi, pi) = old_at.get(&p.id)?;
                let old = &mut old_pools[mi].slots[pi];
                let snapshot = match change.get(&p.id)? {
                    Change::Kept => {
                        taken.insert((mi, pi), Origin::Same(mi, pi));
                        old.snapshot.clone()
                    }
                    Change::Changed => {
                        taken.insert((mi, pi), Origin::Carried(mi, pi));
                        Arc::new(old.snapshot.carried(p.clone(), model.clone()))
                    }
                    Change::Replaced | Change::Added => return None,
                };
                Some(old.carry(snapshot))
            };
            self.build(config, &mut reuse)
        };
        // Old → new indices, for the leases and acquires still out.
        let mut origins: Vec<Vec<Origin>> = Vec::with_capacity(pools.len());
        let mut dest: Vec<Vec<Dest>> = old_pools
            .iter()
            .map(|p| {
                p.slots
                    .iter()
                    .map(|s| Dest::Gone(s.snapshot.config.id.clone()))
                    .collect()
            })
            .collect();
        for (mi, pool) in pools.iter().enumerate() {
            let mut row = Vec::with_capacity(pool.slots.len());
            for (pi, slot) in pool.slots.iter().enumerate() {
                let origin = old_at
                    .get(&slot.snapshot.config.id)
                    .and_then(|at| taken.get(at).copied())
                    .unwrap_or(Origin::Fresh);
                if let Origin::Same(om, op) | Origin::Carried(om, op) = origin {
                    dest[om][op] = Dest::At(mi, pi);
                }
                row.push(origin);
            }
            origins.push(row);
        }
        for (om, pool) in old_pools.iter_mut().enumerate() {
            for (op, slot) in pool.slots.iter_mut().enumerate() {
                if let Dest::Gone(id) = &dest[om][op] {
                    let tokens = std::mem::take(&mut slot.tokens);
                    self.draining
                        .extend(tokens.into_iter().map(|t| (id.clone(), t)));
                }
            }
        }
        let model_map: Vec<Option<usize>> = old_names
            .iter()
            .map(|n| pools.iter().position(|p| p.name == *n))
            .collect();
        // Hosts: occupancy recomputed from the slots; what each last served, by model name.
        for (hi, host) in hosts.iter_mut().enumerate() {
            for (mi, pool) in pools.iter().enumerate() {
                let n: u32 = pool
                    .slots
                    .iter()
                    .filter(|s| s.host == hi)
                    .map(|s| s.in_flight)
                    .sum();
                if n > 0 {
                    host.in_flight.insert(mi, n);
                }
            }
            if let Some(old) = old_hosts.iter().find(|h| h.key == host.key) {
                host.last = old
                    .last
                    .and_then(|(m, at)| Some((model_map.get(m).copied().flatten()?, at)));
                host.published_last = old.published_last;
            }
        }
        // Queues follow their model; a removed model's waiters are told it is gone. A model
        // whose providers are the same, in the same order, keeps its strategy's state too.
        for (om, pool) in old_pools.iter_mut().enumerate() {
            let waiters = std::mem::take(&mut pool.waiters);
            match model_map[om] {
                Some(nm) => {
                    let ids = |p: &Pool| -> Vec<String> {
                        p.slots
                            .iter()
                            .map(|s| s.snapshot.config.id.clone())
                            .collect()
                    };
                    if ids(&pools[nm]) == ids(pool) {
                        std::mem::swap(&mut pools[nm].strategy, &mut pool.strategy);
                    }
                    pools[nm].waiters.extend(waiters);
                }
                None => {
                    for w in waiters {
                        fx.push(Effect::Refuse {
                            waiter: w.id,
                            error: ChooseError::UnknownModel {
                                model: pool.name.clone(),
                                available: config.models.iter().map(|m| m.name.clone()).collect(),
                            },
                        });
                    }
                }
            }
        }
        // Earlier generations now point at the new slots.
        let remap = |d: &Dest| match d {
            Dest::At(m, p) => dest[*m][*p].clone(),
            gone => gone.clone(),
        };
        for g in self.old.values_mut() {
            for row in g.slots.iter_mut() {
                for d in row.iter_mut() {
                    *d = remap(d);
                }
            }
            for m in g.models.iter_mut() {
                *m = m.and_then(|m| model_map[m]);
            }
        }
        if self.outstanding > 0 {
            self.old.insert(
                self.generation,
                OldGeneration {
                    outstanding: self.outstanding,
                    slots: dest,
                    models: model_map,
                },
            );
        }
        self.generation += 1;
        self.outstanding = 0;
        self.install(pools, hosts);
        self.serve_queues(now, alive, fx);
        origins
    }

    /// Where a slot of `generation` is now; counts one of that generation's leases as ended.
    pub(super) fn settle(&mut self, generation: u64, model: usize, provider: usize) -> Dest {
        if generation == self.generation {
            self.outstanding = self.outstanding.saturating_sub(1);
            return Dest::At(model, provider);
        }
        let Some(g) = self.old.get_mut(&generation) else {
            return Dest::Gone(String::new());
        };
        let d = g
            .slots
            .get(model)
            .and_then(|r| r.get(provider))
            .cloned()
            .unwrap_or(Dest::Gone(String::new()));
        g.outstanding = g.outstanding.saturating_sub(1);
        if g.outstanding == 0 {
            self.old.remove(&generation);
        }
        d
    }

    /// The current index of a model of `generation` (`None`: removed since).
    pub(super) fn model_now(&self, generation: u64, model: usize) -> Option<usize> {
        if generation == self.generation {
            return Some(model);
        }
        self.old
            .get(&generation)
            .and_then(|g| g.models.get(model).copied().flatten())
    }
}
