//! The web console: server-rendered HTML pages under `/ui`, for people rather than programs.
//!
//! Why a separate crate: the console is a second *presentation* of the same operations the REST
//! API exposes. Every page gets its data from the [`aurum_service::Platform`] calls the `/v1`
//! handlers make (models, versions, reports, validation documents, alias history, drift,
//! outcomes, fairness, challenger comparison, audit log, training jobs, registered forecasts),
//! so the numbers on a page are the numbers the API returns; nothing here queries a store or
//! computes a metric of its own. Keeping it out of `aurum-server` keeps the API crate about the
//! API, and the host mounts [`router`] next to its own routes.
//!
//! Invariants:
//! - **Read-only.** The only state a console request changes is its own session (sign-in,
//!   sign-out). The one page that computes something, a registered model's forecast, calls the
//!   same audited service function as `POST /v1/models/{name}/forecast`.
//! - **Same keys, same rules.** Sign-in checks the pasted API key with
//!   [`aurum_service::Platform::authenticate_from`] (unknown, revoked and expired keys refused,
//!   the failed-attempt limit per client address applies). The role → permission matrix is the
//!   host's ([`ConsoleOptions::allows`]); model scopes filter every list and guard every page.
//! - **No secret in the browser.** The session cookie is an opaque random id (HttpOnly,
//!   SameSite=Strict, Secure under TLS); see [`session`]. Sign-in and sign-out are POSTs that
//!   carry a CSRF token and are refused from another origin.
//! - **Shared sessions.** Sessions live in the registry every replica shares (through
//!   [`aurum_service::Platform`], never a store of this crate's own): any replica serves any
//!   console request, and a restart signs nobody out.
//! - **Escaped output.** Every value that is not a literal of this crate passes through
//!   [`html::esc`]; every response carries a Content-Security-Policy without scripts as a
//!   second line of defence.
//! - **Offline.** Styles are inline, charts are inline SVG ([`svg`]), there is no script, font
//!   or request to another host.

pub mod html;
mod pages;
pub mod session;
pub mod svg;
mod viewer;

use std::sync::Arc;
use std::time::Duration;

use aurum_service::{ErrorClass, Platform, Role, ServiceError};
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

pub use viewer::Viewer;

/// What a console page needs from the viewer's role (the host maps each to its API permission).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Models, versions, reports, documents, monitoring, fairness, challenger.
    ReadModels,
    /// Training jobs.
    Training,
    /// The audit log.
    ReadAudit,
    /// Forecasts of registered forecasting models (scoring, as the API's forecast route).
    Predict,
}

/// The host's permission matrix: whether `role` may see what `need` names.
pub type Allows = fn(Role, Need) -> bool;

/// Reads the host's request id from a request's extensions.
pub type RequestIdOf = fn(&axum::http::Extensions) -> Option<String>;

/// How the host configures the console.
#[derive(Clone, Debug)]
pub struct ConsoleOptions {
    /// Mark cookies `Secure` (the server speaks TLS).
    pub secure_cookies: bool,
    /// The role → permission matrix of the API.
    pub allows: Allows,
    /// The host's request id, used as the audit request id of the calls a page makes.
    pub request_id: RequestIdOf,
    /// How long a session lasts at most (less when the key expires sooner).
    pub session_ttl: Duration,
}

impl ConsoleOptions {
    /// Options with plain-HTTP cookies, 8-hour sessions and no host request id.
    pub fn new(allows: Allows) -> Self {
        ConsoleOptions {
            secure_cookies: false,
            allows,
            request_id: |_| None,
            session_ttl: Duration::from_secs(8 * 3600),
        }
    }
}

/// The console's shared state.
#[derive(Clone)]
pub struct ConsoleState {
    pub platform: Platform,
    pub sessions: Arc<session::SessionStore>,
    pub options: ConsoleOptions,
}

/// The Content-Security-Policy of every console response: no script at all, styles inline,
/// forms only to this origin, never framed.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes, all under `/ui`, with their state applied; merge it into the host's
/// router (of any state type).
pub fn router<S: Clone + Send + Sync + 'static>(
    platform: Platform,
    options: ConsoleOptions,
) -> Router<S> {
    let state = ConsoleState {
        sessions: Arc::new(session::SessionStore::new(
            platform.clone(),
            options.session_ttl,
        )),
        platform,
        options,
    };
    Router::new()
        .route("/ui", get(pages::home))
        .route("/ui/", get(pages::home))
        .route("/ui/login", get(viewer::login_form).post(viewer::login))
        .route("/ui/logout", post(viewer::logout))
        .route("/ui/models", get(pages::home))
        .route("/ui/models/{name}", get(pages::model))
        .route("/ui/models/{name}/versions/{version}", get(pages::version))
        .route(
            "/ui/models/{name}/versions/{version}/report",
            get(pages::report),
        )
        .route(
            "/ui/models/{name}/versions/{version}/document",
            get(pages::document),
        )
        .route(
            "/ui/models/{name}/versions/{version}/fairness",
            get(pages::fairness),
        )
        .route("/ui/models/{name}/challenger", get(pages::challenger))
        .route("/ui/models/{name}/forecast", get(pages::forecast))
        .route("/ui/jobs", get(pages::jobs))
        .route("/ui/jobs/{id}", get(pages::job))
        .route("/ui/audit", get(pages::audit))
        .route("/ui/{*rest}", get(pages::not_found))
        .layer(axum::middleware::map_response(secure_headers))
        .with_state(state)
}

/// Adds the CSP and the usual hardening headers to every console response.
async fn secure_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A failed page, rendered as an HTML page with the right status (never a panic, never JSON).
#[derive(Debug, thiserror::Error)]
#[error("{title}: {message}")]
pub struct ConsoleError {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
}

impl ConsoleError {
    /// A 400 page with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ConsoleError {
            status: StatusCode::BAD_REQUEST,
            title: "Invalid request".into(),
            message: message.into(),
        }
    }

    /// A 403 page with `message`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ConsoleError {
            status: StatusCode::FORBIDDEN,
            title: "Not allowed".into(),
            message: message.into(),
        }
    }

    /// A 404 page with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        ConsoleError {
            status: StatusCode::NOT_FOUND,
            title: "Not found".into(),
            message: message.into(),
        }
    }
}

/// The status a service error is answered with, as the API maps it.
pub fn status_of(e: &ServiceError) -> StatusCode {
    match e.class() {
        ErrorClass::BadRequest => StatusCode::BAD_REQUEST,
        ErrorClass::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorClass::Forbidden => StatusCode::FORBIDDEN,
        ErrorClass::NotFound => StatusCode::NOT_FOUND,
        ErrorClass::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorClass::Conflict => StatusCode::CONFLICT,
        ErrorClass::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorClass::Timeout => StatusCode::REQUEST_TIMEOUT,
        ErrorClass::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorClass::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ServiceError> for ConsoleError {
    fn from(e: ServiceError) -> Self {
        let status = status_of(&e);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "console page failed");
        }
        ConsoleError {
            status,
            title: status
                .canonical_reason()
                .unwrap_or("Request failed")
                .to_string(),
            message: e.public_message(),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let main = format!(
            "<h1>{}</h1><p class=\"alert\" role=\"alert\">{}</p><p><a href=\"/ui/\">Back to the models</a></p>",
            html::esc(&self.title),
            html::esc(&self.message)
        );
        (
            self.status,
            Html(html::page(&self.title, None, &main, None)),
        )
            .into_response()
    }
}
