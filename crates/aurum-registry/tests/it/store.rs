//! The SQLite metadata store and the local artifact store, against real files in a tempdir.
//!
//! The store's behaviour is the shared suite of `aurum_registry::testing`, run here on a fresh
//! SQLite file per test; what follows it is specific to SQLite and to local disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use aurum_core::sha256_hex;
use aurum_registry::testing::{Fixture, dataset};
use aurum_registry::{
    ArtifactStore, Entity, LocalArtifactStore, MetadataStore, RegistryError, Role, SqliteStore,
    get_verified,
};

/// A fresh SQLite file in a tempdir; each `open` is a new pool on it, as another process's.
struct SqliteFixture {
    dir: tempfile::TempDir,
}

#[async_trait]
impl Fixture for SqliteFixture {
    async fn open(&self) -> Arc<dyn MetadataStore> {
        Arc::new(open(&self.dir).await)
    }
}

async fn sqlite_fixture() -> Option<Arc<dyn Fixture>> {
    Some(Arc::new(SqliteFixture {
        dir: tempfile::tempdir().unwrap(),
    }))
}

aurum_registry::metadata_store_suite!(sqlite_fixture());

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("state").join("registry.db")
}

async fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&db_path(dir))
        .await
        .expect("open registry")
}

fn assert_not_found(err: RegistryError, expected: Entity) {
    match err {
        RegistryError::NotFound { kind, .. } => assert_eq!(kind, expected),
        other => panic!("expected {expected} not found, got {other:?}"),
    }
}

#[tokio::test]
async fn migrations_apply_to_a_fresh_file_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    assert!(db_path(&dir).is_file());

    let pool = store.pool();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(foreign_keys, 1);
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(synchronous, 2, "synchronous=FULL");
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _aurum_registry_migrations ORDER BY version")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(applied.first(), Some(&1));

    store.insert_dataset(dataset("credit", "a")).await.unwrap();
    store.close().await;

    // Reopening applies nothing new and keeps the data.
    let store = open(&dir).await;
    let again: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _aurum_registry_migrations ORDER BY version")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(again, applied);
    assert_eq!(
        store.get_dataset("credit").await.unwrap().sha256,
        sha256_hex(b"a")
    );

    // A database written by a newer aurum (a migration this build lacks) is refused.
    sqlx::query(
        "INSERT INTO _aurum_registry_migrations \
         (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', 1, x'00', 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    store.close().await;
    let err = SqliteStore::open(&db_path(&dir)).await.unwrap_err();
    assert_eq!(err.code(), "migration_error", "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn registry_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    store.create_key("ops", Role::Admin).await.unwrap();
    store.record_shadow(&[shadow_record("r1")]).await.unwrap();
    assert!(aurum_registry::sqlite_shadow_path(&db_path(&dir)).exists());
    for file in files_under(dir.path()) {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        // The registry and its shadow scores' file, with their WAL and shared-memory files.
        if name.starts_with("registry") {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
        }
    }
}

#[tokio::test]
async fn key_plaintext_is_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let mut secrets = Vec::new();
    for name in ["a", "b", "c"] {
        let (_, plaintext) = store.create_key(name, Role::Analyst).await.unwrap();
        secrets.push(plaintext);
    }
    // Before and after a checkpoint: the secret must be in neither the WAL nor the main file.
    assert_no_secret_on_disk(dir.path(), &secrets);
    store.close().await;
    assert_no_secret_on_disk(dir.path(), &secrets);
}

fn assert_no_secret_on_disk(root: &Path, keys: &[String]) {
    let files = files_under(root);
    assert!(files.iter().any(|f| f.ends_with("registry.db")));
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for key in keys {
            let secret = key.rsplit('_').next().unwrap();
            for needle in [
                key.as_bytes(),
                secret.as_bytes(),
                &hex::decode(secret).unwrap(),
            ] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "key material found in {}",
                    file.display()
                );
            }
        }
    }
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test]
async fn artifact_store_round_trips_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("artifacts");
    let store: Arc<dyn ArtifactStore> = Arc::new(LocalArtifactStore::new(&root).unwrap());

    let key = "models/credit/v1.bin";
    assert!(!store.exists(key).await.unwrap());
    assert_not_found(store.get(key).await.unwrap_err(), Entity::Artifact);
    store.put(key, b"first".to_vec()).await.unwrap();
    assert!(store.exists(key).await.unwrap());
    assert_eq!(store.get(key).await.unwrap(), b"first");
    store.put(key, b"second, longer".to_vec()).await.unwrap();
    assert_eq!(store.get(key).await.unwrap(), b"second, longer");
    assert!(
        !store.exists("models/credit").await.unwrap(),
        "a directory is not an artifact"
    );

    for i in 0..20 {
        store
            .put(&format!("bulk/{i}.bin"), vec![i as u8; 1000])
            .await
            .unwrap();
    }
    let leftovers: Vec<PathBuf> = files_under(&root)
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temp files left behind: {leftovers:?}"
    );
    assert_eq!(files_under(&root).len(), 21);

    store.delete(key).await.unwrap();
    assert!(!store.exists(key).await.unwrap());
    store.delete(key).await.unwrap();
}

