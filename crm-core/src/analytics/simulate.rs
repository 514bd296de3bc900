//! Seeded simulation from the models: customer histories for testing fits,
//! and whole purchase logs for benchmarks. The same seed gives the same
//! output on every machine (each customer draws from its own stream).
//!
//! ```
//! use crm_core::analytics::{BgNbd, simulate};
//!
//! let model = BgNbd::new(0.25, 4.0, 0.8, 2.5)?;
//! let a = simulate::bgnbd(&model, &[52.0; 100], 1)?;
//! let b = simulate::bgnbd(&model, &[52.0; 100], 1)?;
//! assert_eq!(a, b);
//! # Ok::<(), crm_core::Error>(())
//! ```

use chrono::{DateTime, Duration, Utc};
use fastrand::Rng;
use serde::{Deserialize, Serialize};

use super::random::{beta, exponential, gamma};
use super::summary::{TimeUnit, Transaction};
use super::{BgNbd, GammaGamma, check_frequency, check_non_negative, par};
use crate::error::{Error, Result};

/// Simulated histories, as the columns the models take.
///
/// ```
/// use crm_core::analytics::{BgNbd, simulate};
/// let h = simulate::bgnbd(&BgNbd::new(0.25, 4.0, 0.8, 2.5)?, &[10.0, 20.0], 3)?;
/// assert_eq!(h.t, [10.0, 20.0]);
/// assert!(h.recency.iter().zip(&h.t).all(|(r, t)| r <= t));
/// # Ok::<(), crm_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimulatedHistory {
    /// Repeat purchases.
    pub frequency: Vec<f64>,
    /// Time of the last purchase, from the first (continuous).
    pub recency: Vec<f64>,
    /// Time observed, as given.
    pub t: Vec<f64>,
}

/// Draws one BG/NBD history per entry of `t` (the time each customer is
/// observed after their first purchase): λ ~ Gamma(r, α), p ~ Beta(a, b),
/// repeat purchases a Poisson process of rate λ, dropout with probability
/// p after each repeat purchase.
///
/// ```
/// use crm_core::analytics::{BgNbd, simulate};
/// let h = simulate::bgnbd(&BgNbd::new(2.0, 1.0, 0.5, 50.0)?, &[100.0; 50], 9)?;
/// // Purchase rates around 2 per unit of time, rare dropout: many purchases.
/// assert!(h.frequency.iter().sum::<f64>() > 50.0 * 20.0);
/// # Ok::<(), crm_core::Error>(())
/// ```
pub fn bgnbd(model: &BgNbd, t: &[f64], seed: u64) -> Result<SimulatedHistory> {
    model.check()?;
    for (i, &v) in t.iter().enumerate() {
        check_non_negative(&format!("T[{i}]"), v)?;
    }
    let mut frequency = Vec::with_capacity(t.len());
    let mut recency = Vec::with_capacity(t.len());
    for (i, &big_t) in t.iter().enumerate() {
        let mut rng = stream(seed, i as u64);
        let lambda = gamma(&mut rng, model.r, model.alpha);
        let p = beta(&mut rng, model.a, model.b);
        let (mut x, mut last, mut now) = (0.0, 0.0, 0.0);
        loop {
            now += exponential(&mut rng, lambda);
            if now > big_t {
                break;
            }
            x += 1.0;
            last = now;
            if rng.f64() < p {
                break;
            }
        }
        frequency.push(x);
        recency.push(last);
    }
    Ok(SimulatedHistory {
        frequency,
        recency,
        t: t.to_vec(),
    })
}

/// Draws each customer's mean spend over their `frequency` repeat purchases
/// from the Gamma-Gamma model (ν ~ Gamma(q, γ), amounts ~ Gamma(p, ν));
/// 0 for customers without repeat purchases.
///
/// ```
/// use crm_core::analytics::{GammaGamma, simulate};
/// let m = simulate::gamma_gamma(&GammaGamma::new(6.0, 4.0, 15.0)?, &[0.0, 3.0], 5)?;
/// assert!(m[0] == 0.0 && m[1] > 0.0);
/// # Ok::<(), crm_core::Error>(())
/// ```
pub fn gamma_gamma(model: &GammaGamma, frequency: &[f64], seed: u64) -> Result<Vec<f64>> {
    GammaGamma::new(model.p, model.q, model.gamma)?;
    for (i, &x) in frequency.iter().enumerate() {
        check_frequency(i, x)?;
    }
    Ok(frequency
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if x == 0.0 {
                return 0.0;
            }
            let mut rng = stream(seed ^ 0x5bd1_e995, i as u64);
            let nu = gamma(&mut rng, model.q, model.gamma);
            gamma(&mut rng, model.p * x, nu) / x
        })
        .collect())
}

