//! The SQLite metadata store and the local artifact store, against real files in a tempdir.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aurum_core::{FamilyName, sha256_hex};
use aurum_registry::{
    AliasMove, ArtifactStore, Entity, INTERRUPTED_JOB_ERROR, JobState, LocalArtifactStore,
    MetadataStore, NewDataset, NewJob, NewVersion, RegistryError, Role, SqliteStore, StoredKeyHash,
    get_verified, key_digest,
};

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("state").join("registry.db")
}

async fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&db_path(dir))
        .await
        .expect("open registry")
}

fn dataset(name: &str, content: &str) -> NewDataset {
    NewDataset {
        name: name.to_string(),
        sha256: sha256_hex(content.as_bytes()),
        format: "csv".to_string(),
        size_bytes: content.len() as u64,
        rows: 3,
        columns: 2,
        schema_json: r#"{"fields":[{"name":"x","type":"float"},{"name":"y","type":"boolean"}]}"#
            .to_string(),
        profile_json: "{}".to_string(),
        created_by: "alice".to_string(),
    }
}

fn version(model: &str, dataset: &NewDataset, artifact: &[u8]) -> NewVersion {
    let sha = sha256_hex(artifact);
    NewVersion {
        model: model.to_string(),
        kind: FamilyName::new("logistic").unwrap(),
        artifact_key: format!("models/{model}/{sha}.bin"),
        artifact_sha256: sha,
        dataset_name: dataset.name.clone(),
        dataset_sha256: dataset.sha256.clone(),
        target: "y".to_string(),
        params_json: r#"{"l2":"1.0"}"#.to_string(),
        metrics_json: r#"{"auc":0.75}"#.to_string(),
        aurum_version: aurum_core::AURUM_VERSION.to_string(),
        created_by: "alice".to_string(),
        job_id: None,
    }
}

/// A store holding dataset `credit` and `n` versions of model `m`.
async fn store_with_versions(dir: &tempfile::TempDir, n: u32) -> (SqliteStore, NewDataset) {
    let store = open(dir).await;
    let ds = dataset("credit", "x,y\n1,true\n");
    store.insert_dataset(ds.clone()).await.unwrap();
    for i in 0..n {
        store
            .create_version(version("m", &ds, format!("artifact {i}").as_bytes()))
            .await
            .unwrap();
    }
    (store, ds)
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

#[tokio::test]
async fn dataset_import_is_idempotent_and_conflicts_on_other_content() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;

    let (first, created) = store.insert_dataset(dataset("credit", "v1")).await.unwrap();
    assert!(created);
    assert_eq!(first.rows, 3);
    assert_eq!(first.schema().unwrap().len(), 2);

    let mut same = dataset("credit", "v1");
    same.created_by = "bob".to_string();
    let (second, created) = store.insert_dataset(same).await.unwrap();
    assert!(!created);
    assert_eq!(second, first, "the existing record is returned unchanged");

    let err = store
        .insert_dataset(dataset("credit", "v2"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("credit"), "{err}");
    assert!(err.is_user_error());

    let err = store
        .insert_dataset(dataset("../etc", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_name");
    let mut bad_hash = dataset("other", "x");
    bad_hash.sha256 = "nothex".to_string();
    assert_eq!(
        store.insert_dataset(bad_hash).await.unwrap_err().code(),
        "invalid_input"
    );

    store.insert_dataset(dataset("alpha", "a")).await.unwrap();
    let names: Vec<String> = store
        .list_datasets()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["alpha", "credit"]);
    assert_eq!(store.get_dataset("credit").await.unwrap(), first);
    assert_not_found(
        store.get_dataset("nope").await.unwrap_err(),
        Entity::Dataset,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_create_version_numbers_without_gaps_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (store, ds) = store_with_versions(&dir, 0).await;
    let store: Arc<dyn MetadataStore> = Arc::new(store);
    // A second, independent pool on the same file stands in for another process.
    let other: Arc<dyn MetadataStore> = Arc::new(open(&dir).await);

    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(if i % 2 == 0 { &store } else { &other });
            let new = version("m", &ds, format!("artifact {i}").as_bytes());
            tokio::spawn(async move { store.create_version(new).await })
        })
        .collect();
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.unwrap().unwrap().version);
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=8).collect::<Vec<u32>>());

    let listed: Vec<u32> = store
        .list_versions("m")
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(listed, (1..=8).collect::<Vec<u32>>());
    let model = store.get_model("m").await.unwrap();
    assert_eq!(model.latest_version, 8);
}

