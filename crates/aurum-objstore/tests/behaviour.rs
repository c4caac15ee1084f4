//! One behaviour suite for every artifact store: `LocalArtifactStore`, and `ObjectArtifactStore`
//! on `memory://`, `file://` and a real S3 server (`AURUM_TEST_S3_ENDPOINT` /
//! `AURUM_TEST_S3_BUCKET`; skipped with a notice when unset). Each S3 test works under its own
//! random prefix of the shared bucket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aurum_core::sha256_hex;
use aurum_objstore::{MIN_PART_SIZE, ObjectArtifactStore, S3Options};
use aurum_registry::encrypted::is_sealed;
use aurum_registry::{
    ArtifactStore, EncryptedArtifactStore, EncryptionKeys, LocalArtifactStore, get_verified,
};

const KEY: &str = "k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// `size` bytes that differ between seeds and are not all one value.
fn payload(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u64).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// The suite every store must pass. `store` must be empty.
async fn behaviour(store: Arc<dyn ArtifactStore>, large: usize) {
    // Empty.
    assert_eq!(store.list().await.unwrap(), Vec::<String>::new());
    assert!(!store.exists("models/m/1.bin").await.unwrap());

    // Round trip, through get and get_verified.
    let v1 = payload(4096, 1);
    store.put("models/m/1.bin", v1.clone()).await.unwrap();
    assert!(store.exists("models/m/1.bin").await.unwrap());
    assert_eq!(store.get("models/m/1.bin").await.unwrap(), v1);
    assert_eq!(
        get_verified(store.as_ref(), "models/m/1.bin", &sha256_hex(&v1))
            .await
            .unwrap(),
        v1
    );
    // A wrong hash is refused and the bytes are not returned.
    let err = get_verified(store.as_ref(), "models/m/1.bin", &sha256_hex(b"other"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "artifact_corrupt", "{err}");

    // Empty values are values.
    store.put("empty", Vec::new()).await.unwrap();
    assert!(store.exists("empty").await.unwrap());
    assert_eq!(store.get("empty").await.unwrap(), Vec::<u8>::new());

    // Overwrite replaces the whole value (shorter after longer leaves no tail).
    let v2 = payload(100, 2);
    store.put("models/m/1.bin", v2.clone()).await.unwrap();
    assert_eq!(store.get("models/m/1.bin").await.unwrap(), v2);

    // A parent "directory" is not a key.
    assert!(!store.exists("models/m").await.unwrap());

    // Missing keys: NotFound naming the key.
    let err = store.get("models/m/2.bin").await.unwrap_err();
    assert_eq!(err.code(), "artifact_not_found", "{err}");
    assert!(err.to_string().contains("models/m/2.bin"), "{err}");

    // Invalid keys are refused by every operation.
    for bad in [
        "", "../x", "/abs", "a//b", ".hidden", "a/.tmp-1", "a b", "a/",
    ] {
        assert_eq!(
            store.put(bad, b"x".to_vec()).await.unwrap_err().code(),
            "invalid_artifact_key",
            "put {bad:?}"
        );
        assert_eq!(
            store.get(bad).await.unwrap_err().code(),
            "invalid_artifact_key"
        );
        assert_eq!(
            store.exists(bad).await.unwrap_err().code(),
            "invalid_artifact_key"
        );
        assert_eq!(
            store.delete(bad).await.unwrap_err().code(),
            "invalid_artifact_key"
        );
    }

    // Large values round trip intact.
    let big = payload(large, 3);
    let big_sha = sha256_hex(&big);
    store.put("datasets/big.parquet", big).await.unwrap();
    let back = get_verified(store.as_ref(), "datasets/big.parquet", &big_sha)
        .await
        .unwrap();
    assert_eq!(back.len(), large);

    // Concurrent puts of different keys all land.
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .put(
                    &format!("concurrent/{i:02}.bin"),
                    payload(10_000 + usize::from(i), i),
                )
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    for i in 0..16u8 {
        assert_eq!(
            store.get(&format!("concurrent/{i:02}.bin")).await.unwrap(),
            payload(10_000 + usize::from(i), i)
        );
    }

    // Listing: every key, relative, sorted.
    let mut expected = vec![
        "datasets/big.parquet".to_string(),
        "empty".to_string(),
        "models/m/1.bin".to_string(),
    ];
    expected.extend((0..16).map(|i| format!("concurrent/{i:02}.bin")));
    expected.sort();
    assert_eq!(store.list().await.unwrap(), expected);

    // Delete, and delete again (idempotent); the other keys stay.
    store.delete("models/m/1.bin").await.unwrap();
    assert!(!store.exists("models/m/1.bin").await.unwrap());
    assert_eq!(
        store.get("models/m/1.bin").await.unwrap_err().code(),
        "artifact_not_found"
    );
    store.delete("models/m/1.bin").await.unwrap();
    store.delete("never/written").await.unwrap();
    expected.retain(|k| k != "models/m/1.bin");
    assert_eq!(store.list().await.unwrap(), expected);

    // Encryption at rest wraps the store and round-trips; the inner bytes are sealed.
    let encrypted = EncryptedArtifactStore::new(store.clone(), EncryptionKeys::parse(KEY).unwrap());
    let secret = b"secret model weights".repeat(100);
    encrypted.put("sealed/m.bin", secret.clone()).await.unwrap();
    let raw = store.get("sealed/m.bin").await.unwrap();
    assert!(is_sealed(&raw));
    assert!(!raw.windows(6).any(|w| w == b"secret"));
    assert_eq!(
        get_verified(&encrypted, "sealed/m.bin", &sha256_hex(&secret))
            .await
            .unwrap(),
        secret
    );
    assert_eq!(
        encrypted.get("sealed/absent").await.unwrap_err().code(),
        "artifact_not_found"
    );
    assert_eq!(encrypted.reseal_all().await.unwrap(), expected.len());
    assert_eq!(encrypted.get("empty").await.unwrap(), Vec::<u8>::new());

    // Clean up (the S3 bucket is shared between runs).
    for key in store.list().await.unwrap() {
        store.delete(&key).await.unwrap();
    }
    assert_eq!(store.list().await.unwrap(), Vec::<String>::new());
}

/// The test S3 server, or `None` (with a notice) when it is not configured.
fn s3_env() -> Option<(String, String)> {
    match (
        std::env::var("AURUM_TEST_S3_ENDPOINT"),
        std::env::var("AURUM_TEST_S3_BUCKET"),
    ) {
        (Ok(endpoint), Ok(bucket)) if !endpoint.is_empty() && !bucket.is_empty() => {
            Some((endpoint, bucket))
        }
        _ => {
            eprintln!("skipped: AURUM_TEST_S3_ENDPOINT / AURUM_TEST_S3_BUCKET not set");
            None
        }
    }
}

fn s3_options(endpoint: &str) -> S3Options {
    S3Options {
        endpoint: Some(endpoint.to_string()),
        region: Some("us-east-1".into()),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        allow_http: true,
        virtual_hosted_style: Some(false),
        ..S3Options::default()
    }
}

fn random_prefix() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}

