//! Customer analytics as pure functions on slices: transaction summaries,
//! RFM scores and segments, the BG/NBD model of purchase counts, the
//! Gamma-Gamma model of spend, customer lifetime value, and retention
//! cohorts. Nothing here touches the database.
//!
//! The models follow the buy-till-you-die literature and the `lifetimes`
//! Python package in conventions and results:
//!
//! * [`summary`] turns purchases into per-customer `frequency` (repeat
//!   purchase periods), `recency` (first to last purchase), `t` (T: first
//!   purchase to end of observation) and `monetary_value`;
//! * [`BgNbd`] (Fader, Hardie & Lee 2005) is fitted by maximum likelihood
//!   and predicts purchases, P(alive) and the population's E[X(t)];
//! * [`GammaGamma`] (Fader, Hardie & Lee 2005; Fader & Hardie 2013) is
//!   fitted on the spend of repeat customers and gives expected order
//!   values and [`GammaGamma::clv`];
//! * [`rfm`] scores recency, frequency and monetary value by quintile and
//!   names the usual segments;
//! * [`cohorts::retention`] gives retention by acquisition month.
//!
//! Every model is also a plain function of arrays (`frequency`, `recency`,
//! `t`, `monetary_value`), so it can be fed from the store, from files or
//! from another language. Bad input (mismatched lengths, negative or
//! non-finite values, recency after T, fractional frequencies) is an
//! [`Error::Validation`] naming the offending element, e.g. `recency[3]`.
//! Model parameters are in the data's time unit (α is a rate per unit).
//!
//! **Numerics.** Likelihoods and P(alive) are computed in log-space and
//! E[Y(t)] through a transformed hypergeometric series (with a positive
//! series and a tanh-sinh quadrature where that would lose digits), so
//! frequencies in the millions neither overflow nor cancel. The test suite
//! (`tests/analytics.rs`) checks them against mpmath at 40 digits (agreement
//! to 13 significant digits or better), the fits against an independent
//! scipy maximum-likelihood fit and the published CDNOW estimates, and
//! parameter recovery on seeded simulations.
//!
//! **Speed.** Loops over customers run on all cores, in chunks fixed by the
//! input size, so results are bit-for-bit identical on every machine; the
//! likelihoods are evaluated on distinct histories with weights, with exact
//! first and second derivatives; predictions are computed once per distinct
//! (frequency, T).
//!
//! ```
//! use crm_core::analytics::{BgNbd, GammaGamma, ClvOptions, TimeUnit, simulate};
//!
//! // 2,000 customers observed for 52 weeks, from known parameters.
//! let truth = BgNbd::new(0.25, 4.0, 0.8, 2.5)?;
//! let t = vec![52.0; 2_000];
//! let history = simulate::bgnbd(&truth, &t, 7)?;
//! let model = BgNbd::fit(&history.frequency, &history.recency, &history.t)?;
//! assert!((model.r - 0.25).abs() < 4.0 * model.standard_errors.unwrap()[0]);
//!
//! let next_quarter = model.expected_purchases(13.0, &history.frequency, &history.recency, &history.t)?;
//! let alive = model.p_alive(&history.frequency, &history.recency, &history.t)?;
//! assert!(next_quarter.iter().all(|&e| e >= 0.0));
//! assert!(alive.iter().all(|&p| (0.0..=1.0).contains(&p)));
//!
//! let spend = GammaGamma::new(6.0, 4.0, 15.0)?;
//! let monetary = simulate::gamma_gamma(&spend, &history.frequency, 8)?;
//! let gg = GammaGamma::fit(&history.frequency, &monetary)?;
//! let clv = gg.clv(&model, &history.frequency, &history.recency, &history.t, &monetary,
//!                  &ClvOptions::new(TimeUnit::Weeks))?;
//! assert_eq!(clv.len(), 2_000);
//! # Ok::<(), crm_core::Error>(())
//! ```

mod bgnbd;
pub mod cohorts;
pub(crate) mod gamma_gamma;
mod optimize;
mod par;
mod random;
pub mod rfm;
pub mod simulate;
mod special;
pub(crate) mod summary;

pub use self::bgnbd::{BgNbd, FitOptions};
pub use self::gamma_gamma::{ClvOptions, GammaGamma};
pub use self::summary::{
    CustomerKey, Holdout, Summary, SummaryOptions, TimeUnit, Transaction, TransactionColumns,
    summary, summary_of_columns,
};

use crate::error::{Error, Result};

/// Errors unless `values` has `expected` elements.
pub(crate) fn check_len(
    field: &str,
    values: usize,
    reference: &str,
    expected: usize,
) -> Result<()> {
    if values == expected {
        Ok(())
    } else {
        Err(Error::validation(
            field,
            format!("has {values} values but {reference} has {expected}"),
        ))
    }
}

