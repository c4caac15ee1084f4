//! `lstm` and `gru`: recurrent-network forecasters of a univariate series, trained with burn and
//! served by a hand-written forward pass, plugged into `aurum-forecast` through its external
//! forecaster registry ([`register_forecasters`]).
//!
//! **Model.** The series is optionally logged (`log`) and first-differenced (`difference`, on by
//! default), then standardised with the mean and standard deviation of the training part. Each
//! supervised example is a window of the last `lookback` standardised values and the next value.
//! One recurrent layer (LSTM gates `i, f, g, o`; GRU gates `r, z, n`; PyTorch's equations and
//! weight shapes, both input and hidden biases) reads the window, inverted dropout is applied to
//! its last hidden state while training, and a dense layer maps it to the next value. AdamW
//! (decoupled weight decay) minimises the mean squared error.
//!
//! **Multi-step forecasts are recursive**: the one-step network is applied `h` times, each
//! forecast appended to the window. Why not direct multi-output heads: a fitted model must
//! forecast any horizon the caller asks for later (the forecasting contract does not know `h` at
//! fit time), and one head keeps the number of weights independent of the horizon on short
//! financial series. The cost is error accumulation, which the intervals below measure.
//!
//! **Validation and early stopping** use a time-ordered tail: the last `validation_fraction` of
//! the windows (at least two), never shuffled into training. The validation loss is the one-step
//! MSE of the served forward pass; training stops after `patience` epochs without improvement and
//! keeps the best epoch's weights (`patience = 0` trains every epoch and keeps the last).
//!
//! **Prediction intervals are a residual bootstrap per horizon step.** From every origin in the
//! validation tail the fitted model forecasts recursively as far as the data go; the errors at
//! step `k` (on the log scale when `log` is set) form step `k`'s empirical error distribution,
//! and a level-`L` interval at step `k` is the forecast plus that distribution's
//! `(1 − L/100)/2` and `(1 + L/100)/2` quantiles, widened where needed to at least the normal
//! multiplier times the step's root mean squared error (a few dozen errors cannot resolve a
//! 2.5 % tail, and the tail early stopping chose flatters the model). Steps with fewer than
//! [`MIN_RESIDUALS`] errors reuse the last well-measured step's quantiles scaled by `√(k/k₀)` (a
//! random walk's growth), and the half-widths are made non-decreasing in `k`, so intervals never
//! narrow with the horizon. The bounds always contain the point forecast.
//!
//! **Reproducibility.** Every random draw (initial weights, batch order, dropout) comes from the
//! seeded ChaCha8 stream of [`crate::train`]; the same series, options and seed give the same
//! weights. The stored state holds the `f32` weights, the scaler and the bootstrap residuals, so a
//! reloaded model forecasts the same bits.

use std::collections::BTreeMap;
use std::sync::Arc;

use aurum_contract::{ModelError, ParamReader};
use aurum_core::{NoProgress, Progress};
use aurum_forecast::{
    ExternalForecast, ExternalForecaster, ExternalModel, ExternalSpec, ForecastError,
};
use burn::module::Param;
use burn::nn::Linear;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::dense::DenseLayer;
use crate::train::{self, EarlyStopping, Optimisation};

/// Fewest validation errors a horizon step needs for its own quantiles.
pub const MIN_RESIDUALS: usize = 8;

/// Version of the stored state.
const STATE_VERSION: u32 = 1;

/// The recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    /// Long short-term memory (gates `i, f, g, o`).
    Lstm,
    /// Gated recurrent unit (gates `r, z, n`).
    Gru,
}

