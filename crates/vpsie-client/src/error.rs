//! The one error type of this crate.

use std::time::Duration;

/// Everything a VPSie API call can fail with.
///
/// Each variant maps to a stable [`Error::kind`] label, used as the `kind` label of
/// `vpsie_autoscaler_vpsie_api_errors_total`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The object does not exist: HTTP 404, or HTTP 200 with `"data": false` on a get-by-id.
    #[error("{endpoint}: not found")]
    NotFound {
        /// The endpoint label of the call.
        endpoint: &'static str,
    },
    /// The credentials were refused (HTTP 401/403), also after one token refresh.
    #[error("{endpoint}: unauthorized ({message})")]
    Unauthorized {
        /// The endpoint label of the call.
        endpoint: &'static str,
        /// The API's message.
        message: String,
    },
    /// HTTP 429. `retry_after` is the server's `Retry-After` when it sent one.
    #[error("{endpoint}: rate limited by the API (retry after {retry_after:?})")]
    RateLimited {
        /// The endpoint label of the call.
        endpoint: &'static str,
        /// How long the server asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The API refused the request with a message: a 4xx with an error body, or HTTP 200 with `"error": true`.
    #[error("{endpoint}: API error (HTTP {status}): {message}")]
    Api {
        /// The endpoint label of the call.
        endpoint: &'static str,
        /// The HTTP status (200 for an `error: true` body on a 2xx).
        status: u16,
        /// The API's message.
        message: String,
    },
    /// The account is at a limit (for example "exceeds the allowed limit"). Retrying does not help.
    #[error("{endpoint}: quota exceeded: {message}")]
    QuotaExceeded {
        /// The endpoint label of the call.
        endpoint: &'static str,
        /// The API's message.
        message: String,
    },
    /// A 5xx answer. `snippet` is the start of the body (an HTML page from a proxy, for example).
    #[error("{endpoint}: server error HTTP {status}: {snippet}")]
    Server {
        /// The endpoint label of the call.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// The first characters of the body.
        snippet: String,
    },
    /// The request did not complete: connection refused or reset, TLS failure, or timeout.
    #[error("{endpoint}: transport error: {message}")]
    Transport {
        /// The endpoint label of the call.
        endpoint: &'static str,
        /// What went wrong.
        message: String,
        /// Whether the per-request timeout fired.
        timed_out: bool,
    },
    /// A 2xx body that is not the JSON we expect.
    #[error("{endpoint}: cannot decode the response: {message}; body starts with: {snippet}")]
    Decode {
        /// The endpoint label of the call.
        endpoint: &'static str,
        /// The decoder's message.
        message: String,
        /// The first characters of the body.
        snippet: String,
    },
    /// The circuit breaker is open after repeated failures; no request was sent.
    #[error("{endpoint}: circuit breaker open, VPSie API calls are paused for {remaining:?}")]
    CircuitOpen {
        /// The endpoint label of the call.
        endpoint: &'static str,
        /// Time until the breaker lets a probe through.
        remaining: Duration,
    },
    /// The client was configured wrongly (bad base URL, empty credentials, bad argument).
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    /// A short, stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::Unauthorized { .. } => "unauthorized",
            Error::RateLimited { .. } => "rate_limited",
            Error::Api { .. } => "api",
            Error::QuotaExceeded { .. } => "quota_exceeded",
            Error::Server { .. } => "server",
            Error::Transport { timed_out: true, .. } => "timeout",
            Error::Transport { .. } => "transport",
            Error::Decode { .. } => "decode",
            Error::CircuitOpen { .. } => "circuit_open",
            Error::Config(_) => "config",
        }
    }

    /// Whether an idempotent request that failed this way may be sent again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::RateLimited { .. } | Error::Transport { .. } | Error::Server { status: 500 | 502 | 503 | 504, .. }
        )
    }

    /// Whether the request certainly did not take effect: VPSie refused it before acting on it (429, 401),
    /// or the client never sent it (circuit open). A create that failed this way may be sent again; after
    /// any other failure (timeout, 5xx, unreadable answer) the VM may exist.
    pub fn was_not_processed(&self) -> bool {
        matches!(self, Error::RateLimited { .. } | Error::CircuitOpen { .. } | Error::Unauthorized { .. })
    }

    /// Whether this failure counts against the circuit breaker (the API looks unhealthy).
    pub(crate) fn counts_as_outage(&self) -> bool {
        matches!(self, Error::Server { .. } | Error::Transport { .. })
    }

    /// Whether the error says the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// The wait the server asked for, for [`Error::RateLimited`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Messages the API uses for account limits, matched case-insensitively.
const QUOTA_MARKERS: &[&str] = &["exceeds the allowed limit", "quota", "limit reached", "reached the limit"];

/// Classifies an API error message: quota messages become [`Error::QuotaExceeded`].
pub(crate) fn api_error(endpoint: &'static str, status: u16, message: String) -> Error {
    let lower = message.to_ascii_lowercase();
    if QUOTA_MARKERS.iter().any(|m| lower.contains(m)) {
        Error::QuotaExceeded { endpoint, message }
    } else {
        Error::Api { endpoint, status, message }
    }
}

/// The first `max` characters of a body, on one line, for error messages. An HTML page (a proxy's error
/// page) is named by its title, not quoted tag by tag.
pub(crate) fn snippet(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    if lower.trim_start().starts_with('<') && lower.contains("<html") {
        let title = lower
            .find("<title>")
            .and_then(|start| lower[start..].find("</title>").map(|end| (start + 7, start + end)))
            .and_then(|(from, to)| text.get(from..to))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let shown = title.map_or_else(|| visible_text(&text), str::to_owned);
        let shown: String = shown.chars().take(max).collect();
        return if shown.is_empty() { "an HTML page".to_owned() } else { format!("an HTML page \"{shown}\"") };
    }
    let mut out: String = text.chars().take(max).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

/// The text of an HTML fragment outside its tags, whitespace collapsed.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_messages_are_classified() {
        let e = api_error("vm.create", 200, "Number of servers exceeds the allowed limit".into());
        assert_eq!(e.kind(), "quota_exceeded");
        let e = api_error("vm.delete", 200, "You entered the wrong password".into());
        assert_eq!(e.kind(), "api");
    }

    #[test]
    fn snippet_is_bounded_and_single_line() {
        let s = snippet(b"{\"error\":\n\"Bad Gateway upstream\"}", 12);
        assert_eq!(s, "{\"error\": \"B…");
    }

    #[test]
    fn an_html_error_page_is_named_by_its_title() {
        let page = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502</h1></center></body></html>";
        assert_eq!(snippet(page, 200), "an HTML page \"502 Bad Gateway\"");
        assert_eq!(
            snippet(b"<!DOCTYPE html><html><body>down for\n maintenance</body></html>", 200),
            "an HTML page \"down for maintenance\""
        );
        assert_eq!(snippet(b"<html><body></body></html>", 200), "an HTML page");
    }

    #[test]
    fn retryable_kinds() {
        let server = |status| Error::Server { endpoint: "x", status, snippet: String::new() };
        assert!(server(502).is_retryable());
        assert!(!server(501).is_retryable());
        assert!(Error::RateLimited { endpoint: "x", retry_after: None }.is_retryable());
        assert!(!Error::Api { endpoint: "x", status: 400, message: String::new() }.is_retryable());
    }
}
