//! Random variates for the seeded simulations, on `fastrand`'s generator:
//! exponential, normal (Marsaglia's polar method), gamma (Marsaglia & Tsang
//! 2000) and beta (as a ratio of gammas).

use fastrand::Rng;

/// Exp(rate).
pub(crate) fn exponential(rng: &mut Rng, rate: f64) -> f64 {
    // 1 − U lies in (0, 1], so the logarithm is finite.
    -(1.0 - rng.f64()).ln() / rate
}

/// N(0, 1).
pub(crate) fn normal(rng: &mut Rng) -> f64 {
    loop {
        let u = 2.0 * rng.f64() - 1.0;
        let v = 2.0 * rng.f64() - 1.0;
        let s = u * u + v * v;
        if s > 0.0 && s < 1.0 {
            return u * (-2.0 * s.ln() / s).sqrt();
        }
    }
}

/// Gamma(shape, rate): mean shape / rate.
pub(crate) fn gamma(rng: &mut Rng, shape: f64, rate: f64) -> f64 {
    if shape < 1.0 {
        // Gamma(k) = Gamma(k + 1) · U^(1/k).
        let u = 1.0 - rng.f64();
        return gamma(rng, shape + 1.0, rate) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u = 1.0 - rng.f64();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v / rate;
        }
    }
}

/// Beta(a, b).
pub(crate) fn beta(rng: &mut Rng, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a, 1.0);
    let y = gamma(rng, b, 1.0);
    if x + y == 0.0 { 0.5 } else { x / (x + y) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(sample: impl Fn(&mut Rng) -> f64) -> (f64, f64) {
        let mut rng = Rng::with_seed(42);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| sample(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var)
    }

    #[test]
    fn gamma_has_the_right_moments() {
        for (shape, rate) in [(0.25, 4.0), (1.0, 1.0), (6.25, 0.5)] {
            let (mean, var) = moments(|rng| gamma(rng, shape, rate));
            let (m, v) = (shape / rate, shape / (rate * rate));
            assert!(
                (mean - m).abs() < 0.02 * m,
                "shape {shape}: mean {mean} vs {m}"
            );
            assert!(
                (var - v).abs() < 0.06 * v,
                "shape {shape}: var {var} vs {v}"
            );
        }
    }

    #[test]
    fn beta_and_exponential_have_the_right_means() {
        let (mean, _) = moments(|rng| beta(rng, 0.8, 2.4));
        assert!((mean - 0.25).abs() < 0.005, "{mean}");
        let (mean, var) = moments(|rng| exponential(rng, 4.0));
        assert!((mean - 0.25).abs() < 0.005 && (var - 0.0625).abs() < 0.003);
        let (mean, var) = moments(normal);
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.01);
    }
}
