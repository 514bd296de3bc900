//! The BG/NBD model of repeat purchases (Fader, Hardie & Lee 2005,
//! "Counting Your Customers the Easy Way", Marketing Science 24(2)).
//!
//! While alive, a customer buys at rate λ ~ Gamma(r, α) (a Poisson process);
//! after each repeat purchase they drop out for good with probability
//! p ~ Beta(a, b). A customer's history is (x, tₓ, T): repeat purchases,
//! time of the last one, and time observed, all counted from the first
//! purchase.

use serde::{Deserialize, Serialize};

use super::optimize::{self, inverse_spd};
use super::special::{
    Sum, digamma, expected_if_alive, ln_1p_exp, ln_gamma, ln_gamma_ratio, logistic_neg, trigamma,
};
use super::{
    by_pair, check_fit_options, check_history, check_non_negative, check_parameter, index_bits,
    intern, par, radix_sort,
};
use crate::error::{Error, Result};

/// Customers per chunk of parallel work.
const CHUNK: usize = 8192;

/// A BG/NBD model (Fader, Hardie & Lee 2005, "Counting Your Customers the
/// Easy Way", Marketing Science 24(2)): the population's parameters, and,
/// when fitted, how well they are determined.
///
/// While alive, a customer buys at rate λ ~ Gamma(r, α) (a Poisson
/// process); after each repeat purchase they drop out for good with
/// probability p ~ Beta(a, b). A customer's history is (x, tₓ, T) =
/// (`frequency`, `recency`, `t`): repeat purchases, time of the last one and
/// time observed, counted from the first purchase in one time unit.
///
/// Fitting maximizes the log-likelihood (eq. (6) of the paper, in
/// log-space) over the log-parameters with BFGS and Newton steps, on the
/// customers condensed into distinct histories with weights (and, for many
/// histories, from a warm start on a subsample); the standard errors come
/// from the Hessian at the optimum.
///
/// ```
/// use crm_core::analytics::BgNbd;
///
/// // Three customers: no repeat purchase; 10 repeats, the last just now;
/// // 10 repeats, the last long ago. Time in weeks.
/// let (frequency, recency, t) = ([0.0, 10.0, 10.0], [0.0, 30.0, 5.0], [30.0, 30.0, 30.0]);
/// let model = BgNbd::new(0.243, 4.414, 0.793, 2.426)?;
/// let alive = model.p_alive(&frequency, &recency, &t)?;
/// assert_eq!(alive[0], 1.0); // no repeat purchase: no chance yet to drop out
/// assert!(alive[1] > 0.9 && alive[2] < 0.2);
/// let next_month = model.expected_purchases(4.0, &frequency, &recency, &t)?;
/// assert!(next_month[1] > next_month[2]);
/// # Ok::<(), crm_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    /// Shape of the Gamma distribution of purchase rates.
    pub r: f64,
    /// Rate (inverse scale) of the Gamma distribution of purchase rates, in
    /// the data's time unit.
    pub alpha: f64,
    /// First shape of the Beta distribution of dropout probabilities.
    pub a: f64,
    /// Second shape of the Beta distribution of dropout probabilities.
    pub b: f64,
    /// Standard errors of (r, α, a, b), from the inverse Hessian of the
    /// log-likelihood at the estimate (the delta method through the
    /// log-parameters, as `lifetimes` reports them). `None` when not fitted.
    pub standard_errors: Option<[f64; 4]>,
    /// The covariance matrix of (r, α, a, b) these come from.
    pub covariance: Option<[[f64; 4]; 4]>,
    /// The log-likelihood of the fitted data at the estimate: a sum over
    /// customers (weighted), without the penalty. `None` when not fitted.
    pub log_likelihood: Option<f64>,
    /// The (weighted) number of customers fitted; 0 when not fitted.
    pub customers: f64,
    /// Optimizer iterations the fit took.
    pub iterations: u32,
}

