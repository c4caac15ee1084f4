//! The web console is mounted under `/ui`, behind the API's keys and permission matrix, without
//! changing the API's own authentication.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::common::fixture;

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn get(uri: &str, session: Option<&str>) -> Request<Body> {
    let mut req = Request::get(uri).header(header::HOST, "aurum.test");
    if let Some(s) = session {
        req = req.header(header::COOKIE, format!("aurum_console_session={s}"));
    }
    req.body(Body::empty()).unwrap()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

/// Signs in with `key` through the form and returns the session id.
async fn sign_in(app: &Router, key: &str) -> String {
    let (status, headers, _) = send(app, get("/ui/login", None)).await;
    assert_eq!(status, StatusCode::OK);
    let token = cookie(&headers, "aurum_console_login").unwrap();
    let body = format!("key={key}&csrf={token}");
    let req = Request::post("/ui/login")
        .header(header::HOST, "aurum.test")
        .header(header::ORIGIN, "http://aurum.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("aurum_console_login={token}"))
        .body(Body::from(body))
        .unwrap();
    let (status, headers, body) = send(app, req).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    cookie(&headers, "aurum_console_session").unwrap()
}

#[tokio::test]
async fn console_uses_the_api_keys_and_permission_matrix() {
    let fx = fixture().await;
    let (status, headers, _) = send(&fx.app, get("/ui/", None)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/ui/login")
    );
    assert!(
        headers.contains_key("x-request-id"),
        "the server's outer layer applies"
    );
    // The API still wants a bearer key; a console session is not one.
    let client = sign_in(&fx.app, &fx.client).await;
    let (status, _, body) = send(&fx.app, get("/v1/models", Some(&client))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // The API's matrix: a client reads models but not the audit log or the training jobs.
    assert_eq!(
        send(&fx.app, get("/ui/", Some(&client))).await.0,
        StatusCode::OK
    );
    let (status, _, body) = send(&fx.app, get("/ui/audit", Some(&client))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("<html"), "an HTML page: {body}");
    assert_eq!(
        send(&fx.app, get("/ui/jobs", Some(&client))).await.0,
        StatusCode::FORBIDDEN
    );
    // An analyst reads the audit log (the keys created by the fixture are in it) but does not
    // forecast.
    let analyst = sign_in(&fx.app, &fx.analyst).await;
    let (status, _, body) = send(&fx.app, get("/ui/audit?event=key.create", Some(&analyst))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("key.create"), "{body}");
    assert_eq!(
        send(&fx.app, get("/ui/models/any/forecast", Some(&analyst)))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // Unknown console pages are HTML, unknown API routes keep their JSON.
    let (status, _, body) = send(&fx.app, get("/ui/nowhere", Some(&analyst))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("<html"));
    let (status, _, body) = send(&fx.app, get("/v1/nowhere", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("route_not_found"));
}

/// The sign-out form's token on a console page.
fn logout_token(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a sign-out form on the page")
        .to_string()
}

fn logout(session: &str, csrf: &str) -> Request<Body> {
    Request::post("/ui/logout")
        .header(header::HOST, "aurum.test")
        .header(header::ORIGIN, "http://aurum.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("aurum_console_session={session}"))
        .body(Body::from(format!("csrf={csrf}")))
        .unwrap()
}

/// Runs `sql` on the registry database the fixture's platform uses (SQLite file or PostgreSQL).
async fn registry_sql(fx: &crate::common::Fixture, sql: &'static str) {
    use sqlx::Connection as _;
    match fx.config.registry.database_url.as_deref() {
        Some(url) if fx.config.registry.backend == "postgres" => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        _ => {
            let path = fx.config.data_dir.join("registry.db");
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }
}

/// Sessions live in the registry every replica shares: a browser signed in on one server is
/// signed in on a second server over the same stores (another replica, or the first restarted),
/// signing out on either ends it on both, and a failing store is a 500 page, not a sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sessions_are_shared_by_replicas_and_survive_restarts() {
    let fx = fixture().await;
    let session = sign_in(&fx.app, &fx.analyst).await;
    let (status, _, page) = send(&fx.app, get("/ui/", Some(&session))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let csrf = logout_token(&page);

    // A second server on the same data dir (and database): the cookie is signed in there, with
    // the same session (its sign-out token).
    let other = aurum_backends::open_platform(fx.config.clone())
        .await
        .unwrap();
    let other_app = aurum_server::router(aurum_server::AppState::new(other.clone()));
    let (status, _, page) = send(&other_app, get("/ui/audit", Some(&session))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(logout_token(&page), csrf);
    // The cookie value is not what the registry stores.
    assert!(other.get_console_session(&session).await.unwrap().is_none());

    // A server started afterwards, as the first one restarted would be (nothing in memory
    // carries over): still signed in.
    let restarted = aurum_backends::open_platform(fx.config.clone())
        .await
        .unwrap();
    let restarted_app = aurum_server::router(aurum_server::AppState::new(restarted));
    assert_eq!(
        send(&restarted_app, get("/ui/", Some(&session))).await.0,
        StatusCode::OK
    );

    // Signing out on the second server ends the session on every server.
    let (status, headers, body) = send(&other_app, logout(&session, &csrf)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(headers[header::LOCATION], "/ui/login?reason=signed_out");
    for app in [&fx.app, &restarted_app, &other_app] {
        let (status, headers, _) = send(app, get("/ui/", Some(&session))).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert!(
            headers[header::LOCATION]
                .to_str()
                .unwrap()
                .contains("reason=session_ended")
        );
    }

    // The other way round: opened on the restarted server, ended from the first one.
    let second = sign_in(&restarted_app, &fx.admin).await;
    let (status, _, page) = send(&fx.app, get("/ui/", Some(&second))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        send(&fx.app, logout(&second, &logout_token(&page))).await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        send(&restarted_app, get("/ui/", Some(&second))).await.0,
        StatusCode::SEE_OTHER
    );

    // A store that fails: the page is a 500 in HTML, with nothing of the database's message.
    let third = sign_in(&other_app, &fx.client).await;
    registry_sql(&fx, "DROP TABLE console_sessions").await;
    let (status, _, body) = send(&other_app, get("/ui/", Some(&third))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(
        body.contains("<html") && !body.contains("console_sessions"),
        "{body}"
    );
    let (status, headers, _) = send(&fx.app, get("/ui/login", None)).await;
    assert_eq!(status, StatusCode::OK, "the sign-in form needs no store");
    let token = cookie(&headers, "aurum_console_login").unwrap();
    let req = Request::post("/ui/login")
        .header(header::HOST, "aurum.test")
        .header(header::ORIGIN, "http://aurum.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("aurum_console_login={token}"))
        .body(Body::from(format!("key={}&csrf={token}", fx.admin)))
        .unwrap();
    let (status, headers, body) = send(&fx.app, req).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(cookie(&headers, "aurum_console_session").is_none());
}
