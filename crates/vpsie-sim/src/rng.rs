//! SplitMix64: a tiny deterministic generator, so a seeded simulator replays the same ids, IPs and faults.

/// A seeded pseudo-random generator.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A UUIDv1-looking identifier like the API's (`55f06b85-c9ee-11e3-9845-005056aa8af7`).
    pub fn identifier(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-11ee-{:04x}-{:012x}",
            (a >> 32) as u32,
            (a >> 16) as u16,
            (b >> 48) as u16,
            b & 0xffff_ffff_ffff
        )
    }

    /// An address in a documentation range, unique enough for a simulation: `prefix.x.y`.
    pub fn ip(&mut self, prefix: &str) -> String {
        let v = self.next_u64();
        format!("{prefix}.{}.{}", (v % 254) + 1, ((v >> 8) % 254) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::SimRng;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SimRng::new(7);
        let mut b = SimRng::new(7);
        assert_eq!(a.identifier(), b.identifier());
        assert_eq!(a.ip("10.0"), b.ip("10.0"));
        assert_ne!(SimRng::new(8).next_u64(), SimRng::new(7).next_u64());
    }
}