/// Options for [`BgNbd::fit_with`] and [`crate::analytics::GammaGamma::fit_with`].
///
/// ```
/// use crm_core::analytics::{BgNbd, FitOptions, simulate};
///
/// // Fader & Hardie condense customers into distinct histories with counts;
/// // here every row stands for two customers.
/// let history = simulate::bgnbd(&BgNbd::new(0.5, 10.0, 1.0, 3.0)?, &[40.0; 1000], 2)?;
/// let weights = [2.0; 1000];
/// let options = FitOptions { weights: Some(&weights), ..FitOptions::default() };
/// let model = BgNbd::fit_with(&history.frequency, &history.recency, &history.t, &options)?;
/// assert_eq!(model.customers, 2000.0);
/// # Ok::<(), crm_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitOptions<'a> {
    /// How many customers each row stands for (default: one each).
    pub weights: Option<&'a [f64]>,
    /// L2 penalty on the parameters, added to the mean negative
    /// log-likelihood, as `lifetimes`' `penalizer_coef`: `penalizer·(r² +
    /// (α/T_max)² + a² + b²)` for the BG/NBD (α in units of the longest T,
    /// as `lifetimes` scales time while fitting), `penalizer·(p² + q² + γ²)`
    /// for the Gamma-Gamma; 0 for plain maximum likelihood.
    pub penalizer: f64,
    /// The most optimizer iterations.
    pub max_iterations: u32,
}

impl Default for FitOptions<'_> {
    fn default() -> Self {
        FitOptions {
            weights: None,
            penalizer: 0.0,
            max_iterations: 500,
        }
    }
}

impl BgNbd {
    /// A model with known parameters (not fitted), each finite and > 0.
    ///
    /// ```
    /// use crm_core::analytics::BgNbd;
    /// let model = BgNbd::new(0.243, 4.414, 0.793, 2.426)?;
    /// assert!(model.log_likelihood.is_none());
    /// assert!(BgNbd::new(0.0, 1.0, 1.0, 1.0).is_err());
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn new(r: f64, alpha: f64, a: f64, b: f64) -> Result<Self> {
        let model = BgNbd {
            r,
            alpha,
            a,
            b,
            standard_errors: None,
            covariance: None,
            log_likelihood: None,
            customers: 0.0,
            iterations: 0,
        };
        model.check()?;
        Ok(model)
    }

