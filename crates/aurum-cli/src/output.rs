//! Human-readable rendering for the terminal.

use aurum_service::types::DatasetProfile;

pub fn print_profile(profile: &DatasetProfile) {
    println!(
        "{:<45} {:<12} {:>8} {:>8}  summary",
        "column", "type", "missing%", "distinct"
    );
    for c in &profile.columns {
        let summary = match &c.numeric {
            Some(n) => format!(
                "min {} max {} mean {:.3} std {:.3}",
                n.min, n.max, n.mean, n.std
            ),
            None => c
                .top_values
                .iter()
                .take(3)
                .map(|(v, n)| format!("{v} ({n})"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let warnings = if c.warnings.is_empty() {
            String::new()
        } else {
            format!(
                "  [{}]",
                c.warnings
                    .iter()
                    .map(|w| format!("{w:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        println!(
            "{:<45} {:<12} {:>7.1}% {:>8}  {}{}",
            c.name,
            c.column_type.as_str(),
            c.missing_pct,
            c.distinct_count,
            summary,
            warnings
        );
    }
}

pub fn print_metrics(metrics_json: &str) {
    let metrics: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(metrics_json).unwrap_or_default();
    let shown: Vec<String> = [
        "auc",
        "gini",
        "ks",
        "log_loss",
        "brier",
        "accuracy",
        "train_auc",
        "test_rows",
    ]
    .iter()
    .filter_map(|k| {
        metrics
            .get(*k)
            .and_then(|v| v.as_f64())
            .map(|v| format!("{k} {v:.4}"))
    })
    .collect();
    println!("   held-out metrics: {}", shown.join("  "));
}

pub fn print_forecast(out: &aurum_service::ForecastOutput) {
    println!(
        "model {} ({} frequency, {} points{})",
        out.model,
        out.frequency,
        out.history.len(),
        if out.filled_points > 0 {
            format!(", {} filled", out.filled_points)
        } else {
            String::new()
        }
    );
    for (name, mase) in &out.candidates {
        println!(
            "   candidate {:<16} backtest MASE {}",
            name,
            mase.map(|m| format!("{m:.3}"))
                .unwrap_or_else(|| "-".into())
        );
    }
    let mut header = format!("{:<12} {:>12}", "period", "forecast");
    for (level, _, _) in &out.intervals {
        header.push_str(&format!(
            " {:>12} {:>12}",
            format!("lo {level}"),
            format!("hi {level}")
        ));
    }
    println!("{header}");
    for (i, t) in out.timestamps.iter().enumerate() {
        let mut line = format!("{:<12} {:>12.4}", t, out.mean[i]);
        for (_, lo, hi) in &out.intervals {
            line.push_str(&format!(" {:>12.4} {:>12.4}", lo[i], hi[i]));
        }
        println!("{line}");
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A standalone page (inline SVG, no scripts) with history, forecast and interval bands.
pub fn forecast_html(title: &str, out: &aurum_service::ForecastOutput) -> String {
    let (w, h, pad) = (960.0_f64, 420.0_f64, 50.0_f64);
    let n_hist = out.history.len();
    let n = n_hist + out.mean.len();
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in out
        .history
        .iter()
        .map(|(_, v)| *v)
        .chain(out.mean.iter().copied())
        .chain(
            out.intervals
                .iter()
                .flat_map(|(_, l, u)| l.iter().chain(u.iter()).copied()),
        )
    {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        hi = lo + 1.0;
    }
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / (n.max(2) - 1) as f64;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * (v - lo) / (hi - lo);
    let path = |pts: Vec<(f64, f64)>| {
        pts.iter()
            .enumerate()
            .map(|(k, (a, b))| format!("{}{a:.1},{b:.1}", if k == 0 { "M" } else { "L" }))
            .collect::<String>()
    };
    let mut svg = String::new();
    for (k, (level, l, u)) in out.intervals.iter().enumerate().rev() {
        let mut pts: Vec<(f64, f64)> = u
            .iter()
            .enumerate()
            .map(|(i, v)| (x(n_hist + i), y(*v)))
            .collect();
        pts.extend(
            l.iter()
                .enumerate()
                .rev()
                .map(|(i, v)| (x(n_hist + i), y(*v))),
        );
        let opacity = 0.18 + 0.14 * k as f64;
        svg.push_str(&format!("<path d=\"{}Z\" fill=\"#2563eb\" fill-opacity=\"{opacity:.2}\"><title>{level}% interval</title></path>", path(pts)));
    }
    svg.push_str(&format!(
        "<path d=\"{}\" fill=\"none\" stroke=\"#111827\" stroke-width=\"1.5\"/>",
        path(
            out.history
                .iter()
                .enumerate()
                .map(|(i, (_, v))| (x(i), y(*v)))
                .collect()
        )
    ));
    let mut fc: Vec<(f64, f64)> = Vec::new();
    if let Some((_, last)) = out.history.last() {
        fc.push((x(n_hist - 1), y(*last)));
    }
    fc.extend(
        out.mean
            .iter()
            .enumerate()
            .map(|(i, v)| (x(n_hist + i), y(*v))),
    );
    svg.push_str(&format!(
        "<path d=\"{}\" fill=\"none\" stroke=\"#2563eb\" stroke-width=\"2\"/>",
        path(fc)
    ));
    for k in 0..=4 {
        let v = lo + (hi - lo) * k as f64 / 4.0;
        svg.push_str(&format!("<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#6b7280\">{v:.1}</text>", pad - 6.0, y(v) + 4.0));
    }
    let first = out.history.first().map(|(t, _)| t.as_str()).unwrap_or("");
    let last = out.timestamps.last().map(String::as_str).unwrap_or("");
    svg.push_str(&format!(
        "<text x=\"{pad}\" y=\"{:.1}\" font-size=\"11\" fill=\"#6b7280\">{}</text>",
        h - 18.0,
        esc(first)
    ));
    svg.push_str(&format!("<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#6b7280\">{}</text>", w - pad, h - 18.0, esc(last)));
    let levels: Vec<String> = out
        .intervals
        .iter()
        .map(|(l, _, _)| format!("{l}%"))
        .collect();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Forecast of {t}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:24px;color:#111827}}p{{color:#4b5563}}</style></head><body>\
         <h1>Forecast of {t}</h1><p>{m} · {f} · history {nh} points · horizon {hz} · intervals {lv}</p>\
         <svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"history, forecast and prediction intervals\">\
         <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"white\"/>{svg}</svg>\
         <p>Black: history. Blue: point forecast; shaded: prediction intervals.</p></body></html>",
        t = esc(title),
        m = esc(&out.model),
        f = esc(&out.frequency),
        nh = n_hist,
        hz = out.mean.len(),
        lv = levels.join(", "),
    )
}

/// A forecast as JSON (`aurum forecast --json`).
pub fn forecast_json(
    out: &aurum_service::ForecastOutput,
    plot: &std::path::Path,
) -> serde_json::Value {
    serde_json::json!({
        "model": out.model,
        "frequency": out.frequency,
        "history_points": out.history_points,
        "filled_points": out.filled_points,
        "last_timestamp": out.last_timestamp,
        "timestamps": out.timestamps,
        "mean": out.mean,
        "intervals": out.intervals.iter().map(|(level, lo, hi)| serde_json::json!({
            "level": level, "lower": lo, "upper": hi,
        })).collect::<Vec<_>>(),
        "candidates": out.candidates.iter().map(|(name, mase)| serde_json::json!({
            "model": name, "backtest_mase": mase,
        })).collect::<Vec<_>>(),
        "aicc": out.aicc,
        "plot": plot.display().to_string(),
    })
}

/// The synthesis report as two tables: utility (one learner, three training sets) and privacy
/// (distance to the closest real training row).
pub fn print_synthesis_report(r: &aurum_service::SynthesisReport) {
    let f = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.4}"));
    println!(
        "utility: gbdt (defaults, seed {}) on {} training rows ({} `{}`), tested on {} real held-out rows ({} `{}`)",
        r.seed,
        r.train_rows,
        r.train_class_rows,
        r.class,
        r.holdout_rows,
        r.holdout_class_rows,
        r.class
    );
    println!(
        "  {:<12} {:>8} {:>8} {:>8} {:>8}",
        "training", "rows", "class", "AUC", "PR-AUC"
    );
    for u in &r.utility {
        println!(
            "  {:<12} {:>8} {:>8} {:>8} {:>8}",
            u.training,
            u.rows,
            u.class_rows,
            f(u.auc),
            f(u.pr_auc)
        );
    }
    println!("privacy: distance to the closest real training row");
    println!(
        "  {:<13} {:>6} {:>8} {:>8} {:>14} {:>12}",
        "rows", "n", "p5", "median", "< real p5", "exact copies"
    );
    for p in &r.privacy {
        println!(
            "  {:<13} {:>6} {:>8.3} {:>8.3} {:>13.1}% {:>11.1}%",
            p.rows_from,
            p.rows,
            p.p5,
            p.median,
            100.0 * p.share_below_real_p5,
            100.0 * p.exact_copies
        );
    }
    println!(
        "vae: {} epochs (best {}), {:.1} s for the report",
        r.vae.epochs_run, r.vae.best_epoch, r.seconds
    );
}
