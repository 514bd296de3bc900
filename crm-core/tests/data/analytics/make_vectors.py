#!/usr/bin/env python3
"""Reference vectors for crm-core's analytics tests (tests/analytics.rs).

Run from anywhere (it writes next to itself):

    python3 crm-core/tests/data/analytics/make_vectors.py

Needs numpy, scipy and mpmath; uses the `lifetimes` package, when it can be
imported, for an extra cross-check and to record its numbers (the vectors
then say so). The reference values are computed independently of the Rust
code:

* closed forms evaluated with mpmath at 40 significant digits from the exact
  binary values of the inputs (log-likelihoods, P(alive), the expectations
  with mpmath's own 2F1, CLV);
* the closed forms themselves checked here against numerical integration
  over the latent λ and p (mpmath quad), which does not use the
  hypergeometric function or the Beta-function algebra at all;
* maximum-likelihood estimates found with scipy's optimizers on a
  numpy/scipy log-likelihood, polished by Newton steps with an analytic
  gradient, standard errors from the finite-difference Hessian;
* summaries from a plain-Python implementation with calendar arithmetic,
  checked against lifetimes' summary_data_from_transaction_data.

cdnow.csv is the CDNOW sample of Fader, Hardie & Lee (2005) as distributed
with lifetimes (customers' x, t_x, T in weeks and mean repeat spend zbar in
dollars); the published BG/NBD estimates on it are r = 0.243, alpha = 4.414,
a = 0.793, b = 2.426, LL = -9582.4.
"""

import csv
import datetime as dt
import json
import os
import random
import shutil
import warnings

import mpmath as mp
import numpy as np
from scipy import optimize, special

HERE = os.path.dirname(os.path.abspath(__file__))
mp.mp.dps = 40

try:
    warnings.simplefilter("ignore")
    import lifetimes
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data
    import pandas as pd

    HAVE_LIFETIMES = True
except Exception:  # pragma: no cover - optional
    HAVE_LIFETIMES = False


def write(name, obj):
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    print("wrote", name)


def F(x):
    """An mpf holding exactly the binary value of the float x."""
    return mp.mpf(float(x))


# ---------------------------------------------------------------- data


def load_cdnow():
    path = os.path.join(HERE, "cdnow.csv")
    if not os.path.exists(path):
        src = os.path.join(os.path.dirname(lifetimes.__file__), "datasets",
                           "cdnow_customers_summary_with_transactions.csv")
        shutil.copy(src, path)
    rows = list(csv.DictReader(open(path)))
    x = np.array([float(r["x"]) for r in rows])
    tx = np.array([float(r["t_x"]) for r in rows])
    T = np.array([float(r["T"]) for r in rows])
    m = np.array([float(r["zbar"]) for r in rows])
    return x, tx, T, m


# ---------------------------------------------------------------- BG/NBD closed forms (mpmath)


def bg_ll_mp(p, x, tx, T):
    r, al, a, b = map(F, p)
    x, tx, T = F(x), F(tx), F(T)
    a1 = mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(al)
    a2 = mp.loggamma(a + b) + mp.loggamma(b + x) - mp.loggamma(b) - mp.loggamma(a + b + x)
    a3 = -(r + x) * mp.log(al + T)
    if x == 0:
        return a1 + a2 + a3
    a4 = mp.log(a) - mp.log(b + x - 1) - (r + x) * mp.log(al + tx)
    return a1 + a2 + mp.log(mp.exp(a3) + mp.exp(a4))


def bg_palive_mp(p, x, tx, T):
    r, al, a, b = map(F, p)
    x, tx, T = F(x), F(tx), F(T)
    if x == 0:
        return mp.mpf(1)
    return 1 / (1 + a / (b + x - 1) * ((al + T) / (al + tx)) ** (r + x))


