//! The Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005,
//! "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis"; Fader
//! & Hardie 2013, "The Gamma-Gamma Model of Monetary Value"), and customer
//! lifetime value on top of a [`BgNbd`].
//!
//! A customer's purchase amounts are Gamma(p, ν) with ν ~ Gamma(q, γ) across
//! customers, independent of the purchase process; the observed
//! `monetary_value` is the mean of a customer's x repeat purchases.

use serde::{Deserialize, Serialize};

use super::bgnbd::{BgNbd, FitOptions, log_space_hessian};
use super::optimize::{self, inverse_spd};
use super::special::{Sum, digamma, ln_gamma, ln_gamma_ratio, trigamma};
use super::summary::TimeUnit;
use super::{
    by_pair, check_fit_options, check_frequency, check_history, check_len, check_non_negative,
    check_parameter, intern, par,
};
use crate::error::{Error, Result};

/// A Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV:
/// Using Iso-Value Curves for Customer Base Analysis"; Fader & Hardie 2013,
/// "The Gamma-Gamma Model of Monetary Value"): the population's parameters
/// and, when fitted, how well they are determined.
///
/// A customer's purchase amounts are Gamma(p, ν) with ν ~ Gamma(q, γ)
/// across customers, independent of the purchase process; the observed
/// `monetary_value` is the mean of a customer's x repeat purchases.
///
/// ```
/// use crm_core::analytics::GammaGamma;
///
/// let model = GammaGamma::new(6.25, 3.74, 15.44)?;
/// // A customer with many purchases is expected to keep spending about their
/// // own average; one without repeat purchases, the population's.
/// let value = model.expected_average_value(&[0.0, 20.0], &[0.0, 50.0])?;
/// assert!((value[0] - 6.25 * 15.44 / 2.74).abs() < 1e-9);
/// assert!((value[1] - 50.0).abs() < 2.0);
/// # Ok::<(), crm_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    /// Shape of each customer's Gamma distribution of amounts.
    pub p: f64,
    /// Shape of the Gamma distribution of the customers' rate ν.
    pub q: f64,
    /// Rate of the Gamma distribution of the customers' rate ν, in the
    /// amounts' unit (`v` in `lifetimes`).
    pub gamma: f64,
    /// Standard errors of (p, q, γ) (see [`BgNbd::standard_errors`]); `None`
    /// when not fitted.
    pub standard_errors: Option<[f64; 3]>,
    /// The covariance matrix of (p, q, γ) these come from.
    pub covariance: Option<[[f64; 3]; 3]>,
    /// The log-likelihood of the fitted data at the estimate (a sum over the
    /// customers with repeat purchases, without the penalty).
    pub log_likelihood: Option<f64>,
    /// The (weighted) number of customers fitted: those with repeat
    /// purchases.
    pub customers: f64,
    /// Optimizer iterations the fit took.
    pub iterations: u32,
}

/// How [`GammaGamma::clv`] discounts: `months` monthly steps, a monthly
/// `discount_rate`, and the data's time units per month.
///
/// ```
/// use crm_core::analytics::{ClvOptions, TimeUnit};
/// let options = ClvOptions { months: 24, ..ClvOptions::new(TimeUnit::Weeks) };
/// assert_eq!((options.discount_rate, options.periods_per_month), (0.01, 4.345));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClvOptions {
    /// The horizon, in months.
    pub months: u32,
    /// The monthly discount rate (0.01 = 1 % a month).
    pub discount_rate: f64,
    /// Time units per month: 30 for days, 4.345 for weeks.
    pub periods_per_month: f64,
}

impl ClvOptions {
    /// `lifetimes`' defaults for data in `unit`: 12 months at 1 % a month.
    ///
    /// ```
    /// use crm_core::analytics::{ClvOptions, TimeUnit};
    /// assert_eq!(ClvOptions::new(TimeUnit::Days).periods_per_month, 30.0);
    /// ```
    pub fn new(unit: TimeUnit) -> Self {
        ClvOptions {
            months: 12,
            discount_rate: 0.01,
            periods_per_month: unit.periods_per_month(),
        }
    }
}

impl Default for ClvOptions {
    fn default() -> Self {
        ClvOptions::new(TimeUnit::Days)
    }
}

