//! The console router in process, over a real platform in a temporary data dir: sign-in with
//! good, bad, expired and revoked keys, CSRF refusals, role and scope filtering, escaping of
//! user-controlled names, and the audit search's validation.

use std::time::Duration;

use aurum_console::{ConsoleOptions, Need};
use aurum_service::types::{FamilyName, JobState};
use aurum_service::{CallContext, Config, KeyPolicy, Platform, Role, TrainRequest};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The API's matrix (aurum-server `auth::allows`), for the console alone.
fn allows(role: Role, need: Need) -> bool {
    match role {
        Role::Admin => true,
        Role::Analyst => matches!(need, Need::ReadModels | Need::Training | Need::ReadAudit),
        Role::Client => matches!(need, Need::ReadModels | Need::Predict),
    }
}

/// A feature whose name is markup: column names are free text in an imported CSV.
const EVIL: &str = "<script>alert(\"x\")</script>";

struct Fx {
    _dir: tempfile::TempDir,
    platform: Platform,
    app: Router,
    admin: String,
    analyst: String,
    client: String,
}

/// A small deterministic binary dataset: `income`, the markup-named feature, `default`.
fn csv() -> Vec<u8> {
    let mut out = format!("income,\"{}\",default\n", EVIL.replace('"', "\"\""));
    let mut s: u64 = 42;
    for i in 0..400 {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let noise = (s >> 33) % 100;
        let income = 20 + (i * 37) % 80;
        let other = (s >> 20) % 10;
        let bad = u8::from((income as u64 + noise) < 75);
        out.push_str(&format!("{income},{other},{bad}\n"));
    }
    out.into_bytes()
}

