"""Slow, obviously-correct NumPy twins of the metric kernels, under the same names.

Each twin transcribes the reference definition (MIT code, pysaliency) line by
line, with salbench's documented edge-case answers, and nothing from
``salbench.metrics`` is imported. Tests compare kernels against these on small
random maps. Keep this a plain module of functions (other twins are added below).
"""

from __future__ import annotations

import numpy as np

EPS = np.finfo(np.float64).eps  # MATLAB eps


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _is_constant(a):
    """salbench's documented rule (docs/metrics.md), written out: a relative range of 1e-12."""
    a = _f64(a)
    hi, lo = float(a.max()), float(a.min())
    return hi - lo <= 1e-12 * max(abs(hi), abs(lo), np.finfo(np.float64).tiny)


def _without_mass(g):
    """A density that is constant and <= 0 (all zero): the density metrics give NaN."""
    return _is_constant(g) and float(_f64(g).max()) <= 0.0


def _mm_distribution(a):
    a = _f64(a)
    if _is_constant(a):
        return np.full(a.shape, 1.0 / a.size)
    a = (a - a.min()) / (a.max() - a.min())
    return a / a.sum()


def cc(saliency, density):
    s, g = _f64(saliency), _f64(density)
    if _is_constant(g):
        return float("nan")
    if _is_constant(s):
        return 0.0
    zs = (s - s.mean()) / s.std(ddof=1)
    zg = (g - g.mean()) / g.std(ddof=1)
    return float(np.corrcoef(zs.ravel(), zg.ravel())[0, 1])


def nss(saliency, fixations):
    s, f = _f64(saliency), np.asarray(fixations) != 0
    if not f.any():
        return float("nan")
    if _is_constant(s):
        return 0.0
    z = (s - s.mean()) / s.std(ddof=1)
    return float(z[f].mean())


def nss_points(saliency, rows, cols):
    s = _f64(saliency)
    if len(rows) == 0:
        return float("nan")
    if _is_constant(s):
        return 0.0
    return float(((s[np.asarray(rows), np.asarray(cols)] - s.mean()) / s.std()).mean())


def auc_judd(saliency, fixations):
    """MIT AUC_Judd.m, jitter off: one full scan of the map per threshold."""
    s, f = _f64(saliency).ravel(), np.asarray(fixations).ravel() != 0
    n_fix, n_pix = int(f.sum()), s.size
    if n_fix == 0 or n_fix == n_pix:
        return float("nan")
    if _is_constant(s):
        return 0.5
    s = (s - s.min()) / (s.max() - s.min())
    thresholds = np.sort(s[f])[::-1]
    tp = np.zeros(n_fix + 2)
    fp = np.zeros(n_fix + 2)
    tp[-1] = fp[-1] = 1.0
    for i in range(1, n_fix + 1):
        above = np.sum(s >= thresholds[i - 1])
        tp[i] = i / n_fix
        fp[i] = (above - i) / (n_pix - n_fix)
    return float(np.trapezoid(tp, fp))


def _pairs_auc(pos, neg):
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).mean()
    equal = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * equal)


def auc_exact(saliency, fixations):
    s, f = _f64(saliency).ravel(), np.asarray(fixations).ravel() != 0
    if f.any() and _is_constant(s):
        return 0.5
    return _pairs_auc(s[f], s)


def auc_shuffled_exact(saliency, fixations, other):
    s = _f64(saliency).ravel()
    f, o = np.asarray(fixations).ravel() != 0, np.asarray(other).ravel() != 0
    if f.any() and o.any() and _is_constant(s):
        return 0.5
    return _pairs_auc(s[f], s[o])


def _sum_distribution(a):
    a = _f64(a)
    if _is_constant(a):
        return np.full(a.shape, 1.0 / a.size)
    a = a - min(a.min(), 0.0)
    return a / a.sum()


def kld(saliency, density):
    if _without_mass(density):
        return float("nan")
    p, q = _sum_distribution(saliency), _sum_distribution(density)
    return float(np.sum(q * np.log(EPS + q / (p + EPS))))