impl GammaGamma {
    /// A model with known parameters (not fitted), each finite and > 0.
    ///
    /// ```
    /// use crm_core::analytics::GammaGamma;
    /// assert!(GammaGamma::new(6.25, 3.74, 15.44).is_ok());
    /// assert!(GammaGamma::new(6.25, f64::NAN, 15.44).is_err());
    /// ```
    pub fn new(p: f64, q: f64, gamma: f64) -> Result<Self> {
        let model = GammaGamma {
            p,
            q,
            gamma,
            standard_errors: None,
            covariance: None,
            log_likelihood: None,
            customers: 0.0,
            iterations: 0,
        };
        model.check()?;
        Ok(model)
    }

    /// Fits the model by maximum likelihood to `frequency` (repeat
    /// purchases) and `monetary_value` (their mean amount). Customers
    /// without repeat purchases carry no information on spend in this model
    /// and are skipped, so a whole [`crate::analytics::Summary`] can be
    /// passed; the others need a monetary value > 0.
    ///
    /// ```
    /// use crm_core::analytics::{GammaGamma, simulate};
    ///
    /// let truth = GammaGamma::new(6.0, 4.0, 15.0)?;
    /// let frequency: Vec<f64> = (0..4000).map(|i| (i % 7) as f64).collect();
    /// let monetary = simulate::gamma_gamma(&truth, &frequency, 3)?;
    /// let model = GammaGamma::fit(&frequency, &monetary)?;
    /// let se = model.standard_errors.unwrap();
    /// assert!((model.p - 6.0).abs() < 4.0 * se[0]);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn fit(frequency: &[f64], monetary_value: &[f64]) -> Result<Self> {
        Self::fit_with(frequency, monetary_value, &FitOptions::default())
    }

    /// [`GammaGamma::fit`] with weights, a penalty or an iteration limit.
    ///
    /// ```
    /// use crm_core::analytics::{FitOptions, GammaGamma};
    /// let options = FitOptions { penalizer: 0.001, ..FitOptions::default() };
    /// let model = GammaGamma::fit_with(&[1.0, 2.0, 5.0, 3.0], &[20.0, 35.0, 28.0, 12.0], &options)?;
    /// assert!(model.customers == 4.0);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn fit_with(
        frequency: &[f64],
        monetary_value: &[f64],
        options: &FitOptions,
    ) -> Result<Self> {
        check_spend(frequency, monetary_value)?;
        check_fit_options(options, frequency.len())?;
        let data = SpendData::new(frequency, monetary_value, options.weights);
        if data.rows.is_empty() || data.total <= 0.0 {
            return Err(Error::validation(
                "frequency",
                "no customer has a repeat purchase, so spend cannot be estimated",
            ));
        }
        // On many customers, a warm start from a subsample of about 20,000.
        let sample = (data.rows.len() > 50_000).then(|| {
            let stride = frequency.len().div_ceil(20_000);
            let pick = |v: &[f64]| v.iter().step_by(stride).copied().collect::<Vec<f64>>();
            let weights = options.weights.map(pick);
            SpendData::new(&pick(frequency), &pick(monetary_value), weights.as_deref())
        });
        let penalty = [options.penalizer; 3];
        let mut full = Objective {
            data: &data,
            penalty,
        };
        let mut rough = sample.as_ref().map(|data| Objective { data, penalty });
        // Moment-style starts: population mean p·γ/(q−1) near the mean spend.
        let mean = data.mean_spend;
        let starts =
            [[1.0, 2.0, mean], [5.0, 5.0, mean], [0.5, 1.5, 0.1 * mean]].map(|p| p.map(f64::ln));
        let found = optimize::minimize_from(
            &mut full,
            rough.as_mut().map(|f| f as &mut dyn optimize::Objective<3>),
            &starts,
            options.max_iterations,
            40.0,
        );
        let Some(best) = found else {
            return Err(Error::validation(
                "monetary_value",
                format!(
                    "the Gamma-Gamma likelihood reached no maximum at finite parameters in {} \
                     iterations: these customers don't determine the parameters (as when \
                     all histories are alike); a penalizer (e.g. 0.001 to 0.1) or more \
                     iterations may help",
                    options.max_iterations
                ),
            ));
        };
        let p = best.x.map(f64::exp);
        let (ll, _, _) = data.derivatives(&p, false);
        let (standard_errors, covariance) = match best.hessian.as_ref().and_then(inverse_spd) {
            Some(inv) => {
                let cov: [[f64; 3]; 3] = std::array::from_fn(|i| {
                    std::array::from_fn(|j| p[i] * p[j] * inv[i][j] / data.total)
                });
                (Some(std::array::from_fn(|i| cov[i][i].sqrt())), Some(cov))
            }
            None => (None, None),
        };
        Ok(GammaGamma {
            p: p[0],
            q: p[1],
            gamma: p[2],
            standard_errors,
            covariance,
            log_likelihood: Some(ll),
            customers: data.total,
            iterations: best.iterations,
        })
    }

    /// Each customer's log-likelihood (the density of their mean spend given
    /// their number of repeat purchases); 0 for customers without repeat
    /// purchases.
    ///
    /// ```
    /// use crm_core::analytics::GammaGamma;
    /// let model = GammaGamma::new(6.25, 3.74, 15.44)?;
    /// let ll = model.log_likelihoods(&[0.0, 2.0], &[0.0, 22.35])?;
    /// assert!(ll[0] == 0.0 && ll[1] < 0.0);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn log_likelihoods(&self, frequency: &[f64], monetary_value: &[f64]) -> Result<Vec<f64>> {
        self.check()?;
        check_spend(frequency, monetary_value)?;
        let (p, q, g) = (self.p, self.q, self.gamma);
        Ok(map(frequency.len(), |i| {
            let (x, m) = (frequency[i], monetary_value[i]);
            if x == 0.0 {
                return 0.0;
            }
            // ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln γ + (px−1) ln m + px ln x
            // − (px+q) ln(γ+xm), rearranged so that large terms do not cancel.
            ln_gamma_ratio(p * x, q)
                - ln_gamma(q)
                - p * x * (g / (x * m)).ln_1p()
                - q * (x * m / g).ln_1p()
                - m.ln()
        }))
    }

    /// E[mean spend per purchase | x, m̄] for each customer:
    /// `p(γ + x·m̄) / (p·x + q − 1)`, a weighted average of the customer's
    /// own mean and the population's `p·γ/(q − 1)`. Needs q > 1 (otherwise
    /// the population mean is infinite).
    ///
    /// ```
    /// use crm_core::analytics::GammaGamma;
    /// let model = GammaGamma::new(6.25, 3.74, 15.44)?;
    /// let v = model.expected_average_value(&[2.0], &[22.35])?;
    /// assert!((v[0] - 6.25 * (15.44 + 2.0 * 22.35) / (6.25 * 2.0 + 3.74 - 1.0)).abs() < 1e-12);
    /// assert!(GammaGamma::new(6.25, 0.9, 15.44)?.expected_average_value(&[2.0], &[22.35]).is_err());
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn expected_average_value(
        &self,
        frequency: &[f64],
        monetary_value: &[f64],
    ) -> Result<Vec<f64>> {
        self.check_mean()?;
        check_spend(frequency, monetary_value)?;
        Ok(map(frequency.len(), |i| {
            self.expected_one(frequency[i], monetary_value[i])
        }))
    }

    /// Customer lifetime value over `options.months` months: for each month
    /// i, the expected number of purchases in it from `transactions` (the
    /// BG/NBD, conditional on the customer's history) times the expected
    /// average value, discounted by (1 + rate)^i, summed. This is
    /// `lifetimes`' `customer_lifetime_value`; amounts are in the monetary
    /// values' unit.
    ///
    /// ```
    /// use crm_core::analytics::{BgNbd, ClvOptions, GammaGamma, TimeUnit};
    /// let bg = BgNbd::new(0.243, 4.414, 0.793, 2.426)?;
    /// let gg = GammaGamma::new(6.25, 3.74, 15.44)?;
    /// let (x, tx, t, m) = ([0.0, 2.0], [0.0, 30.43], [38.86, 38.86], [0.0, 22.35]);
    /// let clv = gg.clv(&bg, &x, &tx, &t, &m, &ClvOptions::new(TimeUnit::Weeks))?;
    /// assert!(clv[1] > clv[0] && clv[0] > 0.0);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn clv(
        &self,
        transactions: &BgNbd,
        frequency: &[f64],
        recency: &[f64],
        t: &[f64],
        monetary_value: &[f64],
        options: &ClvOptions,
    ) -> Result<Vec<f64>> {
        self.check_mean()?;
        check_spend(frequency, monetary_value)?;
        let mut out = discounted_purchases(transactions, frequency, recency, t, options)?;
        par::fill_chunks(&mut out, 8192, |offset, part| {
            for (k, v) in part.iter_mut().enumerate() {
                let i = offset + k;
                *v *= self.expected_one(frequency[i], monetary_value[i]);
            }
        });
        Ok(out)
    }

    fn expected_one(&self, x: f64, m: f64) -> f64 {
        self.p * (self.gamma + x * m) / (self.p * x + self.q - 1.0)
    }

    fn check(&self) -> Result<()> {
        check_parameter("p", self.p)?;
        check_parameter("q", self.q)?;
        check_parameter("gamma", self.gamma)
    }

    fn check_mean(&self) -> Result<()> {
        self.check()?;
        if self.q <= 1.0 {
            return Err(Error::validation(
                "q",
                "must exceed 1 for the population's mean spend to be finite",
            ));
        }
        Ok(())
    }
}

