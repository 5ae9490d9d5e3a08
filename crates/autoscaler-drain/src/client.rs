//! The client a drain talks through, built here so its retry behaviour is ours, not the caller's.

use kube::{Client, Config};

/// A kube client for drains, with kube's default retry layer off.
///
/// That layer (`Config::default_retry`) repeats every 429 with backoff for minutes. An eviction refused
/// by a PodDisruptionBudget is a 429, so behind it a refusal would surface long after the drain's own
/// deadline; the drain instead tells a budget refusal from API throttling itself and retries on its own
/// schedule ([`crate::Drainer`]). Only [`DrainClient::new`] makes one, whatever `config` said.
#[derive(Clone)]
pub struct DrainClient(Client);

impl DrainClient {
    /// A client from `config`, with the default retry layer turned off.
    pub fn new(mut config: Config) -> Result<Self, kube::Error> {
        config.default_retry = false;
        Ok(Self(Client::try_from(config)?))
    }

    /// The client itself (no retry layer).
    pub fn client(&self) -> &Client {
        &self.0
    }
}

impl std::fmt::Debug for DrainClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DrainClient")
    }
}
