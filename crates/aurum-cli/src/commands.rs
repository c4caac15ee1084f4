//! Subcommand implementations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use aurum_core::{ColumnType, FamilyName, Progress, Value};
use aurum_server::AppState;
use aurum_service::{CallContext, Config, ConfigLayer, ModelRef, Platform, Role, TrainRequest};

use crate::cli::{
    AuditCommand, Cli, Command, ConfigCommand, DataCommand, KeysCommand, ModelsCommand, ServeArgs,
    StorageCommand, TrainArgs,
};
use crate::output;

/// The demo dataset embedded for `aurum quickstart` (UCI Statlog German Credit, CC BY 4.0).
const DEMO_DATASET: &[u8] = include_bytes!("../../../data/demo/german_credit.csv");

/// Builds the effective configuration: defaults → file → environment → flags.
pub fn load_config(cli: &Cli, serve_args: Option<&ServeArgs>) -> Result<Config> {
    let mut layers = Vec::new();
    let file = cli
        .config
        .clone()
        .or_else(|| std::env::var_os("AURUM_CONFIG").map(PathBuf::from))
        .or_else(|| {
            Path::new("aurum.toml")
                .exists()
                .then(|| PathBuf::from("aurum.toml"))
        });
    if let Some(path) = file {
        layers.push(ConfigLayer::from_file(&path)?);
    }
    layers.push(ConfigLayer::from_env(std::env::vars())?);
    let mut flags = ConfigLayer {
        data_dir: cli.data_dir.clone(),
        ..Default::default()
    };
    flags.server.listen = serve_args.and_then(|s| s.listen.clone());
    flags.server.grpc_listen = serve_args.and_then(|s| s.grpc_listen.clone());
    flags.audit.durability = serve_args.and_then(|s| s.audit_durability.clone());
    flags.server.tls_cert_file = serve_args.and_then(|s| s.tls_cert.clone());
    flags.server.tls_key_file = serve_args.and_then(|s| s.tls_key.clone());
    flags.server.tls_client_ca_file = serve_args.and_then(|s| s.tls_client_ca.clone());
    layers.push(flags);
    Ok(Config::from_layers(layers)?)
}

/// `serve` logs at the configured level; `quickstart` and interactive commands log warnings only
/// (their output is for a person), unless `AURUM_LOG` asks for more.
fn init_tracing(config: &Config, serving: bool, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    // Interactive commands stay quiet unless AURUM_LOG asks otherwise.
    let level = if (serving && !quiet) || std::env::var_os("AURUM_LOG").is_some() {
        config.log.level.clone()
    } else {
        "warn".into()
    };
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if config.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let serve_args = match &cli.command {
        Command::Serve(args) | Command::Quickstart(args) => Some(args),
        _ => None,
    };
    let config = load_config(&cli, serve_args)?;
    let serving = matches!(cli.command, Command::Serve(_) | Command::Quickstart(_));
    let quiet = matches!(cli.command, Command::Quickstart(_));
    init_tracing(&config, serving, quiet);
    if let Command::Config(ConfigCommand::Show) = cli.command {
        print!("{}", config.to_redacted_toml());
        return Ok(ExitCode::SUCCESS);
    }
    // A one-shot forecast reads a file and prints: it needs no data directory, so none is created.
    if let Command::Forecast(args) = cli.command {
        return forecast(args).await;
    }
    // Only commands that create state may start a new data directory: a mistyped `--data-dir`
    // under `audit verify` or `models list` would otherwise answer "0 records, OK" from an
    // empty directory it just made.
    let creates = matches!(
        cli.command,
        Command::Serve(_)
            | Command::Quickstart(_)
            | Command::Data(DataCommand::Import { .. } | DataCommand::Synthesize(_))
            | Command::Import(_)
            | Command::Keys(KeysCommand::Create { .. })
    );
    if !creates && config.registry.backend == "sqlite" && !config.data_dir.exists() {
        bail!(
            "the data directory {} does not exist (set by --data-dir, AURUM_DATA_DIR or data_dir); \
             check the path, or create it with `aurum data import`, `aurum import`, `aurum keys create` or `aurum serve`",
            config.data_dir.display()
        );
    }
    let platform = aurum_backends::open_platform(config)
        .await
        .context("cannot open the data directory and stores")?;
    let code = dispatch(cli.command, &platform).await;
    platform.shutdown().await;
    code
}