impl Cell {
    /// The registered name: `lstm` or `gru`.
    pub fn name(self) -> &'static str {
        match self {
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
        }
    }

    /// Gate blocks per layer.
    fn gates(self) -> usize {
        match self {
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

/// The options a recurrent forecaster accepts, sorted.
pub const OPTION_NAMES: &[&str] = &[
    "batch_size",
    "difference",
    "dropout",
    "epochs",
    "hidden",
    "learning_rate",
    "log",
    "lookback",
    "patience",
    "seed",
    "validation_fraction",
    "weight_decay",
];

/// Typed, validated options.
#[derive(Clone, Debug, PartialEq)]
pub struct RecurrentParams {
    pub cell: Cell,
    /// Hidden units of the recurrent layer.
    pub hidden: usize,
    /// Window length; 0 picks `max(2 · period, 8)`.
    pub lookback: usize,
    /// Model first differences (on by default).
    pub difference: bool,
    /// Model the logarithm (positive series only).
    pub log: bool,
    pub optimisation: Optimisation,
    pub seed: u64,
}

fn option_error(e: ModelError) -> ForecastError {
    match e {
        ModelError::InvalidParam {
            name,
            value,
            expected,
        } => ForecastError::InvalidField {
            field: format!("model.{name}"),
            message: format!("invalid value `{value}` for option `{name}`: expected {expected}"),
        },
        ModelError::UnknownParam { name, allowed, .. } => ForecastError::InvalidField {
            field: format!("model.{name}"),
            message: format!("unknown option `{name}` (allowed: {})", allowed.join(", ")),
        },
        other => ForecastError::InvalidParameter(other.to_string()),
    }
}

impl RecurrentParams {
    /// The defaults of `cell`.
    pub fn defaults(cell: Cell) -> Self {
        Self {
            cell,
            hidden: 32,
            lookback: 0,
            difference: true,
            log: false,
            optimisation: Optimisation {
                epochs: 200,
                batch_size: 32,
                learning_rate: 5e-3,
                weight_decay: 1e-4,
                dropout: 0.1,
                patience: 20,
                validation_fraction: 0.2,
            },
            seed: 0,
        }
    }

    /// Reads `options` (the `key=value` pairs of `model = "lstm:hidden=16,…"`) over the defaults.
    ///
    /// # Errors
    ///
    /// [`ForecastError::InvalidField`] naming the option (`model.hidden`) for an unknown option or
    /// a value out of its domain.
    pub fn from_options(
        cell: Cell,
        options: &BTreeMap<String, String>,
    ) -> Result<Self, ForecastError> {
        let r = ParamReader::new(cell.name(), options, OPTION_NAMES).map_err(option_error)?;
        let mut p = Self::defaults(cell);
        p.optimisation = Optimisation::read(&r, p.optimisation.clone()).map_err(option_error)?;
        if p.optimisation.validation_fraction == 0.0 {
            return Err(option_error(ModelError::invalid_param(
                "validation_fraction",
                0,
                "a number in (0, 0.5]: the validation tail gives early stopping and the \
                 prediction intervals",
            )));
        }
        if let Some(h) = r.usize("hidden", 1..=512).map_err(option_error)? {
            p.hidden = h;
        }
        if let Some(l) = r.usize("lookback", 1..=1024).map_err(option_error)? {
            p.lookback = l;
        }
        let flag = [("true", true), ("false", false), ("1", true), ("0", false)];
        if let Some(d) = r.choice("difference", &flag).map_err(option_error)? {
            p.difference = d;
        }
        if let Some(l) = r.choice("log", &flag).map_err(option_error)? {
            p.log = l;
        }
        if let Some(s) = r.str("seed") {
            p.seed = s.parse().map_err(|_| {
                option_error(ModelError::invalid_param(
                    "seed",
                    s,
                    "an integer in 0..=2^64-1",
                ))
            })?;
        }
        Ok(p)
    }

    /// The window length for a series of seasonal period `period`.
    pub fn lookback_for(&self, period: usize) -> usize {
        if self.lookback > 0 {
            self.lookback
        } else {
            (2 * period).clamp(8, 256)
        }
    }

    /// The canonical options, every key present.
    pub fn to_options(&self) -> BTreeMap<String, String> {
        let o = &self.optimisation;
        [
            ("batch_size", o.batch_size.to_string()),
            ("difference", self.difference.to_string()),
            ("dropout", o.dropout.to_string()),
            ("epochs", o.epochs.to_string()),
            ("hidden", self.hidden.to_string()),
            ("learning_rate", o.learning_rate.to_string()),
            ("log", self.log.to_string()),
            ("lookback", self.lookback.to_string()),
            ("patience", o.patience.to_string()),
            ("seed", self.seed.to_string()),
            ("validation_fraction", o.validation_fraction.to_string()),
            ("weight_decay", o.weight_decay.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// The weights of one recurrent layer and its head, as served. `wx` is `[1, G·H]`, `wh`
/// `[H, G·H]` (row-major, burn's `[d_in, d_out]` layout), `bx` and `bh` `[G·H]`, with `G` gate
/// blocks in PyTorch's order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecurrentWeights {
    pub cell: Cell,
    pub hidden: usize,
    pub wx: Vec<f32>,
    pub wh: Vec<f32>,
    pub bx: Vec<f32>,
    pub bh: Vec<f32>,
    pub head: DenseLayer,
}

fn sig(x: f64) -> f64 {
    crate::dense::sigmoid(x)
}

impl RecurrentWeights {
    fn check(&self) -> Result<(), String> {
        let gh = self.cell.gates() * self.hidden;
        if self.hidden == 0
            || self.wx.len() != gh
            || self.wh.len() != self.hidden * gh
            || self.bx.len() != gh
            || self.bh.len() != gh
        {
            return Err(format!(
                "recurrent weights do not have the shape of a {} layer of {} units",
                self.cell.name(),
                self.hidden
            ));
        }
        self.head.check("head")?;
        if self.head.d_in != self.hidden || self.head.d_out != 1 {
            return Err("the head does not map the hidden state to one value".into());
        }
        if self
            .wx
            .iter()
            .chain(&self.wh)
            .chain(&self.bx)
            .chain(&self.bh)
            .any(|w| !w.is_finite())
        {
            return Err("a recurrent weight is not finite".into());
        }
        Ok(())
    }

    /// The next standardised value after `window`, accumulated in `f64` in a fixed order.
    pub fn forward(&self, window: &[f64]) -> f64 {
        let hn = self.hidden;
        let gh = self.cell.gates() * hn;
        let mut h = vec![0.0f64; hn];
        let mut c = vec![0.0f64; hn];
        let mut gx = vec![0.0f64; gh];
        let mut ghh = vec![0.0f64; gh];
        for &x in window {
            for j in 0..gh {
                gx[j] = f64::from(self.bx[j]) + x * f64::from(self.wx[j]);
                ghh[j] = f64::from(self.bh[j]);
            }
            for (i, &hi) in h.iter().enumerate() {
                let row = &self.wh[i * gh..(i + 1) * gh];
                for (g, &w) in ghh.iter_mut().zip(row) {
                    *g += hi * f64::from(w);
                }
            }
            match self.cell {
                Cell::Lstm => {
                    for j in 0..hn {
                        let i = sig(gx[j] + ghh[j]);
                        let f = sig(gx[hn + j] + ghh[hn + j]);
                        let g = (gx[2 * hn + j] + ghh[2 * hn + j]).tanh();
                        let o = sig(gx[3 * hn + j] + ghh[3 * hn + j]);
                        c[j] = f * c[j] + i * g;
                        h[j] = o * c[j].tanh();
                    }
                }
                Cell::Gru => {
                    for j in 0..hn {
                        let r = sig(gx[j] + ghh[j]);
                        let z = sig(gx[hn + j] + ghh[hn + j]);
                        let n = (gx[2 * hn + j] + r * ghh[2 * hn + j]).tanh();
                        h[j] = n + z * (h[j] - n);
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(1);
        self.head.forward(&h, &mut out);
        out[0]
    }
}

/// The network as burn trains it (same shapes as [`RecurrentWeights`]).
#[derive(Module, Debug)]
struct RecurrentNet {
    wx: Param<Tensor<2>>,
    wh: Param<Tensor<2>>,
    bx: Param<Tensor<1>>,
    bh: Param<Tensor<1>>,
    head: Linear,
}

impl RecurrentNet {
    fn from_weights(w: &RecurrentWeights, device: &Device) -> Self {
        let gh = w.cell.gates() * w.hidden;
        let p2 = |v: &[f32], rows: usize| {
            Param::from_data(TensorData::new(v.to_vec(), [rows, gh]), device)
        };
        let p1 = |v: &[f32]| Param::from_data(TensorData::new(v.to_vec(), [gh]), device);
        Self {
            wx: p2(&w.wx, 1),
            wh: p2(&w.wh, w.hidden),
            bx: p1(&w.bx),
            bh: p1(&w.bh),
            head: train::to_burn_linear(&w.head, device),
        }
    }

    fn snapshot(&self, cell: Cell, hidden: usize) -> Result<RecurrentWeights, ForecastError> {
        let gh = cell.gates() * hidden;
        let read =
            |t: Tensor<1>| train::read_f32(t).map_err(|e| ForecastError::FitFailed(e.to_string()));
        let w = RecurrentWeights {
            cell,
            hidden,
            wx: read(self.wx.val().reshape([gh]))?,
            wh: read(self.wh.val().reshape([hidden * gh]))?,
            bx: read(self.bx.val())?,
            bh: read(self.bh.val())?,
            head: train::from_burn_linear(&self.head)
                .map_err(|e| ForecastError::FitFailed(e.to_string()))?,
        };
        w.check().map_err(ForecastError::FitFailed)?;
        Ok(w)
    }

    /// `[batch, lookback]` windows → `[batch, 1]` next values.
    fn forward(
        &self,
        x: Tensor<2>,
        cell: Cell,
        hn: usize,
        mask: Option<Tensor<2>>,
        device: &Device,
    ) -> Tensor<2> {
        let [b, steps] = x.dims();
        let wx = self.wx.val();
        let wh = self.wh.val();
        let bx: Tensor<2> = self.bx.val().unsqueeze();
        let bh: Tensor<2> = self.bh.val().unsqueeze();
        let mut h = Tensor::<2>::zeros([b, hn], device);
        let mut c = Tensor::<2>::zeros([b, hn], device);
        for t in 0..steps {
            let xt = x.clone().narrow(1, t, 1);
            let gx = xt.matmul(wx.clone()) + bx.clone();
            let gh = h.clone().matmul(wh.clone()) + bh.clone();
            match cell {
                Cell::Lstm => {
                    let g = gx + gh;
                    let i = sigmoid(g.clone().narrow(1, 0, hn));
                    let f = sigmoid(g.clone().narrow(1, hn, hn));
                    let gg = g.clone().narrow(1, 2 * hn, hn).tanh();
                    let o = sigmoid(g.narrow(1, 3 * hn, hn));
                    c = f * c + i * gg;
                    h = o * c.clone().tanh();
                }
                Cell::Gru => {
                    let r = sigmoid(gx.clone().narrow(1, 0, hn) + gh.clone().narrow(1, 0, hn));
                    let z = sigmoid(gx.clone().narrow(1, hn, hn) + gh.clone().narrow(1, hn, hn));
                    let n = (gx.narrow(1, 2 * hn, hn) + r * gh.narrow(1, 2 * hn, hn)).tanh();
                    h = n.clone() + z * (h - n);
                }
            }
        }
        if let Some(m) = mask {
            h = h * m;
        }
        self.head.forward(h)
    }
}

/// PyTorch's initialisation of a recurrent layer: every weight and bias uniform in `±1/√H`.
fn init_weights(cell: Cell, hidden: usize, rng: &mut train::SeededRng) -> RecurrentWeights {
    let gh = cell.gates() * hidden;
    let k = 1.0 / (hidden as f64).sqrt();
    let mut draw =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-k..k) as f32).collect() };
    let wx = draw(gh);
    let wh = draw(hidden * gh);
    let bx = draw(gh);
    let bh = draw(gh);
    RecurrentWeights {
        cell,
        hidden,
        wx,
        wh,
        bx,
        bh,
        head: train::linear_init(hidden, 1, rng),
    }
}

/// The training summary stored with the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingLog {
    pub epochs_run: usize,
    pub best_epoch: usize,
    /// One-step validation MSE (standardised scale) of the kept weights.
    pub validation_loss: f64,
    pub training_windows: usize,
    pub validation_windows: usize,
    /// Wall-clock seconds per epoch; not stored (the state depends only on data, options, seed).
    #[serde(skip)]
    pub seconds_per_epoch: f64,
}

/// A fitted `lstm` or `gru` forecaster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecurrentModel {
    /// The canonical options (including the resolved `lookback`).
    pub options: BTreeMap<String, String>,
    cell: Cell,
    lookback: usize,
    difference: bool,
    log: bool,
    /// Standardisation of the (differenced) working series.
    mean: f64,
    scale: f64,
    weights: RecurrentWeights,
    /// The last `lookback + 1` values of the working series (after `log`), oldest first.
    recent: Vec<f64>,
    /// Validation errors per horizon step (on the working scale), each sorted ascending.
    residuals: Vec<Vec<f64>>,
    training: TrainingLog,
}

#[derive(Serialize, Deserialize)]
struct StoredState {
    state_version: u32,
    model: RecurrentModel,
}

fn too_short(needed: usize, got: usize, lookback: usize) -> ForecastError {
    ForecastError::TooFewPoints {
        what: format!("a recurrent forecaster with lookback {lookback}"),
        needed,
        got,
    }
}

/// Quantile `q` of ascending `sorted` (linear interpolation, type 7).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Fits an `lstm` or `gru` on `y` (oldest first), reporting progress per epoch; the thread's
/// cancellation token ([`aurum_forecast::with_cancel`]) is checked every epoch.
///
/// # Errors
///
/// Non-finite or (with `log`) non-positive values, a series too short for the window and the
/// validation tail, cancellation, or a diverging fit.
pub fn fit(
    y: &[f64],
    params: &RecurrentParams,
    period: usize,
    progress: &dyn Progress,
) -> Result<RecurrentModel, ForecastError> {
    if let Some(index) = y.iter().position(|v| !v.is_finite()) {
        return Err(ForecastError::NonFinite {
            index,
            value: y[index].to_string(),
        });
    }
    if params.log && y.iter().any(|v| *v <= 0.0) {
        return Err(ForecastError::InvalidField {
            field: "model.log".into(),
            message: "log=true needs a strictly positive series".into(),
        });
    }
    let lookback = params.lookback_for(period);
    let opt = &params.optimisation;
    let z: Vec<f64> = if params.log {
        y.iter().map(|v| v.ln()).collect()
    } else {
        y.to_vec()
    };
    let d: Vec<f64> = if params.difference {
        z.windows(2).map(|w| w[1] - w[0]).collect()
    } else {
        z.clone()
    };
    // Windows: target d[t] from d[t - lookback .. t], t = lookback .. n_d.
    let lag = usize::from(params.difference);
    let needed = lookback + lag + 12;
    if d.len() < lookback + 12 {
        return Err(too_short(needed, y.len(), lookback));
    }
    let n_windows = d.len() - lookback;
    let n_valid = ((opt.validation_fraction * n_windows as f64).round() as usize).max(2);
    let n_train = n_windows - n_valid;
    if n_train < 8 {
        return Err(too_short(needed + 8 - n_train, y.len(), lookback));
    }
    // The scaler sees only what the training windows see.
    let seen = &d[..lookback + n_train];
    let mean = seen.iter().sum::<f64>() / seen.len() as f64;
    let var = seen.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / seen.len() as f64;
    let scale = if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 };
    let s: Vec<f64> = d.iter().map(|v| (v - mean) / scale).collect();
    let window = |t: usize| &s[t - lookback..t];

    let mut rng = train::rng(params.seed);
    let device = Device::flex().autodiff();
    let init = init_weights(params.cell, params.hidden, &mut rng);
    let mut model = RecurrentNet::from_weights(&init, &device);
    let mut optim = AdamWConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(opt.weight_decay as f32)
        .init();
    let train_targets: Vec<usize> = (lookback..lookback + n_train).collect();
    let valid_targets: Vec<usize> = (lookback + n_train..d.len()).collect();
    let valid_loss = |w: &RecurrentWeights| {
        valid_targets
            .iter()
            .map(|&t| (w.forward(window(t)) - s[t]).powi(2))
            .sum::<f64>()
            / valid_targets.len() as f64
    };
    let mut stopping = EarlyStopping::new(opt.patience);
    let started = std::time::Instant::now();
    let mut epochs_run = 0;
    let hn = params.hidden;
    for epoch in 1..=opt.epochs {
        aurum_forecast::check_cancelled()?;
        for batch in train::epoch_batches(&train_targets, opt.batch_size, &mut rng) {
            let b = batch.len();
            let mut xs = Vec::with_capacity(b * lookback);
            for &t in &batch {
                xs.extend(window(t).iter().map(|&v| v as f32));
            }
            let ys: Vec<f32> = batch.iter().map(|&t| s[t] as f32).collect();
            let x = Tensor::<2>::from_data(TensorData::new(xs, [b, lookback]), &device);
            let yt = Tensor::<2>::from_data(TensorData::new(ys, [b, 1]), &device);
            let mask = (opt.dropout > 0.0)
                .then(|| train::dropout_mask(b, hn, opt.dropout, &mut rng, &device));
            let pred = model.forward(x, params.cell, hn, mask, &device);
            let e = pred - yt;
            let loss = (e.clone() * e).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(opt.learning_rate, model, grads);
        }
        epochs_run = epoch;
        progress.report("training", epoch as f64 / opt.epochs as f64);
        let w = model.snapshot(params.cell, hn)?;
        let loss = valid_loss(&w);
        if !loss.is_finite() {
            return Err(ForecastError::FitFailed(format!(
                "validation loss is {loss} at epoch {epoch}"
            )));
        }
        if stopping.record(epoch, loss, w) {
            break;
        }
    }
    let seconds_per_epoch = started.elapsed().as_secs_f64() / epochs_run.max(1) as f64;
    let weights = stopping
        .best
        .take()
        .ok_or_else(|| ForecastError::FitFailed("no epoch was trained".into()))?;

    let mut resolved = params.clone();
    resolved.lookback = lookback;
    let mut out = RecurrentModel {
        options: resolved.to_options(),
        cell: params.cell,
        lookback,
        difference: params.difference,
        log: params.log,
        mean,
        scale,
        weights,
        recent: Vec::new(),
        residuals: Vec::new(),
        training: TrainingLog {
            epochs_run,
            best_epoch: stopping.best_epoch,
            validation_loss: stopping.best_loss,
            training_windows: n_train,
            validation_windows: n_valid,
            seconds_per_epoch,
        },
    };
    // Residuals per step: from each validation origin (the working series up to a validation
    // target), forecast recursively to the end of the series.
    let first_origin = lookback + n_train + lag;
    let mut residuals: Vec<Vec<f64>> = vec![Vec::new(); n_valid];
    for origin in first_origin..z.len() {
        let path = out.path(&z[origin - lookback - lag..origin], z.len() - origin);
        for (k, (p, a)) in path.iter().zip(&z[origin..]).enumerate() {
            residuals[k].push(a - p);
        }
    }
    for r in &mut residuals {
        r.sort_by(f64::total_cmp);
    }
    out.residuals = residuals;
    out.recent = z[z.len() - lookback - lag..].to_vec();
    out.check().map_err(ForecastError::FitFailed)?;
    Ok(out)
}

impl RecurrentModel {
    fn lag(&self) -> usize {
        usize::from(self.difference)
    }

    fn check(&self) -> Result<(), String> {
        self.weights.check()?;
        if self.weights.cell != self.cell {
            return Err("the weights are of another cell".into());
        }
        if self.lookback == 0 || self.recent.len() != self.lookback + self.lag() {
            return Err(format!(
                "{} recent values for lookback {}",
                self.recent.len(),
                self.lookback
            ));
        }
        if !(self.scale > 0.0 && self.scale.is_finite() && self.mean.is_finite()) {
            return Err("the scaler is not finite".into());
        }
        if self.recent.iter().any(|v| !v.is_finite()) {
            return Err("a recent value is not finite".into());
        }
        if self.residuals.first().is_none_or(|r| r.len() < 2)
            || self
                .residuals
                .iter()
                .any(|r| r.iter().any(|e| !e.is_finite()) || !r.is_sorted_by(|a, b| a <= b))
        {
            return Err("the validation residuals are missing or malformed".into());
        }
        Ok(())
    }

    /// Recursive forecast of `h` steps on the working scale, from `history` (the last
    /// `lookback + lag` working values).
    fn path(&self, history: &[f64], h: usize) -> Vec<f64> {
        let lag = self.lag();
        let mut level = history.last().copied().unwrap_or(0.0);
        let mut win: Vec<f64> = if lag == 1 {
            history
                .windows(2)
                .map(|w| (w[1] - w[0] - self.mean) / self.scale)
                .collect()
        } else {
            history
                .iter()
                .map(|v| (v - self.mean) / self.scale)
                .collect()
        };
        let mut out = Vec::with_capacity(h);
        for _ in 0..h {
            let next = self.weights.forward(&win[win.len() - self.lookback..]);
            let value = next * self.scale + self.mean;
            let z = if lag == 1 { level + value } else { value };
            level = z;
            out.push(z);
            win.push(next);
        }
        out
    }

    /// The training summary.
    pub fn training_log(&self) -> &TrainingLog {
        &self.training
    }

    /// The standardisation `(mean, standard deviation)` of the (differenced) working series.
    pub fn scaler(&self) -> (f64, f64) {
        (self.mean, self.scale)
    }

    /// The stored form.
    ///
    /// # Errors
    ///
    /// A non-finite value (never after a successful fit).
    pub fn to_json(&self) -> Result<serde_json::Value, ForecastError> {
        serde_json::to_value(StoredState {
            state_version: STATE_VERSION,
            model: self.clone(),
        })
        .map_err(|e| ForecastError::FitFailed(format!("cannot store the model: {e}")))
    }

    /// Loads [`RecurrentModel::to_json`], checking every invariant the forecast relies on.
    ///
    /// # Errors
    ///
    /// [`ForecastError::BadArtifact`].
    pub fn from_json(state: &serde_json::Value) -> Result<Self, ForecastError> {
        let bad = |m: String| ForecastError::BadArtifact(format!("recurrent forecaster: {m}"));
        match state
            .get("state_version")
            .and_then(serde_json::Value::as_u64)
        {
            Some(v) if v == u64::from(STATE_VERSION) => {}
            other => {
                return Err(bad(format!(
                    "state version {other:?} is not supported (this aurum reads {STATE_VERSION})"
                )));
            }
        }
        let stored: StoredState =
            serde_json::from_value(state.clone()).map_err(|e| bad(e.to_string()))?;
        stored.model.check().map_err(bad)?;
        Ok(stored.model)
    }

    /// Error quantiles `(lo, hi)` of step `k` (0-based) at probabilities `(a, 1 − a)`, and the
    /// error standard deviation, before the widening pass.
    fn step_spread(&self, k: usize, a: f64) -> (f64, f64, f64) {
        let last_good = self
            .residuals
            .iter()
            .rposition(|r| r.len() >= MIN_RESIDUALS)
            .unwrap_or(0);
        // Errors per step shrink in number with the step (fewer origins see it): past the last
        // step with enough of them, scale that step's quantiles.
        let (src, factor) = if k <= last_good {
            (k, 1.0)
        } else {
            (last_good, ((k + 1) as f64 / (last_good + 1) as f64).sqrt())
        };
        let r = &self.residuals[src];
        // The root mean squared error (bias included) with a normal multiplier is a floor under
        // the empirical quantiles: a few dozen errors cannot resolve a 2.5 % tail, and errors
        // measured on the tail early stopping chose are optimistic.
        let rmse = (r.iter().map(|e| e * e).sum::<f64>() / r.len() as f64).sqrt();
        let z = aurum_forecast::normal_quantile(1.0 - a);
        (
            quantile(r, a).min(-z * rmse) * factor,
            quantile(r, 1.0 - a).max(z * rmse) * factor,
            rmse * factor,
        )
    }
}

impl ExternalModel for RecurrentModel {
    fn forecast(&self, h: usize, levels: &[f64]) -> Result<ExternalForecast, ForecastError> {
        let path = self.path(&self.recent, h);
        let out = |v: f64| if self.log { v.exp() } else { v };
        let mean: Vec<f64> = path.iter().map(|&v| out(v)).collect();
        let mut std_dev = Vec::with_capacity(h);
        let mut widest = 0.0f64;
        for k in 0..h {
            widest = widest.max(self.step_spread(k, 0.5).2);
            std_dev.push(widest);
        }
        let intervals = levels
            .iter()
            .map(|&level| {
                let a = (1.0 - level / 100.0) / 2.0;
                let (mut lo_w, mut hi_w) = (0.0f64, 0.0f64);
                let mut lower = Vec::with_capacity(h);
                let mut upper = Vec::with_capacity(h);
                for (k, &p) in path.iter().enumerate() {
                    let (lo, hi, _) = self.step_spread(k, a);
                    lo_w = lo_w.max(-lo);
                    hi_w = hi_w.max(hi);
                    lower.push(out(p - lo_w));
                    upper.push(out(p + hi_w));
                }
                (level, lower, upper)
            })
            .collect();
        Ok(ExternalForecast {
            mean,
            std_dev,
            intervals,
        })
    }

    fn update(&mut self, new: &[f64]) -> Result<(), ForecastError> {
        if self.log && new.iter().any(|v| *v <= 0.0) {
            return Err(ForecastError::InvalidParameter(
                "a log-scale recurrent forecaster needs positive observations".into(),
            ));
        }
        self.recent
            .extend(new.iter().map(|&v| if self.log { v.ln() } else { v }));
        let keep = self.lookback + self.lag();
        let cut = self.recent.len() - keep;
        self.recent.drain(..cut);
        Ok(())
    }

    fn state(&self) -> Result<serde_json::Value, ForecastError> {
        self.to_json()
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "{}({}) on {} lags",
            self.cell.name().to_uppercase(),
            self.weights.hidden,
            self.lookback
        );
        if self.difference {
            s.push_str(", differenced");
        }
        if self.log {
            s.push_str(", log");
        }
        s
    }

    fn clone_model(&self) -> Box<dyn ExternalModel> {
        Box::new(self.clone())
    }
}

/// The `lstm` or `gru` forecaster as `aurum-forecast` sees it.
#[derive(Clone, Copy, Debug)]
pub struct RecurrentForecaster {
    pub cell: Cell,
}

impl ExternalForecaster for RecurrentForecaster {
    fn name(&self) -> &str {
        self.cell.name()
    }

    fn check(&self, options: &BTreeMap<String, String>) -> Result<(), ForecastError> {
        RecurrentParams::from_options(self.cell, options).map(|_| ())
    }

    fn fit(&self, y: &[f64], spec: &ExternalSpec) -> Result<Box<dyn ExternalModel>, ForecastError> {
        let params = RecurrentParams::from_options(self.cell, &spec.options)?;
        Ok(Box::new(fit(y, &params, spec.period, &NoProgress)?))
    }

    fn load(&self, state: &serde_json::Value) -> Result<Box<dyn ExternalModel>, ForecastError> {
        let m = RecurrentModel::from_json(state)?;
        if m.cell != self.cell {
            return Err(ForecastError::BadArtifact(format!(
                "a {} state given to the {} forecaster",
                m.cell.name(),
                self.cell.name()
            )));
        }
        Ok(Box::new(m))
    }
}

/// Registers `lstm` and `gru` with `aurum-forecast` (idempotent): from then on `model = "lstm"`,
/// `model = "auto+lstm+gru"`, backtests and stored artifacts of them work in this process.
///
/// # Errors
///
/// Never for these names; the registry's own checks otherwise.
pub fn register_forecasters() -> Result<(), ForecastError> {
    for cell in [Cell::Lstm, Cell::Gru] {
        aurum_forecast::register(Arc::new(RecurrentForecaster { cell }))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurum_forecast::{
        BacktestConfig, CsvOptions, FittedModel, Forecaster as _, ModelSpec, Pipeline, TimeColumn,
    };

    fn column(file: &str, name: &str) -> Vec<f64> {
        let path = format!(
            "{}/../../data/timeseries/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).unwrap();
        let opts = CsvOptions {
            time: TimeColumn::First,
            value_columns: vec![name.to_string()],
            ..CsvOptions::default()
        };
        aurum_forecast::read_csv(&bytes, &opts)
            .unwrap()
            .remove(0)
            .series
            .values
    }

    fn airline() -> Vec<f64> {
        column("airline_passengers.csv", "Passengers")
    }

    fn consumption() -> Vec<f64> {
        column("us_change.csv", "Consumption")
    }

    fn spec(text: &str, period: usize) -> Pipeline {
        register_forecasters().unwrap();
        let s = aurum_forecast::spec::ForecastSpec {
            model: text.to_string(),
            season_periods: vec![period],
            ..Default::default()
        };
        let mut p = aurum_forecast::spec::pipelines(&s, &[period]).unwrap();
        assert_eq!(p.len(), 1);
        p.remove(0)
    }

    const AIRLINE: &str = "lstm:log=true,hidden=16,epochs=150,seed=7";

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn bad_options_name_the_option() {
        register_forecasters().unwrap();
        let err = |model: &str| {
            let s = aurum_forecast::spec::ForecastSpec {
                model: model.to_string(),
                ..Default::default()
            };
            match aurum_forecast::spec::pipelines(&s, &[12]) {
                Err(ForecastError::InvalidField { field, message }) => (field, message),
                other => panic!("{model}: {other:?}"),
            }
        };
        assert_eq!(err("lstm:hidden=0").0, "model.hidden");
        assert!(err("lstm:hidden=0").1.contains("1..=512"));
        assert_eq!(err("gru:dropout=1.5").0, "model.dropout");
        assert_eq!(err("lstm:lookback=x").0, "model.lookback");
        assert_eq!(err("lstm:log=maybe").0, "model.log");
        assert_eq!(
            err("lstm:validation_fraction=0").0,
            "model.validation_fraction"
        );
        let (field, message) = err("lstm:hiden=3");
        assert_eq!(field, "model.hiden");
        assert!(message.contains("allowed: batch_size"), "{message}");
        assert_eq!(err("lstm:hidden").0, "model");
        let (field, message) = err("auto+transformer");
        assert_eq!(field, "model");
        assert!(message.contains("registered: gru, lstm"), "{message}");
        // A series the log cannot take names the option too.
        let e = spec("lstm:log=true", 12).fit(&consumption()).unwrap_err();
        assert!(
            matches!(&e, ForecastError::InvalidField { field, .. } if field == "model.log"),
            "{e:?}"
        );
        let e = spec("lstm:lookback=200", 12).fit(&airline()).unwrap_err();
        assert!(matches!(e, ForecastError::TooFewPoints { .. }), "{e:?}");
    }

    #[test]
    fn airline_forecasts_twelve_months_with_widening_intervals_and_reloads_exactly() {
        let y = airline();
        let (train, test) = y.split_at(132);
        let fitted = spec(AIRLINE, 12).fit(train).unwrap();
        assert_eq!(fitted.describe(), "LSTM(16) on 24 lags, differenced, log");
        let f = fitted.forecast(12, &[80.0, 95.0]).unwrap();
        assert_eq!(f.mean.len(), 12);
        let (i80, i95) = (f.interval(80.0).unwrap(), f.interval(95.0).unwrap());
        for k in 0..12 {
            assert!(f.mean[k].is_finite() && i95.lower[k] > 0.0 && i95.upper[k].is_finite());
            assert!(i95.lower[k] <= i80.lower[k] && i80.lower[k] <= f.mean[k]);
            assert!(f.mean[k] <= i80.upper[k] && i80.upper[k] <= i95.upper[k]);
        }
        // On the log scale the intervals never narrow, and they are wider a year out.
        let width = |k: usize| (i95.upper[k] / i95.lower[k]).ln();
        assert!((1..12).all(|k| width(k) >= width(k - 1) - 1e-12));
        assert!(width(11) > width(0), "{} vs {}", width(11), width(0));
        // Accuracy on the held-out year, scaled by the seasonal naive in-sample error.
        let mae = f
            .mean
            .iter()
            .zip(test)
            .map(|(p, a)| (p - a).abs())
            .sum::<f64>()
            / 12.0;
        let mase = mae / aurum_forecast::mase_scale(train, 12).unwrap();
        assert!(mase < 1.5, "held-out MASE {mase}");

        // The stored artifact reloads to the same bits, and so does an update.
        let back = FittedModel::from_json(&fitted.to_json().unwrap()).unwrap();
        assert_eq!(back, fitted);
        let g = back.forecast(12, &[80.0, 95.0]).unwrap();
        assert_eq!(bits(&g.mean), bits(&f.mean));
        assert_eq!(bits(&g.intervals[1].upper), bits(&f.intervals[1].upper));
        let (mut a, mut b) = (fitted.clone(), back);
        a.update(&test[..3]).unwrap();
        b.update(&test[..3]).unwrap();
        let fa = a.forecast(6, &[90.0]).unwrap();
        assert_eq!(bits(&fa.mean), bits(&b.forecast(6, &[90.0]).unwrap().mean));
        assert_ne!(bits(&fa.mean[..1]), bits(&f.mean[3..4]));
        // A damaged state is refused.
        let mut v: serde_json::Value = serde_json::from_str(&fitted.to_json().unwrap()).unwrap();
        v["model"]["inner"]["fit"]["state"]["model"]["recent"] = serde_json::json!([1.0]);
        let e = FittedModel::from_json(&v.to_string()).unwrap_err();
        assert!(e.to_string().contains("recent values"), "{e}");
    }

    #[test]
    fn same_seed_same_weights_other_seed_other_weights() {
        let y = consumption();
        let p = |seed: u64| RecurrentParams {
            seed,
            difference: false,
            ..RecurrentParams::from_options(
                Cell::Gru,
                &[("epochs".to_string(), "15".to_string())].into(),
            )
            .unwrap()
        };
        let a = fit(&y, &p(3), 4, &NoProgress).unwrap();
        let b = fit(&y, &p(3), 4, &NoProgress).unwrap();
        assert_eq!(a.to_json().unwrap(), b.to_json().unwrap());
        let c = fit(&y, &p(4), 4, &NoProgress).unwrap();
        assert_ne!(a.weights, c.weights);
        let (fa, fb) = (
            a.forecast(8, &[95.0]).unwrap(),
            b.forecast(8, &[95.0]).unwrap(),
        );
        assert_eq!(bits(&fa.mean), bits(&fb.mean));
        assert_eq!(a.training_log().validation_windows, 36);
    }

    /// burn's CPU kernels run on the caller's rayon pool: the fit must not depend on its size.
    #[test]
    fn the_fit_does_not_depend_on_the_thread_count() {
        let y = airline();
        let p = RecurrentParams::from_options(
            Cell::Lstm,
            &[
                ("epochs".to_string(), "4".to_string()),
                ("hidden".to_string(), "64".to_string()),
                ("batch_size".to_string(), "128".to_string()),
            ]
            .into(),
        )
        .unwrap();
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| fit(&y, &p, 12, &NoProgress).unwrap().to_json().unwrap())
        };
        assert_eq!(on(1), on(3));
    }

    #[test]
    fn the_served_forward_pass_is_the_trained_network() {
        // burn's graph and the hand-written pass give the same outputs on the same weights.
        for cell in [Cell::Lstm, Cell::Gru] {
            let w = init_weights(cell, 5, &mut train::rng(1));
            let device = Device::flex();
            let net = RecurrentNet::from_weights(&w, &device);
            let windows = [[0.3, -1.2, 0.8, 2.0], [-0.5, 0.1, 0.0, 1.5]];
            let flat: Vec<f32> = windows.iter().flatten().map(|&v| v as f32).collect();
            let x = Tensor::<2>::from_data(TensorData::new(flat, [2, 4]), &device);
            let out = train::read_f32(net.forward(x, cell, 5, None, &device)).unwrap();
            for (win, o) in windows.iter().zip(out) {
                let served = w.forward(win);
                assert!(
                    (served - f64::from(o)).abs() < 1e-5,
                    "{cell:?}: {served} vs {o}"
                );
            }
        }
    }

    #[test]
    fn early_stopping_keeps_the_best_epoch_and_progress_is_reported() {
        struct Recorder(std::sync::Mutex<Vec<f64>>);
        impl Progress for Recorder {
            fn report(&self, _stage: &str, fraction: f64) {
                self.0.lock().unwrap().push(fraction);
            }
        }
        let rec = Recorder(Default::default());
        let p = RecurrentParams::from_options(
            Cell::Lstm,
            &[
                ("epochs".to_string(), "400".to_string()),
                ("patience".to_string(), "5".to_string()),
                ("learning_rate".to_string(), "0.02".to_string()),
                ("difference".to_string(), "false".to_string()),
            ]
            .into(),
        )
        .unwrap();
        let m = fit(&consumption(), &p, 4, &rec).unwrap();
        let log = m.training_log();
        assert!(log.epochs_run < 400, "{log:?}");
        assert_eq!(log.best_epoch + 5, log.epochs_run);
        let reported = rec.0.lock().unwrap().clone();
        assert_eq!(reported.len(), log.epochs_run);
        assert_eq!(reported[0], 1.0 / 400.0);
        // Cancellation stops the fit at the next epoch.
        let token = aurum_core::CancelToken::new();
        token.cancel();
        let e = aurum_forecast::with_cancel(&token, || fit(&consumption(), &p, 4, &NoProgress));
        assert_eq!(e.unwrap_err(), ForecastError::Cancelled);
    }

    /// The aurum-forecast backtest path, and empirical coverage of the bootstrap intervals on
    /// real series: eight yearly origins of us_change consumption (32 quarters forecast) and
    /// four origins of airline, half a year apart (48 months).
    #[test]
    fn backtests_run_through_aurum_forecast_and_intervals_cover() {
        let cases = [
            (
                consumption(),
                "lstm:difference=false,epochs=60,hidden=16,seed=1",
                4,
                4,
                8,
            ),
            (airline(), "lstm:log=true,hidden=16,seed=1", 12, 6, 4),
        ];
        for (y, text, h, step, windows) in cases {
            let model = spec(text, h);
            let cfg = BacktestConfig {
                horizon: h,
                step,
                windows,
                levels: vec![80.0, 95.0],
                season_period: h,
            };
            let r = aurum_forecast::backtest(&y, &model, "lstm", &cfg).unwrap();
            assert_eq!(r.metrics.n, h * windows);
            let mase = r.metrics.mase.unwrap();
            assert!(
                mase.is_finite() && mase < 1.2,
                "{text}: backtest MASE {mase}"
            );
            let cov = |l: f64| r.metrics.coverage.iter().find(|c| c.0 == l).unwrap().1;
            // Neither too narrow nor uselessly wide.
            assert!(
                (0.6..=0.95).contains(&cov(80.0)),
                "{text}: 80% coverage {}",
                cov(80.0)
            );
            assert!(
                cov(95.0) >= 0.85 && cov(95.0) >= cov(80.0),
                "{text}: 95% coverage {}",
                cov(95.0)
            );
        }
    }

    #[test]
    fn auto_takes_the_recurrent_candidates_only_when_asked() {
        register_forecasters().unwrap();
        let y: Vec<f64> = consumption();
        let s = |model: &str| aurum_forecast::spec::ForecastSpec {
            model: model.to_string(),
            horizon: 4,
            ..Default::default()
        };
        let names = |model: &str| -> Vec<String> {
            aurum_forecast::spec::pipelines(&s(model), &[4])
                .unwrap()
                .iter()
                .map(Pipeline::name)
                .collect()
        };
        assert!(!names("auto").contains(&"lstm".to_string()));
        let with = names("auto+lstm+gru");
        assert_eq!(&with[with.len() - 2..], ["lstm", "gru"]);
        let (fitted, candidates) =
            aurum_forecast::spec::fit(&s("auto+gru:difference=false,epochs=20"), &y, &[4]).unwrap();
        assert_eq!(candidates.last().unwrap().0, "gru");
        assert!(candidates.last().unwrap().1.is_some_and(f64::is_finite));
        assert!(!fitted.describe().is_empty());
        assert!(matches!(
            ModelSpec::External(ExternalSpec {
                name: "gru".into(),
                period: 4,
                options: BTreeMap::new()
            })
            .name()
            .as_str(),
            "gru"
        ));
    }
}
