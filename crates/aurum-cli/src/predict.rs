//! `aurum predict`: a few JSON records printed, or a whole file streamed to a scored file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use aurum_core::CancelToken;
use aurum_server::wire::{ContributionOut, ExplanationOut, PredictOut, PredictionOut, ReasonOut};
use aurum_service::batch::{
    BatchEnd, BatchOptions, BatchProgress, BatchSinks, BatchSource, BatchSummary, FileFormat,
};
use aurum_service::{CallContext, Platform, PredictOptions};

use crate::cli::PredictArgs;
use crate::commands::parse_model_ref;

/// Exit code of `--strict` when a row could not be scored.
pub const EXIT_STRICT_REFUSED: u8 = 4;

pub async fn predict(
    platform: &Platform,
    ctx: &CallContext,
    args: PredictArgs,
) -> Result<ExitCode> {
    let is_json = args
        .input
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        records(platform, ctx, args).await
    } else {
        file(platform, ctx, args).await
    }
}

/// `<dir>/<stem><suffix>` beside `path`.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!("{stem}{suffix}"))
}

struct Bar(indicatif::ProgressBar);

impl BatchProgress for Bar {
    fn rows(&self, read: u64, scored: u64, refused: u64) {
        self.0.set_position(read);
        self.0
            .set_message(format!("{scored} scored, {refused} refused"));
    }
}

async fn file(platform: &Platform, ctx: &CallContext, args: PredictArgs) -> Result<ExitCode> {
    let input_format = FileFormat::from_path(&args.input)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| beside(&args.input, &format!(".scored.{}", input_format.as_str())));
    let output_format = FileFormat::from_path(&output)?;
    let errors = args
        .errors
        .clone()
        .unwrap_or_else(|| beside(&output, ".errors.csv"));
    let errors_format = FileFormat::from_path(&errors)?;
    if output == args.input || errors == args.input || errors == output {
        bail!("--input, --output and --errors must be three different files");
    }
    let model = platform.resolve(&parse_model_ref(&args.model)?).await?;
    // Written as `<file>.partial` and renamed once the run ends (completed, stopped at a
    // refused row or interrupted: the rows so far are kept), so a file the run could not read
    // leaves no empty output behind, and a killed run no output that looks finished.
    let partial = |p: &Path| PathBuf::from(format!("{}.partial", p.display()));
    let (output_partial, errors_partial) = (partial(&output), partial(&errors));
    let create = |p: &Path| -> Result<Box<dyn std::io::Write + Send>> {
        let f = fs_err::File::create(p)?;
        Ok(Box::new(std::io::BufWriter::with_capacity(1 << 20, f)))
    };
    let remove_partials = || {
        let _ = std::fs::remove_file(&output_partial);
        let _ = std::fs::remove_file(&errors_partial);
    };
    let sinks = match (create(&output_partial), create(&errors_partial)) {
        (Ok(output), Ok(errors)) => BatchSinks {
            output,
            output_format,
            errors,
            errors_format,
        },
        (Err(e), _) | (_, Err(e)) => {
            remove_partials();
            return Err(e);
        }
    };
    let progress: Arc<dyn BatchProgress> = if !args.json && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos} rows read ({per_sec}) {msg} [{elapsed}]",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Arc::new(Bar(bar))
    } else {
        Arc::new(aurum_service::batch::NoProgress)
    };
    let cancel = CancelToken::new();
    let on_ctrl_c = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        })
    };
    let opts = BatchOptions {
        explain: args.explain,
        keep: args.keep.clone(),
        strict: args.strict,
        chunk_rows: args.chunk_rows,
        audit_rows: args.audit_rows,
    };
    let summary = platform
        .predict_batch(
            ctx,
            model,
            BatchSource::File(args.input.clone()),
            sinks,
            opts,
            progress,
            cancel,
            None,
        )
        .await;
    on_ctrl_c.abort();
    let summary = match summary {
        Ok(summary) => summary,
        Err(e) => {
            remove_partials();
            return Err(e.into());
        }
    };
    fs_err::rename(&errors_partial, &errors)?;
    fs_err::rename(&output_partial, &output)?;
    if args.json {
        println!("{}", summary_json(&summary, &args.input, &output, &errors));
    } else {
        print_summary(&summary, &output, &errors);
    }
    Ok(match summary.end {
        BatchEnd::StoppedAtError => ExitCode::from(EXIT_STRICT_REFUSED),
        BatchEnd::Cancelled => ExitCode::from(130),
        BatchEnd::Completed => ExitCode::SUCCESS,
    })
}

