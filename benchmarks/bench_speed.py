"""Before/after speed of training, inference and preprocessing, in one run; writes benchmarks/results/speed.md.

"Before" is today's code path, "after" the packed ensembles
(``rgbkit.models.packed``, ``rgbkit.packed_train``) and the smaller
preprocessing chunks. The machine is shared, so every comparison is made
within this one run, the methods interleaved round by round, and the ratio is
the median of the per-round ratios; the load average is noted per section.

1. Training, spectra/s (member updates): 10 members, one epoch each on the
   same demo subset, member by member (``train_member``) against all at once
   (``train_members_packed``), for ``paper_config`` and ``small_config``; and
   a few variants of the packed step (batch 256, one shared data order, oneDNN
   convolutions in bf16, grouped Conv1d instead of channels-last Conv2d).
2. Inference, spectra/s through a 10-member ensemble: ``Ensemble.predict``
   member loop (today's default), the catalog's fused members
   (``catalog.fast_model``), and the fused packed network (the new default);
   ``inference_mode`` against ``no_grad``.
3. Preprocessing, spectra/s: ``Preprocessor.run`` in chunks of 256 (before)
   and 64 rows (after), 1 and 2 threads.
4. Accuracy on a reduced protocol (SIMULATED demo data): an age ensemble of
   ``small_config`` members trained member by member and packed, same seeds
   and settings, early stopping on a validation split; M1/M2 on the demo's
   validation split, which chose nothing here (our test set).
5. The estimate for the 10-member paper-size ensemble to its best epoch.

Usage::

    python benchmarks/bench_speed.py              # ~20 minutes on 2 busy cores
    python benchmarks/bench_speed.py --quick      # fewer rounds, no accuracy run
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's rgbkit
from rgbkit import __version__, metrics  # noqa: E402
from rgbkit.ensemble import PRETRAINED_DIR, Ensemble  # noqa: E402
from rgbkit.models.densenet import DenseNet1D, paper_config, small_config  # noqa: E402
from rgbkit.models.packed import PackedDenseNet1D  # noqa: E402
from rgbkit.packed_train import train_members_packed  # noqa: E402
from rgbkit.train import TrainConfig, train_member  # noqa: E402

HERE = Path(__file__).resolve().parent
N_MEMBERS = 10


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def interleaved(methods: dict, rounds: int) -> dict:
    """Run each method once per round, in turn; {name: [rate per round]} (rates in spectra/s)."""
    out = {k: [] for k in methods}
    for _ in range(rounds):
        for name, fn in methods.items():
            out[name].append(fn())
    return out


def summary(rates: dict, base: str) -> list[tuple[str, float, float]]:
    """(name, median rate, median of per-round ratios to ``base``)."""
    return [(k, statistics.median(v), statistics.median(a / b for a, b in zip(v, rates[base])))
            for k, v in rates.items()]


def timed(fn, n_spectra: int):
    def run():
        t = time.perf_counter()
        fn()
        return n_spectra / (time.perf_counter() - t)
    return run


# ------------------------------------------------------------------ training
def training(d, rounds: int, lines: list[str]) -> dict:
    n_tr, n_va = 320, 64
    Xt, Xv = d["X_train"][:n_tr], d["X_val"][:n_va]
    yt = d["labels_train"]["age"].to_numpy(np.float64)[:n_tr]
    yv = d["labels_val"]["age"].to_numpy(np.float64)[:n_va]
    seeds = list(range(N_MEMBERS))
    total = N_MEMBERS * n_tr
    lines += ["## 1. Training (spectra/s = member updates per second)", "",
              f"{N_MEMBERS} members, one epoch each on {n_tr} demo spectra (+ a validation pass over {n_va}), "
              f"batch 64, {torch.get_num_threads()} threads, {rounds} interleaved rounds. "
              f"Load average at start: {load()}.", "",
              "| network | method | spectra/s | vs member loop |", "| --- | --- | ---: | ---: |"]
    res = {}
    for name, mc in (("paper_config", paper_config()), ("small_config", small_config())):
        tc = TrainConfig(epochs=1, batch_size=64, lr=1.5e-4, device="cpu")

        def loop():
            for s in seeds:
                train_member(Xt, yt, Xv, yv, mc, TrainConfig(**{**tc.to_dict(), "seed": s}), progress=False)

        methods = {
            "member loop (today)": timed(loop, total),
            "packed, own data orders": timed(lambda: train_members_packed(Xt, yt, Xv, yv, seeds, mc, tc,
                                                                          progress=False), total),
            "packed, one shared order": timed(lambda: train_members_packed(Xt, yt, Xv, yv, seeds, mc, tc,
                                                                           own_order=False, progress=False), total),
            "packed, batch 256": timed(lambda: train_members_packed(
                Xt, yt, Xv, yv, seeds, mc, TrainConfig(epochs=1, batch_size=256, lr=3e-4, device="cpu"),
                progress=False), total),
        }
        rates = interleaved(methods, rounds)
        res[name] = rates
        for k, r, ratio in summary(rates, "member loop (today)"):
            lines.append(f"| {name} | {k} | {r:,.0f} | {ratio:.2f}x |")
    lines += ["", f"Load average after: {load()}.", ""]
    return res


def step_variants(rounds: int, lines: list[str]) -> None:
    """Packed paper-size training steps: layout and oneDNN settings."""
    mc = paper_config()
    X, z = torch.rand(64, N_MEMBERS, 64, 64), torch.randn(N_MEMBERS, 64)
    nets = {}

    def make():
        torch.manual_seed(0)
        return PackedDenseNet1D.from_members([DenseNet1D(mc) for _ in range(N_MEMBERS)]).train()

    def stepper(net, ctx=contextlib.nullcontext, x=X):
        opt = torch.optim.Adam(net.parameters(), 1e-4)

        def step():
            t = time.perf_counter()
            for _ in range(2):
                with ctx():
                    loss = torch.nn.functional.huber_loss(net(x).float(), z, reduction="none").mean(1).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
            return 2 * 64 * N_MEMBERS / (time.perf_counter() - t)
        return step

    nets["fp32 channels-last Conv2d (--precision float32)"] = stepper(make())
    nets["bf16 autocast"] = stepper(make(), lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    base_net = make()
    fp = getattr(torch.backends.mkldnn, "conv", None)

    def with_bf16_conv():
        old = fp.fp32_precision
        fp.fp32_precision = "bf16"
        try:
            return stepper(base_net)()
        finally:
            fp.fp32_precision = old
    if fp is not None and hasattr(fp, "fp32_precision"):
        nets["oneDNN conv fp32_precision=bf16"] = with_bf16_conv

    rates = interleaved(nets, rounds)
    lines += ["Packed paper-size training step variants (batch 64 per member, 10 members, random data; "
              "spectra/s). Since 2026-12-02 bf16 autocast is what `--precision auto` (the default of `rgbkit train` "
              "and `tools/train_pretrained.py`) uses on a CPU with native bfloat16; the others are listed to say "
              "what they would give on this CPU (AVX512-BF16).", "",
              "| variant | spectra/s | vs float32 |", "| --- | ---: | ---: |"]
    for k, r, ratio in summary(rates, "fp32 channels-last Conv2d (--precision float32)"):
        lines.append(f"| {k} | {r:,.0f} | {ratio:.2f}x |")

    # the dominant layer: the three parallel convolutions of a dense layer, grouped over 10 members
    import torch.nn.functional as F
    n, c, length = N_MEMBERS, 96, 64
    x1 = torch.rand(64, n * c, length, requires_grad=True)
    x2 = x1.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last).requires_grad_()
    ws1 = [torch.rand(n * 8, c, k, requires_grad=True) for k in (3, 7, 15)]
    ws2 = [w.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last).requires_grad_() for w in ws1]
    xs = [torch.rand(64, c, length, requires_grad=True) for _ in range(n)]
    wl = [[torch.rand(8, c, k, requires_grad=True) for k in (3, 7, 15)] for _ in range(n)]

    def conv1d():
        sum(F.conv1d(x1, w, padding=w.shape[-1] // 2, groups=n).sum() for w in ws1).backward()

    def conv2d():
        sum(F.conv2d(x2, w, padding=(0, w.shape[-1] // 2), groups=n).sum() for w in ws2).backward()

    def loop():
        sum(F.conv1d(a, w, padding=w.shape[-1] // 2).sum() for a, ws in zip(xs, wl) for w in ws).backward()

    rates = interleaved({"10 x Conv1d (member loop)": timed(loop, 64 * n),
                         "grouped Conv1d (batch, C, L)": timed(conv1d, 64 * n),
                         "grouped Conv2d channels-last (used)": timed(conv2d, 64 * n)}, rounds * 2)
    lines += ["", "The dense layer's parallel convolutions (kernels 3/7/15, 96 -> 3 x 8 maps, paper size), "
              "forward + backward, 10 members, batch 64:", "",
              "| layout | spectra/s | vs member loop |", "| --- | ---: | ---: |"]
    for k, r, ratio in summary(rates, "10 x Conv1d (member loop)"):
        lines.append(f"| {k} | {r:,.0f} | {ratio:.2f}x |")
    lines += ["", f"Load average after: {load()}.", ""]


# ------------------------------------------------------------------ inference
def inference(d, rounds: int, lines: list[str]) -> dict:
    import copy

    X = d["X_val"][:512]
    lines += ["## 2. Inference (spectra/s through a 10-member ensemble)", "",
              f"{len(X)} demo spectra per call, {torch.get_num_threads()} threads, {rounds} interleaved rounds; "
              "members with random weights and BN statistics from one training-mode pass. "
              f"Load average at start: {load()}.", "",
              "| network | method | spectra/s | vs member loop |", "| --- | --- | ---: | ---: |"]
    res = {}
    for name, mc in (("paper_config", paper_config()), ("small_config", small_config())):
        members = []
        for i in range(N_MEMBERS):
            torch.manual_seed(i)
            m = DenseNet1D(mc)
            m.set_input_scaling(d["X_train"][:500])
            with torch.no_grad():
                m.train()(torch.from_numpy(d["X_train"][:64]))
            members.append(m.eval())
        from rgbkit.train import TargetScaler
        ens = Ensemble(members, TargetScaler("log", 1.0, 0.5), "age", device="cpu")
        fast = copy.copy(ens)  # what the catalog ran before: each member fused (DenseNet1D.fused), in a loop
        fast.members = [m.fused() for m in members]
        a = ens.predict(X, method="loop").members
        b = ens.predict(X).members
        assert np.allclose(a, b, rtol=1e-4, atol=1e-5), "packed and loop differ"
        net = ens.packed_network()
        xt = torch.from_numpy(X)
        bf = copy.copy(ens)  # the catalog's default on a CPU with native bfloat16 (rgbkit.precision)
        bf.precision = "bfloat16"
        c = bf.predict(X).members
        bf_diff = float(np.abs(np.log(c.mean(0) / b.mean(0))).max())

        def raw(ctx):
            def f():
                with ctx():
                    for i in range(0, len(xt), 256):
                        net(xt[i:i + 256])
            return f

        methods = {
            "member loop, Ensemble.predict (today)": timed(lambda: ens.predict(X, method="loop"), len(X)),
            "fused members in a loop (the catalog before)": timed(
                lambda: fast.predict(X, batch_size=128, method="loop"), len(X)),
            "packed + fused, Ensemble.predict (new default)": timed(lambda: ens.predict(X), len(X)),
            "packed + fused, network only, inference_mode": timed(raw(torch.inference_mode), len(X)),
            "packed + fused, network only, no_grad": timed(raw(torch.no_grad), len(X)),
            "packed + fused, bfloat16, Ensemble.predict (catalog default here)": timed(
                lambda: bf.predict(X, batch_size=128), len(X)),
        }
        rates = interleaved(methods, rounds)
        res[name] = rates
        for k, r, ratio in summary(rates, "member loop, Ensemble.predict (today)"):
            lines.append(f"| {name} | {k} | {r:,.0f} | {ratio:.2f}x |")
        lines.append(f"| {name} | largest |packed - loop| (members, Gyr) | {np.abs(a - b).max():.1e} | |")
        lines.append(f"| {name} | largest |ln(bfloat16 mean / float32 mean)| | {bf_diff:.1e} | |")
    lines += ["", f"Load average after: {load()}.", ""]
    return res


# ------------------------------------------------------------------ preprocessing
def preprocessing(rounds: int, lines: list[str]) -> dict:
    from rgbkit.preprocess import Preprocessor

    sys.path.insert(0, str(HERE))
    from bench_preprocess import make_spectra

    n = 4096
    wl, flux, wls, fls = make_spectra(n)
    p = Preprocessor()
    a, b = p.run(wls, fls, chunk_size=256).X, p.run(wls, fls).X
    same = bool(np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(a[~np.isnan(a)], b[~np.isnan(b)]))
    methods = {}
    for grid, args in (("shared grid", (wl, flux)), ("per-spectrum grids", (wls, fls))):
        for jobs in (1, 2):
            for chunk in (256, 64):
                methods[(grid, jobs, chunk)] = timed(lambda a=args, j=jobs, c=chunk: p.run(*a, chunk_size=c, n_jobs=j), n)
    lines += ["## 3. Preprocessing (steps 2-7, spectra/s)", "",
              f"{n} LAMOST-like spectra (`bench_preprocess.make_spectra`), {rounds} interleaved rounds. "
              f"Chunks of 64 and 256 rows give identical outputs: {same}. Load average at start: {load()}.", "",
              "| grid | threads | chunk 256 (before) | chunk 64 (after) | ratio |", "| --- | ---: | ---: | ---: | ---: |"]
    rates = interleaved(methods, rounds)
    for grid in ("shared grid", "per-spectrum grids"):
        for jobs in (1, 2):
            before, after = rates[(grid, jobs, 256)], rates[(grid, jobs, 64)]
            ratio = statistics.median(x / y for x, y in zip(after, before))
            lines.append(f"| {grid} | {jobs} | {statistics.median(before):,.0f} | "
                         f"{statistics.median(after):,.0f} | {ratio:.2f}x |")
    best = {k: max(v) for k, v in rates.items()}
    lines += ["", f"Best single run, shared grid, 2 threads, chunk 64: {best[('shared grid', 2, 64)]:,.0f} spectra/s "
              f"(chunk 256: {best[('shared grid', 2, 256)]:,.0f}). Load average after: {load()}.", ""]
    return rates


# ------------------------------------------------------------------ accuracy
def accuracy(d, members: int, epochs: int, lines: list[str]) -> dict:
    rng = np.random.default_rng(0)
    X, y = d["X_train"], d["labels_train"]["age"].to_numpy(np.float64)
    idx = rng.permutation(len(X))
    n_val = len(X) // 5
    va, tr = np.sort(idx[:n_val]), np.sort(idx[n_val:])
    Xtest, ytest = d["X_val"], d["labels_val"]["age"].to_numpy(np.float64)
    tc = TrainConfig(epochs=epochs, batch_size=64, lr=1e-3, lr_schedule="cosine", patience=max(4, epochs // 3),
                     device="cpu")
    out = {}
    lines += ["## 4. Accuracy: member by member against packed (reduced protocol, SIMULATED demo data)", "",
              f"Age, {members} members of small_config, up to {epochs} epochs (Adam lr 1e-3 cosine, batch 64, "
              f"patience {tc.patience}), seeds 0..{members - 1}. The demo training split is cut 80:20 into "
              f"training ({len(tr)}) and early-stopping validation ({len(va)}); the metrics are on the demo's "
              f"validation split ({len(Xtest)} spectra), which chose nothing here. Reduced because the full "
              "protocol (10 paper-size members, up to 450 epochs, twice) does not fit in this session on "
              f"the shared machine. Load average at start: {load()}.", "",
              "| training | wall (s) | best epochs | test M1 (Gyr) | test M2 (%) | members' test M2 (%) |",
              "| --- | ---: | --- | ---: | ---: | --- |"]
    for packed in (False, True):
        t = time.perf_counter()
        ens = Ensemble.fit(X[tr], y[tr], "age", n_members=members, model_config=small_config(), train_config=tc,
                           X_val=X[va], y_val=y[va], progress=False, packed=packed)
        wall = time.perf_counter() - t
        p = ens.predict(Xtest)
        mm = [metrics.m2(ytest, q) for q in p.members]
        row = {"wall": wall, "best_epochs": [m["best_epoch"] for m in ens.card["members"]],
               "m1": metrics.m1(ytest, p.mean), "m2": metrics.m2(ytest, p.mean), "member_m2": mm}
        out["packed" if packed else "loop"] = row
        lines.append(f"| {'packed (all at once)' if packed else 'member by member (today)'} | {wall:.0f} | "
                     f"{row['best_epochs']} | {row['m1']:.3f} | {row['m2']:.1f} | {min(mm):.1f}-{max(mm):.1f} |")
    lines += ["", f"Load average after: {load()}.", ""]
    return out


# ------------------------------------------------------------------ catalog end to end
def ten_member_models(folder: Path) -> dict:
    """Age, mass and classifier folders of 10 members each, made from the shipped members (weights cycled)."""
    import copy

    from rgbkit.classify import Classifier

    out = {}
    for name, cls in (("age", Ensemble), ("mass", Ensemble), ("classifier", Classifier)):
        src = cls.load(PRETRAINED_DIR / name)
        src.members = [copy.deepcopy(src.members[i % len(src.members)]) for i in range(N_MEMBERS)]
        src.card["members"] = [{} for _ in range(N_MEMBERS)]
        if src.card.get("debias"):  # readable by the 'before' code too (same speed either way)
            src.card["debias"].pop("sigma_floor", None)
        out[name] = src.save(folder / name, overwrite=True)
    return out


def _survey_folder(tmp: Path, n_files: int) -> Path:
    """A folder of ``n_files`` links to the cached 4,000 simulated DR7 files (each file under several names)."""
    sys.path.insert(0, str(HERE))
    from bench_catalog import survey_files

    base = survey_files(4000)
    folder = tmp / f"in{n_files}"
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n_files):
        src = base[k % len(base)]
        (folder / f"c{k // len(base)}_{src.name}").symlink_to(src)
    return folder


def cpu_times() -> list[int]:
    """The machine's CPU time counters (/proc/stat: user nice system idle iowait irq softirq steal)."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return []