    /// Fits the model by maximum likelihood to customers' histories:
    /// `frequency` (repeat purchases, whole numbers), `recency` (time from
    /// the first to the last purchase, 0 without repeats) and `t` (time from
    /// the first purchase to the end of observation).
    ///
    /// Errors with [`Error::Validation`] on bad input (see the
    /// [module](crate::analytics)), without any repeat purchase, or when the
    /// likelihood has no maximum at finite parameters.
    ///
    /// ```
    /// use crm_core::analytics::{BgNbd, simulate};
    ///
    /// let truth = BgNbd::new(0.5, 10.0, 1.0, 3.0)?;
    /// let history = simulate::bgnbd(&truth, &vec![40.0; 3000], 1)?;
    /// let model = BgNbd::fit(&history.frequency, &history.recency, &history.t)?;
    /// let se = model.standard_errors.unwrap();
    /// assert!((model.r - 0.5).abs() < 4.0 * se[0]);
    /// assert!(model.log_likelihood.unwrap() < 0.0);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn fit(frequency: &[f64], recency: &[f64], t: &[f64]) -> Result<Self> {
        Self::fit_with(frequency, recency, t, &FitOptions::default())
    }

    /// [`BgNbd::fit`] with weights, a penalty or an iteration limit.
    ///
    /// ```
    /// use crm_core::analytics::{BgNbd, FitOptions};
    /// let options = FitOptions { penalizer: 0.01, ..FitOptions::default() };
    /// let model = BgNbd::fit_with(&[0.0, 2.0, 1.0], &[0.0, 8.0, 2.0], &[10.0, 10.0, 9.0], &options)?;
    /// assert!(model.r > 0.0);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn fit_with(
        frequency: &[f64],
        recency: &[f64],
        t: &[f64],
        options: &FitOptions,
    ) -> Result<Self> {
        check_history(frequency, recency, t)?;
        check_fit_options(options, frequency.len())?;
        let data = Data::new(frequency, recency, t, options.weights);
        if data.total <= 0.0 {
            return Err(Error::validation("frequency", "no customers to fit"));
        }
        if data.rows.is_empty() {
            return Err(Error::validation(
                "frequency",
                "no customer has a repeat purchase, so the dropout process cannot be estimated",
            ));
        }
        // On many distinct histories, a warm start from a subsample of about
        // 20,000 customers.
        let sample = (data.rows.len() > 50_000).then(|| {
            let stride = frequency.len().div_ceil(20_000);
            let pick = |v: &[f64]| v.iter().step_by(stride).copied().collect::<Vec<f64>>();
            let weights = options.weights.map(pick);
            Data::new(
                &pick(frequency),
                &pick(recency),
                &pick(t),
                weights.as_deref(),
            )
        });
        let scale = if data.max_t > 0.0 { data.max_t } else { 1.0 };
        // As `lifetimes`, which measures time in units of the longest T while
        // fitting, the penalty sees α/T_max.
        let pen = options.penalizer;
        let penalty = [pen, pen / (scale * scale), pen, pen];
        let mut full = Objective {
            data: &data,
            penalty,
        };
        let mut rough = sample.as_ref().map(|data| Objective { data, penalty });
        // The first start usually suffices; the others are a net for awkward
        // data.
        let starts = [
            [1.1, 1.1 * scale, 1.1, 1.1],
            [0.5, 0.1 * scale, 0.5, 2.0],
            [2.0, 0.01 * scale, 2.0, 0.5],
        ]
        .map(|p| p.map(f64::ln));
        let found = optimize::minimize_from(
            &mut full,
            rough.as_mut().map(|f| f as &mut dyn optimize::Objective<4>),
            &starts,
            options.max_iterations,
            30.0,
        );
        let Some(best) = found else {
            return Err(Error::validation(
                "frequency",
                format!(
                    "the BG/NBD likelihood reached no maximum at finite parameters in {} \
                     iterations: these customers don't determine the parameters (as when \
                     all histories are alike); a penalizer (e.g. 0.001 to 0.1) or more \
                     iterations may help",
                    options.max_iterations
                ),
            ));
        };
        let p = best.x.map(f64::exp);
        let (ll, _, _) = data.derivatives(&p, true, false);
        let (standard_errors, covariance) = match best.hessian.as_ref().and_then(inverse_spd) {
            Some(inv) => {
                let cov: [[f64; 4]; 4] = std::array::from_fn(|i| {
                    std::array::from_fn(|j| p[i] * p[j] * inv[i][j] / data.total)
                });
                (Some(std::array::from_fn(|i| cov[i][i].sqrt())), Some(cov))
            }
            None => (None, None),
        };
        Ok(BgNbd {
            r: p[0],
            alpha: p[1],
            a: p[2],
            b: p[3],
            standard_errors,
            covariance,
            log_likelihood: Some(ll),
            customers: data.total,
            iterations: best.iterations,
        })
    }

    /// Each customer's log-likelihood under this model (eq. (6) of the
    /// paper, in log-space); their sum is what [`BgNbd::fit`] maximizes.
    ///
    /// ```
    /// use crm_core::analytics::BgNbd;
    /// let model = BgNbd::new(0.243, 4.414, 0.793, 2.426)?;
    /// let ll = model.log_likelihoods(&[0.0, 2.0], &[0.0, 30.43], &[38.86, 38.86])?;
    /// assert!(ll.iter().all(|&l| l < 0.0));
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn log_likelihoods(
        &self,
        frequency: &[f64],
        recency: &[f64],
        t: &[f64],
    ) -> Result<Vec<f64>> {
        self.check()?;
        check_history(frequency, recency, t)?;
        Ok(self.map(frequency, |i| {
            ln_likelihood(
                self.r,
                self.alpha,
                self.a,
                self.b,
                frequency[i],
                recency[i],
                t[i],
            )
        }))
    }

    /// P(alive at T | x, tₓ, T) for each customer: 1 for customers without
    /// repeat purchases (in the BG/NBD, dropping out happens only right
    /// after a repeat purchase), else
    /// `1 / (1 + a/(b+x−1) · ((α+T)/(α+tₓ))^(r+x))`, computed in log-space.
    ///
    /// ```
    /// use crm_core::analytics::BgNbd;
    /// let model = BgNbd::new(0.243, 4.414, 0.793, 2.426)?;
    /// let p = model.p_alive(&[0.0, 5.0, 5.0], &[0.0, 20.0, 20.0], &[20.0, 20.0, 40.0])?;
    /// assert_eq!(p[0], 1.0);
    /// assert!(p[1] > p[2]);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn p_alive(&self, frequency: &[f64], recency: &[f64], t: &[f64]) -> Result<Vec<f64>> {
        self.check()?;
        check_history(frequency, recency, t)?;
        Ok(self.map(frequency, |i| {
            self.p_alive_one(frequency[i], recency[i], t[i])
        }))
    }

    /// E[Y(horizon) | x, tₓ, T]: each customer's expected number of
    /// purchases in the next `horizon` time units (eq. (10) of the paper),
    /// with the hypergeometric function transformed so that it neither
    /// overflows for large frequencies nor loses precision at a = 1.
    ///
    /// ```
    /// use crm_core::analytics::BgNbd;
    /// let model = BgNbd::new(0.243, 4.414, 0.793, 2.426)?;
    /// let (x, tx, t) = ([2.0], [30.43], [38.86]);
    /// let week = model.expected_purchases(1.0, &x, &tx, &t)?[0];
    /// let year = model.expected_purchases(52.0, &x, &tx, &t)?[0];
    /// assert!(0.0 < week && week < year);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn expected_purchases(
        &self,
        horizon: f64,
        frequency: &[f64],
        recency: &[f64],
        t: &[f64],
    ) -> Result<Vec<f64>> {
        self.check()?;
        check_non_negative("t", horizon)?;
        check_history(frequency, recency, t)?;
        // The expectation while alive depends on (x, T) only: once per pair.
        let mut out = by_pair(frequency, t, |x, big_t| {
            self.expected_if_alive(horizon, x, big_t)
        });
        par::fill_chunks(&mut out, CHUNK, |offset, part| {
            for (k, v) in part.iter_mut().enumerate() {
                let i = offset + k;
                *v *= self.p_alive_one(frequency[i], recency[i], t[i]);
            }
        });
        Ok(out)
    }

    /// E[X(horizon)]: the expected number of repeat purchases in `horizon`
    /// time units after the first purchase of a customer drawn at random
    /// from the population (eq. (9) of the paper).
    ///
    /// ```
    /// use crm_core::analytics::BgNbd;
    /// let model = BgNbd::new(0.243, 4.414, 0.793, 2.426)?;
    /// let year = model.expected_purchases_unconditional(52.0)?;
    /// assert!(year > model.expected_purchases_unconditional(26.0)?);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn expected_purchases_unconditional(&self, horizon: f64) -> Result<f64> {
        self.check()?;
        check_non_negative("t", horizon)?;
        Ok(expected_if_alive(
            self.r, self.alpha, self.a, self.b, 0.0, 0.0, horizon,
        ))
    }

    /// Errors unless every parameter is finite and > 0.
    pub(crate) fn check(&self) -> Result<()> {
        check_parameter("r", self.r)?;
        check_parameter("alpha", self.alpha)?;
        check_parameter("a", self.a)?;
        check_parameter("b", self.b)
    }

    /// `f(i)` for every customer, in parallel chunks.
    pub(crate) fn map(&self, customers: &[f64], f: impl Fn(usize) -> f64 + Sync) -> Vec<f64> {
        let mut out = vec![0.0; customers.len()];
        par::fill_chunks(&mut out, CHUNK, |offset, part| {
            for (k, v) in part.iter_mut().enumerate() {
                *v = f(offset + k);
            }
        });
        out
    }

    /// P(alive) of one (valid) history.
    pub(crate) fn p_alive_one(&self, x: f64, tx: f64, big_t: f64) -> f64 {
        if x == 0.0 {
            return 1.0;
        }
        let d = (self.a / (self.b + x - 1.0)).ln()
            + (self.r + x) * ((big_t - tx) / (self.alpha + tx)).ln_1p();
        logistic_neg(d)
    }

    /// E[Y(horizon) | x, T, alive at T].
    pub(crate) fn expected_if_alive(&self, horizon: f64, x: f64, big_t: f64) -> f64 {
        expected_if_alive(self.r, self.alpha, self.a, self.b, x, big_t, horizon)
    }
}

