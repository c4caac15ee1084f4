//! Who is looking: sign-in, sign-out and the [`Viewer`] every page extracts.
//!
//! CSRF: both POSTs are refused when the browser says they come from another origin (`Origin`,
//! or `Referer` when there is no `Origin`, must name this host), and each carries a token: the
//! sign-in form the value of a random cookie set with the form (double submit), the sign-out
//! form the session's own token. The cookies are SameSite=Strict as well.

use std::sync::Arc;
use std::time::Duration;

use aurum_service::{CallContext, Principal};
use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::html::{Frame, esc, page, url_part};
use crate::session::{
    LOGIN_CSRF_COOKIE, SESSION_COOKIE, Session, cookie, random_token, set_cookie, tokens_equal,
};
use crate::{ConsoleError, ConsoleState, Need};

/// The signed-in viewer of a page: the key's principal as the API would see it.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub principal: Principal,
    pub session: Session,
    pub request_id: String,
    allows: crate::Allows,
}

impl Viewer {
    /// Whether the viewer's role may see `need`.
    pub fn may(&self, need: Need) -> bool {
        (self.allows)(self.principal.role, need)
    }

    /// A 403 page unless the viewer's role may see `need`.
    pub fn require(&self, need: Need) -> Result<(), ConsoleError> {
        if self.may(need) {
            Ok(())
        } else {
            Err(ConsoleError::forbidden(format!(
                "key `{}` ({}) may not open this page",
                self.principal.name,
                self.principal.role.as_str()
            )))
        }
    }

    /// A 403 page unless the key's scope covers `model`.
    pub fn require_model(&self, model: &str) -> Result<(), ConsoleError> {
        self.principal
            .check_model(model)
            .map_err(ConsoleError::from)
    }

    /// Whether the key's scope covers `model`.
    pub fn covers(&self, model: &str) -> bool {
        self.principal.policy.covers(model)
    }

    /// The call context of the service calls this page makes.
    pub fn ctx(&self) -> CallContext {
        CallContext {
            actor: self.principal.name.clone(),
            request_id: Some(self.request_id.clone()),
        }
    }

    /// The page frame for this viewer, with `current` marked in the navigation.
    pub fn frame(&self, current: &'static str) -> Frame<'_> {
        let mut nav = vec![("/ui/", "Models")];
        if self.may(Need::Training) {
            nav.push(("/ui/jobs", "Training jobs"));
        }
        if self.may(Need::ReadAudit) {
            nav.push(("/ui/audit", "Audit log"));
        }
        Frame {
            user: &self.principal.name,
            role: self.principal.role.as_str(),
            csrf: &self.session.csrf,
            nav,
            current,
        }
    }
}

/// The sign-in page, remembering where the viewer was going.
fn to_login(parts: &Parts, reason: Option<&str>) -> Response {
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/ui/");
    let mut target = format!("/ui/login?next={}", url_part(next));
    if let Some(r) = reason {
        target.push_str("&reason=");
        target.push_str(r);
    }
    Redirect::to(&target).into_response()
}

impl FromRequestParts<ConsoleState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login(parts, None));
        };
        let found = state
            .sessions
            .get(id)
            .await
            .map_err(|e| ConsoleError::from(e).into_response())?;
        let Some(session) = found else {
            return Err(to_login(parts, Some("session_ended")));
        };
        // The key may have been revoked or may have expired since sign-in: read its record.
        let keys = state
            .platform
            .list_keys()
            .await
            .map_err(|e| ConsoleError::from(e).into_response())?;
        let Some(record) = keys
            .into_iter()
            .find(|k| k.id == session.key_id && k.is_active())
        else {
            tracing::info!(key_id = %session.key_id, "console session ended: key revoked");
            state
                .sessions
                .close(id)
                .await
                .map_err(|e| ConsoleError::from(e).into_response())?;
            return Err(to_login(parts, Some("key_revoked")));
        };
        if record.policy.expired_at(chrono::Utc::now()) {
            tracing::info!(key = %record.name, "console session ended: key expired");
            state
                .sessions
                .close(id)
                .await
                .map_err(|e| ConsoleError::from(e).into_response())?;
            return Err(to_login(parts, Some("key_expired")));
        }
        let request_id = (state.options.request_id)(&parts.extensions)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        Ok(Viewer {
            principal: Principal {
                key_id: record.id,
                name: record.name,
                role: record.role,
                policy: Arc::new(record.policy),
            },
            session,
            request_id,
            allows: state.options.allows,
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    reason: Option<String>,
}

/// Where to go after sign-in: a console path, never another site (`//host`, `/\host`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/ui")
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.starts_with("/ui/login")
                && !n.starts_with("/ui/logout") =>
        {
            n.to_string()
        }
        _ => "/ui/".to_string(),
    }
}

/// The sign-in page with an optional error; sets a fresh form token.
fn login_page(
    state: &ConsoleState,
    status: StatusCode,
    next: &str,
    message: Option<&str>,
) -> Response {
    let token = random_token();
    let message_html = message
        .map(|m| {
            format!(
                "<p class=\"alert\" role=\"alert\" id=\"login-error\">{}</p>",
                esc(m)
            )
        })
        .unwrap_or_default();
    let described = if message.is_some() {
        " aria-describedby=\"login-error\" aria-invalid=\"true\""
    } else {
        ""
    };
    let main = format!(
        "<div class=\"login\"><h1>Sign in</h1>{message_html}\
         <p>Paste an aurum API key. The console shows what the key may read through the API, \
         within its model scope. The key is checked once and is not stored in your browser.</p>\
         <form method=\"post\" action=\"/ui/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label for=\"key\">API key<input id=\"key\" name=\"key\" type=\"password\" autocomplete=\"off\" required{described}></label>\
         <p><button class=\"primary\" type=\"submit\">Sign in</button></p></form></div>",
        esc(&token),
        esc(next),
    );
    let cookie = set_cookie(
        LOGIN_CSRF_COOKIE,
        &token,
        Duration::from_secs(3600),
        state.options.secure_cookies,
    );
    (
        status,
        [(header::SET_COOKIE, cookie)],
        Html(page("Sign in", None, &main, None)),
    )
        .into_response()
}

