"""LightGBM on the feature matrix aurum's replay wrote (same rows, same features, same split).

    python bench/fraud/lgbm.py features.csv [transactions.csv]
    python bench/fraud/lgbm.py --validation features.csv

--validation drops the held-out period as soon as the file is read and measures LightGBM on the
validation period `fraud_tune` uses (the last 20 % of the training period's time span, fitted on
the first 80 %), so the two can be compared without the held-out period.

Split: the first 70 % of the time span trains, the rest is held out (the rule the Rust example
uses). Metrics: ROC-AUC, PR-AUC (average precision), precision and recall at 100 reviews a day,
card precision@100 a day (the handbook's definitions, as in aurum_fraud::metrics).
"""
import sys
import time

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score


def daily_metrics(days, cards, scores, y, k=100):
    df = pd.DataFrame({"day": days, "card": cards, "s": scores, "y": y})
    precs, caught = [], 0
    card_precs = []
    for _, g in df.groupby("day"):
        top = g.sort_values("s", ascending=False, kind="mergesort").head(k)
        precs.append(top["y"].sum() / k)
        caught += top["y"].sum()
        per_card = g.groupby("card").agg(s=("s", "max"), y=("y", "max"))
        topc = per_card.sort_values("s", ascending=False, kind="mergesort").head(k)
        card_precs.append(topc["y"].sum() / k)
    return np.mean(precs), caught / max(df["y"].sum(), 1), np.mean(card_precs)


def validation(path):
    m = pd.read_csv(path)
    feats = [c for c in m.columns if c not in ("id", "ts", "label")]
    t0, t1 = m["ts"].iloc[0], m["ts"].iloc[-1]
    cut = t0 + (t1 - t0) * 7 // 10
    m = m[m["ts"] <= cut]
    inner = t0 + (cut - t0) * 8 // 10
    fit, valid = m[m["ts"] <= inner], m[m["ts"] > inner]
    for name, kw in [
        ("num_leaves=31 (the benchmark's)", dict(num_leaves=31)),
        ("max_depth=5, min_child_weight=5, lambda_l2=1", dict(max_depth=5, num_leaves=32,
                                                              min_child_weight=5, reg_lambda=1)),
    ]:
        clf = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.05, verbose=-1,
                                 random_state=42, **kw)
        clf.fit(fit[feats], fit["label"])
        s = clf.predict_proba(valid[feats])[:, 1]
        print(f"lightgbm {name:<48}: validation PR-AUC (AP) "
              f"{average_precision_score(valid['label'], s):.4f}, "
              f"ROC-AUC {roc_auc_score(valid['label'], s):.4f}")
    print(f"fit {len(fit)} rows, validate {len(valid)} rows")


def main():
    if sys.argv[1] == "--validation":
        return validation(sys.argv[2])
    path = sys.argv[1]
    m = pd.read_csv(path)
    feats = [c for c in m.columns if c not in ("id", "ts", "label")]
    t0, t1 = m["ts"].iloc[0], m["ts"].iloc[-1]
    cut = t0 + (t1 - t0) * 7 // 10
    train, test = m[m["ts"] <= cut], m[m["ts"] > cut]
    tx = pd.read_csv(sys.argv[2], usecols=["TRANSACTION_ID", "CUSTOMER_ID"]) if len(sys.argv) > 2 else None
    cards = test["id"].map(dict(zip(tx["TRANSACTION_ID"], tx["CUSTOMER_ID"]))) if tx is not None else test["id"]
    days = test["ts"] // 86400
    groups = [
        ("amount only", [f for f in feats if f == "tx_amount"]),
        ("+ customer", [f for f in feats if f == "tx_amount" or f.startswith("customer")]),
        ("+ terminal risk (all)", feats),
    ]
    for name, cols in groups:
        started = time.time()
        clf = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.05, num_leaves=31,
                                 is_unbalance=False, verbose=-1, random_state=42)
        clf.fit(train[cols], train["label"])
        s = clf.predict_proba(test[cols])[:, 1]
        secs = time.time() - started
        p, r, cp = daily_metrics(days.values, cards.values, s, test["label"].values)
        print(f"lightgbm {name:<24} fit {secs:6.1f} s: ROC-AUC {roc_auc_score(test['label'], s):.3f}, "
              f"PR-AUC (AP) {average_precision_score(test['label'], s):.3f}, precision@100/day {p:.3f}, "
              f"recall@100/day {r:.3f}, card precision@100 {cp:.3f}")
    print(f"lightgbm {lgb.__version__}, train {len(train)} rows, test {len(test)} rows, {len(feats)} features")


if __name__ == "__main__":
    main()
