//! The pages. Each handler checks the viewer's permission and model scope, calls the
//! [`aurum_service::Platform`] functions the matching `/v1` route calls, and renders.

use std::fmt::Write as _;

use aurum_service::types::{AuditQuery, JobRecord, JobState, Task, VersionRecord};
use aurum_service::{ModelRef, VersionState};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::html::{esc, facts, link, num, opt_num, page, pct, table, ts, url_part};
use crate::svg::{Band, Chart, Line, Rule};
use crate::{ConsoleError, ConsoleState, Need, Viewer};

type PageResult = Result<Response, ConsoleError>;

/// A page's query string, or a 400 page naming the problem (a repeated field, say).
fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ConsoleError> {
    q.map(|Query(q)| q).map_err(|e| {
        ConsoleError::bad_request(format!(
            "the address's query string is invalid: {}",
            e.body_text()
        ))
    })
}

const BLUE: &str = "#0b4f9c";
const ORANGE: &str = "#b35c00";
const RED: &str = "#a4000f";
const GREEN: &str = "#1b6e20";

fn render(v: &Viewer, current: &'static str, title: &str, main: &str) -> Response {
    Html(page(title, Some(&v.frame(current)), main, None)).into_response()
}

fn model_href(name: &str) -> String {
    format!("/ui/models/{}", url_part(name))
}

fn version_href(name: &str, version: u32) -> String {
    format!("/ui/models/{}/versions/{version}", url_part(name))
}

fn parse_version(s: &str) -> Result<u32, ConsoleError> {
    s.parse::<u32>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| ConsoleError::not_found(format!("`{s}` is not a version number")))
}

/// The AUC a version recorded at training, when its metrics have one.
fn metric(v: &VersionRecord, name: &str) -> Option<f64> {
    serde_json::from_str::<serde_json::Value>(&v.metrics_json)
        .ok()?
        .get(name)?
        .as_f64()
}

fn task_of(st: &ConsoleState, v: &VersionRecord) -> Option<Task> {
    st.platform
        .families()
        .get(v.kind.as_str())
        .ok()
        .map(|f| f.spec().task)
}

fn note(text: &str) -> String {
    format!("<p class=\"note\">{}</p>", esc(text))
}