/// The function the fit minimizes, of the log-parameters θ = ln(p, q, γ):
/// the mean negative log-likelihood plus the penalty `Σ cᵢ·pᵢ²`.
struct Objective<'a> {
    data: &'a SpendData,
    /// The penalty's coefficient for each parameter.
    penalty: [f64; 3],
}

impl Objective<'_> {
    fn parameters(theta: &[f64; 3]) -> Option<[f64; 3]> {
        let p = theta.map(f64::exp);
        p.iter().all(|v| v.is_finite() && *v > 0.0).then_some(p)
    }
}

impl optimize::Objective<3> for Objective<'_> {
    fn evaluate(&mut self, theta: &[f64; 3], grad: &mut [f64; 3], _value: bool) -> f64 {
        let Some(p) = Self::parameters(theta) else {
            return f64::NAN;
        };
        let (ll, g, _) = self.data.derivatives(&p, false);
        let total = self.data.total;
        for i in 0..3 {
            grad[i] = p[i] * (-g[i] / total + 2.0 * self.penalty[i] * p[i]);
        }
        -ll / total
            + p.iter()
                .zip(&self.penalty)
                .map(|(v, c)| c * v * v)
                .sum::<f64>()
    }

    fn hessian(&mut self, theta: &[f64; 3]) -> Option<[[f64; 3]; 3]> {
        let p = Self::parameters(theta)?;
        let (_, g, h) = self.data.derivatives(&p, true);
        Some(log_space_hessian(
            &p,
            &g,
            &h?,
            self.data.total,
            &self.penalty,
        ))
    }
}