/// The function the fit minimizes, of the log-parameters θ = ln(r, α, a, b):
/// the mean negative log-likelihood plus the penalty `Σ cᵢ·pᵢ²`.
struct Objective<'a> {
    data: &'a Data,
    /// The penalty's coefficient for each parameter.
    penalty: [f64; 4],
}

impl Objective<'_> {
    fn parameters(theta: &[f64; 4]) -> Option<[f64; 4]> {
        let p = theta.map(f64::exp);
        p.iter().all(|v| v.is_finite() && *v > 0.0).then_some(p)
    }
}

impl optimize::Objective<4> for Objective<'_> {
    fn evaluate(&mut self, theta: &[f64; 4], grad: &mut [f64; 4], value: bool) -> f64 {
        let Some(p) = Self::parameters(theta) else {
            return f64::NAN;
        };
        let (ll, g, _) = self.data.derivatives(&p, value, false);
        let total = self.data.total;
        for i in 0..4 {
            grad[i] = p[i] * (-g[i] / total + 2.0 * self.penalty[i] * p[i]);
        }
        -ll / total
            + p.iter()
                .zip(&self.penalty)
                .map(|(v, c)| c * v * v)
                .sum::<f64>()
    }

    fn hessian(&mut self, theta: &[f64; 4]) -> Option<[[f64; 4]; 4]> {
        let p = Self::parameters(theta)?;
        let (_, g, h) = self.data.derivatives(&p, false, true);
        Some(log_space_hessian(
            &p,
            &g,
            &h?,
            self.data.total,
            &self.penalty,
        ))
    }
}

