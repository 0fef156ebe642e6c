"""Training an ensemble in a background thread, for the Ensembles tab: on the demo data or on a
labelled set the user matched from their own files (:mod:`rgbkit.labelled`).

A server runs at most :func:`rgbkit.config.max_trainings` runs at once (a
class on one small machine would otherwise pile them up); a run holds its
slot from :meth:`TrainingRun.start` until its thread ends.
"""
from __future__ import annotations

import threading

import numpy as np

from rgbkit.config import max_trainings

from .models import predict_demo
from .sources import demo, demo_inputs, demo_split_index


class TrainingLimitError(RuntimeError):
    """The server already runs as many trainings as it allows."""


_slots = {"lock": threading.Lock(), "running": 0}  # server-wide count of running trainings


def running_trainings() -> int:
    with _slots["lock"]:
        return _slots["running"]


def _take_slot() -> None:
    limit = max_trainings()
    with _slots["lock"]:
        if _slots["running"] >= limit:
            raise TrainingLimitError(f"this server already runs {_slots['running']} training(s), its limit "
                                     f"(RGBKIT_MAX_TRAININGS={limit}); try again when one finishes")
        _slots["running"] += 1


def _free_slot() -> None:
    with _slots["lock"]:
        _slots["running"] = max(0, _slots["running"] - 1)


class TrainingRun:
    """:meth:`rgbkit.ensemble.Ensemble.fit` on the demo data, or :func:`rgbkit.train_labelled.train_labelled`
    on ``labelled`` (a :class:`rgbkit.labelled.LabelledSet`), in a background thread.

    The thread reports through :meth:`snapshot` (copies, safe to read from any
    thread); :meth:`stop` asks the current member to stop after its epoch,
    keeping its best weights so far, and trains no further members.
    """

    def __init__(self, target: str = "age", n_members: int = 2, epochs: int = 5, n_train: int = 300,
                 n_val: int = 150, size: str = "tiny", seed: int = 0, lr: float = 1e-3, labelled=None):
        if target not in ("age", "mass"):
            raise ValueError(f"target must be 'age' or 'mass', not {target!r}")
        if size not in ("tiny", "small"):
            raise ValueError(f"size must be 'tiny' or 'small', not {size!r}")
        self.target, self.n_members, self.epochs = target, int(n_members), int(epochs)
        self.n_train, self.n_val, self.size, self.seed, self.lr = int(n_train), int(n_val), size, seed, float(lr)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rgbkit-training", daemon=True)
        self._histories: list[dict] = []
        self._state = {"member": 0, "epoch": 0, "done": False, "error": "", "stopped": False}
        self.labelled = labelled
        self.ensemble = None
        self.started = None
        self._abandon = False

    def start(self) -> "TrainingRun":
        import time

        _take_slot()  # raises TrainingLimitError when the server is full
        self.started = time.perf_counter()
        try:
            self._thread.start()
        except BaseException:
            _free_slot()
            raise
        return self

    def stop(self, abandon: bool = False) -> None:
        """Stop after the current epoch; ``abandon``: nobody will look (the session ended), skip the predictions."""
        self._abandon = self._abandon or abandon
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _callback(self, member: int, epoch: int, history: dict) -> bool:
        h = {k: list(v) for k, v in history.items()}
        with self._lock:
            while len(self._histories) <= member:
                self._histories.append({})
            self._histories[member] = h
            self._state.update(member=member, epoch=epoch)
        return self._stop.is_set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._train()
        finally:
            _free_slot()

    def _train(self) -> None:
        from rgbkit.ensemble import Ensemble
        from rgbkit.models.densenet import small_config, tiny_config
        from rgbkit.train import TrainConfig

        try:
            if self.labelled is not None:
                self._run_labelled()
                return
            prep = demo_inputs()
            y = demo().labels[self.target].to_numpy(dtype=np.float64)
            tr = demo_split_index("train", self.n_train, self.seed)
            va = demo_split_index("validation", self.n_val, self.seed)
            ens = Ensemble.fit(
                prep.X[tr], y[tr], self.target, n_members=self.n_members,
                model_config=tiny_config() if self.size == "tiny" else small_config(),
                # the shipped ensembles' recipe (tools/train_pretrained.py): lr 1e-3 annealed, for short runs
                train_config=TrainConfig(epochs=self.epochs, lr=self.lr, lr_schedule="cosine", device="cpu"),
                X_val=prep.X[va], y_val=y[va], seed=self.seed, preprocessing=prep.config,
                data_name="rgbkit.datasets.load_demo() subset (SIMULATED)",
                callback=self._callback, progress=False)
            if not self._abandon:
                predict_demo(ens)  # here, off the event loop, so the Predictions tab opens at once
            with self._lock:
                self.ensemble = ens
                self._state.update(done=True, stopped=self._stop.is_set())
        except Exception as e:  # reported in the page; the server goes on
            with self._lock:
                self._state.update(done=True, error=f"{type(e).__name__}: {e}")

    def _run_labelled(self) -> None:
        from rgbkit.train import TrainConfig
        from rgbkit.train_labelled import train_labelled

        ens = train_labelled(self.labelled, self.target, None, members=self.n_members, arch=self.size,
                             train_config=TrainConfig(epochs=self.epochs, lr=self.lr, lr_schedule="cosine",
                                                      device="cpu"),
                             seed=self.seed, callback=self._callback, progress=False)
        with self._lock:
            self.ensemble = ens
            self._state.update(done=True, stopped=self._stop.is_set())

    def snapshot(self) -> dict:
        """Histories so far (one dict per member), current member/epoch, progress fraction, done/error."""
        import time

        with self._lock:
            s = dict(self._state)
            s["histories"] = [{k: list(v) for k, v in h.items()} for h in self._histories if h]
        done_epochs = sum(len(h.get("epoch", [])) for h in s["histories"])
        total = self.n_members * self.epochs
        s["fraction"] = 1.0 if s["done"] else min(done_epochs / total, 1.0)
        s["elapsed"] = 0.0 if self.started is None else time.perf_counter() - self.started
        return s