/// `GET /ui/login`.
pub async fn login_form(
    State(state): State<ConsoleState>,
    Query(q): Query<LoginQuery>,
) -> Response {
    let message = match q.reason.as_deref() {
        Some("session_ended") => Some("Your session ended. Sign in again."),
        Some("key_revoked") => {
            Some("The key of your session was revoked. Sign in with another key.")
        }
        Some("key_expired") => Some("The key of your session expired. Sign in with another key."),
        Some("signed_out") => Some("You are signed out."),
        _ => None,
    };
    login_page(
        &state,
        StatusCode::OK,
        &safe_next(q.next.as_deref()),
        message,
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

/// Whether the browser's `Origin` (or `Referer`) names this host; `true` when it sends neither
/// (the token is still checked).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let claimed = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|h| h.to_str().ok());
    match claimed {
        None => true,
        Some(origin) => {
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .map(|rest| rest.split('/').next().unwrap_or_default());
            matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
        }
    }
}

fn csrf_refused() -> Response {
    ConsoleError::forbidden(
        "the form was refused: it came from another site or its token is stale. \
         Reload the page and try again.",
    )
    .into_response()
}

/// `POST /ui/login`: checks the key as the API does, then opens a session.
pub async fn login(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return ConsoleError::bad_request("the sign-in form could not be read").into_response();
    };
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !same_origin(&headers) || expected.is_empty() || !tokens_equal(expected, &form.csrf) {
        tracing::warn!("console sign-in refused: CSRF check failed");
        return csrf_refused();
    }
    let next = safe_next(form.next.as_deref());
    let key = form.key.trim();
    if key.is_empty() {
        return login_page(
            &state,
            StatusCode::BAD_REQUEST,
            &next,
            Some("Paste an API key."),
        );
    }
    // The client address, as the API's authentication middleware reads it (the failed-attempt
    // limit is per address).
    let client = connect.map(|c| c.0.0.ip().to_string());
    match state
        .platform
        .authenticate_from(key, client.as_deref())
        .await
    {
        Ok(principal) => {
            let expires_in = principal
                .policy
                .expires_at
                .map(|t| (t - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO));
            let (id, session) = match state.sessions.open(&principal.key_id, expires_in).await {
                Ok(opened) => opened,
                Err(e) => return ConsoleError::from(e).into_response(),
            };
            let life = session
                .expires
                .duration_since(session.created)
                .unwrap_or(Duration::ZERO);
            tracing::info!(key = %principal.name, role = principal.role.as_str(), "console sign-in");
            let secure = state.options.secure_cookies;
            let mut resp = Redirect::to(&next).into_response();
            let h = resp.headers_mut();
            for c in [
                set_cookie(SESSION_COOKIE, &id, life, secure),
                set_cookie(LOGIN_CSRF_COOKIE, "", Duration::ZERO, secure),
            ] {
                if let Ok(v) = c.parse() {
                    h.append(header::SET_COOKIE, v);
                }
            }
            resp
        }
        Err(e) => {
            let status = crate::status_of(&e);
            let message = match &e {
                aurum_service::ServiceError::KeyExpired { .. } => e.public_message(),
                aurum_service::ServiceError::RateLimited { .. } => e.public_message(),
                aurum_service::ServiceError::Unauthenticated(_) => {
                    "That key is not valid (unknown, revoked or mistyped).".to_string()
                }
                _ => e.public_message(),
            };
            tracing::info!(code = e.code(), "console sign-in refused");
            login_page(&state, status, &next, Some(&message))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/logout`: ends the session and clears its cookie.
pub async fn logout(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return ConsoleError::bad_request("the sign-out form could not be read").into_response();
    };
    if !same_origin(&headers) {
        return csrf_refused();
    }
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        let found = match state.sessions.get(id).await {
            Ok(found) => found,
            Err(e) => return ConsoleError::from(e).into_response(),
        };
        if let Some(session) = found {
            if !tokens_equal(&session.csrf, &form.csrf) {
                return csrf_refused();
            }
            if let Err(e) = state.sessions.close(id).await {
                return ConsoleError::from(e).into_response();
            }
            tracing::info!(key_id = %session.key_id, "console sign-out");
        }
    }
    let mut resp = Redirect::to("/ui/login?reason=signed_out").into_response();
    if let Ok(v) = set_cookie(
        SESSION_COOKIE,
        "",
        Duration::ZERO,
        state.options.secure_cookies,
    )
    .parse()
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_in_the_console() {
        assert_eq!(safe_next(Some("/ui/audit?x=1")), "/ui/audit?x=1");
        assert_eq!(safe_next(Some("//evil.example/ui")), "/ui/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/ui/");
        assert_eq!(safe_next(Some("/ui/login")), "/ui/");
        assert_eq!(safe_next(None), "/ui/");
    }

    #[test]
    fn origin_must_match_host() {
        let mut h = HeaderMap::new();
        h.insert("host", "127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h));
        h.insert("origin", "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h));
        h.insert("origin", "http://evil.example".parse().unwrap());
        assert!(!same_origin(&h));
        h.insert("origin", "null".parse().unwrap());
        assert!(!same_origin(&h));
    }
}
