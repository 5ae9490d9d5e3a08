//! VPSie credentials from a watched Secret, swapped into a shared client handle without a restart.
//!
//! The Secret (default `kube-system/vpsie-secret`) holds `token`, or `clientId` + `clientSecret`, and
//! `deletePassword` for the VM backend. Each change builds a new `VpsieClient` and swaps it in; calls already
//! running keep the client they started with and finish on it. A missing or malformed Secret empties the
//! handle (no VPSie call is made with credentials the Secret no longer holds), makes `/readyz` fail, logs
//! once and publishes a `CredentialsInvalid` Event naming the Secret and the key. Values are never logged.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client};
use tokio::task::JoinHandle;
use vpsie_client::{ClientConfig, Credentials, Secret, VpsieClient};

use crate::events::Events;
use crate::health::{Check, Health};
use crate::telemetry::metrics::{CREDENTIAL_RELOADS, CREDENTIALS_LOADED};

/// Key of a long-lived access token.
pub const KEY_TOKEN: &str = "token";
/// Key of the API client id.
pub const KEY_CLIENT_ID: &str = "clientId";
/// Key of the API client secret.
pub const KEY_CLIENT_SECRET: &str = "clientSecret";
/// Key of the account password VM deletion needs.
pub const KEY_DELETE_PASSWORD: &str = "deletePassword";

/// Credentials read from the Secret.
#[derive(Debug, Clone)]
pub struct VpsieCredentials {
    /// How the client authenticates.
    pub credentials: Credentials,
    /// The account password for VM deletion (VM backend), when the Secret has one.
    pub delete_password: Option<Secret>,
}

/// Reads the Secret's keys. The error names the key at fault, never a value.
pub fn parse(secret: &K8sSecret) -> Result<VpsieCredentials, String> {
    let data = secret.data.clone().unwrap_or_default();
    let mut texts = std::collections::BTreeMap::new();
    for key in [KEY_TOKEN, KEY_CLIENT_ID, KEY_CLIENT_SECRET, KEY_DELETE_PASSWORD] {
        if let Some(bytes) = data.get(key) {
            let text = String::from_utf8(bytes.0.clone()).map_err(|_| format!("key `{key}` is not UTF-8 text"))?;
            texts.insert(key, text);
        }
    }
    let credentials = Credentials::from_keys(|k| texts.get(k).cloned())
        .map_err(|e| format!("{e} (keys present: {})", present(&data)))?;
    let delete_password =
        texts.get(KEY_DELETE_PASSWORD).map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).map(Secret::new);
    Ok(VpsieCredentials { credentials, delete_password })
}

fn present(data: &std::collections::BTreeMap<String, k8s_openapi::ByteString>) -> String {
    if data.is_empty() { "none".to_owned() } else { data.keys().cloned().collect::<Vec<_>>().join(", ") }
}

#[derive(Debug, Clone)]
struct Loaded {
    client: VpsieClient,
    delete_password: Option<Secret>,
}

/// The current VPSie client, shared by every task. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct VpsieHandle {
    inner: Arc<RwLock<Option<Loaded>>>,
}

impl VpsieHandle {
    /// A handle holding `client` (tests, and callers that build their own).
    pub fn with_client(client: VpsieClient, delete_password: Option<Secret>) -> Self {
        Self { inner: Arc::new(RwLock::new(Some(Loaded { client, delete_password }))) }
    }

    /// The client built from the current credentials; `None` while none are loaded.
    pub fn client(&self) -> Option<VpsieClient> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).as_ref().map(|l| l.client.clone())
    }

    /// The delete password, when the Secret has one.
    pub fn delete_password(&self) -> Option<Secret> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).as_ref().and_then(|l| l.delete_password.clone())
    }

    fn set(&self, loaded: Option<Loaded>) {
        *self.inner.write().unwrap_or_else(PoisonError::into_inner) = loaded;
    }
}

/// Where the Secret is and how to build clients from it.
#[derive(Debug, Clone)]
pub struct CredentialsConfig {
    /// Secret namespace.
    pub namespace: String,
    /// Secret name.
    pub name: String,
    /// VPSie API base URL.
    pub base_url: String,
    /// This replica's identity (sent in the User-Agent, so the API side can tell replicas apart).
    pub identity: String,
}

/// Builds a client for `creds`.
pub fn build_client(cfg: &CredentialsConfig, creds: &VpsieCredentials) -> Result<VpsieClient, String> {
    let mut config = ClientConfig::new(cfg.base_url.clone(), creds.credentials.clone());
    config.user_agent = format!("vpsie-autoscaler/{} ({})", env!("CARGO_PKG_VERSION"), cfg.identity);
    VpsieClient::new(config).map_err(|e| e.to_string())
}

