//! TLS and mutual TLS on real sockets: REST and gRPC served by `aurum_server::serve` with
//! certificates generated per test (a CA, a server certificate for 127.0.0.1/localhost, and a
//! client certificate from the same CA).

use std::sync::Arc;
use std::time::Duration;

use aurum_server::AppState;
use aurum_server::grpc::proto::ServerLiveRequest;
use aurum_server::grpc::proto::grpc_inference_service_client::GrpcInferenceServiceClient;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::common::*;

struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client = CertificateParams::new(vec!["scoring-client".into()])
            .unwrap()
            .signed_by(&client_key, &ca)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.pem"), server.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Pki {
            dir,
            ca_pem: ca.pem(),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }

    fn configure(&self, c: &mut aurum_service::Config, mutual: bool) {
        c.server.tls_cert_file = Some(self.dir.path().join("server.pem"));
        c.server.tls_key_file = Some(self.dir.path().join("server.key"));
        if mutual {
            c.server.tls_client_ca_file = Some(self.dir.path().join("ca.pem"));
        }
    }

    fn client_config(&self, with_cert: bool) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
            .unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = if with_cert {
            builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(self.client_cert_pem.as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(self.client_key_pem.as_bytes()).unwrap(),
                )
                .unwrap()
        } else {
            builder.with_no_client_auth()
        };
        Arc::new(config)
    }
}

/// Starts `serve` with REST on a fresh port and gRPC on another; returns both addresses.
async fn start(
    f: &Fixture,
) -> (
    std::net::SocketAddr,
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rest = listener.local_addr().unwrap();
    let grpc = f.platform.config().server.grpc_listen.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(aurum_server::serve(
        listener,
        AppState::new(f.platform.clone()),
        async move {
            let _ = rx.await;
        },
    ));
    // Wait for the gRPC listener.
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(grpc).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (rest, grpc, tx)
}

fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `GET /healthz` over TLS; the raw response text, or the I/O error the exchange ended with.
async fn https_get(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<String> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut out = String::new();
    tls.read_to_string(&mut out).await?;
    Ok(out)
}

/// The same request in plain text; whatever comes back before the server closes.
async fn plain_get(addr: std::net::SocketAddr) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = tcp
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listeners_refuse_plain_http_and_serve_tls() {
    let pki = Pki::new();
    let grpc = free_port();
    let f = fixture_with(|c| {
        pki.configure(c, false);
        c.server.grpc_listen = Some(grpc);
    })
    .await;
    let (rest, grpc, stop) = start(&f).await;

    let answer = https_get(rest, pki.client_config(false)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let plain = plain_get(rest).await;
    assert!(
        !plain.contains("HTTP/1.1 200"),
        "plain HTTP was served: {plain}"
    );

    // gRPC over TLS with the CA; plain-text gRPC fails.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{grpc}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let live = GrpcInferenceServiceClient::new(channel)
        .server_live(ServerLiveRequest {})
        .await
        .unwrap();
    assert!(live.into_inner().live);
    let plain = Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await;
    if let Ok(channel) = plain {
        let r = GrpcInferenceServiceClient::new(channel)
            .server_live(ServerLiveRequest {})
            .await;
        assert!(r.is_err(), "plain-text gRPC was served");
    }
    stop.send(()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    let pki = Pki::new();
    let grpc = free_port();
    let f = fixture_with(|c| {
        pki.configure(c, true);
        c.server.grpc_listen = Some(grpc);
    })
    .await;
    let (rest, grpc, stop) = start(&f).await;

    let answer = https_get(rest, pki.client_config(true)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Without a certificate the handshake (or, under TLS 1.3, the first read) fails.
    if let Ok(answer) = https_get(rest, pki.client_config(false)).await {
        assert!(
            !answer.contains("200"),
            "served without a client certificate: {answer}"
        );
    }

    let tls = |with_identity: bool| {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&pki.ca_pem))
            .domain_name("localhost");
        if with_identity {
            tls.identity(Identity::from_pem(
                &pki.client_cert_pem,
                &pki.client_key_pem,
            ))
        } else {
            tls
        }
    };
    let channel = Channel::from_shared(format!("https://{grpc}"))
        .unwrap()
        .tls_config(tls(true))
        .unwrap()
        .connect()
        .await
        .unwrap();
    GrpcInferenceServiceClient::new(channel)
        .server_live(ServerLiveRequest {})
        .await
        .unwrap();
    let refused = async {
        let channel = Channel::from_shared(format!("https://{grpc}"))
            .unwrap()
            .tls_config(tls(false))
            .unwrap()
            .timeout(Duration::from_secs(5))
            .connect()
            .await?;
        GrpcInferenceServiceClient::new(channel)
            .server_live(ServerLiveRequest {})
            .await
            .map_err(|s| Box::new(s) as Box<dyn std::error::Error + Send + Sync>)?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    }
    .await;
    assert!(
        refused.is_err(),
        "gRPC served a client without a certificate"
    );
    stop.send(()).unwrap();
}

#[tokio::test]
async fn tls_settings_are_checked_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = aurum_service::Config {
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    config.server.tls_cert_file = Some(dir.path().join("missing.pem"));
    let problems = config.validate(Vec::new()).unwrap_err().to_string();
    assert!(problems.contains("tls_key_file"), "{problems}");
    assert!(problems.contains("missing.pem"), "{problems}");
    // A key file that is not a key: a clear error naming it when the listener starts.
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    config.server.tls_cert_file = Some(dir.path().join("cert.pem"));
    config.server.tls_key_file = Some(dir.path().join("key.pem"));
    let err = aurum_server::tls::acceptor(&config.server, &[b"http/1.1"])
        .err()
        .expect("bad PEM files are refused")
        .to_string();
    assert!(err.contains("cert.pem") || err.contains("key.pem"), "{err}");
}
