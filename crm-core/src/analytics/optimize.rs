//! A small unconstrained minimizer for the likelihoods: BFGS with a
//! backtracking (Armijo) line search, then Newton steps on a Hessian taken
//! by central differences of the analytic gradient, which both polishes the
//! optimum to the precision of the gradient and yields the curvature for the
//! standard errors.

// Index loops read as the matrix algebra they implement.
#![allow(clippy::needless_range_loop)]

/// A function to minimize.
pub(crate) trait Objective<const N: usize> {
    /// The value at `x` (non-finite outside the domain; when `value` is
    /// false only the gradient is needed and any finite number will do),
    /// writing the gradient into `gradient`.
    fn evaluate(&mut self, x: &[f64; N], gradient: &mut [f64; N], value: bool) -> f64;

    /// The Hessian at `x`, when it can be computed directly; otherwise it is
    /// taken by central differences of the gradient.
    fn hessian(&mut self, _x: &[f64; N]) -> Option<[[f64; N]; N]> {
        None
    }
}

/// What [`minimize`] found.
#[derive(Clone, Debug)]
pub(crate) struct Minimum<const N: usize> {
    /// The minimizer.
    pub x: [f64; N],
    /// The Hessian there (central differences of the gradient, symmetrized);
    /// only computed with [`Settings::polish`].
    pub hessian: Option<[[f64; N]; N]>,
    /// BFGS's approximation of the inverse Hessian: a good start for
    /// another minimization of a similar objective.
    pub inverse: [[f64; N]; N],
    /// BFGS iterations plus Newton steps taken.
    pub iterations: u32,
}

/// How [`minimize`] runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    /// The most BFGS iterations.
    pub max_iterations: u32,
    /// Give up when a coordinate's magnitude exceeds this.
    pub bound: f64,
    /// Polish the BFGS result with Newton steps on a finite-difference
    /// Hessian and check that it is a minimum; without, the BFGS result is
    /// returned as it is (for a warm start).
    pub polish: bool,
}

/// BFGS stops when no gradient component exceeds this (the objectives are
/// means over customers, so this is independent of the data's size); the
/// Newton steps take it from there to the precision of the gradient.
const GRADIENT_TOLERANCE: f64 = 1e-9;

