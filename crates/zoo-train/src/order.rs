//! Data order and randomness per epoch: a function of the run's seed and the epoch alone, so
//! a resumed run draws what the uninterrupted one would have.

use zoo_data::rng::SplitMix64;

/// A seeded permutation of `0..n` (Fisher–Yates on SplitMix64).
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64(seed ^ 0x5DEE_CE66_D1CE_4E5B);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    order
}

/// The sample indices of (1-based) `epoch`, in training order: a seeded permutation of
/// `0..len`, shifted to `(epoch − 1)·len … epoch·len − 1` when every epoch draws new
/// samples (`data.fresh_samples`, procedural data).
pub fn epoch_order(len: usize, seed: u64, epoch: usize, fresh: bool) -> Vec<usize> {
    let offset = if fresh { (epoch - 1) * len } else { 0 };
    permutation(len, seed)
        .into_iter()
        .map(|i| i + offset)
        .collect()
}

/// The seed of everything random in `epoch` (data order, augmentations, dropout).
pub fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
        .wrapping_add(epoch as u64)
}

/// The seed of the device's random draws (dropout, drop-path) in 0-based batch `batch` of
/// an epoch seeded `epoch_seed`: a function of the step alone, so a run resumed mid-epoch
/// draws what the uninterrupted one would have.
pub fn step_seed(epoch_seed: u64, batch: usize) -> u64 {
    zoo_data::rng::SplitMix64(epoch_seed ^ (batch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_samples_move_each_epoch_to_unseen_indices() {
        let (first, second) = (epoch_order(6, 9, 1, true), epoch_order(6, 9, 2, true));
        assert_eq!(first, permutation(6, 9));
        let mut sorted = second.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (6..12).collect::<Vec<_>>());
        assert_eq!(epoch_order(6, 9, 2, false), permutation(6, 9));
    }
}
