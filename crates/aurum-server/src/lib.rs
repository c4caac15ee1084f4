//! The only crate of aurum that speaks HTTP.
//!
//! [`router`] builds the axum application over an [`AppState`] holding the
//! [`aurum_service::Platform`]; [`serve`] runs it on a listener with graceful shutdown. Handlers
//! are thin adapters: they parse wire types ([`wire`]), check permissions ([`auth`]), call the
//! service layer and render. Every error goes through the one mapping in [`error`]. The OpenAPI
//! 3.1 document served at `/openapi.json` is generated from the handler annotations.
//!
//! The KServe Open Inference Protocol (v2) is served beside `/v1` by [`oip`] (REST under `/v2`,
//! with its own `{"error": ...}` rendering) and [`grpc`] (tonic, started by [`serve`] when
//! `server.grpc_listen` is set); both adapt the same [`aurum_service::Platform`] calls.

pub mod auth;
pub mod error;
pub mod extract;
pub mod grpc;
pub mod middleware;
pub mod oip;
pub mod routes;
pub mod tls;
pub mod wire;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use aurum_service::Platform;
use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::wire::HealthOut;

/// Shared state of the HTTP application.
#[derive(Clone)]
pub struct AppState {
    pub platform: Platform,
    ready: Arc<AtomicBool>,
    metrics: PrometheusHandle,
}

impl AppState {
    pub fn new(platform: Platform) -> Self {
        AppState {
            platform,
            ready: Arc::new(AtomicBool::new(true)),
            metrics: prometheus(),
        }
    }

    /// Marks the server ready (or not): `/readyz` answers 503 while not ready, e.g. while draining.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

/// The process-wide Prometheus recorder (installed once; later calls share it).
fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                ])
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests); then this handle only renders ours.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("aurum API key")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "aurum", description = "Financial AI models as a service: datasets, training, registry, scoring, audit."),
    paths(
        routes::datasets::import, routes::datasets::list, routes::datasets::get,
        routes::datasets::synthesize,
        routes::datasets::submit_synthesis,
        routes::datasets::get_synthesis,
        routes::datasets::cancel_synthesis,
        routes::training::submit, routes::training::list, routes::training::get, routes::training::cancel,
        routes::batch::submit, routes::batch::get, routes::batch::cancel, routes::batch::output,
        routes::batch::errors, routes::batch::list,
        routes::models::list, routes::models::get, routes::models::versions, routes::models::version,
        routes::models::set_alias, routes::models::alias_history,
        routes::models::report,
        routes::flows::put, routes::flows::get, routes::flows::run,
        routes::models::import, routes::models::drift, routes::models::performance,
        routes::models::outcomes, routes::models::fairness, routes::models::document,
        routes::models::challenger, routes::models::set_challenger, routes::models::clear_challenger,
        routes::forecast::once, routes::forecast::backtest, routes::forecast::decompose, routes::forecast::register, routes::forecast::by_model, routes::models::archive,
        routes::predict::champion, routes::predict::by_version, routes::predict::by_alias,
        routes::recommend::recommend, routes::recommend::similar_items,
        routes::events::events, routes::events::labels, routes::events::event_state,
        routes::admin::create_key, routes::admin::list_keys, routes::admin::revoke_key,
        routes::admin::audit, routes::admin::verify,
        healthz, readyz,
    ),
    modifiers(&SecurityAddon),
    tags((name = "datasets"), (name = "training"), (name = "batch"), (name = "models"), (name = "predict"), (name = "forecast"), (name = "recommend"), (name = "keys"), (name = "audit"), (name = "health"))
)]
pub struct ApiDoc;

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = HealthOut)))]
async fn healthz() -> Json<HealthOut> {
    Json(HealthOut {
        status: "ok".into(),
    })
}

/// Readiness: the server accepts traffic (503 while starting or draining).
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, body = HealthOut), (status = 503, body = HealthOut)))]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.ready.load(Ordering::SeqCst) {
        (
            StatusCode::OK,
            Json(HealthOut {
                status: "ready".into(),
            }),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(HealthOut {
                status: "not_ready".into(),
            }),
        )
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}

async fn openapi_json() -> impl IntoResponse {
    Json(openapi())
}

