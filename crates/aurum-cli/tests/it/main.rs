//! End-to-end tests of the `aurum` binary: real processes, real files, a real socket.

mod audit;
mod batch;
mod coherence;
mod families;
mod forecast_cli;
mod fraud;
mod replicas;
mod scoring;
mod server;
mod synthesize;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const GERMAN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/demo/german_credit.csv"
);

fn aurum(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aurum"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("AURUM_LOG")
        .env_remove("AURUM_DATA_DIR")
        .output()
        .expect("run aurum")
}

/// Runs `statements` directly on `<data>/audit.db`, as someone editing the file would.
async fn tamper_audit_db(data: &Path, statements: &[&'static str]) {
    use sqlx::Connection;
    let url = format!("sqlite://{}", data.join("audit.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for &sql in statements {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn config_show_layers_and_redacts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aurum.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:9000\"\nrequest_timeout_ms = 1234\n[training]\nseed = 7\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aurum"))
        .args([
            "--config",
            file.to_str().unwrap(),
            "--data-dir",
            "/tmp/from-flag",
            "config",
            "show",
        ])
        .env("AURUM_LISTEN", "127.0.0.1:9100")
        .env("AURUM_DATABASE_URL", "postgres://aurum:hunter2@db/aurum")
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(text.contains("data_dir = \"/tmp/from-flag\""), "{text}");
    assert!(
        text.contains("listen = \"127.0.0.1:9100\""),
        "env overrides file: {text}"
    );
    assert!(
        text.contains("request_timeout_ms = 1234"),
        "file overrides defaults: {text}"
    );
    assert!(text.contains("seed = 7"), "{text}");
    assert!(!text.contains("hunter2"), "secrets are redacted: {text}");
    // Invalid values are all reported together.
    let out = Command::new(env!("CARGO_BIN_EXE_aurum"))
        .args(["config", "show"])
        .env("AURUM_LISTEN", "nowhere")
        .env("AURUM_UNKNOWN_FIELDS", "maybe")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.listen") && err.contains("unknown_fields"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_train_alias_keys_and_a_tampered_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let text = ok(&aurum(
        &data,
        &["data", "import", GERMAN, "--name", "german"],
    ));
    assert!(
        text.contains("imported dataset `german` (1000 rows, 21 columns"),
        "{text}"
    );
    assert!(
        text.contains("credit_amount") && text.contains("integer"),
        "{text}"
    );
    let again = ok(&aurum(
        &data,
        &["data", "import", GERMAN, "--name", "german"],
    ));
    assert!(again.contains("nothing changed"), "{again}");
    // A bad file names the line.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "a,b,c\n1,2,3\n4,5\n").unwrap();
    let out = aurum(
        &data,
        &["data", "import", bad.to_str().unwrap(), "--name", "bad"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 3"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Train twice; the second with L1.
    let t1 = ok(&aurum(
        &data,
        &[
            "train",
            "--dataset",
            "german",
            "--target",
            "creditability",
            "--kind",
            "logistic",
            "--model",
            "credit",
            "--alias",
            "champion",
        ],
    ));
    assert!(t1.contains("registered credit version 1"), "{t1}");
    let t2 = ok(&aurum(
        &data,
        &[
            "train",
            "--dataset",
            "german",
            "--target",
            "creditability",
            "--kind",
            "logistic",
            "--model",
            "credit",
            "--param",
            "penalty=l1",
            "--param",
            "lambda=0.02",
        ],
    ));
    assert!(t2.contains("registered credit version 2"), "{t2}");
    let bad_target = aurum(
        &data,
        &[
            "train",
            "--dataset",
            "german",
            "--target",
            "nope",
            "--kind",
            "logistic",
            "--model",
            "credit",
        ],
    );
    assert_eq!(bad_target.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_target.stderr).contains("nope"));
    let moved = ok(&aurum(
        &data,
        &["models", "alias", "credit", "champion", "2"],
    ));
    assert!(moved.contains("v1 -> v2"), "{moved}");
    let shown = ok(&aurum(&data, &["models", "show", "credit"]));
    assert!(
        shown.contains("credit v2") && shown.contains("auc"),
        "{shown}"
    );
    // Local scoring.
    let input = dir.path().join("in.json");
    std::fs::write(&input, r#"{"records": [{"status_of_existing_checking_account": "... < 0 DM", "duration_in_month": 48, "credit_history": "existing credits paid back duly till now", "purpose": "radio/television", "credit_amount": 5951, "savings_account_and_bonds": "... < 100 DM", "present_employment_since": "1 <= ... < 4 years", "installment_rate_in_percentage_of_disposable_income": 2, "personal_status_and_sex": "female : divorced/separated/married", "other_debtors_or_guarantors": "none", "present_residence_since": 2, "property": "real estate", "age_in_years": 22, "other_installment_plans": "none", "housing": "own", "number_of_existing_credits_at_this_bank": 1, "job": "skilled employee / official", "number_of_people_being_liable_to_provide_maintenance_for": 1, "telephone": "none", "foreign_worker": "yes"}]}"#).unwrap();
    let scored = ok(&aurum(
        &data,
        &[
            "predict",
            "credit",
            "--input",
            input.to_str().unwrap(),
            "--explain",
        ],
    ));
    assert!(
        scored.contains("model credit version 2") && scored.contains("probability"),
        "{scored}"
    );
    // Keys: created once, listed without secret, revoked.
    let created = ok(&aurum(
        &data,
        &["keys", "create", "--name", "frontend", "--role", "client"],
    ));
    let key = created.lines().last().unwrap().trim().to_string();
    assert!(key.starts_with("aurum_"), "{created}");
    let listed = ok(&aurum(&data, &["keys", "list"]));
    assert!(
        listed.contains("frontend") && !listed.contains(&key),
        "{listed}"
    );
    ok(&aurum(&data, &["keys", "revoke", "frontend"]));
    assert!(ok(&aurum(&data, &["keys", "list"])).contains("revoked"));
    // An expiry past what the registry can read back is refused with a message, not stored
    // (it once left the data directory unable to open) and not a panic.
    for expires in ["99999999999d", "300000000000s"] {
        let far = aurum(
            &data,
            &[
                "keys",
                "create",
                "--name",
                "far",
                "--role",
                "client",
                "--expires-in",
                expires,
            ],
        );
        let stderr = String::from_utf8_lossy(&far.stderr);
        assert_eq!(far.status.code(), Some(1), "{expires}: {stderr}");
        assert!(
            stderr.contains("9999-12-31T23:59:59Z"),
            "{expires}: {stderr}"
        );
    }
    let listed = ok(&aurum(&data, &["keys", "list"]));
    assert!(!listed.contains("far "), "{listed}");
    // The audit chain verifies, then a tampered record is named.
    let tail = ok(&aurum(&data, &["audit", "tail", "-n", "50"]));
    for event in [
        "dataset.import",
        "training.submit",
        "model.register",
        "alias.move",
        "prediction",
        "key.create",
        "key.revoke",
    ] {
        assert!(tail.contains(event), "{event} missing:\n{tail}");
    }
    let verified = ok(&aurum(&data, &["audit", "verify"]));
    assert!(verified.contains("audit chain OK"), "{verified}");
    tamper_audit_db(
        &data,
        &[
            "DROP TRIGGER audit_log_no_update",
            "UPDATE audit_log SET actor = 'mallory' WHERE seq = 3",
        ],
    )
    .await;
    let broken = aurum(&data, &["audit", "verify"]);
    assert_eq!(
        broken.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&broken.stdout)
    );
    let text = String::from_utf8_lossy(&broken.stdout);
    assert!(text.contains("BROKEN at record 3"), "{text}");
}

