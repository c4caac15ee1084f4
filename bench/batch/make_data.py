"""Writes the batch benchmark's inputs: `rows_<n>.csv` (an `id` column and the 20 features of the
serving benchmark's LightGBM model, bench/serving/make_model.py) for each size on the command
line, drawn from the same distribution as the training rows.

    python make_data.py WORK N [N ...]
"""
import sys

import numpy as np

work = sys.argv[1]
for n in map(int, sys.argv[2:]):
    rng = np.random.default_rng(n)
    path = f"{work}/rows_{n}.csv"
    with open(path, "w") as fh:
        fh.write("id," + ",".join(f"f{i:02d}" for i in range(20)) + "\n")
        step = 100_000
        for start in range(0, n, step):
            m = min(step, n - start)
            X = rng.normal(size=(m, 20))
            ids = np.arange(start, start + m)
            lines = "\n".join(
                f"{i}," + ",".join(f"{v:.6g}" for v in row) for i, row in zip(ids, X)
            )
            fh.write(lines + "\n")
    print(path)