fn aliases_of(aliases: &[(String, u32)], version: u32) -> String {
    aliases
        .iter()
        .filter(|(_, v)| *v == version)
        .map(|(a, _)| format!("<span class=\"badge\">{}</span>", esc(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `GET /ui/`: the models the key may see, with their latest version and aliases.
pub async fn home(State(st): State<ConsoleState>, v: Viewer) -> PageResult {
    v.require(Need::ReadModels)?;
    let mut rows = Vec::new();
    for m in st.platform.list_models().await? {
        if !v.covers(&m.name) {
            continue;
        }
        let versions = st.platform.list_versions(&m.name).await?;
        let latest = versions.iter().max_by_key(|r| r.version);
        let aliases = st.platform.list_aliases(&m.name).await?;
        rows.push(vec![
            link(&model_href(&m.name), &m.name),
            latest
                .map(|l| {
                    link(
                        &version_href(&m.name, l.version),
                        &format!("v{}", l.version),
                    )
                })
                .unwrap_or_else(|| "–".into()),
            latest
                .map(|l| esc(l.kind.as_str()))
                .unwrap_or_else(|| "–".into()),
            latest
                .map(|l| opt_num(metric(l, "auc"), 4))
                .unwrap_or_else(|| "–".into()),
            aliases
                .iter()
                .map(|(a, n)| format!("<span class=\"badge\">{}</span>&nbsp;v{n}", esc(a)))
                .collect::<Vec<_>>()
                .join(", "),
            esc(&ts(&m.created_at)),
        ]);
    }
    let mut main = String::from("<h1>Models</h1>");
    if !v.principal.policy.scopes.is_empty() {
        let _ = write!(
            main,
            "<p class=\"muted\">Your key is scoped to: {}.</p>",
            esc(&v.principal.policy.scopes.join(", "))
        );
    }
    main.push_str(&table(
        "Registered models",
        &[
            "Model",
            "Latest version",
            "Kind",
            "AUC at training",
            "Aliases",
            "Created",
        ],
        &rows,
    ));
    Ok(render(&v, "/ui/", "Models", &main))
}

/// `GET /ui/models/{name}`: versions, aliases and every alias move.
pub async fn model(
    State(st): State<ConsoleState>,
    v: Viewer,
    Path(name): Path<String>,
) -> PageResult {
    v.require(Need::ReadModels)?;
    v.require_model(&name)?;
    let m = st.platform.get_model(&name).await?;
    let versions = st.platform.list_versions(&name).await?;
    let aliases = st.platform.list_aliases(&name).await?;
    let history = st.platform.alias_history(&name).await?;
    let mut main = format!("<h1>Model {}</h1>", esc(&m.name));
    main.push_str(&facts(&[
        ("Created", esc(&ts(&m.created_at))),
        ("Created by", esc(&m.created_by)),
        ("Latest version", m.latest_version.to_string()),
        ("Versions", versions.len().to_string()),
    ]));
    let rows: Vec<Vec<String>> = versions
        .iter()
        .rev()
        .map(|r| {
            vec![
                link(&version_href(&name, r.version), &format!("v{}", r.version)),
                esc(r.kind.as_str()),
                opt_num(metric(r, "auc"), 4),
                esc(&r.dataset_name),
                esc(&r.target),
                aliases_of(&aliases, r.version),
                if r.is_archived() {
                    "archived".into()
                } else {
                    "active".into()
                },
                esc(&ts(&r.created_at)),
                esc(&r.created_by),
            ]
        })
        .collect();
    main.push_str("<h2 id=\"versions\">Versions</h2>");
    main.push_str(&table(
        "Versions, newest first",
        &[
            "Version",
            "Kind",
            "AUC at training",
            "Dataset",
            "Target",
            "Aliases",
            "Status",
            "Created",
            "By",
        ],
        &rows,
    ));
    main.push_str("<h2 id=\"aliases\">Alias history</h2>");
    let rows: Vec<Vec<String>> = history
        .iter()
        .rev()
        .map(|h| {
            vec![
                format!("<span class=\"badge\">{}</span>", esc(&h.alias)),
                h.from_version
                    .map(|f| format!("v{f}"))
                    .unwrap_or_else(|| "–".into()),
                format!("v{}", h.to_version),
                esc(&h.moved_by),
                esc(&ts(&h.moved_at)),
            ]
        })
        .collect();
    main.push_str(&table(
        "Alias moves, newest first",
        &["Alias", "From", "To", "Moved by", "When"],
        &rows,
    ));
    main.push_str("<h2 id=\"more\">More</h2><ul>");
    let _ = write!(
        main,
        "<li>{}</li>",
        link(
            &format!("{}/challenger", model_href(&name)),
            "Champion/challenger comparison"
        )
    );
    if versions
        .iter()
        .any(|r| task_of(&st, r) == Some(Task::Forecast))
        && v.may(Need::Predict)
    {
        let _ = write!(
            main,
            "<li>{}</li>",
            link(
                &format!("{}/forecast", model_href(&name)),
                "Forecast with intervals"
            )
        );
    }
    main.push_str("</ul>");
    Ok(render(&v, "/ui/", &format!("Model {name}"), &main))
}

/// `GET /ui/models/{name}/versions/{version}`: lineage, the evaluation report's figures, drift
/// and realised performance over time, and links to the full report and validation document.
pub async fn version(
    State(st): State<ConsoleState>,
    v: Viewer,
    Path((name, version)): Path<(String, String)>,
) -> PageResult {
    v.require(Need::ReadModels)?;
    v.require_model(&name)?;
    let version = parse_version(&version)?;
    let record = st.platform.get_version(&name, version).await?;
    let aliases = st.platform.list_aliases(&name).await?;
    let state = match st.platform.version_state(&record).await? {
        VersionState::Ready => "ready".to_string(),
        VersionState::Archived => "archived".to_string(),
        VersionState::Failed(reason) => format!("failed: {reason}"),
    };
    let task = task_of(&st, &record);
    let base = version_href(&name, version);
    let mut main = format!(
        "<h1>{} <span class=\"muted\">v{version}</span></h1>",
        link(&model_href(&name), &name)
    );
    main.push_str(&facts(&[
        ("Kind", esc(record.kind.as_str())),
        ("Status", esc(&state)),
        ("Aliases", {
            let a = aliases_of(&aliases, version);
            if a.is_empty() { "–".into() } else { a }
        }),
        ("Dataset", esc(&record.dataset_name)),
        ("Target", esc(&record.target)),
        ("Created", esc(&ts(&record.created_at))),
        ("Created by", esc(&record.created_by)),
        (
            "Training job",
            record
                .job_id
                .as_deref()
                .map(|j| link(&format!("/ui/jobs/{}", url_part(j)), j))
                .unwrap_or_else(|| "–".into()),
        ),
        ("aurum version", esc(&record.aurum_version)),
    ]));
    let _ = write!(
        main,
        "<p class=\"muted\">Dataset SHA-256 <code>{}</code>, artifact SHA-256 <code>{}</code>.</p>",
        esc(&record.dataset_sha256),
        esc(&record.artifact_sha256)
    );
    if task == Some(Task::Forecast) {
        if v.may(Need::Predict) {
            let _ = write!(
                main,
                "<p>{}</p>",
                link(
                    &format!("{}/forecast?version={version}", model_href(&name)),
                    "Forecast with this version"
                )
            );
        }
        return Ok(render(&v, "/ui/", &format!("{name} v{version}"), &main));
    }
    main.push_str("<h2 id=\"report\">Evaluation report</h2>");
    match st.platform.version_report(&name, version).await {
        Ok(r) => {
            let m = &r.metrics;
            main.push_str(&facts(&[
                ("AUC", num(m.auc, 4)),
                ("Gini", num(m.gini, 4)),
                ("KS", num(m.ks, 4)),
                ("PR-AUC", num(m.pr_auc, 4)),
                ("Brier score", num(m.brier, 4)),
                ("Accuracy", num(m.accuracy, 4)),
                ("Train AUC", num(r.stability.train_auc, 4)),
                ("AUC gap (train − test)", num(r.stability.auc_gap, 4)),
                ("Test rows", r.sample.n_test.to_string()),
                ("Test bad rate", pct(r.sample.bad_rate_test)),
            ]));
            let chart = Chart {
                title: "ROC curve on the held-out sample",
                x_labels: r.roc_curve.iter().map(|p| num(p.fpr, 2)).collect(),
                lines: vec![
                    Line {
                        label: "true positive rate",
                        values: r.roc_curve.iter().map(|p| p.tpr).collect(),
                        color: BLUE,
                        dashed: false,
                    },
                    Line {
                        label: "chance",
                        values: r.roc_curve.iter().map(|p| p.fpr).collect(),
                        color: ORANGE,
                        dashed: true,
                    },
                ],
                bands: vec![],
                rules: vec![],
                y_include: vec![0.0, 1.0],
            };
            main.push_str(&chart.render());
            let rows: Vec<Vec<String>> = r
                .calibration
                .iter()
                .map(|c| {
                    vec![
                        c.decile.to_string(),
                        c.count.to_string(),
                        num(c.mean_predicted, 4),
                        num(c.observed_rate, 4),
                    ]
                })
                .collect();
            main.push_str(&table(
                "Calibration by decile of predicted probability",
                &["Decile", "Rows", "Mean predicted", "Observed rate"],
                &rows,
            ));
            let mut columns: Vec<Vec<String>> = r
                .features
                .iter()
                .map(|f| vec![esc(f), "feature".into()])
                .collect();
            columns.extend(
                r.excluded_columns
                    .iter()
                    .map(|c| vec![esc(&c.column), format!("excluded: {}", esc(&c.reason))]),
            );
            main.push_str(&table(
                "Columns of the training data",
                &["Column", "Use"],
                &columns,
            ));
        }
        Err(e) => main.push_str(&note(&format!(
            "No evaluation report: {}",
            e.public_message()
        ))),
    }
    let _ = write!(
        main,
        "<ul><li>{}</li><li>{}</li></ul>",
        link(&format!("{base}/report"), "Full evaluation report"),
        link(&format!("{base}/document"), "Validation document")
    );
    if task == Some(Task::Binary) {
        main.push_str(&drift_section(&st, &name, version).await);
        main.push_str(&performance_section(&st, &name, version).await);
        let _ = write!(
            main,
            "<h2 id=\"fairness\">Fairness</h2>\
             <form class=\"search\" method=\"get\" action=\"{base}/fairness\">\
             <label for=\"f-dataset\">Dataset<input id=\"f-dataset\" name=\"dataset\" required value=\"{}\"></label>\
             <label for=\"f-attribute\">Protected attribute<input id=\"f-attribute\" name=\"attribute\" required></label>\
             <label for=\"f-cuts\">Cut points (numeric attribute)<input id=\"f-cuts\" name=\"cuts\" placeholder=\"25,40\"></label>\
             <button class=\"primary\" type=\"submit\">Show fairness table</button></form>",
            esc(&record.dataset_name)
        );
    }
    Ok(render(&v, "/ui/", &format!("{name} v{version}"), &main))
}

fn level_badge(level: &str) -> String {
    let class = match level {
        "alert" => " lvl-alert",
        "watch" => " lvl-watch",
        _ => "",
    };
    format!("<span class=\"badge{class}\">{}</span>", esc(level))
}

fn level_str<T: serde::Serialize>(level: &T) -> String {
    serde_json::to_value(level)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Drift over time: the score's and each feature's PSI per window, from the service's report.
async fn drift_section(st: &ConsoleState, name: &str, version: u32) -> String {
    let mut out = String::from("<h2 id=\"drift\">Population drift</h2>");
    let report = match st.platform.resolve(&ModelRef::version(name, version)).await {
        Ok(loaded) => st.platform.drift_report(&loaded).await,
        Err(e) => Err(e),
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            out.push_str(&note(&format!(
                "Drift is not available: {}",
                e.public_message()
            )));
            return out;
        }
    };
    let _ = write!(
        out,
        "<p class=\"muted\">Reference: {} training rows. Windows of {} s; PSI watch at {}, alert at {}; a window needs {} rows to be judged.</p>",
        report.reference_rows,
        report.window_s,
        num(report.psi_watch, 2),
        num(report.psi_alert, 2),
        report.min_rows
    );
    let windows: Vec<_> = report.windows.iter().rev().collect();
    let chart = Chart {
        title: "Score PSI against the training population, per window",
        x_labels: windows
            .iter()
            .map(|w| w.start.format("%m-%d %H:%M").to_string())
            .collect(),
        lines: vec![Line {
            label: "score PSI",
            values: windows.iter().map(|w| w.vs_reference.score.psi).collect(),
            color: BLUE,
            dashed: false,
        }],
        bands: vec![],
        rules: vec![
            Rule {
                label: "watch",
                y: report.psi_watch,
                color: ORANGE,
            },
            Rule {
                label: "alert",
                y: report.psi_alert,
                color: RED,
            },
        ],
        y_include: vec![0.0],
    };
    out.push_str(&chart.render());
    let rows: Vec<Vec<String>> = report
        .windows
        .iter()
        .map(|w| {
            vec![
                esc(&ts(&w.start)),
                if w.open {
                    "open".into()
                } else {
                    "closed".into()
                },
                w.rows.to_string(),
                num(w.vs_reference.score.psi, 4),
                level_badge(&level_str(&w.vs_reference.score.level)),
                esc(&w.alerts.join(", ")),
            ]
        })
        .collect();
    out.push_str(&table(
        "Windows, newest first",
        &["Start", "State", "Rows", "Score PSI", "Level", "Alerts"],
        &rows,
    ));
    if let Some(latest) = report.windows.first() {
        let rows: Vec<Vec<String>> = latest
            .vs_reference
            .features
            .iter()
            .map(|f| {
                vec![
                    esc(&f.name),
                    num(f.psi, 4),
                    opt_num(f.ks, 4),
                    pct(f.missing_share),
                    level_badge(&level_str(&f.level)),
                ]
            })
            .collect();
        out.push_str(&table(
            "Features in the newest window",
            &["Feature", "PSI", "KS", "Missing", "Level"],
            &rows,
        ));
    }
    out
}

/// Realised performance over time, from the outcomes recorded against predictions.
async fn performance_section(st: &ConsoleState, name: &str, version: u32) -> String {
    let mut out = String::from("<h2 id=\"performance\">Outcomes and realised performance</h2>");
    let p = match st.platform.performance(name, version).await {
        Ok(p) => p,
        Err(e) => {
            out.push_str(&note(&format!(
                "Performance is not available: {}",
                e.public_message()
            )));
            return out;
        }
    };
    if p.alert {
        out.push_str(
            "<p class=\"alert\" role=\"alert\">The realised AUC is below the alert ratio of the training AUC.</p>",
        );
    }
    out.push_str(&facts(&[
        ("Outcomes", p.overall.n.to_string()),
        ("Positives", p.overall.positives.to_string()),
        ("Bad rate", pct(p.overall.bad_rate)),
        (
            "Realised AUC",
            opt_num(p.overall.metrics.get("auc").copied(), 4),
        ),
        ("Training AUC", opt_num(p.training_auc, 4)),
        ("Alert ratio", num(p.auc_alert_ratio, 2)),
    ]));
    let chart = Chart {
        title: "Realised AUC and bad rate by scoring day",
        x_labels: p.by_day.iter().map(|d| d.day.clone()).collect(),
        lines: vec![
            Line {
                label: "AUC",
                values: p
                    .by_day
                    .iter()
                    .map(|d| d.figures.metrics.get("auc").copied().unwrap_or(f64::NAN))
                    .collect(),
                color: BLUE,
                dashed: false,
            },
            Line {
                label: "bad rate",
                values: p.by_day.iter().map(|d| d.figures.bad_rate).collect(),
                color: GREEN,
                dashed: true,
            },
        ],
        bands: vec![],
        rules: p
            .training_auc
            .map(|a| Rule {
                label: "training AUC",
                y: a,
                color: ORANGE,
            })
            .into_iter()
            .collect(),
        y_include: vec![0.0, 1.0],
    };
    out.push_str(&chart.render());
    let rows: Vec<Vec<String>> = p
        .by_day
        .iter()
        .map(|d| {
            vec![
                esc(&d.day),
                d.figures.n.to_string(),
                d.figures.positives.to_string(),
                pct(d.figures.bad_rate),
                opt_num(d.figures.metrics.get("auc").copied(), 4),
                opt_num(d.figures.metrics.get("brier").copied(), 4),
            ]
        })
        .collect();
    out.push_str(&table(
        "Outcomes by scoring day",
        &["Day", "Outcomes", "Positives", "Bad rate", "AUC", "Brier"],
        &rows,
    ));
    out
}

/// `GET …/report`: the stored evaluation report as the API's `format=html` renders it.
pub async fn report(
    State(st): State<ConsoleState>,
    v: Viewer,
    Path((name, version)): Path<(String, String)>,
) -> PageResult {
    v.require(Need::ReadModels)?;
    v.require_model(&name)?;
    let version = parse_version(&version)?;
    let report = st.platform.version_report(&name, version).await?;
    Ok(Html(aurum_service::types::report_html(&report)).into_response())
}

/// `GET …/document`: the validation document, as the API serves it.
pub async fn document(
    State(st): State<ConsoleState>,
    v: Viewer,
    Path((name, version)): Path<(String, String)>,
) -> PageResult {
    v.require(Need::ReadModels)?;
    v.require_model(&name)?;
    let version = parse_version(&version)?;
    let opts = aurum_service::DocumentOptions {
        fairness_dataset: None,
        attribute: None,
        cuts: Vec::new(),
    };
    let doc = st
        .platform
        .validation_document(&name, version, &opts)
        .await?;
    Ok(Html(doc).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct FairnessQuery {
    dataset: Option<String>,
    attribute: Option<String>,
    cuts: Option<String>,
}

/// A form field's problem, shown next to it.
struct FieldError {
    field: &'static str,
    message: String,
}

fn field_input(
    id: &str,
    name: &'static str,
    label: &str,
    value: &str,
    errors: &[FieldError],
    extra: &str,
) -> String {
    let err = errors.iter().find(|e| e.field == name);
    let (invalid, described, msg) = match err {
        Some(e) => (
            " aria-invalid=\"true\"",
            format!(" aria-describedby=\"{id}-error\""),
            format!(
                "<span class=\"error\" id=\"{id}-error\">{}</span>",
                esc(&e.message)
            ),
        ),
        None => ("", String::new(), String::new()),
    };
    format!(
        "<label for=\"{id}\">{}<input id=\"{id}\" name=\"{name}\" value=\"{}\"{invalid}{described}{extra}>{msg}</label>",
        esc(label),
        esc(value)
    )
}

fn error_summary(errors: &[FieldError]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let mut out =
        String::from("<div class=\"alert\" role=\"alert\"><p>Please correct the search:</p><ul>");
    for e in errors {
        let _ = write!(out, "<li>{}</li>", esc(&e.message));
    }
    out.push_str("</ul></div>");
    out
}

fn parse_cuts(text: &str, errors: &mut Vec<FieldError>) -> Vec<f64> {
    let mut cuts = Vec::new();
    for c in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        match c.parse::<f64>() {
            Ok(x) if x.is_finite() => cuts.push(x),
            _ => {
                errors.push(FieldError {
                    field: "cuts",
                    message: format!("cut point `{c}` is not a number"),
                });
                return Vec::new();
            }
        }
    }
    cuts
}

/// `GET …/fairness?dataset=&attribute=&cuts=`: the fairness table of a binary version, on a
/// dataset or (no dataset) on its live decisions with recorded outcomes.
pub async fn fairness(
    State(st): State<ConsoleState>,
    v: Viewer,
    Path((name, version)): Path<(String, String)>,
    q: Result<Query<FairnessQuery>, QueryRejection>,
) -> PageResult {
    v.require(Need::ReadModels)?;
    v.require_model(&name)?;
    let version = parse_version(&version)?;
    let q = query(q)?;
    let dataset = q.dataset.unwrap_or_default().trim().to_string();
    let attribute = q.attribute.unwrap_or_default().trim().to_string();
    let cuts_text = q.cuts.unwrap_or_default();
    let mut errors = Vec::new();
    if attribute.is_empty() {
        errors.push(FieldError {
            field: "attribute",
            message: "name the protected attribute (a column of the dataset, or an attribute given with the outcomes)".into(),
        });
    }
    let cuts = parse_cuts(&cuts_text, &mut errors);
    let base = version_href(&name, version);
    let mut main = format!(
        "<h1>Fairness of {} <span class=\"muted\">v{version}</span></h1>",
        link(&model_href(&name), &name)
    );
    main.push_str(&error_summary(&errors));
    let _ = write!(
        main,
        "<form class=\"search\" method=\"get\" action=\"{base}/fairness\">{}{}{}<button class=\"primary\" type=\"submit\">Show</button></form>",
        field_input(
            "f-dataset",
            "dataset",
            "Dataset (empty: live outcomes)",
            &dataset,
            &errors,
            ""
        ),
        field_input(
            "f-attribute",
            "attribute",
            "Protected attribute",
            &attribute,
            &errors,
            " required"
        ),
        field_input("f-cuts", "cuts", "Cut points", &cuts_text, &errors, ""),
    );
    if !errors.is_empty() {
        let mut resp = render(&v, "/ui/", "Fairness", &main);
        *resp.status_mut() = axum::http::StatusCode::BAD_REQUEST;
        return Ok(resp);
    }
    let loaded = st
        .platform
        .resolve(&ModelRef::version(&name, version))
        .await?;
    let result = if dataset.is_empty() {
        st.platform
            .live_fairness(&loaded, &attribute, &cuts)
            .await
            .map(|(f, _)| f)
    } else {
        st.platform
            .fairness(&loaded, &dataset, &attribute, &cuts, None)
            .await
    };
    let f = match result {
        Ok(f) => f,
        Err(e) => {
            let status = crate::status_of(&e);
            let _ = write!(
                main,
                "<p class=\"alert\" role=\"alert\">{}</p>",
                esc(&e.public_message())
            );
            let mut resp = render(&v, "/ui/", "Fairness", &main);
            *resp.status_mut() = status;
            return Ok(resp);
        }
    };
    main.push_str(&facts(&[
        (
            "Source",
            match &f.dataset {
                Some(d) => format!("dataset {}", esc(d)),
                None => "live decisions with recorded outcomes".into(),
            },
        ),
        ("Rows", f.rows.to_string()),
        ("Target", esc(&f.target)),
        ("Positive label", esc(&f.positive_label)),
        ("Reference group", esc(&f.reference_group)),
        (
            "Lowest adverse impact ratio",
            opt_num(f.min_adverse_impact_ratio, 3),
        ),
        ("Four-fifths threshold", num(f.four_fifths_threshold, 2)),
        ("Approval rate spread", num(f.approval_rate_difference, 3)),
        ("TPR spread", opt_num(f.true_positive_rate_difference, 3)),
        ("FPR spread", opt_num(f.false_positive_rate_difference, 3)),
    ]));
    let rows: Vec<Vec<String>> = f
        .groups
        .iter()
        .map(|g| {
            vec![
                esc(&g.group),
                g.n.to_string(),
                pct(g.approval_rate),
                opt_num(g.adverse_impact_ratio, 3),
                if g.passes_four_fifths {
                    "yes".into()
                } else {
                    "<strong>no</strong>".into()
                },
                opt_num(g.true_positive_rate, 3),
                opt_num(g.false_positive_rate, 3),
                opt_num(g.auc, 3),
                num(g.mean_predicted, 3),
                num(g.observed_rate, 3),
            ]
        })
        .collect();
    main.push_str(&table(
        &format!("Groups of {}", f.attribute),
        &[
            "Group",
            "Rows",
            "Approval rate",
            "Adverse impact ratio",
            "Passes 4/5",
            "TPR",
            "FPR",
            "AUC",
            "Mean predicted",
            "Observed rate",
        ],
        &rows,
    ));
    Ok(render(&v, "/ui/", "Fairness", &main))
}

/// `GET /ui/models/{name}/challenger`: the champion/challenger comparison.
pub async fn challenger(
    State(st): State<ConsoleState>,
    v: Viewer,
    Path(name): Path<String>,
) -> PageResult {
    v.require(Need::ReadModels)?;
    v.require_model(&name)?;
    let r = st.platform.challenger_report(&name).await?;
    let mut main = format!(
        "<h1>Champion/challenger: {}</h1>",
        link(&model_href(&name), &name)
    );
    match &r.challenger {
        Some(c) if c.mode == aurum_service::ChallengerMode::Split => {
            let _ = write!(
                main,
                "<p>Traffic is split: the version behind alias <span class=\"badge\">{}</span> answers {} of the requests addressed to the champion.</p>",
                esc(&c.alias),
                pct(c.share)
            );
        }
        Some(c) => {
            let _ = write!(
                main,
                "<p>The champion's predictions are shadowed by the version behind alias <span class=\"badge\">{}</span> ({} of requests).</p>",
                esc(&c.alias),
                pct(c.share)
            );
        }
        None => main.push_str(&note("No challenger is configured for this model.")),
    }
    let rows: Vec<Vec<String>> = r
        .comparisons
        .iter()
        .map(|c| {
            vec![
                format!("v{}", c.champion_version),
                format!("v{}", c.challenger_version),
                c.records.to_string(),
                num(c.champion_mean_probability, 4),
                num(c.challenger_mean_probability, 4),
                num(c.score_psi, 4),
                pct(c.decision_agreement),
                c.outcomes.to_string(),
                opt_num(c.champion_auc, 4),
                opt_num(c.challenger_auc, 4),
            ]
        })
        .collect();
    main.push_str(&table(
        "Comparisons on the same records",
        &[
            "Champion",
            "Challenger",
            "Records",
            "Champion mean p",
            "Challenger mean p",
            "Score PSI",
            "Decision agreement",
            "Outcomes",
            "Champion AUC",
            "Challenger AUC",
        ],
        &rows,
    ));
    if !r.arms.is_empty() {
        let rows: Vec<Vec<String>> = r
            .arms
            .iter()
            .map(|a| {
                vec![
                    format!("v{}", a.version),
                    esc(a.alias.as_deref().unwrap_or("")),
                    a.outcomes.n.to_string(),
                    num(a.outcomes.bad_rate, 4),
                    opt_num(a.outcomes.metrics.get("auc").copied(), 4),
                ]
            })
            .collect();
        main.push_str(&table(
            "Split arms on their own traffic's outcomes",
            &["Version", "Alias", "Outcomes", "Bad rate", "Realised AUC"],
            &rows,
        ));
    }
    for c in &r.comparisons {
        let rows: Vec<Vec<String>> = c
            .decisions
            .iter()
            .flat_map(|(champ, by)| {
                by.iter()
                    .map(move |(chall, n)| vec![esc(champ), esc(chall), n.to_string()])
            })
            .collect();
        main.push_str(&table(
            &format!(
                "Decisions: champion v{} against challenger v{}",
                c.champion_version, c.challenger_version
            ),
            &["Champion decision", "Challenger decision", "Records"],
            &rows,
        ));
    }
    Ok(render(&v, "/ui/", &format!("{name} challenger"), &main))
}

#[derive(Debug, Default, Deserialize)]
pub struct ForecastQuery {
    horizon: Option<String>,
    version: Option<String>,
}

/// `GET /ui/models/{name}/forecast?horizon=&version=`: a registered forecasting model's forecast
/// with its 80 % and 95 % intervals (computed and audited as through the API).
pub async fn forecast(
    State(st): State<ConsoleState>,
    v: Viewer,
    Path(name): Path<String>,
    q: Result<Query<ForecastQuery>, QueryRejection>,
) -> PageResult {
    v.require(Need::Predict)?;
    v.require_model(&name)?;
    let q = query(q)?;
    let (horizon_text, version_text) = (q.horizon, q.version);
    let horizon_text = horizon_text.unwrap_or_else(|| "12".into());
    let version_text = version_text.unwrap_or_default();
    let mut errors = Vec::new();
    let horizon = match horizon_text.trim().parse::<usize>() {
        Ok(h) if (1..=1000).contains(&h) => h,
        _ => {
            errors.push(FieldError {
                field: "horizon",
                message: format!("horizon `{horizon_text}` must be a whole number from 1 to 1000"),
            });
            0
        }
    };
    let version = if version_text.trim().is_empty() {
        None
    } else {
        match version_text.trim().parse::<u32>() {
            Ok(x) if x > 0 => Some(x),
            _ => {
                errors.push(FieldError {
                    field: "version",
                    message: format!(
                        "version `{version_text}` must be a version number, or empty for the champion"
                    ),
                });
                None
            }
        }
    };
    let mut main = format!("<h1>Forecast: {}</h1>", link(&model_href(&name), &name));
    main.push_str(&error_summary(&errors));
    let _ = write!(
        main,
        "<form class=\"search\" method=\"get\" action=\"{}/forecast\">{}{}<button class=\"primary\" type=\"submit\">Forecast</button></form>",
        model_href(&name),
        field_input(
            "fc-horizon",
            "horizon",
            "Horizon (steps)",
            &horizon_text,
            &errors,
            " inputmode=\"numeric\""
        ),
        field_input(
            "fc-version",
            "version",
            "Version (empty: champion)",
            &version_text,
            &errors,
            " inputmode=\"numeric\""
        ),
    );
    if !errors.is_empty() {
        let mut resp = render(&v, "/ui/", "Forecast", &main);
        *resp.status_mut() = axum::http::StatusCode::BAD_REQUEST;
        return Ok(resp);
    }
    let (used, out) = st
        .platform
        .forecast_registered(
            &v.ctx(),
            &name,
            version,
            "champion",
            Vec::new(),
            horizon,
            vec![80.0, 95.0],
        )
        .await?;
    main.push_str(&facts(&[
        (
            "Version",
            link(&version_href(&name, used), &format!("v{used}")),
        ),
        ("Method", esc(&out.model)),
        ("Frequency", esc(&out.frequency)),
        ("Last observation", esc(&out.last_timestamp)),
        ("AICc", opt_num(out.aicc, 2)),
    ]));
    let interval = |level: f64| {
        out.intervals
            .iter()
            .find(|(l, _, _)| (*l - level).abs() < 1e-9)
    };
    let mut bands = Vec::new();
    for (level, label, color) in [(95.0, "95% interval", BLUE), (80.0, "80% interval", BLUE)] {
        if let Some((_, lo, hi)) = interval(level) {
            bands.push(Band {
                label,
                lower: lo.clone(),
                upper: hi.clone(),
                color,
            });
        }
    }
    let chart = Chart {
        title: "Point forecast with 80% and 95% intervals",
        x_labels: out.timestamps.clone(),
        lines: vec![Line {
            label: "forecast",
            values: out.mean.clone(),
            color: BLUE,
            dashed: false,
        }],
        bands,
        rules: vec![],
        y_include: vec![],
    };
    main.push_str(&chart.render());
    let rows: Vec<Vec<String>> = out
        .timestamps
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let bound = |level: f64, upper: bool| {
                interval(level)
                    .and_then(|(_, lo, hi)| if upper { hi.get(i) } else { lo.get(i) })
                    .map(|x| num(*x, 2))
                    .unwrap_or_else(|| "–".into())
            };
            vec![
                esc(t),
                out.mean.get(i).map(|x| num(*x, 2)).unwrap_or_default(),
                bound(80.0, false),
                bound(80.0, true),
                bound(95.0, false),
                bound(95.0, true),
            ]
        })
        .collect();
    main.push_str(&table(
        "Forecast",
        &[
            "Time", "Forecast", "80% low", "80% high", "95% low", "95% high",
        ],
        &rows,
    ));
    main.push_str(&note(
        "Each forecast shown here is computed on request and recorded in the audit log as a \
         `forecast` event, as through the API.",
    ));
    Ok(render(&v, "/ui/", &format!("Forecast {name}"), &main))
}

fn job_state_badge(s: JobState) -> String {
    let class = match s {
        JobState::Failed => " lvl-alert",
        JobState::Running | JobState::Queued => " lvl-watch",
        _ => "",
    };
    format!("<span class=\"badge{class}\">{}</span>", s.as_str())
}

fn progress(j: &JobRecord) -> String {
    let p = j.progress.clamp(0.0, 1.0);
    format!(
        "<progress max=\"1\" value=\"{p:.3}\" aria-label=\"progress of job {}\"></progress> {}",
        esc(&j.id),
        pct(p)
    )
}

/// `GET /ui/jobs`: recent training jobs with their progress (refreshing while one is active).
pub async fn jobs(State(st): State<ConsoleState>, v: Viewer) -> PageResult {
    v.require(Need::Training)?;
    let jobs: Vec<JobRecord> = st
        .platform
        .list_jobs(200)
        .await?
        .into_iter()
        .filter(|j| v.covers(&j.model))
        .collect();
    let active = jobs
        .iter()
        .any(|j| matches!(j.state, JobState::Queued | JobState::Running));
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                link(
                    &format!("/ui/jobs/{}", url_part(&j.id)),
                    &j.id.chars().take(8).collect::<String>(),
                ),
                if v.covers(&j.model) {
                    link(&model_href(&j.model), &j.model)
                } else {
                    esc(&j.model)
                },
                esc(j.kind.as_str()),
                job_state_badge(j.state),
                progress(j),
                esc(&j.stage),
                j.result_version
                    .map(|r| link(&version_href(&j.model, r), &format!("v{r}")))
                    .unwrap_or_else(|| "–".into()),
                esc(&ts(&j.created_at)),
                esc(&j.created_by),
            ]
        })
        .collect();
    let mut main = String::from("<h1>Training jobs</h1>");
    if active {
        main.push_str(&note(
            "A job is running: this page refreshes every 5 seconds.",
        ));
    }
    main.push_str(&table(
        "Recent training jobs, newest first",
        &[
            "Job", "Model", "Kind", "State", "Progress", "Stage", "Result", "Created", "By",
        ],
        &rows,
    ));
    Ok(Html(page(
        "Training jobs",
        Some(&v.frame("/ui/jobs")),
        &main,
        active.then_some(5),
    ))
    .into_response())
}

