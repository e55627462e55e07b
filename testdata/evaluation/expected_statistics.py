# Independent expected values for the evaluation statistics (numpy/scipy; not the Java code's algorithm).
# Prints the expected values StatisticsTest (gateway/evaluation-engine) holds the Java statistics to.
import numpy as np, scipy.stats as st, scipy.optimize as so
rng = np.random.default_rng(7)
n = 37
ref_r = np.round(rng.normal(0, 1, n), 3)
var_r = np.round(ref_r + rng.normal(0.3, 1, n), 3)
var_r[5] = ref_r[5]; var_r[11] = ref_r[11]   # ties
ref_len = rng.integers(50, 400, n)
var_len = (ref_len + rng.integers(-100, 300, n)).clip(1)
pref = np.where(var_r > ref_r, 1.0, np.where(var_r < ref_r, 0.0, 0.5))
print("ref_r", ",".join(f"{v:.3f}" for v in ref_r))
print("var_r", ",".join(f"{v:.3f}" for v in var_r))
print("ref_len", ",".join(map(str, ref_len)))
print("var_len", ",".join(map(str, var_len)))
m = var_r.mean(); sem = st.sem(var_r)
lo, hi = st.t.interval(0.95, n - 1, loc=m, scale=sem)
print("mean", repr(m), "sem", repr(sem), "ci", repr(lo), repr(hi))
print("winrate", repr(pref.mean()), "se", repr(st.sem(pref)))
def lc(p, vl, rl, C=100.0):
    d = (rl - vl).astype(float)
    sd = d.std(ddof=1) if len(d) > 1 else 0
    x = np.tanh(d / sd) if sd > 0 else np.zeros_like(d)
    def f(w):
        z = w[0] * x + w[1]
        return (w @ w) / (2 * C) + np.sum(p * np.logaddexp(0, -z) + (1 - p) * np.logaddexp(0, z))
    def g(w):
        z = w[0] * x + w[1]
        r = 1 / (1 + np.exp(-z)) - p
        return w / C + np.array([r @ x, r.sum()])
    r = so.minimize(f, np.zeros(2), jac=g, method="BFGS", options={"gtol": 1e-13, "maxiter": 10000})
    r = so.root(g, r.x, tol=1e-15)   # polish: the gradient's root to machine precision
    return 1 / (1 + np.exp(-r.x[1])), r.x
w_lc, w = lc(pref, var_len, ref_len)
print("lc", repr(w_lc), "weights", repr(w[0]), repr(w[1]))
allwin = np.ones(8); vl8 = np.array([10, 20, 30, 40, 50, 60, 70, 80]); rl8 = np.array([5, 5, 5, 5, 5, 5, 5, 5])
w8, ww8 = lc(allwin, vl8, rl8)
print("lc_allwin", repr(w8), repr(ww8[0]), repr(ww8[1]))
x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
print("quantiles", repr(np.quantile(x, 0.025)), repr(np.quantile(x, 0.975)), repr(np.quantile(x, 0.5)))
def seqrep(t, k=4):
    grams = [tuple(t[i:i + k]) for i in range(len(t) - k + 1)]
    return 0.0 if not grams else 1 - len(set(grams)) / len(grams)
loop = [1, 2, 3, 4, 5] + [7, 8, 9] * 10
print("seqrep_loop", repr(seqrep(loop)), "seqrep_plain", repr(seqrep(list(range(20)))))