#[tokio::test]
async fn versions_record_lineage_and_refuse_unknown_or_mismatched_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let (store, ds) = store_with_versions(&dir, 1).await;

    let v1 = store.get_version("m", 1).await.unwrap();
    assert_eq!(v1.kind, FamilyName::new("logistic").unwrap());
    assert_eq!(v1.dataset_sha256, ds.sha256);
    assert_eq!(v1.metrics().unwrap()["auc"], 0.75);
    assert_eq!(v1.params().unwrap()["l2"], "1.0");
    assert!(!v1.is_archived());

    let mut unknown = version("m", &ds, b"x");
    unknown.dataset_name = "missing".to_string();
    assert_not_found(
        store.create_version(unknown).await.unwrap_err(),
        Entity::Dataset,
    );

    let mut mismatched = version("m", &ds, b"x");
    mismatched.dataset_sha256 = sha256_hex(b"other bytes");
    assert!(matches!(
        store.create_version(mismatched).await.unwrap_err(),
        RegistryError::Conflict(_)
    ));

    let mut bad_key = version("m", &ds, b"x");
    bad_key.artifact_key = "../escape".to_string();
    assert_eq!(
        store.create_version(bad_key).await.unwrap_err().code(),
        "invalid_artifact_key"
    );

    let mut with_job = version("m", &ds, b"x");
    with_job.job_id = Some("no-such-job".to_string());
    assert_not_found(
        store.create_version(with_job).await.unwrap_err(),
        Entity::Job,
    );

    // Failed attempts consumed no version number.
    assert_eq!(
        store
            .create_version(version("m", &ds, b"x"))
            .await
            .unwrap()
            .version,
        2
    );
    assert_not_found(
        store.get_version("m", 9).await.unwrap_err(),
        Entity::Version,
    );
    assert_not_found(
        store.get_version("nope", 1).await.unwrap_err(),
        Entity::Model,
    );
    assert_not_found(
        store.list_versions("nope").await.unwrap_err(),
        Entity::Model,
    );
    assert_not_found(store.get_model("nope").await.unwrap_err(), Entity::Model);
}