/// The Hessian in θ = ln p of `−LL/W + Σ cᵢ·pᵢ²`, from the gradient
/// `g` and Hessian `h` of LL in p: `pᵢ pⱼ ∂²/∂pᵢ∂pⱼ + δᵢⱼ pᵢ ∂/∂pᵢ`.
pub(crate) fn log_space_hessian<const N: usize>(
    p: &[f64; N],
    g: &[f64; N],
    h: &[[f64; N]; N],
    total: f64,
    penalty: &[f64; N],
) -> [[f64; N]; N] {
    std::array::from_fn(|i| {
        std::array::from_fn(|j| {
            let second = -h[i][j] / total + if i == j { 2.0 * penalty[i] } else { 0.0 };
            let first = if i == j {
                -g[i] / total + 2.0 * penalty[i] * p[i]
            } else {
                0.0
            };
            p[i] * p[j] * second + if i == j { p[i] * first } else { 0.0 }
        })
    })
}

/// One customer's log-likelihood, written out from the paper's eq. (6):
/// `A₁ + A₂ + ln(e^A₃ + δ(x>0)·e^A₄)`.
pub(crate) fn ln_likelihood(
    r: f64,
    alpha: f64,
    a: f64,
    b: f64,
    x: f64,
    tx: f64,
    big_t: f64,
) -> f64 {
    let a1 = ln_gamma_ratio(r, x) + r * alpha.ln();
    let a2 = ln_gamma(a + b) - ln_gamma(b) - ln_gamma_ratio(b + x, a);
    let a3 = -(r + x) * (alpha + big_t).ln();
    if x == 0.0 {
        return a1 + a2 + a3;
    }
    let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + tx).ln();
    a1 + a2 + a3 + ln_1p_exp(a4 - a3)
}

/// The fitting data, condensed: the likelihood needs per-frequency terms
/// (the log-gamma functions), per-T and per-recency logarithms, and a
/// mixture term per distinct history (x, tₓ, T) with x > 0, so it is
/// evaluated on tables of distinct values and distinct histories with their
/// weights, as Fader and Hardie do.
struct Data {
    /// Distinct frequencies, and the weight of customers with each.
    xs: Vec<f64>,
    weight_x: Vec<f64>,
    /// Distinct T, and the weight of customers without repeat purchases
    /// with each.
    ts: Vec<f64>,
    weight_zero: Vec<f64>,
    /// Distinct recencies of customers with repeat purchases.
    txs: Vec<f64>,
    /// Distinct histories with x > 0 and their weights.
    rows: Vec<Row>,
    total: f64,
    max_t: f64,
}

#[derive(Clone, Copy)]
struct Row {
    x: u32,
    t: u32,
    tx: u32,
    weight: f64,
}

/// Per-frequency factors of the mixture term.
struct XTerm {
    rx: f64,
    k4: f64,
    inv_bx1: f64,
}

/// Merges rows with the same (x, T, tₓ), summing their weights; the rows
/// come out sorted by (x, T, tₓ), which also makes the likelihood's table
/// lookups local. The three indices are packed into one integer key and
/// sorted by an LSD radix sort (three passes for a million customers with
/// daily summaries).
fn merge_rows(rows: Vec<Row>, distinct: [usize; 3]) -> Vec<Row> {
    let [wx, wt, wtx] = distinct.map(index_bits);
    if wx + wt + wtx > 64 {
        let mut rows = rows;
        rows.sort_unstable_by_key(|r| (r.x, r.t, r.tx));
        rows.dedup_by(|next, kept| {
            let same = (next.x, next.t, next.tx) == (kept.x, kept.t, kept.tx);
            if same {
                kept.weight += next.weight;
            }
            same
        });
        return rows;
    }
    let mut keyed: Vec<(u64, f64)> = rows
        .iter()
        .map(|r| {
            (
                (u64::from(r.x) << (wt + wtx)) | (u64::from(r.t) << wtx) | u64::from(r.tx),
                r.weight,
            )
        })
        .collect();
    drop(rows);
    radix_sort(&mut keyed, wx + wt + wtx);
    let mut out: Vec<Row> = Vec::with_capacity(keyed.len());
    let mask = |w: u32| (1u64 << w) - 1;
    for (key, weight) in keyed {
        let row = Row {
            x: (key >> (wt + wtx)) as u32,
            t: ((key >> wtx) & mask(wt)) as u32,
            tx: (key & mask(wtx)) as u32,
            weight,
        };
        match out.last_mut() {
            Some(last) if (last.x, last.t, last.tx) == (row.x, row.t, row.tx) => {
                last.weight += weight
            }
            _ => out.push(row),
        }
    }
    out
}