/// Checks frequency (whole numbers ≥ 0) and monetary value (finite, ≥ 0,
/// and > 0 with repeat purchases).
/// Per customer, the purchases expected in each of `options.months` months
/// (conditional on the history, P(alive) included), discounted by
/// (1 + rate)^i and summed: [`GammaGamma::clv`] divided by the expected
/// order value.
pub(crate) fn discounted_purchases(
    transactions: &BgNbd,
    frequency: &[f64],
    recency: &[f64],
    t: &[f64],
    options: &ClvOptions,
) -> Result<Vec<f64>> {
    transactions.check()?;
    check_history(frequency, recency, t)?;
    check_non_negative("discount_rate", options.discount_rate)?;
    check_parameter("periods_per_month", options.periods_per_month)?;
    let discount: Vec<f64> = (1..=options.months)
        .map(|i| (1.0 + options.discount_rate).powi(-(i as i32)))
        .collect();
    // Σᵢ (E[Y(i months) | alive] − E[Y(i−1 months) | alive]) / (1 + d)^i
    // depends on (x, T) only: once per pair.
    let mut out = by_pair(frequency, t, |x, big_t| {
        let mut previous = 0.0;
        let mut sum = 0.0;
        for (k, d) in discount.iter().enumerate() {
            let horizon = (k + 1) as f64 * options.periods_per_month;
            let cumulative = transactions.expected_if_alive(horizon, x, big_t);
            sum += (cumulative - previous) * d;
            previous = cumulative;
        }
        sum
    });
    par::fill_chunks(&mut out, 8192, |offset, part| {
        for (k, v) in part.iter_mut().enumerate() {
            let i = offset + k;
            *v *= transactions.p_alive_one(frequency[i], recency[i], t[i]);
        }
    });
    Ok(out)
}

