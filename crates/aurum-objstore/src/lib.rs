//! Model artifacts in object storage: an [`ArtifactStore`] over the `object_store` crate.
//!
//! Why a separate crate: S3 support brings an HTTP client and a TLS stack (reqwest 0.13, beside
//! the workspace's 0.12, with rustls). Keeping them here leaves `aurum-registry` free of them,
//! and only the binaries that can store artifacts in S3 link them. TLS and request signing use
//! ring, as `aurum-server` does, not object_store's default aws-lc-rs (a C build): opening an
//! `s3://` store installs ring as rustls's process-wide default provider when none is set.
//!
//! [`ObjectArtifactStore::from_url`] opens one of:
//! - `s3://bucket/optional/prefix`: Amazon S3 or any S3-compatible server, configured by
//!   [`S3Options`] with the standard `AWS_*` environment variables as fallbacks;
//! - `file:///absolute/path`: a directory, through `object_store`'s `LocalFileSystem` with fsync;
//! - `memory://`: a process-local map, for tests.
//!
//! Invariants, the same as [`aurum_registry::LocalArtifactStore`]'s so that callers cannot tell
//! the stores apart:
//! - **Keys are validated before any I/O** with [`validate_key`]; a valid key maps to the object
//!   `<prefix>/<key>` and to nothing else, and the prefix keeps two stores in one bucket apart.
//! - **Writes are atomic.** A value is sent as one PUT or, above
//!   [`S3Options::multipart_part_size`], as a multipart upload that becomes visible only when it
//!   is completed (and is aborted on failure); on disk a staged file is renamed into place. A
//!   reader sees the old bytes or the new bytes, never a prefix.
//! - **Errors keep their meaning.** A missing key is [`RegistryError::NotFound`]
//!   ([`Entity::Artifact`]), deleting a missing key succeeds, and any other failure is
//!   [`RegistryError::Io`] whose message names the operation, the key and the location.
//! - **Listing** returns the keys under the prefix, relative to it, sorted; objects whose
//!   names no key could produce (other tools' files, temporary files) are left out.
//!
//! Integrity is not this layer's job: the registry records each artifact's SHA-256 and
//! [`aurum_registry::get_verified`] checks it on every load, whatever the store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};

use aurum_registry::{ArtifactStore, Entity, RegistryError, Result, validate_key};

/// The smallest part S3 accepts in a multipart upload (except the last one).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// How many parts of one multipart upload are in flight at once.
const PART_CONCURRENCY: usize = 4;

/// Connection and transfer settings for [`ObjectArtifactStore::from_url`].
///
/// The `Option` fields override the `AWS_*` environment variables (`AWS_ENDPOINT`,
/// `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...), which in turn override
/// `object_store`'s defaults (region `us-east-1`, credentials from the instance metadata
/// service). Only `multipart_part_size` applies to `file://` and `memory://` stores.
#[derive(Clone)]
pub struct S3Options {
    /// The S3 endpoint URL, for S3-compatible servers (`http://127.0.0.1:9000`); `None` for AWS.
    pub endpoint: Option<String>,
    /// The bucket's region.
    pub region: Option<String>,
    /// Static credentials; both or neither.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Allow plain `http://` endpoints (a server on loopback). Off by default.
    pub allow_http: bool,
    /// Address the bucket as `https://bucket.host/` instead of `https://host/bucket/`.
    /// `None` keeps the environment's or `object_store`'s choice (path style).
    pub virtual_hosted_style: Option<bool>,
    /// Limit on one HTTP request, from connecting until its body is read. A `get` is one
    /// request, so this bounds the download time of the largest artifact; a `put` larger than
    /// `multipart_part_size` is bounded per part.
    pub request_timeout: Duration,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// How many times a failed request (a 5xx, a throttling answer, a connection error or a
    /// timeout) is retried, with exponential backoff.
    pub max_retries: usize,
    /// No retry starts later than this after the first attempt.
    pub retry_timeout: Duration,
    /// Values longer than this are uploaded as a multipart upload in parts of this size (at
    /// least [`MIN_PART_SIZE`]); shorter ones as a single PUT.
    pub multipart_part_size: usize,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
            virtual_hosted_style: None,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_retries: 5,
            retry_timeout: Duration::from_secs(120),
            multipart_part_size: 16 * 1024 * 1024,
        }
    }
}

impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_timeout", &self.retry_timeout)
            .field("multipart_part_size", &self.multipart_part_size)
            .finish()
    }
}

