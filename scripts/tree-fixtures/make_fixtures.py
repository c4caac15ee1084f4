#!/usr/bin/env python3
"""Reference LightGBM / XGBoost models and outputs for the aurum-trees tests.

Run from anywhere:

    python3 scripts/tree-fixtures/make_fixtures.py

The script creates (once) a virtual environment in target/tree-fixtures-venv, installs pinned
lightgbm, xgboost, numpy, pandas and scikit-learn from PyPI into it, re-runs itself inside it, and
writes crates/aurum-trees/tests/fixtures/. The fixtures are committed, so the Rust tests never need
Python. Everything is seeded: a re-run writes the same models (up to library versions).

For each case `<name>` it writes the model exactly as the library saves it (`<name>.txt` for
LightGBM `Booster.save_model`, `<name>.json` for XGBoost `Booster.save_model`) and
`<name>.expected.json`:

* `rows`: test rows, row-major, as the library's predictor sees them (numeric; categorical columns
  as integer codes; `null` = NaN / missing). Some rows are salted with values equal to split
  thresholds (to pin `<=` vs `<`), NaNs in columns that had none in training (LightGBM
  MissingType::None), zeros (MissingType::Zero) and, for LightGBM categoricals, negative and
  unseen codes;
* `predict`: the library's transformed prediction (probability or value);
* `raw`: the raw margin (`raw_score=True` / `output_margin=True`);
* `contrib`: `pred_contrib=True` / `pred_contribs=True`, n_features + 1 columns (last = bias).

Cases:

* `lgb_binary`, `xgb_binary`: synthetic 2 000 x 20 binary data (make_classification, seed 7) with
  ~8 % NaNs in six columns; 200 trees (LightGBM 15 leaves, XGBoost depth 4: the fixture budget is
  2 MB);
* `lgb_german`, `xgb_german`: data/demo/german_credit.csv, 13 categorical columns as pandas
  `category` (LightGBM native categorical splits; XGBoost `enable_categorical=True`, hist,
  `max_cat_to_onehot=1` so it learns partition splits), 60 trees;
* `lgb_regression`, `xgb_regression`: synthetic 1 000 x 10 regression data, 60 trees; the
  LightGBM one is trained with `zero_as_missing=True` (MissingType::Zero splits);
* `lgb_constant`: a model whose only tree has one leaf (LightGBM writes `num_leaves=1` when the
  first iteration cannot split);
* `xgb17_binary`: XGBoost 1.7.6 (a second venv, target/tree-fixtures-venv-xgb1), 30 trees with
  an explicit `base_score=0.3`, to pin how a pre-2.0 JSON model stores `base_score` (as a plain
  probability string, "3E-1"; 3.x writes "[3E-1]"). Skip with `--no-legacy`.
"""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV = ROOT / "target" / "tree-fixtures-venv"
FIXTURES = ROOT / "crates" / "aurum-trees" / "tests" / "fixtures"
GERMAN = ROOT / "data" / "demo" / "german_credit.csv"
PACKAGES = [
    "lightgbm==4.7.0",
    "xgboost==3.2.0",
    "numpy==2.4.6",
    "pandas==3.1.1",
    "scikit-learn==1.9.1",
]
LEGACY_VENV = ROOT / "target" / "tree-fixtures-venv-xgb1"
LEGACY_PACKAGES = ["xgboost==1.7.6", "numpy==1.26.4"]
N_TEST = 50


def ensure_venv():
    python = VENV / "bin" / "python"
    if pathlib.Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not python.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    subprocess.check_call([str(python), "-m", "pip", "install", "-q", *PACKAGES])
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


def as_json_rows(x):
    import numpy as np

    return [[None if np.isnan(v) else float(v) for v in row] for row in x]


def write_expected(name, library, version, feature_names, rows, predict, raw, contrib, note):
    import numpy as np

    out = {
        "name": name,
        "library": library,
        "version": version,
        "note": note,
        "n_features": len(feature_names),
        "feature_names": list(feature_names),
        "rows": as_json_rows(rows),
        # float64 repr round-trips; XGBoost's float32 outputs are widened exactly.
        "predict": [float(v) for v in np.asarray(predict, dtype=np.float64)],
        "raw": [float(v) for v in np.asarray(raw, dtype=np.float64)],
        "contrib": [[float(v) for v in r] for r in np.asarray(contrib, dtype=np.float64)],
    }
    path = FIXTURES / f"{name}.expected.json"
    path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


