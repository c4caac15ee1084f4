//! The report as one standalone HTML page.
//!
//! Why plain HTML with inline SVG and no JavaScript: the page is archived with the model and
//! opened years later by auditors, attached to e-mails, printed for committees and viewed in
//! locked-down browsers. It must render the same everywhere with no network, no script execution
//! and no library versions to go stale, so every plot is static SVG computed here and every style
//! is in one `<style>` block. Every text that comes from the report (model name, feature names in
//! `details`, …) goes through [`escape`], since it may come from user data.

use std::fmt::Write;

use serde_json::Value;

use super::{CreditReport, OVERFITTING_GAP, ScoreKind, SplitMethod, svg};

/// Rows shown per `details` table; the JSON report keeps them all.
const MAX_DETAIL_ROWS: usize = 500;

const CSS: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f4f6; color: #111827;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 28px 32px 40px; }
header h1 { font-size: 24px; margin: 0 0 4px; letter-spacing: -0.01em; }
header p { margin: 0; color: #4b5563; }
section { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 18px 22px; margin-top: 18px; }
h2 { font-size: 16px; margin: 0 0 12px; }
h3 { font-size: 14px; margin: 18px 0 8px; }
h4, h5, h6 { font-size: 13px; margin: 14px 0 6px; }
.kpis { display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px; margin-top: 18px; }
.kpi { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 12px 14px; }
.kpi .label { font-size: 11.5px; text-transform: uppercase; letter-spacing: 0.05em; color: #6b7280; }
.kpi .value { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; margin: 2px 0; }
.kpi .note { font-size: 12px; color: #4b5563; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; }
.ok { background: #dcfce7; color: #166534; }
.warn { background: #fef3c7; color: #92400e; }
.alert { background: #fee2e2; color: #991b1b; }
.plots { display: grid; grid-template-columns: 1fr 1fr; gap: 22px 30px; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: 6px; }
figure p { margin: 6px 0 0; color: #4b5563; font-size: 12.5px; }
svg { width: 100%; height: auto; display: block; }
.two { display: grid; grid-template-columns: 3fr 2fr; gap: 30px; align-items: start; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; border-bottom: 1px solid #e5e7eb; text-align: left; vertical-align: top; }
th { background: #f9fafb; font-weight: 600; color: #374151; font-size: 12.5px; }
td.num, th.num { text-align: right; }
td.help { color: #6b7280; font-size: 12.5px; }
table.kv { width: auto; min-width: 420px; }
table.kv th { width: 220px; }
table.confusion td, table.confusion th { text-align: center; }
table.confusion td.hit { background: #eff6ff; font-weight: 600; }
.scroll { overflow-x: auto; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.muted { color: #6b7280; }
footer { color: #6b7280; font-size: 12px; margin-top: 18px; text-align: center; }
@media (max-width: 900px) {
  .plots, .two { grid-template-columns: 1fr; }
  .kpis { grid-template-columns: repeat(3, 1fr); }
}
@media print {
  body { background: #fff; }
  section, .kpi { break-inside: avoid; }
}
"#;

/// Escapes text for HTML element content and quoted attribute values.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

fn f3(v: f64) -> String {
    format!("{v:.3}")
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// `12345` → `12,345`.
fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `(class, text)` of the PSI rule of thumb.
fn psi_band(psi: f64) -> (&'static str, &'static str) {
    if psi < 0.1 {
        ("ok", "stable")
    } else if psi <= 0.25 {
        ("warn", "moderate shift")
    } else {
        ("alert", "significant shift")
    }
}

pub(super) fn render(r: &CreditReport) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let title = format!(
        "Credit model evaluation — {} {}",
        r.model.name, r.model.version
    );
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        escape(&title)
    );
    let _ = writeln!(
        o,
        "<header><h1>{}</h1><p>Model <strong>{}</strong> · version <strong>{}</strong> · \
         family <strong>{}</strong> · {} test applicants, {} bad · PD cut-off {}</p></header>",
        escape(&title),
        escape(&r.model.name),
        escape(&r.model.version),
        escape(&r.model.kind),
        count(r.sample.n_test),
        pct(r.sample.bad_rate_test),
        f3(r.threshold),
    );
    kpis(&mut o, r);
    plots(&mut o, r);
    metrics_and_confusion(&mut o, r);
    lift(&mut o, r);
    calibration_and_sample(&mut o, r);
    inputs(&mut o, r);
    let _ = write!(o, "<section>\n<h2>Model details</h2>\n");
    details(&mut o, &r.details, 0);
    o.push_str("</section>\n");
    let _ = write!(
        o,
        "<footer>Generated by aurum · credit report format v{} · every figure is on the test \
         sample unless marked train</footer>\n</main>\n</body>\n</html>\n",
        r.format_version
    );
    o
}

fn kpi(o: &mut String, label: &str, value: &str, note: &str) {
    let _ = writeln!(
        o,
        "<div class=\"kpi\"><div class=\"label\">{}</div><div class=\"value\">{}</div>\
         <div class=\"note\">{note}</div></div>",
        escape(label),
        escape(value),
    );
}

fn kpis(o: &mut String, r: &CreditReport) {
    let (m, s) = (&r.metrics, &r.stability);
    o.push_str("<div class=\"kpis\">\n");
    kpi(o, "AUC", &f3(m.auc), &format!("train {}", f3(s.train_auc)));
    kpi(o, "Gini", &f3(m.gini), "2 × AUC − 1");
    kpi(
        o,
        "KS",
        &f3(m.ks),
        &format!("at PD {}", escape(&f3(m.ks_cutoff))),
    );
    kpi(o, "PR-AUC", &f3(m.pr_auc), "average precision");
    let (class, band) = psi_band(s.psi);
    kpi(
        o,
        "PSI train → test",
        &f3(s.psi),
        &format!("<span class=\"badge {class}\">{band}</span>"),
    );
    let (class, verdict) = if s.overfitting_flag {
        ("alert", "Overfitting")
    } else {
        ("ok", "No overfitting")
    };
    kpi(
        o,
        "AUC gap train − test",
        &f3(s.auc_gap),
        &format!(
            "<span class=\"badge {class}\">{verdict}</span> threshold {}",
            f3(OVERFITTING_GAP)
        ),
    );
    o.push_str("</div>\n");
}

fn plots(o: &mut String, r: &CreditReport) {
    let score = match r.score_distribution.score {
        ScoreKind::Probability => "predicted PD",
        ScoreKind::Points => "scorecard points",
    };
    let figures = [
        (
            "ROC curve",
            svg::roc(r),
            "Bads caught against goods lost as the cut-off moves; the higher above the diagonal, \
             the better the ranking. The dot is the policy cut-off."
                .to_string(),
        ),
        (
            "KS curve",
            svg::ks(r),
            "Cumulative shares of goods and bads below each cut-off; the vertical bar is the \
             largest gap (KS)."
                .to_string(),
        ),
        (
            "Score distributions",
            svg::distribution(r),
            format!(
                "Histograms of the {score} for goods and bads, each as a share of its class; \
                 the less they overlap, the better."
            ),
        ),
        (
            "Calibration",
            svg::calibration(r),
            "Observed bad rate against mean predicted PD in each decile; points on the diagonal \
             mean the PDs can be taken at face value."
                .to_string(),
        ),
    ];
    o.push_str("<section>\n<h2>Discrimination and calibration</h2>\n<div class=\"plots\">\n");
    for (caption, plot, help) in figures {
        let _ = writeln!(
            o,
            "<figure><figcaption>{caption}</figcaption>{plot}<p>{}</p></figure>",
            escape(&help)
        );
    }
    o.push_str("</div>\n</section>\n");
}

fn metrics_and_confusion(o: &mut String, r: &CreditReport) {
    let (m, s) = (&r.metrics, &r.stability);
    let cut = f3(r.threshold);
    let rows: [(&str, String, String); 14] = [
        (
            "AUC",
            f3(m.auc),
            "Chance that a random bad has a higher PD than a random good".into(),
        ),
        (
            "Gini",
            f3(m.gini),
            "2 × AUC − 1; 0 is random, 1 is perfect".into(),
        ),
        (
            "KS",
            f3(m.ks),
            format!(
                "Largest gap between the cumulative PDs of goods and bads, at PD {}",
                f3(m.ks_cutoff)
            ),
        ),
        (
            "PR-AUC",
            f3(m.pr_auc),
            "Average precision: how pure the declines are as the cut-off moves".into(),
        ),
        (
            "Brier score",
            f3(m.brier),
            "Mean squared error of the PD; lower is better".into(),
        ),
        (
            "Log loss",
            f3(m.log_loss),
            "Mean negative log-likelihood of the PD; lower is better".into(),
        ),
        (
            "Accuracy",
            pct(m.accuracy),
            format!("Share of applicants classified correctly at PD ≥ {cut}"),
        ),
        (
            "Precision",
            pct(m.precision),
            "Share of declined applicants that are bad".into(),
        ),
        (
            "Recall",
            pct(m.recall),
            "Share of bads that are declined".into(),
        ),
        (
            "F1",
            f3(m.f1),
            "Harmonic mean of precision and recall".into(),
        ),
        (
            "Train AUC",
            f3(s.train_auc),
            "Same model, training sample".into(),
        ),
        (
            "AUC gap",
            f3(s.auc_gap),
            format!(
                "Train − test; above {} is flagged as overfitting ({})",
                f3(OVERFITTING_GAP),
                if s.overfitting_flag {
                    "flagged"
                } else {
                    "not flagged"
                }
            ),
        ),
        (
            "PSI",
            f3(s.psi),
            format!(
                "Population stability of test PDs against train PDs: {} (< 0.1 stable, > 0.25 significant)",
                psi_band(s.psi).1
            ),
        ),
        (
            "Test bad rate",
            pct(r.sample.bad_rate_test),
            format!("Train {}", pct(r.sample.bad_rate_train)),
        ),
    ];
    o.push_str("<section class=\"two\">\n<div>\n<h2>Metrics</h2>\n<table>\n");
    o.push_str("<tr><th>Metric</th><th class=\"num\">Value</th><th>Meaning</th></tr>\n");
    for (name, value, help) in rows {
        let _ = writeln!(
            o,
            "<tr><td>{name}</td><td class=\"num\">{}</td><td class=\"help\">{}</td></tr>",
            escape(&value),
            escape(&help)
        );
    }
    o.push_str("</table>\n</div>\n<div>\n");

    let c = &r.confusion_matrix;
    let _ = write!(
        o,
        "<h2>Confusion matrix at PD ≥ {}</h2>\n<table class=\"confusion\">\n\
         <tr><th></th><th>Declined<br><span class=\"muted\">PD ≥ {0}</span></th>\
         <th>Approved<br><span class=\"muted\">PD &lt; {0}</span></th><th>Total</th></tr>\n\
         <tr><th>Actual bad</th><td class=\"hit\">{}</td><td>{}</td><td>{}</td></tr>\n\
         <tr><th>Actual good</th><td>{}</td><td class=\"hit\">{}</td><td>{}</td></tr>\n\
         <tr><th>Total</th><td>{}</td><td>{}</td><td>{}</td></tr>\n</table>\n",
        escape(&cut),
        count(c.true_positive),
        count(c.false_negative),
        count(c.true_positive + c.false_negative),
        count(c.false_positive),
        count(c.true_negative),
        count(c.false_positive + c.true_negative),
        count(c.true_positive + c.false_positive),
        count(c.false_negative + c.true_negative),
        count(c.true_positive + c.false_positive + c.false_negative + c.true_negative),
    );
    let declined = c.true_positive + c.false_positive;
    let total = declined + c.false_negative + c.true_negative;
    let approved = total - declined;
    let _ = write!(
        o,
        "<p class=\"muted\">Decline rate {}. Bad rate among approved {}; {} of the bads are \
         caught and {} of the goods are turned away.</p>\n</div>\n</section>\n",
        pct(share(declined, total)),
        pct(share(c.false_negative, approved)),
        pct(m.recall),
        pct(share(c.false_positive, c.false_positive + c.true_negative)),
    );
}

fn share(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn lift(o: &mut String, r: &CreditReport) {
    o.push_str(
        "<section>\n<h2>Lift and gains by risk decile</h2>\n<p class=\"muted\">Test applicants \
         ranked by PD, riskiest first, in tenths. Lift is the decile's bad rate over the overall \
         bad rate; gains is the share of all bads found in the deciles so far.</p>\n\
         <div class=\"scroll\"><table>\n<tr><th>Decile</th><th>PD range</th>\
         <th class=\"num\">Applicants</th><th class=\"num\">Bads</th><th class=\"num\">Bad rate</th>\
         <th class=\"num\">Cum. population</th><th class=\"num\">Cum. bads (gains)</th>\
         <th class=\"num\">Lift</th><th class=\"num\">Cum. lift</th></tr>\n",
    );
    for row in &r.lift_gains {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{} – {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td></tr>",
            row.decile,
            f3(row.min_predicted),
            f3(row.max_predicted),
            count(row.count),
            count(row.bads),
            pct(row.bad_rate),
            pct(row.cum_population_share),
            pct(row.cum_bad_share),
            row.lift,
            row.cumulative_lift,
        );
    }
    o.push_str("</table></div>\n</section>\n");
}

fn calibration_and_sample(o: &mut String, r: &CreditReport) {
    o.push_str(
        "<section class=\"two\">\n<div>\n<h2>Calibration by decile of PD</h2>\n<table>\n\
         <tr><th>Decile</th><th class=\"num\">Applicants</th><th class=\"num\">Mean PD</th>\
         <th class=\"num\">Observed bad rate</th><th class=\"num\">Observed − predicted</th></tr>\n",
    );
    for b in &r.calibration {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{:+.1} pp</td></tr>",
            b.decile,
            count(b.count),
            pct(b.mean_predicted),
            pct(b.observed_rate),
            (b.observed_rate - b.mean_predicted) * 100.0,
        );
    }
    let sp = &r.split;
    let method = match sp.method {
        SplitMethod::Stratified => "Stratified random (bad rate kept equal)",
        SplitMethod::TimeOrdered => "Time-ordered (train on earlier, test on later)",
        SplitMethod::Random => "Random",
    };
    let seed = sp.seed.map_or_else(|| "—".to_string(), |s| s.to_string());
    let sm = &r.sample;
    let _ = write!(
        o,
        "</table>\n</div>\n<div>\n<h2>Samples</h2>\n<table>\n\
         <tr><th></th><th class=\"num\">Train</th><th class=\"num\">Test</th></tr>\n\
         <tr><td>Applicants</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n\
         <tr><td>Bads</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n\
         <tr><td>Bad rate</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n\
         <tr><td>Share of data</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n\
         <tr><td>AUC</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n\
         </table>\n<p>Split: {}. Seed: <code>{}</code>.</p>\n</div>\n</section>\n",
        count(sm.n_train),
        count(sm.n_test),
        count(sm.bads_train),
        count(sm.bads_test),
        pct(sm.bad_rate_train),
        pct(sm.bad_rate_test),
        pct(sp.train_fraction),
        pct(sp.test_fraction),
        f3(r.stability.train_auc),
        f3(r.stability.test_auc),
        escape(method),
        escape(&seed),
    );
}

/// `dropped_columns` → `Dropped columns`.
/// The model's features and the dataset columns left out, each with its reason. A version 1
/// report has neither list, and shows no section.
fn inputs(o: &mut String, r: &CreditReport) {
    if r.features.is_empty() && r.excluded_columns.is_empty() {
        return;
    }
    o.push_str("<section>\n<h2>Inputs</h2>\n");
    let names: Vec<String> = r.features.iter().map(|f| escape(f)).collect();
    let _ = writeln!(
        o,
        "<p>{} features: {}</p>",
        count(r.features.len()),
        names.join(", ")
    );
    if !r.excluded_columns.is_empty() {
        let _ = writeln!(
            o,
            "<h3>Excluded columns</h3>\n<div class=\"scroll\"><table>\n\
             <tr><th>Column</th><th>Reason</th></tr>"
        );
        for e in &r.excluded_columns {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(&e.column),
                escape(&e.reason)
            );
        }
        o.push_str("</table></div>\n");
    }
    o.push_str("</section>\n");
}

fn humanize(key: &str) -> String {
    let spaced = key.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

fn is_table(v: &Value) -> bool {
    matches!(v, Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object))
}

/// A scalar as table text: integers as is, other numbers to 4 significant-ish digits, nested
/// values as compact JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            let a = x.abs();
            if x == 0.0 {
                "0".into()
            } else if !(1e-3..1e6).contains(&a) {
                format!("{x:.3e}")
            } else if a >= 100.0 {
                format!("{x:.2}")
            } else {
                format!("{x:.4}")
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(is_scalar) => {
            if items.is_empty() {
                "none".into()
            } else {
                items.iter().map(cell).collect::<Vec<_>>().join(", ")
            }
        }
        other => other.to_string(),
    }
}

fn cell_td(v: &Value) -> String {
    let class = if v.is_number() { " class=\"num\"" } else { "" };
    let text = escape(&cell(v));
    if is_scalar(v) || v.as_array().is_some_and(|a| a.iter().all(is_scalar)) {
        format!("<td{class}>{text}</td>")
    } else {
        format!("<td><code>{text}</code></td>")
    }
}

/// Renders `details` generically: an object's scalar (and list-of-scalar) entries as one
/// key–value table, then every nested object or table under its own heading; an array of objects
/// as a table whose columns are the union of the objects' keys, text columns first.
fn details(o: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Object(map) if map.is_empty() => o.push_str("<p class=\"muted\">None.</p>\n"),
        Value::Object(map) => {
            let simple: Vec<_> = map.iter().filter(|(_, v)| cell_is_enough(v)).collect();
            if !simple.is_empty() {
                o.push_str("<table class=\"kv\">\n");
                for (k, v) in simple {
                    let _ = writeln!(
                        o,
                        "<tr><th>{}</th>{}</tr>",
                        escape(&humanize(k)),
                        cell_td(v)
                    );
                }
                o.push_str("</table>\n");
            }
            let level = (depth + 3).min(6);
            for (k, v) in map.iter().filter(|(_, v)| !cell_is_enough(v)) {
                let _ = writeln!(o, "<h{level}>{}</h{level}>", escape(&humanize(k)));
                details(o, v, depth + 1);
            }
        }
        Value::Array(items) if is_table(v) => table(o, items),
        Value::Array(items) => {
            for item in items {
                details(o, item, depth + 1);
            }
        }
        scalar => {
            let _ = writeln!(o, "<p>{}</p>", escape(&cell(scalar)));
        }
    }
}

/// Scalars and lists of scalars fit in one table cell.
fn cell_is_enough(v: &Value) -> bool {
    is_scalar(v) || v.as_array().is_some_and(|a| a.iter().all(is_scalar))
}

fn table(o: &mut String, rows: &[Value]) {
    let mut columns: Vec<&str> = Vec::new();
    for row in rows {
        for key in row.as_object().into_iter().flat_map(|m| m.keys()) {
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    // Text columns (names, bins, labels) first, so each row reads from what it is about.
    let text = |c: &&str| {
        rows.iter()
            .all(|r| r.get(*c).is_none_or(|v| v.is_string() || v.is_null()))
    };
    let (mut first, rest): (Vec<&str>, Vec<&str>) = columns.into_iter().partition(text);
    first.extend(rest);
    let columns = first;
    o.push_str("<div class=\"scroll\"><table>\n<tr>");
    for c in &columns {
        let numeric = rows.iter().all(|r| r.get(c).is_none_or(Value::is_number));
        let class = if numeric { " class=\"num\"" } else { "" };
        let _ = write!(o, "<th{class}>{}</th>", escape(&humanize(c)));
    }
    o.push_str("</tr>\n");
    for row in rows.iter().take(MAX_DETAIL_ROWS) {
        o.push_str("<tr>");
        for c in &columns {
            o.push_str(&cell_td(row.get(c).unwrap_or(&Value::Null)));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table></div>\n");
    if rows.len() > MAX_DETAIL_ROWS {
        let _ = writeln!(
            o,
            "<p class=\"muted\">{} more rows are in the JSON report.</p>",
            count(rows.len() - MAX_DETAIL_ROWS)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn details_render_generically() {
        let v = serde_json::json!({
            "intercept": -1.25,
            "converged": true,
            "dropped_columns": [],
            "coefficients": [
                { "name": "age<18", "coefficient": 0.5 },
                { "name": "income", "coefficient": -0.000012, "note": "scaled" }
            ],
            "solver": { "iterations": 12, "tolerance": 1e-8 }
        });
        let mut o = String::new();
        details(&mut o, &v, 0);
        assert!(
            o.contains("<tr><th>Intercept</th><td class=\"num\">-1.2500</td></tr>"),
            "{o}"
        );
        assert!(
            o.contains("<tr><th>Dropped columns</th><td>none</td></tr>"),
            "{o}"
        );
        assert!(o.contains("<h3>Coefficients</h3>"), "{o}");
        // Columns are the union of keys, text first; a missing cell is a dash.
        assert!(
            o.contains("<th>Name</th><th>Note</th><th class=\"num\">Coefficient</th>"),
            "{o}"
        );
        assert!(
            o.contains("<td>age&lt;18</td><td>—</td><td class=\"num\">0.5000</td>"),
            "{o}"
        );
        assert!(o.contains("<td class=\"num\">-1.200e-5</td>"), "{o}");
        assert!(
            o.contains("<h3>Solver</h3>") && o.contains("1.000e-8"),
            "{o}"
        );
    }

    #[test]
    fn counts_group_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
    }
}