/// Errors unless `value` is finite and > 0 (a model parameter).
pub(crate) fn check_parameter(field: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::validation(
            field,
            "must be a finite number greater than 0",
        ))
    }
}

/// Errors unless `value` is finite and ≥ 0 (a time span or horizon).
pub(crate) fn check_non_negative(field: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::validation(
            field,
            "must be a finite number, at least 0",
        ))
    }
}

/// Checks a customer history given as columns: equal lengths; frequency a
/// whole number ≥ 0; recency and T finite and ≥ 0; recency ≤ T; recency 0
/// when frequency is 0.
pub(crate) fn check_history(frequency: &[f64], recency: &[f64], t: &[f64]) -> Result<()> {
    check_len("recency", recency.len(), "frequency", frequency.len())?;
    check_len("T", t.len(), "frequency", frequency.len())?;
    for (i, ((&x, &tx), &big_t)) in frequency.iter().zip(recency).zip(t).enumerate() {
        check_frequency(i, x)?;
        if !(tx.is_finite() && tx >= 0.0) {
            return Err(Error::validation(
                format!("recency[{i}]"),
                "must be a finite number, at least 0",
            ));
        }
        if !(big_t.is_finite() && big_t >= 0.0) {
            return Err(Error::validation(
                format!("T[{i}]"),
                "must be a finite number, at least 0",
            ));
        }
        if tx > big_t {
            return Err(Error::validation(
                format!("recency[{i}]"),
                "exceeds T (the last purchase cannot come after the end of observation)",
            ));
        }
        if x == 0.0 && tx != 0.0 {
            return Err(Error::validation(
                format!("recency[{i}]"),
                "must be 0 when frequency is 0",
            ));
        }
    }
    Ok(())
}

/// Errors unless `x` (element `i` of `frequency`) is a whole number ≥ 0.
pub(crate) fn check_frequency(i: usize, x: f64) -> Result<()> {
    if x.is_finite() && x >= 0.0 && x.fract() == 0.0 {
        Ok(())
    } else {
        Err(Error::validation(
            format!("frequency[{i}]"),
            "must be a whole number, at least 0",
        ))
    }
}

/// Checks fitting options: weights (as many as customers, finite, ≥ 0), the
/// penalizer (≥ 0) and the iteration limit (≥ 1).
pub(crate) fn check_fit_options(options: &FitOptions, customers: usize) -> Result<()> {
    check_non_negative("penalizer", options.penalizer)?;
    if options.max_iterations == 0 {
        return Err(Error::validation("max_iterations", "must be at least 1"));
    }
    if let Some(w) = options.weights {
        check_len("weights", w.len(), "frequency", customers)?;
        if let Some(i) = w.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(Error::validation(
                format!("weights[{i}]"),
                "must be a finite number, at least 0",
            ));
        }
    }
    Ok(())
}

/// The distinct values of a column (ascending) and, for each customer, the
/// index of its value among them (`u32::MAX` for customers left out). Whole
/// numbers below 2²² (as summaries produce) take a counting pass; anything
/// else a sort.
pub(crate) fn intern(n: usize, value: impl Fn(usize) -> Option<f64>) -> (Vec<f64>, Vec<u32>) {
    const SMALL: f64 = (1u32 << 22) as f64;
    let small = (0..n)
        .filter_map(&value)
        .all(|v| v.fract() == 0.0 && (0.0..SMALL).contains(&v));
    let mut index = vec![u32::MAX; n];
    if small {
        let top = (0..n).filter_map(&value).fold(0.0_f64, f64::max) as usize;
        let mut slot = vec![u32::MAX; top + 1];
        for v in (0..n).filter_map(&value) {
            slot[v as usize] = 0;
        }
        let mut values = Vec::new();
        for (v, s) in slot.iter_mut().enumerate() {
            if *s == 0 {
                *s = values.len() as u32;
                values.push(v as f64);
            }
        }
        for (i, ix) in index.iter_mut().enumerate() {
            if let Some(v) = value(i) {
                *ix = slot[v as usize];
            }
        }
        return (values, index);
    }
    let mut values: Vec<f64> = (0..n).filter_map(&value).collect();
    values.sort_unstable_by(f64::total_cmp);
    values.dedup();
    for (i, ix) in index.iter_mut().enumerate() {
        if let Some(v) = value(i) {
            *ix = values
                .binary_search_by(|x| x.total_cmp(&v))
                .expect("collected") as u32;
        }
    }
    (values, index)
}

