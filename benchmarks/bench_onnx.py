"""Is ONNX Runtime faster than torch for the packed ensembles on this CPU? (issue 17's idea, measured)

    pip install onnxruntime onnx        # optional: not a dependency of rgbkit
    python benchmarks/bench_onnx.py     # ~1 minute; prints a table for speed.md section 10

Exports each ensemble's fused packed network (the one ``Ensemble.predict``
runs) with the TorchScript exporter (opset 17), checks that ONNX Runtime's
outputs match torch's float32 ones, and times both (and torch in bfloat16) on
1,024 test spectra, batches of 128, 2 threads, rounds interleaved.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's rgbkit
from rgbkit.datasets import demo_arrays  # noqa: E402
from rgbkit.ensemble import Ensemble, load_pretrained  # noqa: E402


def main(ten_members: str | None = None, rounds: int = 3) -> None:
    import onnxruntime as ort

    torch.set_num_threads(2)
    X = demo_arrays(("test",))["test"][0][:1024].astype(np.float32)
    models = {"3 x small_config (shipped age)": load_pretrained("age", device="cpu")}
    if ten_members:
        models["10 x small_config"] = Ensemble.load(ten_members, device="cpu")
    print(f"load average {os.getloadavg()[0]:.1f}; onnxruntime {ort.__version__}, torch {torch.__version__}")
    print("| ensemble | torch float32 | torch bfloat16 | ONNX Runtime float32 | max abs difference ORT - torch |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, ens in models.items():
        net = ens.packed_network().eval()
        path = Path(tempfile.mkdtemp()) / "packed.onnx"
        torch.onnx.export(net, (torch.from_numpy(X[:128]),), str(path), input_names=["x"], output_names=["z"],
                          dynamic_axes={"x": {0: "batch"}, "z": {1: "batch"}}, dynamo=False, opset_version=17)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

        def run_ort():
            return np.concatenate([sess.run(None, {"x": X[i:i + 128]})[0] for i in range(0, len(X), 128)], 1)

        def run_torch(prec):
            def f():
                ens.precision = prec
                with torch.inference_mode():
                    return torch.cat([ens._forward_z(torch.from_numpy(X[i:i + 128]), "packed")
                                      for i in range(0, len(X), 128)], 1).numpy()
            return f

        diff = float(np.abs(run_ort() - run_torch("float32")()).max())
        methods = {"f32": run_torch("float32"), "bf16": run_torch("bfloat16"), "ort": run_ort}
        rates = {k: [] for k in methods}
        for _ in range(rounds):
            for k, f in methods.items():
                f()
                t = time.perf_counter()
                f()
                rates[k].append(len(X) / (time.perf_counter() - t))
        med = {k: statistics.median(v) for k, v in rates.items()}
        print(f"| {name} | {med['f32']:,.0f} | {med['bf16']:,.0f} | {med['ort']:,.0f} | {diff:.1e} |")
        ens.precision = "float32"


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
