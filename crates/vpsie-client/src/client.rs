//! The request engine: rate limit, circuit breaker, auth, timeout, retry, decoding, metrics and spans.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::Retryable;
use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::auth::{AuthToken, TokenGrant, TokenSource};
use crate::backoff::FullJitterBuilder;
use crate::breaker::{Breaker, Verdict};
use crate::config::{ClientConfig, RetryPolicy, VmPathPrefix};
use crate::error::{Error, Result, api_error, snippet};
use crate::telemetry;
use crate::wire::{Envelope, decode_envelope, error_message};

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// Characters of an error body kept in [`Error::Server`] and friends.
const ERROR_SNIPPET_LEN: usize = 200;

/// A client of the VPSie API. Cheap to clone; clones share the rate limiter, breaker and token.
#[derive(Clone)]
pub struct VpsieClient {
    inner: Arc<Inner>,
}

struct Inner {
    base: String,
    vm_prefix: VmPathPrefix,
    http: HyperClient<Https, Full<Bytes>>,
    limiter: DefaultDirectRateLimiter,
    breaker: Breaker,
    retry: RetryPolicy,
    timeout: Duration,
    tokens: TokenSource,
    user_agent: HeaderValue,
}

impl std::fmt::Debug for VpsieClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VpsieClient").field("base", &self.inner.base).finish_non_exhaustive()
    }
}

/// A request body.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    None,
    Json(serde_json::Value),
    Form(Vec<(&'static str, String)>),
}

/// One API call, described before it is sent (and re-sent on retry).
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// Metric and span label, e.g. `vm.list`.
    pub(crate) endpoint: &'static str,
    pub(crate) method: Method,
    /// Absolute path with query.
    pub(crate) path: String,
    pub(crate) body: Body,
    /// Safe to send again after a failure whose outcome is unknown.
    pub(crate) idempotent: bool,
}

impl Call {
    pub(crate) fn get(endpoint: &'static str, path: impl Into<String>) -> Self {
        Self { endpoint, method: Method::GET, path: path.into(), body: Body::None, idempotent: true }
    }
    pub(crate) fn send(endpoint: &'static str, method: Method, path: impl Into<String>, body: Body) -> Self {
        Self { endpoint, method, path: path.into(), body, idempotent: false }
    }
    /// Marks a non-GET call as safe to retry (a query sent as POST, a delete by id).
    pub(crate) fn retryable(mut self) -> Self {
        self.idempotent = true;
        self
    }
}

