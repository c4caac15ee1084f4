"""Credit-model benchmark, reference side: LightGBM and optbinning on aurum's splits.

    python bench/credit/lgbm_bench.py OUT_DIR

Reads OUT_DIR/split_<dataset>.json written by the `credit_bench` example (the CSV, target,
positive label and the 0-based test-row indices), so both sides train and score on exactly the
same rows. CSV reading matches aurum's loader: only empty cells and `NA` are missing (pandas'
longer default list would turn e.g. `None` into NaN), columns that parse as numbers are numeric,
the rest categorical (pandas `category` dtype for LightGBM, strings for optbinning, which bins
categorical variables itself).

Models, each fitted 3 times (fit time = median wall time of the `fit` calls only, AUCs from the
last fit):
  * LightGBM defaults (100 trees, learning rate 0.1, 31 leaves, no depth limit).
  * LightGBM "comparable" to aurum's GBDT defaults: 300 trees, learning rate 0.05, max_depth 5
    (num_leaves 32, i.e. a full depth-5 tree), early stopping after 30 rounds on the validation
    log loss of a stratified 20 % of the training rows, then refitted on all training rows with
    the best number of trees (what aurum does with refit=true). Both steps are timed.
  * LightGBM runs single-threaded (n_jobs=1) like aurum's fits; the comparable setting is also
    timed with LightGBM's default threading (all cores) for reference.
  * optbinning Scorecard: BinningProcess (defaults) + scikit-learn LogisticRegression
    (defaults), scaled pdo_odds 600 points at 50:1 odds, 20 points to double (aurum's default).

Writes OUT_DIR/python.jsonl (one JSON object per model) and prints the same lines.
"""

import json
import os
import statistics
import sys
import time
import warnings

import lightgbm as lgb
import numpy as np
import optbinning
import pandas as pd
import sklearn
from optbinning import BinningProcess, Scorecard
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

REPEATS = 3
SEED = 7
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def load(split):
    df = pd.read_csv(
        os.path.join(ROOT, split["csv"]),
        dtype=str,
        keep_default_na=False,
        na_values=["", "NA"],
    )
    assert len(df) == split["n_rows"], (len(df), split["n_rows"])
    y = (df.pop(split["target"]) == split["positive"]).astype(int).to_numpy()
    categorical = []
    for c in df.columns:
        num = pd.to_numeric(df[c], errors="coerce")
        if (num.isna() == df[c].isna()).all():
            df[c] = num.astype(float)
        else:
            categorical.append(c)
    test = np.zeros(len(df), dtype=bool)
    test[split["test_rows"]] = True
    return df, y, categorical, ~test, test


def timed(fit, repeats=REPEATS):
    times, model = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        model = fit()
        times.append(time.perf_counter() - t0)
    return model, times


def lgbm_default(X, y, n_jobs):
    return lambda: lgb.LGBMClassifier(random_state=SEED, n_jobs=n_jobs, verbose=-1).fit(X, y)


COMPARABLE = {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 5, "num_leaves": 32}


def lgbm_comparable(X, y, n_jobs):
    def fit():
        X_fit, X_val, y_fit, y_val = train_test_split(
            X, y, test_size=0.2, stratify=y, random_state=SEED
        )
        params = dict(COMPARABLE, random_state=SEED, n_jobs=n_jobs, verbose=-1)
        first = lgb.LGBMClassifier(**params).fit(
            X_fit,
            y_fit,
            eval_set=[(X_val, y_val)],
            eval_metric="binary_logloss",
            callbacks=[lgb.early_stopping(30, first_metric_only=True, verbose=False)],
        )
        best = first.best_iteration_ or params["n_estimators"]
        model = lgb.LGBMClassifier(**dict(params, n_estimators=best)).fit(X, y)
        model.best_n_trees_ = best
        return model

    return fit


def optbinning_scorecard(X, y, categorical):
    def fit():
        bp = BinningProcess(variable_names=list(X.columns), categorical_variables=categorical)
        sc = Scorecard(
            binning_process=bp,
            estimator=LogisticRegression(),
            scaling_method="pdo_odds",
            scaling_method_params={"pdo": 20, "odds": 50, "scorecard_points": 600},
        )
        return sc.fit(X, y)

    return fit


def main():
    out = sys.argv[1]
    ncpu = os.cpu_count()
    rows = []
    for name in ("german_credit", "lending_club"):
        with open(os.path.join(out, f"split_{name}.json")) as fh:
            split = json.load(fh)
        df, y, categorical, tr, te = load(split)
        X_cat = df.copy()
        for c in categorical:
            X_cat[c] = X_cat[c].astype("category")  # on the full frame: same categories both sides
        X_obj = df  # strings for optbinning
        runs = [
            ("LightGBM defaults, 1 thread", X_cat, lgbm_default(X_cat[tr], y[tr], 1)),
            ("LightGBM comparable, 1 thread", X_cat, lgbm_comparable(X_cat[tr], y[tr], 1)),
            (
                f"LightGBM comparable, {ncpu} threads",
                X_cat,
                lgbm_comparable(X_cat[tr], y[tr], None),
            ),
            (
                "optbinning Scorecard (defaults)",
                X_obj,
                optbinning_scorecard(X_obj[tr], y[tr], categorical),
            ),
        ]
        for label, X, fit in runs:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model, times = timed(fit)
            # Deprecation notices (LightGBM's eval_set, pandas inside optbinning) are not results.
            notes = sorted(
                {
                    w.category.__name__
                    for w in caught
                    if not issubclass(w.category, (DeprecationWarning, FutureWarning))
                    and "Deprecation" not in w.category.__name__
                    and w.category.__name__ != "Pandas4Warning"
                }
            )
            row = {
                "dataset": name,
                "model": label,
                "test_auc": roc_auc_score(y[te], model.predict_proba(X[te])[:, 1]),
                "train_auc": roc_auc_score(y[tr], model.predict_proba(X[tr])[:, 1]),
                "fit_s": statistics.median(times),
                "fit_runs_s": times,
            }
            if hasattr(model, "best_n_trees_"):
                row["n_trees"] = int(model.best_n_trees_)
            if isinstance(model, Scorecard):
                bp = model.binning_process_
                row["n_selected"] = len(bp.get_support(names=True))
                if ConvergenceWarning.__name__ in notes:
                    row["model"] += " (lbfgs not converged)"
            if notes:
                row["warnings"] = notes
            rows.append(row)
            print(json.dumps(row), flush=True)
    versions = {
        "lightgbm": lgb.__version__,
        "optbinning": optbinning.__version__,
        "scikit-learn": sklearn.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }
    with open(os.path.join(out, "python.jsonl"), "w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
        fh.write(json.dumps({"versions": versions}) + "\n")


if __name__ == "__main__":
    main()