/// Artifacts as objects under a prefix of an object store.
#[derive(Clone)]
pub struct ObjectArtifactStore {
    store: Arc<dyn ObjectStore>,
    /// `None` for the store's root.
    prefix: Option<Path>,
    /// The URL it was opened from, without credentials (for logs and errors).
    url: String,
    part_size: usize,
}

impl fmt::Debug for ObjectArtifactStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectArtifactStore")
            .field("url", &self.url)
            .field("part_size", &self.part_size)
            .finish()
    }
}

impl ObjectArtifactStore {
    /// Opens the store named by `url` (`s3://bucket/prefix`, `file:///abs/path`, `memory://`).
    ///
    /// A malformed URL, an unsupported scheme, credentials or a query in the URL, a prefix that
    /// is not a valid key, or a configuration `object_store` refuses is
    /// [`RegistryError::InvalidInput`]. A `file://` directory is created when missing, so a bad
    /// location fails here rather than on the first write. No request is sent to S3 here: a
    /// wrong bucket or bad credentials show on the first operation.
    pub fn from_url(url: &str, options: &S3Options) -> Result<Self> {
        let invalid =
            |why: String| RegistryError::InvalidInput(format!("artifact store URL `{url}`: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid(
                "credentials do not belong in the URL; pass them in the options".into(),
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(invalid("a query or fragment is not supported".into()));
        }
        if options.multipart_part_size < MIN_PART_SIZE {
            return Err(invalid(format!(
                "the multipart part size must be at least {MIN_PART_SIZE} bytes"
            )));
        }
        let path_prefix = || -> Result<Option<Path>> {
            let prefix = parsed.path().trim_matches('/');
            if prefix.is_empty() {
                return Ok(None);
            }
            validate_key(prefix).map_err(|e| invalid(format!("bad prefix: {e}")))?;
            Ok(Some(Path::from_iter(prefix.split('/'))))
        };

        let (store, prefix): (Arc<dyn ObjectStore>, Option<Path>) = match parsed.scheme() {
            "s3" => {
                let bucket = parsed.host_str().filter(|b| !b.is_empty()).ok_or_else(|| {
                    invalid("the bucket name is missing (`s3://bucket/…`)".into())
                })?;
                ensure_crypto_provider();
                let s3 = s3_builder(bucket, options)
                    .build()
                    .map_err(|e| invalid(e.to_string()))?;
                (Arc::new(s3), path_prefix()?)
            }
            "file" => {
                if parsed
                    .host_str()
                    .is_some_and(|h| !h.is_empty() && h != "localhost")
                {
                    return Err(invalid("a file URL must not name a host".into()));
                }
                let dir = parsed
                    .to_file_path()
                    .map_err(|()| invalid("not an absolute file path".into()))?;
                std::fs::create_dir_all(&dir).map_err(|e| {
                    RegistryError::Io(std::io::Error::new(
                        e.kind(),
                        format!("creating artifact directory {}: {e}", dir.display()),
                    ))
                })?;
                let fs = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| invalid(e.to_string()))?
                    .with_fsync(true);
                (Arc::new(fs), None)
            }
            "memory" => (Arc::new(InMemory::new()), path_prefix()?),
            other => {
                return Err(invalid(format!(
                    "unsupported scheme `{other}` (expected s3, file or memory)"
                )));
            }
        };
        tracing::info!(url, "object artifact store opened");
        Ok(ObjectArtifactStore {
            store,
            prefix,
            url: url.to_string(),
            part_size: options.multipart_part_size,
        })
    }

    /// The URL this store was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The object for a key; the only place a key meets the object store.
    fn location(&self, key: &str) -> Result<Path> {
        validate_key(key)?;
        let parts = key.split('/');
        Ok(match &self.prefix {
            Some(prefix) => prefix.parts().chain(parts.map(Into::into)).collect(),
            None => Path::from_iter(parts),
        })
    }

    /// Maps an `object_store` failure that is not "not found" to [`RegistryError::Io`]; `what`
    /// is the operation and its key (`get \`models/m/1.bin\``).
    fn failure(&self, what: &str, err: object_store::Error) -> RegistryError {
        use std::io::ErrorKind;
        let kind = match &err {
            object_store::Error::NotFound { .. } => ErrorKind::NotFound,
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => ErrorKind::PermissionDenied,
            object_store::Error::NotSupported { .. }
            | object_store::Error::NotImplemented { .. } => ErrorKind::Unsupported,
            _ => ErrorKind::Other,
        };
        tracing::warn!(op = what, store = %self.url, error = %err, "object store request failed");
        RegistryError::Io(std::io::Error::new(
            kind,
            format!("artifact store {}: {what} failed: {err}", self.url),
        ))
    }