#[tokio::test]
async fn alias_moves_are_recorded_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_versions(&dir, 3).await;

    assert_eq!(store.resolve_alias("m", "champion").await.unwrap(), None);
    let moves = [
        ("champion", 1, None),
        ("champion", 2, Some(1)),
        ("challenger", 3, None),
        ("champion", 3, Some(2)),
    ];
    for (alias, to, from) in moves {
        let moved = store.set_alias("m", alias, to, "alice").await.unwrap();
        assert_eq!(moved, AliasMove { from, to });
    }
    // Re-pointing at the same version changes nothing and records nothing.
    let same = store.set_alias("m", "champion", 3, "bob").await.unwrap();
    assert_eq!(
        same,
        AliasMove {
            from: Some(3),
            to: 3
        }
    );

    let history = store.alias_history("m").await.unwrap();
    let recorded: Vec<(&str, Option<u32>, u32)> = history
        .iter()
        .map(|h| (h.alias.as_str(), h.from_version, h.to_version))
        .collect();
    assert_eq!(
        recorded,
        [
            ("champion", None, 1),
            ("champion", Some(1), 2),
            ("challenger", None, 3),
            ("champion", Some(2), 3)
        ]
    );
    assert!(history.iter().all(|h| h.moved_by == "alice"));
    assert!(history.windows(2).all(|w| w[0].moved_at <= w[1].moved_at));

    assert_eq!(store.resolve_alias("m", "champion").await.unwrap(), Some(3));
    let aliases: Vec<(String, u32)> = store
        .list_aliases("m")
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.alias, a.version))
        .collect();
    assert_eq!(
        aliases,
        [("challenger".to_string(), 3), ("champion".to_string(), 3)]
    );

    let models = store.list_models().await.unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].latest_version, 3);
    assert_eq!(models[0].aliases.len(), 2);

    assert_eq!(
        store
            .set_alias("m", "bad/alias", 1, "a")
            .await
            .unwrap_err()
            .code(),
        "invalid_name"
    );
    assert_not_found(
        store.set_alias("m", "champion", 7, "a").await.unwrap_err(),
        Entity::Version,
    );
    assert_not_found(
        store.set_alias("zz", "champion", 1, "a").await.unwrap_err(),
        Entity::Model,
    );
    assert_not_found(
        store.resolve_alias("zz", "champion").await.unwrap_err(),
        Entity::Model,
    );
    assert_not_found(store.alias_history("zz").await.unwrap_err(), Entity::Model);
}

#[tokio::test]
async fn archived_versions_cannot_receive_an_alias() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_versions(&dir, 2).await;

    let archived = store.archive_version("m", 1).await.unwrap();
    assert!(archived.is_archived());
    assert!(store.get_version("m", 1).await.unwrap().is_archived());
    // Archiving twice keeps the first timestamp.
    assert_eq!(
        store.archive_version("m", 1).await.unwrap().archived_at,
        archived.archived_at
    );

    let err = store
        .set_alias("m", "champion", 1, "alice")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::ArchivedVersion { version: 1, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "version_archived");
    assert!(store.alias_history("m").await.unwrap().is_empty());

    // An aliased version cannot be archived: no alias ever resolves to an archived version.
    store.set_alias("m", "champion", 2, "alice").await.unwrap();
    let err = store.archive_version("m", 2).await.unwrap_err();
    assert!(matches!(err, RegistryError::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("champion"), "{err}");

    assert!(!store.unarchive_version("m", 1).await.unwrap().is_archived());
    store
        .set_alias("m", "challenger", 1, "alice")
        .await
        .unwrap();
    assert_eq!(
        store.resolve_alias("m", "challenger").await.unwrap(),
        Some(1)
    );
}

fn new_job(dataset: &str) -> NewJob {
    NewJob {
        dataset: dataset.to_string(),
        target: "y".to_string(),
        kind: FamilyName::new("logistic").unwrap(),
        model: "m".to_string(),
        params_json: "{}".to_string(),
        created_by: "alice".to_string(),
        owner: "process-a".to_string(),
    }
}

