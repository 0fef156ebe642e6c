"""``rgbkit train``: train a DenseNet-BC ensemble for age or mass, on the demo data
(rgbkit.ensemble.Ensemble.fit) or on your own labelled spectra (rgbkit.labelled, rgbkit.train_labelled)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .args import CliError, output_folder, positive_float, positive_int


def add_parser(sub) -> None:
    from ..config import DEFAULT_EPOCHS  # not ..train: the parser must not import torch (start-up)

    p = sub.add_parser("train", help="train a DenseNet-BC ensemble for age or mass",
                       description="Train an ensemble (paper protocol: --members 10, 450/350 epochs, "
                                   "--arch paper) and write a model folder.")
    p.add_argument("--target", choices=["age", "mass"], required=True)
    p.add_argument("--data", default="demo", help="'demo' (the bundled simulated set) [default: demo]; "
                   "--spectra and --labels train on your own files instead")
    p.add_argument("--members", type=positive_int, default=5, help="ensemble size (paper: 10) [5]")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help=f"max epochs per member [paper: {DEFAULT_EPOCHS['age']} age, {DEFAULT_EPOCHS['mass']} mass]")
    p.add_argument("--arch", choices=["small", "paper", "tiny"], default="small", help="network size [small]")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=positive_float, default=1.5e-4)
    p.add_argument("--patience", type=positive_int, default=None, help="early stopping patience (off by default)")
    p.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant",
                   help="constant (paper) or cosine decay to lr/20 [constant]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (1 is often fastest on a busy machine)")
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                   help="number format of the forward passes (auto: bfloat16 on CPUs with native support, "
                        "~1.8x faster; float32 elsewhere) [auto]")
    p.add_argument("--packed", action="store_true",
                   help="train all members at once as one network (each its own seed, data order and best epoch; "
                        "faster on a CPU, see benchmarks/results/speed.md)")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--overwrite", action="store_true")
    add_own_data_arguments(p)
    p.set_defaults(func=cli_train)


COLUMN_OPTIONS = ("obsid", "designation", "kic", "ra", "dec", "age", "mass", "evstate")


def add_own_data_arguments(p) -> None:
    from ..labelled import MATCH_KEYS
    from ..train_labelled import DEFAULT_FRACTIONS

    g = p.add_argument_group("your own labelled spectra (instead of --data demo)")
    g.add_argument("--spectra", metavar="DIR_OR_GLOB", help="LAMOST FITS files: a folder, a glob or one file")
    g.add_argument("--labels", metavar="TABLE",
                   help="label table: CSV, FITS, VOTable, Parquet, a CDS .dat (its ReadMe beside it) or an AAS .mrt")
    g.add_argument("--readme", help="the CDS ReadMe of a .dat table [the one beside it]")
    g.add_argument("--match", choices=["auto", *MATCH_KEYS], default="auto",
                   help="how spectra and rows are paired; auto: obsid, designation, kic (TCOMMENT), then position [auto]")
    g.add_argument("--radius", type=float, default=3.0, help="arcsec, for --match position [3]")
    for col in COLUMN_OPTIONS:
        g.add_argument(f"--{col}-col", metavar="NAME", help=f"the table's {col} column [recognised by name]")
    g.add_argument("--age-unit", default=None, choices=["Gyr", "Myr", "yr", "log_yr", "log_Gyr"],
                   help="what the age column holds [Gyr; ages that look like another unit are refused]")
    g.add_argument("--duplicates", choices=["best_snr", "all"], default="best_snr",
                   help="several spectra of one star: keep the best g-band S/N, or all [best_snr]")
    g.add_argument("--label-duplicates", choices=["error", "first"], default="error",
                   help="several table rows with one id and different labels [error]")
    g.add_argument("--states", nargs="+", metavar="STATE", help="keep only these evolutionary states, e.g. RGB")
    g.add_argument("--fractions", nargs=3, type=float, default=list(DEFAULT_FRACTIONS),
                   metavar=("TRAIN", "VAL", "TEST"), help="split of the stars [0.7 0.15 0.15]")
    g.add_argument("--split-seed", type=int, default=0)
    g.add_argument("--workers", type=positive_int, default=1, help="reader processes [1]")
    g.add_argument("--check", action="store_true", help="print the columns used and the match report, then stop")


def train_own(args, config, tc) -> int:
    from ..io.labels import LabelFormatError
    from ..labelled import LabelError, load_labelled

    if not args.labels:
        raise CliError("--spectra needs --labels TABLE (the asteroseismic labels to train on)")
    columns = {c: getattr(args, f"{c}_col") for c in COLUMN_OPTIONS if getattr(args, f"{c}_col")}
    try:
        ls = load_labelled(args.spectra, args.labels, target=args.target, match=args.match, radius=args.radius,
                           columns=columns or None, readme=args.readme, age_unit=args.age_unit,
                           duplicates=args.duplicates, label_duplicates=args.label_duplicates,
                           states=args.states, workers=args.workers, progress=True)
    except LabelFormatError as e:  # LabelError too: the message says what was found and what to pass
        raise CliError(str(e)) from None
    print(ls.report)
    if args.check:
        return 0
    t0 = time.perf_counter()
    try:
        ens = ls.train(args.target, args.out, members=args.members, arch=config, train_config=tc,
                       fractions=tuple(args.fractions), split_seed=args.split_seed, seed=args.seed,
                       overwrite=args.overwrite, progress=True, packed=args.packed)
    except (LabelError, FileExistsError, ValueError) as e:
        raise CliError(str(e)) from None
    sp, te, va = ens.card["data"]["split"], ens.card["metrics"]["test"], ens.card["metrics"]["val"]
    print(f"done in {time.perf_counter() - t0:.0f} s -> {ens.folder}")
    print(f"split by star: {sp['n_train']} train / {sp['n_validation']} validation / {sp['n_test']} test spectra")
    print(f"validation M2 {va['m2']:.1f}%; test (chose nothing): M1 {te['m1']:.3f} {ens.units}, M2 {te['m2']:.1f}%, "
          f"68% coverage {te.get('coverage_68', float('nan')):.2f}")
    return 0


def _training_data(name: str, target: str):
    """(X_train, y_train, X_val, y_val, preprocessing config, data name)."""
    if name != "demo":
        raise CliError(f"--data {name!r}: only 'demo' is supported by the command line for now; "
                         "use rgbkit.ensemble.Ensemble.fit from Python for your own arrays")
    from ..datasets import demo_training_arrays

    d = demo_training_arrays()
    return (d["X_train"], d["labels_train"][target].to_numpy(np.float64), d["X_val"],
            d["labels_val"][target].to_numpy(np.float64), d["preprocessing"], "demo (simulated)")


def cli_train(args) -> int:
    import torch

    from ..ensemble import Ensemble
    from ..models.densenet import paper_config, small_config, tiny_config
    from ..train import DEFAULT_EPOCHS, TrainConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    out = output_folder(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite and not args.check:
        raise CliError(f"{out} exists and is not empty (use --overwrite)")
    config = {"small": small_config, "paper": paper_config, "tiny": tiny_config}[args.arch]()
    tc = TrainConfig(epochs=args.epochs or DEFAULT_EPOCHS[args.target], batch_size=args.batch_size,
                     lr=args.lr, patience=args.patience, lr_schedule=args.lr_schedule, device=args.device,
                     precision=args.precision)
    if args.spectra:
        return train_own(args, config, tc)
    if args.labels:
        raise CliError("--labels needs --spectra DIR_OR_GLOB (the LAMOST files the labels are for)")
    Xt, yt, Xv, yv, prep, data_name = _training_data(args.data, args.target)
    print(f"training {args.members} x {args.arch} DenseNet-BC for {args.target}: "
          f"{len(Xt)} training / {len(Xv)} validation spectra, up to {tc.epochs} epochs each")
    t0 = time.perf_counter()
    ens = Ensemble.fit(Xt, yt, args.target, n_members=args.members, model_config=config, train_config=tc,
                       X_val=Xv, y_val=yv, seed=args.seed, preprocessing=prep, data_name=data_name,
                       packed=args.packed)
    ens.save(out, overwrite=args.overwrite)
    v = ens.card["metrics"]["val"]
    print(f"done in {time.perf_counter() - t0:.0f} s -> {out}")
    print(f"validation: ensemble M1 {v['m1']:.3f} {ens.units}, M2 {v['m2']:.1f}%; members M2 "
          f"{v['member_m2_range'][0]:.1f}-{v['member_m2_range'][1]:.1f}%; 68% coverage "
          f"{v.get('coverage_68_raw', float('nan')):.2f} raw -> {v['coverage_68']:.2f} (spread x{ens.spread_scale:.2f})")
    return 0