/// The served OpenAPI document: the `/v1` and `/v2` routes, each operation with every status
/// it can answer. The statuses that follow from an operation's shape are added here, in one
/// place, rather than repeated on each handler (so a new route cannot forget them):
/// - 401 and 403 when it needs a key, and 429 (with `Retry-After`) once a client address has
///   failed authentication too often;
/// - 400 when it takes a path parameter, a query string or a body (`invalid_path`,
///   `invalid_query`, `malformed_json`, `duplicate_key`, ...);
/// - 404 when it takes a path parameter (the model, version, dataset, ... is unknown);
/// - 413 when it takes a body;
/// - 503 for scoring and readiness (the batching queue is closed while draining);
/// - 408 (the request timeout) and 500 (with the request id) for every operation.
///
/// Error bodies are `ErrorBody` under `/v1` and the protocol's `OipErrorBody` under `/v2`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let mut doc = ApiDoc::openapi();
    doc.merge(oip::OipDoc::openapi());
    for (path, item) in doc.paths.paths.iter_mut() {
        let oip = path == "/v2" || path.starts_with("/v2/");
        let schema = if oip { "OipErrorBody" } else { "ErrorBody" };
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            let params = op.parameters.as_deref().unwrap_or_default();
            let in_path = params
                .iter()
                .any(|p| matches!(p.parameter_in, ParameterIn::Path));
            let in_query = params
                .iter()
                .any(|p| matches!(p.parameter_in, ParameterIn::Query));
            let body = op.request_body.is_some();
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let scoring =
                path.ends_with("/predict") || path.ends_with("/infer") || path.ends_with("/ready");
            let statuses: [(&str, bool, &str); 9] = [
                (
                    "400",
                    in_path || in_query || body,
                    "the request is invalid (the code and details.field name the problem)",
                ),
                ("401", secured, "no key, or an unknown or revoked key"),
                ("403", secured, "the key's role lacks the permission"),
                (
                    "429",
                    secured,
                    "too many failed authentications from this client (see Retry-After)",
                ),
                ("404", in_path, "the named resource does not exist"),
                (
                    "408",
                    true,
                    "the request took longer than the server's timeout",
                ),
                ("413", body, "the body is over the server's limit"),
                (
                    "500",
                    true,
                    "our failure; the log has the detail under the request id",
                ),
                ("503", scoring, "not ready (starting or draining)"),
            ];
            for (status, applies, description) in statuses {
                if applies && !op.responses.responses.contains_key(status) {
                    let content = ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(schema)))
                        .build();
                    let response = ResponseBuilder::new()
                        .description(description)
                        .content("application/json", content)
                        .build();
                    op.responses
                        .responses
                        .insert(status.to_string(), response.into());
                }
            }
        }
    }
    doc
}

/// Unknown routes: 404 `route_not_found`, in the protocol's shape under `/v2`.
async fn not_found(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let e = aurum_service::ServiceError::NotFound {
        resource: "route",
        name: format!("{method} {path}"),
    };
    render_for(path, e)
}

/// A route that exists but not for this method: 405 `method_not_allowed` (axum adds `Allow`).
async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let e = aurum_service::ServiceError::MethodNotAllowed {
        method: method.to_string(),
        path: path.to_string(),
    };
    render_for(path, e)
}

/// Renders an error raised outside any handler in the format of the API the path belongs to.
fn render_for(path: &str, e: aurum_service::ServiceError) -> Response {
    if path == "/v2" || path.starts_with("/v2/") {
        oip::OipError(e).into_response()
    } else {
        error::ApiError(e).into_response()
    }
}

/// The web console's configuration: the API's permission matrix, the request id of
/// [`middleware::outer`], and `Secure` cookies when the server speaks TLS.
fn console_options(platform: &Platform) -> aurum_console::ConsoleOptions {
    let mut options = aurum_console::ConsoleOptions::new(console_allows);
    options.secure_cookies = platform.config().server.tls_cert_file.is_some();
    options.request_id = |ext| ext.get::<middleware::RequestId>().map(|r| r.0.clone());
    options
}

/// What each console page needs, in the API's permissions.
fn console_allows(role: aurum_service::Role, need: aurum_console::Need) -> bool {
    use aurum_console::Need;
    auth::allows(
        role,
        match need {
            Need::ReadModels => auth::Permission::ReadModels,
            Need::Training => auth::Permission::Training,
            Need::ReadAudit => auth::Permission::ReadAudit,
            Need::Predict => auth::Permission::Predict,
        },
    )
}