impl Data {
    fn new(frequency: &[f64], recency: &[f64], t: &[f64], weights: Option<&[f64]>) -> Data {
        let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
        let n = frequency.len();
        let used = |i: usize| weight(i) > 0.0;
        let (xs, ix) = intern(n, |i| used(i).then(|| frequency[i]));
        let (ts, it) = intern(n, |i| used(i).then(|| t[i]));
        let (txs, itx) = intern(n, |i| (used(i) && frequency[i] > 0.0).then(|| recency[i]));
        let mut weight_x = vec![0.0; xs.len()];
        let mut weight_zero = vec![0.0; ts.len()];
        let mut rows = Vec::new();
        let mut total = Sum::default();
        for i in (0..n).filter(|&i| used(i)) {
            let w = weight(i);
            total.add(w);
            weight_x[ix[i] as usize] += w;
            if frequency[i] == 0.0 {
                weight_zero[it[i] as usize] += w;
            } else {
                rows.push(Row {
                    x: ix[i],
                    t: it[i],
                    tx: itx[i],
                    weight: w,
                });
            }
        }
        let rows = merge_rows(rows, [xs.len(), ts.len(), txs.len()]);
        let max_t = ts.last().copied().unwrap_or(0.0);
        Data {
            xs,
            weight_x,
            ts,
            weight_zero,
            txs,
            rows,
            total: total.value(),
            max_t,
        }
    }