def sim(saliency, density):
    if _without_mass(density):
        return float("nan")
    return float(np.minimum(_mm_distribution(saliency), _mm_distribution(density)).sum())


def info_gain(saliency, fixations, baseline):
    f = np.asarray(fixations) != 0
    if not f.any():
        return float("nan")
    p, b = _mm_distribution(saliency), _mm_distribution(baseline)
    return float(np.mean(np.log2(EPS + p[f]) - np.log2(EPS + b[f])))


# ----------------------------------------------------------------------------- EMD (MIT EMD.m)
def _keys_cubic(x):
    """Keys' cubic convolution kernel, a = -0.5 (MATLAB imresize 'bicubic')."""
    x = abs(x)
    if x <= 1:
        return 1.5 * x**3 - 2.5 * x**2 + 1
    if x <= 2:
        return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
    return 0.0


def _mirror(i, n):
    """MATLAB imresize's symmetric padding of a 1-based index into 1..n."""
    i = (i - 1) % (2 * n)
    return i + 1 if i < n else 2 * n - i


def imresize_axis(a, out_len, scale, axis):
    """MATLAB imresize (bicubic, antialiasing) along one axis, one output pixel at a time."""
    a = np.moveaxis(_f64(a), axis, 0)
    in_len = a.shape[0]
    width = 4.0 / scale if scale < 1 else 4.0
    out = np.zeros((out_len,) + a.shape[1:])
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = int(np.floor(u - width / 2))
        taps = [left + k for k in range(int(np.ceil(width)) + 2)]
        w = [scale * _keys_cubic(scale * (u - j)) if scale < 1 else _keys_cubic(u - j) for j in taps]
        total = sum(w)
        for j, wj in zip(taps, w):
            out[x - 1] += (wj / total) * a[_mirror(j, in_len) - 1]
    return np.moveaxis(out, 0, axis)


def imresize(a, out_shape, scale=None):
    """MATLAB ``imresize(a, scale)`` (scale given) or ``imresize(a, out_shape)`` (scale = out / in)."""
    a = _f64(a)
    scales = (scale, scale) if scale is not None else (out_shape[0] / a.shape[0], out_shape[1] / a.shape[1])
    return imresize_axis(imresize_axis(a, out_shape[0], scales[0], 0), out_shape[1], scales[1], 1)


