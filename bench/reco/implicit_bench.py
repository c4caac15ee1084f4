"""implicit's ALS and BPR on the split reco_bench wrote (OUT/train.csv, OUT/test.csv), scored with
the same metric definitions as aurum-reco (binary relevance, train items excluded, k = 10), and a
side-by-side table with OUT/aurum.json.

    python bench/reco/implicit_bench.py OUT THREADS
"""
import json
import math
import sys
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

import implicit
from implicit.als import AlternatingLeastSquares
from implicit.bpr import BayesianPersonalizedRanking
from implicit.evaluation import ndcg_at_k as implicit_ndcg

K = 10


def metrics(rec, relevant):
    """Mean precision, recall, AP and NDCG at K over users with relevant items (aurum's definitions)."""
    p = r = ap = nd = 0.0
    n = 0
    for u, rel in relevant.items():
        items = list(rec[u][:K])
        hits = [i in rel for i in items]
        h = sum(hits)
        p += h / K
        r += h / len(rel)
        found, s = 0, 0.0
        for pos, hit in enumerate(hits):
            if hit:
                found += 1
                s += found / (pos + 1)
        ap += s / min(K, len(rel))
        dcg = sum(1.0 / math.log2(pos + 2) for pos, hit in enumerate(hits) if hit)
        idcg = sum(1.0 / math.log2(pos + 2) for pos in range(min(K, len(rel))))
        nd += dcg / idcg
        n += 1
    return dict(precision=p / n, recall=r / n, map=ap / n, ndcg=nd / n, users=n)


def main():
    out, threads = sys.argv[1], int(sys.argv[2])
    aurum = json.load(open(f"{out}/aurum.json"))
    params = aurum["params"]
    train = pd.read_csv(f"{out}/train.csv", dtype={"user": str, "item": str})
    test = pd.read_csv(f"{out}/test.csv", dtype={"user": str, "item": str})
    users = pd.Index(sorted(set(train.user) | set(test.user)))
    items = pd.Index(sorted(set(train.item) | set(test.item)))
    tu, ti = users.get_indexer(train.user), items.get_indexer(train.item)
    binary = sp.csr_matrix((np.ones(len(train), dtype=np.float32), (tu, ti)), shape=(len(users), len(items)))
    relevant = {}
    for u, i in zip(users.get_indexer(test.user), items.get_indexer(test.item)):
        relevant.setdefault(u, set()).add(i)
    test_m = sp.csr_matrix(
        (np.ones(len(test), dtype=np.float32), (users.get_indexer(test.user), items.get_indexer(test.item))),
        shape=binary.shape,
    )
    eval_users = np.array(sorted(relevant))

    als = params["als"]
    bpr = params["bpr"]
    # aurum's confidence is 1 + alpha * r; implicit's is alpha * r: implicit alpha = 1 + aurum alpha.
    models = [
        ("ALS f=100 reg=0.01 alpha=1 (implicit defaults)",
         lambda: AlternatingLeastSquares(factors=100, regularization=0.01, alpha=1.0, iterations=15,
                                         num_threads=threads, random_state=42)),
        (f"ALS f={als['factors']} reg={als['regularization']:g} alpha={1 + als['alpha']:g} (= aurum alpha {als['alpha']:g})",
         lambda: AlternatingLeastSquares(factors=als["factors"], regularization=als["regularization"],
                                         alpha=1.0 + als["alpha"], iterations=als["iterations"],
                                         num_threads=threads, random_state=42)),
        ("BPR (implicit defaults)",
         lambda: BayesianPersonalizedRanking(factors=bpr["factors"], learning_rate=bpr["learning_rate"],
                                             regularization=bpr["regularization"], iterations=bpr["iterations"],
                                             num_threads=threads, random_state=42)),
    ]
    rows = []
    for name, make in models:
        model = make()
        t = time.perf_counter()
        model.fit(binary, show_progress=False)
        fit_s = time.perf_counter() - t
        ids, _ = model.recommend(eval_users, binary[eval_users], N=K, filter_already_liked_items=True)
        rec = {u: ids[j] for j, u in enumerate(eval_users)}
        m = metrics(rec, relevant)
        m["implicit_ndcg"] = implicit_ndcg(model, binary, test_m, K=K, show_progress=False, num_threads=threads)
        rows.append(dict(model=name, fit_s=fit_s, **m))
        print(f"implicit {name:<50} fit {fit_s:7.3f} s  NDCG@10 {m['ndcg']:.4f}", file=sys.stderr)
    json.dump({"rows": rows, "version": implicit.__version__}, open(f"{out}/implicit.json", "w"), indent=1)

    print(f"| side | model | fit s | NDCG@10 | P@10 | R@10 | MAP@10 |")
    print("|---|---|---|---|---|---|---|")
    for side, rs in (("aurum", aurum["rows"]), ("implicit " + implicit.__version__, rows)):
        for r in rs:
            print(f"| {side} | {r['model']} | {r['fit_s']:.3f} | {r['ndcg']:.4f} | {r['precision']:.4f} | "
                  f"{r['recall']:.4f} | {r['map']:.4f} |")
    print(f"\nimplicit's own ndcg_at_k (same split, cross-check of the metric code): "
          + ", ".join(f"{r['model'].split(' (')[0]} {r['implicit_ndcg']:.4f}" for r in rows))
    print(f"evaluated users: aurum {aurum['rows'][0]['users']}, implicit {rows[0]['users']}")


if __name__ == "__main__":
    main()