fn summary_json(s: &BatchSummary, input: &Path, output: &Path, errors: &Path) -> serde_json::Value {
    let rows_per_s = if s.elapsed_ms > 0 {
        s.rows_read as f64 * 1000.0 / s.elapsed_ms as f64
    } else {
        0.0
    };
    serde_json::json!({
        "model": s.model,
        "version": s.version,
        "threshold": s.threshold,
        "end": s.end.as_str(),
        "input": input.display().to_string(),
        "output": output.display().to_string(),
        "errors": errors.display().to_string(),
        "rows_read": s.rows_read,
        "rows_scored": s.rows_scored,
        "rows_refused": s.rows_refused,
        "first_error": s.first_error.as_ref().map(|e| serde_json::json!({
            "line": e.line, "column": e.column, "code": e.code, "message": e.message,
        })),
        "input_sha256": s.input_sha256,
        "source_sha256": s.source_sha256,
        "output_sha256": s.output_sha256,
        "output_bytes": s.output_bytes,
        "errors_sha256": s.errors_sha256,
        "audit_seq": s.audit_seq,
        "elapsed_ms": s.elapsed_ms,
        "rows_per_s": rows_per_s,
    })
}

fn print_summary(s: &BatchSummary, output: &Path, errors: &Path) {
    let secs = s.elapsed_ms as f64 / 1000.0;
    println!(
        "model {} version {} (threshold {}): {} rows read, {} scored, {} refused in {secs:.1} s",
        s.model, s.version, s.threshold, s.rows_read, s.rows_scored, s.rows_refused
    );
    println!("scored rows written to {}", output.display());
    if s.rows_refused > 0 {
        println!("refused rows written to {}", errors.display());
    }
    if let Some(e) = &s.first_error {
        println!(
            "first refused row: line {}{} {}: {}",
            e.line,
            e.column
                .as_deref()
                .map(|c| format!(" column {c}"))
                .unwrap_or_default(),
            e.code,
            e.message
        );
    }
    match s.end {
        BatchEnd::Completed => {}
        BatchEnd::StoppedAtError => println!("stopped at the first refused row (--strict)"),
        BatchEnd::Cancelled => println!("cancelled: the output holds the rows scored so far"),
    }
    match s.audit_seq {
        Some(seq) => println!("audit record {seq} input_sha256 {}", s.input_sha256),
        None => println!("audit record queued input_sha256 {}", s.input_sha256),
    }
}

/// `.json` input: records scored in one call, printed (or `--json`: the `/v1` predict body).
async fn records(platform: &Platform, ctx: &CallContext, args: PredictArgs) -> Result<ExitCode> {
    let text = fs_err::read_to_string(&args.input)?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", args.input.display()))?;
    let records = match json {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(mut o) => match o.remove("records") {
            Some(serde_json::Value::Array(items)) => items,
            _ => vec![serde_json::Value::Object(o)],
        },
        _ => bail!("the input must be a JSON array of records or an object with `records`"),
    };
    let model = platform.resolve(&parse_model_ref(&args.model)?).await?;
    let rows = aurum_server::routes::predict::records_to_rows(
        &model,
        &records,
        "records",
        false,
        platform.config().server.unknown_fields,
        &platform.config().audit.masked_fields,
    )
    .map_err(|e| anyhow!("{}", e.0))?;
    let out = platform
        .predict(
            ctx,
            model,
            rows,
            PredictOptions {
                explain: args.explain,
                started: None,
            },
        )
        .await?;
    if args.json {
        let body = PredictOut {
            model: out.model.clone(),
            version: out.version,
            request_id: ctx.request_id.clone().unwrap_or_default(),
            threshold: out.threshold,
            predictions: out
                .records
                .iter()
                .map(|r| PredictionOut {
                    probability: r.probability,
                    label: r.label.clone(),
                    positive: r.positive,
                    score: r.score,
                    decision: r.decision.as_str().to_string(),
                    reasons: r
                        .reasons
                        .iter()
                        .map(|x| ReasonOut {
                            code: x.code.clone(),
                            feature: x.feature.clone(),
                            text: x.text.clone(),
                            contribution: x.contribution,
                        })
                        .collect(),
                    explanation: r.explanation.as_ref().map(|e| ExplanationOut {
                        space: e.space.clone(),
                        base_value: e.base_value,
                        contributions: e
                            .contributions
                            .iter()
                            .map(|c| ContributionOut {
                                feature: c.feature.clone(),
                                contribution: c.contribution,
                            })
                            .collect(),
                    }),
                })
                .collect(),
        };
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "model {} version {} (threshold {})",
        out.model, out.version, out.threshold
    );
    for (i, r) in out.records.iter().enumerate() {
        let score = r
            .score
            .map(|s| format!("  score {s:.1}"))
            .unwrap_or_default();
        println!(
            "[{i}] probability {:.6}  label {}{score}  decision {}",
            r.probability,
            r.label,
            r.decision.as_str()
        );
        for reason in &r.reasons {
            println!("      reason {:<40} {}", reason.code, reason.text);
        }
        if let Some(e) = &r.explanation {
            for c in e.contributions.iter().take(5) {
                println!("      {:<50} {:+.4}", c.feature, c.contribution);
            }
        }
    }
    match out.audit_seq {
        Some(seq) => println!("audit record {seq} input_sha256 {}", out.input_sha256),
        None => println!("audit record queued input_sha256 {}", out.input_sha256),
    }
    Ok(ExitCode::SUCCESS)
}
