//! Access tokens: a fixed token, or one obtained by the client-credentials exchange and refreshed
//! `token_refresh_margin` before it expires. The cache lock is never held across an HTTP call: a caller
//! that finds the token stale fetches a new one unlocked, then stores it. Two callers may then both
//! refresh, which is harmless; none ever waits on another's I/O.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::Credentials;
use crate::secret::Secret;

/// Assumed lifetime of an exchanged token whose `expires` cannot be read.
const FALLBACK_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
struct Cached {
    token: Secret,
    expires_at: Instant,
    generation: u64,
}

/// The token to put on a request, with the cache generation it came from (to invalidate exactly it).
#[derive(Debug, Clone)]
pub(crate) struct AuthToken {
    pub(crate) token: Secret,
    pub(crate) generation: u64,
}

#[derive(Debug)]
pub(crate) struct TokenSource {
    credentials: Credentials,
    margin: Duration,
    cache: Mutex<(Option<Cached>, u64)>,
}

impl TokenSource {
    pub(crate) fn new(credentials: Credentials, margin: Duration) -> Self {
        Self { credentials, margin, cache: Mutex::new((None, 0)) }
    }

    /// Whether a 401 can be cured by fetching a new token.
    pub(crate) fn refreshable(&self) -> bool {
        matches!(self.credentials, Credentials::ClientCredentials { .. })
    }

    /// The current token if it is fresh; `None` means an exchange is needed.
    pub(crate) fn fresh(&self) -> Option<AuthToken> {
        match &self.credentials {
            Credentials::Token(t) => Some(AuthToken { token: t.clone(), generation: 0 }),
            Credentials::ClientCredentials { .. } => {
                let guard = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                guard
                    .0
                    .as_ref()
                    .filter(|c| Instant::now() + self.margin < c.expires_at)
                    .map(|c| AuthToken { token: c.token.clone(), generation: c.generation })
            }
        }
    }

    /// The body of the exchange request, for client credentials.
    pub(crate) fn exchange_body(&self) -> Option<serde_json::Value> {
        match &self.credentials {
            Credentials::Token(_) => None,
            Credentials::ClientCredentials { client_id, client_secret } => {
                Some(serde_json::json!({ "clientId": client_id, "clientSecret": client_secret.expose() }))
            }
        }
    }

    /// Stores a freshly exchanged token and returns it.
    pub(crate) fn store(&self, grant: TokenGrant) -> AuthToken {
        let lifetime = grant.lifetime().unwrap_or(FALLBACK_LIFETIME);
        let mut guard = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        guard.1 += 1;
        let cached = Cached { token: grant.token, expires_at: Instant::now() + lifetime, generation: guard.1 };
        let out = AuthToken { token: cached.token.clone(), generation: cached.generation };
        guard.0 = Some(cached);
        out
    }

    /// Forgets the token of `generation` after the API refused it (a newer one is kept).
    pub(crate) fn invalidate(&self, generation: u64) {
        let mut guard = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.0.as_ref().is_some_and(|c| c.generation == generation) {
            guard.0 = None;
        }
    }
}

/// An access token from `POST /apps/v2/auth/from/api`, read from either documented shape:
/// `{"token":{"access":{"token","expires"}}}` or `{"accessToken":{"token","expires"}}`.
#[derive(Debug)]
pub(crate) struct TokenGrant {
    token: Secret,
    expires: Option<String>,
}

#[derive(Deserialize)]
struct RawToken {
    token: String,
    #[serde(default, deserialize_with = "crate::wire::flex::opt_string")]
    expires: Option<String>,
}

#[derive(Deserialize)]
struct RawNested {
    access: RawToken,
}

#[derive(Deserialize)]
struct RawGrant {
    token: Option<RawNested>,
    #[serde(rename = "accessToken")]
    access_token: Option<RawToken>,
}

impl TokenGrant {
    /// Reads a grant from the exchange answer (the envelope's top level).
    pub(crate) fn from_value(v: serde_json::Value) -> Option<Self> {
        let raw: RawGrant = serde_json::from_value(v).ok()?;
        let t = raw.token.map(|n| n.access).or(raw.access_token)?;
        (!t.token.is_empty()).then(|| TokenGrant { token: Secret::new(t.token), expires: t.expires })
    }

    fn lifetime(&self) -> Option<Duration> {
        let expires: jiff::Timestamp = self.expires.as_deref()?.parse().ok()?;
        // Milliseconds: truncating both ends to seconds could cut a short lifetime by a whole second.
        let millis = expires.as_millisecond() - jiff::Timestamp::now().as_millisecond();
        Some(Duration::from_millis(u64::try_from(millis).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_both_grant_shapes() {
        let a = TokenGrant::from_value(
            json!({"error":false,"token":{"access":{"token":"a","expires":"2099-01-01T00:00:00Z"}}}),
        );
        let b = TokenGrant::from_value(json!({"accessToken":{"token":"b","expires":"2099-01-01T00:00:00Z"}}));
        assert_eq!(a.map(|g| g.token.expose().to_owned()).as_deref(), Some("a"));
        assert!(b.and_then(|g| g.lifetime()).is_some_and(|d| d > Duration::from_secs(3600)));
        assert!(TokenGrant::from_value(json!({"token":{}})).is_none());
    }

    #[test]
    fn refresh_margin_and_invalidation() {
        let src = TokenSource::new(
            Credentials::ClientCredentials { client_id: "id".into(), client_secret: "s".into() },
            Duration::from_secs(300),
        );
        assert!(src.fresh().is_none());
        let soon = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(200)).to_string();
        src.store(TokenGrant { token: "t1".into(), expires: Some(soon) });
        assert!(src.fresh().is_none(), "expires within the margin: refresh");
        let later = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3000)).to_string();
        let t2 = src.store(TokenGrant { token: "t2".into(), expires: Some(later) });
        assert_eq!(src.fresh().map(|t| t.generation), Some(t2.generation));
        src.invalidate(t2.generation - 1);
        assert!(src.fresh().is_some(), "an older generation does not evict the newer token");
        src.invalidate(t2.generation);
        assert!(src.fresh().is_none());
    }
}