def bg_if_alive_hyp(p, x, T, t):
    """Eq. (10)'s numerator with mpmath's 2F1 (used where mpmath's 2F1 is fast)."""
    r, al, a, b = map(F, p)
    x, T, t = F(x), F(T), F(t)
    if t == 0:
        return mp.mpf(0)
    A, B, C = r + x, b + x, a + b + x - 1
    z = t / (al + T + t)
    return C / (a - 1) * (1 - ((al + T) / (al + T + t)) ** A * mp.hyp2f1(A, B, C, z))


def bg_if_alive_quad(p, x, T, t):
    """The same as E over p ~ Beta(a, b+x) of (1 - (1 + p u)^-(r+x)) / p, by quadrature."""
    r, al, a, b = map(F, p)
    x, T, t = F(x), F(T), F(t)
    if t == 0:
        return mp.mpf(0)
    u = t / (al + T)
    A, B = r + x, b + x
    lbeta = mp.loggamma(a) + mp.loggamma(B) - mp.loggamma(a + B)

    def h(q):
        return -mp.expm1(-A * mp.log1p(q * u)) / q

    # q = v^(1/a) on (0, 1/2] and 1 - q = w^(1/B) on (0, 1/2] take the
    # endpoint singularities q^(a-1) and (1-q)^(B-1) out of the integrands.
    half = mp.mpf(1) / 2
    peak = a / (a + B)
    pts = sorted({mp.mpf(0), half} | {v for v in (peak / 100, peak, 10 * peak, 1 / u) if 0 < v < half})
    lower = mp.quad(lambda v: mp.exp((B - 1) * mp.log1p(-v ** (1 / a)) - lbeta) * h(v ** (1 / a)) if v > 0 else
                    mp.exp(-lbeta) * A * u, [q ** a for q in pts]) / a
    upper = mp.quad(lambda w: mp.exp((a - 1) * mp.log1p(-w ** (1 / B)) - lbeta) * h(1 - w ** (1 / B)),
                    [0, (mp.mpf(1) / 100) ** B, half ** B]) / B
    return lower + upper


def bg_if_alive(p, x, T, t):
    if p[2] != 1 and x <= 200 and float(t) / (p[1] + T + t) < 0.999:
        v = bg_if_alive_hyp(p, x, T, t)
        if x <= 5:
            w = bg_if_alive_quad(p, x, T, t)
            assert abs(v - w) <= mp.mpf("1e-25") * abs(v), (p, x, T, t, v, w)
        return v
    return bg_if_alive_quad(p, x, T, t)


def bg_ll_integral(p, x, tx, T):
    """The individual likelihood by numerical integration over the latent rate and dropout
    probability. Given lambda and p the likelihood is (1-p)^x lambda^x e^(-lambda T) +
    [x>0] p (1-p)^(x-1) lambda^x e^(-lambda t_x); lambda and p are independent, so each term
    is a product of a 1-D integral over lambda ~ Gamma(r, alpha) and one over p ~ Beta(a, b),
    each computed by quadrature (no Beta or Gamma function algebra)."""
    r, al, a, b = map(F, p)
    x, tx, T = F(x), F(tx), F(T)

    def e_lambda(s):
        # E[lambda^x e^(-lambda s)], over y = ln(lambda): a smooth unimodal integrand, scaled to
        # 1 at its peak y0 and negligible (below 1e-45) outside [y0 - left, y0 + right].
        n = r + x
        y0 = mp.log(n / (al + s))
        g = lambda y: n * y - mp.exp(y) * (al + s)
        width = 1 / mp.sqrt(n)
        left = max(15 * width, 110 / n + 1)
        right = max(15 * width, mp.log(300 / n + 1) + 3)
        inner = [y0 + k * width for k in (-10, -5, -2, 0, 2, 5, 10) if -left < k * width < right]
        integral = mp.quad(lambda y: mp.exp(g(y) - g(y0)), [y0 - left] + inner + [y0 + right])
        return integral * mp.exp(g(y0) + r * mp.log(al) - mp.loggamma(r))

    def e_p(i, j):
        # E[p^i (1-p)^j] for p ~ Beta(a, b), split at 1/2; p = v^(1/a) below and 1 - p = w^(1/b)
        # above take the endpoint singularities out; break points where (1-p)^j falls off.
        half = mp.mpf(1) / 2
        lb = mp.loggamma(a) + mp.loggamma(b) - mp.loggamma(a + b)
        marks = sorted({q for q in (1 / (100 * (j + b)), 1 / (j + b), 10 / (j + b)) if q < half})
        lower = mp.quad(lambda v: mp.exp((b - 1 + j) * mp.log1p(-v ** (1 / a)) + i * mp.log(v) / a - lb) if v > 0 else
                        (mp.exp(-lb) if i == 0 else mp.mpf(0)), [0] + [q ** a for q in marks] + [half ** a]) / a
        upper = mp.quad(lambda w: mp.exp((a - 1 + i) * mp.log1p(-w ** (1 / b)) + j * mp.log(w) / b - lb) if w > 0 else
                        (mp.exp(-lb) if j == 0 else mp.mpf(0)), [0, half ** b]) / b
        return lower + upper

    like = e_lambda(T) * e_p(0, x)
    if x > 0:
        like += e_lambda(tx) * e_p(1, x - 1)
    return mp.log(like)