def steal_note(before: list[int]) -> str:
    """Share of CPU time the hypervisor gave to other machines since ``before`` (a shared VM's noise)."""
    now = cpu_times()
    if not before or not now:
        return "steal time unknown"
    d = [b - a for a, b in zip(before, now)]
    return f"CPU steal time {100 * d[7] / max(1, sum(d)):.0f}% (time the host ran other machines on these cores)"


def catalog_end_to_end(sizes, rounds: int, before_root: str, lines: list[str], float32: bool = False) -> None:
    """``rgbkit catalog`` as users run it (a fresh process, start-up included, default flags):
    the code at ``before_root`` against this checkout in float32 and with its default precision."""
    import subprocess
    import tempfile

    from rgbkit.precision import resolve_precision

    tmp = Path(tempfile.mkdtemp(prefix="rgbkit_speed_"))
    ten = ten_member_models(tmp / "models")
    ten_age_mass = ["--age-model", str(ten["age"]), "--mass-model", str(ten["mass"])]
    model_sets = {"shipped (age 3, mass 3, classifier 5)": [],
                  "10-member age and mass, shipped classifier": ten_age_mass,
                  "10 members each (shipped weights cycled)": ten_age_mass + ["--classifier", str(ten["classifier"])]}
    variants = {"before": (before_root, []), "after, default": (str(HERE.parent), [])}
    if float32:
        variants["after, float32"] = (str(HERE.parent), ["--precision", "float32"])
    folders = {n: _survey_folder(tmp, n) for n in sizes}
    start, cpu0 = load(), cpu_times()
    wall: dict = {}
    for r in range(rounds):
        for mname, mflags in model_sets.items():
            for n, folder in folders.items():
                for vname, (root, vflags) in variants.items():
                    cmd = [sys.executable, "-m", "rgbkit.cli", "catalog", str(folder), "-o", str(tmp / "out"),
                           *mflags, "--restart", "--quiet", *vflags]
                    env = {**os.environ, "PYTHONPATH": root}
                    for k in ("RGBKIT_THREADS", "RGBKIT_PRECISION"):
                        env.pop(k, None)
                    t = time.perf_counter()
                    subprocess.run(cmd, env=env, check=True, cwd=tmp, capture_output=True)
                    wall.setdefault((mname, n, vname), []).append(time.perf_counter() - t)
                    print(f"  catalog {mname[:12]} {n} {vname}: {wall[(mname, n, vname)][-1]:.2f} s", flush=True)
    lines += ["## 8. `rgbkit catalog` end to end, default flags (read, preprocess, label fit, classify, age, mass, write)",
              "",
              f"The command exactly as users run it (`rgbkit catalog FOLDER -o OUT`, a fresh Python process: "
              f"start-up and model loading included; its default of one worker process per core from "
              f"{2000 * 2:,} files on 2 cores), on simulated DR7 files (`bench_catalog.survey_files`: 4,000 files, "
              f"linked under several names for the larger runs). 'before' = the same command from {before_root}; "
              f"'after' = this checkout with its default precision (`auto`: here "
              f"{resolve_precision('auto')}){' and with `--precision float32`' if float32 else ''}. {rounds} "
              f"interleaved rounds, median wall. Load average (1/5/15 min) at start: {start}; at end: {load()}; "
              f"{steal_note(cpu0)}.", "",
              "| models | files | before (spectra/s) | after (spectra/s) |"
              + (" after, float32 |" if float32 else "") + " after / before (per-round ratios) |",
              "| --- | ---: | ---: | ---: |" + (" ---: |" if float32 else "") + " ---: |"]
    for mname in model_sets:
        for n in folders:
            w = {v: statistics.median(wall[(mname, n, v)]) for v in variants}
            ratios = ", ".join(f"{b / a:.2f}" for a, b in zip(wall[(mname, n, "after, default")], wall[(mname, n, "before")]))
            lines.append(f"| {mname} | {n:,} | {n / w['before']:,.0f} | {n / w['after, default']:,.0f} |"
                         + (f" {n / w['after, float32']:,.0f} |" if float32 else "")
                         + f" {w['before'] / w['after, default']:.2f}x ({ratios}) |")
    lines.append("")


