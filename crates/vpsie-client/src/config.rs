//! Client configuration: where the API is, how to authenticate, and how hard to push it.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// The production API host.
pub const DEFAULT_BASE_URL: &str = "https://api.vpsie.com";

/// How the client authenticates.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A long-lived access token, sent as `Vpsie-Auth: <token>` on every request.
    Token(Secret),
    /// A client id and secret exchanged at `POST /apps/v2/auth/from/api` for a short-lived access token,
    /// refreshed before it expires and once after a 401.
    ClientCredentials {
        /// The API client id.
        client_id: String,
        /// The API client secret.
        client_secret: Secret,
    },
}

impl Credentials {
    /// Builds credentials from the keys of a credentials Secret: `token`, or `clientId` + `clientSecret`.
    ///
    /// `get` returns the value stored under a key. A token wins when both forms are present.
    pub fn from_keys(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let non_empty = |k: &str| get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        if let Some(token) = non_empty("token") {
            return Ok(Credentials::Token(Secret::new(token)));
        }
        match (non_empty("clientId"), non_empty("clientSecret")) {
            (Some(client_id), Some(secret)) => {
                Ok(Credentials::ClientCredentials { client_id, client_secret: Secret::new(secret) })
            }
            (Some(_), None) => Err(Error::Config("credentials have clientId but no clientSecret".into())),
            (None, Some(_)) => Err(Error::Config("credentials have clientSecret but no clientId".into())),
            (None, None) => Err(Error::Config("credentials need either `token` or `clientId` + `clientSecret`".into())),
        }
    }
}

/// Which path prefix the VM endpoints live under (the API serves both; see `shared/vpsie-api.md` §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VmPathPrefix {
    /// `/apps/v2/vm` (default; what most public clients call).
    #[default]
    AppsV2,
    /// `/api/v2/vm`.
    ApiV2,
}

impl VmPathPrefix {
    /// The path prefix without a trailing slash.
    pub fn as_str(self) -> &'static str {
        match self {
            VmPathPrefix::AppsV2 => "/apps/v2/vm",
            VmPathPrefix::ApiV2 => "/api/v2/vm",
        }
    }
}

/// Client-side rate limit (token bucket).
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Sustained requests per minute.
    pub per_minute: u32,
    /// Requests allowed at once before the sustained rate applies.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self { per_minute: 100, burst: 20 }
    }
}

/// Retry policy for idempotent calls: exponential backoff with full jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retries).
    pub max_retries: usize,
    /// Delay cap of the first retry.
    pub base_delay: Duration,
    /// Largest delay cap.
    pub max_delay: Duration,
    /// Longest `Retry-After` we honour; a longer one ends the retries.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// Circuit breaker settings.
#[derive(Debug, Clone, Copy)]
pub struct BreakerPolicy {
    /// Consecutive failures (5xx, timeouts, transport errors) that open the breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before one probe request is let through.
    pub open_for: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self { failure_threshold: 5, open_for: Duration::from_secs(30) }
    }
}

/// Everything [`crate::VpsieClient::new`] needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Scheme and host, for example `https://api.vpsie.com` or `http://127.0.0.1:8080`. Paths are absolute.
    pub base_url: String,
    /// How to authenticate.
    pub credentials: Credentials,
    /// The VM path prefix.
    pub vm_prefix: VmPathPrefix,
    /// Client-side rate limit.
    pub rate_limit: RateLimit,
    /// Retries of idempotent calls.
    pub retry: RetryPolicy,
    /// Circuit breaker.
    pub breaker: BreakerPolicy,
    /// Timeout of one HTTP request (each attempt).
    pub request_timeout: Duration,
    /// How long before expiry a client-credentials token is refreshed.
    pub token_refresh_margin: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl ClientConfig {
    /// A configuration with defaults for everything but the base URL and credentials.
    pub fn new(base_url: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            base_url: base_url.into(),
            credentials,
            vm_prefix: VmPathPrefix::default(),
            rate_limit: RateLimit::default(),
            retry: RetryPolicy::default(),
            breaker: BreakerPolicy::default(),
            request_timeout: Duration::from_secs(30),
            token_refresh_margin: Duration::from_secs(300),
            user_agent: format!("vpsie-autoscaler/{}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// Checks the configuration and returns the base URL without a trailing slash.
    pub(crate) fn validated_base(&self) -> Result<String> {
        let base = self.base_url.trim().trim_end_matches('/').to_owned();
        let uri: http::Uri = base.parse().map_err(|e| Error::Config(format!("base_url {base:?}: {e}")))?;
        match (uri.scheme_str(), uri.host()) {
            (Some("http" | "https"), Some(_)) => {}
            _ => {
                return Err(Error::Config(format!("base_url {base:?} needs an http:// or https:// scheme and a host")));
            }
        }
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(Error::Config(format!("base_url {base:?} must not have a path; API paths are absolute")));
        }
        if self.rate_limit.per_minute == 0 || self.rate_limit.burst == 0 {
            return Err(Error::Config("rate_limit.per_minute and rate_limit.burst must be at least 1".into()));
        }
        if self.breaker.failure_threshold == 0 {
            return Err(Error::Config("breaker.failure_threshold must be at least 1".into()));
        }
        match &self.credentials {
            Credentials::Token(t) if t.is_empty() => return Err(Error::Config("the access token is empty".into())),
            Credentials::ClientCredentials { client_id, client_secret }
                if client_id.is_empty() || client_secret.is_empty() =>
            {
                return Err(Error::Config("clientId and clientSecret must not be empty".into()));
            }
            _ => {}
        }
        Ok(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_secret_keys() {
        let token = Credentials::from_keys(|k| (k == "token").then(|| "abc".to_owned()));
        assert!(matches!(token, Ok(Credentials::Token(_))));
        let cc = Credentials::from_keys(|k| match k {
            "clientId" => Some("id".into()),
            "clientSecret" => Some("s".into()),
            _ => None,
        });
        assert!(matches!(cc, Ok(Credentials::ClientCredentials { .. })));
        let half = Credentials::from_keys(|k| (k == "clientId").then(|| "id".to_owned()));
        assert!(matches!(half, Err(Error::Config(m)) if m.contains("clientSecret")));
        assert!(Credentials::from_keys(|_| None).is_err());
    }

    #[test]
    fn base_url_is_checked() {
        let cfg = |u: &str| ClientConfig::new(u, Credentials::Token("t".into())).validated_base();
        assert_eq!(cfg("http://127.0.0.1:9/").ok().as_deref(), Some("http://127.0.0.1:9"));
        assert!(cfg("api.vpsie.com").is_err());
        assert!(cfg("https://api.vpsie.com/apps/v2").is_err());
        assert!(ClientConfig::new("https://x", Credentials::Token("".into())).validated_base().is_err());
    }
}