def salt_rows(rng, x, thresholds, nan_cols, zero_cols, cat_cols=(), bad_cats=False):
    """Make the last rows hit the edges of the decision rules."""
    import numpy as np

    x = x.copy()
    n, p = x.shape
    num_cols = [j for j in range(p) if j not in cat_cols]
    for i in range(n - 15, n):
        for j in num_cols:
            if thresholds.get(j) and rng.random() < 0.5:
                x[i, j] = rng.choice(thresholds[j])
    for i in range(n - 25, n - 15):
        for j in nan_cols:
            if rng.random() < 0.4:
                x[i, j] = np.nan
    for i in range(n - 30, n - 25):
        for j in zero_cols:
            x[i, j] = 0.0
    if bad_cats:
        for i, j in zip(range(n - 35, n - 30), cat_cols):
            x[i, j] = [-1.0, 999.0, np.nan, 2.5, -0.5][i % 5]
    return x


def lgb_thresholds(booster):
    df = booster.trees_to_dataframe()
    names = booster.feature_name()
    out = {}
    for _, r in df[df["decision_type"] == "<="].iterrows():
        out.setdefault(names.index(r["split_feature"]), []).append(float(r["threshold"]))
    return out


def xgb_thresholds(booster, names):
    df = booster.trees_to_dataframe()
    out = {}
    for _, r in df[df["Feature"] != "Leaf"].iterrows():
        if r["Feature"] in names and r["Split"] == r["Split"]:
            out.setdefault(names.index(r["Feature"]), []).append(float(r["Split"]))
    return out


def lgb_case(name, booster, x_test, note):
    import lightgbm as lgb

    booster.save_model(str(FIXTURES / f"{name}.txt"))
    # Predict from the saved text so the fixture is exactly what the Rust side parses.
    loaded = lgb.Booster(model_file=str(FIXTURES / f"{name}.txt"))
    write_expected(
        name,
        "lightgbm",
        lgb.__version__,
        loaded.feature_name(),
        x_test,
        loaded.predict(x_test),
        loaded.predict(x_test, raw_score=True),
        loaded.predict(x_test, pred_contrib=True),
        note,
    )


def xgb_case(name, booster, x_test, feature_types, note):
    import xgboost as xgb

    booster.save_model(str(FIXTURES / f"{name}.json"))
    loaded = xgb.Booster(model_file=str(FIXTURES / f"{name}.json"))
    kw = {}
    if feature_types is not None:
        kw = {"feature_types": feature_types, "enable_categorical": True}
    dm = xgb.DMatrix(x_test, missing=float("nan"), feature_names=loaded.feature_names, **kw)
    write_expected(
        name,
        "xgboost",
        xgb.__version__,
        loaded.feature_names,
        x_test,
        loaded.predict(dm),
        loaded.predict(dm, output_margin=True),
        loaded.predict(dm, pred_contribs=True),
        note,
    )


def synthetic_binary():
    import lightgbm as lgb
    import numpy as np
    import xgboost as xgb
    from sklearn.datasets import make_classification

    rng = np.random.default_rng(7)
    x, y = make_classification(
        n_samples=2000 + N_TEST,
        n_features=20,
        n_informative=10,
        n_redundant=4,
        flip_y=0.05,
        random_state=7,
    )
    nan_cols = [0, 3, 5, 8, 13, 17]
    for j in nan_cols:
        x[rng.random(len(x)) < 0.08, j] = np.nan
    names = [f"f{j:02d}" for j in range(20)]
    x_train, y_train, x_test = x[:2000], y[:2000], x[2000:]

    lgb_model = lgb.train(
        {
            "objective": "binary",
            "num_leaves": 15,
            "learning_rate": 0.05,
            "min_data_in_leaf": 20,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "seed": 7,
            "deterministic": True,
            "num_threads": 1,
            "verbose": -1,
        },
        lgb.Dataset(x_train, y_train, feature_name=names),
        num_boost_round=200,
    )
    all_nan_cols = list(range(20))  # NaN where training had none: MissingType::None
    x_lgb = salt_rows(rng, x_test, lgb_thresholds(lgb_model), all_nan_cols, [1, 2, 3])
    lgb_case("lgb_binary", lgb_model, x_lgb, "synthetic binary, 200 trees, 15 leaves")

    xgb_model = xgb.train(
        {
            "objective": "binary:logistic",
            "tree_method": "hist",
            "max_depth": 4,
            "eta": 0.05,
            "subsample": 0.8,
            "seed": 7,
            "nthread": 1,
        },
        xgb.DMatrix(x_train, y_train, feature_names=names, missing=np.nan),
        num_boost_round=200,
    )
    x_xgb = salt_rows(rng, x_test, xgb_thresholds(xgb_model, names), all_nan_cols, [1, 2])
    xgb_case("xgb_binary", xgb_model, x_xgb, None, "synthetic binary, 200 trees, depth 4")


