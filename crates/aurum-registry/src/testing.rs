//! The behaviour suite every [`MetadataStore`] must pass (cargo feature `testing`).
//!
//! Why here: the trait's contract (gapless version numbers under concurrent writers, alias
//! history, job transitions, key uniqueness, the change epoch, identical records and errors) is
//! the same whichever database sits underneath. Writing it once and running it against each
//! backend makes "the same suite passes on SQLite and on PostgreSQL" literally true, where two
//! hand-kept copies would drift.
//!
//! A backend's test crate implements [`Fixture`] (a fresh, empty store per test that can be
//! opened more than once, as several processes would) and expands
//! [`metadata_store_suite!`](crate::metadata_store_suite) with an expression producing one:
//!
//! ```ignore
//! async fn fixture() -> Option<Arc<dyn Fixture>> { /* None skips the test */ }
//! aurum_registry::metadata_store_suite!(fixture());
//! ```
//!
//! The expansion has one `#[tokio::test]` per suite function, so the caller needs `tokio` (with
//! `macros` and `rt-multi-thread`) as a dev-dependency.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use aurum_core::{FamilyName, sha256_hex};

use crate::{
    AliasMove, ConsoleSessionRecord, DriftCountsRecord, Entity, INTERRUPTED_AFTER_REGISTRATION,
    INTERRUPTED_JOB_ERROR, JobState, KeyPolicy, MetadataStore, NewDataset, NewJob, NewVersion,
    OutcomeRecord, RegistryError, Role, ShadowRecord, StoredKeyHash, key_digest,
};

/// One test's store: fresh and empty when the test starts, private to the test.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// Opens a new, independent handle (its own connections) on this fixture's store, as
    /// another process sharing the store would. Panics when the store cannot be opened.
    async fn open(&self) -> Arc<dyn MetadataStore>;

    /// Removes the store after the test, pass or fail (best effort).
    async fn cleanup(&self) {}
}

/// Runs one suite function on `fixture` (skipping when it is `None`), cleans up whatever the
/// outcome, and re-raises the test's panic.
pub async fn run<T, Fut>(fixture: Option<Arc<dyn Fixture>>, test: T)
where
    T: FnOnce(Arc<dyn Fixture>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(fixture) = fixture else {
        return;
    };
    let outcome = tokio::spawn(test(Arc::clone(&fixture))).await;
    fixture.cleanup().await;
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task did not finish: {e}"),
        }
    }
}

/// Expands to one `#[tokio::test]` per function of [`crate::testing`]'s suite, each run on a
/// fresh fixture from `$fixture` (an expression evaluating to a future of
/// `Option<Arc<dyn Fixture>>`). A new suite function must be added to the list here.
#[macro_export]
macro_rules! metadata_store_suite {
    ($fixture:expr) => {
        $crate::metadata_store_suite!(@tests ($fixture)
            dataset_import_is_idempotent_and_conflicts_on_other_content,
            names_sort_in_byte_order,
            concurrent_create_version_numbers_without_gaps_or_duplicates,
            versions_record_lineage_and_refuse_unknown_or_mismatched_datasets,
            imported_versions_need_no_dataset,
            alias_moves_are_recorded_in_order,
            concurrent_alias_moves_keep_one_history_chain,
            archived_versions_cannot_receive_an_alias,
            job_transitions_are_enforced,
            concurrent_job_transitions_have_one_winner,
            interrupted_jobs_fail_at_startup,
            api_keys_verify_until_revoked,
            concurrent_key_creation_under_one_name_has_one_winner,
            concurrent_admin_revocations_keep_one_admin,
            key_credentials_and_change_epoch_follow_every_change,
            legacy_argon2_key_hashes_verify_and_are_upgraded,
            outcomes_and_shadow_scores_replace_and_join,
            challenger_settings_are_shared_and_bump_the_epoch,
            console_sessions_are_shared_expire_and_are_capped,
            concurrent_console_sign_ins_keep_the_cap,
            drift_counts_are_kept_per_writer_and_never_go_back,
            concurrent_drift_window_claims_have_one_winner,
        );
    };
    (@tests ($fixture:expr) $($test:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $test() {
                $crate::testing::run($fixture.await, $crate::testing::$test).await;
            }
        )+
    };
}

// ---- helpers ----