    /// Uploads `bytes` in parts; the object appears only when the upload completes.
    async fn put_multipart(&self, location: &Path, bytes: Bytes) -> object_store::Result<()> {
        let mut upload = self.store.put_multipart(location).await?;
        let mut parts = Vec::with_capacity(bytes.len().div_ceil(self.part_size));
        let mut start = 0;
        while start < bytes.len() {
            let end = (start + self.part_size).min(bytes.len());
            parts.push(upload.put_part(PutPayload::from_bytes(bytes.slice(start..end))));
            start = end;
        }
        let sent = futures_util::stream::iter(parts)
            .buffer_unordered(PART_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await;
        let done = match sent {
            Ok(_) => upload.complete().await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            if let Err(abort) = upload.abort().await {
                tracing::warn!(location = %location, error = %abort, "could not abort multipart upload");
            }
            return Err(e);
        }
        Ok(())
    }
}

/// object_store's HTTP client (and the alert webhook's: reqwest with rustls, built without a provider so that no aws-lc
/// build is needed) takes rustls's process-wide default provider: install ring's, as the server
/// uses, unless the process has already chosen one.
pub fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // rustls deprecates ring's provider for lacking post-quantum key exchange; its classical
        // suites are rustls's defaults otherwise, and aurum-server makes the same choice.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        // An error means another thread installed one in between, which serves as well.
        let _ = provider.install_default();
    }
}

/// An S3 builder: environment first, then the options, then what only we decide.
fn s3_builder(bucket: &str, options: &S3Options) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(endpoint) = &options.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(region) = &options.region {
        builder = builder.with_region(region);
    }
    if let Some(id) = &options.access_key_id {
        builder = builder.with_access_key_id(id);
    }
    if let Some(secret) = &options.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    if let Some(virtual_hosted) = options.virtual_hosted_style {
        builder = builder.with_virtual_hosted_style_request(virtual_hosted);
    }
    let client = ClientOptions::new()
        .with_allow_http(options.allow_http)
        .with_timeout(options.request_timeout)
        .with_connect_timeout(options.connect_timeout);
    let retry = RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: options.max_retries,
        retry_timeout: options.retry_timeout,
    };
    builder
        .with_allow_http(options.allow_http)
        .with_client_options(client)
        .with_retry(retry)
}

#[async_trait]
impl ArtifactStore for ObjectArtifactStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let location = self.location(key)?;
        let len = bytes.len();
        let bytes = Bytes::from(bytes);
        let result = if len > self.part_size {
            self.put_multipart(&location, bytes).await
        } else {
            self.store
                .put(&location, PutPayload::from_bytes(bytes))
                .await
                .map(|_| ())
        };
        result.map_err(|e| self.failure(&format!("put `{key}`"), e))?;
        tracing::debug!(
            key,
            bytes = len,
            multipart = len > self.part_size,
            "artifact stored"
        );
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let location = self.location(key)?;
        let read = async { self.store.get(&location).await?.bytes().await };
        match read.await {
            Ok(bytes) => Ok(Vec::from(bytes)),
            Err(object_store::Error::NotFound { .. }) => Err(RegistryError::NotFound {
                kind: Entity::Artifact,
                name: key.to_string(),
            }),
            Err(e) => Err(self.failure(&format!("get `{key}`"), e)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let location = self.location(key)?;
        match self.store.head(&location).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.failure(&format!("exists `{key}`"), e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let location = self.location(key)?;
        match self.store.delete(&location).await {
            // S3 answers a delete of a missing object with success; the local file system does not.
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.failure(&format!("delete `{key}`"), e)),
        }
        tracing::debug!(key, "artifact deleted");
        Ok(())
    }

    async fn list(&self) -> Result<Vec<String>> {
        let objects: Vec<_> = self
            .store
            .list(self.prefix.as_ref())
            .try_collect()
            .await
            .map_err(|e| self.failure("list", e))?;
        let mut keys = Vec::with_capacity(objects.len());
        for object in objects {
            let relative = match &self.prefix {
                Some(prefix) => match object.location.prefix_match(prefix) {
                    Some(parts) => parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>(),
                    None => continue,
                },
                None => object
                    .location
                    .parts()
                    .map(|p| p.as_ref().to_string())
                    .collect(),
            };
            let key = relative.join("/");
            // Temporary files and anything else no key could name are not artifacts.
            if validate_key(&key).is_ok() {
                keys.push(key);
            } else {
                tracing::debug!(location = %object.location, "object skipped: not an artifact key");
            }
        }
        keys.sort();
        Ok(keys)
    }
}