fn check_spend(frequency: &[f64], monetary_value: &[f64]) -> Result<()> {
    check_len(
        "monetary_value",
        monetary_value.len(),
        "frequency",
        frequency.len(),
    )?;
    for (i, (&x, &m)) in frequency.iter().zip(monetary_value).enumerate() {
        check_frequency(i, x)?;
        if !(m.is_finite() && m >= 0.0) {
            return Err(Error::validation(
                format!("monetary_value[{i}]"),
                "must be a finite number, at least 0",
            ));
        }
        if x > 0.0 && m == 0.0 {
            return Err(Error::validation(
                format!("monetary_value[{i}]"),
                "must be greater than 0 for a customer with repeat purchases",
            ));
        }
    }
    Ok(())
}

fn map(n: usize, f: impl Fn(usize) -> f64 + Sync) -> Vec<f64> {
    let mut out = vec![0.0; n];
    par::fill_chunks(&mut out, 8192, |offset, part| {
        for (k, v) in part.iter_mut().enumerate() {
            *v = f(offset + k);
        }
    });
    out
}

/// The customers with repeat purchases, as the likelihood needs them.
struct SpendData {
    /// Distinct frequencies and their weights.
    xs: Vec<f64>,
    weight_x: Vec<f64>,
    rows: Vec<SpendRow>,
    total: f64,
    mean_spend: f64,
}

struct SpendRow {
    x: f64,
    m: f64,
    ln_m: f64,
    weight: f64,
}

impl SpendData {
    fn new(frequency: &[f64], monetary_value: &[f64], weights: Option<&[f64]>) -> SpendData {
        let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
        let used = |i: usize| frequency[i] > 0.0 && weight(i) > 0.0;
        let (xs, ix) = intern(frequency.len(), |i| used(i).then(|| frequency[i]));
        let mut weight_x = vec![0.0; xs.len()];
        let mut rows = Vec::new();
        let (mut total, mut spend) = (Sum::default(), Sum::default());
        for i in (0..frequency.len()).filter(|&i| used(i)) {
            let (x, m, w) = (frequency[i], monetary_value[i], weight(i));
            weight_x[ix[i] as usize] += w;
            rows.push(SpendRow {
                x,
                m,
                ln_m: m.ln(),
                weight: w,
            });
            total.add(w);
            spend.add(w * m);
        }
        let total = total.value();
        SpendData {
            xs,
            weight_x,
            rows,
            total,
            mean_spend: if total > 0.0 {
                spend.value() / total
            } else {
                1.0
            },
        }
    }