/// Watches the Secret and keeps `handle` and the readiness check current.
pub fn spawn(
    client: Client,
    cfg: CredentialsConfig,
    handle: VpsieHandle,
    health: Health,
    events: Events,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<K8sSecret> = Api::namespaced(client, &cfg.namespace);
        let stream =
            watcher(api, watcher::Config::default().fields(&format!("metadata.name={}", cfg.name))).default_backoff();
        tokio::pin!(stream);
        let mut seen = false;
        let mut heartbeat = tokio::time::interval(Duration::from_secs(10));
        let missing = format!("Secret {}/{} not found", cfg.namespace, cfg.name);
        health.set(Check::CredentialsLoaded, Err(format!("waiting for Secret {}/{}", cfg.namespace, cfg.name)));
        loop {
            let event = tokio::select! {
                ev = stream.next() => ev,
                _ = heartbeat.tick() => {
                    health.beat("credentials", Duration::from_secs(60));
                    continue;
                }
            };
            match event {
                Some(Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s))) => {
                    seen = true;
                    apply(&cfg, &handle, &health, &events, &s).await;
                }
                Some(Ok(watcher::Event::Delete(_))) => {
                    seen = false;
                    unload(&cfg, &handle, &health, &events, "missing", &missing).await;
                }
                Some(Ok(watcher::Event::Init)) => seen = false,
                Some(Ok(watcher::Event::InitDone)) => {
                    if !seen {
                        unload(&cfg, &handle, &health, &events, "missing", &missing).await;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(secret = %cfg.name, namespace = %cfg.namespace, error = %e, "credentials Secret watch");
                }
                None => return,
            }
        }
    })
}

async fn apply(cfg: &CredentialsConfig, handle: &VpsieHandle, health: &Health, events: &Events, s: &K8sSecret) {
    let built = parse(s).and_then(|creds| build_client(cfg, &creds).map(|c| (c, creds)));
    match built {
        Ok((client, creds)) => {
            let mode = match creds.credentials {
                Credentials::Token(_) => "token",
                Credentials::ClientCredentials { .. } => "client credentials",
            };
            handle.set(Some(Loaded { client, delete_password: creds.delete_password.clone() }));
            health.set(Check::CredentialsLoaded, Ok(()));
            metrics::gauge!(CREDENTIALS_LOADED).set(1.0);
            metrics::counter!(CREDENTIAL_RELOADS, "result" => "loaded").increment(1);
            tracing::info!(
                secret = %cfg.name, namespace = %cfg.namespace, mode,
                delete_password = creds.delete_password.is_some(),
                resource_version = s.metadata.resource_version.as_deref().unwrap_or_default(),
                "VPSie credentials loaded"
            );
        }
        Err(problem) => {
            let why = format!("Secret {}/{}: {problem}", cfg.namespace, cfg.name);
            unload(cfg, handle, health, events, "invalid", &why).await;
        }
    }
}

async fn unload(
    cfg: &CredentialsConfig,
    handle: &VpsieHandle,
    health: &Health,
    events: &Events,
    result: &'static str,
    why: &str,
) {
    handle.set(None);
    health.set(Check::CredentialsLoaded, Err(why.to_owned()));
    metrics::gauge!(CREDENTIALS_LOADED).set(0.0);
    metrics::counter!(CREDENTIAL_RELOADS, "result" => result).increment(1);
    tracing::error!(secret = %cfg.name, namespace = %cfg.namespace, problem = %why, "VPSie credentials not usable: not ready");
    events.credentials_problem(&cfg.namespace, &cfg.name, why).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(pairs: &[(&str, &[u8])]) -> K8sSecret {
        K8sSecret {
            data: Some(pairs.iter().map(|(k, v)| ((*k).to_owned(), ByteString(v.to_vec()))).collect()),
            ..K8sSecret::default()
        }
    }

    #[test]
    fn token_or_client_credentials_and_the_delete_password() {
        let t = parse(&secret(&[("token", b"tok-123"), ("deletePassword", b"pw")]));
        assert!(matches!(t, Ok(VpsieCredentials { credentials: Credentials::Token(_), delete_password: Some(_) })));
        let cc = parse(&secret(&[("clientId", b"id"), ("clientSecret", b"s3cr3t")]));
        assert!(matches!(
            cc,
            Ok(VpsieCredentials { credentials: Credentials::ClientCredentials { .. }, delete_password: None })
        ));
    }

    #[test]
    fn errors_name_the_key_and_never_the_value() {
        let half = parse(&secret(&[("clientId", b"id-value-xyz")])).err().unwrap_or_default();
        assert!(half.contains("clientSecret") && half.contains("keys present: clientId"), "{half}");
        assert!(!half.contains("id-value-xyz"));
        let empty = parse(&K8sSecret::default()).err().unwrap_or_default();
        assert!(empty.contains("`token`") && empty.contains("keys present: none"), "{empty}");
        let binary = parse(&secret(&[("token", &[0xff, 0xfe])])).err().unwrap_or_default();
        assert_eq!(binary, "key `token` is not UTF-8 text");
        let debug = format!("{:?}", parse(&secret(&[("token", b"tok-visible?")])));
        assert!(!debug.contains("tok-visible?"), "Debug is redacted: {debug}");
    }
}