#[tokio::test]
async fn job_transitions_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_versions(&dir, 1).await;

    assert_not_found(
        store.create_job(new_job("missing")).await.unwrap_err(),
        Entity::Dataset,
    );
    let job = store.create_job(new_job("credit")).await.unwrap();
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(store.get_job(&job.id).await.unwrap(), job);
    assert!(
        !store
            .update_job_progress(&job.id, 0.5, "fitting")
            .await
            .unwrap()
    );

    let err = store
        .transition_job(&job.id, JobState::Succeeded, None, Some(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::InvalidTransition {
                from: JobState::Queued,
                to: JobState::Succeeded,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "invalid_job_transition");

    let running = store
        .transition_job(&job.id, JobState::Running, None, None)
        .await
        .unwrap();
    assert!(running.started_at.is_some() && running.finished_at.is_none());
    assert!(
        store
            .update_job_progress(&job.id, 0.5, "fitting")
            .await
            .unwrap()
    );
    let read = store.get_job(&job.id).await.unwrap();
    assert_eq!((read.progress, read.stage.as_str()), (0.5, "fitting"));
    assert_eq!(
        store
            .update_job_progress(&job.id, 1.5, "x")
            .await
            .unwrap_err()
            .code(),
        "invalid_input"
    );
    assert_eq!(
        store
            .update_job_progress(&job.id, f64::NAN, "x")
            .await
            .unwrap_err()
            .code(),
        "invalid_input"
    );

    let done = store
        .transition_job(&job.id, JobState::Succeeded, None, Some(1))
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.result_version, Some(1));
    assert_eq!(done.progress, 1.0);
    assert!(done.finished_at.is_some());
    assert_eq!(store.get_job(&job.id).await.unwrap(), done);
    for to in JobState::ALL {
        assert!(
            store.transition_job(&job.id, to, None, None).await.is_err(),
            "succeeded -> {to}"
        );
    }

    let other = store.create_job(new_job("credit")).await.unwrap();
    let cancelled = store
        .transition_job(&other.id, JobState::Cancelled, None, None)
        .await
        .unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    let third = store.create_job(new_job("credit")).await.unwrap();
    store
        .transition_job(&third.id, JobState::Running, None, None)
        .await
        .unwrap();
    let failed = store
        .transition_job(
            &third.id,
            JobState::Failed,
            Some("diverged".to_string()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(failed.error.as_deref(), Some("diverged"));

    let listed: Vec<String> = store
        .list_jobs(2)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(
        !listed.contains(&job.id),
        "newest first: the oldest job is cut by the limit"
    );
    assert_not_found(store.get_job("nope").await.unwrap_err(), Entity::Job);
    assert_not_found(
        store
            .transition_job("nope", JobState::Running, None, None)
            .await
            .unwrap_err(),
        Entity::Job,
    );
    assert_not_found(
        store
            .update_job_progress("nope", 0.1, "x")
            .await
            .unwrap_err(),
        Entity::Job,
    );

    // A version may name the job that produced it.
    let ds = dataset("credit", "x,y\n1,true\n");
    let mut v = version("m", &ds, b"from job");
    v.job_id = Some(job.id.clone());
    assert_eq!(store.create_version(v).await.unwrap().job_id, Some(job.id));
}

#[tokio::test]
async fn interrupted_jobs_fail_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_versions(&dir, 0).await;
    let queued = store.create_job(new_job("credit")).await.unwrap();
    let running = store.create_job(new_job("credit")).await.unwrap();
    store
        .transition_job(&running.id, JobState::Running, None, None)
        .await
        .unwrap();
    let finished = store.create_job(new_job("credit")).await.unwrap();
    store
        .transition_job(&finished.id, JobState::Cancelled, None, None)
        .await
        .unwrap();
    store.close().await;

    // "Restart": a new process opens the same file. While the owner's heartbeat is fresh,
    // its jobs are left alone; once it is stale, they fail.
    let store = open(&dir).await;
    assert_eq!(
        store
            .fail_interrupted_jobs(std::time::Duration::from_secs(60))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.heartbeat_jobs("process-a").await.unwrap(), 2);
    assert_eq!(store.heartbeat_jobs("process-b").await.unwrap(), 0);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(
        store
            .fail_interrupted_jobs(std::time::Duration::from_millis(5))
            .await
            .unwrap(),
        2
    );
    for id in [&queued.id, &running.id] {
        let job = store.get_job(id).await.unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.error.as_deref(), Some(INTERRUPTED_JOB_ERROR));
        assert!(job.finished_at.is_some());
    }
    assert_eq!(
        store.get_job(&finished.id).await.unwrap().state,
        JobState::Cancelled
    );
    assert_eq!(
        store
            .fail_interrupted_jobs(std::time::Duration::ZERO)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn api_keys_verify_until_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;

    let (admin, plaintext) = store.create_key("ops", Role::Admin).await.unwrap();
    let (client, client_key) = store.create_key("web-app", Role::Client).await.unwrap();
    let parts: Vec<&str> = plaintext.splitn(3, '_').collect();
    assert_eq!(parts[0], "aurum");
    assert_eq!(parts[1], admin.id);
    assert_eq!(admin.id.len(), 12);
    assert!(
        admin
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    );
    assert_eq!(parts[2].len(), 64);
    assert!(admin.is_active());

    assert_eq!(
        store.verify_key(&plaintext).await.unwrap(),
        Some(admin.clone())
    );
    assert_eq!(
        store.verify_key(&client_key).await.unwrap().unwrap().role,
        Role::Client
    );
    // Right id, wrong secret; malformed; unknown id.
    let wrong = format!("aurum_{}_{}", admin.id, "0".repeat(64));
    assert_eq!(store.verify_key(&wrong).await.unwrap(), None);
    assert_eq!(store.verify_key("Bearer nonsense").await.unwrap(), None);
    assert_eq!(
        store
            .verify_key(&format!("aurum_aaaaaaaaaaaa_{}", "0".repeat(64)))
            .await
            .unwrap(),
        None
    );

    let err = store.create_key("ops", Role::Client).await.unwrap_err();
    assert!(matches!(err, RegistryError::Conflict(_)), "{err:?}");
    assert_eq!(
        store
            .create_key("no spaces", Role::Client)
            .await
            .unwrap_err()
            .code(),
        "invalid_name"
    );
    assert_eq!(store.count_active_keys().await.unwrap(), 2);

    // The last active admin key cannot revoke itself away.
    let err = store.revoke_key("ops").await.unwrap_err();
    assert!(
        matches!(err, RegistryError::Conflict(ref m) if m.contains("last active admin")),
        "{err:?}"
    );
    store.create_key("ops-2", Role::Admin).await.unwrap();
    let revoked = store.revoke_key("ops").await.unwrap();
    assert!(!revoked.is_active());
    assert_eq!(store.verify_key(&plaintext).await.unwrap(), None);
    assert_eq!(store.count_active_keys().await.unwrap(), 2);
    // Revoking is idempotent and works by id too.
    assert_eq!(
        store.revoke_key(&admin.id).await.unwrap().revoked_at,
        revoked.revoked_at
    );
    store.revoke_key(&client.id).await.unwrap();
    assert_eq!(store.count_active_keys().await.unwrap(), 1);
    assert_not_found(store.revoke_key("nobody").await.unwrap_err(), Entity::Key);

    let names: Vec<String> = store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["ops", "web-app", "ops-2"]);
}

