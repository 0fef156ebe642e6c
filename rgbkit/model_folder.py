"""A model on disk: one folder, written and checked here.

::

    card.json               architecture, preprocessing, target, units, data
                            hash/size/split, per-member epochs and metrics,
                            library and format versions, date, file hashes,
                            and the sha256 of the card itself
    member_00.safetensors   one file of weights per member (never a pickle)
    ...
    history.json            per-epoch training curves of every member

:func:`read_folder` checks all of it (card hash, architecture bounded before
anything is built, weights' hashes and shapes) and raises
:class:`ModelFormatError` naming the folder and the reason. Writer and checks
sit together so that what one writes the other can verify.
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import numpy as np
import torch

from .errors import FileFormatError
from .io.files import CARD_HASH, card_digest, sha256_file
from .models.densenet import DenseNet1D, DenseNetConfig
from .train import TargetScaler

__all__ = ["ModelFormatError", "MODEL_FORMAT_VERSION", "CARD", "HISTORY", "CARD_HASH", "card_digest",
           "write_folder", "read_folder"]

MODEL_FORMAT_VERSION = 1
"""Bumped whenever the folder layout or card schema changes incompatibly."""
CARD = "card.json"
HISTORY = "history.json"
MAX_CARD_BYTES = 1 << 20
MAX_MEMBERS = 64
MAX_PARAMETERS = 20_000_000
"""Largest network a card may describe (the paper's: 0.44 M; shipped: far less)."""
# Each architecture entry's allowed range: checked before anything is built.
ARCH_BOUNDS = {"in_channels": (1, 512), "length": (1, 8192), "growth_rate": (1, 256), "init_features": (1, 1024),
               "bn_size": (1, 16), "integration_channels": (1, 1024), "head_width": (0, 8192), "num_classes": (2, 1000)}


class ModelFormatError(FileFormatError):
    """A model folder that cannot be used: missing files, tampered, wrong version or target."""

    what = "model folder"

    @property
    def folder(self) -> str:
        return self.path




def write_folder(ens, folder: str | Path, overwrite: bool = False) -> Path:
    """Write ``ens`` as a model folder (card, one safetensors file per member, histories)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise FileExistsError(f"{folder} exists and is not empty (pass overwrite=True)")
    folder.mkdir(parents=True, exist_ok=True)
    card = json.loads(json.dumps(ens.card))  # deep copy, JSON-safe
    card.update(format_version=MODEL_FORMAT_VERSION, target=ens.target, units=ens.units,
                architecture=ens.model_config.to_dict(), target_scaler=ens.scaler.to_dict(),
                spread_scale=ens.spread_scale, library_version=library_version(),
                created=card.get("created") or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    members = card.get("members") or [{} for _ in ens.members]
    if len(members) != len(ens.members):
        members = [{} for _ in ens.members]
    for i, (m, info) in enumerate(zip(ens.members, members)):
        name = f"member_{i:02d}.safetensors"
        path = folder / name
        state = {k: v.detach().cpu().contiguous() for k, v in m.state_dict().items()}
        save_file(state, str(path), metadata={"target": ens.target, "format_version": str(MODEL_FORMAT_VERSION)})
        info.update(file=name, sha256=sha256_file(path))
    card["members"] = members
    card.pop("history_sha256", None)
    if ens.histories:
        (folder / HISTORY).write_text(json.dumps(ens.histories))
        card["history_sha256"] = sha256_file(folder / HISTORY)
    card[CARD_HASH] = card_digest(card)
    (folder / CARD).write_text(json.dumps(card, indent=2, allow_nan=True))
    ens.card, ens.folder = card, folder
    return folder


def read_folder(folder: str | Path, target: str | None = None):
    """Read and check a model folder.

    Raises :class:`ModelFormatError` for a missing folder/card/weights file,
    an unreadable card, a format version other than
    :data:`MODEL_FORMAT_VERSION`, a target other than ``target``, a
    weights file whose sha256 differs from the card's (tampered or
    corrupted), or weights that do not fit the card's architecture.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFormatError(folder, "not found (or not a folder)")
    card_path = folder / CARD
    if not card_path.is_file():
        raise ModelFormatError(folder, f"missing {CARD}")
    if card_path.stat().st_size > MAX_CARD_BYTES:
        raise ModelFormatError(folder, f"{CARD} is {card_path.stat().st_size} bytes, more than {MAX_CARD_BYTES}")
    try:
        card = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFormatError(folder, f"{CARD} is not valid JSON ({e})") from None
    if not isinstance(card, dict):
        raise ModelFormatError(folder, f"{CARD} is not a JSON object")
    version = card.get("format_version")
    if version != MODEL_FORMAT_VERSION:
        newer = isinstance(version, int) and version > MODEL_FORMAT_VERSION
        raise ModelFormatError(
            folder, f"model format version {version!r} is incompatible with this rgbkit "
            f"(reads version {MODEL_FORMAT_VERSION}; {'upgrade rgbkit' if newer else 'retrain the model'})")
    _check_card_hash(folder, card)
    for key in ("target", "architecture", "target_scaler", "members"):
        if key not in card:
            raise ModelFormatError(folder, f"{CARD} lacks the '{key}' entry")
    if target is not None and card["target"] != target:
        raise ModelFormatError(folder, f"holds a model for target {card['target']!r}, not {target!r}")
    try:
        _check_architecture(card["architecture"])
        config = DenseNetConfig.from_dict(card["architecture"])
        scaler = TargetScaler(**card["target_scaler"])
        n_params = _count_parameters(config)
        _check_scales(card, scaler)
    except (TypeError, ValueError, AttributeError, OverflowError) as e:
        raise ModelFormatError(folder, f"bad architecture or target_scaler in {CARD}: {e}") from None
    if card.get("debias"):
        from .debias import ForwardRelation

        try:
            ForwardRelation.from_dict(card["debias"])
        except (TypeError, ValueError) as e:
            raise ModelFormatError(folder, f"bad 'debias' entry in {CARD}: {e}") from None
    if not isinstance(card["members"], list) or not card["members"]:
        raise ModelFormatError(folder, f"{CARD} lists no members")
    if len(card["members"]) > MAX_MEMBERS:
        raise ModelFormatError(folder, f"{CARD} lists {len(card['members'])} members, more than {MAX_MEMBERS}")
    if card.get("history_sha256") and (not (folder / HISTORY).is_file()
                                       or sha256_file(folder / HISTORY) != card["history_sha256"]):
        raise ModelFormatError(folder, f"{HISTORY} is missing or differs from the card's sha256 (file changed)")
    members = []
    for i, info in enumerate(card["members"]):
        if not isinstance(info, dict):
            raise ModelFormatError(folder, f"member {i} in {CARD} is not an object")
        name = info.get("file")
        if not name or Path(name).name != name:
            raise ModelFormatError(folder, f"member {i} has no valid file name in {CARD}")
        path = folder / name
        if not path.is_file():
            raise ModelFormatError(folder, f"missing weights file {name}")
        if path.stat().st_size > 8 * n_params + (1 << 20):  # float32 weights plus header, with room
            raise ModelFormatError(folder, f"{name} is {path.stat().st_size} bytes, far more than the card's "
                                   f"{n_params} parameters need")
        digest = sha256_file(path)
        if digest != info.get("sha256"):
            raise ModelFormatError(folder, f"{name} sha256 {digest[:12]}... differs from the card's "
                                   f"{str(info.get('sha256'))[:12]}... (file changed or corrupted)")
        model = DenseNet1D(config)
        try:
            model.load_state_dict(load_file(str(path)), strict=True)
        except (RuntimeError, SafetensorError, OSError) as e:
            raise ModelFormatError(folder, f"{name} does not fit the card's architecture: {e}") from None
        members.append(model.eval())
    histories = []
    if (folder / HISTORY).is_file():
        try:
            histories = json.loads((folder / HISTORY).read_text())
        except json.JSONDecodeError:
            histories = []
    return members, scaler, card, histories