# ---------------------------------------------------------------- BG/NBD fit (numpy/scipy)


def bg_negll_and_grad(theta, x, tx, T, w):
    r, al, a, b = np.exp(theta)
    xp = np.maximum(x, 1)
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(al)
    a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    a3 = -(r + x) * np.log(al + T)
    a4 = np.where(x > 0, np.log(a) - np.log(b + xp - 1) - (r + x) * np.log(al + tx), -np.inf)
    mx = np.maximum(a3, a4)
    s = np.exp(a4 - mx) / (np.exp(a3 - mx) + np.exp(a4 - mx))  # posterior weight of "dropped out"
    ll = a1 + a2 + mx + np.log(np.exp(a3 - mx) + np.exp(a4 - mx))
    gr = special.digamma(r + x) - special.digamma(r) + np.log(al) - (1 - s) * np.log(al + T) - s * np.log(al + tx)
    gal = r / al - (r + x) * ((1 - s) / (al + T) + s / (al + tx))
    ga = special.digamma(a + b) - special.digamma(a + b + x) + s / a
    gb = special.digamma(a + b) + special.digamma(b + x) - special.digamma(b) - special.digamma(a + b + x) - s / (b + xp - 1) * (x > 0)
    W = w.sum()
    g = np.array([(w * gr).sum(), (w * gal).sum(), (w * ga).sum(), (w * gb).sum()]) * np.exp(theta)
    return -(w * ll).sum() / W, -g / W


def newton_polish(fg, theta, args, steps=20):
    for _ in range(steps):
        H = fd_hessian(fg, theta, args)
        g = fg(theta, *args)[1]
        d = -np.linalg.solve(H, g)
        theta = theta + d
        if np.max(np.abs(d)) < 1e-14:
            break
    return theta


def fd_hessian(fg, theta, args, h=1e-3):
    """Central differences of the analytic gradient at steps h and h/2, Richardson-extrapolated
    (error O(h^4))."""
    def central(step):
        n = len(theta)
        H = np.zeros((n, n))
        for i in range(n):
            e = np.zeros(n)
            e[i] = step
            H[i] = (fg(theta + e, *args)[1] - fg(theta - e, *args)[1]) / (2 * step)
        return (H + H.T) / 2
    return (4 * central(h / 2) - central(h)) / 3


def fit(fg, theta0, args):
    res = optimize.minimize(lambda th: fg(th, *args), theta0, jac=True, method="BFGS",
                            options={"gtol": 1e-11, "maxiter": 10000})
    theta = newton_polish(fg, res.x, args)
    H = fd_hessian(fg, theta, args)
    W = args[-1].sum()
    cov = np.linalg.inv(H) / W * np.outer(np.exp(theta), np.exp(theta))
    return np.exp(theta), -fg(theta, *args)[0] * W, np.sqrt(np.diag(cov))