    /// The total log-likelihood at p = (r, α, a, b) (0 unless `value`), its
    /// gradient in p, and (with `second`) its Hessian in p.
    ///
    /// Per customer, LL = A₁₂(x) + ln(e^A₃ + e^A₄) (the second term only
    /// with x > 0), A₃ = −(r+x)·ln(α+T), A₄ = ln a − ln(b+x−1) −
    /// (r+x)·ln(α+tₓ). With s = e^A₄ / (e^A₃ + e^A₄), the gradient of the
    /// mixture term is (1−s)∇A₃ + s∇A₄ and its Hessian (1−s)∇²A₃ + s∇²A₄ +
    /// s(1−s)(∇A₄−∇A₃)(∇A₄−∇A₃)ᵀ.
    fn derivatives(
        &self,
        p: &[f64; 4],
        value: bool,
        second: bool,
    ) -> (f64, [f64; 4], Option<[[f64; 4]; 4]>) {
        let [r, alpha, a, b] = *p;
        let ln_alpha = alpha.ln();
        let (lg_b, lg_ab) = (ln_gamma(b), ln_gamma(a + b));
        let (dg_r, dg_b, dg_ab) = (digamma(r), digamma(b), digamma(a + b));
        let (tg_r, tg_b, tg_ab) = (trigamma(r), trigamma(b), trigamma(a + b));
        let mut ll = Sum::default();
        let mut g = [Sum::default(); 4];
        // Hessian entries in the order rr, rα, ra, rb, αα, αa, αb, aa, ab, bb.
        let mut h = [Sum::default(); 10];
        let mut xterms = Vec::with_capacity(self.xs.len());
        for (&x, &w) in self.xs.iter().zip(&self.weight_x) {
            let dg_abx = digamma(a + b + x);
            if value {
                ll.add(
                    w * (ln_gamma_ratio(r, x) + r * ln_alpha + lg_ab
                        - lg_b
                        - ln_gamma_ratio(b + x, a)),
                );
            }
            g[0].add(w * (digamma(r + x) - dg_r + ln_alpha));
            g[1].add(w * r / alpha);
            g[2].add(w * (dg_ab - dg_abx));
            g[3].add(w * (dg_ab + digamma(b + x) - dg_b - dg_abx));
            if second {
                let tg_abx = trigamma(a + b + x);
                h[0].add(w * (trigamma(r + x) - tg_r));
                h[1].add(w / alpha);
                h[4].add(-w * r / (alpha * alpha));
                h[7].add(w * (tg_ab - tg_abx));
                h[8].add(w * (tg_ab - tg_abx));
                h[9].add(w * (tg_ab + trigamma(b + x) - tg_b - tg_abx));
            }
            let bx1 = b + x - 1.0;
            xterms.push(if x > 0.0 {
                XTerm {
                    rx: r + x,
                    k4: a.ln() - bx1.ln(),
                    inv_bx1: 1.0 / bx1,
                }
            } else {
                XTerm {
                    rx: r,
                    k4: 0.0,
                    inv_bx1: 0.0,
                }
            });
        }
        let ln_t: Vec<f64> = self.ts.iter().map(|&t| (alpha + t).ln()).collect();
        let inv_t: Vec<f64> = self.ts.iter().map(|&t| 1.0 / (alpha + t)).collect();
        let ln_tx: Vec<f64> = self.txs.iter().map(|&t| (alpha + t).ln()).collect();
        let inv_tx: Vec<f64> = self.txs.iter().map(|&t| 1.0 / (alpha + t)).collect();
        // Customers without repeat purchases: −r·ln(α+T).
        for (j, &w) in self.weight_zero.iter().enumerate() {
            if w > 0.0 {
                ll.add(-w * r * ln_t[j]);
                g[0].add(-w * ln_t[j]);
                g[1].add(-w * r * inv_t[j]);
                if second {
                    h[1].add(-w * inv_t[j]);
                    h[4].add(w * r * inv_t[j] * inv_t[j]);
                }
            }
        }
        // The mixture term ln(e^A₃ + e^A₄) of customers with repeat purchases.
        let parts = par::map_chunks(self.rows.len(), 1 << 14, |range| {
            let mut acc = [Sum::default(); 5];
            // Second derivatives need less precision: plain sums per chunk.
            let mut hs = [0.0; 10];
            for row in &self.rows[range] {
                let xt = &xterms[row.x as usize];
                let (lt, ltx) = (ln_t[row.t as usize], ln_tx[row.tx as usize]);
                let (it, itx) = (inv_t[row.t as usize], inv_tx[row.tx as usize]);
                let a3 = -xt.rx * lt;
                let a4 = xt.k4 - xt.rx * ltx;
                let d = a4 - a3;
                let e = (-d.abs()).exp();
                // s: the posterior weight of "dropped out after the last purchase".
                let s = if d > 0.0 {
                    1.0 / (1.0 + e)
                } else {
                    e / (1.0 + e)
                };
                let w = row.weight;
                // ln(1 + e) rather than ln_1p(e): twice as fast, and off by at
                // most 1e-16 in absolute terms when e is tiny.
                if value {
                    acc[0].add(w * (a3 + d.max(0.0) + (1.0 + e).ln()));
                }
                acc[1].add(-w * ((1.0 - s) * lt + s * ltx));
                acc[2].add(-w * xt.rx * ((1.0 - s) * it + s * itx));
                acc[3].add(w * s);
                acc[4].add(w * s * xt.inv_bx1);
                if second {
                    // ∇A₄ − ∇A₃ = (ln(α+T) − ln(α+tₓ), (r+x)(1/(α+T) − 1/(α+tₓ)), 1/a, −1/(b+x−1)).
                    let (d0, d1, d3) = (lt - ltx, xt.rx * (it - itx), -xt.inv_bx1);
                    let v = w * s * (1.0 - s);
                    hs[0] += v * d0 * d0;
                    hs[1] += v * d0 * d1 - w * ((1.0 - s) * it + s * itx);
                    hs[2] += v * d0;
                    hs[3] += v * d0 * d3;
                    hs[4] += v * d1 * d1 + w * xt.rx * ((1.0 - s) * it * it + s * itx * itx);
                    hs[5] += v * d1;
                    hs[6] += v * d1 * d3;
                    hs[7] += v - w * s;
                    hs[8] += v * d3;
                    hs[9] += v * d3 * d3 + w * s * d3 * d3;
                }
            }
            (acc.map(Sum::value), hs)
        });
        let inv_a = 1.0 / a;
        for (acc, hs) in parts {
            ll.add(acc[0]);
            g[0].add(acc[1]);
            g[1].add(acc[2]);
            g[2].add(acc[3] * inv_a);
            g[3].add(-acc[4]);
            if second {
                // Entries with an a-derivative carry the constant 1/a (or 1/a²).
                let scale = [
                    1.0,
                    1.0,
                    inv_a,
                    1.0,
                    1.0,
                    inv_a,
                    1.0,
                    inv_a * inv_a,
                    inv_a,
                    1.0,
                ];
                for k in 0..10 {
                    h[k].add(hs[k] * scale[k]);
                }
            }
        }
        let hessian = second.then(|| {
            let v = h.map(Sum::value);
            [
                [v[0], v[1], v[2], v[3]],
                [v[1], v[4], v[5], v[6]],
                [v[2], v[5], v[7], v[8]],
                [v[3], v[6], v[8], v[9]],
            ]
        });
        (ll.value(), g.map(Sum::value), hessian)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cdnow_like() -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut rng = fastrand::Rng::with_seed(3);
        let (mut f, mut r, mut t) = (vec![], vec![], vec![]);
        for _ in 0..3000 {
            let big_t = (rng.u32(20..40) as f64) + 0.5;
            let x = if rng.bool() { 0 } else { rng.u32(1..12) };
            f.push(x as f64);
            r.push(if x == 0 {
                0.0
            } else {
                (rng.f64() * big_t).min(big_t)
            });
            t.push(big_t);
        }
        (f, r, t)
    }