/// Sorts `(key, payload)` pairs by the low `bits` bits of the keys, stably,
/// 11 bits a pass (a radix sort: three passes for keys of 33 bits). Large
/// inputs on several cores take the top digit first, into buckets, then
/// sort whole buckets on the cores, each with its share of the lower digits.
pub(crate) fn radix_sort<T: Copy + Default + Send>(items: &mut Vec<(u64, T)>, bits: u32) {
    let threads = par::threads();
    let mut buffer = vec![(0u64, T::default()); items.len()];
    if items.len() < 1 << 20 || threads < 2 || bits <= RADIX_DIGIT {
        if lsd_passes(items, &mut buffer, bits) % 2 == 1 {
            std::mem::swap(items, &mut buffer);
        }
        return;
    }
    // The top digit, stably, into buckets of `buffer`.
    let shift = bits - RADIX_DIGIT;
    let top = |k: u64| ((k >> shift) & RADIX_MASK) as usize;
    let mut start = vec![0usize; 1 << RADIX_DIGIT];
    for &(k, _) in items.iter() {
        start[top(k)] += 1;
    }
    let sizes = start.clone();
    let mut sum = 0;
    for s in start.iter_mut() {
        let count = *s;
        *s = sum;
        sum += count;
    }
    for &item in items.iter() {
        let digit = top(item.0);
        buffer[start[digit]] = item;
        start[digit] += 1;
    }
    // Whole buckets to each thread, about as many items each, each bucket
    // sorted on its own (small enough for the cache); `items` is now the
    // scratch space.
    let n = items.len();
    let mut groups: Vec<Vec<usize>> = vec![Vec::new()];
    let mut filled = 0;
    for &size in &sizes {
        if filled * threads >= n * groups.len() {
            groups.push(Vec::new());
        }
        if let Some(group) = groups.last_mut() {
            group.push(size);
        }
        filled += size;
    }
    let passes = {
        let mut data: &mut [(u64, T)] = &mut buffer;
        let mut scratch: &mut [(u64, T)] = items;
        let mut pieces = Vec::new();
        for group in groups {
            let len: usize = group.iter().sum();
            let (d, rest) = std::mem::take(&mut data).split_at_mut(len);
            let (s, rest_s) = std::mem::take(&mut scratch).split_at_mut(len);
            pieces.push((d, s, group));
            data = rest;
            scratch = rest_s;
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = pieces
                .into_iter()
                .map(|(mut d, mut s, group)| {
                    scope.spawn(move || {
                        let mut passes = 0;
                        for size in group {
                            let (bucket, rest) = std::mem::take(&mut d).split_at_mut(size);
                            let (bucket_s, rest_s) = std::mem::take(&mut s).split_at_mut(size);
                            passes = lsd_passes(bucket, bucket_s, shift);
                            (d, s) = (rest, rest_s);
                        }
                        passes
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a sorting thread panicked"))
                .max()
                .unwrap_or(0)
        })
    };
    // Every piece made the same number of passes: the result is in
    // `buffer` after an even number, in `items` after an odd one.
    if passes % 2 == 0 {
        std::mem::swap(items, &mut buffer);
    }
}

const RADIX_DIGIT: u32 = 11;
const RADIX_MASK: u64 = (1 << RADIX_DIGIT) - 1;

/// Sorts `data` by the low `bits` bits of the keys, stably, ping-ponging
/// with `scratch` (of the same length); returns the number of passes: the
/// result is in `data` after an even number, in `scratch` after an odd one.
fn lsd_passes<T: Copy>(data: &mut [(u64, T)], scratch: &mut [(u64, T)], bits: u32) -> u32 {
    let (mut from, mut to) = (data, scratch);
    let mut shift = 0;
    let mut passes = 0;
    while shift < bits {
        let mut start = vec![0usize; 1 << RADIX_DIGIT];
        for &(k, _) in from.iter() {
            start[((k >> shift) & RADIX_MASK) as usize] += 1;
        }
        let mut sum = 0;
        for s in start.iter_mut() {
            let count = *s;
            *s = sum;
            sum += count;
        }
        for &item in from.iter() {
            let digit = ((item.0 >> shift) & RADIX_MASK) as usize;
            to[start[digit]] = item;
            start[digit] += 1;
        }
        std::mem::swap(&mut from, &mut to);
        shift += RADIX_DIGIT;
        passes += 1;
    }
    passes
}

/// The number of bits needed for indices below `n`.
pub(crate) fn index_bits(n: usize) -> u32 {
    usize::BITS - n.saturating_sub(1).leading_zeros()
}

/// `f(frequency[i], t[i])` for every customer, evaluated once per distinct
/// (frequency, T) pair: summaries of many customers have far fewer pairs
/// than customers, and the expectations that depend on them are the
/// expensive part of predictions.
pub(crate) fn by_pair(
    frequency: &[f64],
    t: &[f64],
    f: impl Fn(f64, f64) -> f64 + Sync,
) -> Vec<f64> {
    let n = frequency.len();
    let mut out = vec![0.0; n];
    if n < 1 << 12 {
        for (i, v) in out.iter_mut().enumerate() {
            *v = f(frequency[i], t[i]);
        }
        return out;
    }
    let (xs, ix) = intern(n, |i| Some(frequency[i]));
    let (ts, it) = intern(n, |i| Some(t[i]));
    let wt = index_bits(ts.len());
    let mut keys: Vec<(u64, u32)> = (0..n)
        .map(|i| ((u64::from(ix[i]) << wt) | u64::from(it[i]), i as u32))
        .collect();
    radix_sort(&mut keys, index_bits(xs.len()) + wt);
    let mut groups = Vec::new();
    let mut start = 0;
    for k in 1..=n {
        if k == n || keys[k].0 != keys[start].0 {
            groups.push(start..k);
            start = k;
        }
    }
    let values = par::map_chunks(groups.len(), 256, |range| {
        range
            .map(|g| {
                let key = keys[groups[g].start].0;
                f(
                    xs[(key >> wt) as usize],
                    ts[(key & ((1 << wt) - 1)) as usize],
                )
            })
            .collect::<Vec<f64>>()
    })
    .concat();
    for (group, value) in groups.iter().zip(values) {
        for &(_, i) in &keys[group.clone()] {
            out[i as usize] = value;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_pair_equals_the_direct_evaluation() {
        let mut rng = fastrand::Rng::with_seed(4);
        let n = 20_000;
        let x: Vec<f64> = (0..n).map(|_| rng.u32(0..30) as f64).collect();
        let t: Vec<f64> = (0..n)
            .map(|_| {
                if rng.bool() {
                    rng.u32(0..400) as f64
                } else {
                    rng.f64() * 400.0
                }
            })
            .collect();
        let f = |x: f64, t: f64| x * 1000.0 + t;
        let got = by_pair(&x, &t, f);
        assert!(got.iter().enumerate().all(|(i, &v)| v == f(x[i], t[i])));
        for (len, bits) in [(n, 40), (3 << 19, 31), (1 << 20, 12)] {
            let mut items: Vec<(u64, u32)> = (0..len)
                .map(|i| (rng.u64(0..1 << bits), i as u32))
                .collect();
            let mut want = items.clone();
            want.sort_by_key(|p| p.0); // stable
            radix_sort(&mut items, bits);
            assert_eq!(items, want, "{len} items of {bits} bits");
        }
    }

    #[test]
    fn history_checks_name_the_element() {
        let field = |r: Result<()>| match r {
            Err(Error::Validation { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(check_history(&[1.0], &[1.0, 2.0], &[3.0])), "recency");
        assert_eq!(field(check_history(&[1.0], &[1.0], &[3.0, 1.0])), "T");
        assert_eq!(
            field(check_history(&[1.0, 1.5], &[1.0, 1.0], &[3.0, 3.0])),
            "frequency[1]"
        );
        assert_eq!(
            field(check_history(&[-1.0], &[0.0], &[3.0])),
            "frequency[0]"
        );
        assert_eq!(
            field(check_history(&[f64::NAN], &[0.0], &[3.0])),
            "frequency[0]"
        );
        assert_eq!(field(check_history(&[1.0], &[4.0], &[3.0])), "recency[0]");
        assert_eq!(field(check_history(&[0.0], &[1.0], &[3.0])), "recency[0]");
        assert_eq!(field(check_history(&[1.0], &[-1.0], &[3.0])), "recency[0]");
        assert_eq!(
            field(check_history(&[1.0], &[1.0], &[f64::INFINITY])),
            "T[0]"
        );
        assert!(check_history(&[0.0, 3.0], &[0.0, 3.0], &[0.0, 3.0]).is_ok());
        let fit = |weights, penalizer, max_iterations| FitOptions {
            weights,
            penalizer,
            max_iterations,
        };
        let w: &[f64] = &[1.0, -1.0];
        assert_eq!(
            field(check_fit_options(&fit(Some(w), 0.0, 9), 2)),
            "weights[1]"
        );
        assert_eq!(
            field(check_fit_options(&fit(None, -1.0, 9), 2)),
            "penalizer"
        );
        assert_eq!(
            field(check_fit_options(&fit(None, 0.0, 0), 2)),
            "max_iterations"
        );
        assert_eq!(field(check_parameter("alpha", 0.0)), "alpha");
        assert_eq!(field(check_non_negative("t", f64::NAN)), "t");
    }
}
