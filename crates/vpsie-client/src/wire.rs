//! Decoding of the VPSie response envelope, and lenient field decoders.
//!
//! Every answer is `{"error": bool, "data": …, "total": n}`. A 2xx may still carry `"error": true`, a
//! get-by-id of a missing object answers `"data": false`, and numbers arrive as strings on some endpoints
//! (see `shared/vpsie-api.md`, section 3). These functions never panic on any input.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result, api_error, snippet};

/// Characters of a body quoted in decode errors.
const SNIPPET_LEN: usize = 160;

/// A decoded success envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<T> {
    /// The `data` payload.
    pub data: T,
    /// The `total` of a paged list, when the API sent one (also read from the misspelled `"total "`).
    pub total: Option<u64>,
}

/// Decodes a 2xx body into `data` of type `T`.
///
/// * `"error": true` becomes [`Error::Api`] (or [`Error::QuotaExceeded`]) with the API's message.
/// * `"data": false` becomes [`Error::NotFound`].
/// * Anything that is not the expected JSON becomes [`Error::Decode`] with a snippet of the body.
/// * An empty body (HTTP 204) decodes as JSON `null`.
pub fn decode_envelope<T: DeserializeOwned>(endpoint: &'static str, status: u16, body: &[u8]) -> Result<Envelope<T>> {
    let root: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(body).map_err(|e| decode_error(endpoint, &e, body))?
    };
    if let Some(message) = error_message(&root) {
        return Err(api_error(endpoint, status, message));
    }
    let (data, total) = match root {
        Value::Object(mut map) => {
            let total = map.get("total").or_else(|| map.get("total ")).and_then(total_of);
            let data = match map.remove("data") {
                Some(d) => d,
                // Some answers (the auth exchange) carry their payload at the top level.
                None => Value::Object(map),
            };
            (data, total)
        }
        other => (other, None),
    };
    if data == Value::Bool(false) {
        return Err(Error::NotFound { endpoint });
    }
    let data = serde_json::from_value(data).map_err(|e| decode_error(endpoint, &e, body))?;
    Ok(Envelope { data, total })
}

/// The message of an error body (`"error": true`), if the body is one.
pub(crate) fn error_message(root: &Value) -> Option<String> {
    let flagged = match root.get("error") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(Value::String(s)) => s == "true" || s == "1",
        _ => false,
    };
    flagged.then(|| {
        root.get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| "the API reported an error without a message".to_owned())
    })
}

/// Reads `total` as a number, a numeric string, or the monitoring shape `[{"count": n}]`.
fn total_of(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Array(a) => a.first().and_then(|o| o.get("count")).and_then(total_of),
        _ => None,
    }
}

fn decode_error(endpoint: &'static str, err: &serde_json::Error, body: &[u8]) -> Error {
    Error::Decode { endpoint, message: err.to_string(), snippet: snippet(body, SNIPPET_LEN) }
}

/// Lenient `deserialize_with` helpers: numbers as strings, 0/1 flags as ints, strings or bools, `null` as
/// the default.
pub mod flex {
    use serde::de::{self, Deserializer, Visitor};
    use std::fmt;

    /// Any scalar the API may send where a number, flag or string is meant.
    enum Scalar {
        Int(i64),
        Float(f64),
        Str(String),
        Bool(bool),
        Null,
    }

    struct ScalarVisitor;

    impl<'de> Visitor<'de> for ScalarVisitor {
        type Value = Scalar;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number, string, boolean or null")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
            Ok(Scalar::Bool(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
            Ok(Scalar::Int(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
            Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
            Ok(Scalar::Float(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
            Ok(Scalar::Str(v.to_owned()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
            Ok(Scalar::Str(v))
        }
        fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
            Ok(Scalar::Null)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
            Ok(Scalar::Null)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
            d.deserialize_any(self)
        }
    }

    fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }

    fn parse_f64<E: de::Error>(s: &str) -> Result<Option<f64>, E> {
        let t = s.trim();
        if t.is_empty() {
            return Ok(None);
        }
        t.parse::<f64>().map(Some).map_err(|_| E::custom(format!("expected a number, got {s:?}")))
    }

    fn to_opt_f64<E: de::Error>(v: Scalar) -> Result<Option<f64>, E> {
        match v {
            Scalar::Int(i) => Ok(Some(i as f64)),
            Scalar::Float(f) => Ok(Some(f)),
            Scalar::Str(s) => parse_f64(&s),
            Scalar::Bool(b) => Ok(Some(if b { 1.0 } else { 0.0 })),
            Scalar::Null => Ok(None),
        }
    }

    fn to_opt_i64<E: de::Error>(v: Scalar) -> Result<Option<i64>, E> {
        match v {
            Scalar::Int(i) => Ok(Some(i)),
            Scalar::Str(s) if s.trim().parse::<i64>().is_ok() => Ok(s.trim().parse().ok()),
            other => match to_opt_f64::<E>(other)? {
                // Integral values only; 1.5 CPUs is not an integer field.
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
                Some(f) => Err(E::custom(format!("expected an integer, got {f}"))),
                None => Ok(None),
            },
        }
    }

    /// An integer sent as a number or a numeric string; `null` or `""` is 0.
    pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        Ok(to_opt_i64(scalar(d)?)?.unwrap_or(0))
    }

    /// An optional integer sent as a number or a numeric string.
    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        to_opt_i64(scalar(d)?)
    }

    /// A decimal sent as a number or a string (prices); `null` or `""` is 0.
    pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(to_opt_f64(scalar(d)?)?.unwrap_or(0.0))
    }

    /// A 0/1 flag sent as an int, a string (`"0"`, `"1"`, `"true"`) or a bool; `null` is false.
    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match scalar(d)? {
            Scalar::Bool(b) => Ok(b),
            Scalar::Int(i) => Ok(i != 0),
            Scalar::Float(f) => Ok(f != 0.0),
            Scalar::Null => Ok(false),
            Scalar::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => Ok(true),
                "0" | "false" | "no" | "" => Ok(false),
                _ => Err(de::Error::custom(format!("expected a 0/1 flag, got {s:?}"))),
            },
        }
    }