    /// The total log-likelihood at (p, q, γ), its gradient and (with
    /// `second`) its Hessian. A customer's term is written as
    /// `ln Γ(px+q) − ln Γ(px) − ln Γ(q) + p·x·ln(xm/(γ+xm)) + q·ln(γ/(γ+xm))
    /// − ln m`, whose parts do not cancel.
    fn derivatives(
        &self,
        params: &[f64; 3],
        second: bool,
    ) -> (f64, [f64; 3], Option<[[f64; 3]; 3]>) {
        let [p, q, g] = *params;
        let (lg_q, dg_q, tg_q, ln_g) = (ln_gamma(q), digamma(q), trigamma(q), g.ln());
        let mut ll = Sum::default();
        let mut grad = [Sum::default(); 3];
        // Hessian entries pp, pq, pγ, qq, qγ, γγ.
        let mut h = [Sum::default(); 6];
        for (&x, &w) in self.xs.iter().zip(&self.weight_x) {
            let dg = digamma(p * x + q);
            ll.add(w * (ln_gamma_ratio(p * x, q) - lg_q));
            grad[0].add(w * x * (dg - digamma(p * x)));
            grad[1].add(w * (dg - dg_q));
            if second {
                let tg = trigamma(p * x + q);
                h[0].add(w * x * x * (tg - trigamma(p * x)));
                h[1].add(w * x * tg);
                h[3].add(w * (tg - tg_q));
            }
        }
        let parts = par::map_chunks(self.rows.len(), 1 << 14, |range| {
            let mut acc = [Sum::default(); 4];
            let mut hs = [0.0; 3];
            for row in &self.rows[range] {
                let xm = row.x * row.m;
                let inv = 1.0 / (g + xm);
                // ln(xm/(γ+xm)), multiplied by p·x below, to full precision;
                // ln(γ/(γ+xm)) is only multiplied by q.
                let own = -(g / xm).ln_1p();
                let pooled = ln_g - (g + xm).ln();
                let w = row.weight;
                acc[0].add(w * (p * row.x * own + q * pooled - row.ln_m));
                acc[1].add(w * row.x * own);
                acc[2].add(w * pooled);
                // q/γ − (px+q)/(γ+xm), without the cancellation.
                acc[3].add(w * row.x * (q * row.m - p * g) * inv);
                if second {
                    hs[0] += w * row.x * inv;
                    hs[1] += w * xm * inv;
                    // −q/γ² + (px+q)/(γ+xm)², times γ².
                    hs[2] += w
                        * row.x
                        * (p * g * g - 2.0 * q * g * row.m - q * row.x * row.m * row.m)
                        * inv
                        * inv;
                }
            }
            (acc.map(Sum::value), hs)
        });
        for (acc, hs) in parts {
            ll.add(acc[0]);
            grad[0].add(acc[1]);
            grad[1].add(acc[2]);
            grad[2].add(acc[3] / g);
            if second {
                h[2].add(-hs[0]);
                h[4].add(hs[1] / g);
                h[5].add(hs[2] / (g * g));
            }
        }
        let hessian = second.then(|| {
            let v = h.map(Sum::value);
            [[v[0], v[1], v[2]], [v[1], v[3], v[4]], [v[2], v[4], v[5]]]
        });
        (ll.value(), grad.map(Sum::value), hessian)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn likelihood_matches_the_individual_terms_and_derivatives_are_right() {
        let mut rng = fastrand::Rng::with_seed(11);
        let f: Vec<f64> = (0..2000).map(|_| rng.u32(0..9) as f64).collect();
        let m: Vec<f64> = f
            .iter()
            .map(|&x| {
                if x == 0.0 {
                    0.0
                } else {
                    5.0 + 40.0 * rng.f64()
                }
            })
            .collect();
        let data = SpendData::new(&f, &m, None);
        let params = [6.25, 3.74, 15.44];
        let (ll, g, h) = data.derivatives(&params, true);
        let h = h.unwrap();
        let model = GammaGamma::new(params[0], params[1], params[2]).unwrap();
        let direct: f64 = model.log_likelihoods(&f, &m).unwrap().iter().sum();
        assert!(
            (ll - direct).abs() < 1e-12 * direct.abs(),
            "{ll} vs {direct}"
        );
        for i in 0..3 {
            let step = 1e-6 * params[i];
            let mut up = params;
            up[i] += step;
            let mut down = params;
            down[i] -= step;
            let (l_up, g_up, _) = data.derivatives(&up, false);
            let (l_down, g_down, _) = data.derivatives(&down, false);
            let numeric = (l_up - l_down) / (2.0 * step);
            assert!(
                (g[i] - numeric).abs() < 1e-5 * numeric.abs().max(1.0),
                "∂{i}: {} vs {numeric}",
                g[i]
            );
            for j in 0..3 {
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
    fn spend_checks() {
        let err = GammaGamma::fit(&[1.0, 2.0], &[3.0, 0.0]).unwrap_err();
        assert!(matches!(err, Error::Validation { ref field, .. } if field == "monetary_value[1]"));
        let err = GammaGamma::fit(&[0.0, 0.0], &[0.0, 0.0]).unwrap_err();
        assert!(matches!(err, Error::Validation { ref field, .. } if field == "frequency"));
        let err = GammaGamma::fit(&[1.0], &[3.0, 4.0]).unwrap_err();
        assert!(matches!(err, Error::Validation { ref field, .. } if field == "monetary_value"));
    }
}
