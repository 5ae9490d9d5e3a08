//! Kubernetes resource quantities (`"250m"`, `"1.5"`, `"512Mi"`, `"1e3"`, `"2G"`).

/// Parses a quantity into base units (cores, bytes, counts) as a float. `None` when malformed.
pub fn parse(q: &str) -> Option<f64> {
    let q = q.trim();
    let split = q.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let value: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    let v = value * factor;
    v.is_finite().then_some(v)
}

/// CPU in millicores, rounded up as kube-scheduler does.
pub fn cpu_milli(q: &str) -> Option<i64> {
    parse(q).map(|v| (v * 1000.0 - 1e-9).ceil() as i64)
}

/// An integer amount (bytes, counts), rounded up.
pub fn integer(q: &str) -> Option<i64> {
    parse(q).map(|v| (v - 1e-9).ceil() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_suffix_kind() {
        assert_eq!(cpu_milli("250m"), Some(250));
        assert_eq!(cpu_milli("1.5"), Some(1500));
        assert_eq!(cpu_milli("2"), Some(2000));
        assert_eq!(cpu_milli("100u"), Some(1));
        assert_eq!(integer("512Mi"), Some(512 << 20));
        assert_eq!(integer("1Gi"), Some(1 << 30));
        assert_eq!(integer("2G"), Some(2_000_000_000));
        assert_eq!(integer("1e3"), Some(1000));
        assert_eq!(integer("128974848"), Some(128_974_848));
        assert_eq!(integer("1.5Ki"), Some(1536));
        assert_eq!(parse("12Q"), None);
        assert_eq!(parse(""), None);
    }
}