# ---------------------------------------------------------------- Gamma-Gamma


def gg_negll_and_grad(theta, x, m, w):
    p, q, g = np.exp(theta)
    px = p * x
    ll = (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(g)
          + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(g + x * m))
    gp = x * (special.digamma(px + q) - special.digamma(px)) + x * np.log(m) + x * np.log(x) - x * np.log(g + x * m)
    gq = special.digamma(px + q) - special.digamma(q) + np.log(g) - np.log(g + x * m)
    gg = q / g - (px + q) / (g + x * m)
    W = w.sum()
    grad = np.array([(w * gp).sum(), (w * gq).sum(), (w * gg).sum()]) * np.exp(theta)
    return -(w * ll).sum() / W, -grad / W


def gg_ll_mp(p, x, m):
    p, q, g = map(F, p)
    x, m = F(x), F(m)
    return (mp.loggamma(p * x + q) - mp.loggamma(p * x) - mp.loggamma(q) + q * mp.log(g)
            + (p * x - 1) * mp.log(m) + p * x * mp.log(x) - (p * x + q) * mp.log(g + x * m))


def gg_ll_integral(p, x, m):
    """The density of the mean of x Gamma(p, nu) amounts, nu ~ Gamma(q, g), by quadrature over
    y = ln(nu) (the mean of x such amounts is Gamma(p x, x nu)), scaled to 1 at the peak."""
    p, q, g = map(F, p)
    x, m = F(x), F(m)
    n = p * x + q

    def G(y):
        nu = mp.exp(y)
        return ((p * x) * mp.log(x * nu) + (p * x - 1) * mp.log(m) - x * nu * m - mp.loggamma(p * x)
                + q * mp.log(g) + (q - 1) * y - g * nu - mp.loggamma(q) + y)

    y0 = mp.log(n / (g + x * m))
    width = 1 / mp.sqrt(n)
    left = max(15 * width, 110 / n + 1)
    right = max(15 * width, mp.log(300 / n + 1) + 3)
    inner = [y0 + k * width for k in (-10, -5, -2, 0, 2, 5, 10) if -left < k * width < right]
    return G(y0) + mp.log(mp.quad(lambda y: mp.exp(G(y) - G(y0)), [y0 - left] + inner + [y0 + right]))


def gg_expected_mp(p, x, m):
    p, q, g = map(F, p)
    x, m = F(x), F(m)
    return p * (g + x * m) / (p * x + q - 1)


# ---------------------------------------------------------------- vectors