    /// A string that may arrive as a number or `null` (then empty).
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(opt_string(d)?.unwrap_or_default())
    }

    /// A list of names: strings, or objects with a `name` (tag objects); `null` is empty. Other entries
    /// are skipped rather than failing the whole row.
    pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let items: Option<Vec<serde_json::Value>> = serde::Deserialize::deserialize(d)?;
        Ok(items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| match v {
                serde_json::Value::String(s) => Some(s),
                serde_json::Value::Object(o) => o.get("name").and_then(|n| n.as_str()).map(str::to_owned),
                _ => None,
            })
            .collect())
    }

    /// An optional string that may arrive as a number.
    pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(match scalar(d)? {
            Scalar::Str(s) => Some(s),
            Scalar::Int(i) => Some(i.to_string()),
            Scalar::Float(f) => Some(f.to_string()),
            Scalar::Bool(b) => Some(b.to_string()),
            Scalar::Null => None,
        })
    }
}

/// Reads an API time stamp: RFC 3339, or a civil `YYYY-MM-DD HH:MM:SS` taken as UTC; `None` otherwise.
pub fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    let text = text.trim();
    text.parse::<jiff::Timestamp>().ok().or_else(|| {
        let civil = text.parse::<jiff::civil::DateTime>().ok()?;
        civil.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Row {
        #[serde(default, deserialize_with = "flex::f64")]
        price: f64,
        #[serde(default, deserialize_with = "flex::bool")]
        is_active: bool,
        #[serde(default, deserialize_with = "flex::i64")]
        cpu: i64,
        #[serde(default, deserialize_with = "flex::string")]
        name: String,
    }

    fn row(json: &str) -> Result<Row> {
        decode_envelope::<Row>("test", 200, json.as_bytes()).map(|e| e.data)
    }

    #[test]
    fn numbers_as_strings_and_flags_in_every_form() {
        let a = row(r#"{"error":false,"data":{"price":"12.50","is_active":"1","cpu":"4","name":7}}"#);
        let b = row(r#"{"error":false,"data":{"price":12.5,"is_active":true,"cpu":4.0,"name":"7"}}"#);
        let c = row(r#"{"error":false,"data":{"price":12.5,"is_active":1,"cpu":4,"name":"7"}}"#);
        let want = Row { price: 12.5, is_active: true, cpu: 4, name: "7".into() };
        assert_eq!(a.ok(), Some(Row { ..want }));
        assert_eq!(b.ok().map(|r| r.cpu), Some(4));
        assert_eq!(c.ok().map(|r| r.is_active), Some(true));
        let nulls = row(r#"{"data":{"price":null,"is_active":null,"cpu":"","name":null}}"#).ok();
        assert_eq!(nulls, Some(Row { price: 0.0, is_active: false, cpu: 0, name: String::new() }));
    }

    #[test]
    fn bad_numbers_are_decode_errors() {
        let e = row(r#"{"data":{"cpu":"four"}}"#).err();
        assert_eq!(e.map(|e| e.kind()), Some("decode"));
        let e = row(r#"{"data":{"cpu":1.5}}"#).err();
        assert_eq!(e.map(|e| e.kind()), Some("decode"));
    }

    #[test]
    fn error_true_on_200_and_data_false() {
        let e = row(r#"{"error":true,"code":400,"message":"You entered the wrong password"}"#).err();
        assert!(
            matches!(e, Some(Error::Api { status: 200, ref message, .. }) if message == "You entered the wrong password")
        );
        let e = row(r#"{"error":false,"data":false}"#).err();
        assert!(matches!(e, Some(Error::NotFound { .. })));
    }

    #[test]
    fn totals_in_every_spelling() {
        let t = |json: &str| decode_envelope::<Vec<u8>>("t", 200, json.as_bytes()).ok().and_then(|e| e.total);
        assert_eq!(t(r#"{"data":[],"total":7}"#), Some(7));
        assert_eq!(t(r#"{"data":[],"total ":"8"}"#), Some(8));
        assert_eq!(t(r#"{"data":[],"total":[{"count":9}]}"#), Some(9));
    }

    #[test]
    fn html_and_empty_bodies() {
        let e = row("<html><body>502 Bad Gateway</body></html>").err();
        assert!(matches!(e, Some(Error::Decode { ref snippet, .. }) if snippet.starts_with("an HTML page")));
        let unit = decode_envelope::<serde_json::Value>("t", 204, b"");
        assert_eq!(unit.ok().map(|e| e.data), Some(Value::Null));
    }
}