def parse_columns(text: str) -> dict[str, str]:
    """``"age=Age_Y2, kic=KIC_ID"`` -> ``{"age": "Age_Y2", "kic": "KIC_ID"}`` (the column-name box)."""
    out = {}
    for part in filter(None, (p.strip() for p in (text or "").replace(";", ",").split(","))):
        key, sep, col = part.partition("=")
        if not sep or not key.strip() or not col.strip():
            raise ValueError(f"column mapping {part!r}: write name=COLUMN, e.g. age=Age_Y2")
        out[key.strip().lower()] = col.strip()
    return out


def match_own_data(spectra: str, target: str, table_path: str = "", upload: bytes | None = None,
                   upload_name: str | None = None, match: str = "auto", radius: float = 3.0,
                   columns: str = "", states: list[str] | None = None, workdir=None):
    """A :class:`rgbkit.labelled.LabelledSet` from a spectra folder on this machine and a label table
    (uploaded bytes, written to ``workdir`` under its own name, or a path on this machine)."""
    import tempfile
    from pathlib import Path

    from rgbkit.labelled import load_labelled

    if not (spectra or "").strip():
        raise ValueError("give the folder (or glob) of your LAMOST files on the machine running the dashboard")
    if upload is not None and upload_name:
        folder = Path(workdir or tempfile.mkdtemp(prefix="rgbkit-labels-"))
        folder.mkdir(parents=True, exist_ok=True)
        table = folder / Path(upload_name).name  # the suffix says the format
        table.write_bytes(upload)
    elif (table_path or "").strip():
        table = Path(table_path.strip()).expanduser()
    else:
        raise ValueError("upload a label table or give its path")
    return load_labelled(spectra.strip(), table, target=target, match=match, radius=radius,
                         columns=parse_columns(columns) or None, states=states or None, progress=False)