async fn fixture() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    let platform = Platform::open(config).await.unwrap();
    let ctx = CallContext::cli();
    let key = |name: &'static str, role| {
        let p = platform.clone();
        async move {
            p.create_key(&CallContext::cli(), name, role)
                .await
                .unwrap()
                .1
        }
    };
    let admin = key("admin", Role::Admin).await;
    let analyst = key("analyst", Role::Analyst).await;
    let client = key("client", Role::Client).await;
    platform
        .import_dataset(&ctx, "loans", csv(), Default::default(), Default::default())
        .await
        .unwrap();
    let job = platform
        .submit_training(
            &ctx,
            TrainRequest {
                dataset: "loans".into(),
                target: "default".into(),
                kind: FamilyName::new("logistic").unwrap(),
                model: "credit".into(),
                params: Default::default(),
                positive_label: None,
                alias: Some("champion".into()),
                date_column: None,
                text_columns: None,
                text_buckets: None,
            },
        )
        .await
        .unwrap();
    for _ in 0..600 {
        let j = platform.get_job(&job.id).await.unwrap();
        if j.state.is_terminal() {
            assert_eq!(j.state, JobState::Succeeded, "{:?}", j.error);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let app = aurum_console::router::<()>(platform.clone(), ConsoleOptions::new(allows));
    Fx {
        _dir: dir,
        platform,
        app,
        admin,
        analyst,
        client,
    }
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Resp {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body =
        String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into_owned();
    Resp {
        status,
        headers,
        body,
    }
}

async fn get(app: &Router, uri: &str, session: Option<&str>) -> Resp {
    let mut req = Request::get(uri).header(header::HOST, "console.test");
    if let Some(s) = session {
        req = req.header(header::COOKIE, format!("aurum_console_session={s}"));
    }
    send(app, req.body(Body::empty()).unwrap()).await
}

fn set_cookie(r: &Resp, name: &str) -> Option<String> {
    r.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

fn cookie_value(set: &str) -> String {
    set.split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_string())
        .unwrap()
}

/// The login form's token cookie and hidden field.
async fn login_token(app: &Router) -> String {
    let page = get(app, "/ui/login", None).await;
    assert_eq!(page.status, StatusCode::OK);
    let token = cookie_value(&set_cookie(&page, "aurum_console_login").unwrap());
    assert!(
        page.body
            .contains(&format!("name=\"csrf\" value=\"{token}\"")),
        "the form carries the cookie's token"
    );
    token
}

fn form(body: &[(&str, &str)]) -> String {
    body.iter()
        .map(|(k, v)| format!("{k}={}", aurum_console::html::url_part(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn post_login(app: &Router, key: &str, token: &str, origin: Option<&str>) -> Resp {
    let mut req = Request::post("/ui/login")
        .header(header::HOST, "console.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("aurum_console_login={token}"));
    if let Some(o) = origin {
        req = req.header(header::ORIGIN, o);
    }
    let body = form(&[("key", key), ("csrf", token), ("next", "/ui/")]);
    send(app, req.body(Body::from(body)).unwrap()).await
}

/// Signs in and returns the session cookie's value.
async fn sign_in(app: &Router, key: &str) -> String {
    let token = login_token(app).await;
    let r = post_login(app, key, &token, Some("http://console.test")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let set = set_cookie(&r, "aurum_console_session").expect("a session cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/ui")
    );
    assert!(!set.contains("Secure"), "plain HTTP here");
    let id = cookie_value(&set);
    assert!(
        !id.contains(key) && !key.contains(&id),
        "the cookie is not the key"
    );
    assert_eq!(id.len(), 64);
    id
}

#[tokio::test]
async fn sign_in_with_good_bad_and_expired_keys() {
    let fx = fixture().await;
    // Not signed in: pages redirect to the sign-in page, remembering where to go.
    let r = get(&fx.app, "/ui/models/credit", None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers[header::LOCATION],
        "/ui/login?next=%2Fui%2Fmodels%2Fcredit"
    );
    assert!(
        r.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );

    // A bad key: 401, an HTML page saying so, no session.
    let token = login_token(&fx.app).await;
    let r = post_login(&fx.app, "aurum_nope_nope", &token, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("not valid"), "{}", r.body);
    assert!(set_cookie(&r, "aurum_console_session").is_none());

    // A good key: the models page with the model and its champion.
    let session = sign_in(&fx.app, &fx.admin).await;
    let r = get(&fx.app, "/ui/", Some(&session)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("href=\"/ui/models/credit\""));
    assert!(r.body.contains("champion"));
    assert!(r.body.contains("Skip to main content"));
    assert!(r.body.contains("<nav aria-label=\"Main\">"));

    // An expired key is refused at sign-in with the reason.
    let (_, soon) = fx
        .platform
        .create_key_with_policy(
            &CallContext::cli(),
            "soon",
            Role::Admin,
            KeyPolicy {
                expires_at: Some(chrono::Utc::now() + chrono::Duration::milliseconds(1500)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let live = sign_in(&fx.app, &soon).await;
    assert_eq!(
        get(&fx.app, "/ui/", Some(&live)).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1700)).await;
    // Its session ends with it...
    let r = get(&fx.app, "/ui/", Some(&live)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.headers[header::LOCATION]
            .to_str()
            .unwrap()
            .contains("reason=")
    );
    // ...and signing in again says it expired.
    let token = login_token(&fx.app).await;
    let r = post_login(&fx.app, &soon, &token, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("expired"), "{}", r.body);

    // A revoked key ends its sessions at once.
    let (_, gone) = fx
        .platform
        .create_key(&CallContext::cli(), "gone", Role::Analyst)
        .await
        .unwrap();
    let s = sign_in(&fx.app, &gone).await;
    fx.platform
        .revoke_key(&CallContext::cli(), "gone")
        .await
        .unwrap();
    let r = get(&fx.app, "/ui/", Some(&s)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.headers[header::LOCATION]
            .to_str()
            .unwrap()
            .contains("key_revoked")
    );

    // An unknown session id is not a session.
    let r = get(&fx.app, "/ui/", Some(&"0".repeat(64))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn posts_without_the_token_or_from_another_origin_are_refused() {
    let fx = fixture().await;
    // No token cookie.
    let req = Request::post("/ui/login")
        .header(header::HOST, "console.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form(&[("key", &fx.admin), ("csrf", "x")])))
        .unwrap();
    let r = send(&fx.app, req).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("<html"), "an HTML page");
    // A token that does not match its cookie.
    let token = login_token(&fx.app).await;
    let req = Request::post("/ui/login")
        .header(header::HOST, "console.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("aurum_console_login={token}"))
        .body(Body::from(form(&[("key", &fx.admin), ("csrf", "forged")])))
        .unwrap();
    assert_eq!(send(&fx.app, req).await.status, StatusCode::FORBIDDEN);
    // The right token from another origin.
    let r = post_login(&fx.app, &fx.admin, &token, Some("https://evil.example")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(set_cookie(&r, "aurum_console_session").is_none());

    // Sign-out needs the session's token.
    let session = sign_in(&fx.app, &fx.admin).await;
    let page = get(&fx.app, "/ui/", Some(&session)).await;
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let logout = |token: &str, origin: &str| {
        Request::post("/ui/logout")
            .header(header::HOST, "console.test")
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, format!("aurum_console_session={session}"))
            .body(Body::from(form(&[("csrf", token)])))
            .unwrap()
    };
    let r = send(&fx.app, logout("wrong", "http://console.test")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&fx.app, logout(&csrf, "http://evil.example")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        get(&fx.app, "/ui/", Some(&session)).await.status,
        StatusCode::OK
    );
    let r = send(&fx.app, logout(&csrf, "http://console.test")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        set_cookie(&r, "aurum_console_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        get(&fx.app, "/ui/", Some(&session)).await.status,
        StatusCode::SEE_OTHER,
        "the session is gone on the server"
    );
}

#[tokio::test]
async fn roles_and_scopes_filter_what_is_shown() {
    let fx = fixture().await;
    let (_, scoped) = fx
        .platform
        .create_key_with_policy(
            &CallContext::cli(),
            "scoped",
            Role::Analyst,
            KeyPolicy {
                scopes: vec!["fraud-*".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let s = sign_in(&fx.app, &scoped).await;
    let r = get(&fx.app, "/ui/", Some(&s)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains("/ui/models/credit"), "{}", r.body);
    assert!(r.body.contains("fraud-*"));
    let r = get(&fx.app, "/ui/models/credit", Some(&s)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("<html"));
    assert_eq!(
        get(&fx.app, "/ui/models/credit/versions/1", Some(&s))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // The audit log shows none of the credit model's records, the jobs page none of its jobs.
    let r = get(&fx.app, "/ui/audit?limit=1000", Some(&s)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains("credit v1"), "{}", r.body);
    assert!(r.body.contains("0 records"));
    let r = get(&fx.app, "/ui/jobs", Some(&s)).await;
    assert!(!r.body.contains("/ui/models/credit"));

    // An unscoped analyst sees them.
    let a = sign_in(&fx.app, &fx.analyst).await;
    let r = get(&fx.app, "/ui/audit?model=credit", Some(&a)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("credit v1"), "{}", r.body);
    let r = get(&fx.app, "/ui/jobs", Some(&a)).await;
    assert!(r.body.contains("/ui/models/credit"));
    assert!(r.body.contains("100.0%"), "a finished job's progress");
    // Roles: an analyst may not forecast (the API's predict permission); a client may not read
    // the audit log or the jobs, and its navigation does not offer them.
    assert_eq!(
        get(&fx.app, "/ui/models/credit/forecast", Some(&a))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let c = sign_in(&fx.app, &fx.client).await;
    assert_eq!(
        get(&fx.app, "/ui/audit", Some(&c)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&fx.app, "/ui/jobs", Some(&c)).await.status,
        StatusCode::FORBIDDEN
    );
    let r = get(&fx.app, "/ui/", Some(&c)).await;
    assert!(!r.body.contains("href=\"/ui/audit\""));
    assert!(r.body.contains("/ui/models/credit"));
}

#[tokio::test]
async fn user_controlled_text_is_escaped() {
    let fx = fixture().await;
    let s = sign_in(&fx.app, &fx.admin).await;
    // The markup-named feature appears in the version page's drift/feature tables, escaped.
    let r = get(&fx.app, "/ui/models/credit/versions/1", Some(&s)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!r.body.contains("<script"), "{}", r.body);
    assert!(
        r.body
            .contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
        "the feature is listed, escaped"
    );
    // The report's AUC as the service stores it.
    let report = fx.platform.version_report("credit", 1).await.unwrap();
    assert!(r.body.contains(&format!("{:.4}", report.metrics.auc)));
    // The audit search echoes its inputs escaped, with a clear message and a 400.
    let uri = format!(
        "/ui/audit?event={}&limit=5000",
        aurum_console::html::url_part(EVIL)
    );
    let r = get(&fx.app, &uri, Some(&s)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(!r.body.contains("<script"), "{}", r.body);
    assert!(r.body.contains("&lt;script&gt;"));
    assert!(
        r.body
            .contains("limit: `5000` must be a whole number from 1 to 1000")
    );
    assert!(r.body.contains("aria-invalid=\"true\""));
    // The training job's page shows its parameters and the job of the model, escaped too.
    let r = get(&fx.app, "/ui/jobs", Some(&s)).await;
    assert!(!r.body.contains("<script"));
    // The fairness form validates its inputs.
    let r = get(
        &fx.app,
        "/ui/models/credit/versions/1/fairness?dataset=loans&attribute=&cuts=1,x",
        Some(&s),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("cut point `x` is not a number"));
    // A fairness table on the markup-named attribute, which is a column of the dataset.
    let uri = format!(
        "/ui/models/credit/versions/1/fairness?dataset=loans&attribute={}&cuts=5",
        aurum_console::html::url_part(EVIL)
    );
    let r = get(&fx.app, &uri, Some(&s)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!r.body.contains("<script"), "{}", r.body);
    assert!(r.body.contains("Adverse impact ratio"));
    assert!(r.body.contains("Groups of &lt;script&gt;"));
    // Unknown pages and versions are HTML 404s.
    let r = get(&fx.app, "/ui/models/credit/versions/99", Some(&s)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("<html"));
    assert_eq!(
        get(&fx.app, "/ui/nowhere", Some(&s)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn sessions_are_shared_by_every_process_on_the_registry() {
    let fx = fixture().await;
    // A second process's console on the same data dir: it knows the first one's sessions.
    let other = Platform::open(Config {
        data_dir: fx._dir.path().join("data"),
        ..Default::default()
    })
    .await
    .unwrap();
    let other_app = aurum_console::router::<()>(other, ConsoleOptions::new(allows));
    let session = sign_in(&fx.app, &fx.analyst).await;
    let r = get(&other_app, "/ui/jobs", Some(&session)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("analyst"), "the session's key: {}", r.body);
    let csrf = r
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    // Signed out there, it ends here too.
    let req = Request::post("/ui/logout")
        .header(header::HOST, "console.test")
        .header(header::ORIGIN, "http://console.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("aurum_console_session={session}"))
        .body(Body::from(form(&[("csrf", &csrf)])))
        .unwrap();
    assert_eq!(send(&other_app, req).await.status, StatusCode::SEE_OTHER);
    let r = get(&fx.app, "/ui/", Some(&session)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.headers[header::LOCATION]
            .to_str()
            .unwrap()
            .contains("session_ended")
    );
}
