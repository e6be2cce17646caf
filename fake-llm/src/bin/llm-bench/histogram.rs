//! A log-linear latency histogram in nanoseconds: exact below 2^SUB_BITS ns, then every power
//! of two split into 2^SUB_BITS equal buckets, so a recorded value is known to better than
//! 1 / 2^SUB_BITS (0.4 %) of itself. Fixed size, no allocation per value; replaces the sorted
//! vector of every sample (which grew by a million entries a minute at full load).

/// Buckets per power of two (as a bit count).
const SUB_BITS: u32 = 8;
const SUB: u64 = 1 << SUB_BITS;
/// Values up to 2^MAX_BITS ns (about 18 minutes); longer ones are counted in the top bucket.
const MAX_BITS: u32 = 40;
const BUCKETS: usize = ((MAX_BITS - SUB_BITS + 1) as usize) * SUB as usize;

pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    max: u64,
}

fn index(v: u64) -> usize {
    let v = v.min((1 << MAX_BITS) - 1);
    if v < SUB {
        return v as usize;
    }
    let shift = 63 - v.leading_zeros() - SUB_BITS;
    (u64::from(shift) * SUB + (v >> shift)) as usize
}

/// The lowest value of bucket `i` and its width.
fn bucket(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < 2 * SUB {
        return (i, 1);
    }
    let shift = i / SUB - 1;
    ((i - shift * SUB) << shift, 1 << shift)
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            max: 0,
        }
    }
}

impl Histogram {
    pub fn record(&mut self, ns: u64) {
        self.counts[index(ns)] += 1;
        self.count += 1;
        self.max = self.max.max(ns);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The value at quantile `p` in (0, 1]: the ceil(p * n)-th smallest, as the middle of its
    /// bucket (clamped to the exact maximum); 0 when empty. `p = 1` is the exact maximum.
    pub fn quantile(&self, p: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        if p >= 1.0 {
            return self.max;
        }
        let rank = ((self.count as f64 * p).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, width) = bucket(i);
                return (low + width / 2).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_falls_in_a_bucket_that_contains_it() {
        let mut v = 0u64;
        while v < 1 << MAX_BITS {
            let (low, width) = bucket(index(v));
            assert!(
                low <= v && v < low + width,
                "{v} not in [{low}, {})",
                low + width
            );
            // The bucket is at most 1/SUB of its values wide.
            assert!(
                width == 1 || width * SUB <= low,
                "{v}: width {width} at {low}"
            );
            v = v * 17 / 16 + 1;
        }
        // Buckets are contiguous and in order.
        for i in 1..BUCKETS {
            let (a, w) = bucket(i - 1);
            assert_eq!(a + w, bucket(i).0, "gap after bucket {}", i - 1);
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_match_the_sorted_samples_within_bucket_precision() {
        let mut h = Histogram::default();
        // 1 µs .. 10 ms, skewed: many small, few large.
        let mut samples: Vec<u64> = (1..=10_000u64).map(|i| 1_000 + i * i * 100).collect();
        for s in &samples {
            h.record(*s);
        }
        samples.sort_unstable();
        for p in [0.01, 0.5, 0.9, 0.99, 0.999] {
            let exact = samples[((samples.len() as f64 * p).ceil() as usize) - 1];
            let got = h.quantile(p);
            let err = got.abs_diff(exact) as f64 / exact as f64;
            assert!(err <= 1.0 / SUB as f64, "p{p}: {got} vs {exact}");
        }
        assert_eq!(h.quantile(1.0), *samples.last().unwrap());
        assert_eq!(h.count(), 10_000);
    }

    #[test]
    fn small_values_are_exact_and_empty_is_zero() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), 0);
        for v in [3, 3, 7, 200] {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 3);
        assert_eq!(h.quantile(0.75), 7);
        assert_eq!(h.quantile(0.99), 200);
    }
}
