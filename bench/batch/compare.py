"""Largest absolute difference between aurum's and LightGBM's probabilities, row by row (by id)."""
import sys

import pandas as pd

a = pd.read_csv(sys.argv[1], usecols=["id", "probability"])
b = pd.read_csv(sys.argv[2])
m = a.merge(b, on="id", suffixes=("_aurum", "_lgbm"))
assert len(m) == len(a) == len(b), (len(a), len(b), len(m))
print(f"{(m.probability_aurum - m.probability_lgbm).abs().max():.3g}")
