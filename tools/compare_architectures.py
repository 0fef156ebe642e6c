"""Paper-size against small DenseNet-BC on the same demo splits, with a reduced protocol.

Both networks train the same way (age; the same seeds, the demo "train"
split, epochs chosen on "validation", the spread scale fitted on
"validation"), with a budget a shared 2-core machine affords: ``--members``
members of ``--epochs`` epochs each, lr 1e-3 cosine. What it measures on the
"test" split: ensemble and member M2, 68% coverage of the calibrated
interval; and training seconds per member and 10-member inference
throughput on this machine. The paper-size network's full protocol
(10 x 450 epochs, ~4 h on a quiet machine by ``benchmarks/results/ensemble.md``)
does not fit; the question here is whether its extra capacity shows at
equal, short training, and what it costs.

Usage (writes ``benchmarks/results/arch_compare.json``, which
``benchmarks/bench_trust.py`` reports)::

    python tools/compare_architectures.py --members 2 --epochs 6
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "benchmarks" / "results" / "arch_compare.json"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--members", type=int, default=2)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--target", default="age", choices=["age", "mass"])
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args()

    import torch

    from rgbkit import datasets, metrics
    from rgbkit.ensemble import Ensemble
    from rgbkit.models.densenet import count_parameters, paper_config, small_config
    from rgbkit.train import TrainConfig

    torch.set_num_threads(1)
    a = datasets.demo_arrays()
    (Xtr, ltr), (Xv, lv), (Xte, lte) = a["train"], a["validation"], a["test"]
    t = args.target
    res = {"target": t, "members": args.members, "epochs": args.epochs, "lr": 1e-3, "schedule": "cosine",
           "threads": 1, "n_train": len(Xtr), "n_val": len(Xv), "n_test": len(Xte), "nets": {}}
    for name, cfg in (("small_config", small_config()), ("paper_config", paper_config())):
        t0 = time.perf_counter()
        ens = Ensemble.fit(Xtr, ltr[t].to_numpy(), t, n_members=args.members, model_config=cfg,
                           train_config=TrainConfig(epochs=args.epochs, lr=1e-3, lr_schedule="cosine", device="cpu"),
                           X_val=Xv, y_val=lv[t].to_numpy(), progress=False)
        wall = time.perf_counter() - t0
        y = lte[t].to_numpy()
        pt = ens.predict(Xte)
        # throughput of a 10-member ensemble of this network: time 10 member passes over 512 spectra
        X = Xte[:512]
        m0 = ens.members[0]
        with torch.inference_mode():
            xb = torch.from_numpy(np.ascontiguousarray(X))
            m0(xb[:64])
            t1 = time.perf_counter()
            for _ in range(10):
                for i in range(0, len(xb), 128):
                    m0(xb[i:i + 128])
            inf = len(X) / (time.perf_counter() - t1)
        res["nets"][name] = {
            "parameters": count_parameters(m0), "weights_mb_10_members": round(10 * 4 * count_parameters(m0) / 1e6, 2),
            "test_m2": metrics.m2(y, pt.mean), "test_m1": metrics.m1(y, pt.mean),
            "test_member_m2": [metrics.m2(y, q) for q in pt.members],
            "test_coverage_68": metrics.coverage(y, pt.mean, pt.std),
            "val_m2": ens.card["metrics"]["val"]["m2"], "spread_scale": ens.spread_scale,
            "train_seconds_per_member": round(wall / args.members, 1),
            "inference_10_members_spectra_per_s": round(inf, 1),
        }
        print(name, json.dumps(res["nets"][name]), flush=True)
    Path(args.out).write_text(json.dumps(res, indent=2))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