/// Minimizes `f`, which returns the objective at `x` and writes its
/// gradient into the second argument (returning a non-finite value outside
/// the domain; when the third argument is false only the gradient is
/// needed, and any finite value may be returned), from `x0` and, when given, an initial inverse Hessian.
/// Returns `None` when no interior minimum was found: the iterates ran off
/// (|xᵢ| > `bound`), or (when polishing) the Hessian at the end is not
/// positive definite or a Newton step from there would still move the point.
pub(crate) fn minimize<const N: usize, F: Objective<N> + ?Sized>(
    f: &mut F,
    x0: [f64; N],
    inverse: Option<[[f64; N]; N]>,
    settings: Settings,
) -> Option<Minimum<N>> {
    let mut x = x0;
    let mut g = [0.0; N];
    let mut fx = f.evaluate(&x, &mut g, true);
    if !fx.is_finite() {
        return None;
    }
    let warm = inverse.is_some();
    let mut inv_h = inverse.unwrap_or_else(identity::<N>);
    let mut iterations = 0;
    let mut restarted = false;
    let mut stalled = 0;
    while iterations < settings.max_iterations && max_abs(&g) > GRADIENT_TOLERANCE {
        iterations += 1;
        let mut d = mat_vec(&inv_h, &g).map(|v| -v);
        let mut slope = dot(&g, &d);
        if slope >= 0.0 || !slope.is_finite() {
            inv_h = identity::<N>();
            d = g.map(|v| -v);
            slope = dot(&g, &d);
        }
        // Never move a log-parameter by more than 2 in one step.
        let longest = max_abs(&d);
        let mut step = if longest > 2.0 { 2.0 / longest } else { 1.0 };
        let mut x_new = x;
        let mut g_new = [0.0; N];
        let mut accepted = false;
        let before = fx;
        for _ in 0..30 {
            for i in 0..N {
                x_new[i] = x[i] + step * d[i];
            }
            let f_new = f.evaluate(&x_new, &mut g_new, true);
            if f_new.is_finite() && f_new <= fx + 1e-4 * step * slope {
                fx = f_new;
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        // Progress below the objective's rounding noise, twice in a row:
        // BFGS has done what it can (the gradient, a sum of many terms, may
        // never get below the tolerance); Newton finishes.
        if accepted && before - fx <= 1e-14 * fx.abs().max(1.0) {
            stalled += 1;
        } else {
            stalled = 0;
        }
        if !accepted {
            // No descent along this direction: within the objective's
            // rounding noise (Newton finishes), or a bad direction (retry
            // once along the gradient).
            if restarted || max_abs(&g) < 1e-6 {
                break;
            }
            restarted = true;
            inv_h = identity::<N>();
            continue;
        }
        let s: [f64; N] = std::array::from_fn(|i| x_new[i] - x[i]);
        let y: [f64; N] = std::array::from_fn(|i| g_new[i] - g[i]);
        let sy = dot(&s, &y);
        if sy > 1e-14 * norm(&s) * norm(&y) {
            if iterations == 1 && !warm {
                let scale = sy / dot(&y, &y);
                inv_h = identity::<N>().map(|row| row.map(|v| v * scale));
            }
            bfgs_update(&mut inv_h, &s, &y, sy);
        }
        x = x_new;
        g = g_new;
        if x.iter().any(|v| v.abs() > settings.bound) {
            return None;
        }
        if stalled >= 2 {
            break;
        }
    }
    if !settings.polish {
        return Some(Minimum {
            x,
            hessian: None,
            inverse: inv_h,
            iterations,
        });
    }

    // Newton polishing with the finite-difference Hessian.
    let mut hessian = curvature(f, &x)?;
    for _ in 0..10 {
        let delta = newton_step(&hessian, &g)?;
        let size = max_abs(&delta);
        if size < 1e-12 {
            break;
        }
        let mut accepted = false;
        let mut step = 1.0;
        for _ in 0..30 {
            let x_new: [f64; N] = std::array::from_fn(|i| x[i] + step * delta[i]);
            let mut g_new = [0.0; N];
            let f_new = f.evaluate(&x_new, &mut g_new, true);
            // Near the optimum the objective no longer resolves the step, so
            // a step that shrinks the gradient is accepted too.
            if f_new.is_finite()
                && (f_new < fx
                    || (f_new <= fx + 1e-13 * fx.abs().max(1.0) && max_abs(&g_new) < max_abs(&g)))
            {
                x = x_new;
                g = g_new;
                fx = f_new;
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        iterations += 1;
        if !accepted || x.iter().any(|v| v.abs() > settings.bound) {
            break;
        }
        if size * step < 1e-6 {
            // The curvature cannot have changed noticeably over so short a
            // step: keep it (saving 2N evaluations).
            break;
        }
        hessian = curvature(f, &x)?;
    }
    if x.iter().any(|v| v.abs() > settings.bound) {
        return None;
    }
    // A minimum: positive definite curvature and a Newton step that would
    // not move the point.
    let delta = newton_step(&hessian, &g)?;
    if max_abs(&delta) > 1e-6 {
        return None;
    }
    Some(Minimum {
        x,
        hessian: Some(hessian),
        inverse: inv_h,
        iterations,
    })
}

/// Minimizes `full` from the first of `starts` that works; with a `sample`
/// objective (the same model on a subsample of the customers), BFGS first
/// runs on the sample, and the full objective starts from its result and
/// its inverse-Hessian estimate: on large data this saves most of the
/// expensive full evaluations.
pub(crate) fn minimize_from<const N: usize>(
    full: &mut impl Objective<N>,
    sample: Option<&mut dyn Objective<N>>,
    starts: &[[f64; N]],
    max_iterations: u32,
    bound: f64,
) -> Option<Minimum<N>> {
    let settings = Settings {
        max_iterations,
        bound,
        polish: true,
    };
    if let Some(sample) = sample {
        let rough = Settings {
            polish: false,
            ..settings
        };
        let warm = starts
            .iter()
            .find_map(|&start| minimize(sample, start, None, rough));
        if let Some(warm) = warm {
            if let Some(found) = minimize(full, warm.x, Some(warm.inverse), settings) {
                return Some(found);
            }
        }
    }
    starts
        .iter()
        .find_map(|&start| minimize(full, start, None, settings))
}

/// The objective's own Hessian at `x`, or else central differences.
fn curvature<const N: usize, F: Objective<N> + ?Sized>(
    f: &mut F,
    x: &[f64; N],
) -> Option<[[f64; N]; N]> {
    match f.hessian(x) {
        Some(h) => h.iter().flatten().all(|v| v.is_finite()).then_some(h),
        None => hessian(f, x),
    }
}

/// The Hessian at `x` by central differences of the gradient, symmetrized.
pub(crate) fn hessian<const N: usize, F: Objective<N> + ?Sized>(
    f: &mut F,
    x: &[f64; N],
) -> Option<[[f64; N]; N]> {
    let mut h = [[0.0; N]; N];
    for i in 0..N {
        let step = 1e-4 * x[i].abs().max(1.0);
        let mut up = *x;
        up[i] += step;
        let mut down = *x;
        down[i] -= step;
        let mut g_up = [0.0; N];
        let mut g_down = [0.0; N];
        if !f.evaluate(&up, &mut g_up, false).is_finite()
            || !f.evaluate(&down, &mut g_down, false).is_finite()
        {
            return None;
        }
        for j in 0..N {
            h[i][j] = (g_up[j] - g_down[j]) / (2.0 * step);
        }
    }
    for i in 0..N {
        for j in 0..i {
            let mean = 0.5 * (h[i][j] + h[j][i]);
            h[i][j] = mean;
            h[j][i] = mean;
        }
    }
    Some(h)
}

/// The lower Cholesky factor of a symmetric positive definite matrix.
pub(crate) fn cholesky<const N: usize>(m: &[[f64; N]; N]) -> Option<[[f64; N]; N]> {
    let mut l = [[0.0; N]; N];
    for i in 0..N {
        for j in 0..=i {
            let mut sum = m[i][j];
            for k in 0..j {
                sum -= l[i][k] * l[j][k];
            }
            if i == j {
                if sum <= 0.0 || !sum.is_finite() {
                    return None;
                }
                l[i][i] = sum.sqrt();
            } else {
                l[i][j] = sum / l[j][j];
            }
        }
    }
    Some(l)
}

/// The inverse of a symmetric positive definite matrix.
pub(crate) fn inverse_spd<const N: usize>(m: &[[f64; N]; N]) -> Option<[[f64; N]; N]> {
    let l = cholesky(m)?;
    let mut inv = [[0.0; N]; N];
    for col in 0..N {
        let mut e = [0.0; N];
        e[col] = 1.0;
        let x = cholesky_solve(&l, &e);
        for row in 0..N {
            inv[row][col] = x[row];
        }
    }
    Some(inv)
}

fn cholesky_solve<const N: usize>(l: &[[f64; N]; N], b: &[f64; N]) -> [f64; N] {
    let mut y = [0.0; N];
    for i in 0..N {
        let mut sum = b[i];
        for k in 0..i {
            sum -= l[i][k] * y[k];
        }
        y[i] = sum / l[i][i];
    }
    let mut x = [0.0; N];
    for i in (0..N).rev() {
        let mut sum = y[i];
        for k in i + 1..N {
            sum -= l[k][i] * x[k];
        }
        x[i] = sum / l[i][i];
    }
    x
}

/// −H⁻¹g, when H is positive definite.
fn newton_step<const N: usize>(h: &[[f64; N]; N], g: &[f64; N]) -> Option<[f64; N]> {
    let l = cholesky(h)?;
    Some(cholesky_solve(&l, g).map(|v| -v))
}

fn bfgs_update<const N: usize>(inv_h: &mut [[f64; N]; N], s: &[f64; N], y: &[f64; N], sy: f64) {
    let rho = 1.0 / sy;
    let hy = mat_vec(inv_h, y);
    let yhy = dot(y, &hy);
    for i in 0..N {
        for j in 0..N {
            inv_h[i][j] += rho * ((1.0 + rho * yhy) * s[i] * s[j] - hy[i] * s[j] - s[i] * hy[j]);
        }
    }
}

fn identity<const N: usize>() -> [[f64; N]; N] {
    std::array::from_fn(|i| std::array::from_fn(|j| if i == j { 1.0 } else { 0.0 }))
}

fn mat_vec<const N: usize>(m: &[[f64; N]; N], v: &[f64; N]) -> [f64; N] {
    std::array::from_fn(|i| dot(&m[i], v))
}

fn dot<const N: usize>(a: &[f64; N], b: &[f64; N]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm<const N: usize>(a: &[f64; N]) -> f64 {
    dot(a, a).sqrt()
}

fn max_abs<const N: usize>(a: &[f64; N]) -> f64 {
    a.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A closure as an objective.
    struct Closure<F>(F);

    impl<const N: usize, F: FnMut(&[f64; N], &mut [f64; N]) -> f64> Objective<N> for Closure<F> {
        fn evaluate(&mut self, x: &[f64; N], gradient: &mut [f64; N], _value: bool) -> f64 {
            (self.0)(x, gradient)
        }
    }

    const SETTINGS: Settings = Settings {
        max_iterations: 500,
        bound: 50.0,
        polish: true,
    };

    #[test]
    fn finds_the_rosenbrock_minimum() {
        let mut f = Closure(|x: &[f64; 2], g: &mut [f64; 2]| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        });
        let m = minimize(&mut f, [-1.2, 1.0], None, SETTINGS).unwrap();
        let hessian = m.hessian.unwrap();
        assert!(
            (m.x[0] - 1.0).abs() < 1e-9 && (m.x[1] - 1.0).abs() < 1e-9,
            "{:?}",
            m.x
        );
        // The Hessian at (1, 1) is [[802, −400], [−400, 200]].
        assert!((hessian[0][0] - 802.0).abs() < 1e-4);
        assert!((hessian[0][1] + 400.0).abs() < 1e-4);
    }

    #[test]
    fn gives_up_when_there_is_no_interior_minimum() {
        // exp(x) decreases forever to the left.
        let mut f = Closure(|x: &[f64; 1], g: &mut [f64; 1]| {
            g[0] = x[0].exp();
            x[0].exp()
        });
        assert!(
            minimize(
                &mut f,
                [0.0],
                None,
                Settings {
                    bound: 30.0,
                    ..SETTINGS
                }
            )
            .is_none()
        );
    }

    #[test]
    fn inverts_a_positive_definite_matrix() {
        let m = [[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]];
        let inv = inverse_spd(&m).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let product: f64 = (0..3).map(|k| m[i][k] * inv[k][j]).sum();
                assert!((product - if i == j { 1.0 } else { 0.0 }).abs() < 1e-14);
            }
        }
        assert!(inverse_spd(&[[1.0, 2.0], [2.0, 1.0]]).is_none());
    }
}
