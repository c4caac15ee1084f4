//! Integration tests against a real PostgreSQL server named by `AURUM_TEST_DATABASE_URL`
//! (`scripts/services/run.sh start` starts one on loopback). Each test works in a database of
//! its own, created here and dropped at the end, so tests run in parallel. Without the variable
//! the tests print a notice and pass, so that a machine without PostgreSQL can still run the
//! workspace; CI sets it.

mod audit;

use std::str::FromStr as _;

use sqlx::ConnectOptions as _;
use sqlx::postgres::PgConnectOptions;

/// A fresh database for one test; dropped (best effort) when the value is dropped.
pub struct TestDb {
    pub url: String,
    admin: String,
    name: String,
}

impl TestDb {
    /// `None` (after a notice) when no test server is configured.
    pub async fn create(test: &str) -> Option<TestDb> {
        let Ok(admin) = std::env::var("AURUM_TEST_DATABASE_URL") else {
            eprintln!("skipped {test}: AURUM_TEST_DATABASE_URL not set");
            return None;
        };
        let name = format!("aurum_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnectOptions::from_str(&admin)
            .expect("AURUM_TEST_DATABASE_URL parses")
            .connect()
            .await
            .expect("the test PostgreSQL server answers");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let url = PgConnectOptions::from_str(&admin)
            .expect("parses")
            .database(&name)
            .to_url_lossy()
            .to_string();
        Some(TestDb { url, admin, name })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // A runtime of its own: the test's runtime may be shutting down.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut conn) = PgConnectOptions::from_str(&admin)
                    .expect("parses")
                    .connect()
                    .await
                {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}
