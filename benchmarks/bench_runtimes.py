"""Could a compiler or another runtime beat the engine's eager optimised copy? One forward pass.

Times one deterministic forward pass of the bundled model over a batch of ACDC-sized slices (the
work every MC sample repeats) with: the plain model in eager fp32; the engine's optimised copy
(:func:`~napari_uqseg.inference.optimise.inference_copy`) eager in fp32 and under the engine's
autocast dtype; ``torch.compile`` of the plain model (first-call time reported separately: the
plugin's first run would pay it) and of the optimised copy; and ONNX Runtime on the exported
plain model, if ``onnxruntime`` is importable (it is not a dependency; ``--extra-path`` adds a
folder holding it to the end of ``sys.path``). A runtime is worth adopting only if its per-pass
time clearly beats the optimised copy, since the MC passes also need reproducible per-image
dropout masks, which the engine's own layers provide.

    python benchmarks/bench_runtimes.py [--batch 2] [--threads 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_uqseg.inference.device import autocast_dtype, precision_name
from napari_uqseg.inference.loading import load_model
from napari_uqseg.inference.optimise import inference_copy
from napari_uqseg.models.bundled import default_model

HERE = Path(__file__).resolve().parent


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--extra-path", help="folder appended to sys.path (e.g. onnxruntime)")
    parser.add_argument("--out", default=str(HERE / "results" / "runtimes.json"))
    args = parser.parse_args()
    if args.extra_path:
        sys.path.append(args.extra_path)
    torch.set_num_threads(args.threads)
    model = load_model(default_model()).model.eval()
    x = torch.rand(args.batch, 1, 256, 224).contiguous(memory_format=torch.channels_last)
    fast = inference_copy(model)
    dtype = autocast_dtype("cpu", "auto")
    record: dict = {"batch": args.batch, "threads": args.threads, "torch": torch.__version__}
    times, first = {}, {}

    def run(net, autocast=None):
        def call():
            with (
                torch.inference_mode(),
                torch.autocast("cpu", autocast, enabled=autocast is not None),
            ):
                return net(x)

        return call

    candidates = {
        "eager_plain_fp32": run(model),
        "eager_optimised_fp32": run(fast),
        f"eager_optimised_{precision_name(dtype)}": run(fast, dtype),
    }
    for name in ("plain", "optimised"):
        net = model if name == "plain" else fast
        try:
            compiled = torch.compile(net)
            call = run(compiled, dtype if name == "optimised" else None)
            start = time.perf_counter()
            call()
            first[f"compile_{name}"] = time.perf_counter() - start
            candidates[f"compile_{name}"] = call
        except Exception as err:  # report, do not fail: this is an experiment
            record[f"compile_{name}_error"] = f"{type(err).__name__}: {err}"[:300]
    try:
        import onnxruntime as ort

        buffer = io.BytesIO()
        torch.onnx.export(model, (x.contiguous(),), buffer, dynamo=False, opset_version=17)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(buffer.getvalue(), options, ["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x.contiguous().numpy()}
        candidates["onnxruntime_fp32"] = lambda: session.run(None, feed)
        record["onnxruntime"] = ort.__version__
        reference = model(x).detach().numpy()
        record["onnxruntime_max_abs_vs_eager"] = float(
            np.abs(session.run(None, feed)[0] - reference).max()
        )
    except Exception as err:
        record["onnxruntime_error"] = f"{type(err).__name__}: {err}"[:300]
    for name, call in candidates.items():
        call()
        times[name] = best_of(call, args.repeats) / args.batch
        print(name, round(times[name] * 1e3, 1), "ms/image", flush=True)
    record["ms_per_image"] = {k: v * 1e3 for k, v in times.items()}
    record["first_call_s"] = first
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