def bgnbd_vectors():
    params = [
        [0.243, 4.414, 0.793, 2.426],  # CDNOW (weeks)
        [1.5, 10.0, 2.5, 0.3],
        [0.01, 0.5, 5.0, 20.0],
        [20.0, 100.0, 0.05, 0.05],
        [0.7, 35.0, 1.0, 3.0],  # a = 1 exactly: the removable singularity
    ]
    # (x, t_x, T): edge cases on purpose.
    customers = [
        (0, 0, 0), (0, 0, 1e-9), (0, 0, 38.86), (0, 0, 1e4),
        (1, 1.71, 38.86), (2, 30.43, 38.86), (1, 38.86, 38.86),  # recency = T
        (5, 0.0, 10.0),  # x > 0 with t_x = 0
        (7, 36.0, 36.0), (50, 20.0, 52.0), (50, 52.0, 52.0),
        (1000, 300.0, 365.0), (1e5, 3000.0, 3650.0), (1e6, 1.0, 1000.0),
    ]
    horizons = [0.0, 0.5, 1.0, 10.0, 52.0, 1000.0]
    cases = []
    for p in params:
        ll = [float(bg_ll_mp(p, *c)) for c in customers]
        alive = [float(bg_palive_mp(p, *c)) for c in customers]
        expected = []
        for t in horizons:
            row = []
            for (x, tx, T) in customers:
                row.append(float(bg_if_alive(p, x, T, t) * bg_palive_mp(p, x, tx, T)))
            expected.append(row)
        unconditional = [float(bg_if_alive(p, 0, 0, t)) for t in horizons]
        cases.append({"params": p, "log_likelihood": ll, "p_alive": alive,
                      "expected_purchases": expected, "unconditional": unconditional})
    # Independent check of eq. (6) by 2-D integration over (lambda, p).
    for p in params:
        for (x, tx, T) in customers[:11]:
            direct = bg_ll_integral(p, x, tx, T)
            closed = bg_ll_mp(p, x, tx, T)
            assert abs(direct - closed) < mp.mpf("1e-25") * max(1, abs(closed)), (p, x, tx, T, direct, closed)
    write("bgnbd_closed_forms.json", {
        "about": "BG/NBD per-customer log-likelihood (eq. 6), P(alive), E[Y(t)|x,tx,T] (eq. 10) "
                 "and E[X(t)] (eq. 9), mpmath at 40 digits; eq. 6 checked against 2-D quadrature, "
                 "eq. 10 against quadrature over the Beta posterior.",
        "customers": {"frequency": [c[0] for c in customers], "recency": [c[1] for c in customers],
                      "T": [c[2] for c in customers]},
        "horizons": horizons,
        "cases": cases,
    })


def cdnow_vectors(x, tx, T, m):
    w = np.ones_like(x)
    est, ll, se = fit(bg_negll_and_grad, np.log([1.1, 1.1 * T.max(), 1.1, 1.1]), (x, tx, T, w))
    ll_mp = float(mp.fsum(bg_ll_mp(est, *c) for c in zip(x, tx, T)))
    assert abs(ll_mp - ll) < 1e-8 * abs(ll)
    sel = x > 0
    g_est, g_ll, g_se = fit(gg_negll_and_grad, np.log([1.0, 2.0, m[sel].mean()]), (x[sel], m[sel], w[sel]))
    # Penalized fits, with lifetimes' penalty: penalizer * sum(params^2), time scaled to max T = 1
    # for the BG/NBD (so alpha enters as alpha / max T).
    pen = 0.1
    coef = np.array([1.0, 1.0 / T.max() ** 2, 1.0, 1.0]) * pen

    def bg_penalized(theta, *args):
        f, g = bg_negll_and_grad(theta, *args)
        p = np.exp(theta)
        return f + (coef * p * p).sum(), g + 2 * coef * p * p

    pen_est, _, _ = fit(bg_penalized, np.log([1.1, 1.1 * T.max(), 1.1, 1.1]), (x, tx, T, w))

    def gg_penalized(theta, *args):
        f, g = gg_negll_and_grad(theta, *args)
        p = np.exp(theta)
        return f + pen * (p * p).sum(), g + 2 * pen * p * p

    g_pen_est, _, _ = fit(gg_penalized, np.log([1.0, 2.0, m[sel].mean()]), (x[sel], m[sel], w[sel]))
    out = {
        "about": "MLE on the CDNOW sample (cdnow.csv): scipy BFGS + Newton polish on an independent "
                 "numpy log-likelihood; standard errors from the Richardson-extrapolated finite-difference "
                 "Hessian of the analytic gradient.",
        "penalizer": pen,
        "bgnbd": {"params": list(est), "log_likelihood": ll_mp, "standard_errors": list(se),
                  "penalized_params": list(pen_est),
                  "published": {"params": [0.243, 4.414, 0.793, 2.426], "log_likelihood": -9582.4}},
        "gamma_gamma": {"params": list(g_est), "log_likelihood": g_ll, "standard_errors": list(g_se),
                        "penalized_params": list(g_pen_est),
                        "published": {"params": [6.25, 3.74, 15.44]}},
    }
    if HAVE_LIFETIMES:
        bgf = BetaGeoFitter().fit(x, tx, T)
        ggf = GammaGammaFitter().fit(x[sel], m[sel])
        out["bgnbd"]["lifetimes"] = {
            "params": [float(bgf.params_[k]) for k in ["r", "alpha", "a", "b"]],
            "standard_errors": [float(bgf.standard_errors_[k]) for k in ["r", "alpha", "a", "b"]],
        }
        out["gamma_gamma"]["lifetimes"] = {
            "params": [float(ggf.params_[k]) for k in ["p", "q", "v"]],
            "standard_errors": [float(ggf.standard_errors_[k]) for k in ["p", "q", "v"]],
            "penalized_params": [float(v) for v in GammaGammaFitter(penalizer_coef=pen).fit(x[sel], m[sel]).params_.values],
        }
        out["bgnbd"]["lifetimes"]["penalized_params"] = [
            float(v) for v in BetaGeoFitter(penalizer_coef=pen).fit(x, tx, T).params_.values]
        # Predictions of lifetimes (scipy's hyp2f1) at our estimates, for the record.
        bgf.params_[:] = est
        idx = np.arange(0, len(x), 97)
        out["bgnbd"]["lifetimes_predictions"] = {
            "index": [int(i) for i in idx],
            "expected_purchases_10": [float(v) for v in bgf.conditional_expected_number_of_purchases_up_to_time(10.0, x[idx], tx[idx], T[idx])],
            "p_alive": [float(v) for v in bgf.conditional_probability_alive(x[idx], tx[idx], T[idx])],
        }
    write("cdnow_fit.json", out)
    return est, g_est