fn s3_store(bucket: &str, prefix: &str, options: &S3Options) -> Arc<dyn ArtifactStore> {
    Arc::new(ObjectArtifactStore::from_url(&format!("s3://{bucket}/{prefix}"), options).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_artifact_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalArtifactStore::new(dir.path().join("artifacts")).unwrap();
    behaviour(Arc::new(store), 20 * 1024 * 1024).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_suite() {
    let store = ObjectArtifactStore::from_url("memory://", &S3Options::default()).unwrap();
    behaviour(Arc::new(store), 20 * 1024 * 1024).await;
    // A prefix on memory:// maps keys under it just the same.
    let store = ObjectArtifactStore::from_url("memory:///a/b", &S3Options::default()).unwrap();
    behaviour(Arc::new(store), MIN_PART_SIZE + 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store_passes_the_suite_and_shares_the_local_layout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("not/yet/there");
    let url = format!("file://{}", root.display());
    let store = Arc::new(ObjectArtifactStore::from_url(&url, &S3Options::default()).unwrap());
    assert!(root.is_dir(), "the directory is created at open");
    behaviour(store.clone(), 20 * 1024 * 1024).await;

    // Same key → same file as LocalArtifactStore, both ways, so a data directory can move
    // between the two without a migration.
    let local = LocalArtifactStore::new(&root).unwrap();
    local
        .put("models/a/1.bin", b"from local".to_vec())
        .await
        .unwrap();
    assert_eq!(store.get("models/a/1.bin").await.unwrap(), b"from local");
    store
        .put("models/b/1.bin", b"from object".to_vec())
        .await
        .unwrap();
    assert_eq!(local.get("models/b/1.bin").await.unwrap(), b"from object");
    assert_eq!(
        std::fs::read(root.join("models/b/1.bin")).unwrap(),
        b"from object"
    );

    // Files no key could name (temporary files of either store, hidden files) are not listed.
    std::fs::write(root.join("models/.tmp-abc"), b"partial").unwrap();
    std::fs::write(root.join("models/a/1.bin#7"), b"partial").unwrap();
    std::fs::write(root.join(".hidden"), b"x").unwrap();
    assert_eq!(
        store.list().await.unwrap(),
        vec!["models/a/1.bin".to_string(), "models/b/1.bin".to_string()]
    );
    assert_eq!(store.list().await.unwrap(), local.list().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_store_passes_the_suite_with_single_and_multipart_puts() {
    let Some((endpoint, bucket)) = s3_env() else {
        return;
    };
    // Default part size (16 MiB): 20 MB goes up as a two-part multipart upload.
    let options = s3_options(&endpoint);
    behaviour(
        s3_store(&bucket, &random_prefix(), &options),
        20 * 1024 * 1024,
    )
    .await;
    // The smallest part size: four parts, the last one short.
    let small_parts = S3Options {
        multipart_part_size: MIN_PART_SIZE,
        ..s3_options(&endpoint)
    };
    behaviour(
        s3_store(&bucket, &random_prefix(), &small_parts),
        3 * MIN_PART_SIZE + 12_345,
    )
    .await;
    // A part size above the value: one PUT of 20 MB.
    let one_put = S3Options {
        multipart_part_size: 32 * 1024 * 1024,
        ..s3_options(&endpoint)
    };
    behaviour(
        s3_store(&bucket, &random_prefix(), &one_put),
        20 * 1024 * 1024,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_prefixes_isolate_stores_in_one_bucket() {
    let Some((endpoint, bucket)) = s3_env() else {
        return;
    };
    let options = s3_options(&endpoint);
    let run = random_prefix();
    let a = s3_store(&bucket, &format!("{run}/a"), &options);
    // `ab` shares `a`'s characters but not its path segment.
    let ab = s3_store(&bucket, &format!("{run}/ab"), &options);
    let parent = s3_store(&bucket, &run, &options);
    // A trailing slash names the same prefix.
    let a_slash = s3_store(&bucket, &format!("{run}/a/"), &options);

    a.put("m/1.bin", b"in a".to_vec()).await.unwrap();
    ab.put("m/1.bin", b"in ab".to_vec()).await.unwrap();
    ab.put("only-ab", b"x".to_vec()).await.unwrap();

    assert_eq!(a.list().await.unwrap(), vec!["m/1.bin".to_string()]);
    assert_eq!(
        ab.list().await.unwrap(),
        vec!["m/1.bin".to_string(), "only-ab".to_string()]
    );
    assert_eq!(a.get("m/1.bin").await.unwrap(), b"in a");
    assert_eq!(ab.get("m/1.bin").await.unwrap(), b"in ab");
    assert!(!a.exists("only-ab").await.unwrap());
    assert_eq!(
        a.get("only-ab").await.unwrap_err().code(),
        "artifact_not_found"
    );
    assert_eq!(a_slash.get("m/1.bin").await.unwrap(), b"in a");
    // The parent sees both, relative to itself.
    assert_eq!(
        parent.list().await.unwrap(),
        vec![
            "a/m/1.bin".to_string(),
            "ab/m/1.bin".to_string(),
            "ab/only-ab".to_string()
        ]
    );
    // Deleting in one leaves the other alone.
    a.delete("m/1.bin").await.unwrap();
    assert_eq!(ab.get("m/1.bin").await.unwrap(), b"in ab");

    for key in parent.list().await.unwrap() {
        parent.delete(&key).await.unwrap();
    }
    assert!(parent.list().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_keys_are_refused_before_any_request() {
    // Nothing listens on port 9 of loopback, and no retries: a request would fail as `io_error`.
    let options = S3Options {
        endpoint: Some("http://127.0.0.1:9".into()),
        region: Some("us-east-1".into()),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        allow_http: true,
        max_retries: 0,
        connect_timeout: Duration::from_secs(2),
        ..S3Options::default()
    };
    let store = ObjectArtifactStore::from_url("s3://bucket/prefix", &options).unwrap();
    for bad in ["../escape", "a//b", ".tmp-x", "a/b/"] {
        let err = store.put(bad, b"x".to_vec()).await.unwrap_err();
        assert_eq!(err.code(), "invalid_artifact_key", "{bad}: {err}");
        assert_eq!(
            store.get(bad).await.unwrap_err().code(),
            "invalid_artifact_key"
        );
    }
    // A valid key does reach the network, and its failure names the operation, the key and
    // the store, as an IO error (5xx), not as a missing artifact.
    let started = Instant::now();
    let err = store.get("models/m/1.bin").await.unwrap_err();
    assert_eq!(err.code(), "io_error", "{err}");
    let message = err.to_string();
    assert!(message.contains("get `models/m/1.bin`"), "{message}");
    assert!(message.contains("s3://bucket/prefix"), "{message}");
    let err = store.put("models/m/1.bin", vec![1]).await.unwrap_err();
    assert_eq!(err.code(), "io_error", "{err}");
    assert!(err.to_string().contains("put `models/m/1.bin`"), "{err}");
    assert_eq!(store.list().await.unwrap_err().code(), "io_error");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "no retries were configured"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_failures_are_io_errors_naming_the_key() {
    let Some((endpoint, _bucket)) = s3_env() else {
        return;
    };
    // A bucket that does not exist: writes fail, as IO errors naming the key.
    let bucket = format!("missing-{}", uuid::Uuid::new_v4().simple());
    let store = s3_store(&bucket, "p", &s3_options(&endpoint));
    let err = store
        .put("models/m/1.bin", b"x".to_vec())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "io_error", "{err}");
    assert!(err.to_string().contains("models/m/1.bin"), "{err}");
    assert_eq!(store.list().await.unwrap_err().code(), "io_error");
}

#[test]
fn urls_are_checked_at_open() {
    let options = S3Options::default();
    for (url, fragment) in [
        ("not a url", "artifact store URL"),
        ("gs://bucket/p", "unsupported scheme `gs`"),
        ("s3:///prefix", "bucket name is missing"),
        (
            "s3://key:secret@bucket/p",
            "credentials do not belong in the URL",
        ),
        ("s3://bucket/p?region=x", "query"),
        ("s3://bucket/a%20b", "bad prefix"),
        ("s3://bucket/a/.hidden", "bad prefix"),
        ("memory:///a//b", "bad prefix"),
        ("file://host/tmp/x", "must not name a host"),
    ] {
        let err = ObjectArtifactStore::from_url(url, &options).unwrap_err();
        assert_eq!(err.code(), "invalid_input", "{url}: {err}");
        assert!(err.to_string().contains(fragment), "{url}: {err}");
    }
    // An HTTPS store opens: its TLS client gets a crypto provider (ring) without aws-lc.
    let aws = S3Options {
        region: Some("eu-west-1".into()),
        access_key_id: Some("AKIDEXAMPLE".into()),
        secret_access_key: Some("secret".into()),
        ..S3Options::default()
    };
    let store = ObjectArtifactStore::from_url("s3://some-bucket/models", &aws).unwrap();
    assert_eq!(store.url(), "s3://some-bucket/models");
    let tiny_parts = S3Options {
        multipart_part_size: MIN_PART_SIZE - 1,
        ..S3Options::default()
    };
    let err = ObjectArtifactStore::from_url("memory://", &tiny_parts).unwrap_err();
    assert!(err.to_string().contains("part size"), "{err}");
    // The secret never reaches Debug output.
    let with_secret = S3Options {
        secret_access_key: Some("hunter2-secret".into()),
        ..S3Options::default()
    };
    assert!(!format!("{with_secret:?}").contains("hunter2"));
}