/// What [`purchases`] generates.
///
/// ```
/// use chrono::{Duration, Utc};
/// use crm_core::analytics::{TimeUnit, simulate::PurchaseSimulation};
/// let end = Utc::now();
/// let sim = PurchaseSimulation {
///     customers: 1000,
///     first_purchase_from: end - Duration::days(730),
///     observation_end: end,
///     unit: TimeUnit::Days,
///     seed: 42,
/// };
/// assert_eq!(sim.customers, 1000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseSimulation {
    /// How many customers (keys 0..customers).
    pub customers: u64,
    /// First purchases are spread uniformly from here…
    pub first_purchase_from: DateTime<Utc>,
    /// …to here, where the log ends.
    pub observation_end: DateTime<Utc>,
    /// The time unit of the models' parameters.
    pub unit: TimeUnit,
    /// The seed.
    pub seed: u64,
}

/// A purchase log from a BG/NBD purchase process and Gamma-Gamma amounts
/// (in minor units, at least 1), sorted by customer and time: each customer
/// makes a first purchase at a uniformly random time, then repeat
/// purchases as in [`bgnbd`] until dropping out or the end.
///
/// ```
/// use chrono::{Duration, Utc};
/// use crm_core::analytics::{BgNbd, GammaGamma, TimeUnit, simulate};
///
/// let end = Utc::now();
/// let log = simulate::purchases(
///     &BgNbd::new(0.5, 20.0, 0.8, 2.5)?,
///     &GammaGamma::new(6.0, 4.0, 1500.0)?,
///     &simulate::PurchaseSimulation {
///         customers: 100,
///         first_purchase_from: end - Duration::days(365),
///         observation_end: end,
///         unit: TimeUnit::Days,
///         seed: 1,
///     },
/// )?;
/// assert!(log.len() >= 100);
/// assert!(log.iter().all(|t| t.at <= end && t.amount_minor >= 1));
/// # Ok::<(), crm_core::Error>(())
/// ```
pub fn purchases(
    model: &BgNbd,
    spend: &GammaGamma,
    options: &PurchaseSimulation,
) -> Result<Vec<Transaction<u64>>> {
    model.check()?;
    GammaGamma::new(spend.p, spend.q, spend.gamma)?;
    if options.first_purchase_from > options.observation_end {
        return Err(Error::validation(
            "first_purchase_from",
            "must not be after observation_end",
        ));
    }
    let unit_seconds = match options.unit {
        TimeUnit::Days => 86_400.0,
        TimeUnit::Weeks => 7.0 * 86_400.0,
    };
    let span = (options.observation_end - options.first_purchase_from).num_seconds() as f64;
    let n = usize::try_from(options.customers)
        .map_err(|_| Error::validation("customers", "too many"))?;
    let parts = par::map_chunks(n, 1 << 14, |range| {
        let mut out = Vec::new();
        for i in range {
            let mut rng = stream(options.seed, i as u64);
            let first = rng.f64() * span;
            let start =
                options.first_purchase_from + Duration::milliseconds((first * 1000.0) as i64);
            let big_t = (span - first) / unit_seconds;
            let lambda = gamma(&mut rng, model.r, model.alpha);
            let p = beta(&mut rng, model.a, model.b);
            let nu = gamma(&mut rng, spend.q, spend.gamma);
            let amount = |rng: &mut Rng| (gamma(rng, spend.p, nu).round() as i64).max(1);
            out.push(Transaction {
                customer: i as u64,
                at: start,
                amount_minor: amount(&mut rng),
            });
            let mut now = 0.0;
            loop {
                now += exponential(&mut rng, lambda);
                if now > big_t {
                    break;
                }
                let at = start + Duration::milliseconds((now * unit_seconds * 1000.0) as i64);
                out.push(Transaction {
                    customer: i as u64,
                    at: at.min(options.observation_end),
                    amount_minor: amount(&mut rng),
                });
                if rng.f64() < p {
                    break;
                }
            }
        }
        out
    });
    Ok(parts.concat())
}

/// An independent generator for customer `i`.
fn stream(seed: u64, i: u64) -> Rng {
    Rng::with_seed(splitmix(
        seed ^ splitmix(i.wrapping_add(0x9e37_79b9_7f4a_7c15)),
    ))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