def gamma_gamma_vectors(bg_params):
    params = [[6.25, 3.74, 15.44], [0.5, 1.5, 2.0], [30.0, 60.0, 3000.0]]
    spend = [(1, 22.35), (2, 11.77), (5, 0.01), (10, 500.0), (100, 37.5), (1e4, 12.0), (3, 1e6)]
    cases = []
    for p in params:
        ll = [float(gg_ll_mp(p, x, mm)) for x, mm in spend]
        for (x, mm) in spend:
            v, w = gg_ll_mp(p, x, mm), gg_ll_integral(p, x, mm)
            assert abs(w - v) < mp.mpf("1e-30") * max(1, abs(v)), (p, x, mm, v, w)
        exp = [float(gg_expected_mp(p, x, mm)) for x, mm in [(0, 0.0)] + spend]
        cases.append({"params": p, "log_likelihood": ll, "expected_average_value": exp})
    # CLV: 12 months at 1 %, weekly data (4.345 weeks a month), as lifetimes computes it.
    clv_customers = [(0, 0.0, 38.86, 0.0), (2, 30.43, 38.86, 22.35), (1, 1.71, 38.86, 11.77),
                     (7, 36.0, 36.0, 50.0), (20, 10.0, 52.0, 35.0), (300, 51.0, 52.0, 20.0)]
    ggp = params[0]
    clv = []
    for (x, tx, T, mm) in clv_customers:
        value = gg_expected_mp(ggp, x, mm)
        alive = bg_palive_mp(bg_params, x, tx, T)
        total, prev = mp.mpf(0), mp.mpf(0)
        for i in range(1, 13):
            cum = bg_if_alive(bg_params, x, T, F(i * 4.345))
            total += value * alive * (cum - prev) / mp.mpf("1.01") ** i
            prev = cum
        clv.append(float(total))
    clv_out = {"bgnbd": list(bg_params), "gamma_gamma": ggp, "months": 12, "discount_rate": 0.01,
               "periods_per_month": 4.345,
               "frequency": [c[0] for c in clv_customers], "recency": [c[1] for c in clv_customers],
               "T": [c[2] for c in clv_customers], "monetary_value": [c[3] for c in clv_customers],
               "clv": clv}
    if HAVE_LIFETIMES:
        bgf = BetaGeoFitter()
        bgf.params_ = pd.Series(list(bg_params), index=["r", "alpha", "a", "b"])
        bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
        ggf = GammaGammaFitter()
        ggf.params_ = pd.Series(ggp, index=["p", "q", "v"])
        df = pd.DataFrame(clv_customers, columns=["x", "tx", "T", "m"])
        lt = ggf.customer_lifetime_value(bgf, df["x"], df["tx"], df["T"], df["m"], time=12,
                                         discount_rate=0.01, freq="W")
        clv_out["lifetimes_clv"] = [float(v) for v in lt]
    write("gamma_gamma.json", {
        "about": "Gamma-Gamma per-customer log-likelihood and expected average value (mpmath, the "
                 "likelihood checked by quadrature over nu), and CLV over 12 months at 1 % a month.",
        "frequency": [s[0] for s in spend], "monetary_value": [s[1] for s in spend],
        "cases": cases, "clv": clv_out,
    })


