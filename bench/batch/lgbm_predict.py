"""LightGBM's own batch prediction in Python, the anchor for `aurum predict --input`: read the
CSV with pandas, `Booster.predict` on every row (all cores), write `id,probability` as CSV.
Prints the rows/s of the whole run and of `predict` alone.

    python lgbm_predict.py MODEL INPUT OUTPUT
"""
import sys
import time

import lightgbm as lgb
import pandas as pd

model, src, dst = sys.argv[1:4]
t0 = time.perf_counter()
booster = lgb.Booster(model_file=model)
df = pd.read_csv(src)
t1 = time.perf_counter()
p = booster.predict(df[booster.feature_name()].to_numpy())
t2 = time.perf_counter()
pd.DataFrame({"id": df["id"], "probability": p}).to_csv(dst, index=False)
t3 = time.perf_counter()
n = len(df)
print(f"RESULT {n} {n / (t3 - t0):.0f} {n / (t2 - t1):.0f} {t3 - t0:.2f}")
