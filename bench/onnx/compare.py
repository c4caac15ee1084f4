"""Times onnxruntime and aurum on the same ONNX models and rows; see run.sh."""

import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

ROWS = 100_000
BATCH = 1000
# (fixture, the output aurum serves: "last" = the positive class's column, "all" = every column)
MODELS = [
    ("mlp_binary", "last"),
    ("sklearn_logistic", "last"),
    ("sklearn_forest", "last"),
    ("sklearn_forest_multiclass", "all"),
    ("lstm_regression", "all"),
]


def main():
    bench, fixtures, work = sys.argv[1:4]
    rng = np.random.default_rng(20261205)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"onnxruntime {ort.__version__}; one thread each; {ROWS} rows in batches of {BATCH}")
    print("| model | aurum rows/s | onnxruntime rows/s | largest difference |")
    print("|---|---:|---:|---:|")
    for name, served in MODELS:
        doc = json.load(open(os.path.join(fixtures, f"{name}.json")))
        base = np.array(doc["rows"], dtype=np.float32)
        width = base.shape[1]
        picks = base[rng.integers(0, len(base), ROWS)]
        rows = (picks * (1 + 0.1 * rng.standard_normal(picks.shape))).astype(np.float32)
        inputs = os.path.join(work, f"{name}.f32")
        rows.astype("<f4").tofile(inputs)
        out = os.path.join(work, f"{name}.aurum.f64")
        params = [f"{k}={v}" for k, v in doc["params"].items()]
        res = subprocess.run([bench, os.path.join(fixtures, doc["model"]), inputs, str(width),
                              str(BATCH), out] + params, check=True, capture_output=True, text=True)
        aurum = json.loads(res.stdout)

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(os.path.join(fixtures, doc["model"]), opts,
                                    providers=["CPUExecutionProvider"])
        shape = [-1] + doc["row_shape"]
        feed = rows.reshape(shape)
        sess.run([doc["output"]], {doc["input"]: feed[:BATCH]})
        start = time.perf_counter()
        outs = [sess.run([doc["output"]], {doc["input"]: feed[i:i + BATCH]})[0]
                for i in range(0, ROWS, BATCH)]
        seconds = time.perf_counter() - start
        ref = np.concatenate(outs).reshape(ROWS, -1).astype(np.float64)
        if served == "last":
            ref = ref[:, -1:]
        got = np.fromfile(out, dtype="<f8").reshape(ROWS, -1)
        diff = float(np.abs(got - ref).max())
        print(f"| {name} | {aurum['rows_per_s']:,.0f} | {ROWS / seconds:,.0f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