# ---------------------------------------------------------------- summaries, RFM, cohorts


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def period(ts, unit):
    days = (ts - EPOCH).days  # floor
    return days if unit == "days" else (days + 3) // 7


def summary_py(txs, unit, end, cal=None):
    cut = period(cal, unit) if cal else period(end, unit)
    endp = period(end, unit)
    by = {}
    for c, ts, amt in txs:
        p = period(ts, unit)
        if p > endp:
            continue
        by.setdefault(c, {}).setdefault(p, 0)
        by[c][p] += amt
    out = {k: [] for k in ["customers", "frequency", "recency", "T", "monetary_value", "total_minor",
                           "holdout_frequency", "holdout_monetary_value"]}
    for c in sorted(by):
        periods = sorted(by[c])
        cal_p = [p for p in periods if p <= cut]
        hold = [p for p in periods if p > cut]
        if not cal_p:
            continue
        f = len(cal_p) - 1
        out["customers"].append(c)
        out["frequency"].append(f)
        out["recency"].append(cal_p[-1] - cal_p[0])
        out["T"].append(cut - cal_p[0])
        out["monetary_value"].append(sum(by[c][p] for p in cal_p[1:]) / f if f else 0.0)
        out["total_minor"].append(sum(by[c][p] for p in cal_p))
        out["holdout_frequency"].append(len(hold))
        out["holdout_monetary_value"].append(sum(by[c][p] for p in hold) / len(hold) if hold else 0.0)
    if cal:
        out["holdout_duration"] = endp - cut
    return out


def summary_vectors():
    rng = random.Random(20240601)
    start = dt.datetime(2023, 1, 2, tzinfo=dt.timezone.utc)  # a Monday
    txs = []
    for c in range(300):
        first = start + dt.timedelta(seconds=rng.randrange(0, 400 * 86400))
        n = rng.choice([1, 1, 1, 2, 3, 5, 8])
        times = [first] + [first + dt.timedelta(seconds=rng.randrange(0, 200 * 86400)) for _ in range(n - 1)]
        if rng.random() < 0.2:  # a second purchase the same day
            times.append(first + dt.timedelta(seconds=rng.randrange(0, 3600)))
        for ts in times:
            txs.append((c * 7 + 3, ts.replace(microsecond=0), rng.randrange(0, 50000)))
    rng.shuffle(txs)
    end = dt.datetime(2024, 1, 31, 12, tzinfo=dt.timezone.utc)
    cal = dt.datetime(2023, 10, 29, 23, 59, 59, tzinfo=dt.timezone.utc)  # a Sunday, end of day and week
    cases = []
    for unit in ["days", "weeks"]:
        for c in [None, cal]:
            s = summary_py(txs, unit, end, c)
            if HAVE_LIFETIMES:
                check_against_lifetimes(txs, unit, end, c, s)
            cases.append({"unit": unit, "calibration_end": c.isoformat() if c else None, "expected": s})
    write("summary.json", {
        "about": "Summaries of a shuffled synthetic purchase log (a plain-Python reference, "
                 "checked against lifetimes where its conventions agree), RFM scores and cohorts.",
        "observation_end": end.isoformat(),
        "transactions": [[c, ts.isoformat(), a] for c, ts, a in txs],
        "cases": cases,
        "rfm": rfm_reference(cases[0]["expected"]),
        "retention": retention_reference(txs, end),
    })


