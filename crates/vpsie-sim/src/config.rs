//! Simulator settings, given at start and partly changeable at run time.

use std::time::Duration;

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of every random choice (identifiers, IPs, fault draws).
    pub seed: u64,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// How long a created VM or managed node stays pending before it is active.
    pub boot_delay: Duration,
    /// Long-lived access tokens accepted in `Vpsie-Auth` or `Authorization: Bearer`.
    pub access_tokens: Vec<String>,
    /// Client id accepted by `/apps/v2/auth/from/api`.
    pub client_id: String,
    /// Client secret accepted by `/apps/v2/auth/from/api`.
    pub client_secret: String,
    /// Lifetime of exchanged tokens.
    pub token_ttl: Duration,
    /// The account password VM delete checks.
    pub account_password: String,
    /// Most VMs (active plus pending) the account may have.
    pub max_vms: Option<usize>,
    /// Number of datacenters in the catalog (at least 1).
    pub datacenters: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            port: 0,
            boot_delay: Duration::from_millis(500),
            access_tokens: vec!["sim-token".to_owned()],
            client_id: "sim-client".to_owned(),
            client_secret: "sim-secret".to_owned(),
            token_ttl: Duration::from_secs(3600),
            account_password: "sim-password".to_owned(),
            max_vms: None,
            datacenters: 3,
        }
    }
}
