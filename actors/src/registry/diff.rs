//! What a reload changes: the pure diff of two validated models configs, by provider `id`.
//!
//! A provider's identity is its `id` and `api_host`: a provider whose both are unchanged keeps
//! its health and latency state across the reload (`kept` when nothing else changed, `changed`
//! when another field did or it moved to another model); a provider whose `api_host` changed is
//! another endpoint under the same name and starts fresh (`replaced`: the old one drains). The
//! catch-all model (`*`) counts like any other model.

use std::collections::HashMap;

use crate::config::{ModelsConfig, ProviderConfig};

/// How one provider of the new config relates to the running one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Same model, same configuration.
    Kept,
    /// Same `id` and `api_host`, other fields (or its model) differ: state carries over.
    Changed,
    /// Same `id`, another `api_host`: a new endpoint, fresh state.
    Replaced,
    Added,
}

/// The diff of two configs. Every list is in new-config order (`removed`: old-config order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    pub kept: Vec<String>,
    pub changed: Vec<String>,
    pub replaced: Vec<String>,
    pub added: Vec<String>,
    /// In the old config only (a replaced provider is not listed here).
    pub removed: Vec<String>,
    pub models_added: Vec<String>,
    pub models_removed: Vec<String>,
}

impl ConfigDiff {
    /// Nothing changed at all.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty()
            && self.replaced.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.models_added.is_empty()
            && self.models_removed.is_empty()
    }
}

/// Every provider of `c` with the public name of its model.
fn providers(c: &ModelsConfig) -> impl Iterator<Item = (&str, &ProviderConfig)> {
    c.all()
        .flat_map(|m| m.providers.iter().map(move |p| (m.name.as_str(), p)))
}

/// How a provider of the new config relates to `old` (`model` is the new model's name).
pub fn classify(
    old: &HashMap<&str, (&str, &ProviderConfig)>,
    model: &str,
    p: &ProviderConfig,
) -> Change {
    match old.get(p.id.as_str()) {
        None => Change::Added,
        Some((_, o)) if o.api_host != p.api_host => Change::Replaced,
        Some((m, o)) if *m == model && *o == p => Change::Kept,
        Some(_) => Change::Changed,
    }
}

/// Indexes a config's providers by id.
pub fn by_id(c: &ModelsConfig) -> HashMap<&str, (&str, &ProviderConfig)> {
    providers(c).map(|(m, p)| (p.id.as_str(), (m, p))).collect()
}

pub fn diff(old: &ModelsConfig, new: &ModelsConfig) -> ConfigDiff {
    let before = by_id(old);
    let after = by_id(new);
    let mut d = ConfigDiff::default();
    for (model, p) in providers(new) {
        let list = match classify(&before, model, p) {
            Change::Kept => &mut d.kept,
            Change::Changed => &mut d.changed,
            Change::Replaced => &mut d.replaced,
            Change::Added => &mut d.added,
        };
        list.push(p.id.clone());
    }
    d.removed = providers(old)
        .filter(|(_, p)| !after.contains_key(p.id.as_str()))
        .map(|(_, p)| p.id.clone())
        .collect();
    let names = |c: &ModelsConfig| -> Vec<String> { c.all().map(|m| m.name.clone()).collect() };
    let (old_names, new_names) = (names(old), names(new));
    d.models_added = new_names
        .iter()
        .filter(|n| !old_names.contains(n))
        .cloned()
        .collect();
    d.models_removed = old_names
        .iter()
        .filter(|n| !new_names.contains(n))
        .cloned()
        .collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApiType, ModelConfig};

    fn p(id: &str, host: &str) -> ProviderConfig {
        ProviderConfig::new(id, host, ApiType::Vllm)
    }

    fn config(models: &[(&str, Vec<ProviderConfig>)]) -> ModelsConfig {
        ModelsConfig {
            models: models
                .iter()
                .map(|(name, providers)| ModelConfig {
                    name: name.to_string(),
                    group: "g".into(),
                    providers: providers.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn providers_are_kept_changed_replaced_added_or_removed() {
        let a = p("a", "http://h1:8000");
        let b = p("b", "http://h2:8000");
        let heavier = ProviderConfig {
            weight: 3.0,
            ..p("b", "http://h2:8000")
        };
        let old = config(&[("m", vec![a.clone(), b.clone()])]);
        struct Case {
            name: &'static str,
            new: ModelsConfig,
            want: ConfigDiff,
        }
        let cases = [
            Case {
                name: "the same config",
                new: old.clone(),
                want: ConfigDiff {
                    kept: ids(&["a", "b"]),
                    ..Default::default()
                },
            },
            Case {
                name: "a weight changed: same identity, new settings",
                new: config(&[("m", vec![a.clone(), heavier.clone()])]),
                want: ConfigDiff {
                    kept: ids(&["a"]),
                    changed: ids(&["b"]),
                    ..Default::default()
                },
            },
            Case {
                name: "a new api_host under the same id is another endpoint",
                new: config(&[("m", vec![a.clone(), p("b", "http://h3:8000")])]),
                want: ConfigDiff {
                    kept: ids(&["a"]),
                    replaced: ids(&["b"]),
                    ..Default::default()
                },
            },
            Case {
                name: "one added, one removed",
                new: config(&[("m", vec![a.clone(), p("c", "http://h2:8000")])]),
                want: ConfigDiff {
                    kept: ids(&["a"]),
                    added: ids(&["c"]),
                    removed: ids(&["b"]),
                    ..Default::default()
                },
            },
            Case {
                name: "a provider moved to a new model keeps its state; the old model goes",
                new: config(&[("m", vec![a.clone()]), ("n", vec![b.clone()])]),
                want: ConfigDiff {
                    kept: ids(&["a"]),
                    changed: ids(&["b"]),
                    models_added: ids(&["n"]),
                    ..Default::default()
                },
            },
            Case {
                name: "a model removed with its providers",
                new: config(&[("n", vec![a.clone()])]),
                want: ConfigDiff {
                    changed: ids(&["a"]),
                    removed: ids(&["b"]),
                    models_added: ids(&["n"]),
                    models_removed: ids(&["m"]),
                    ..Default::default()
                },
            },
        ];
        for c in cases {
            let got = diff(&old, &c.new);
            assert_eq!(got, c.want, "{}", c.name);
            assert_eq!(got.is_empty(), c.name == "the same config", "{}", c.name);
        }
    }

    #[test]
    fn the_catch_all_model_is_diffed_like_the_others() {
        let old = config(&[("m", vec![p("a", "http://h1:8000")])]);
        let mut new = old.clone();
        new.wildcard = Some(ModelConfig {
            name: "*".into(),
            providers: vec![p("any", "http://h9:8000")],
            ..Default::default()
        });
        let d = diff(&old, &new);
        assert_eq!(d.added, ids(&["any"]));
        assert_eq!(d.models_added, ids(&["*"]));
        assert_eq!(diff(&new, &old).removed, ids(&["any"]));
    }
}