#[tokio::test]
async fn key_credentials_and_change_epoch_follow_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let e0 = store.change_epoch().await.unwrap();
    let (admin, admin_key) = store.create_key("ops", Role::Admin).await.unwrap();
    let e1 = store.change_epoch().await.unwrap();
    assert!(e1 > e0);
    let (client, _) = store.create_key("app", Role::Client).await.unwrap();
    let creds = store.key_credentials().await.unwrap();
    assert_eq!(creds.len(), 2);
    let cred = creds.iter().find(|c| c.record.id == admin.id).unwrap();
    match &cred.hash {
        StoredKeyHash::Sha256(d) => assert_eq!(*d, key_digest(&admin_key)),
        other => panic!("new keys use the fast hash, got {other:?}"),
    }
    let e2 = store.change_epoch().await.unwrap();
    store.revoke_key(&client.id).await.unwrap();
    assert!(store.change_epoch().await.unwrap() > e2);
    assert_eq!(store.key_credentials().await.unwrap().len(), 1);

    // Another process (a second pool on the same file) sees the same epoch move.
    let other = open(&dir).await;
    let before = other.change_epoch().await.unwrap();
    let (_, _) = store_with_versions_on(&store).await;
    assert!(other.change_epoch().await.unwrap() > before);
}

/// Adds a dataset, a model with one version and a `champion` alias to `store`.
async fn store_with_versions_on(store: &SqliteStore) -> (String, u32) {
    let ds = dataset("epoch-data", "x,y\n2,false\n");
    store.insert_dataset(ds.clone()).await.unwrap();
    let v = store
        .create_version(version("epoch-model", &ds, b"epoch artifact"))
        .await
        .unwrap();
    store
        .set_alias("epoch-model", "champion", v.version, "t")
        .await
        .unwrap();
    ("epoch-model".to_string(), v.version)
}

