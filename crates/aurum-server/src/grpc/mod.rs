//! The Open Inference Protocol over gRPC (`inference.GRPCInferenceService`, tonic).
//!
//! The service is a thin adapter over the same protocol-neutral operations as the REST
//! endpoints ([`crate::oip::infer`]): it decodes `InferTensorContents` or `raw_input_contents`
//! into [`crate::oip::tensor::Tensor`]s and encodes the outputs back. Keys travel in the
//! `authorization: Bearer KEY` metadata entry. Errors become gRPC statuses through
//! [`status_of`], one exhaustive match over [`ErrorClass`].
//!
//! [`serve`] runs it on a listener; [`crate::serve`] starts it beside the HTTP server when
//! `server.grpc_listen` is set, sharing the [`crate::AppState`] and the shutdown signal.

mod service;

use std::future::Future;

use aurum_service::{ErrorClass, ServiceError};
use tonic::Code;

pub use service::InferenceService;

/// The code generated from `proto/open_inference_grpc.proto` (package `inference`).
#[allow(
    clippy::all,
    clippy::pedantic,
    missing_docs,
    rustdoc::invalid_html_tags,
    unreachable_pub
)]
pub mod proto {
    tonic::include_proto!("inference");
}

use proto::grpc_inference_service_server::GrpcInferenceServiceServer;

/// The gRPC code of each error class.
pub fn code_of(class: ErrorClass) -> Code {
    match class {
        ErrorClass::BadRequest => Code::InvalidArgument,
        ErrorClass::Unauthenticated => Code::Unauthenticated,
        ErrorClass::Forbidden => Code::PermissionDenied,
        ErrorClass::NotFound => Code::NotFound,
        ErrorClass::Conflict => Code::FailedPrecondition,
        ErrorClass::PayloadTooLarge => Code::ResourceExhausted,
        ErrorClass::Timeout => Code::DeadlineExceeded,
        ErrorClass::TooManyRequests => Code::ResourceExhausted,
        ErrorClass::MethodNotAllowed => Code::Unimplemented,
        ErrorClass::Unavailable => Code::Unavailable,
        ErrorClass::Internal => Code::Internal,
    }
}

/// A service error as a gRPC status: the public message, and aurum's stable machine code in the
/// `aurum-error-code` metadata entry. Internal failures are logged and show a generic message.
pub fn status_of(e: &ServiceError) -> tonic::Status {
    let class = e.class();
    if class == ErrorClass::Internal {
        tracing::error!(code = e.code(), error = %e, "internal error (gRPC)");
    }
    let mut status = tonic::Status::new(code_of(class), e.public_message());
    if let Ok(v) = e.code().parse() {
        status.metadata_mut().insert("aurum-error-code", v);
    }
    status
}

/// The tonic service with the message limit set to the configured body limit.
pub fn service(state: crate::AppState) -> GrpcInferenceServiceServer<InferenceService> {
    let limit = state.platform.config().server.body_limit_bytes;
    GrpcInferenceServiceServer::new(InferenceService::new(state)).max_decoding_message_size(limit)
}

/// tonic answers a message over the decoding limit with `OutOfRange`; the protocol's (and
/// gRPC's) convention, and aurum's [`ErrorClass::PayloadTooLarge`], is `ResourceExhausted`.
/// Our handlers never return `OutOfRange`, so every such status here is tonic's limit.
fn remap_too_large<B>(mut resp: axum::http::Response<B>) -> axum::http::Response<B> {
    let out_of_range = (Code::OutOfRange as i32).to_string();
    let headers = resp.headers_mut();
    if headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == out_of_range.as_bytes())
    {
        headers.insert(
            "grpc-status",
            axum::http::HeaderValue::from(Code::ResourceExhausted as i32),
        );
    }
    resp
}

/// A panic in a handler becomes an `Internal` status (and a log line), never a dropped stream.
fn panic_status(
    panic: Box<dyn std::any::Any + Send + 'static>,
) -> axum::http::Response<tonic::body::Body> {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!(panic = %what, "gRPC handler panicked");
    metrics::counter!("aurum_panics_total").increment(1);
    tonic::Status::internal("internal error").into_http()
}

/// Serves the gRPC API on `listener` until `shutdown` resolves; in-flight calls then finish.
/// Accepted connections after their TLS handshake, each completed in its own task (see
/// [`crate::tls::handshake`]) so that a slow client does not hold up the others.
fn tls_incoming(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
) -> impl futures_util::Stream<
    Item = std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>,
> + Send
+ 'static {
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            // Stops (and closes the listener) once the server drops the stream.
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => break,
            };
            let (tcp, peer) = match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "gRPC accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                if let Some(stream) = crate::tls::handshake(&acceptor, tcp, peer).await {
                    let _ = tx.send(Ok(stream)).await;
                }
            });
        }
    });
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    state: crate::AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let tls = crate::tls::acceptor(&state.platform.config().server, &[b"h2"]);
    let router = tonic::transport::Server::builder()
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_status,
        ))
        .layer(tower::util::MapResponseLayer::new(remap_too_large))
        .add_service(service(state));
    match tls {
        Ok(None) => {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
        Ok(Some(acceptor)) => {
            router
                .serve_with_incoming_shutdown(tls_incoming(listener, acceptor), shutdown)
                .await
        }
        Err(e) => {
            // Configuration is validated before serving; a file that became unreadable since
            // is reported and the gRPC listener stays down.
            tracing::error!(error = %e, "gRPC listener not started");
            Ok(())
        }
    }
}