def check_against_lifetimes(txs, unit, end, cal, s):
    # lifetimes' summary counts the whole period of the observation end, but its holdout stops at
    # the instant: give it the last instant of that period, so that both conventions agree.
    days = 1 if unit == "days" else 7
    start_of_period = EPOCH + dt.timedelta(days=period(end, unit) * days - (0 if unit == "days" else 3))
    end = start_of_period + dt.timedelta(days=days) - dt.timedelta(seconds=1)
    df = pd.DataFrame([(c, ts.replace(tzinfo=None), a) for c, ts, a in txs], columns=["id", "date", "amt"])
    freq = "D" if unit == "days" else "W"
    if cal is None:
        lt = summary_data_from_transaction_data(df, "id", "date", monetary_value_col="amt",
                                                observation_period_end=end.replace(tzinfo=None), freq=freq)
        cols = [("frequency", "frequency"), ("recency", "recency"), ("T", "T"), ("monetary_value", "monetary_value")]
    else:
        lt = calibration_and_holdout_data(df, "id", "date", calibration_period_end=cal.replace(tzinfo=None),
                                          observation_period_end=end.replace(tzinfo=None), freq=freq,
                                          monetary_value_col="amt")
        cols = [("frequency", "frequency_cal"), ("recency", "recency_cal"), ("T", "T_cal"),
                ("monetary_value", "monetary_value_cal"), ("holdout_frequency", "frequency_holdout")]
        assert all(lt["duration_holdout"] == s["holdout_duration"])
    lt = lt.sort_index()
    assert list(lt.index) == s["customers"], (unit, cal)
    for mine, theirs in cols:
        a, b = np.array(s[mine], float), lt[theirs].to_numpy(float)
        assert np.allclose(a, b, rtol=1e-12, atol=0), (unit, cal, mine, np.flatnonzero(~np.isclose(a, b))[:5])


def rfm_reference(s):
    from scipy.stats import rankdata

    def score(values, higher_better):
        v = np.asarray(values, float)
        worse = rankdata(v if higher_better else -v, method="min") - 1  # customers strictly worse
        return [int(1 + (5 * w) // len(v)) for w in worse]

    since = [t - r for t, r in zip(s["T"], s["recency"])]
    return {"recency": score(since, False), "frequency": score([f + 1 for f in s["frequency"]], True),
            "monetary": score(s["total_minor"], True)}


def retention_reference(txs, end):
    def month(ts):
        return ts.year * 12 + ts.month - 1

    e = month(end)
    visits = {}
    for c, ts, _ in txs:
        if month(ts) <= e:
            visits.setdefault(c, set()).add(month(ts))
    first = {c: min(v) for c, v in visits.items()}
    start = min(first.values())
    rows = e - start + 1
    sizes = [0] * rows
    active = [[0] * (rows - i) for i in range(rows)]
    for c, v in visits.items():
        k = first[c] - start
        sizes[k] += 1
        for mth in v:
            active[k][mth - first[c]] += 1
    return {"first_cohort": dt.date(start // 12, start % 12 + 1, 1).isoformat(), "sizes": sizes, "active": active}


def main():
    x, tx, T, m = load_cdnow()
    bgnbd_vectors()
    bg_est, _ = cdnow_vectors(x, tx, T, m)
    gamma_gamma_vectors([float(v) for v in bg_est])
    summary_vectors()


if __name__ == "__main__":
    main()