impl VpsieClient {
    /// Builds a client. Fails with [`Error::Config`] on a bad base URL, empty credentials or zero limits.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let base = config.validated_base()?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| Error::Config(format!("TLS setup: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let http = HyperClient::builder(TokioExecutor::new()).build(https);
        let per_minute = NonZeroU32::new(config.rate_limit.per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.rate_limit.burst).unwrap_or(NonZeroU32::MIN);
        let user_agent = HeaderValue::from_str(&config.user_agent)
            .map_err(|_| Error::Config(format!("user_agent {:?} is not a valid header value", config.user_agent)))?;
        Ok(Self {
            inner: Arc::new(Inner {
                base,
                vm_prefix: config.vm_prefix,
                http,
                limiter: RateLimiter::direct(Quota::per_minute(per_minute).allow_burst(burst)),
                breaker: Breaker::new(config.breaker),
                retry: config.retry,
                timeout: config.request_timeout,
                tokens: TokenSource::new(config.credentials, config.token_refresh_margin),
                user_agent,
            }),
        })
    }

    /// The base URL this client talks to.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// Whether the circuit breaker is open (calls fail fast).
    pub fn circuit_open(&self) -> bool {
        self.inner.breaker.is_open()
    }

    pub(crate) fn vm_path(&self, rest: &str) -> String {
        format!("{}{rest}", self.inner.vm_prefix.as_str())
    }

    /// Sends a call (with retries when it is idempotent) and decodes `data` as `T`.
    pub(crate) async fn call<T: DeserializeOwned>(&self, call: Call) -> Result<Envelope<T>> {
        let span = tracing::debug_span!("vpsie_api", endpoint = call.endpoint, method = %call.method);
        let result = async {
            if !call.idempotent {
                return self.authed_attempt(&call).await;
            }
            let max_wait = self.inner.retry.max_retry_after;
            (|| self.authed_attempt::<T>(&call))
                .retry(FullJitterBuilder { policy: self.inner.retry })
                .sleep(tokio::time::sleep)
                .when(Error::is_retryable)
                .adjust(move |e: &Error, planned| match e.retry_after() {
                    Some(wait) if wait > max_wait => None,
                    Some(wait) => Some(wait),
                    None => planned,
                })
                .notify(|e: &Error, wait| tracing::debug!(error = %e, ?wait, "retrying VPSie API call"))
                .await
        }
        .instrument(span)
        .await;
        if let Err(e) = &result {
            telemetry::error(call.endpoint, e.kind());
        }
        result
    }

    /// One attempt with a valid token; on a 401 with refreshable credentials, one refresh and one resend.
    async fn authed_attempt<T: DeserializeOwned>(&self, call: &Call) -> Result<Envelope<T>> {
        let token = self.token(call.endpoint).await?;
        match self.attempt(call, Some(&token)).await {
            Err(Error::Unauthorized { .. }) if self.inner.tokens.refreshable() => {
                tracing::info!(endpoint = call.endpoint, "access token refused; refreshing once");
                self.inner.tokens.invalidate(token.generation);
                let token = self.token(call.endpoint).await?;
                self.attempt(call, Some(&token)).await
            }
            other => other,
        }
    }

    async fn token(&self, endpoint: &'static str) -> Result<AuthToken> {
        if let Some(t) = self.inner.tokens.fresh() {
            return Ok(t);
        }
        let Some(body) = self.inner.tokens.exchange_body() else {
            return Err(Error::Config("no credentials to exchange".into()));
        };
        let call = Call::send("auth.exchange", Method::POST, "/apps/v2/auth/from/api", Body::Json(body));
        let grant: Envelope<serde_json::Value> = self.attempt(&call, None).await.map_err(|e| match e {
            Error::Api { message, .. } => Error::Unauthorized { endpoint, message },
            other => other,
        })?;
        let grant = TokenGrant::from_value(grant.data).ok_or_else(|| Error::Decode {
            endpoint: "auth.exchange",
            message: "no access token in the answer".into(),
            snippet: String::new(),
        })?;
        tracing::debug!("obtained a new VPSie access token");
        Ok(self.inner.tokens.store(grant))
    }

    /// One HTTP exchange: rate limit, breaker, timeout, classification, metrics.
    async fn attempt<T: DeserializeOwned>(&self, call: &Call, token: Option<&AuthToken>) -> Result<Envelope<T>> {
        let inner = &self.inner;
        if inner.limiter.check().is_err() {
            // Over the client-side budget: count the wait, then take the next free slot.
            crate::telemetry::rate_limit_hit("client");
            inner.limiter.until_ready().await;
        }
        inner.breaker.acquire().map_err(|remaining| Error::CircuitOpen { endpoint: call.endpoint, remaining })?;
        let request = self.build_request(call, token)?;
        let started = Instant::now();
        let sent = tokio::time::timeout(inner.timeout, async {
            let response = inner.http.request(request).await.map_err(|e| transport(call.endpoint, &e, false))?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| transport(call.endpoint, &e, false))?.to_bytes();
            Ok::<_, Error>((parts, body))
        })
        .await
        .unwrap_or_else(|_| {
            Err(Error::Transport {
                endpoint: call.endpoint,
                message: format!("no answer within {:?}", inner.timeout),
                timed_out: true,
            })
        });
        let elapsed = started.elapsed();
        let result = match sent {
            Ok((parts, body)) => {
                telemetry::request(call.endpoint, parts.status.as_u16().to_string(), elapsed);
                tracing::debug!(
                    status = parts.status.as_u16(),
                    elapsed_ms = elapsed.as_millis() as u64,
                    "VPSie API answered"
                );
                classify(call.endpoint, parts.status, &parts.headers, &body)
            }
            Err(e) => {
                telemetry::request(call.endpoint, e.kind().to_owned(), elapsed);
                tracing::debug!(error = %e, "VPSie API request failed");
                Err(e)
            }
        };
        let verdict = match &result {
            Err(e) if e.counts_as_outage() => Verdict::Outage,
            _ => Verdict::Healthy,
        };
        inner.breaker.record(verdict);
        result
    }

    fn build_request(&self, call: &Call, token: Option<&AuthToken>) -> Result<Request<Full<Bytes>>> {
        let uri = format!("{}{}", self.inner.base, call.path);
        let mut builder = Request::builder()
            .method(call.method.clone())
            .uri(&uri)
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, self.inner.user_agent.clone());
        if let Some(t) = token {
            let mut value = HeaderValue::from_str(t.token.expose())
                .map_err(|_| Error::Config("the access token has characters not allowed in a header".into()))?;
            value.set_sensitive(true);
            builder = builder.header("Vpsie-Auth", value);
        }
        let body = match &call.body {
            Body::None => Bytes::new(),
            Body::Json(v) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(v).map_err(|e| Error::Config(format!("request body: {e}")))?)
            }
            Body::Form(pairs) => {
                builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Bytes::from(serde_urlencoded::to_string(pairs).map_err(|e| Error::Config(format!("form body: {e}")))?)
            }
        };
        builder.body(Full::new(body)).map_err(|e| Error::Config(format!("request to {}: {e}", call.path)))
    }
}