    #[test]
    fn condensed_likelihood_equals_the_sum_of_individual_ones() {
        let (f, r, t) = cdnow_like();
        let p = [0.3, 5.0, 0.9, 2.1];
        let data = Data::new(&f, &r, &t, None);
        let (ll, _, _) = data.derivatives(&p, true, false);
        let direct: f64 = (0..f.len())
            .map(|i| ln_likelihood(p[0], p[1], p[2], p[3], f[i], r[i], t[i]))
            .sum();
        assert!(
            (ll - direct).abs() < 1e-9 * direct.abs(),
            "{ll} vs {direct}"
        );
    }

    #[test]
    fn gradient_and_hessian_match_finite_differences() {
        let (f, r, t) = cdnow_like();
        let data = Data::new(&f, &r, &t, None);
        let p = [0.3, 5.0, 0.9, 2.1];
        let (_, g, h) = data.derivatives(&p, true, true);
        let h = h.unwrap();
        for i in 0..4 {
            let step = 1e-6 * p[i];
            let mut up = p;
            up[i] += step;
            let mut down = p;
            down[i] -= step;
            let (l_up, g_up, _) = data.derivatives(&up, true, false);
            let (l_down, g_down, _) = data.derivatives(&down, true, false);
            let numeric = (l_up - l_down) / (2.0 * step);
            assert!(
                (g[i] - numeric).abs() < 1e-5 * numeric.abs().max(1.0),
                "∂{i}: {} vs {numeric}",
                g[i]
            );
            for j in 0..4 {
                let numeric = (g_up[j] - g_down[j]) / (2.0 * step);
                assert!(
                    (h[i][j] - numeric).abs() < 1e-6 * numeric.abs().max(1.0),
                    "∂²{i}{j}: {} vs {numeric}",
                    h[i][j]
                );
            }
        }
    }

    #[test]
    fn the_objective_hessian_matches_finite_differences_in_log_space() {
        use crate::analytics::optimize::{Objective as _, hessian};
        let (f, r, t) = cdnow_like();
        let data = Data::new(&f, &r, &t, None);
        let mut objective = Objective {
            data: &data,
            penalty: [0.01; 4],
        };
        let theta = [0.3f64, 5.0, 0.9, 2.1].map(f64::ln);
        let exact = objective.hessian(&theta).unwrap();
        let numeric = hessian(&mut objective, &theta).unwrap();
        for i in 0..4 {
            for j in 0..4 {
                assert!(
                    (exact[i][j] - numeric[i][j]).abs() < 1e-7 * numeric[i][j].abs().max(1e-3),
                    "{i}{j}"
                );
            }
        }
    }

    #[test]
    fn duplicate_histories_are_merged_with_their_weights() {
        let data = Data::new(
            &[1.0, 1.0, 0.0, 1.0],
            &[2.0, 2.0, 0.0, 3.0],
            &[5.0, 5.0, 5.0, 5.0],
            None,
        );
        assert_eq!(data.rows.len(), 2);
        assert_eq!(data.rows[0].weight, 2.0);
        assert_eq!(data.weight_zero, [1.0]);
        assert_eq!(data.total, 4.0);
    }

    #[test]
    fn p_alive_edge_cases() {
        let m = BgNbd::new(0.243, 4.414, 0.793, 2.426).unwrap();
        // Purchase at the very end: P(alive) = 1 / (1 + a/(b+x−1)).
        let x = 4.0;
        let want = 1.0 / (1.0 + m.a / (m.b + x - 1.0));
        assert!((m.p_alive_one(x, 30.0, 30.0) - want).abs() < 1e-15);
        // A huge frequency long ago: dead, without overflow.
        assert_eq!(m.p_alive_one(1e6, 1.0, 1000.0), 0.0);
        assert_eq!(
            m.expected_purchases(10.0, &[1e6], &[1.0], &[1000.0])
                .unwrap(),
            [0.0]
        );
    }
}
