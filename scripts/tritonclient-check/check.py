"""Scores German credit applicants through tritonclient (HTTP and gRPC) and through aurum's /v1
predict, and checks that every probability agrees to 1e-6 and every label matches.

Run by run.sh, which starts the server; exits non-zero on any mismatch or failure.
"""

import argparse
import csv
import json
import sys
import urllib.request

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

MODEL = "credit"
TOLERANCE = 1e-6


def load_records(path, n):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))[:n]
    records = []
    for row in rows:
        row.pop("creditability")
        records.append({k: int(v) if v.lstrip("-").isdigit() else v for k, v in row.items()})
    return records


def v1_predict(http, key, records):
    req = urllib.request.Request(
        f"http://{http}/v1/models/{MODEL}/predict",
        data=json.dumps({"records": records}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as resp:
        body = json.load(resp)
    preds = body["predictions"]
    return np.array([p["probability"] for p in preds]), [p["label"] for p in preds]


def columns(metadata_inputs, records):
    """(name, datatype, numpy column) per model input, from the model metadata."""
    out = []
    for m in metadata_inputs:
        name, datatype = m["name"], m["datatype"]
        values = [r[name] for r in records]
        if datatype == "BYTES":
            arr = np.array([str(v).encode() for v in values], dtype=np.object_)
        elif datatype == "INT64":
            arr = np.array(values, dtype=np.int64)
        elif datatype == "FP64":
            arr = np.array(values, dtype=np.float64)
        else:
            raise SystemExit(f"unexpected input datatype {datatype} for {name}")
        out.append((name, datatype, arr))
    return out


def compare(what, probs, labels, ref_probs, ref_labels):
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    labels = [x.decode() if isinstance(x, bytes) else str(x) for x in np.asarray(labels).reshape(-1)]
    diff = float(np.max(np.abs(probs - ref_probs)))
    ok = diff <= TOLERANCE and labels == ref_labels
    print(f"{'ok  ' if ok else 'FAIL'} {what}: {len(probs)} rows, max |Δp| = {diff:.3g}, labels {'match' if labels == ref_labels else 'DIFFER'}")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", required=True)
    ap.add_argument("--grpc", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--rows", type=int, default=50)
    args = ap.parse_args()

    records = load_records(args.csv, args.rows)
    ref_probs, ref_labels = v1_predict(args.http, args.key, records)
    ok = True

    # ----- HTTP -----
    h = httpclient.InferenceServerClient(url=args.http)
    # tritonclient writes Inference-Header-Content-Length into the headers dict it is given, so
    # every call gets a fresh one (a reused dict would carry a stale length into the next call).
    def auth():
        return {"Authorization": f"Bearer {args.key}"}

    assert h.is_server_live() and h.is_server_ready()
    meta = h.get_server_metadata(headers=auth())
    print(f"server: {meta['name']} {meta['version']}, extensions {meta['extensions']}")
    assert h.is_model_ready(MODEL, headers=auth())
    model_meta = h.get_model_metadata(MODEL, headers=auth())
    print(f"model metadata: {len(model_meta['inputs'])} inputs, outputs "
          f"{[(o['name'], o['datatype']) for o in model_meta['outputs']]}, versions {model_meta['versions']}")
    cols = columns(model_meta["inputs"], records)

    def http_inputs(binary):
        inputs = []
        for name, datatype, arr in cols:
            i = httpclient.InferInput(name, list(arr.shape), datatype)
            i.set_data_from_numpy(arr, binary_data=binary)
            inputs.append(i)
        return inputs

    # tritonclient's defaults: binary inputs, binary outputs (request-wide binary_data_output).
    r = h.infer(MODEL, http_inputs(True), headers=auth(), request_id="tc-http-1")
    assert r.get_response()["id"] == "tc-http-1"
    ok &= compare("HTTP, binary tensors in and out (defaults)", r.as_numpy("probability"), r.as_numpy("label"), ref_probs, ref_labels)
    outs = [httpclient.InferRequestedOutput("probability", binary_data=True),
            httpclient.InferRequestedOutput("label", binary_data=False)]
    r = h.infer(MODEL, http_inputs(True), outputs=outs, headers=auth(), model_version="1")
    ok &= compare("HTTP, binary in, per-output binary/JSON, version 1", r.as_numpy("probability"), r.as_numpy("label"), ref_probs, ref_labels)
    outs = [httpclient.InferRequestedOutput("probability", binary_data=False),
            httpclient.InferRequestedOutput("label", binary_data=False)]
    r = h.infer(MODEL, http_inputs(False), outputs=outs, headers=auth())
    ok &= compare("HTTP, JSON tensors in and out", r.as_numpy("probability"), r.as_numpy("label"), ref_probs, ref_labels)

    index = h.get_model_repository_index(headers=auth())
    print(f"repository index: {index}")
    h.load_model(MODEL, headers=auth())
    try:
        h.infer(MODEL, http_inputs(True))
        print("FAIL HTTP without a key was accepted")
        ok = False
    except InferenceServerException as e:
        print(f"ok   HTTP without a key refused: {e.message()}")
    bad = http_inputs(True)[1:]
    try:
        h.infer(MODEL, bad, headers=auth())
        print("FAIL HTTP with a missing input was accepted")
        ok = False
    except InferenceServerException as e:
        print(f"ok   HTTP missing input refused: {e.message()[:120]}...")

    # ----- gRPC -----
    g = grpcclient.InferenceServerClient(url=args.grpc)
    gauth = {"authorization": f"Bearer {args.key}"}
    assert g.is_server_live() and g.is_server_ready()
    assert g.is_model_ready(MODEL, headers=gauth)
    gmeta = g.get_model_metadata(MODEL, headers=gauth, as_json=True)
    assert [i["name"] for i in gmeta["inputs"]] == [c[0] for c in cols]

    def grpc_inputs():
        inputs = []
        for name, datatype, arr in cols:
            i = grpcclient.InferInput(name, list(arr.shape), datatype)
            i.set_data_from_numpy(arr)
            inputs.append(i)
        return inputs

    r = g.infer(MODEL, grpc_inputs(), headers=gauth, request_id="tc-grpc-1")
    assert r.get_response().id == "tc-grpc-1"
    ok &= compare("gRPC, raw_input_contents / raw_output_contents", r.as_numpy("probability"), r.as_numpy("label"), ref_probs, ref_labels)
    r = g.infer(MODEL, grpc_inputs(), headers=gauth, model_version="1",
                outputs=[grpcclient.InferRequestedOutput("label"), grpcclient.InferRequestedOutput("probability")])
    ok &= compare("gRPC, requested outputs, version 1", r.as_numpy("probability"), r.as_numpy("label"), ref_probs, ref_labels)
    print(f"gRPC repository index: {g.get_model_repository_index(headers=gauth, as_json=True)}")
    try:
        g.infer(MODEL, grpc_inputs())
        print("FAIL gRPC without a key was accepted")
        ok = False
    except InferenceServerException as e:
        print(f"ok   gRPC without a key refused: {e.status()} {e.message()}")

    print("tritonclient check: " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