fn transport(endpoint: &'static str, err: &dyn std::error::Error, timed_out: bool) -> Error {
    // Walk the source chain: hyper's top-level message ("client error (Connect)") hides the cause.
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    Error::Transport { endpoint, message, timed_out }
}

/// Maps a complete HTTP answer to a decoded envelope or a typed error.
fn classify<T: DeserializeOwned>(
    endpoint: &'static str,
    status: StatusCode,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<Envelope<T>> {
    if status.is_success() {
        return decode_envelope(endpoint, status.as_u16(), body);
    }
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| error_message(&v).or_else(|| v.get("message").and_then(|m| m.as_str()).map(str::to_owned)))
        .unwrap_or_else(|| snippet(body, ERROR_SNIPPET_LEN));
    Err(match status.as_u16() {
        401 | 403 => Error::Unauthorized { endpoint, message },
        404 => Error::NotFound { endpoint },
        429 => {
            crate::telemetry::rate_limit_hit("server");
            Error::RateLimited { endpoint, retry_after: retry_after(headers) }
        }
        s @ 500..=599 => Error::Server { endpoint, status: s, snippet: message },
        s => api_error(endpoint, s, message),
    })
}

/// `Retry-After` in seconds (the HTTP-date form is not used by APIs like this one and is ignored).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_status_family() {
        let h = http::HeaderMap::new();
        let c = |s: u16, b: &str| {
            classify::<serde_json::Value>("t", StatusCode::from_u16(s).unwrap_or(StatusCode::OK), &h, b.as_bytes())
        };
        assert!(
            matches!(c(401, r#"{"error":true,"code":401,"message":"Please authenticate"}"#), Err(Error::Unauthorized { message, .. }) if message == "Please authenticate")
        );
        assert!(matches!(c(404, r#"{"error":true,"message":"Not found"}"#), Err(Error::NotFound { .. })));
        assert!(
            matches!(c(502, "<html>Bad Gateway</html>"), Err(Error::Server { status: 502, snippet, .. }) if snippet.contains("Bad Gateway"))
        );
        assert!(matches!(c(400, r#"{"error":true,"message":"bad"}"#), Err(Error::Api { status: 400, .. })));
        assert!(matches!(
            c(422, r#"{"error":true,"message":"exceeds the allowed limit"}"#),
            Err(Error::QuotaExceeded { .. })
        ));
        assert!(c(200, r#"{"error":false,"data":[]}"#).is_ok());
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = http::HeaderMap::new();
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&h), None);
    }
}