/// `GET /ui/jobs/{id}`: one training job.
pub async fn job(State(st): State<ConsoleState>, v: Viewer, Path(id): Path<String>) -> PageResult {
    v.require(Need::Training)?;
    let j = st.platform.get_job(&id).await?;
    v.require_model(&j.model)?;
    let mut main = format!("<h1>Training job <code>{}</code></h1>", esc(&j.id));
    main.push_str(&facts(&[
        ("Model", link(&model_href(&j.model), &j.model)),
        ("Kind", esc(j.kind.as_str())),
        ("State", job_state_badge(j.state)),
        ("Progress", progress(&j)),
        ("Stage", esc(&j.stage)),
        ("Dataset", esc(&j.dataset)),
        ("Target", esc(&j.target)),
        (
            "Result",
            j.result_version
                .map(|r| link(&version_href(&j.model, r), &format!("v{r}")))
                .unwrap_or_else(|| "–".into()),
        ),
        ("Created", esc(&ts(&j.created_at))),
        (
            "Started",
            j.started_at
                .map(|t| esc(&ts(&t)))
                .unwrap_or_else(|| "–".into()),
        ),
        (
            "Finished",
            j.finished_at
                .map(|t| esc(&ts(&t)))
                .unwrap_or_else(|| "–".into()),
        ),
        ("By", esc(&j.created_by)),
    ]));
    if let Some(e) = &j.error {
        let _ = write!(main, "<p class=\"alert\" role=\"alert\">{}</p>", esc(e));
    }
    let _ = write!(
        main,
        "<h2>Parameters</h2><pre>{}</pre>",
        esc(&j.params_json)
    );
    let active = matches!(j.state, JobState::Queued | JobState::Running);
    Ok(Html(page(
        "Training job",
        Some(&v.frame("/ui/jobs")),
        &main,
        active.then_some(5),
    ))
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditSearch {
    event: Option<String>,
    model: Option<String>,
    request_id: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

/// The validated audit search.
struct AuditFilter {
    query: AuditQuery,
    request_id: Option<String>,
}

fn validate_audit(s: &AuditSearch, errors: &mut Vec<FieldError>) -> AuditFilter {
    let text = |o: &Option<String>| o.as_deref().map(str::trim).unwrap_or_default().to_string();
    let (event, model, rid, after, limit) = (
        text(&s.event),
        text(&s.model),
        text(&s.request_id),
        text(&s.after),
        text(&s.limit),
    );
    let sane = |v: &str, extra: &str| {
        v.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    if !event.is_empty() && (event.len() > 64 || !sane(&event, "._-")) {
        errors.push(FieldError {
            field: "event",
            message: "event: letters, digits, '.', '_' and '-' only (e.g. prediction, alias.move), at most 64 characters".into(),
        });
    }
    if !model.is_empty() && (model.len() > 128 || !sane(&model, "._-")) {
        errors.push(FieldError {
            field: "model",
            message:
                "model: a model name (letters, digits, '.', '_' and '-'), at most 128 characters"
                    .into(),
        });
    }
    if !rid.is_empty() && (rid.len() > 128 || !sane(&rid, "-_.:")) {
        errors.push(FieldError {
            field: "request_id",
            message:
                "request id: letters, digits, '-', '_', '.' and ':' only, at most 128 characters"
                    .into(),
        });
    }
    let after_seq = if after.is_empty() {
        0
    } else {
        after.parse::<u64>().unwrap_or_else(|_| {
            errors.push(FieldError {
                field: "after",
                message: format!("after sequence: `{after}` is not a whole number ≥ 0"),
            });
            0
        })
    };
    let limit_n = if limit.is_empty() {
        100
    } else {
        match limit.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                errors.push(FieldError {
                    field: "limit",
                    message: format!("limit: `{limit}` must be a whole number from 1 to 1000"),
                });
                100
            }
        }
    };
    AuditFilter {
        query: AuditQuery {
            after_seq,
            limit: if rid.is_empty() { limit_n } else { 1000 },
            event: (!event.is_empty()).then_some(event),
            model: (!model.is_empty()).then_some(model),
        },
        request_id: (!rid.is_empty()).then_some(rid),
    }
}

/// `GET /ui/audit`: search the audit log by event, model, request id and sequence.
pub async fn audit(
    State(st): State<ConsoleState>,
    v: Viewer,
    q: Result<Query<AuditSearch>, QueryRejection>,
) -> PageResult {
    v.require(Need::ReadAudit)?;
    let s = query(q)?;
    let mut errors = Vec::new();
    let filter = validate_audit(&s, &mut errors);
    let value = |o: &Option<String>| o.clone().unwrap_or_default();
    let mut main = String::from("<h1>Audit log</h1>");
    main.push_str(&error_summary(&errors));
    let _ = write!(
        main,
        "<form class=\"search\" method=\"get\" action=\"/ui/audit\" role=\"search\">{}{}{}{}{}<button class=\"primary\" type=\"submit\">Search</button></form>",
        field_input(
            "a-event",
            "event",
            "Event",
            &value(&s.event),
            &errors,
            " placeholder=\"prediction\""
        ),
        field_input("a-model", "model", "Model", &value(&s.model), &errors, ""),
        field_input(
            "a-request",
            "request_id",
            "Request id",
            &value(&s.request_id),
            &errors,
            ""
        ),
        field_input(
            "a-after",
            "after",
            "After sequence",
            &value(&s.after),
            &errors,
            " inputmode=\"numeric\""
        ),
        field_input(
            "a-limit",
            "limit",
            "Limit (1–1000)",
            &value(&s.limit),
            &errors,
            " inputmode=\"numeric\" placeholder=\"100\""
        ),
    );
    if !errors.is_empty() {
        let mut resp = render(&v, "/ui/audit", "Audit log", &main);
        *resp.status_mut() = axum::http::StatusCode::BAD_REQUEST;
        return Ok(resp);
    }
    if let Some(m) = &filter.query.model {
        v.require_model(m)?;
    }
    let scoped = !v.principal.policy.scopes.is_empty();
    let records: Vec<_> = st
        .platform
        .audit_list(filter.query.clone())
        .await?
        .into_iter()
        // A scoped key sees only the records about its models.
        .filter(|r| !scoped || r.model.as_deref().is_some_and(|m| v.covers(m)))
        .filter(|r| {
            filter
                .request_id
                .as_ref()
                .is_none_or(|id| r.request_id.as_deref() == Some(id.as_str()))
        })
        .collect();
    if filter.request_id.is_some() {
        main.push_str(&note(
            "Request ids are matched among the first 1000 records the other filters select; \
             narrow with After sequence to search further.",
        ));
    }
    if scoped {
        main.push_str(&note(
            "Your key is scoped: only records about the models in its scope are shown.",
        ));
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let mut details = r.details.to_string();
            if details.chars().count() > 400 {
                details = details.chars().take(400).collect::<String>() + "…";
            }
            vec![
                r.seq.to_string(),
                esc(&ts(&r.ts)),
                esc(&r.event),
                esc(&r.actor),
                r.request_id
                    .as_deref()
                    .map(|id| format!("<code>{}</code>", esc(id)))
                    .unwrap_or_else(|| "–".into()),
                match (&r.model, r.version) {
                    (Some(m), Some(ver)) if v.covers(m) => {
                        link(&version_href(m, ver), &format!("{m} v{ver}"))
                    }
                    (Some(m), _) => esc(m),
                    _ => "–".into(),
                },
                format!("<code>{}</code>", esc(&details)),
            ]
        })
        .collect();
    main.push_str(&table(
        &format!("{} records", records.len()),
        &[
            "Seq",
            "Time",
            "Event",
            "Actor",
            "Request id",
            "Model",
            "Details",
        ],
        &rows,
    ));
    if let Some(last) = records.last()
        && records.len() as u32 >= filter.query.limit
    {
        let mut next = format!("/ui/audit?after={}", last.seq);
        for (k, val) in [
            ("event", &filter.query.event),
            ("model", &filter.query.model),
            ("request_id", &filter.request_id),
        ] {
            if let Some(val) = val {
                let _ = write!(next, "&{k}={}", url_part(val));
            }
        }
        let _ = write!(main, "<p>{}</p>", link(&next, "Next records"));
    }
    Ok(render(&v, "/ui/audit", "Audit log", &main))
}

/// Unknown `/ui/…` paths: an HTML 404.
pub async fn not_found() -> ConsoleError {
    ConsoleError::not_found("there is no console page at this address")
}
