//! Reads what a kubelet would register with from a VM's cloud-init user data.
//!
//! Real VMs join because their user data runs `kubeadm join` (or starts a kubelet) with flags; a VM whose
//! user data has no such invocation boots and never joins. The simulator reads the same flags the
//! kubelet would: `--provider-id`, `--node-labels`, `--register-with-taints`.

use std::collections::BTreeMap;

/// A taint as `--register-with-taints` gives it (`key[=value]:Effect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterTaint {
    /// Key.
    pub key: String,
    /// Value, empty when absent.
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// What the kubelet in a VM's user data registers with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KubeletArgs {
    /// `--provider-id`.
    pub provider_id: String,
    /// `--node-labels`.
    pub labels: BTreeMap<String, String>,
    /// `--register-with-taints`.
    pub taints: Vec<RegisterTaint>,
}

/// Why user data does not lead to a join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoJoin {
    /// No `kubeadm join` and no `kubelet` in it.
    #[error("user data starts no kubelet (no `kubeadm join` or `kubelet` invocation)")]
    NoKubelet,
    /// A kubelet, but no `--provider-id`.
    #[error("the kubelet invocation has no --provider-id")]
    NoProviderId,
    /// A flag value that the kubelet would refuse.
    #[error("{flag}: {problem}")]
    BadFlag {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        problem: String,
    },
}

const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

impl KubeletArgs {
    /// Parses user data. Flags may be written `--flag=value` or `--flag value`, with or without quotes,
    /// anywhere (a shell line, `KUBELET_EXTRA_ARGS`, a kubeadm config's `extraArgs` rendered as flags).
    pub fn parse(user_data: &str) -> Result<Self, NoJoin> {
        if !user_data.contains("kubeadm join") && !user_data.contains("kubelet") {
            return Err(NoJoin::NoKubelet);
        }
        let provider_id = flag(user_data, "--provider-id").ok_or(NoJoin::NoProviderId)?;
        let mut labels = BTreeMap::new();
        for pair in flag(user_data, "--node-labels").iter().flat_map(|v| v.split(',')).filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| NoJoin::BadFlag {
                flag: "--node-labels",
                problem: format!("{pair:?} is not key=value"),
            })?;
            labels.insert(k.to_owned(), v.to_owned());
        }
        let taints = Self::parse_taints(&flag(user_data, "--register-with-taints").unwrap_or_default())?;
        Ok(Self { provider_id, labels, taints })
    }

    /// Parses a `--register-with-taints` value: `key[=value]:Effect`, comma-separated.
    pub fn parse_taints(value: &str) -> Result<Vec<RegisterTaint>, NoJoin> {
        let mut taints = Vec::new();
        for spec in value.split(',').filter(|p| !p.is_empty()) {
            let bad = |problem: String| NoJoin::BadFlag { flag: "--register-with-taints", problem };
            let (kv, effect) = spec.rsplit_once(':').ok_or_else(|| bad(format!("{spec:?} has no :Effect")))?;
            if !EFFECTS.contains(&effect) {
                return Err(bad(format!("{spec:?}: effect {effect:?} is not one of {EFFECTS:?}")));
            }
            let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
            taints.push(RegisterTaint { key: key.to_owned(), value: value.to_owned(), effect: effect.to_owned() });
        }
        Ok(taints)
    }
}

/// The value of the last occurrence of `name` (the kubelet keeps the last one given).
fn flag(text: &str, name: &str) -> Option<String> {
    let mut found = None;
    let mut rest = text;
    while let Some(pos) = rest.find(name) {
        let after = &rest[pos + name.len()..];
        rest = after;
        let value = if let Some(v) = after.strip_prefix('=') {
            v
        } else if after.starts_with([' ', '\t']) {
            after.trim_start_matches([' ', '\t'])
        } else {
            continue; // a longer flag that starts with this name
        };
        found = Some(read_value(value));
    }
    found
}

/// One shell word: quoted (single or double) or up to the next whitespace or quote. A quote with no
/// partner on its line closes an outer string (`ARGS="... --register-with-taints="`): the value is empty.
fn read_value(text: &str) -> String {
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote) {
            let line = inner.split('\n').next().unwrap_or_default();
            return line.find(quote).map(|end| line[..end].to_owned()).unwrap_or_default();
        }
    }
    text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'').next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_flags_in_every_spelling() {
        let data = "#!/bin/bash\nKUBELET_EXTRA_ARGS=\"--provider-id=vpsie://abc --node-labels=a=1,b=two\"\n\
                    kubeadm join 10.0.0.1:6443 --token x --register-with-taints 'gpu=yes:NoSchedule,init:NoExecute'\n";
        let args = KubeletArgs::parse(data);
        let expected = KubeletArgs {
            provider_id: "vpsie://abc".into(),
            labels: [("a".to_owned(), "1".to_owned()), ("b".to_owned(), "two".to_owned())].into(),
            taints: vec![
                RegisterTaint { key: "gpu".into(), value: "yes".into(), effect: "NoSchedule".into() },
                RegisterTaint { key: "init".into(), value: String::new(), effect: "NoExecute".into() },
            ],
        };
        assert_eq!(args, Ok(expected));
    }

    #[test]
    fn an_empty_flag_closing_an_outer_string_is_empty() {
        let data = "KUBELET_EXTRA_ARGS=\"--provider-id=vpsie://n1 --node-labels=a=1 --register-with-taints=\"\nkubeadm join x\n";
        let args = KubeletArgs::parse(data);
        assert_eq!(args.as_ref().map(|a| a.taints.len()), Ok(0));
        assert_eq!(args.map(|a| a.provider_id), Ok("vpsie://n1".to_owned()));
    }

    #[test]
    fn user_data_without_a_kubelet_or_a_provider_id_never_joins() {
        assert_eq!(KubeletArgs::parse("#cloud-config\npackages: [htop]\n"), Err(NoJoin::NoKubelet));
        assert_eq!(KubeletArgs::parse("kubeadm join 1.2.3.4:6443"), Err(NoJoin::NoProviderId));
        assert_eq!(KubeletArgs::parse("kubelet --provider-id-file=x"), Err(NoJoin::NoProviderId), "another flag");
        assert!(matches!(
            KubeletArgs::parse("kubelet --provider-id=p --register-with-taints=a:Sometimes"),
            Err(NoJoin::BadFlag { flag: "--register-with-taints", .. })
        ));
        assert!(matches!(
            KubeletArgs::parse("kubelet --provider-id=p --node-labels=novalue"),
            Err(NoJoin::BadFlag { flag: "--node-labels", .. })
        ));
    }
}
