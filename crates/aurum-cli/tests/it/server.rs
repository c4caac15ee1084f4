//! What the end-to-end tests share: a real `aurum serve` child process and the applicant they
//! score.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Map, Value, json};

/// A real `aurum serve` child process (REST on a free port, gRPC on another), killed on drop.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT` of the REST API.
    pub base: String,
    /// `http://127.0.0.1:PORT` of the gRPC API.
    pub grpc: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `aurum serve` on `data` with the `AURUM_*` settings in `env` and waits until it prints
/// its address. The audit durability and log settings of the caller's environment are ignored.
pub fn start_server(data: &Path, env: &[(&str, &str)]) -> Server {
    // A free port for gRPC (the server prints only the REST address it bound).
    let grpc = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aurum"))
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0", "--grpc-listen", &grpc])
        .env_remove("AURUM_LOG")
        .env_remove("AURUM_DATA_DIR")
        .env_remove("AURUM_AUDIT_DURABILITY")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aurum serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("aurum listening on ") {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let base = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(base) => base,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("aurum serve did not print its address within 60 s");
        }
    };
    Server {
        child,
        base,
        grpc: format!("http://{grpc}"),
    }
}

/// One German credit applicant, as `/v1` records take it.
pub fn applicant() -> Map<String, Value> {
    let record = json!({"status_of_existing_checking_account": "... < 0 DM", "duration_in_month": 48, "credit_history": "existing credits paid back duly till now", "purpose": "radio/television", "credit_amount": 5951, "savings_account_and_bonds": "... < 100 DM", "present_employment_since": "1 <= ... < 4 years", "installment_rate_in_percentage_of_disposable_income": 2, "personal_status_and_sex": "female : divorced/separated/married", "other_debtors_or_guarantors": "none", "present_residence_since": 2, "property": "real estate", "age_in_years": 22, "other_installment_plans": "none", "housing": "own", "number_of_existing_credits_at_this_bank": 1, "job": "skilled employee / official", "number_of_people_being_liable_to_provide_maintenance_for": 1, "telephone": "none", "foreign_worker": "yes"});
    match record {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}
