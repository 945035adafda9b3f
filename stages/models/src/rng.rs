//! The small seeded generator behind every random choice dfd makes itself (batch order,
//! augmentation draws, the per-epoch seeds of burn's backend generator, bootstrap resamples, the
//! demo dataset). One generator for the whole workspace, here because this is the lowest crate that
//! draws: the others reach it as `dfd_models::rng`.
//!
//! SplitMix64 (Steele, Lea and Flood, 2014): a few lines, no dependency, stable across versions
//! and platforms, which is what a resumable run needs: each stream is a pure function of the
//! numbers naming it, e.g. `(seed, epoch, sample key)`, so there is no generator position to save.

/// A SplitMix64 generator.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// A generator whose stream is named by `parts`; different names give unrelated streams.
    pub fn for_stream(parts: &[u64]) -> Self {
        SplitMix64::new(mix_words(parts))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        finalize(self.state)
    }

    /// Uniform in `[0, 1)`, 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[low, high)`.
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.next_f64()
    }

    /// Uniform in `0..n` (`n > 0`), without modulo bias worth speaking of for the sizes here
    /// (Lemire's multiply-shift).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// Hashes a sequence of words into one seed (each word absorbed through the SplitMix finalizer).
pub fn mix_words(parts: &[u64]) -> u64 {
    let mut h = 0x6A09_E667_F3BC_C908_u64 ^ parts.len() as u64;
    for part in parts {
        h = finalize(h.wrapping_add(GOLDEN_GAMMA) ^ *part);
    }
    h
}

fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