def german():
    import lightgbm as lgb
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    rng = np.random.default_rng(11)
    df = pd.read_csv(GERMAN)
    y = (df.pop("creditability") == "bad").astype(int).to_numpy()
    cat_cols = [j for j, c in enumerate(df.columns) if df[c].dtype == object or str(df[c].dtype) == "str"]
    for c in df.columns[cat_cols]:
        df[c] = df[c].astype("category")
    # Safe column names (LightGBM rejects some characters in feature names).
    df.columns = [c.replace(" ", "_") for c in df.columns]
    n_train = len(df) - N_TEST
    train, test = df.iloc[:n_train], df.iloc[n_train:]

    lgb_model = lgb.train(
        {
            "objective": "binary",
            "num_leaves": 15,
            "learning_rate": 0.05,
            "min_data_in_leaf": 10,
            "min_data_per_group": 10,
            "cat_smooth": 5,
            "seed": 11,
            "deterministic": True,
            "num_threads": 1,
            "verbose": -1,
        },
        lgb.Dataset(train, y[:n_train]),  # category dtype -> native categorical splits
        num_boost_round=60,
    )
    n_cat_splits = sum(
        1 for _, r in lgb_model.trees_to_dataframe().iterrows() if r["decision_type"] == "=="
    )
    assert n_cat_splits > 0, "expected LightGBM categorical splits"
    # What LightGBM's predictor sees: category codes (pandas_categorical from training), NaN for
    # missing.
    codes = test.copy()
    for c in codes.columns[cat_cols]:
        codes[c] = codes[c].cat.codes.replace(-1, np.nan)
    x_lgb = codes.to_numpy(dtype=np.float64)
    num_cols = [j for j in range(x_lgb.shape[1]) if j not in cat_cols]
    x_lgb = salt_rows(
        rng, x_lgb, lgb_thresholds(lgb_model), list(range(x_lgb.shape[1])), num_cols, cat_cols, True
    )
    lgb_case(
        "lgb_german",
        lgb_model,
        x_lgb,
        f"german credit, pandas category -> native categorical ({n_cat_splits} categorical splits)",
    )

    xgb_model = xgb.train(
        {
            "objective": "binary:logistic",
            "tree_method": "hist",
            "max_depth": 4,
            "eta": 0.1,
            "max_cat_to_onehot": 1,
            "seed": 11,
            "nthread": 1,
        },
        xgb.DMatrix(train, y[:n_train], enable_categorical=True),
        num_boost_round=60,
    )
    tdf = xgb_model.trees_to_dataframe()
    n_xcat = int((tdf["Category"].notna()).sum()) if "Category" in tdf else 0
    assert n_xcat > 0, "expected XGBoost categorical splits"
    codes = test.copy()
    for c in codes.columns[cat_cols]:
        codes[c] = codes[c].cat.codes.replace(-1, np.nan)
    x_xgb = codes.to_numpy(dtype=np.float64)
    names = list(df.columns)
    x_xgb = salt_rows(
        rng, x_xgb, xgb_thresholds(xgb_model, names), list(range(x_xgb.shape[1])), num_cols
    )
    feature_types = ["c" if j in cat_cols else "q" for j in range(x_xgb.shape[1])]
    xgb_case(
        "xgb_german",
        xgb_model,
        x_xgb,
        feature_types,
        f"german credit, enable_categorical=True ({n_xcat} categorical splits)",
    )


