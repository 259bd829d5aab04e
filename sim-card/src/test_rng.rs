//! Deterministic bytes for flows under test.

/// Deterministic "random" bytes, so a recorded exchange replays and a failure reproduces.
///
/// It implements [`rand::CryptoRng`] only so tests can hand it to the core's `LocalKey`, which
/// requires a CSPRNG: it is **not** one. Never use it outside tests and simulations.
#[derive(Clone, Debug)]
pub struct TestRng {
    state: u8,
    mul: u8,
    add: u8,
}

impl TestRng {
    /// Bytes `x = x * 31 + 7`, starting from `seed`.
    pub fn counter(seed: u8) -> Self {
        Self {
            state: seed,
            mul: 31,
            add: 7,
        }
    }

    /// Every byte `byte`.
    pub fn repeat(byte: u8) -> Self {
        Self {
            state: byte,
            mul: 1,
            add: 0,
        }
    }
}

impl rand::RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.state = self.state.wrapping_mul(self.mul).wrapping_add(self.add);
            *b = self.state;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand::CryptoRng for TestRng {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn sequences_are_reproducible() {
        let mut a = [0u8; 4];
        TestRng::counter(3).fill_bytes(&mut a);
        assert_eq!(a, [100, 35, 68, 67]);
        TestRng::repeat(0x44).fill_bytes(&mut a);
        assert_eq!(a, [0x44; 4]);
    }
}