#[test]
fn quickstart_serves_and_its_printed_curl_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aurum"))
        .current_dir(dir.path())
        .args(["quickstart", "--listen", "127.0.0.1:0"])
        .env_remove("AURUM_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let done = line.contains("Press Ctrl-C");
                lines.push(line);
                if done {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    let text = lines.join("\n");
    assert!(text.contains("set as champion"), "{text}");
    assert!(
        dir.path().join("aurum-data/admin.key").exists(),
        "the default data dir is ./aurum-data"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("aurum-data/admin.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let start = text.find("curl -s").expect("a curl command is printed");
    let end = text[start..]
        .find("\n\n")
        .map(|e| start + e)
        .unwrap_or(text.len());
    let curl = text[start..end].to_string();
    let out = Command::new("bash").arg("-c").arg(&curl).output().unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}\n{curl}"));
    assert_eq!(json["model"], "credit-default");
    assert_eq!(json["version"], 1);
    assert!(
        json["predictions"][0]["probability"].as_f64().is_some(),
        "{json}"
    );
    assert!(
        json["predictions"][0]["explanation"]["contributions"]
            .as_array()
            .is_some(),
        "{json}"
    );
    // SIGTERM drains and exits cleanly.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "aurum did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn forecast_prints_a_table_and_writes_a_plot() {
    let dir = tempfile::tempdir().unwrap();
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/timeseries/airline_passengers.csv"
    );
    let plot = dir.path().join("plot.html");
    let out = aurum(
        &dir.path().join("d"),
        &[
            "forecast",
            "--data",
            data,
            "--date",
            "Date",
            "--value",
            "Passengers",
            "--horizon",
            "12",
            "--model",
            "auto_arima",
            "--transform",
            "log",
            "--out",
            plot.to_str().unwrap(),
        ],
    );
    let text = ok(&out);
    assert!(text.contains("ARIMA(0,1,1)(0,1,1)[12]"), "{text}");
    assert!(text.contains("1961-12-01"), "{text}");
    let html = std::fs::read_to_string(&plot).unwrap();
    assert!(
        html.contains("<svg") && html.contains("95% interval"),
        "{html}"
    );
    let bad = aurum(
        &dir.path().join("d"),
        &[
            "forecast",
            "--data",
            data,
            "--date",
            "Date",
            "--value",
            "Nope",
            "--horizon",
            "3",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Nope"));
}

/// A mistyped data directory is an error for commands that only read, and is not created (it
/// once answered "audit chain OK: 0 records" from a directory it had just made).
#[test]
fn reading_commands_refuse_a_data_directory_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo");
    for args in [
        &["audit", "verify"][..],
        &["models", "list"][..],
        &["keys", "list"][..],
        &["data", "list"][..],
    ] {
        let out = aurum(&typo, args);
        assert!(!out.status.success(), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("does not exist") && stderr.contains("--data-dir"),
            "{args:?}: {stderr}"
        );
        assert!(!typo.exists(), "{args:?} created the directory");
    }
    // Creating state starts a new directory, as before.
    ok(&aurum(
        &typo,
        &["data", "import", GERMAN, "--name", "german"],
    ));
    ok(&aurum(&typo, &["models", "list"]));
}

/// A class too small for the held-out split is named by its label (it read `class 0`).
#[test]
fn a_class_too_small_to_split_is_named_by_its_label() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("tiny.csv");
    let mut csv = String::from("x,outcome\n");
    for i in 0..30 {
        csv.push_str(&format!("{i},{}\n", if i == 7 { "bad" } else { "good" }));
    }
    std::fs::write(&file, csv).unwrap();
    ok(&aurum(
        &data,
        &["data", "import", file.to_str().unwrap(), "--name", "tiny"],
    ));
    let out = aurum(
        &data,
        &[
            "train",
            "--dataset",
            "tiny",
            "--target",
            "outcome",
            "--kind",
            "logistic",
            "--model",
            "m",
        ],
    );
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("class `bad` has 1 row"), "{stderr}");
}
