//! Tiers: targets of equal priority, ordered afresh for each request by weight or by observed latency
//! (SPEC-2 section 12). The attempt loop then falls back through the rest of the tier before the next.

use std::sync::{Mutex, PoisonError};

/// Each target is tried first for at least this share of its tier's requests under `latency`, so its
/// latency stays known. A little over the 5% promised, so sampling noise never takes a target below it.
const MIN_SHARE: f64 = 0.06;

/// How a tier (targets of equal priority) is ordered for each request. Written `weighted` / `latency`
/// in the gateway's config, whose default is `weighted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Balance {
    /// Insertion order, the same for every request: a library manager's default, so code written for
    /// strict failover keeps its order. (The gateway gives each target its own priority by position
    /// unless told otherwise, and balances ties by weight.)
    #[default]
    #[serde(skip_deserializing)]
    Ordered,
    /// Random order weighted by each target's `weight`: over many requests, each target is first in
    /// proportion to its weight.
    Weighted,
    /// Power of two choices on peak-EWMA latency × (in-flight + 1) / weight: slow or busy targets get
    /// less traffic, and each still gets some.
    Latency,
}

/// What ordering needs to know about one member of a tier.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    /// The slot it stands for.
    pub(crate) slot: usize,
    pub(crate) weight: u32,
    /// Its peak-EWMA answer time in seconds, once known.
    pub(crate) latency: Option<f64>,
    pub(crate) in_flight: u32,
    /// False when a request would skip it (disabled, breaker open): `latency` orders such members last.
    pub(crate) callable: bool,
}

impl Member {
    /// What a call to it is expected to cost: lower is better. Unmeasured, it is free while idle (so it
    /// gets measured) and last while busy.
    fn cost(&self) -> f64 {
        match self.latency {
            None if self.in_flight == 0 => 0.0,
            None => f64::INFINITY,
            Some(latency) => latency * f64::from(self.in_flight + 1) / f64::from(self.weight.max(1)),
        }
    }
}

/// Orders tiers, with its own random numbers (seedable, so tests are deterministic).
#[derive(Debug)]
pub(crate) struct Balancer {
    balance: Balance,
    rng: Mutex<fastrand::Rng>,
}

impl Balancer {
    /// A balancer; `seed` fixes its random numbers.
    pub(crate) fn new(balance: Balance, seed: Option<u64>) -> Self {
        let rng = seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        Self { balance, rng: Mutex::new(rng) }
    }

    /// Whether ordering reads latencies and loads (only `latency` does).
    pub(crate) fn needs_load(&self) -> bool {
        self.balance == Balance::Latency
    }

    /// Whether ordering may change a tier's order (`ordered` keeps the configured order).
    pub(crate) fn reorders(&self) -> bool {
        self.balance != Balance::Ordered
    }

    /// Puts one tier in this request's order.
    pub(crate) fn order(&self, tier: &mut [Member]) {
        if tier.len() < 2 || !self.reorders() {
            return;
        }
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        match self.balance {
            Balance::Ordered => {}
            Balance::Weighted => weighted(&mut rng, tier),
            Balance::Latency => by_latency(&mut rng, tier),
        }
    }
}

/// Weighted sampling without replacement: each place goes to one of the rest in proportion to weight.
fn weighted(rng: &mut fastrand::Rng, tier: &mut [Member]) {
    for place in 0..tier.len() - 1 {
        let rest = &tier[place..];
        let total: u64 = rest.iter().map(|m| u64::from(m.weight)).sum();
        if total == 0 {
            return;
        }
        let mut ticket = rng.u64(0..total);
        let pick = rest
            .iter()
            .position(|m| {
                let weight = u64::from(m.weight);
                if ticket < weight {
                    return true;
                }
                ticket -= weight;
                false
            })
            .unwrap_or(0);
        tier.swap(place, place + pick);
    }
}

/// Power of two choices for the first place (or, for a small share, a uniform pick so no target
/// starves); the rest follow by cost. Members a request would skip go last and take no part in the draw:
/// never measured, they would cost nothing, win every draw they are in and hand those requests to
/// whichever member follows them.
fn by_latency(rng: &mut fastrand::Rng, tier: &mut [Member]) {
    tier.sort_by_key(|m| !m.callable);
    let n = tier.iter().take_while(|m| m.callable).count();
    if n < 2 {
        return;
    }
    let tier = &mut tier[..n];
    let explore = (MIN_SHARE * n as f64).min(1.0);
    let first = if rng.f64() < explore {
        rng.usize(0..n)
    } else {
        let a = rng.usize(0..n);
        let mut b = rng.usize(0..n - 1);
        if b >= a {
            b += 1;
        }
        if tier[b].cost() < tier[a].cost() { b } else { a }
    };
    tier.swap(0, first);
    tier[1..].sort_by(|x, y| x.cost().total_cmp(&y.cost()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(slot: usize, weight: u32, latency: Option<f64>) -> Member {
        Member { slot, weight, latency, in_flight: 0, callable: true }
    }

    fn firsts(balancer: &Balancer, tier: &[Member], rounds: usize) -> Vec<usize> {
        let mut counts = vec![0; tier.len()];
        for _ in 0..rounds {
            let mut t = tier.to_vec();
            balancer.order(&mut t);
            counts[t[0].slot] += 1;
        }
        counts
    }

    #[test]
    fn weighted_orders_are_permutations_in_proportion_to_weight() {
        let b = Balancer::new(Balance::Weighted, Some(7));
        let tier = [member(0, 1, None), member(1, 3, None)];
        let counts = firsts(&b, &tier, 4000);
        assert!((900..1100).contains(&counts[0]), "{counts:?}");
        let mut t = tier.to_vec();
        b.order(&mut t);
        let mut slots: Vec<usize> = t.iter().map(|m| m.slot).collect();
        slots.sort_unstable();
        assert_eq!(slots, [0, 1]);
    }

    #[test]
    fn latency_prefers_the_cheaper_and_starves_none() {
        let b = Balancer::new(Balance::Latency, Some(7));
        let tier = [member(0, 1, Some(0.1)), member(1, 1, Some(0.5))];
        let counts = firsts(&b, &tier, 10_000);
        assert!(counts[1] >= 500 && counts[1] < 1000, "{counts:?}");
        let busy = [Member { in_flight: 9, ..member(0, 1, Some(0.1)) }, member(1, 1, Some(0.5))];
        let counts = firsts(&b, &busy, 1000);
        assert!(counts[1] > counts[0], "ten in flight at 0.1 s cost more than none at 0.5 s: {counts:?}");
    }
}
