//! What only the PostgreSQL store does: migrations shared by replicas, the stored format, and
//! change notification through LISTEN/NOTIFY.

use std::time::Duration;

use aurum_postgres::PgStore;
use aurum_registry::MetadataStore;
use aurum_registry::backend::format_timestamp;
use aurum_registry::testing::{dataset, version};

use crate::support::TestDb;

/// Runs `test` on a fresh database and drops it afterwards, pass or fail.
async fn with_db<F, Fut>(test: F)
where
    F: FnOnce(std::sync::Arc<TestDb>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(db) = TestDb::create().await else {
        return;
    };
    let db = std::sync::Arc::new(db);
    let outcome = tokio::spawn(test(std::sync::Arc::clone(&db))).await;
    db.drop_db().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Registers a dataset and versions 1..=n of model `m` through `store`.
async fn with_versions(store: &PgStore, n: u32) {
    let ds = dataset("credit", "x,y\n1,true\n");
    store.insert_dataset(ds.clone()).await.unwrap();
    for i in 0..n {
        store
            .create_version(version("m", &ds, format!("artifact {i}").as_bytes()))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_migrate_once_and_a_newer_database_is_refused() {
    with_db(|db| async move {
        // Four replicas start at once on an empty database.
        let starts: Vec<_> = (0..4)
            .map(|_| {
                let url = db.url.clone();
                tokio::spawn(async move { PgStore::connect(&url, 2).await })
            })
            .collect();
        let mut stores = Vec::new();
        for start in starts {
            stores.push(start.await.unwrap().expect("replica starts"));
        }
        let store = &stores[0];
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _aurum_registry_migrations ORDER BY version")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(applied, [1, 2, 3, 4, 5], "each migration applied once");
        assert_eq!(store.change_epoch().await.unwrap(), 0);

        // Reconnecting applies nothing new and keeps the data.
        store.insert_dataset(dataset("credit", "a")).await.unwrap();
        let again = db.store().await;
        assert_eq!(
            again.get_dataset("credit").await.unwrap().sha256,
            aurum_core::sha256_hex(b"a")
        );

        // A database migrated by a newer aurum (a migration this build lacks) is refused.
        sqlx::query(
            "INSERT INTO _aurum_registry_migrations \
             (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from the future', TRUE, '\\x00', 0)",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let err = PgStore::connect(&db.url, 2).await.unwrap_err();
        assert_eq!(err.code(), "migration_error", "{err}");

        let err = PgStore::connect(&db.url, 0).await.unwrap_err();
        assert_eq!(err.code(), "invalid_input", "{err}");
        let err = PgStore::connect("not a url", 2).await.unwrap_err();
        assert_eq!(err.code(), "database_error", "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timestamps_are_stored_in_the_sqlite_text_format() {
    with_db(|db| async move {
        let store = db.store().await;
        let (record, _) = store.insert_dataset(dataset("credit", "a")).await.unwrap();
        let stored: String =
            sqlx::query_scalar("SELECT created_at FROM datasets WHERE name = 'credit'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(stored, format_timestamp(&record.created_at));
        assert_eq!(stored.len(), "2025-01-01T00:00:00.000000Z".len());
        assert!(stored.ends_with('Z'));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_alias_move_reaches_another_replica_within_a_second() {
    with_db(|db| async move {
        let writer = db.store().await;
        let reader = db.store().await;
        with_versions(&writer, 2).await;
        let mut changes = reader.subscribe_changes().await.unwrap();
        let initial = *changes.borrow_and_update();
        assert_eq!(initial, writer.change_epoch().await.unwrap());

        for to in [1, 2] {
            writer.set_alias("m", "champion", to, "alice").await.unwrap();
            let expected = writer.change_epoch().await.unwrap();
            tokio::time::timeout(Duration::from_secs(1), async {
                while *changes.borrow_and_update() < expected {
                    changes.changed().await.unwrap();
                }
            })
            .await
            .unwrap_or_else(|_| panic!("alias move to v{to} not seen within 1 s"));
            assert_eq!(reader.resolve_alias("m", "champion").await.unwrap(), Some(to));
        }

        // A rolled-back change notifies no one: the epoch bump and the notification belong to
        // the transaction.
        let before = *changes.borrow_and_update();
        let mut tx = writer.pool().begin().await.unwrap();
        sqlx::query(
            "INSERT INTO api_keys (id, name, role, key_hash, created_at) \
             VALUES ('aaaaaaaaaaaa', 'ghost', 'client', 'sha256$00', '2025-01-01T00:00:00.000000Z')",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(300), changes.changed())
                .await
                .is_err(),
            "a rolled-back change was announced"
        );
        assert_eq!(*changes.borrow(), before);
        assert_eq!(writer.change_epoch().await.unwrap(), before);
    })
    .await;
}

/// The backends of this database that are listening for changes.
async fn listener_pids(store: &PgStore) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
         AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_change_listener_reconnects_and_catches_up() {
    with_db(|db| async move {
        let writer = db.store().await;
        let reader = db.store().await;
        with_versions(&writer, 3).await;
        let mut changes = reader.subscribe_changes().await.unwrap();
        changes.borrow_and_update();

        // Kill the listening connection, then change something at once, while nobody listens.
        let pids = listener_pids(&writer).await;
        assert_eq!(pids.len(), 1, "one listening backend: {pids:?}");
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pids[0])
            .fetch_one(writer.pool())
            .await
            .unwrap();
        assert!(killed);
        writer.set_alias("m", "champion", 1, "alice").await.unwrap();
        let missed = writer.change_epoch().await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            while *changes.borrow_and_update() < missed {
                changes.changed().await.unwrap();
            }
        })
        .await
        .expect("the change made while disconnected is published after reconnecting");

        // And notifications flow again on the new connection.
        let mut reconnected = false;
        for _ in 0..50 {
            if listener_pids(&writer).await.iter().any(|p| *p != pids[0]) {
                reconnected = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(reconnected, "the listener is back");
        writer.set_alias("m", "champion", 2, "alice").await.unwrap();
        let expected = writer.change_epoch().await.unwrap();
        tokio::time::timeout(Duration::from_secs(1), async {
            while *changes.borrow_and_update() < expected {
                changes.changed().await.unwrap();
            }
        })
        .await
        .expect("a move after reconnecting is seen within 1 s");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropping_every_receiver_releases_the_listening_connection() {
    with_db(|db| async move {
        let store = db.store().await;
        let changes = store.subscribe_changes().await.unwrap();
        assert_eq!(listener_pids(&store).await.len(), 1);
        drop(changes);
        let mut released = false;
        for _ in 0..50 {
            if listener_pids(&store).await.is_empty() {
                released = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(released, "the listener connection outlived its receivers");
    })
    .await;
}
