#!/usr/bin/env python3
"""Drives the web console of a running `aurum serve` in headless Chromium.

It prepares data through the REST API (a credit model trained on data/credit, a challenger,
predictions and their outcomes, a registered forecasting model and a forecast), then signs in
to /ui with the API key, opens every console page, checks that the figures the REST API
returns appear on them, checks keyboard focus reaches the main navigation, and writes a PNG
screenshot of each page. Chromium is driven over the DevTools protocol on a pipe
(`--remote-debugging-pipe`): no WebSocket client or npm package is needed.

Exit status 0 when every check passes; 1 with the failed check on stderr otherwise.
"""

import argparse
import base64
import csv
import fcntl
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)
    print(f"ok: {what}", flush=True)


# ----- REST -----


class Api:
    def __init__(self, base, key):
        self.base = base
        self.key = key

    def call(self, method, path, body=None, raw=None, content_type="application/json"):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.key}")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=300) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as e:
            raise Failed(f"{method} {path}: {e.code} {e.read().decode()[:500]}") from None
        return json.loads(text) if text else None

    def wait_job(self, job, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            j = self.call("GET", f"/v1/training-jobs/{job['id']}")
            if j["state"] in ("succeeded", "failed", "cancelled"):
                check(j["state"] == "succeeded", f"training job {j['model']} succeeded ({j.get('error')})")
                return j
            time.sleep(0.5)
        raise Failed(f"training job {job['id']} did not finish in {timeout} s")


def typed(v):
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v


def prepare(api, data_dir):
    """Trains, predicts, records outcomes and forecasts through the REST API."""
    loans = os.path.join(data_dir, "credit", "lending_club.csv")
    with open(loans, "rb") as f:
        api.call("POST", "/v1/datasets?name=loans", raw=f.read(), content_type="text/csv")
    job = api.call("POST", "/v1/training-jobs", {
        "dataset": "loans", "target": "Class", "kind": "logistic", "model": "credit",
        "positive_label": "bad", "alias": "champion"})
    api.wait_job(job)
    job2 = api.call("POST", "/v1/training-jobs", {
        "dataset": "loans", "target": "Class", "kind": "scorecard", "model": "credit",
        "positive_label": "bad", "alias": "challenger"})
    challenger_job = api.wait_job(job2)
    api.call("PUT", "/v1/models/credit/challenger", {"alias": "challenger"})

    with open(loans, newline="") as f:
        rows = list(csv.DictReader(f))
    rows = rows[:120]
    request_ids = []
    for start in range(0, len(rows), 20):
        chunk = rows[start:start + 20]
        records = [{k: typed(v) for k, v in r.items() if k != "Class"} for r in chunk]
        out = api.call("POST", "/v1/models/credit/predict", {"records": records})
        request_ids.append(out["request_id"])
        outcomes = [{"request_id": out["request_id"], "record": i, "label": r["Class"]}
                    for i, r in enumerate(chunk)]
        api.call("POST", "/v1/models/credit/outcomes", {"outcomes": outcomes})

    with open(os.path.join(data_dir, "timeseries", "airline_passengers.csv"), "rb") as f:
        api.call("POST", "/v1/datasets?name=passengers", raw=f.read(), content_type="text/csv")
    api.call("POST", "/v1/forecast-models", {
        "name": "passengers", "dataset": "passengers", "date_column": "Date",
        "value_column": "Passengers", "horizon": 12, "model": "ets", "alias": "champion"})
    forecast = api.call("POST", "/v1/models/passengers/forecast", {"horizon": 12})

    report = api.call("GET", "/v1/models/credit/versions/1/report")
    return {
        "auc": report["metrics"]["auc"],
        "request_id": request_ids[-1],
        "challenger_job": challenger_job["id"],
        "forecast_first": forecast["timestamps"][0],
    }


# ----- DevTools protocol over a pipe -----


class Browser:
    def __init__(self, chromium, profile):
        # Chromium reads commands on fd 3 and writes replies on fd 4.
        cmd_r, self.cmd_w = os.pipe()
        self.out_r, out_w = os.pipe()

        def child_fds():
            # Move both ends above 4 first, so that neither dup2 clobbers the other.
            high_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)  # inheritable: survives the exec
            os.dup2(high_w, 4)

        args = [chromium, "--headless=new", "--remote-debugging-pipe", "--no-first-run",
                "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--hide-scrollbars",
                "--window-size=1280,900", f"--user-data-dir={profile}", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        # close_fds=False: fds 3 and 4 are set up by child_fds; every other descriptor this
        # process opened is close-on-exec already.
        self.proc = subprocess.Popen(args, close_fds=False, preexec_fn=child_fds,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(out_w)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None
        targets = self.send("Target.getTargets", session=False)["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.send("Target.attachToTarget",
                                 {"targetId": page["targetId"], "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page.enable", "Runtime.enable"):
            self.send(domain)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})

    def _read_message(self, timeout):
        deadline = time.time() + timeout
        while b"\0" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise Failed("the browser did not answer in time")
            ready, _, _ = select.select([self.out_r], [], [], left)
            if ready:
                chunk = os.read(self.out_r, 1 << 20)
                if not chunk:
                    raise Failed("the browser exited")
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=True, timeout=60):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read_message(timeout)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise Failed(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, name, timeout=60):
        deadline = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == name and e.get("sessionId") == self.session:
                    del self.events[: i + 1]
                    return e
            self.events.append(self._read_message(max(0.1, deadline - time.time())))

    def eval(self, expr):
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        if "exceptionDetails" in r:
            raise Failed(f"script failed: {expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def goto(self, url):
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def submit(self, button_selector):
        """Clicks a submit button and waits for the page it leads to."""
        self.events.clear()
        self.eval(f"document.querySelector({json.dumps(button_selector)}).click()")
        self.wait_event("Page.loadEventFired")

    def key(self, key, code, vk):
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent",
                      {"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": vk})

    def screenshot(self, path):
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = min(int(size["height"]) + 1, 6000)
        shot = self.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}})
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        print(f"wrote {path}", flush=True)

    def close(self):
        try:
            self.send("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def text(b):
    return b.eval("document.body.innerText")


def browse(b, base, key, facts, out):
    shot = lambda name: b.screenshot(os.path.join(out, name))

    b.goto(base + "/ui/models/credit")
    check(b.eval("location.pathname") == "/ui/login", "an unauthenticated page redirects to sign-in")
    b.eval("document.querySelector('#key').focus()")
    b.send("Input.insertText", {"text": "aurum_wrong_key"})
    b.submit("button[type=submit]")
    check("not valid" in text(b), "a wrong key is refused with a message")
    shot("01-login-refused.png")

    b.eval("document.querySelector('#key').focus()")
    b.send("Input.insertText", {"text": key})
    b.submit("button[type=submit]")
    check(b.eval("location.pathname") == "/ui/models/credit", "sign-in returns to the page asked for")
    check("aurum_console_session" not in b.eval("document.cookie"), "the session cookie is HttpOnly")
    page = text(b)
    check("champion" in page and "challenger" in page, "the model page shows the alias names")
    check("Alias history" in page, "the model page shows the alias history")
    shot("03-model.png")

    b.goto(base + "/ui/")
    check("credit" in text(b) and "passengers" in text(b), "the models page lists both models")
    # Keyboard: Tab from the top reaches the skip link, then the main navigation.
    b.eval("document.activeElement && document.activeElement.blur()")
    b.key("Tab", "Tab", 9)
    check(b.eval("document.activeElement.textContent") == "Skip to main content",
          "the first Tab focuses the skip link")
    reached = False
    for _ in range(4):
        b.key("Tab", "Tab", 9)
        if b.eval("!!document.activeElement.closest('nav[aria-label=Main]')"):
            reached = True
            break
    check(reached, "keyboard focus reaches the main navigation")
    outline = b.eval("getComputedStyle(document.activeElement).outlineStyle")
    check(outline not in ("none", ""), f"the focused link has a visible focus ring ({outline})")
    shot("02-models-keyboard-focus.png")
    external = b.eval("performance.getEntriesByType('resource')"
                      ".filter(e => !e.name.startsWith(location.origin)).length")
    check(external == 0, "the page loads nothing from another origin")
    check(b.eval("document.querySelectorAll('script, link[rel=stylesheet]').length") == 0,
          "no scripts or external style sheets")

    b.goto(base + "/ui/models/credit/versions/1")
    page = text(b)
    auc = f"{facts['auc']:.4f}"
    check(auc in page, f"the version page shows the report's AUC {auc}")
    check("Population drift" in page and "Score PSI" in page, "the version page shows drift")
    check("Realised AUC" in page and "120" in page, "the version page shows the outcomes")
    check(b.eval("document.querySelectorAll('svg[role=img]').length") >= 2, "charts are inline SVG")
    shot("04-version.png")

    b.goto(base + "/ui/models/credit/versions/1/fairness?dataset=loans&attribute=term")
    page = text(b)
    check("term_36" in page and "term_60" in page, "the fairness table shows the groups")
    shot("05-fairness.png")

    b.goto(base + "/ui/models/credit/challenger")
    page = text(b)
    check("v1" in page and "v2" in page and "120" in page,
          "the challenger page compares v1 and v2 on the 120 records")
    shot("06-challenger.png")

    b.goto(base + "/ui/jobs")
    check(facts["challenger_job"][:8] in text(b), "the jobs page lists the training job")
    check(b.eval("document.querySelectorAll('progress').length") >= 3, "jobs show their progress")
    shot("07-jobs.png")

    b.goto(base + "/ui/audit?request_id=" + facts["request_id"])
    page = text(b)
    check(facts["request_id"] in page and "prediction" in page,
          "the audit search finds the prediction by its request id")
    shot("08-audit.png")

    b.goto(base + "/ui/audit?limit=0&after=x")
    page = text(b)
    check("limit: `0` must be a whole number from 1 to 1000" in page,
          "an invalid audit search says what is wrong")
    shot("09-audit-invalid.png")

    b.goto(base + "/ui/models/passengers/forecast?horizon=12")
    page = text(b)
    check("95% high" in page and facts["forecast_first"] in page,
          "the forecast page shows the forecast with intervals")
    shot("10-forecast.png")

    b.goto(base + "/ui/models/credit/versions/1/document")
    check(b.eval("document.title") != "" and "<html" in b.eval("document.documentElement.outerHTML"),
          "the validation document opens")
    shot("11-validation-document.png")

    b.goto(base + "/ui/")
    b.submit("header form button[type=submit]")
    check("You are signed out" in text(b), "sign-out returns to the sign-in page")
    b.goto(base + "/ui/")
    check(b.eval("location.pathname") == "/ui/login", "after sign-out pages need sign-in again")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--key-file", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--chromium", required=True)
    a = p.parse_args()
    with open(a.key_file) as f:
        key = f.read().strip()
    os.makedirs(a.out, exist_ok=True)
    started = time.time()
    browser = None
    try:
        facts = prepare(Api(a.base, key), a.data)
        print(f"prepared in {time.time() - started:.0f} s: {facts}", flush=True)
        with tempfile.TemporaryDirectory() as profile:
            browser = Browser(a.chromium, profile)
            try:
                browse(browser, a.base, key, facts, a.out)
            finally:
                browser.close()
    except Failed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    print(f"console test passed in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