/// `aurum forecast`: fits and forecasts a column of a CSV file, without opening a data directory.
async fn forecast(args: crate::cli::ForecastArgs) -> Result<ExitCode> {
    let bytes = fs_err::read(&args.data)?;
    let periods = match args.season_period.as_deref() {
        None => Vec::new(),
        Some(v) => v
            .split(',')
            .map(|p| p.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .with_context(|| {
                format!("--season-period `{v}` must be a number or a comma-separated list")
            })?,
    };
    let triple = |flag: &str, v: &str| -> Result<[usize; 3]> {
        let parts: Vec<usize> = v
            .split(',')
            .map(|p| p.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("{flag} `{v}` must be three integers p,d,q"))?;
        parts
            .try_into()
            .map_err(|_| anyhow::anyhow!("{flag} `{v}` must be three integers p,d,q"))
    };
    let order = args
        .order
        .as_deref()
        .map(|v| triple("--order", v))
        .transpose()?;
    let seasonal_order = match args.seasonal_order.as_deref() {
        None => None,
        Some(v) => {
            let parts: Vec<usize> = v
                .split(',')
                .map(|p| p.trim().parse::<usize>())
                .collect::<Result<_, _>>()
                .with_context(|| format!("--seasonal-order `{v}` must be four integers P,D,Q,s"))?;
            Some(<[usize; 4]>::try_from(parts).map_err(|_| {
                anyhow::anyhow!("--seasonal-order `{v}` must be four integers P,D,Q,s")
            })?)
        }
    };
    let holidays = match &args.holidays {
        None => Vec::new(),
        Some(v) => v.split(',').map(|h| h.trim().to_string()).collect(),
    };
    let session = match args.session.as_deref() {
        None => None,
        Some(v) => {
            let (open, close) = v
                .split_once('-')
                .with_context(|| format!("--session `{v}` must be OPEN-CLOSE, e.g. 09:30-16:00"))?;
            Some((open.trim().to_string(), close.trim().to_string()))
        }
    };
    let spec = aurum_service::ForecastSpec {
        model: args.model.clone(),
        horizon: args.horizon,
        season_periods: periods,
        order,
        seasonal_order,
        transform: args.transform.clone(),
        fill: args.fill.clone(),
        frequency: args.frequency.clone(),
        date_format: args.date_format.clone(),
        holidays,
        session,
        ..Default::default()
    };
    let out = Platform::forecast_file(bytes, &args.date, &args.value, spec).await?;
    fs_err::write(&args.out, output::forecast_html(&args.value, &out))?;
    if args.json {
        print_json(&output::forecast_json(&out, &args.out))?;
        return Ok(ExitCode::SUCCESS);
    }
    output::print_forecast(&out);
    println!("plot written to {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

async fn dispatch(command: Command, platform: &Platform) -> Result<ExitCode> {
    let ctx = CallContext::cli();
    match command {
        Command::Config(ConfigCommand::Show) => unreachable_config(),
        Command::Storage(StorageCommand::Reencrypt) => {
            let n = platform.reencrypt_artifacts(&ctx).await?;
            println!("re-sealed {n} artifact(s) with the current encryption key");
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(_) => serve(platform, None).await,
        Command::Quickstart(_) => quickstart(platform).await,
        Command::Data(DataCommand::Import {
            file,
            name,
            types,
            date_formats,
        }) => {
            let bytes = fs_err::read(&file)?;
            let overrides = parse_types(&types)?;
            let date_formats = parse_date_formats(&date_formats)?;
            let import = platform
                .import_dataset(&ctx, &name, bytes, overrides, date_formats)
                .await?;
            if import.created {
                println!(
                    "imported dataset `{}` ({} rows, {} columns, sha256 {})",
                    name, import.record.rows, import.record.columns, import.record.sha256
                );
            } else {
                println!(
                    "dataset `{}` already holds these bytes (sha256 {}); nothing changed",
                    name, import.record.sha256
                );
            }
            let (_, profile) = platform.get_dataset(&name).await?;
            output::print_profile(&profile);
            Ok(ExitCode::SUCCESS)
        }
        Command::Data(DataCommand::Show { name, json }) => {
            let (record, profile) = platform.get_dataset(&name).await?;
            if json {
                let mut out = aurum_server::wire::DatasetOut::from_record(&record, true);
                out.lineage = platform.dataset_lineage(&name).await?;
                print_json(&out)?;
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "dataset `{}`: {} rows, {} columns, {} ({} bytes), sha256 {}",
                record.name,
                record.rows,
                record.columns,
                record.format,
                record.size_bytes,
                record.sha256
            );
            output::print_profile(&profile);
            Ok(ExitCode::SUCCESS)
        }
        Command::Data(DataCommand::List { json }) => {
            let datasets = platform.list_datasets().await?;
            if json {
                let list: Vec<_> = datasets
                    .iter()
                    .map(|d| aurum_server::wire::DatasetOut::from_record(d, false))
                    .collect();
                print_json(&serde_json::json!({ "datasets": list }))?;
                return Ok(ExitCode::SUCCESS);
            }
            for d in datasets {
                println!(
                    "{:<30} {:>8} rows {:>4} cols  {}  {}",
                    d.name,
                    d.rows,
                    d.columns,
                    &d.sha256[..12],
                    d.created_at.to_rfc3339()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Data(DataCommand::Synthesize(args)) => synthesize(platform, &ctx, args).await,
        Command::Train(args) => train(platform, &ctx, args).await,
        Command::Predict(args) => crate::predict::predict(platform, &ctx, args).await,
        Command::Report(args) => report(platform, args).await,
        Command::Forecast(args) => forecast(args).await,
        Command::Import(args) => {
            let bytes = fs_err::read(&args.file)?;
            let mut params = parse_params(&args.params)?;
            if let Some(t) = args.threshold {
                params.insert("threshold".into(), t.to_string());
            }
            let v = platform
                .import_model_with_params(
                    &ctx,
                    &args.model,
                    &args.format,
                    bytes,
                    params,
                    args.alias.as_deref(),
                )
                .await?;
            let schema = platform
                .resolve(&ModelRef::version(&args.model, v.version))
                .await?;
            println!(
                "imported {} model {} as {} version {} ({} features; file sha256 {})",
                args.format,
                args.file.display(),
                v.model,
                v.version,
                schema.input_schema().len(),
                v.dataset_sha256
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Models(cmd) => models(platform, &ctx, cmd).await,
        Command::Keys(KeysCommand::Create {
            name,
            role,
            expires_in,
            expires_at,
            scopes,
            rate_limit,
        }) => {
            let role: Role = role
                .parse()
                .map_err(|_| anyhow!("role must be admin, analyst or client"))?;
            let expires_at = match (expires_in, expires_at) {
                (Some(d), _) => Some(
                    chrono::Utc::now()
                        .checked_add_signed(parse_duration(&d)?)
                        .with_context(|| {
                            format!(
                                "--expires-in `{d}` is too far ahead (the latest expiry is \
                                 9999-12-31T23:59:59Z; leave it out for a key that does not expire)"
                            )
                        })?,
                ),
                (None, Some(t)) => Some(
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .with_context(|| format!("--expires-at `{t}` is not an RFC 3339 instant"))?
                        .with_timezone(&chrono::Utc),
                ),
                (None, None) => None,
            };
            let policy = aurum_service::KeyPolicy {
                expires_at,
                scopes,
                rate_limit_per_s: rate_limit,
            };
            let (record, key) = platform
                .create_key_with_policy(&ctx, &name, role, policy)
                .await?;
            println!(
                "created {} key `{}` (id {}). It is shown only now:",
                role.as_str(),
                record.name,
                record.id
            );
            println!("{key}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(KeysCommand::List { json }) => {
            let keys = platform.list_keys().await?;
            if json {
                let keys: Vec<_> = keys
                    .iter()
                    .map(|k| aurum_server::wire::KeyOut::from_record(k, None))
                    .collect();
                print_json(&aurum_server::wire::KeyList { keys })?;
                return Ok(ExitCode::SUCCESS);
            }
            let now = chrono::Utc::now();
            for k in keys {
                let mut state = match (k.revoked_at, k.policy.expires_at) {
                    (Some(t), _) => format!("revoked {}", t.to_rfc3339()),
                    (None, Some(t)) if t <= now => format!("expired {}", t.to_rfc3339()),
                    (None, Some(t)) => format!("active, expires {}", t.to_rfc3339()),
                    (None, None) => "active".into(),
                };
                if let (Some(_), Some(t)) = (k.revoked_at, k.policy.expires_at) {
                    state.push_str(&format!(", expires {}", t.to_rfc3339()));
                }
                if !k.policy.scopes.is_empty() {
                    state.push_str(&format!(", models {}", k.policy.scopes.join(",")));
                }
                if let Some(r) = k.policy.rate_limit_per_s {
                    state.push_str(&format!(", {r} req/s"));
                }
                println!(
                    "{:<24} {:<8} {:<14} created {}  {}",
                    k.name,
                    k.role.as_str(),
                    k.id,
                    k.created_at.to_rfc3339(),
                    state
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(KeysCommand::Revoke { name }) => {
            let k = platform.revoke_key(&ctx, &name).await?;
            println!("revoked key `{}` (id {})", k.name, k.id);
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::Verify) => {
            let r = platform.audit_verify().await?;
            if let Some(b) = &r.first_broken {
                println!(
                    "audit chain BROKEN at record {}: {} ({} records checked)",
                    b.seq, b.reason, r.records_checked
                );
            }
            if let Some(problem) = &r.anchor_problem {
                println!("audit log BROKEN: {problem}");
            }
            if r.ok {
                let anchored = r.anchor.as_ref().map_or(0, |a| a.seq);
                println!(
                    "audit chain OK: {} records verified, signed anchor at seq {anchored}",
                    r.records_checked
                );
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::from(3))
            }
        }
        Command::Audit(AuditCommand::Tail { n, json }) => {
            let records = platform.audit_tail(n).await?;
            if json {
                let records = records
                    .iter()
                    .map(|r| aurum_server::wire::AuditOut::opened(r, platform))
                    .collect();
                print_json(&aurum_server::wire::AuditList { records })?;
                return Ok(ExitCode::SUCCESS);
            }
            for r in records {
                let model = match (&r.model, r.version) {
                    (Some(m), Some(v)) => format!(" {m} v{v}"),
                    (Some(m), None) => format!(" {m}"),
                    _ => String::new(),
                };
                println!(
                    "{:>6} {} {:<18} {:<12}{} {}",
                    r.seq, r.ts, r.event, r.actor, model, r.details
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn unreachable_config() -> Result<ExitCode> {
    bail!("config show is handled before the data directory is opened")
}

fn parse_types(specs: &[String]) -> Result<BTreeMap<String, ColumnType>> {
    specs
        .iter()
        .map(|s| {
            let (col, ty) = s
                .rsplit_once(':')
                .ok_or_else(|| anyhow!("--type `{s}` must be COLUMN:TYPE"))?;
            Ok((col.to_string(), ty.parse::<ColumnType>()?))
        })
        .collect()
}

fn parse_date_formats(specs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in specs {
        let (col, format) = s
            .split_once(':')
            .filter(|(c, f)| !c.trim().is_empty() && !f.trim().is_empty())
            .ok_or_else(|| anyhow!("--date-format `{s}` must be COLUMN:FORMAT"))?;
        if out
            .insert(col.trim().to_string(), format.trim().to_string())
            .is_some()
        {
            return Err(anyhow!("--date-format names column `{col}` twice"));
        }
    }
    Ok(out)
}

fn parse_params(specs: &[String]) -> Result<BTreeMap<String, String>> {
    specs
        .iter()
        .map(|s| {
            let (k, v) = s
                .split_once('=')
                .ok_or_else(|| anyhow!("--param `{s}` must be KEY=VALUE"))?;
            Ok((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn report(&self, stage: &str, fraction: f64) {
        self.0.set_message(stage.to_string());
        self.0.set_position((fraction * 1000.0) as u64);
    }
}

async fn train(platform: &Platform, ctx: &CallContext, args: TrainArgs) -> Result<ExitCode> {
    let family = platform.families().get(&args.kind)?;
    let (kind, task): (FamilyName, _) = (family.spec().name.parse()?, family.spec().task);
    // `--task` documents intent and is checked against the family's task.
    if let Some(asked) = &args.task {
        let asked_task = if asked == "credit" {
            "binary"
        } else {
            asked.as_str()
        };
        if asked_task != task.as_str() {
            bail!("--task {asked} does not fit kind {kind}, a {task} family");
        }
    }
    let req = TrainRequest {
        dataset: args.dataset,
        target: args.target,
        kind,
        model: args.model,
        params: parse_params(&args.params)?,
        positive_label: args.positive_label,
        alias: args.alias,
        date_column: args.date_column,
        text_columns: if args.no_text {
            Some(Vec::new())
        } else if args.text_columns.is_empty() {
            None
        } else {
            Some(args.text_columns)
        },
        text_buckets: args.text_buckets,
    };
    let bar = indicatif::ProgressBar::new(1000);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {percent:>3}% {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let result = platform
        .run_training(ctx, req, Arc::new(Bar(bar.clone())))
        .await;
    bar.finish_and_clear();
    let (job, version) = result?;
    println!(
        "job {} succeeded: registered {} version {}",
        job.id, version.model, version.version
    );
    output::print_metrics(&version.metrics_json);
    Ok(ExitCode::SUCCESS)
}

async fn report(platform: &Platform, args: crate::cli::ReportArgs) -> Result<ExitCode> {
    let model = platform.resolve(&parse_model_ref(&args.model)?).await?;
    let report = platform.version_report(&model.name, model.version).await?;
    let ext = if args.json { "json" } else { "html" };
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from(format!("{}-v{}-report.{ext}", model.name, model.version))
    });
    let text = if args.json {
        serde_json::to_string_pretty(&report)?
    } else {
        aurum_service::types::report_html(&report)
    };
    fs_err::write(&out, text)?;
    println!(
        "wrote the evaluation report of {} v{} to {}",
        model.name,
        model.version,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn parse_model_ref(s: &str) -> Result<ModelRef> {
    Ok(match s.split_once('@') {
        None => ModelRef::champion(s),
        Some((name, sel)) => match sel.parse::<u32>() {
            Ok(v) => ModelRef::version(name, v),
            Err(_) => ModelRef::alias(name, sel),
        },
    })
}

/// Prints `value` as pretty JSON (for `--json`): the same body the REST API answers.
/// `aurum data synthesize`: the source by name or file, then the service operation; the report
/// is written as JSON and printed as a table.
async fn synthesize(
    platform: &Platform,
    ctx: &CallContext,
    args: crate::cli::SynthesizeArgs,
) -> Result<ExitCode> {
    let source = match platform.get_dataset(&args.dataset).await {
        Ok((record, _)) => record.name,
        Err(_) if Path::new(&args.dataset).is_file() => {
            let path = Path::new(&args.dataset);
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or_else(|| anyhow!("--dataset `{}` has no usable file name", args.dataset))?;
            let import = platform
                .import_dataset(
                    ctx,
                    stem,
                    fs_err::read(path)?,
                    BTreeMap::new(),
                    BTreeMap::new(),
                )
                .await?;
            println!(
                "imported `{}` as dataset `{stem}` ({} rows, sha256 {})",
                args.dataset, import.record.rows, import.record.sha256
            );
            import.record.name
        }
        Err(e) => return Err(e.into()),
    };
    let req = aurum_service::SynthesisRequest {
        name: args.name,
        target: args.target,
        class: args.class,
        rows: args.rows,
        method: args.method,
        seed: args.seed,
        synthetic_only: args.synthetic_only,
        report: args.report.is_some(),
        epochs: args.epochs,
    };
    let outcome = platform.synthesize_dataset(ctx, &source, req).await?;
    let r = &outcome.import.record;
    let l = &outcome.lineage;
    println!(
        "{} dataset `{}`: {} rows ({} real + {} synthetic `{}` rows by {}, seed {}), sha256 {}",
        if outcome.import.created {
            "created"
        } else {
            "unchanged:"
        },
        r.name,
        r.rows,
        l.real_rows,
        l.synthetic_rows,
        l.class,
        l.method,
        l.seed,
        r.sha256
    );
    println!(
        "lineage: source `{}` (sha256 {})",
        l.source, l.source_sha256
    );
    if let (Some(path), Some(report)) = (&args.report, &outcome.report) {
        fs_err::write(path, serde_json::to_vec_pretty(report)?)?;
        output::print_synthesis_report(report);
        println!("report written to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A model as `GET /v1/models[/{name}]` shows it.
async fn model_out(
    platform: &Platform,
    m: &aurum_service::types::ModelRecord,
    with_versions: bool,
) -> Result<aurum_server::wire::ModelOut> {
    let aliases = platform.list_aliases(&m.name).await?;
    let versions = if with_versions {
        let vs = platform.list_versions(&m.name).await?;
        Some(
            vs.iter()
                .map(|v| aurum_server::wire::VersionOut::from_record(v, &aliases))
                .collect(),
        )
    } else {
        None
    };
    Ok(aurum_server::wire::ModelOut {
        name: m.name.clone(),
        created_at: m.created_at.to_rfc3339(),
        latest_version: (m.latest_version > 0).then_some(m.latest_version),
        aliases: aliases.into_iter().collect(),
        versions,
    })
}

async fn models(platform: &Platform, ctx: &CallContext, cmd: ModelsCommand) -> Result<ExitCode> {
    match cmd {
        ModelsCommand::List { json } => {
            let models = platform.list_models().await?;
            if json {
                let mut out = Vec::new();
                for m in &models {
                    out.push(model_out(platform, m, false).await?);
                }
                print_json(&aurum_server::wire::ModelList { models: out })?;
                return Ok(ExitCode::SUCCESS);
            }
            for m in models {
                let aliases = platform.list_aliases(&m.name).await?;
                let aliases: Vec<String> =
                    aliases.iter().map(|(a, v)| format!("{a}=v{v}")).collect();
                println!(
                    "{:<30} latest v{}  {}",
                    m.name,
                    m.latest_version,
                    aliases.join(" ")
                );
            }
        }
        ModelsCommand::Show { name, json } => {
            if json {
                let m = platform
                    .list_models()
                    .await?
                    .into_iter()
                    .find(|m| m.name == name)
                    .ok_or_else(|| anyhow!("model `{name}` not found"))?;
                print_json(&model_out(platform, &m, true).await?)?;
                return Ok(ExitCode::SUCCESS);
            }
            let aliases = platform.list_aliases(&name).await?;
            for v in platform.list_versions(&name).await? {
                let here: Vec<&str> = aliases
                    .iter()
                    .filter(|(_, n)| *n == v.version)
                    .map(|(a, _)| a.as_str())
                    .collect();
                println!(
                    "{} v{} [{}] {} dataset {} ({}) target {} by {} at {} {}",
                    v.model,
                    v.version,
                    v.kind,
                    if v.is_archived() {
                        "archived"
                    } else {
                        "active"
                    },
                    v.dataset_name,
                    &v.dataset_sha256[..12],
                    v.target,
                    v.created_by,
                    v.created_at.to_rfc3339(),
                    here.join(",")
                );
                output::print_metrics(&v.metrics_json);
            }
        }
        ModelsCommand::Alias {
            name,
            alias,
            version,
        } => {
            let from = platform.set_alias(ctx, &name, &alias, version).await?;
            match from {
                Some(f) => println!("{name}@{alias}: v{f} -> v{version}"),
                None => println!("{name}@{alias}: -> v{version}"),
            }
        }
        ModelsCommand::History { name } => {
            for h in platform.alias_history(&name).await? {
                let from = h
                    .from_version
                    .map(|v| format!("v{v}"))
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{} {:<12} {} -> v{} by {}",
                    h.moved_at.to_rfc3339(),
                    h.alias,
                    from,
                    h.to_version,
                    h.moved_by
                );
            }
        }
        ModelsCommand::Archive { name, version } => {
            platform.archive_version(ctx, &name, version).await?;
            println!("archived {name} v{version}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Binds, prints the bootstrap key if one was created, and serves until SIGINT/SIGTERM.
async fn serve(
    platform: &Platform,
    after_bind: Option<Box<dyn FnOnce(std::net::SocketAddr) + Send>>,
) -> Result<ExitCode> {
    if let Some(key) = platform.ensure_bootstrap_admin().await? {
        println!(
            "No API keys existed: created admin key (shown once; also saved to {} with mode 0600):",
            platform.data_dir().join("admin.key").display()
        );
        println!("{key}");
    }
    let addr = platform.config().server.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "aurum listening");
    let tls = platform.config().server.tls_cert_file.is_some();
    // Fail before announcing anything when the certificate or key cannot be used.
    aurum_server::tls::acceptor(&platform.config().server, &[b"http/1.1"])?;
    let scheme = if tls { "https" } else { "http" };
    println!("aurum listening on {scheme}://{local}");
    if let Some(grpc) = platform.config().server.grpc_listen {
        println!("aurum gRPC (Open Inference Protocol) on {grpc}");
    }
    if let Some(f) = after_bind {
        f(local);
    }
    aurum_server::serve(listener, AppState::new(platform.clone()), shutdown_signal()).await?;
    println!("aurum stopped");
    Ok(ExitCode::SUCCESS)
}

async fn quickstart(platform: &Platform) -> Result<ExitCode> {
    let ctx = CallContext::cli();
    let dataset = "german-credit";
    let model = "credit-default";
    println!(
        "aurum quickstart — data dir {}",
        platform.data_dir().display()
    );
    let import = platform
        .import_dataset(
            &ctx,
            dataset,
            DEMO_DATASET.to_vec(),
            BTreeMap::new(),
            BTreeMap::new(),
        )
        .await?;
    println!(
        "1. dataset `{dataset}`: {} rows, {} columns (UCI German Credit, CC BY 4.0){}",
        import.record.rows,
        import.record.columns,
        if import.created {
            ""
        } else {
            " — already imported"
        }
    );
    let has_champion = platform.resolve(&ModelRef::champion(model)).await.is_ok();
    if has_champion {
        println!("2. model `{model}` already has a champion; skipping training");
    } else {
        let req = TrainRequest {
            dataset: dataset.into(),
            target: "creditability".into(),
            kind: FamilyName::new("logistic")?,
            model: model.into(),
            params: BTreeMap::from([("penalty".to_string(), "l2".to_string())]),
            positive_label: Some("bad".into()),
            alias: Some("champion".into()),
            date_column: None,
            text_columns: None,
            text_buckets: None,
        };
        let bar = indicatif::ProgressBar::new(1000);
        let result = platform
            .run_training(&ctx, req, Arc::new(Bar(bar.clone())))
            .await;
        bar.finish_and_clear();
        let (_, version) = result?;
        println!(
            "2. trained logistic regression `{model}` v{} (probability of `bad`), set as champion",
            version.version
        );
        output::print_metrics(&version.metrics_json);
    }
    let key = match platform.ensure_bootstrap_admin().await? {
        Some(k) => k,
        None => {
            let path = platform.data_dir().join("admin.key");
            match fs_err::read_to_string(&path) {
                Ok(k) => k.trim().to_string(),
                Err(_) => {
                    let name = format!("quickstart-{}", chrono_like_suffix());
                    platform.create_key(&ctx, &name, Role::Admin).await?.1
                }
            }
        }
    };
    let sample = platform.sample_rows(dataset, 1, "creditability").await?;
    let record: serde_json::Map<String, serde_json::Value> = sample
        .first()
        .map(|row| {
            row.iter()
                .map(|(k, v)| (k.clone(), value_json(v)))
                .collect()
        })
        .unwrap_or_default();
    let body = serde_json::json!({"records": [record], "explain": true}).to_string();
    let body_quoted = body.replace('\'', "'\\''");
    let after_bind: Box<dyn FnOnce(std::net::SocketAddr) + Send> = Box::new(move |addr| {
        println!("3. admin API key: {key}");
        println!("4. try it:\n");
        println!(
            "curl -s -X POST http://{addr}/v1/models/{model}/predict \\\n  -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n  -d '{body_quoted}'\n"
        );
        println!("Press Ctrl-C to stop.");
    });
    serve(platform, Some(after_bind)).await
}

fn chrono_like_suffix() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().to_string())
        .unwrap_or_else(|_| "0".into())
}

fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Float(x) => serde_json::json!(x),
        Value::Integer(i) => serde_json::json!(i),
        Value::Boolean(b) => serde_json::json!(b),
        Value::Str(s) => serde_json::json!(s),
        Value::Date(_) | Value::DateTime(_) => serde_json::json!(v.to_string()),
    }
}

/// A duration written as a whole number and a unit: `30s`, `15m`, `12h`, `90d`.
fn parse_duration(text: &str) -> anyhow::Result<chrono::Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| anyhow!("duration `{text}` needs a unit: s, m, h or d (e.g. 90d)"))?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| anyhow!("duration `{text}` must start with a whole number"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => bail!("duration `{text}`: unit `{unit}` must be s, m, h or d"),
    };
    if n <= 0 {
        bail!("duration `{text}` must be positive");
    }
    n.checked_mul(seconds)
        .and_then(chrono::Duration::try_seconds)
        .ok_or_else(|| anyhow!("duration `{text}` is too long"))
}

#[cfg(test)]
mod duration_tests {
    #[test]
    fn durations_parse_with_units_and_refuse_the_rest() {
        assert_eq!(super::parse_duration("90d").unwrap().num_days(), 90);
        assert_eq!(super::parse_duration("15m").unwrap().num_seconds(), 900);
        for bad in ["90", "d", "-1d", "0h", "5w", "1.5h"] {
            assert!(super::parse_duration(bad).is_err(), "{bad}");
        }
    }
}
