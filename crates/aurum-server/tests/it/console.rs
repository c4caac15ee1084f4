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