def estimate(train_rates: dict, lines: list[str], n_train: int = 2764, n_val: int = 692) -> None:
    card = json.loads((PRETRAINED_DIR / "age" / "card.json").read_text())
    best = [m["best_epoch"] for m in card["members"]]
    run = [m["epochs_run"] for m in card["members"]]
    rates = {k: statistics.median(v) for k, v in train_rates["paper_config"].items()}
    lines += ["## 5. The 10-member paper-size ensemble, one target", "",
              f"From the paper_config rates of section 1 (this run, {torch.get_num_threads()} threads, load as noted), "
              f"{n_train} training spectra per epoch per member (the validation pass is inside those rates). "
              f"Epochs: the paper's 450 (age), and the shipped recipe (lr 1e-3 cosine, patience 30): "
              f"best epochs {best}, stopped after {run} (rgbkit/pretrained/age/card.json).", "",
              "| method | s/epoch (10 members) | to epoch 450 | to best epoch (max of " + str(max(best)) + ") "
              "| to early stop (" + str(max(run)) + ") |", "| --- | ---: | ---: | ---: | ---: |"]
    for k in ("member loop (today)", "packed, own data orders"):
        s = N_MEMBERS * n_train / rates[k]
        lines.append(f"| {k} | {s:.0f} | {450 * s / 3600:.1f} h | {max(best) * s / 60:.0f} min | "
                     f"{max(run) * s / 60:.0f} min |")
    lines.append("")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer rounds, no accuracy run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--acc-members", type=int, default=3)
    ap.add_argument("--acc-epochs", type=int, default=12)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: on a busy shared machine 2 threads can run 10x slower)")
    ap.add_argument("--out", default=str(HERE / "results" / "speed.md"))
    ap.add_argument("--catalog-files", default="4000,16000", help="comma-separated survey sizes")
    ap.add_argument("--before", default="/work/main", help="checkout whose `rgbkit catalog` is 'before'")
    ap.add_argument("--only", help="comma-separated sections: training, variants, inference, preprocessing, "
                                       "catalog, accuracy")
    args = ap.parse_args()
    rounds = 1 if args.quick else args.rounds
    torch.set_num_threads(args.threads)
    from rgbkit.datasets import demo_training_arrays

    t0 = time.perf_counter()
    start_load = load()
    d = demo_training_arrays(progress=False)
    lines = ["# Speed: before and after (training, inference, preprocessing)", "",
             f"Measured {dt.date.today()} by `benchmarks/bench_speed.py{' --quick' if args.quick else ''}` "
             f"(rgbkit {__version__}, torch {torch.__version__}, {platform.machine()}, "
             f"{torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} cores shared with other developers; "
             f"torch threads {args.threads}). Load average (1/5/15 min) at start: {start_load}. "
             "Demo data are SIMULATED. Ratios are within this run, methods interleaved.", ""]
    shown = 0

    def show():  # progress: what each section measured, as it finishes
        nonlocal shown
        print("\n".join(lines[shown:]), flush=True)
        shown = len(lines)

    if args.only:
        sections = {"training": lambda: training(d, rounds, lines), "variants": lambda: step_variants(rounds, lines),
                    "inference": lambda: inference(d, rounds, lines),
                    "preprocessing": lambda: preprocessing(rounds + 2, lines),
                    "catalog": lambda: catalog_end_to_end([int(x) for x in args.catalog_files.split(",")], rounds, args.before, lines),
                    "accuracy": lambda: accuracy(d, args.acc_members, args.acc_epochs, lines)}
        for name in args.only.split(","):
            sections[name]()
            show()
        Path(args.out).write_text("\n".join(lines) + "\n")
        show()
        return
    tr = training(d, rounds, lines)
    show()
    step_variants(rounds, lines)
    show()
    inference(d, rounds, lines)
    show()
    preprocessing(rounds + 2, lines)
    estimate(tr, lines)
    show()
    if not args.quick:
        catalog_end_to_end([int(x) for x in args.catalog_files.split(",")], rounds, args.before, lines)
        show()
        accuracy(d, args.acc_members, args.acc_epochs, lines)
    lines.append(f"Benchmark wall time {(time.perf_counter() - t0) / 60:.1f} min; load average at end {load()}.")
    Path(args.out).write_text("\n".join(lines) + "\n")
    show()


if __name__ == "__main__":
    main()