def regression():
    import lightgbm as lgb
    import numpy as np
    import xgboost as xgb
    from sklearn.datasets import make_regression

    rng = np.random.default_rng(3)
    x, y = make_regression(n_samples=1000 + N_TEST, n_features=10, noise=5.0, random_state=3)
    # Zeros and NaNs in training so zero_as_missing / default directions are learnt.
    for j in (0, 4):
        x[rng.random(len(x)) < 0.1, j] = 0.0
    x[rng.random(len(x)) < 0.05, 7] = np.nan
    names = [f"x{j}" for j in range(10)]
    x_train, y_train, x_test = x[:1000], y[:1000], x[1000:]

    lgb_model = lgb.train(
        {
            "objective": "regression",
            "num_leaves": 15,
            "learning_rate": 0.1,
            "zero_as_missing": True,
            "seed": 3,
            "deterministic": True,
            "num_threads": 1,
            "verbose": -1,
        },
        lgb.Dataset(x_train, y_train, feature_name=names),
        num_boost_round=60,
    )
    x_lgb = salt_rows(rng, x_test, lgb_thresholds(lgb_model), list(range(10)), [0, 1, 4, 7])
    lgb_case("lgb_regression", lgb_model, x_lgb, "synthetic regression, zero_as_missing=True")

    xgb_model = xgb.train(
        {
            "objective": "reg:squarederror",
            "tree_method": "hist",
            "max_depth": 4,
            "eta": 0.1,
            "seed": 3,
            "nthread": 1,
        },
        xgb.DMatrix(x_train, y_train, feature_names=names, missing=np.nan),
        num_boost_round=60,
    )
    x_xgb = salt_rows(rng, x_test, xgb_thresholds(xgb_model, names), list(range(10)), [0, 4])
    xgb_case("xgb_regression", xgb_model, x_xgb, None, "synthetic regression, reg:squarederror")


def constant():
    import lightgbm as lgb
    import numpy as np

    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 3))
    y = (rng.random(40) < 0.3).astype(int)
    # min_data_in_leaf larger than half the data: the first tree cannot split.
    model = lgb.train(
        {"objective": "binary", "min_data_in_leaf": 30, "verbose": -1, "num_threads": 1},
        lgb.Dataset(x, y, feature_name=["a", "b", "c"]),
        num_boost_round=5,
    )
    x_test = x[:5].copy()
    x_test[0, 0] = np.nan
    lgb_case("lgb_constant", model, x_test, "single tree with num_leaves=1")


def legacy_xgboost():
    """Runs inside LEGACY_VENV (numpy and xgboost only)."""
    import numpy as np
    import xgboost as xgb

    rng = np.random.default_rng(17)
    x = rng.normal(size=(600 + N_TEST, 6))
    logit = x[:, 0] - 2 * x[:, 1] + x[:, 2] * x[:, 3]
    y = (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(int)
    x[rng.random(len(x)) < 0.1, 4] = np.nan
    names = [f"v{j}" for j in range(6)]
    model = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "eta": 0.2, "base_score": 0.3,
         "tree_method": "hist", "seed": 17, "nthread": 1},
        xgb.DMatrix(x[:600], y[:600], feature_names=names, missing=np.nan),
        num_boost_round=30,
    )
    x_test = x[600:].copy()
    x_test[:10, 0] = np.nan  # NaN where training had none
    xgb_case("xgb17_binary", model, x_test, None, "XGBoost 1.7.6, base_score=0.3, 30 trees")


def run_legacy():
    python = LEGACY_VENV / "bin" / "python"
    if not python.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(LEGACY_VENV)])
    subprocess.check_call([str(python), "-m", "pip", "install", "-q", *LEGACY_PACKAGES])
    subprocess.check_call([str(python), __file__, "--legacy-inside"])


def main():
    if "--legacy-inside" in sys.argv:
        legacy_xgboost()
        return
    ensure_venv()
    FIXTURES.mkdir(parents=True, exist_ok=True)
    synthetic_binary()
    german()
    regression()
    constant()
    if "--no-legacy" not in sys.argv:
        run_legacy()
    total = sum(p.stat().st_size for p in FIXTURES.iterdir())
    print(f"fixtures: {total / 1e6:.2f} MB in {FIXTURES.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
