//! A fresh database per test, created through the admin URL and dropped afterwards.

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use aurum_postgres::PgStore;
use aurum_registry::MetadataStore;
use aurum_registry::testing::Fixture;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

const URL_VAR: &str = "AURUM_TEST_DATABASE_URL";

/// Connections per store handle: tests open many handles at once (one per simulated replica).
const HANDLE_CONNECTIONS: u32 = 2;

/// A database of its own for one test.
pub struct TestDb {
    admin: PgConnectOptions,
    /// The database's name (`aurum_t_<uuid>`).
    pub name: String,
    /// Connection options for the test database.
    pub options: PgConnectOptions,
    /// The test database's URL (the admin URL with the database name replaced).
    pub url: String,
}

impl TestDb {
    /// Creates a fresh database, or `None` (with a notice on stderr) when
    /// `AURUM_TEST_DATABASE_URL` is not set.
    pub async fn create() -> Option<TestDb> {
        let Ok(admin_url) = std::env::var(URL_VAR) else {
            eprintln!("skipped: {URL_VAR} not set");
            return None;
        };
        let admin = PgConnectOptions::from_str(&admin_url).expect("parse AURUM_TEST_DATABASE_URL");
        let name = format!("aurum_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .expect("connect to the admin database");
        // A locale-aware collation (ICU's root locale, where `a` < `B`) when the server has
        // ICU, so that the suite proves the store's ordering does not depend on the database's
        // locale; the server's default otherwise.
        let icu = format!(
            r#"CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und'"#
        );
        if sqlx::raw_sql(sqlx::AssertSqlSafe(icu))
            .execute(&mut conn)
            .await
            .is_err()
        {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
                .execute(&mut conn)
                .await
                .expect("create the test database");
        }
        conn.close().await.ok();
        let options = admin.clone().database(&name);
        let url = replace_database(&admin_url, &name);
        Some(TestDb {
            admin,
            name,
            options,
            url,
        })
    }

    /// A new store handle (its own pool) on this database.
    pub async fn store(&self) -> PgStore {
        PgStore::connect_with(self.options.clone(), HANDLE_CONNECTIONS)
            .await
            .expect("connect to the test database")
    }

    /// Drops the database, closing whatever connections are left (best effort).
    pub async fn drop_db(&self) {
        let Ok(mut conn) = PgConnection::connect_with(&self.admin).await else {
            return;
        };
        let sql = format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name);
        if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
        {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
        conn.close().await.ok();
    }
}

/// `postgres://u@h:p/admin?x=y` with the database path replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|i| start + i))
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[async_trait]
impl Fixture for TestDb {
    async fn open(&self) -> Arc<dyn MetadataStore> {
        Arc::new(self.store().await)
    }

    async fn cleanup(&self) {
        self.drop_db().await;
    }
}

/// The suite's fixture: a fresh database per test.
pub async fn fixture() -> Option<Arc<dyn Fixture>> {
    Some(Arc::new(TestDb::create().await?))
}

#[test]
fn database_urls_are_rewritten() {
    assert_eq!(
        replace_database("postgres://u@h:1/postgres", "t"),
        "postgres://u@h:1/t"
    );
    assert_eq!(
        replace_database("postgres://u:p@h/admin?sslmode=require", "t"),
        "postgres://u:p@h/t?sslmode=require"
    );
    assert_eq!(replace_database("postgres://h", "t"), "postgres://h/t");
}