/// Builds the application router.
pub fn router(state: AppState) -> Router {
    let limit = state.platform.config().server.body_limit_bytes;
    let v1 = Router::new()
        .route(
            "/v1/datasets",
            post(routes::datasets::import).get(routes::datasets::list),
        )
        .route("/v1/datasets/{name}", get(routes::datasets::get))
        .route(
            "/v1/datasets/{name}/synthesize",
            post(routes::datasets::synthesize),
        )
        .route(
            "/v1/datasets/{name}/synthesis-jobs",
            post(routes::datasets::submit_synthesis),
        )
        .route(
            "/v1/synthesis-jobs/{id}",
            get(routes::datasets::get_synthesis),
        )
        .route(
            "/v1/synthesis-jobs/{id}/cancel",
            post(routes::datasets::cancel_synthesis),
        )
        .route(
            "/v1/training-jobs",
            post(routes::training::submit).get(routes::training::list),
        )
        .route("/v1/training-jobs/{id}", get(routes::training::get))
        .route(
            "/v1/training-jobs/{id}/cancel",
            post(routes::training::cancel),
        )
        .route(
            "/v1/batch-jobs",
            post(routes::batch::submit).get(routes::batch::list),
        )
        .route("/v1/batch-jobs/{id}", get(routes::batch::get))
        .route("/v1/batch-jobs/{id}/cancel", post(routes::batch::cancel))
        .route("/v1/batch-jobs/{id}/output", get(routes::batch::output))
        .route("/v1/batch-jobs/{id}/errors", get(routes::batch::errors))
        .route("/v1/models", get(routes::models::list))
        .route("/v1/models/{name}", get(routes::models::get))
        .route("/v1/models/{name}/versions", get(routes::models::versions))
        .route(
            "/v1/models/{name}/versions/{version}",
            get(routes::models::version),
        )
        .route("/v1/models/{name}/import", post(routes::models::import))
        .route(
            "/v1/models/{name}/versions/{version}/drift",
            get(routes::models::drift),
        )
        .route(
            "/v1/models/{name}/versions/{version}/performance",
            get(routes::models::performance),
        )
        .route("/v1/models/{name}/outcomes", post(routes::models::outcomes))
        .route(
            "/v1/models/{name}/challenger",
            get(routes::models::challenger)
                .put(routes::models::set_challenger)
                .delete(routes::models::clear_challenger),
        )
        .route(
            "/v1/models/{name}/versions/{version}/fairness",
            get(routes::models::fairness),
        )
        .route(
            "/v1/models/{name}/versions/{version}/document",
            get(routes::models::document),
        )
        .route(
            "/v1/models/{name}/forecast",
            post(routes::forecast::by_model),
        )
        .route(
            "/v1/models/{name}/recommend",
            post(routes::recommend::recommend),
        )
        .route(
            "/v1/models/{name}/similar-items",
            post(routes::recommend::similar_items),
        )
        .route("/v1/models/{name}/events", post(routes::events::events))
        .route(
            "/v1/models/{name}/events/state",
            get(routes::events::event_state),
        )
        .route("/v1/models/{name}/labels", post(routes::events::labels))
        .route(
            "/v1/flows/{name}",
            axum::routing::put(routes::flows::put).get(routes::flows::get),
        )
        .route("/v1/flows/{name}/run", post(routes::flows::run))
        .route("/v1/forecast", post(routes::forecast::once))
        .route("/v1/decompose", post(routes::forecast::decompose))
        .route("/v1/backtest", post(routes::forecast::backtest))
        .route("/v1/forecast-models", post(routes::forecast::register))
        .route(
            "/v1/models/{name}/versions/{version}/report",
            get(routes::models::report),
        )
        .route(
            "/v1/models/{name}/versions/{version}/archive",
            post(routes::models::archive),
        )
        .route(
            "/v1/models/{name}/aliases",
            get(routes::models::alias_history),
        )
        .route(
            "/v1/models/{name}/aliases/{alias}",
            put(routes::models::set_alias),
        )
        .route("/v1/models/{name}/predict", post(routes::predict::champion))
        .route(
            "/v1/models/{name}/versions/{version}/predict",
            post(routes::predict::by_version),
        )
        .route(
            "/v1/models/{name}/aliases/{alias}/predict",
            post(routes::predict::by_alias),
        )
        .route(
            "/v1/keys",
            post(routes::admin::create_key).get(routes::admin::list_keys),
        )
        .route(
            "/v1/keys/{name}",
            axum::routing::delete(routes::admin::revoke_key),
        )
        .route("/v1/audit", get(routes::admin::audit))
        .route("/v1/audit/verify", get(routes::admin::verify))
        .route("/openapi.json", get(openapi_json))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .merge(v1)
        .merge(oip::router(state.clone()))
        .merge(aurum_console::router(
            state.platform.clone(),
            console_options(&state.platform),
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::body_limit_ext,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::outer,
        ))
        .with_state(state)
}

