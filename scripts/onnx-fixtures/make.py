"""Writes the ONNX fixtures aurum-onnx's tests read, with onnxruntime's outputs beside them.

Each fixture is `<name>.onnx` plus `<name>.json`:

    {"model": "<name>.onnx", "input": "<graph input name>", "row_shape": [...],
     "params": {"key": "value"},      # the import parameters the test passes
     "rows": [[...], ...],            # one flattened row per sample (row-major over row_shape)
     "output": "<graph output name>", # the output aurum reads
     "expected": [[...], ...]}        # onnxruntime's values of that output, one list per row

Models:
- mlp_binary: a PyTorch MLP (6 -> 16 -> 2, softmax), trained briefly on German credit numerics;
- lstm_regression: a PyTorch LSTM over 8 steps of 2 features, one continuous output;
- sklearn_logistic: scikit-learn StandardScaler + LogisticRegression (skl2onnx, zipmap off);
- sklearn_forest: scikit-learn RandomForestClassifier (skl2onnx, zipmap off);
- sklearn_forest_multiclass: a RandomForestClassifier on three classes (multiclass output);
- keras_mlp (only when TensorFlow and tf2onnx are installed): a Keras MLP via tf2onnx;
- unsupported_sklearn_scaler: the same pipeline exported with skl2onnx's default `Scaler`
  operator (ai.onnx.ml), which tract lacks (no expected outputs);
- unsupported_tree_regressor: a hand-built graph with TreeEnsembleRegressor, an operator tract
  does not implement (no expected outputs: the import must fail naming it).

Usage: python make.py OUT_DIR [--keras-only] (see run.sh, which creates the virtual
environments: TensorFlow lives in its own, as it pins protobuf and numpy apart from torch's).
"""

import csv
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

SEED = 20261205
N_ROWS = 16
NUMERIC = [
    "duration_in_month",
    "credit_amount",
    "installment_rate_in_percentage_of_disposable_income",
    "present_residence_since",
    "age_in_years",
    "number_of_existing_credits_at_this_bank",
]


def german_credit():
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "data", "demo", "german_credit.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r[c]) for c in NUMERIC] for r in rows], dtype=np.float32)
    y = np.array([1 if r["creditability"] == "bad" else 0 for r in rows], dtype=np.int64)
    return x, y


def record(out_dir, name, model_bytes, input_name, row_shape, rows, output, params):
    with open(os.path.join(out_dir, f"{name}.onnx"), "wb") as f:
        f.write(model_bytes)
    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    feed = rows.reshape([rows.shape[0]] + list(row_shape)).astype(np.float32)
    values = sess.run([output], {input_name: feed})[0]
    values = np.asarray(values, dtype=np.float64).reshape(rows.shape[0], -1)
    doc = {
        "model": f"{name}.onnx",
        "input": input_name,
        "row_shape": list(row_shape),
        "params": params,
        "rows": [[float(v) for v in r] for r in rows.reshape(rows.shape[0], -1)],
        "output": output,
        "expected": [[float(v) for v in r] for r in values],
        "producer": f"onnxruntime {ort.__version__}",
    }
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{name}: {len(model_bytes)} bytes, output {output} {values.shape}")


