"""Theory check of metric-specific maps: gold and center_bias on synthetic val under ``mit``.

For each image, each ``mit`` metric is computed by its registry function with the inputs and
seeds the ``mit`` protocol uses (its per-image reference path: same other-image draws, same
seed table), once on the model's raw map (resized as the protocol resizes) and once on the
metric's map derived from the model's log-density (:mod:`salbench.protocols.metric_maps`).
Prints a markdown table (mean of each, mean paired difference with its 95% CI) and writes
the per-image values as JSON. "other equalisation": AUC-Borji on ``p`` itself, sAUC on the
equalised log-ratio (the defaults are the equalised ``p`` and the plain log-ratio).

    OPENBLAS_NUM_THREADS=1 python tests/benchmarks/metric_maps_gold.py --n 100 --out /tmp/metric_maps_gold.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from salbench.data import get_dataset
from salbench.metrics.registry import get_metric
from salbench.models import create_model
from salbench.protocols import get_protocol
from salbench.protocols import metric_maps as mm
from salbench.protocols._draws import others_excluding_self, seed_table
from salbench.protocols._metrics import call_metric
from salbench.protocols._resize import matlab_bicubic
from salbench.protocols.base import as_prediction, resize_keeping_constants
from salbench.protocols.mit import _baseline, _density, _inputs, _points_of, _seed_for
from salbench.stats import mean_ci95

ALTERNATIVE = ("auc_borji", "auc_shuffled")  # binned AUCs: also scored with the other equalisation choice


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="gold,center_bias")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    proto = get_protocol("mit")
    params = proto.params
    metrics = proto.metrics
    ds = get_dataset("synthetic", "val")
    records = [ds[i] for i in range(args.n)]
    n = len(records)
    rng = np.random.default_rng(args.seed)
    others = others_excluding_self(n, int(params["n_other"]), rng)  # the mit scorer's draws
    seeds = seed_table(rng, n, 3)

    def inputs_of(i):
        r = records[i]
        f = np.asarray(r.fixation_map, dtype=bool)
        other = np.zeros(r.shape, dtype=bool)
        for j in others[i]:
            if records[int(j)].shape == r.shape:
                other |= np.asarray(records[int(j)].fixation_map, dtype=bool)
        return _inputs(f, _density(proto, r, f), other, _points_of(r), _baseline(r.shape, params["ig_baseline_sigma"]))

    out = {"n": n, "seed": args.seed, "protocol": params, "models": {}}
    for name in args.models.split(","):
        model = create_model(name)
        t0 = time.time()
        lds = [mm.resize_log_density(model.predict_log_density([r])[0], r.shape) for r in records]
        base = mm.ShuffledBaseline()
        for ld in lds:  # pass 1: the leave-one-out baseline's running sum
            base.add(ld)
        raw = {k: np.full(n, np.nan) for k in metrics}
        spec = {k: np.full(n, np.nan) for k in metrics}
        alt = {k: np.full(n, np.nan) for k in ALTERNATIVE}
        mix = []
        for i, r in enumerate(records):  # pass 2
            inp = inputs_of(i)
            s_raw = resize_keeping_constants(as_prediction(model.predict([r])[0], i), r.shape, matlab_bicubic)
            lb = base.log_baseline_excluding(lds[i])
            maps = mm.metric_specific_maps(lds[i], proto, metrics=[k for k in metrics if k != "sim"], log_baseline=lb)
            maps["sim"], info = mm.sim_map(np.exp(lds[i]), proto, seed=mm.image_seed(args.seed, i))
            mix.append(info["mix_weight"])
            altm = mm.metric_specific_maps(lds[i], proto, metrics=list(ALTERNATIVE), log_baseline=lb,
                                           equalize_auc=False, equalize_sauc=True)
            for k in metrics:
                sd = _seed_for(k, seeds, i, n)
                raw[k][i] = call_metric(k, s_raw, inp, params, seed=sd)
                spec[k][i] = call_metric(k, maps[k], inp, params, seed=sd)
                if k in ALTERNATIVE:
                    alt[k][i] = call_metric(k, altm[k], inp, params, seed=sd)
        secs = time.time() - t0
        # the raw path must be the protocol's own numbers
        check = proto.evaluate([model.predict([r])[0] for r in records], records, seed=args.seed).scores
        worst = max(float(np.nanmax(np.abs(check[k] - raw[k]))) for k in metrics)
        out["models"][name] = {"raw": {k: v.tolist() for k, v in raw.items()},
                               "metric_specific": {k: v.tolist() for k, v in spec.items()},
                               "alternative": {k: v.tolist() for k, v in alt.items()},
                               "raw_vs_protocol_evaluate_max_abs": worst, "seconds": secs,
                               "sim_mix_weight": mix,
                               "derivation": mm.derivation_record(proto, shape=records[0].shape, seed=args.seed,
                                                                  baseline=base)}
        print(f"\n### {name} (n={n}, {secs:.0f} s; raw vs protocol.evaluate: max |diff| {worst:.1e})\n")
        print(f"SIM optimum's weight in the mix: { {float(w): mix.count(w) for w in sorted(set(mix))} }\n")
        print("| metric | raw map | metric-specific | difference [95% CI] | other equalisation |")
        print("|---|---|---|---|---|")
        for k in metrics:
            better = 1 if get_metric(k).higher_is_better else -1
            d = spec[k] - raw[k]
            m, ci = mean_ci95(d)
            e = f"{np.nanmean(alt[k]):.4f}" if k in ALTERNATIVE else ""
            arrow = "higher" if better > 0 else "lower"
            print(f"| {get_metric(k).label} ({arrow}) | {np.nanmean(raw[k]):.4f} | {np.nanmean(spec[k]):.4f} | "
                  f"{m:+.4f} [{ci[0]:+.4f}, {ci[1]:+.4f}] | {e} |")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(out, fh)


if __name__ == "__main__":
    main()