#[tokio::test]
async fn legacy_argon2_key_hashes_verify_and_are_upgraded() {
    use argon2::password_hash::PasswordHasher;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let (admin, key) = store.create_key("ops", Role::Admin).await.unwrap();
    let phc = argon2::Argon2::default()
        .hash_password(key.as_bytes())
        .unwrap()
        .to_string();
    let fast = StoredKeyHash::Sha256(key_digest(&key)).to_stored();
    // Put the key back in the form an earlier version stored.
    assert!(
        store
            .upgrade_key_hash(&admin.id, &fast, &phc)
            .await
            .unwrap()
    );
    let cred = &store.key_credentials().await.unwrap()[0];
    assert!(matches!(cred.hash, StoredKeyHash::Argon2(_)));
    // A wrong secret neither verifies nor upgrades.
    let wrong = format!("aurum_{}_{}", admin.id, "0".repeat(64));
    assert_eq!(store.verify_key(&wrong).await.unwrap(), None);
    assert!(matches!(
        store.key_credentials().await.unwrap()[0].hash,
        StoredKeyHash::Argon2(_)
    ));
    // The right one verifies once through argon2, then is stored in the fast form.
    assert_eq!(store.verify_key(&key).await.unwrap().unwrap().id, admin.id);
    assert_eq!(
        store.key_credentials().await.unwrap()[0].hash,
        StoredKeyHash::Sha256(key_digest(&key))
    );
    // Compare-and-set: a stale `from` changes nothing.
    assert!(
        !store
            .upgrade_key_hash(&admin.id, &phc, &fast)
            .await
            .unwrap()
    );
}

#[cfg(unix)]
#[tokio::test]
async fn registry_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    store.create_key("ops", Role::Admin).await.unwrap();
    for file in files_under(dir.path()) {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("registry.db") {
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

/// A version imported from outside aurum has no dataset: its lineage is the imported file's hash.
#[tokio::test]
async fn imported_versions_need_no_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let store = aurum_registry::SqliteStore::open(&dir.path().join("r.db"))
        .await
        .unwrap();
    let sha = "a".repeat(64);
    let v = aurum_registry::MetadataStore::create_version(
        &store,
        aurum_registry::NewVersion {
            model: "imported".into(),
            kind: aurum_core::FamilyName::new("logistic").unwrap(),
            artifact_key: "models/imported/x.aurum".into(),
            artifact_sha256: sha.clone(),
            dataset_name: String::new(),
            dataset_sha256: sha.clone(),
            target: String::new(),
            params_json: "{}".into(),
            metrics_json: "{}".into(),
            aurum_version: "0.1.0".into(),
            created_by: "cli".into(),
            job_id: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(v.version, 1);
    assert_eq!(v.dataset_name, "");
    let again = aurum_registry::MetadataStore::get_version(&store, "imported", 1)
        .await
        .unwrap();
    assert_eq!(again.dataset_sha256, sha);
    // A named dataset must still exist.
    let err = aurum_registry::MetadataStore::create_version(
        &store,
        aurum_registry::NewVersion {
            model: "imported".into(),
            kind: aurum_core::FamilyName::new("logistic").unwrap(),
            artifact_key: "models/imported/y.aurum".into(),
            artifact_sha256: sha.clone(),
            dataset_name: "nope".into(),
            dataset_sha256: sha,
            target: String::new(),
            params_json: "{}".into(),
            metrics_json: "{}".into(),
            aurum_version: "0.1.0".into(),
            created_by: "cli".into(),
            job_id: None,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "dataset_not_found");
}