/// A dataset named `name` whose hash is that of `content`.
pub fn dataset(name: &str, content: &str) -> NewDataset {
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

/// A version of `model` trained on `dataset`, whose artifact is `artifact`.
pub fn version(model: &str, dataset: &NewDataset, artifact: &[u8]) -> NewVersion {
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

/// A store holding dataset `credit` and `n` versions of model `m`.
async fn store_with_versions(fx: &dyn Fixture, n: u32) -> (Arc<dyn MetadataStore>, NewDataset) {
    let store = fx.open().await;
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

/// Runs `n` tasks at once, task `i` on its own store handle, and returns their results in order.
async fn concurrently<T, F, Fut>(fx: &dyn Fixture, n: usize, task: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize, Arc<dyn MetadataStore>) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        handles.push(fx.open().await);
    }
    // Start every task before awaiting any, so that they race.
    let tasks: Vec<_> = handles
        .into_iter()
        .enumerate()
        .map(|(i, store)| tokio::spawn(task(i, store)))
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

// ---- the suite ----

/// Re-importing the same bytes is a no-op; other bytes under the same name conflict.
pub async fn dataset_import_is_idempotent_and_conflicts_on_other_content(fx: Arc<dyn Fixture>) {
    let store = fx.open().await;

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
    assert_eq!(
        err.to_string(),
        format!(
            "dataset `credit` already exists with different content (sha256 {}, not {}); \
             import it under another name",
            sha256_hex(b"v1"),
            sha256_hex(b"v2")
        )
    );
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

/// Lists ordered by name use byte order (uppercase before lowercase, `-` before digits), not a
/// locale's collation, on every backend.
pub async fn names_sort_in_byte_order(fx: Arc<dyn Fixture>) {
    let store = fx.open().await;
    let names = ["b", "B", "a-1", "a1", "A_2", "a.b"];
    for name in names {
        store
            .insert_dataset(dataset(name, name))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let listed: Vec<String> = store
        .list_datasets()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

/// Eight writers, each on its own handle (its own connections), number versions 1..=8.
pub async fn concurrent_create_version_numbers_without_gaps_or_duplicates(fx: Arc<dyn Fixture>) {
    let (store, ds) = store_with_versions(&*fx, 0).await;
    let results = concurrently(&*fx, 8, |i, store| {
        let new = version("m", &ds, format!("artifact {i}").as_bytes());
        async move { store.create_version(new).await }
    })
    .await;
    let mut numbers: Vec<u32> = results.into_iter().map(|r| r.unwrap().version).collect();
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

    // A brand-new model created by several writers at once: one model, versions 1..=4.
    let results = concurrently(&*fx, 4, |i, store| {
        let new = version("fresh", &ds, format!("fresh {i}").as_bytes());
        async move { store.create_version(new).await }
    })
    .await;
    let mut numbers: Vec<u32> = results.into_iter().map(|r| r.unwrap().version).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2, 3, 4]);
    assert_eq!(store.list_models().await.unwrap().len(), 2);
}

/// Versions record their lineage; unknown or mismatched datasets and jobs are refused without
/// consuming a version number.
pub async fn versions_record_lineage_and_refuse_unknown_or_mismatched_datasets(
    fx: Arc<dyn Fixture>,
) {
    let (store, ds) = store_with_versions(&*fx, 1).await;

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
    let err = store.create_version(mismatched).await.unwrap_err();
    assert!(matches!(err, RegistryError::Conflict(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "dataset `credit` has sha256 {}, not {}",
            ds.sha256,
            sha256_hex(b"other bytes")
        )
    );

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
    let v2 = store.create_version(version("m", &ds, b"x")).await.unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(store.get_version("m", 2).await.unwrap(), v2);
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

/// A version imported from outside aurum has no dataset: its lineage is the imported file's hash.
pub async fn imported_versions_need_no_dataset(fx: Arc<dyn Fixture>) {
    let store = fx.open().await;
    let sha = "a".repeat(64);
    let imported = |artifact_key: &str, dataset_name: &str| NewVersion {
        model: "imported".into(),
        kind: FamilyName::new("logistic").unwrap(),
        artifact_key: artifact_key.into(),
        artifact_sha256: sha.clone(),
        dataset_name: dataset_name.into(),
        dataset_sha256: sha.clone(),
        target: String::new(),
        params_json: "{}".into(),
        metrics_json: "{}".into(),
        aurum_version: "0.1.0".into(),
        created_by: "cli".into(),
        job_id: None,
    };
    let v = store
        .create_version(imported("models/imported/x.aurum", ""))
        .await
        .unwrap();
    assert_eq!(v.version, 1);
    assert_eq!(v.dataset_name, "");
    let again = store.get_version("imported", 1).await.unwrap();
    assert_eq!(again, v);
    assert_eq!(again.dataset_sha256, sha);
    // A named dataset must still exist.
    let err = store
        .create_version(imported("models/imported/y.aurum", "nope"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "dataset_not_found");
}

/// Alias moves return where the alias came from and are recorded oldest first.
pub async fn alias_moves_are_recorded_in_order(fx: Arc<dyn Fixture>) {
    let (store, _) = store_with_versions(&*fx, 3).await;

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
    let aliases = store.list_aliases("m").await.unwrap();
    let pairs: Vec<(String, u32)> = aliases
        .iter()
        .map(|a| (a.alias.clone(), a.version))
        .collect();
    assert_eq!(
        pairs,
        [("challenger".to_string(), 3), ("champion".to_string(), 3)]
    );
    // The alias record carries the time and author of its last real move.
    let champion = &aliases[1];
    assert_eq!(champion.updated_by, "alice");
    assert_eq!(champion.updated_at, history[3].moved_at);

    let models = store.list_models().await.unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].latest_version, 3);
    assert_eq!(models[0].aliases, aliases);
    assert_eq!(store.get_model("m").await.unwrap(), models[0]);

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
    assert_not_found(store.list_aliases("zz").await.unwrap_err(), Entity::Model);
    assert_not_found(store.alias_history("zz").await.unwrap_err(), Entity::Model);
}

/// Concurrent moves of one alias from several handles serialise: the history is one chain in
/// which every move starts where the previous one ended.
pub async fn concurrent_alias_moves_keep_one_history_chain(fx: Arc<dyn Fixture>) {
    let (store, _) = store_with_versions(&*fx, 8).await;
    let results = concurrently(&*fx, 8, |i, store| async move {
        let to = u32::try_from(i).unwrap() + 1;
        store.set_alias("m", "champion", to, "racer").await
    })
    .await;
    let moves: Vec<AliasMove> = results.into_iter().map(Result::unwrap).collect();
    let history = store.alias_history("m").await.unwrap();
    assert_eq!(history.len(), 8, "every move to a new version is recorded");
    assert_eq!(history[0].from_version, None);
    for pair in history.windows(2) {
        assert_eq!(
            pair[1].from_version,
            Some(pair[0].to_version),
            "{history:?}"
        );
    }
    let last = history.last().unwrap().to_version;
    assert_eq!(
        store.resolve_alias("m", "champion").await.unwrap(),
        Some(last)
    );
    // Each call reported the move it made.
    for m in moves {
        assert!(
            history
                .iter()
                .any(|h| h.to_version == m.to && h.from_version == m.from),
            "{m:?} not in {history:?}"
        );
    }
}

/// An archived version cannot receive an alias, and an aliased version cannot be archived.
pub async fn archived_versions_cannot_receive_an_alias(fx: Arc<dyn Fixture>) {
    let (store, _) = store_with_versions(&*fx, 2).await;

    let archived = store.archive_version("m", 1).await.unwrap();
    assert!(archived.is_archived());
    assert_eq!(store.get_version("m", 1).await.unwrap(), archived);
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
    store.set_alias("m", "best", 2, "alice").await.unwrap();
    let err = store.archive_version("m", 2).await.unwrap_err();
    assert!(matches!(err, RegistryError::Conflict(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "version 2 of model `m` is the target of alias(es) best, champion; \
         move them to another version before archiving it"
    );

    let unarchived = store.unarchive_version("m", 1).await.unwrap();
    assert!(!unarchived.is_archived());
    assert_eq!(store.get_version("m", 1).await.unwrap(), unarchived);
    store
        .set_alias("m", "challenger", 1, "alice")
        .await
        .unwrap();
    assert_eq!(
        store.resolve_alias("m", "challenger").await.unwrap(),
        Some(1)
    );
    assert_not_found(
        store.archive_version("m", 5).await.unwrap_err(),
        Entity::Version,
    );
    assert_not_found(
        store.unarchive_version("zz", 1).await.unwrap_err(),
        Entity::Model,
    );
}

/// Jobs move only along the legal transitions and record progress while running.
pub async fn job_transitions_are_enforced(fx: Arc<dyn Fixture>) {
    let (store, _) = store_with_versions(&*fx, 1).await;

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
    assert_eq!(store.get_job(&job.id).await.unwrap(), running);
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
    assert_eq!(store.get_job(&third.id).await.unwrap(), failed);

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

    // A version may name the job that produced it, while that job runs (an ended job
    // registers nothing: see `interrupted_jobs_fail_at_startup`).
    let producing = store.create_job(new_job("credit")).await.unwrap();
    store
        .transition_job(&producing.id, JobState::Running, None, None)
        .await
        .unwrap();
    let ds = dataset("credit", "x,y\n1,true\n");
    let mut v = version("m", &ds, b"from job");
    v.job_id = Some(producing.id.clone());
    assert_eq!(
        store.create_version(v).await.unwrap().job_id,
        Some(producing.id)
    );
    let mut v = version("m", &ds, b"from an ended job");
    v.job_id = Some(job.id.clone());
    assert!(matches!(
        store.create_version(v).await.unwrap_err(),
        RegistryError::Conflict(_)
    ));
}

/// Several processes trying the same transition at once: exactly one wins, the others see the
/// state it left.
pub async fn concurrent_job_transitions_have_one_winner(fx: Arc<dyn Fixture>) {
    let (store, _) = store_with_versions(&*fx, 0).await;
    let job = store.create_job(new_job("credit")).await.unwrap();
    let results = concurrently(&*fx, 8, |_, store| {
        let id = job.id.clone();
        async move {
            store
                .transition_job(&id, JobState::Running, None, None)
                .await
        }
    })
    .await;
    let mut won = 0;
    for result in results {
        match result {
            Ok(record) => {
                won += 1;
                assert_eq!(record.state, JobState::Running);
            }
            Err(RegistryError::InvalidTransition { from, to, .. }) => {
                assert_eq!((from, to), (JobState::Running, JobState::Running));
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(
        store.get_job(&job.id).await.unwrap().state,
        JobState::Running
    );
}

/// At start-up, jobs whose owner stopped sending heartbeats fail; live owners' jobs do not.
pub async fn interrupted_jobs_fail_at_startup(fx: Arc<dyn Fixture>) {
    let (store, _) = store_with_versions(&*fx, 0).await;
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
    // A job whose process stopped after registering its version (before the job's own end).
    let registered = store.create_job(new_job("credit")).await.unwrap();
    store
        .transition_job(&registered.id, JobState::Running, None, None)
        .await
        .unwrap();
    let ds = dataset("credit", "x,y\n1,true\n");
    let mut v = version("m", &ds, b"registered, then the process stopped");
    v.job_id = Some(registered.id.clone());
    let v = store.create_version(v).await.unwrap();
    drop(store);

    // "Restart": a new process opens the same store. While the owner's heartbeat is fresh,
    // its jobs are left alone; once it is stale, they fail.
    let store = fx.open().await;
    assert!(
        store
            .fail_interrupted_jobs(Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.heartbeat_jobs("process-a").await.unwrap(), 3);
    assert_eq!(store.heartbeat_jobs("process-b").await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let ended = store
        .fail_interrupted_jobs(Duration::from_millis(5))
        .await
        .unwrap();
    let mut ended_ids: Vec<&str> = ended.iter().map(|j| j.id.as_str()).collect();
    ended_ids.sort_unstable();
    let mut want = vec![
        queued.id.as_str(),
        running.id.as_str(),
        registered.id.as_str(),
    ];
    want.sort_unstable();
    assert_eq!(ended_ids, want);
    for id in [&queued.id, &running.id] {
        let job = store.get_job(id).await.unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.stage, "failed");
        assert_eq!(job.error.as_deref(), Some(INTERRUPTED_JOB_ERROR));
        assert!(job.finished_at.is_some());
        assert_eq!(ended.iter().find(|j| &j.id == id), Some(&job));
    }
    // The registry and the job agree: the version exists, so the job succeeded with it.
    let job = store.get_job(&registered.id).await.unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.result_version, Some(v.version));
    assert_eq!(job.error.as_deref(), Some(INTERRUPTED_AFTER_REGISTRATION));
    assert_eq!(
        store.get_job(&finished.id).await.unwrap().state,
        JobState::Cancelled
    );
    assert!(
        store
            .fail_interrupted_jobs(Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    // An ended job registers nothing more: its owner may still be working (a stalled process
    // whose job another one ended) and must not leave a version behind a failed job.
    for id in [&running.id, &finished.id, &registered.id] {
        let mut late = version("m", &ds, b"too late");
        late.job_id = Some(id.clone());
        let err = store.create_version(late).await.unwrap_err();
        assert!(matches!(err, RegistryError::Conflict(_)), "{err:?}");
    }
    assert_eq!(
        store.get_model("m").await.unwrap().latest_version,
        v.version
    );
}

/// Keys verify until revoked; names are unique; the last admin key stays.
pub async fn api_keys_verify_until_revoked(fx: Arc<dyn Fixture>) {
    let store = fx.open().await;

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
    assert_eq!(err.to_string(), "an API key named `ops` already exists");
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
    // An expired admin key is not another admin: it cannot manage keys.
    let lapsed = KeyPolicy {
        expires_at: Some(chrono::Utc::now() - chrono::Duration::seconds(5)),
        ..KeyPolicy::default()
    };
    store
        .create_key_with_policy("ops-lapsed", Role::Admin, &lapsed)
        .await
        .unwrap();
    let err = store.revoke_key("ops").await.unwrap_err();
    assert!(
        matches!(err, RegistryError::Conflict(ref m) if m.contains("last active admin")),
        "{err:?}"
    );
    // Revoking the expired one takes nothing away.
    assert!(!store.revoke_key("ops-lapsed").await.unwrap().is_active());
    // An expiry past what the stores can read back is refused before anything is stored.
    let far = KeyPolicy {
        expires_at: chrono::DateTime::from_timestamp(crate::LATEST_KEY_EXPIRY + 1, 0),
        ..KeyPolicy::default()
    };
    let err = store
        .create_key_with_policy("ops-far", Role::Admin, &far)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_input", "{err:?}");
    assert!(err.to_string().contains("9999-12-31"), "{err}");
    let latest = KeyPolicy {
        expires_at: chrono::DateTime::from_timestamp(crate::LATEST_KEY_EXPIRY, 0),
        ..KeyPolicy::default()
    };
    store
        .create_key_with_policy("ops-latest", Role::Client, &latest)
        .await
        .unwrap();
    assert!(
        store
            .list_keys()
            .await
            .unwrap()
            .iter()
            .any(|k| k.name == "ops-latest" && k.policy.expires_at == latest.expires_at)
    );
    store.revoke_key("ops-latest").await.unwrap();
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

    let keys = store.list_keys().await.unwrap();
    let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(
        names,
        ["ops", "web-app", "ops-lapsed", "ops-latest", "ops-2"]
    );
    assert_eq!(keys[0], revoked);

    // A key with a policy keeps it.
    let policy = crate::KeyPolicy {
        expires_at: Some(crate::backend::now() + chrono::Duration::days(1)),
        scopes: vec!["credit-*".to_string(), "fraud".to_string()],
        rate_limit_per_s: Some(50),
    };
    let (scoped, scoped_key) = store
        .create_key_with_policy("scoped", Role::Client, &policy)
        .await
        .unwrap();
    assert_eq!(scoped.policy, policy);
    assert_eq!(store.verify_key(&scoped_key).await.unwrap(), Some(scoped));
}

/// Several processes creating a key under one name at once: one wins, the others get the same
/// conflict as a sequential duplicate.
pub async fn concurrent_key_creation_under_one_name_has_one_winner(fx: Arc<dyn Fixture>) {
    let store = fx.open().await;
    let results = concurrently(&*fx, 8, |_, store| async move {
        store.create_key("ops", Role::Admin).await
    })
    .await;
    let mut won = 0;
    for result in results {
        match result {
            Ok(_) => won += 1,
            Err(RegistryError::Conflict(message)) => {
                assert_eq!(message, "an API key named `ops` already exists");
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(store.list_keys().await.unwrap().len(), 1);
}

/// Revoking every admin key at once from several processes leaves exactly one.
pub async fn concurrent_admin_revocations_keep_one_admin(fx: Arc<dyn Fixture>) {
    let store = fx.open().await;
    for i in 0..4 {
        store
            .create_key(&format!("admin-{i}"), Role::Admin)
            .await
            .unwrap();
    }
    let results = concurrently(&*fx, 4, |i, store| async move {
        store.revoke_key(&format!("admin-{i}")).await
    })
    .await;
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(RegistryError::Conflict(m)) if m.contains("last active admin")))
        .count();
    let revoked = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!((revoked, refused), (3, 1), "{results:?}");
    assert_eq!(store.count_active_keys().await.unwrap(), 1);
}

/// Key credentials and the change epoch follow every key, version and alias change, across
/// handles.
pub async fn key_credentials_and_change_epoch_follow_every_change(fx: Arc<dyn Fixture>) {
    let store = fx.open().await;
    let e0 = store.change_epoch().await.unwrap();
    let (admin, admin_key) = store.create_key("ops", Role::Admin).await.unwrap();
    let e1 = store.change_epoch().await.unwrap();
    assert!(e1 > e0);
    let (client, _) = store.create_key("app", Role::Client).await.unwrap();
    let creds = store.key_credentials().await.unwrap();
    assert_eq!(creds.len(), 2);
    let cred = creds.iter().find(|c| c.record.id == admin.id).unwrap();
    assert_eq!(cred.record, admin);
    match &cred.hash {
        StoredKeyHash::Sha256(d) => assert_eq!(*d, key_digest(&admin_key)),
        other => panic!("new keys use the fast hash, got {other:?}"),
    }
    let e2 = store.change_epoch().await.unwrap();
    store.revoke_key(&client.id).await.unwrap();
    assert!(store.change_epoch().await.unwrap() > e2);
    assert_eq!(store.key_credentials().await.unwrap().len(), 1);

    // Another process (a second handle on the same store) sees the same epoch move, with each of
    // a version registration, an alias move and an archive.
    let other = fx.open().await;
    let ds = dataset("epoch-data", "x,y\n2,false\n");
    store.insert_dataset(ds.clone()).await.unwrap();
    let mut before = other.change_epoch().await.unwrap();
    let v1 = store
        .create_version(version("epoch-model", &ds, b"epoch artifact"))
        .await
        .unwrap();
    let v2 = store
        .create_version(version("epoch-model", &ds, b"epoch artifact 2"))
        .await
        .unwrap();
    let after = other.change_epoch().await.unwrap();
    assert!(after > before, "version registration moves the epoch");
    before = after;
    store
        .set_alias("epoch-model", "champion", v1.version, "t")
        .await
        .unwrap();
    let after = other.change_epoch().await.unwrap();
    assert!(after > before, "an alias move moves the epoch");
    before = after;
    store
        .archive_version("epoch-model", v2.version)
        .await
        .unwrap();
    let after = other.change_epoch().await.unwrap();
    assert!(after > before, "an archive moves the epoch");
    // Datasets and jobs are not cached state: they leave the epoch alone.
    store.insert_dataset(dataset("quiet", "q")).await.unwrap();
    store.create_job(new_job("quiet")).await.unwrap();
    assert_eq!(other.change_epoch().await.unwrap(), after);
}

/// Keys stored as argon2 by earlier versions still verify, and are upgraded on success.
pub async fn legacy_argon2_key_hashes_verify_and_are_upgraded(fx: Arc<dyn Fixture>) {
    use argon2::password_hash::PasswordHasher;
    let store = fx.open().await;
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
    // An unparsable new hash is refused before touching the row.
    assert!(
        store
            .upgrade_key_hash(&admin.id, &fast, "plaintext")
            .await
            .is_err()
    );
}

/// Outcomes replace earlier outcomes of the same record (keeping the scored probability); shadow
/// answers replace earlier answers and are joined with outcomes.
pub async fn outcomes_and_shadow_scores_replace_and_join(fx: Arc<dyn Fixture>) {
    let store = fx.open().await;
    let t0 = crate::backend::now();
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    let outcome = |request: &str, record: u32, scored: i64, positive: bool| OutcomeRecord {
        model: "m".to_string(),
        version: 1,
        request_id: request.to_string(),
        record,
        probability: 0.125 + f64::from(record) / 3.0,
        decision: record.is_multiple_of(2).then(|| "approve".to_string()),
        positive,
        scored_at: at(scored),
        received_at: at(100),
        attributes: Default::default(),
    };
    let mut with_attributes = outcome("r1", 1, 1, false);
    with_attributes
        .attributes
        .insert("age_band".to_string(), "< 25".to_string());
    let first = vec![
        outcome("r2", 0, 2, true),
        with_attributes,
        outcome("r1", 0, 1, true),
    ];
    store.record_outcomes(&first).await.unwrap();
    let mut other_version = outcome("r9", 0, 0, true);
    other_version.version = 2;
    store
        .record_outcomes(std::slice::from_ref(&other_version))
        .await
        .unwrap();
    store.record_outcomes(&[]).await.unwrap();

    let listed = store.list_outcomes("m", 1).await.unwrap();
    assert_eq!(
        listed,
        vec![first[2].clone(), first[1].clone(), first[0].clone()],
        "oldest scoring first, then by request and record"
    );
    assert_eq!(store.list_outcomes("m", 2).await.unwrap(), [other_version]);
    assert!(store.list_outcomes("other", 1).await.unwrap().is_empty());

    // A later outcome of the same record replaces the label and the receipt time only.
    let mut relabelled = outcome("r1", 1, 50, true);
    relabelled.probability = 0.99;
    relabelled.received_at = at(200);
    store
        .record_outcomes(std::slice::from_ref(&relabelled))
        .await
        .unwrap();
    let listed = store.list_outcomes("m", 1).await.unwrap();
    assert_eq!(listed.len(), 3);
    let replaced = &listed[1];
    assert_eq!(replaced.request_id, "r1");
    assert_eq!(replaced.record, 1);
    assert!(replaced.positive);
    assert_eq!(replaced.received_at, at(200));
    assert_eq!(replaced.probability, first[1].probability);
    assert_eq!(replaced.scored_at, first[1].scored_at);
    // A relabel without attributes keeps the stored ones; with attributes it replaces them.
    assert_eq!(replaced.attributes, first[1].attributes);
    relabelled
        .attributes
        .insert("age_band".to_string(), ">= 25".to_string());
    store
        .record_outcomes(std::slice::from_ref(&relabelled))
        .await
        .unwrap();
    let listed = store.list_outcomes("m", 1).await.unwrap();
    assert_eq!(listed[1].attributes["age_band"], ">= 25");

    let shadow = |request: &str, record: u32, scored: i64, challenger_p: f64| ShadowRecord {
        model: "m".to_string(),
        request_id: request.to_string(),
        record,
        champion_version: 1,
        challenger_version: 2,
        champion_p: 0.25,
        challenger_p,
        champion_decision: "approve".to_string(),
        challenger_decision: "decline".to_string(),
        scored_at: at(scored),
    };
    store
        .record_shadow(&[shadow("r1", 0, 1, 0.5), shadow("r3", 0, 3, 0.75)])
        .await
        .unwrap();
    let replacement = shadow("r1", 0, 1, 0.625);
    store
        .record_shadow(std::slice::from_ref(&replacement))
        .await
        .unwrap();
    let listed = store.list_shadow("m", 10).await.unwrap();
    assert_eq!(
        listed,
        vec![
            (replacement.clone(), Some(true)),
            (shadow("r3", 0, 3, 0.75), None)
        ]
    );
    assert_eq!(
        store.list_shadow("m", 1).await.unwrap(),
        vec![(replacement, Some(true))]
    );
    assert!(store.list_shadow("other", 10).await.unwrap().is_empty());

    // A batch larger than one statement, repeating a record within it: every record is stored
    // once, the later answer wins.
    let n = crate::backend::SHADOW_ROWS_PER_STATEMENT * 2 + 7;
    let mut batch: Vec<ShadowRecord> = (0..n)
        .map(|i| ShadowRecord {
            model: "big".into(),
            ..shadow("b", i as u32, 10 + i as i64, 0.5)
        })
        .collect();
    batch.push(ShadowRecord {
        model: "big".into(),
        ..shadow("b", 3, 13, 0.875)
    });
    store.record_shadow(&batch).await.unwrap();
    let listed = store.list_shadow("big", 10_000).await.unwrap();
    assert_eq!(listed.len(), n);
    assert_eq!(listed[3].0.challenger_p, 0.875);
    assert_eq!(listed[4].0.challenger_p, 0.5);
}

/// A challenger setting is stored per model, seen by every handle, replaced and cleared, and
/// each change bumps the change epoch (other processes reload it at once).
pub async fn challenger_settings_are_shared_and_bump_the_epoch(fx: Arc<dyn Fixture>) {
    let store = fx.open().await;
    let other = fx.open().await;
    let ds = dataset("credit", "x,y\n1,true\n");
    store.insert_dataset(ds.clone()).await.unwrap();
    store
        .create_version(version("m", &ds, b"artifact"))
        .await
        .unwrap();
    assert!(matches!(
        store.put_challenger("absent", Some("{}")).await,
        Err(RegistryError::NotFound { .. })
    ));
    let e0 = store.change_epoch().await.unwrap();
    store
        .put_challenger("m", Some(r#"{"alias":"challenger"}"#))
        .await
        .unwrap();
    let e1 = other.change_epoch().await.unwrap();
    assert!(e1 > e0);
    assert_eq!(
        other.list_challengers().await.unwrap(),
        vec![("m".to_string(), r#"{"alias":"challenger"}"#.to_string())]
    );
    other
        .put_challenger("m", Some(r#"{"alias":"b","mode":"split","share":0.1}"#))
        .await
        .unwrap();
    let e2 = store.change_epoch().await.unwrap();
    assert!(e2 > e1);
    assert_eq!(
        store.list_challengers().await.unwrap()[0].1,
        r#"{"alias":"b","mode":"split","share":0.1}"#
    );
    store.put_challenger("m", None).await.unwrap();
    assert!(other.list_challengers().await.unwrap().is_empty());
    assert!(store.change_epoch().await.unwrap() > e2);
    store.put_challenger("m", None).await.unwrap();
}

fn drift_counts(writer: &str, start: i64, seq: i64, rows: u64) -> DriftCountsRecord {
    DriftCountsRecord {
        model: "credit".into(),
        version: 2,
        window_start: start,
        window_end: start + 60,
        writer: writer.into(),
        seq,
        rows,
        counts: format!(r#"{{"rows":{rows}}}"#),
    }
}

/// Each writer's counts of a window are kept side by side and seen by every handle; a writer's
/// later copy replaces its earlier one, an older copy stored late does not, and bad input is
/// refused. None of it moves the change epoch.
pub async fn drift_counts_are_kept_per_writer_and_never_go_back(fx: Arc<dyn Fixture>) {
    let store = fx.open().await;
    let other = fx.open().await;
    let e0 = store.change_epoch().await.unwrap();
    assert!(
        store
            .put_drift_counts(&drift_counts("a", 600, 1, 10))
            .await
            .unwrap()
    );
    assert!(
        other
            .put_drift_counts(&drift_counts("b", 600, 1, 7))
            .await
            .unwrap()
    );
    assert!(
        store
            .put_drift_counts(&drift_counts("a", 600, 3, 30))
            .await
            .unwrap()
    );
    // Copy 2 of writer a, stored after copy 3: kept out.
    assert!(
        !other
            .put_drift_counts(&drift_counts("a", 600, 2, 20))
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_drift_counts(&drift_counts("a", 600, 3, 99))
            .await
            .unwrap()
    );
    assert!(
        store
            .put_drift_counts(&drift_counts("a", 660, 4, 1))
            .await
            .unwrap()
    );
    let mut other_version = drift_counts("a", 600, 9, 5);
    other_version.version = 1;
    assert!(store.put_drift_counts(&other_version).await.unwrap());

    let all = other.list_drift_counts("credit", 2, 0).await.unwrap();
    let seen: Vec<(i64, &str, i64, u64)> = all
        .iter()
        .map(|c| (c.window_start, c.writer.as_str(), c.seq, c.rows))
        .collect();
    assert_eq!(
        seen,
        vec![(600, "a", 3, 30), (600, "b", 1, 7), (660, "a", 4, 1)]
    );
    assert_eq!(all[0], drift_counts("a", 600, 3, 30));
    // Only windows that end after the bound.
    let late = store.list_drift_counts("credit", 2, 660).await.unwrap();
    assert_eq!(late, vec![drift_counts("a", 660, 4, 1)]);
    assert!(
        store
            .list_drift_counts("absent", 2, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.change_epoch().await.unwrap(), e0);

    for bad in [
        drift_counts("", 600, 1, 1),
        DriftCountsRecord {
            window_end: 600,
            ..drift_counts("a", 600, 5, 1)
        },
        drift_counts("a", 600, -1, 1),
        drift_counts("a", 600, 5, u64::MAX),
    ] {
        assert!(
            matches!(
                store.put_drift_counts(&bad).await,
                Err(RegistryError::InvalidInput(_))
            ),
            "{bad:?}"
        );
    }
    assert_eq!(store.list_drift_counts("credit", 2, 0).await.unwrap(), all);
}

/// Processes closing the same window at once: exactly one claims its judging.
pub async fn concurrent_drift_window_claims_have_one_winner(fx: Arc<dyn Fixture>) {
    let stores = [fx.open().await, fx.open().await];
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = Arc::clone(&stores[i % 2]);
        tasks.push(tokio::spawn(async move {
            store
                .claim_drift_window("credit", 2, 600, &format!("p{i}"))
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
    assert!(
        stores[0]
            .claim_drift_window("credit", 2, 660, "p0")
            .await
            .unwrap()
    );
    assert!(
        stores[1]
            .claim_drift_window("credit", 1, 600, "p0")
            .await
            .unwrap()
    );
    assert_eq!(
        stores[1].list_drift_claims("credit", 2, 0).await.unwrap(),
        vec![600, 660]
    );
    assert_eq!(
        stores[0].list_drift_claims("credit", 2, 600).await.unwrap(),
        vec![660]
    );
}

/// A console session stored under `name`'s digest, created at `created` (ms), ending at
/// `expires` (ms).
fn console_session(name: &str, created: i64, expires: i64) -> ConsoleSessionRecord {
    ConsoleSessionRecord {
        session_hash: sha256_hex(name.as_bytes()),
        key_id: format!("key-{name}"),
        csrf: format!("csrf-{name}"),
        created_at_ms: created,
        expires_at_ms: expires,
    }
}

/// Console sessions are seen by every handle, deleted once, purged when expired, and capped:
/// storing one more purges the expired sessions first, then ends the oldest live ones. Bad
/// input and a duplicate id are refused; none of it moves the change epoch.
pub async fn console_sessions_are_shared_expire_and_are_capped(fx: Arc<dyn Fixture>) {
    let store = fx.open().await;
    let other = fx.open().await;
    let e0 = store.change_epoch().await.unwrap();

    let a = console_session("a", 1_000, 20_000);
    store.put_console_session(&a, 3).await.unwrap();
    assert_eq!(
        other.get_console_session(&a.session_hash).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        other
            .get_console_session(&sha256_hex(b"unknown"))
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        other.put_console_session(&a, 3).await,
        Err(RegistryError::Conflict(_))
    ));
    for bad in [
        ConsoleSessionRecord {
            session_hash: "a".into(),
            ..console_session("x", 1, 2)
        },
        ConsoleSessionRecord {
            session_hash: sha256_hex(b"x").to_uppercase(),
            ..console_session("x", 1, 2)
        },
        ConsoleSessionRecord {
            key_id: String::new(),
            ..console_session("x", 1, 2)
        },
        console_session("x", 2, 1),
    ] {
        assert!(
            matches!(
                store.put_console_session(&bad, 3).await,
                Err(RegistryError::InvalidInput(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        store
            .put_console_session(&console_session("x", 1, 2), 0)
            .await,
        Err(RegistryError::InvalidInput(_))
    ));
    assert_eq!(
        store.get_console_session(&sha256_hex(b"x")).await.unwrap(),
        None
    );

    // b ends at 5 000; c lives on. Three sessions: the cap is reached.
    let b = console_session("b", 2_000, 5_000);
    let c = console_session("c", 3_000, 20_000);
    store.put_console_session(&b, 3).await.unwrap();
    other.put_console_session(&c, 3).await.unwrap();
    // At 10 000 the expired b makes room: a (the oldest) stays.
    let d = console_session("d", 10_000, 20_000);
    store.put_console_session(&d, 3).await.unwrap();
    let present = |s: Arc<dyn crate::MetadataStore>, names: &'static [&'static str]| async move {
        let mut found = Vec::new();
        for name in ["a", "b", "c", "d", "e", "f"] {
            if s.get_console_session(&sha256_hex(name.as_bytes()))
                .await
                .unwrap()
                .is_some()
            {
                found.push(name);
            }
        }
        assert_eq!(found, names);
    };
    present(Arc::clone(&other), &["a", "c", "d"]).await;
    // Nothing expired at 11 000: the oldest live session (a) ends.
    let e = console_session("e", 11_000, 30_000);
    other.put_console_session(&e, 3).await.unwrap();
    present(Arc::clone(&store), &["c", "d", "e"]).await;
    // A lower cap ends as many of the oldest as it takes.
    let f = console_session("f", 12_000, 30_000);
    store.put_console_session(&f, 2).await.unwrap();
    present(Arc::clone(&other), &["e", "f"]).await;

    // The purge removes what ended at or before its instant, and only that.
    store.put_console_session(&c, 10).await.unwrap();
    assert_eq!(
        other.delete_expired_console_sessions(19_999).await.unwrap(),
        0
    );
    assert_eq!(
        other.delete_expired_console_sessions(20_000).await.unwrap(),
        1
    );
    present(Arc::clone(&store), &["e", "f"]).await;

    // Sign-out: deleted on one handle, gone on the other; deleting again finds nothing.
    assert!(store.delete_console_session(&e.session_hash).await.unwrap());
    assert_eq!(
        other.get_console_session(&e.session_hash).await.unwrap(),
        None
    );
    assert!(!other.delete_console_session(&e.session_hash).await.unwrap());
    present(Arc::clone(&other), &["f"]).await;

    assert_eq!(
        store.change_epoch().await.unwrap(),
        e0,
        "sessions are not registry changes"
    );
}

/// Sign-ins through several handles at once (replicas) never leave more sessions than the cap:
/// the purge, the count and the insert are one atomic step. One short of the cap, eight handles
/// each store a session at the same moment; without that atomicity several would find room.
/// Four rounds, each starting after the previous round's sessions expired.
pub async fn concurrent_console_sign_ins_keep_the_cap(fx: Arc<dyn Fixture>) {
    const CAP: u32 = 5;
    const HANDLES: usize = 8;
    let first = fx.open().await;
    let mut handles = Vec::new();
    for _ in 0..HANDLES {
        handles.push(fx.open().await);
    }
    for round in 0..4i64 {
        // Created when the previous round's sessions end: the first of these purges them.
        let base = 10_000 * (round + 1);
        let name = |what: &str, n: usize| format!("r{round}-{what}{n}");
        for n in 0..CAP as usize - 1 {
            first
                .put_console_session(&console_session(&name("p", n), base, base + 10_000), CAP)
                .await
                .unwrap();
        }
        let start = Arc::new(tokio::sync::Barrier::new(HANDLES));
        let mut tasks = Vec::new();
        for (h, store) in handles.iter().enumerate() {
            let (start, store) = (Arc::clone(&start), Arc::clone(store));
            let session = console_session(&name("w", h), base + 1, base + 10_000);
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                store.put_console_session(&session, CAP).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut live = 0;
        for n in 0..HANDLES {
            for what in ["p", "w"] {
                let hash = sha256_hex(name(what, n).as_bytes());
                if first.get_console_session(&hash).await.unwrap().is_some() {
                    live += 1;
                }
            }
        }
        assert_eq!(
            live,
            CAP,
            "round {round}: {HANDLES} sign-ins at once at {} of {CAP}",
            CAP - 1
        );
    }
}