def torch_models(out_dir, x, y):
    import io

    import torch

    torch.manual_seed(SEED)
    mean, std = x.mean(0), x.std(0)
    xs = torch.tensor((x - mean) / std)
    ys = torch.tensor(y)

    mlp = torch.nn.Sequential(
        torch.nn.Linear(6, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 2),
        torch.nn.Softmax(dim=1),
    )
    opt = torch.optim.Adam(mlp.parameters(), lr=0.01)
    for _ in range(200):
        opt.zero_grad()
        loss = torch.nn.functional.nll_loss(torch.log(mlp(xs) + 1e-9), ys)
        loss.backward()
        opt.step()
    mlp.eval()
    buf = io.BytesIO()
    torch.onnx.export(
        mlp,
        xs[:1],
        buf,
        input_names=["features"],
        output_names=["probabilities"],
        dynamic_axes={"features": {0: "batch"}, "probabilities": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    rows = ((x[:N_ROWS] - mean) / std).astype(np.float32)
    record(
        out_dir, "mlp_binary", buf.getvalue(), "features", [6], rows, "probabilities",
        {"features": "duration,amount,rate,residence,age,credits"},
    )

    class Lstm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(input_size=2, hidden_size=12, batch_first=True)
            self.head = torch.nn.Linear(12, 1)

        def forward(self, seq):
            out, _ = self.lstm(seq)
            return self.head(out[:, -1, :])

    lstm = Lstm()
    t = np.arange(200 + 9, dtype=np.float32)
    series = np.stack([np.sin(t / 5.0), np.cos(t / 7.0)], axis=1)
    windows = np.stack([series[i : i + 8] for i in range(200)])
    target = np.sin((t[8:208] + 1.0) / 5.0)[:, None]
    opt = torch.optim.Adam(lstm.parameters(), lr=0.01)
    wx, wy = torch.tensor(windows), torch.tensor(target)
    for _ in range(100):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(lstm(wx), wy)
        loss.backward()
        opt.step()
    lstm.eval()
    buf = io.BytesIO()
    torch.onnx.export(
        lstm,
        wx[:1],
        buf,
        input_names=["sequence"],
        output_names=["forecast"],
        dynamic_axes={"sequence": {0: "batch"}, "forecast": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    record(
        out_dir, "lstm_regression", buf.getvalue(), "sequence", [8, 2],
        windows[:N_ROWS].reshape(N_ROWS, -1), "forecast", {},
    )


def sklearn_models(out_dir, x, y):
    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    pipe.fit(x, y)
    # The scaler as Sub and Div: skl2onnx's default `Scaler` (ai.onnx.ml) is not in tract.
    options = {id(pipe.steps[-1][1]): {"zipmap": False}, id(pipe.steps[0][1]): {"div": "div"}}
    onx = to_onnx(pipe, x[:1], options=options, target_opset={"": 17, "ai.onnx.ml": 3})
    record(out_dir, "sklearn_logistic", onx.SerializeToString(), onx.graph.input[0].name, [6],
           x[:N_ROWS], "probabilities", {"labels": "1,0"})
    # The default export, kept to check that the import names the operator it cannot run.
    onx = to_onnx(pipe, x[:1], options={id(pipe.steps[-1][1]): {"zipmap": False}},
                  target_opset={"": 17, "ai.onnx.ml": 3})
    with open(os.path.join(out_dir, "unsupported_sklearn_scaler.onnx"), "wb") as f:
        f.write(onx.SerializeToString())

    forest = RandomForestClassifier(n_estimators=20, max_depth=6, random_state=SEED % 2**31)
    forest.fit(x, y)
    onx = to_onnx(forest, x[:1], options={id(forest): {"zipmap": False}},
                  target_opset={"": 17, "ai.onnx.ml": 3})
    record(out_dir, "sklearn_forest", onx.SerializeToString(), onx.graph.input[0].name, [6],
           x[:N_ROWS], "probabilities", {})

    # Three classes: the credit amount's tercile (a real multiclass target on real features).
    amount = x[:, 1]
    classes = np.digitize(amount, np.quantile(amount, [1 / 3, 2 / 3]))
    xm = np.delete(x, 1, axis=1)
    forest3 = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=SEED % 2**31)
    forest3.fit(xm, classes)
    onx = to_onnx(forest3, xm[:1], options={id(forest3): {"zipmap": False}},
                  target_opset={"": 17, "ai.onnx.ml": 3})
    record(out_dir, "sklearn_forest_multiclass", onx.SerializeToString(),
           onx.graph.input[0].name, [5], xm[:N_ROWS], "probabilities", {})


def keras_model(out_dir, x, y):
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError:
        print("keras_mlp: TensorFlow/tf2onnx not installed, skipped")
        return
    tf.random.set_seed(SEED % 2**31)
    mean, std = x.mean(0), x.std(0)
    xs = (x - mean) / std
    model = tf.keras.Sequential([
        tf.keras.Input(shape=(6,), name="features"),
        tf.keras.layers.Dense(8, activation="relu"),
        tf.keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(xs, y.astype(np.float32), epochs=5, verbose=0)
    spec = (tf.TensorSpec((None, 6), tf.float32, name="features"),)

    # tf2onnx's from_keras does not read Keras 3 models; a traced function converts the same graph.
    @tf.function(input_signature=spec)
    def serve(features):
        return {"probability": model(features)}

    onx, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=17)
    record(out_dir, "keras_mlp", onx.SerializeToString(), "features", [6],
           xs[:N_ROWS].astype(np.float32), onx.graph.output[0].name, {"task": "binary"})


def unsupported(out_dir):
    node = helper.make_node(
        "TreeEnsembleRegressor", ["x"], ["y"], domain="ai.onnx.ml", name="regressor",
        n_targets=1, nodes_treeids=[0], nodes_nodeids=[0], nodes_featureids=[0],
        nodes_values=[0.0], nodes_modes=["LEAF"], nodes_truenodeids=[0],
        nodes_falsenodeids=[0], target_treeids=[0], target_nodeids=[0], target_ids=[0],
        target_weights=[1.5],
    )
    graph = helper.make_graph(
        [node], "unsupported",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.ml", 3)])
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    # onnxruntime runs it: the graph is valid ONNX, only tract lacks the operator.
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    assert sess.run(None, {"x": np.zeros((1, 3), np.float32)})[0][0][0] == 1.5
    with open(os.path.join(out_dir, "unsupported_tree_regressor.onnx"), "wb") as f:
        f.write(data)
    print(f"unsupported_tree_regressor: {len(data)} bytes")


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    np.random.seed(SEED % 2**31)
    x, y = german_credit()
    if sys.argv[2:] == ["--keras-only"]:
        keras_model(out_dir, x, y)
        return
    torch_models(out_dir, x, y)
    sklearn_models(out_dir, x, y)
    keras_model(out_dir, x, y)
    unsupported(out_dir)


if __name__ == "__main__":
    main()