/// Accepts connections until `signal` resolves, then waits for open connections to finish.
///
/// Each connection is served by hyper's HTTP/1 server with a header-read timeout: a client that
/// does not finish sending a request's headers within `header_timeout` (one byte at a time, or
/// nothing at all on an idle keep-alive connection) is disconnected, so slow clients cannot hold
/// sockets forever. The peer address is put in each request as `ConnectInfo` (the
/// failed-authentication limit is per address), and `TCP_NODELAY` is set so that a response
/// written in more than one segment does not wait for the client's delayed ACK.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Router,
    header_timeout: std::time::Duration,
    tls: Option<tokio_rustls::TlsAcceptor>,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Some(header_timeout))
        .keep_alive(true);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(signal);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let svc = tower::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(remote));
            app.clone().oneshot(req)
        });
        let svc = hyper_util::service::TowerToHyperService::new(svc);
        let watcher = graceful.watcher();
        let http = http.clone();
        match &tls {
            None => {
                let conn = http.serve_connection(TokioIo::new(tcp), svc);
                tokio::spawn(async move {
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(peer = %remote, error = %e, "connection closed with an error");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Some(stream) = tls::handshake(&acceptor, tcp, remote).await else {
                        return;
                    };
                    let conn = http.serve_connection(TokioIo::new(stream), svc);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(peer = %remote, error = %e, "connection closed with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Serves `router(state)` on `listener` until `shutdown` resolves, then stops accepting and
/// drains in-flight requests (bounded by `server.shutdown_grace_s`).
///
/// When `server.grpc_listen` is set, the Open Inference Protocol gRPC server ([`grpc::serve`])
/// runs beside it on the same state and stops with it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = std::time::Duration::from_secs(state.platform.config().server.shutdown_grace_s);
    let platform = state.platform.clone();
    let ready = state.clone();
    let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let grpc = match state.platform.config().server.grpc_listen {
        Some(addr) => {
            let grpc_listener = tokio::net::TcpListener::bind(addr).await?;
            tracing::info!(addr = %grpc_listener.local_addr()?, "aurum gRPC listening");
            let mut stop = stop_rx;
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            Some(tokio::spawn(grpc::serve(
                grpc_listener,
                state.clone(),
                stopped,
            )))
        }
        None => None,
    };
    let signal = async move {
        shutdown.await;
        ready.set_ready(false);
        tracing::info!("shutdown requested: draining in-flight requests");
        let _ = stop_tx.send(true);
        let _ = drain_tx.send(());
    };
    let app = router(state.clone());
    let header_timeout =
        std::time::Duration::from_millis(state.platform.config().server.header_read_timeout_ms);
    let tls = tls::acceptor(&state.platform.config().server, &[b"http/1.1"])
        .map_err(std::io::Error::other)?;
    let server = tokio::spawn(accept_loop(listener, app, header_timeout, tls, signal));
    tokio::pin!(server);
    let result = tokio::select! {
        r = &mut server => r.map_err(std::io::Error::other)?,
        _ = async { let _ = drain_rx.await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_s = grace.as_secs(), "grace period over; stopping with requests in flight");
            Ok(())
        }
    };
    if let Some(grpc) = grpc {
        match tokio::time::timeout(grace, grpc).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "gRPC server failed"),
            Ok(Err(e)) => tracing::error!(error = %e, "gRPC server task failed"),
            Err(_) => tracing::warn!("gRPC calls still in flight after the grace period"),
        }
    }
    platform.shutdown().await;
    result
}
