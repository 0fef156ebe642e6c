"""Recorded results shipped with the package: the paper's numbers and our baseline comparison.

``rgbkit/data/results/baselines.json`` is written by ``benchmarks/bench_science.py``
(:func:`write_baseline_results`) and ships in the wheel, so the dashboard and
the notebooks show it without a source checkout. The Markdown reports in
``benchmarks/results/`` are for people; nothing parses them.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .config import DATA_DIR

__all__ = ["BASELINES_JSON", "paper_numbers", "paper_baselines", "baseline_results", "write_baseline_results"]

BASELINES_JSON = DATA_DIR / "results" / "baselines.json"


def paper_numbers(target: str) -> dict:
    """The paper's averaged-model validation M1/M2 for ``target`` (its Table 2, DenseNet-BC row)."""
    from .models.baselines import PAPER_TABLE2

    row = PAPER_TABLE2["DenseNet-BC"]
    return {"m1": row[f"{target}_m1"], "m2": row[f"{target}_m2"]}



def paper_baselines() -> pd.DataFrame:
    """The paper's Table 2 (validation M1/M2 of each model)."""
    from .models.baselines import PAPER_TABLE2

    df = pd.DataFrame.from_dict(PAPER_TABLE2, orient="index")
    df.index.name = "model"
    return df


def baseline_results() -> tuple[pd.DataFrame | None, str]:
    """Our recorded baseline comparison (one row per model: age/mass M1, M2 and the paper's) and where it came from.

    (None, "") when no run is recorded in this installation.
    """
    if not BASELINES_JSON.is_file():
        return None, ""
    data = json.loads(BASELINES_JSON.read_text())
    df = pd.DataFrame.from_dict(data["table"], orient="index")
    df.index.name = "model"
    return df, "rgbkit/data/results/baselines.json (written by benchmarks/bench_science.py)"


def write_baseline_results(table: pd.DataFrame, source: str, path: Path | None = None) -> Path:
    """Record a baseline table (index: model) as :data:`BASELINES_JSON` (what :func:`baseline_results` reads)."""
    from .io.files import atomic_write

    path = Path(path or BASELINES_JSON)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = {str(m): {k: (None if pd.isna(v) else float(v)) for k, v in r.items()} for m, r in table.to_dict("index").items()}
    blob = {"source": source, "columns": "M1 in Gyr / Msun, M2 in %; paper_* = Li, Bu et al. (2022) Table 2",
            "table": rows}
    return atomic_write(path, lambda t: t.write_text(json.dumps(blob, indent=1) + "\n"))
