//! Command-line syntax (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "aurum",
    version,
    about = "Financial AI models as a service: train, register, serve, explain and audit."
)]
pub struct Cli {
    /// Data directory (registry, audit log, artifacts). Overrides AURUM_DATA_DIR and the config file.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Config file (default: ./aurum.toml when it exists; AURUM_CONFIG also names one).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API (and the Open Inference Protocol over gRPC with --grpc-listen).
    Serve(ServeArgs),
    /// Create a demo data dir, train a credit model, and serve it (the quick start).
    Quickstart(ServeArgs),
    /// Import and inspect datasets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Train a model version from a dataset and register it.
    Train(TrainArgs),
    /// Score records from a JSON file with a registered model (in process).
    Predict(PredictArgs),
    /// Write a version's evaluation report (HTML, or JSON with --json).
    Report(ReportArgs),
    /// Import a model trained elsewhere (LightGBM text, XGBoost JSON) as a new version.
    Import(ImportArgs),
    /// Forecast a column of a CSV file: prints a table and writes an HTML plot.
    Forecast(ForecastArgs),
    /// Registered models, versions and aliases.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Stored artifacts (datasets, models, reports).
    #[command(subcommand)]
    Storage(StorageCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Also serve the Open Inference Protocol over gRPC on this address (default: no gRPC).
    #[arg(long, value_name = "ADDR")]
    pub grpc_listen: Option<String>,
    /// When predictions are acknowledged: `sync` (after their audit record is on disk; default)
    /// or `buffered` (before; a crash can lose the last moments' records).
    #[arg(long, value_name = "MODE")]
    pub audit_durability: Option<String>,
    /// Serve REST and gRPC over TLS with this PEM certificate chain (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: refuse clients without a certificate from these PEM authorities.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Import a CSV or Parquet file as a named, immutable dataset.
    Import {
        file: PathBuf,
        #[arg(long)]
        name: String,
        /// Type override `column:type` (repeatable): float, integer, boolean, categorical, date, datetime, text.
        #[arg(long = "type", value_name = "COLUMN:TYPE")]
        types: Vec<String>,
        /// Explicit date format `column:format` (repeatable), chrono strftime syntax, e.g.
        /// `opened:%d.%m.%Y`. Stored with the dataset and its models, so serving parses the
        /// column the same way.
        #[arg(long = "date-format", value_name = "COLUMN:FORMAT")]
        date_formats: Vec<String>,
    },
    /// Show a dataset's schema and column profile.
    Show {
        name: String,
        /// Print JSON (the body of `GET /v1/datasets/{name}`).
        #[arg(long)]
        json: bool,
    },
    /// List datasets.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Generate rows of one class (SMOTE or a tabular VAE) into a new dataset with lineage.
    Synthesize(SynthesizeArgs),
}

#[derive(Debug, Args)]
pub struct SynthesizeArgs {
    /// The source: a registered dataset's name, or a CSV/Parquet file (imported first under
    /// its file stem).
    #[arg(long)]
    pub dataset: String,
    /// The target column.
    #[arg(long)]
    pub target: String,
    /// The class whose rows are generated, as its cells print (e.g. `bad`).
    #[arg(long)]
    pub class: String,
    /// Synthetic rows to generate (1 to 1,000,000).
    #[arg(long, allow_hyphen_values = true)]
    pub rows: i64,
    /// `vae` (tabular variational autoencoder) or `smote`.
    #[arg(long, default_value = "vae")]
    pub method: String,
    /// Seed of every random draw: the same seed gives the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The new dataset's name (default `<source>-<method>-<rows>-s<seed>`).
    #[arg(long)]
    pub name: Option<String>,
    /// Write only the synthetic rows (default: the source rows, then the synthetic rows).
    #[arg(long)]
    pub synthetic_only: bool,
    /// Also compute the utility and privacy report, write it to this JSON file and print it.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// VAE training epochs (default 300, with early stopping).
    #[arg(long)]
    pub epochs: Option<usize>,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[arg(long)]
    pub dataset: String,
    #[arg(long)]
    pub target: String,
    /// Task, checked against the family's: `credit` (binary default prediction with decisions
    /// and reason codes), `binary`, `multiclass`, `regression`, `forecast`, `anomaly`, `ranking`
    /// or `sequence_classification`. By default the family's own task.
    #[arg(long)]
    pub task: Option<String>,
    /// Model family by name: logistic, scorecard, gbdt, forecast, … (an unknown name is refused
    /// with the list of known families).
    #[arg(long)]
    pub kind: String,
    /// Registered model name for the new version.
    #[arg(long)]
    pub model: String,
    /// Training parameter `key=value` (repeatable), e.g. `--param penalty=l1 --param lambda=0.01`.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Target label to treat as the positive (event) class.
    #[arg(long)]
    pub positive_label: Option<String>,
    /// Alias to point at the new version when training succeeds (e.g. champion).
    #[arg(long)]
    pub alias: Option<String>,
    /// Date column: hold out the latest rows (time-ordered split) instead of a stratified sample.
    #[arg(long)]
    pub date_column: Option<String>,
    /// Free-text column to use as a feature (repeatable; hashed TF-IDF or the family's text
    /// encoder). Without it, every text column whose values repeat and whose words recur.
    #[arg(
        long = "text-column",
        value_name = "COLUMN",
        conflicts_with = "no_text"
    )]
    pub text_columns: Vec<String>,
    /// Use no text column as a feature.
    #[arg(long)]
    pub no_text: bool,
    /// Hashed TF-IDF buckets per text column (2–256, default 16).
    #[arg(long)]
    pub text_buckets: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// CSV file with a date column and value column(s).
    #[arg(long)]
    pub data: PathBuf,
    /// Date column.
    #[arg(long)]
    pub date: String,
    /// Value column.
    #[arg(long)]
    pub value: String,
    /// Steps ahead.
    #[arg(long)]
    pub horizon: usize,
    /// auto, auto_arima, arima, ets, mstl, mstl_arima, naive, seasonal_naive, drift, mean,
    /// moving_average.
    #[arg(long, default_value = "auto")]
    pub model: String,
    /// Seasonal period, or several comma-separated for mstl (e.g. 288,2016); default from the
    /// frequency.
    #[arg(long, value_name = "P[,P...]")]
    pub season_period: Option<String>,
    /// ARIMA order p,d,q for `--model arima`.
    #[arg(long, value_name = "P,D,Q")]
    pub order: Option<String>,
    /// Seasonal ARIMA order P,D,Q,s for `--model arima`.
    #[arg(long, value_name = "P,D,Q,S")]
    pub seasonal_order: Option<String>,
    /// Frequency instead of the inferred one: daily, business_daily, trading_days, weekly,
    /// monthly, quarterly, yearly, index.
    #[arg(long)]
    pub frequency: Option<String>,
    /// How the date column is written when it is not ISO, US m/d/yyyy or integers: a chrono
    /// format such as %d/%m/%Y, or `index`.
    #[arg(long)]
    pub date_format: Option<String>,
    /// Market holidays skipped by forecast dates, comma-separated YYYY-MM-DD.
    #[arg(long, value_name = "DATES")]
    pub holidays: Option<String>,
    /// Intraday session OPEN-CLOSE (e.g. 09:30-16:00) instead of the one inferred from the bars.
    #[arg(long, value_name = "HH:MM-HH:MM")]
    pub session: Option<String>,
    /// none, log or box_cox.
    #[arg(long, default_value = "none")]
    pub transform: String,
    /// Missing-value policy: none, ffill, linear, zero, drop.
    #[arg(long, default_value = "none")]
    pub fill: String,
    /// Where to write the HTML plot (default: forecast.html).
    #[arg(long, default_value = "forecast.html")]
    pub out: PathBuf,
    /// Print the forecast as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The model file.
    pub file: PathBuf,
    /// `lightgbm` (text model, `Booster.save_model`), `xgboost` (JSON, `save_model("m.json")`)
    /// or `onnx` (an ONNX graph; also `onnx_multiclass`, `onnx_regression` to force the task).
    #[arg(long, value_parser = ["lightgbm", "xgboost", "onnx", "onnx_multiclass", "onnx_regression"])]
    pub format: String,
    /// Registered model name for the new version.
    #[arg(long)]
    pub model: String,
    /// Label threshold on the probability (default 0.5).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Alias to point at the new version (e.g. champion).
    #[arg(long)]
    pub alias: Option<String>,
    /// Import parameter `key=value` (repeatable), e.g. `--param features=age,income
    /// --param labels=bad,good` for an ONNX model.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// `NAME` (champion), `NAME@ALIAS` or `NAME@VERSION`.
    pub model: String,
    /// Output file (default: `<name>-v<version>-report.html` or `.json`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the JSON report instead of HTML.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// `NAME` (champion), `NAME@ALIAS` or `NAME@VERSION`.
    pub model: String,
    /// Records to score, by extension: `.json` (`{"records": [...]}` or an array, printed), or a
    /// whole file streamed to --output: `.csv`, `.parquet`, `.jsonl`.
    #[arg(long)]
    pub input: PathBuf,
    /// Scored file (`.csv`, `.parquet` or `.jsonl`), one row per scored input row
    /// (default: `<input>.scored.<ext>` beside the input).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Refused rows with line, column and code (`.csv` or `.jsonl`; default:
    /// `<stem>.errors.csv` beside the output: `scores.errors.csv` for `scores.csv`).
    #[arg(long, value_name = "FILE")]
    pub errors: Option<PathBuf>,
    /// Input column copied to the output before the scores (repeatable), e.g. an id.
    #[arg(long = "keep", value_name = "COL")]
    pub keep: Vec<String>,
    /// Stop at the first row that cannot be scored, with exit code 4.
    #[arg(long)]
    pub strict: bool,
    /// Include per-feature contributions.
    #[arg(long)]
    pub explain: bool,
    /// Also write a `prediction` audit record per 256 rows, as REST would (one
    /// `batch_prediction` record per run is always written).
    #[arg(long)]
    pub audit_rows: bool,
    /// Rows read and scored at a time (memory grows with it, not with the file).
    #[arg(long, default_value_t = 8192, value_name = "N")]
    pub chunk_rows: usize,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List registered models.
    List {
        /// Print JSON (the body of `GET /v1/models`).
        #[arg(long)]
        json: bool,
    },
    /// Show a model's versions with metrics and lineage.
    Show {
        name: String,
        /// Print JSON (the body of `GET /v1/models/{name}`).
        #[arg(long)]
        json: bool,
    },
    /// Point an alias at a version.
    Alias {
        name: String,
        alias: String,
        version: u32,
    },
    /// Show every alias move of a model.
    History { name: String },
    /// Archive a version.
    Archive { name: String, version: u32 },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key; it is printed once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["admin", "analyst", "client"])]
        role: String,
        /// Refuse the key after this long: a number with `s`, `m`, `h` or `d` (`90d`).
        #[arg(long, conflicts_with = "expires_at")]
        expires_in: Option<String>,
        /// Refuse the key after this RFC 3339 instant.
        #[arg(long)]
        expires_at: Option<String>,
        /// A model the key may use (repeatable); a trailing `*` makes a prefix (`credit-*`).
        /// Without any, every model.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Sustained requests per second the key may make (bursts of as many): on each server,
        /// or in all when the servers share `registry.limits_url`.
        #[arg(long)]
        rate_limit: Option<u32>,
    },
    /// List keys (never their secrets).
    List {
        /// Print JSON (the body of `GET /v1/keys`).
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by name or id.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain and its signed anchor; exit code 3 names the first broken record,
    /// or a truncated or rewritten log.
    Verify,
    /// Print the last records.
    Tail {
        #[arg(short = 'n', long, default_value_t = 20)]
        n: usize,
        /// Print JSON (the body of `GET /v1/audit`).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Re-seal every stored artifact with the current (first) encryption key: run after adding
    /// a new key in front of the old one, then remove the old key.
    Reencrypt,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets redacted).
    Show,
}