def emd_lp(p, q):
    """Plain EMD between two maps of equal shape (already distributions) by linear programming.

    Variables: flow F[i, j] >= 0 from cell i of p to cell j of q; rows sum to p, columns to q;
    minimise sum F * Euclidean distance between cell centres. scipy's HiGHS, no POT.
    """
    from scipy.optimize import linprog

    h, w = np.shape(p)
    p, q = _f64(p).ravel(), _f64(q).ravel()
    cells = [(i // w, i % w) for i in range(p.size)]
    n = p.size
    cost = np.array([np.hypot(a[0] - b[0], a[1] - b[1]) for a in cells for b in cells])
    a_eq = np.zeros((2 * n, n * n))
    for i in range(n):
        a_eq[i, i * n:(i + 1) * n] = 1  # out of cell i of p
        a_eq[n + i, i::n] = 1  # into cell i of q
    # The 2n constraints have rank 2n - 1 (both sides sum to 1); drop one so that masses equal
    # only up to rounding stay feasible.
    res = linprog(cost, A_eq=a_eq[:-1], b_eq=np.concatenate([p, q])[:-1], bounds=(0, None), method="highs")
    assert res.status == 0, res.message
    return float(res.fun)


def _emd_distribution(a, out_shape, scale):
    a = _f64(a)
    if _is_constant(a):
        return np.full(out_shape, 1.0 / (out_shape[0] * out_shape[1]))
    a = a - min(a.min(), 0.0)
    d = np.maximum(imresize(a, out_shape, scale), 0.0)
    return d / d.sum()


def emd(saliency, density, downsample=32, solver=None):
    """salbench's exact EMD variant: downsample, clip negative cells, normalise, transport.

    ``solver(p, q)`` on the two (rows, cols) distributions; default :func:`emd_lp`.
    """
    s, g = _f64(saliency), _f64(density)
    if _without_mass(g):
        return float("nan")
    out = (int(np.ceil(g.shape[0] / downsample)), int(np.ceil(g.shape[1] / downsample)))
    p = _emd_distribution(g, out, 1.0 / downsample)
    q = _emd_distribution(s, out, None)
    return (solver or emd_lp)(p.reshape(out), q.reshape(out))


def emd_pot(p, q):
    """POT's ``ot.emd2`` on the full problem (every cell to every cell, no reduction)."""
    import ot

    h, w = np.shape(p)
    r, c = np.divmod(np.arange(h * w), w)
    dist = np.sqrt((r[:, None] - r[None, :]) ** 2.0 + (c[:, None] - c[None, :]) ** 2.0)
    return float(ot.emd2(_f64(p).ravel(), _f64(q).ravel(), dist, numItermax=10**7))


def _matlab_sum(v):
    """MATLAB's / FastEMD's sum of a vector: one addition after the other."""
    total = 0.0
    for x in v:
        total += float(x)
    return total


def _emd_mit_cells(a, out_shape, scale):
    """EMD.m's ``imresize`` of one map (salbench's rules first: constant -> uniform, shift a minimum < 0)."""
    a = _f64(a)
    if _is_constant(a):
        return np.full(out_shape, 1.0 / (out_shape[0] * out_shape[1]))
    return imresize(a - min(a.min(), 0.0), out_shape, scale)


def emd_mit(saliency, density, downsample=32):
    """MIT's ``EMD.m`` (no histogram matching) and FastEMD's ``emd_hat_gd_metric`` on doubles, transcribed.

    EMD.m: ``im1 = imresize(G, 1/32)``, ``im2 = imresize(s, size(im1))``, each divided by its
    (signed) sum, ``P = im1(:)``, ``Q = im2(:)`` (column-major), ``D(i, j)`` the Euclidean
    distance between cells, extra mass penalty 0. FastEMD (emd_hat_gd_metric, then
    emd_hat_impl<double>, then the integer implementation): the common mass of each cell
    flows at zero cost; masses times 1e6 / max(sum P, sum Q) and distances times 1e6 / max D,
    each ``floor(x + 0.5)``; the side with more mass is the supplier; its surplus flows to a
    threshold node at cost 0; edges of maximal distance are left out and replaced by the
    threshold node's edges to every sink at that cost; the integer min-cost flow (networkx,
    exact) divided back by both factors. A single cell gives 0 (FastEMD divides by max D = 0).
    """
    import networkx as nx

    s, g = _f64(saliency), _f64(density)
    if _without_mass(g):
        return float("nan")
    rows, cols = int(np.ceil(g.shape[0] / downsample)), int(np.ceil(g.shape[1] / downsample))
    im1 = _emd_mit_cells(g, (rows, cols), 1.0 / downsample)
    im2 = _emd_mit_cells(s, (rows, cols), None)
    p_col, q_col = im1.ravel(order="F"), im2.ravel(order="F")
    sum1, sum2 = _matlab_sum(p_col), _matlab_sum(q_col)
    P = [x / sum1 for x in p_col] if sum1 > 0 else [1.0 / p_col.size] * p_col.size
    Q = [x / sum2 for x in q_col] if sum2 > 0 else [1.0 / q_col.size] * q_col.size
    n = len(P)
    cell = [(i % rows, i // rows) for i in range(n)]  # column-major: r1 varies fastest
    D = [[float(np.sqrt((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2)) for b in cell] for a in cell]
    max_d = max(max(row) for row in D)
    if max_d == 0:
        return 0.0
    # emd_hat_gd_metric: pre-flow the zero-cost diagonal
    Pr, Qr = list(P), list(Q)
    for i in range(n):
        if Pr[i] < Qr[i]:
            Qr[i] -= Pr[i]
            Pr[i] = 0.0
        else:
            Pr[i] -= Qr[i]
            Qr[i] = 0.0
    # emd_hat_impl<double>: scale by the ORIGINAL sums and round
    sum_p, sum_q = _matlab_sum(P), _matlab_sum(Q)
    pq_norm = 1e6 / max(sum_p, sum_q)
    c_norm = 1e6 / max_d
    iP = [int(np.floor(x * pq_norm + 0.5)) for x in Pr]
    iQ = [int(np.floor(x * pq_norm + 0.5)) for x in Qr]
    iC = [[int(np.floor(d * c_norm + 0.5)) for d in row] for row in D]
    # integer emd_hat: the supplier has the larger total; threshold node absorbs the difference
    if sum(iQ) > sum(iP):
        iP, iQ = iQ, iP
        iC = [list(col) for col in zip(*iC)]
    imax = max(max(row) for row in iC)
    graph = nx.DiGraph()
    graph.add_node("threshold", demand=sum(iP) - sum(iQ))
    for i in range(n):
        if iP[i]:
            graph.add_node(("p", i), demand=-iP[i])
            graph.add_edge(("p", i), "threshold", weight=0)
        if iQ[i]:
            graph.add_node(("q", i), demand=iQ[i])
            graph.add_edge("threshold", ("q", i), weight=imax)
    for i in range(n):
        for j in range(n):
            if iP[i] and iQ[j] and iC[i][j] != imax:
                graph.add_edge(("p", i), ("q", j), weight=iC[i][j])
    cost = nx.min_cost_flow_cost(graph)
    return cost / pq_norm / c_norm


# ----------------------------------------------------------------------------- MIT ground truth
def antonio_gaussian(img, fc):
    """antonioGaussian.m (Torralba 1999), line by line: n x n zero padding, FFT, crop."""
    img = _f64(img)
    sn, sm = img.shape
    n = max(sn, sm)
    n = n + n % 2
    n = int(2 ** np.ceil(np.log2(n)))
    fx, fy = np.meshgrid(np.arange(n), np.arange(n))
    fx = fx - n / 2
    fy = fy - n / 2
    s = fc / np.sqrt(np.log(2))
    gf = np.fft.fftshift(np.exp(-(fx**2 + fy**2) / s**2))
    bf = np.real(np.fft.ifft2(np.fft.fft2(img, (n, n)) * gf))
    return bf[:sn, :sm]


# ----------------------------------------------------------------------------- SALICON server
def _server_roc(pos, neg, weights, step):
    """The server's ROC: thresholds arange(0, max, step) descending, (0,0) and (1,1) added."""
    thr = np.arange(0, max(pos.max(), neg.max()), step)[::-1]
    tp = [0.0] + [np.mean(pos >= t) for t in thr] + [1.0]
    fp = [0.0] + [weights[neg >= t].sum() / weights.sum() for t in thr] + [1.0]
    return float(np.trapezoid(tp, fp))


def _server_normalise(s):
    s = _f64(s) - _f64(s).min()
    return s / s.max() if s.max() > 0 else s


def auc_salicon(saliency, points, draw, step):
    """Server AUC given its draw of flat pixel indices; documented edge answers."""
    points = np.asarray(points).reshape(-1, 2)
    if len(points) == 0:
        return float("nan")
    if _is_constant(saliency):
        return 0.5
    s = _server_normalise(saliency)
    neg = s.ravel()[np.asarray(draw)]
    return _server_roc(s[points[:, 0], points[:, 1]], neg, np.ones(neg.size), step)


def sauc_salicon(saliency, points, shuffle_map, step):
    """Server sAUC: the shuffle map's pixels (own points zeroed) weighted by their counts."""
    points = np.asarray(points).reshape(-1, 2)
    if len(points) == 0:
        return float("nan")
    others = _f64(shuffle_map).copy()
    others[points[:, 0], points[:, 1]] = 0
    if not others.any():
        return float("nan")
    if _is_constant(saliency):
        return 0.5
    s = _server_normalise(saliency)
    ind = np.nonzero(others)
    return _server_roc(s[points[:, 0], points[:, 1]], s[ind], others[ind], step)