def _check_card_hash(folder: Path, card: dict) -> None:
    recorded = card.get(CARD_HASH)
    if not recorded:
        raise ModelFormatError(folder, f"{CARD} has no '{CARD_HASH}' entry, so edits to it cannot be detected "
                                       "(saved by an older rgbkit or written by hand; load it with an older "
                                       "rgbkit and save it again, or run tools/rehash_model_card.py if you "
                                       "trust its contents)")
    got = card_digest(card)
    if got != recorded:
        raise ModelFormatError(folder, f"{CARD} was changed after it was saved (sha256 {got[:12]}... differs "
                                       f"from the recorded {str(recorded)[:12]}...); its target scaler, spread "
                                       "scale and preprocessing decide the predictions, so it is refused")


def _is_int(v, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _check_architecture(arch) -> None:
    """Refuse absurd sizes in the card's architecture before anything is built."""
    if not isinstance(arch, dict):
        raise ValueError("architecture is not an object")
    for key, (lo, hi) in ARCH_BOUNDS.items():
        if key in arch and not _is_int(arch[key], lo, hi):
            raise ValueError(f"architecture {key}={arch[key]!r} is outside {lo}-{hi}")
    for key, n_max, hi in (("block_layers", 8, 128), ("kernel_sizes", 8, 255)):
        v = arch.get(key, [1])
        if not isinstance(v, (list, tuple)) or not 1 <= len(v) <= n_max or not all(_is_int(b, 1, hi) for b in v):
            raise ValueError(f"architecture {key}={str(v)[:60]} (1-{n_max} entries of 1-{hi})")
    for key in ("dropout", "compression"):
        v = arch.get(key, 0.5)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise ValueError(f"architecture {key}={v!r} is outside [0, 1]")


def _count_parameters(config: DenseNetConfig) -> int:
    """Parameters of the network the card describes, counted on the meta device (nothing allocated)."""
    with torch.device("meta"):  # shapes only: nothing is allocated
        n = sum(p.numel() for p in DenseNet1D(config).parameters())
    if n > MAX_PARAMETERS:
        raise ValueError(f"the architecture has {n:,} parameters, more than {MAX_PARAMETERS:,}")
    return n


def _check_scales(card: dict, scaler: TargetScaler) -> None:
    if scaler.kind not in ("log", "linear"):
        raise ValueError(f"target_scaler kind {scaler.kind!r} is not 'log' or 'linear'")
    if not (np.isfinite(scaler.mean) and np.isfinite(scaler.std) and scaler.std > 0):
        raise ValueError(f"target_scaler mean {scaler.mean!r} / std {scaler.std!r} must be finite, std > 0")
    spread = card.get("spread_scale", 1.0)
    if isinstance(spread, bool) or not isinstance(spread, (int, float)) or not (np.isfinite(spread) and spread > 0):
        raise ValueError(f"spread_scale {spread!r} must be a finite positive number")


def library_version() -> str:
    try:
        from . import __version__
        return __version__
    except ImportError:  # rgbkit imported as a namespace package (a stale editable install)
        from importlib.metadata import version
        return version("rgbkit")