#[tokio::test]
async fn artifact_keys_are_validated_before_touching_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalArtifactStore::new(dir.path().join("artifacts")).unwrap();
    std::fs::write(dir.path().join("x"), b"outside").unwrap();
    for key in ["../x", "/abs", "a//b", "a/../../x", "", "a/", ".tmp-1"] {
        let code = |r: Result<(), RegistryError>| r.unwrap_err().code();
        assert_eq!(
            code(store.put(key, b"evil".to_vec()).await),
            "invalid_artifact_key",
            "{key}"
        );
        assert_eq!(
            code(store.get(key).await.map(drop)),
            "invalid_artifact_key",
            "{key}"
        );
        assert_eq!(
            code(store.exists(key).await.map(drop)),
            "invalid_artifact_key",
            "{key}"
        );
        assert_eq!(
            code(store.delete(key).await),
            "invalid_artifact_key",
            "{key}"
        );
    }
    assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), b"outside");
    assert!(!dir.path().join("abs").exists());
}

#[tokio::test]
async fn get_verified_detects_corruption_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("artifacts");
    let store = LocalArtifactStore::new(&root).unwrap();
    let bytes = b"model weights and metadata".to_vec();
    let sha = sha256_hex(&bytes);
    let key = format!("models/credit/{sha}.bin");
    store.put(&key, bytes.clone()).await.unwrap();
    assert_eq!(get_verified(&store, &key, &sha).await.unwrap(), bytes);

    // Flip one bit of one byte on disk.
    let path = root
        .join("models")
        .join("credit")
        .join(format!("{sha}.bin"));
    let mut on_disk = std::fs::read(&path).unwrap();
    on_disk[3] ^= 0x01;
    std::fs::write(&path, &on_disk).unwrap();

    match get_verified(&store, &key, &sha).await.unwrap_err() {
        RegistryError::ArtifactCorrupt {
            key: k,
            expected,
            actual,
        } => {
            assert_eq!(k, key);
            assert_eq!(expected, sha);
            assert_eq!(actual, sha256_hex(&on_disk));
        }
        other => panic!("expected ArtifactCorrupt, got {other:?}"),
    }
    assert_not_found(
        get_verified(&store, "missing.bin", &sha).await.unwrap_err(),
        Entity::Artifact,
    );
}

fn shadow_record(request: &str) -> aurum_registry::ShadowRecord {
    aurum_registry::ShadowRecord {
        model: "m".into(),
        request_id: request.into(),
        record: 0,
        champion_version: 1,
        challenger_version: 2,
        champion_p: 0.25,
        challenger_p: 0.5,
        champion_decision: "approve".into(),
        challenger_decision: "refer".into(),
        scored_at: chrono::Utc::now(),
    }
}

/// Shadow scores are written to a file of their own (`registry-shadow.db`); the ones an earlier
/// version wrote into the registry's own table are moved there at open, and the comparison
/// still finds their outcomes in the registry.
#[tokio::test]
async fn shadow_scores_live_in_their_own_file_and_old_ones_move_there() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    for (i, request) in ["old-1", "old-2", "old-3"].iter().enumerate() {
        sqlx::query(
            "INSERT INTO shadow_scores (model, request_id, record, champion_version, \
             challenger_version, champion_p, challenger_p, champion_decision, \
             challenger_decision, scored_at) VALUES ('m', ?, 0, 1, 2, 0.1, 0.2, 'approve', \
             'decline', ?)",
        )
        .bind(request)
        .bind(format!("2026-12-0{}T00:00:00.000000Z", i + 1))
        .execute(store.pool())
        .await
        .unwrap();
    }
    let mut outcome = aurum_registry::OutcomeRecord {
        model: "m".into(),
        version: 1,
        request_id: "old-2".into(),
        record: 0,
        probability: 0.1,
        decision: None,
        positive: true,
        scored_at: chrono::Utc::now(),
        received_at: chrono::Utc::now(),
        attributes: Default::default(),
    };
    store
        .record_outcomes(std::slice::from_ref(&outcome))
        .await
        .unwrap();
    store.close().await;

    let store = open(&dir).await;
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM shadow_scores")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "moved out of the registry file");
    store
        .record_shadow(&[shadow_record("new-1")])
        .await
        .unwrap();
    outcome.request_id = "new-1".into();
    outcome.positive = false;
    store
        .record_outcomes(std::slice::from_ref(&outcome))
        .await
        .unwrap();
    let listed = store.list_shadow("m", 10).await.unwrap();
    let ids: Vec<(&str, Option<bool>)> = listed
        .iter()
        .map(|(r, o)| (r.request_id.as_str(), *o))
        .collect();
    assert_eq!(
        ids,
        [
            ("old-1", None),
            ("old-2", Some(true)),
            ("old-3", None),
            ("new-1", Some(false))
        ]
    );
    assert_eq!(listed[0].0.challenger_decision, "decline");
    store.close().await;
}

/// Shadow commits never flush the disk, so after an operating-system crash their file may be
/// damaged: the store then moves it aside and writes into a new one (private like the first);
/// the registry is untouched.
#[tokio::test]
async fn a_damaged_shadow_file_is_set_aside_and_started_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    store.create_key("ops", Role::Admin).await.unwrap();
    store
        .record_shadow(&[shadow_record("before")])
        .await
        .unwrap();
    store.close().await;
    let shadow = aurum_registry::sqlite_shadow_path(&db_path(&dir));
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", shadow.display()));
    }
    std::fs::write(&shadow, vec![0x5a; 8192]).unwrap();

    let store = open(&dir).await;
    store
        .record_shadow(&[shadow_record("after")])
        .await
        .unwrap();
    let listed = store.list_shadow("m", 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0.request_id, "after");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&shadow).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the new file is private");
    let aside: Vec<String> = std::fs::read_dir(shadow.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        store.list_keys().await.unwrap().len(),
        1,
        "the registry is untouched"
    );
    store.close().await;
}
