//! The `cnn` family: a convolutional network for images given as pixel columns, multiclass.
//!
//! An image of `height × width × channels` arrives as that many numeric columns, in row order:
//! pixel `(y, x)` channel `c` is column `(y · width + x) · channels + c` (interleaved channels,
//! as in PNG rows). Pixels are divided by the largest absolute training pixel (stored), so the
//! scale of the source (0–16 for the scikit-learn digits, 0–255 for bytes) does not matter.
//!
//! The network is a stack of `3×3` (`kernel`) convolutions with "same" padding, each followed by
//! ReLU and `2×2` max pooling, then dense ReLU layers with dropout and one logit per class,
//! trained with AdamW on the cross-entropy, with early stopping on a stratified validation split.
//! Serving runs the hand-written forward pass below over the saved `f32` weights (burn trains
//! only; see the crate docs). A missing or non-numeric pixel is an error naming the column.

use aurum_contract::{
    FamilySpec, FitContext, FittedModel, ModelError, ModelFamily, Output, OutputSpec, ParamReader,
    Params, Task, TrainingData,
};
use aurum_core::{ClassTarget, ColumnType, Field, Metrics, Schema, Table, Value};
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, PaddingConfig2d};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu};
use serde::{Deserialize, Serialize};

use crate::dense::{DenseLayer, Perceptron, softmax};
use crate::mlp::parse_widths;
use crate::train::{self, EarlyStopping, Optimisation};

/// Every parameter name, sorted.
pub const PARAM_NAMES: &[&str] = &[
    "batch_size",
    "channels",
    "conv_channels",
    "dense",
    "dropout",
    "epochs",
    "height",
    "kernel",
    "learning_rate",
    "patience",
    "validation_fraction",
    "weight_decay",
    "width",
];

/// What the `cnn` family is.
pub const SPEC: FamilySpec = FamilySpec {
    name: "cnn",
    aliases: &["convnet"],
    task: Task::Multiclass,
    summary: "Convolutional network (burn) on images given as pixel columns: conv + pooling, dense layers, AdamW.",
    params: PARAM_NAMES,
    trainable: true,
    importable: false,
};

/// The `cnn` family.
#[derive(Clone, Copy, Debug, Default)]
pub struct CnnFamily;

/// Typed, validated parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct CnnParams {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
    /// Output channels of each convolution (each followed by 2×2 max pooling).
    pub conv_channels: Vec<usize>,
    /// Odd kernel size of every convolution.
    pub kernel: usize,
    /// Widths of the dense hidden layers after the convolutions.
    pub dense: Vec<usize>,
    pub optimisation: Optimisation,
}

impl CnnParams {
    pub fn from_params(params: &Params) -> Result<Self, ModelError> {
        let r = ParamReader::new("cnn", params, PARAM_NAMES)?;
        let required = |key: &str| -> Result<usize, ModelError> {
            r.usize(key, 1..=4096)?.ok_or_else(|| {
                ModelError::invalid_param(key, "", "the image's size in pixels (required)")
            })
        };
        let height = required("height")?;
        let width = required("width")?;
        let channels = r.usize("channels", 1..=64)?.unwrap_or(1);
        // Refused here, before anything is sized by the geometry: the exact match with the
        // pixel columns is checked at fit, when the columns are known.
        if height * width * channels > MAX_PIXELS {
            return Err(ModelError::invalid_param(
                "height",
                height,
                format!(
                    "height × width × channels to equal the number of pixel columns, at most {MAX_PIXELS} values (this one is {height}×{width}×{channels} = {})",
                    height * width * channels
                ),
            ));
        }
        let conv_channels = match r.str("conv_channels") {
            None => vec![16, 32],
            Some(s) => parse_widths(s).map_err(|_| {
                ModelError::invalid_param(
                    "conv_channels",
                    s,
                    "one to eight comma-separated channel counts in 1..=4096, such as 16,32",
                )
            })?,
        };
        let kernel = r.usize("kernel", 1..=15)?.unwrap_or(3);
        if kernel.is_multiple_of(2) {
            return Err(ModelError::invalid_param("kernel", kernel, "an odd number"));
        }
        let dense = match r.str("dense") {
            None => vec![64],
            Some(s) => parse_widths(s).map_err(|_| {
                ModelError::invalid_param(
                    "dense",
                    s,
                    "one to eight comma-separated layer widths in 1..=4096, such as 64",
                )
            })?,
        };
        let pools = conv_channels.len() as u32;
        if (height >> pools) == 0 || (width >> pools) == 0 {
            return Err(ModelError::invalid_param(
                "conv_channels",
                r.str("conv_channels").unwrap_or("16,32"),
                format!(
                    "at most {} convolutions for a {height}×{width} image (each halves it)",
                    height.min(width).ilog2()
                ),
            ));
        }
        let optimisation = Optimisation::read(
            &r,
            Optimisation {
                epochs: 60,
                batch_size: 32,
                learning_rate: 2e-3,
                weight_decay: 1e-4,
                dropout: 0.25,
                patience: 10,
                validation_fraction: 0.15,
            },
        )?;
        Ok(Self {
            height,
            width,
            channels,
            conv_channels,
            kernel,
            dense,
            optimisation,
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        let list = |v: &[usize]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut out = serde_json::Map::new();
        self.optimisation.write_json(&mut out);
        out.insert("height".into(), self.height.into());
        out.insert("width".into(), self.width.into());
        out.insert("channels".into(), self.channels.into());
        out.insert("conv_channels".into(), list(&self.conv_channels).into());
        out.insert("kernel".into(), self.kernel.into());
        out.insert("dense".into(), list(&self.dense).into());
        serde_json::Value::Object(out)
    }

    fn from_json(v: &serde_json::Value) -> Result<Self, ModelError> {
        let params = aurum_contract::policy::params_from_json("cnn", v)?;
        Self::from_params(&params)
            .map_err(|e| ModelError::invalid_artifact(format!("cnn params: {e}")))
    }

    /// Values in one image (saturating: the fields are public, and a product past `usize` is
    /// refused like any other geometry that does not match the pixel columns).
    fn n_pixels(&self) -> usize {
        self.height
            .saturating_mul(self.width)
            .saturating_mul(self.channels)
    }

    /// Height, width and channels after the convolutions and poolings.
    fn feature_map(&self) -> (usize, usize, usize) {
        let pools = self.conv_channels.len() as u32;
        (
            self.height >> pools,
            self.width >> pools,
            *self.conv_channels.last().unwrap_or(&self.channels),
        )
    }
}

/// Most values one image may hold (1024 × 1024 in one channel): the network's maps and every
/// image in training are sized by it.
pub const MAX_PIXELS: usize = 1 << 20;

impl ModelFamily for CnnFamily {
    fn spec(&self) -> &FamilySpec {
        &SPEC
    }

    /// Pixels are taken by position: a border pixel that is always 0 in training is still a
    /// pixel of every image served.
    fn keeps_constant_columns(&self) -> bool {
        true
    }

    fn validate_params(&self, params: &Params) -> Result<serde_json::Value, ModelError> {
        CnnParams::from_params(params).map(|p| p.to_json())
    }

    fn fit(
        &self,
        data: &TrainingData<'_>,
        params: &Params,
        ctx: &FitContext<'_>,
    ) -> Result<Box<dyn FittedModel>, ModelError> {
        let target = data.classes()?;
        let params = CnnParams::from_params(params)?;
        Ok(Box::new(fit(data.features, target, &params, ctx)?))
    }

    fn load_payload(&self, payload: &[u8]) -> Result<Box<dyn FittedModel>, ModelError> {
        Ok(Box::new(CnnModel::from_payload(payload)?))
    }
}

/// A convolution with "same" padding and stride 1; weights `[c_out, c_in, k, k]` row-major.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvLayer {
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl ConvLayer {
    fn check(&self, what: &str) -> Result<(), String> {
        let n = self.c_out * self.c_in * self.kernel * self.kernel;
        if n == 0 || self.kernel.is_multiple_of(2) {
            return Err(format!("{what} has an invalid shape"));
        }
        if self.weight.len() != n || self.bias.len() != self.c_out {
            return Err(format!("{what}: weight count does not match its shape"));
        }
        if self.weight.iter().chain(&self.bias).any(|w| !w.is_finite()) {
            return Err(format!("{what} has a non-finite weight"));
        }
        Ok(())
    }

    /// Convolution, then ReLU, then 2×2 max pooling, on a `[c_in, h, w]` map.
    fn forward_pool(&self, input: &[f64], h: usize, w: usize) -> Vec<f64> {
        let k = self.kernel;
        let pad = k / 2;
        let mut conv = vec![0.0; self.c_out * h * w];
        for o in 0..self.c_out {
            let out = &mut conv[o * h * w..(o + 1) * h * w];
            out.fill(f64::from(self.bias[o]));
            for c in 0..self.c_in {
                let plane = &input[c * h * w..(c + 1) * h * w];
                for ky in 0..k {
                    for kx in 0..k {
                        let wgt = f64::from(self.weight[((o * self.c_in + c) * k + ky) * k + kx]);
                        for y in 0..h {
                            let sy = y + ky;
                            if sy < pad || sy - pad >= h {
                                continue;
                            }
                            let src = &plane[(sy - pad) * w..(sy - pad + 1) * w];
                            let dst = &mut out[y * w..(y + 1) * w];
                            for (x, d) in dst.iter_mut().enumerate() {
                                let sx = x + kx;
                                if sx >= pad && sx - pad < w {
                                    *d += wgt * src[sx - pad];
                                }
                            }
                        }
                    }
                }
            }
        }
        let (ph, pw) = (h / 2, w / 2);
        let mut pooled = vec![0.0; self.c_out * ph * pw];
        for o in 0..self.c_out {
            for y in 0..ph {
                for x in 0..pw {
                    let at = |dy: usize, dx: usize| conv[(o * h + 2 * y + dy) * w + 2 * x + dx];
                    let m = at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1));
                    pooled[(o * ph + y) * pw + x] = m.max(0.0);
                }
            }
        }
        pooled
    }
}

#[derive(Module, Debug)]
struct CnnNet {
    convs: Vec<Conv2d>,
    pool: MaxPool2d,
    dense: Vec<Linear>,
    output: Linear,
}

impl CnnNet {
    fn forward(&self, images: Tensor<4>, masks: Vec<Option<Tensor<2>>>) -> Tensor<2> {
        let mut x = images;
        for conv in &self.convs {
            x = self.pool.forward(relu(conv.forward(x)));
        }
        let [b, c, h, w] = x.dims();
        let mut x: Tensor<2> = x.reshape([b, c * h * w]);
        for (layer, mask) in self.dense.iter().zip(masks) {
            x = relu(layer.forward(x));
            if let Some(m) = mask {
                x = x * m;
            }
        }
        self.output.forward(x)
    }

    fn snapshot(&self) -> Result<(Vec<ConvLayer>, Perceptron), ModelError> {
        let convs = self
            .convs
            .iter()
            .map(|c| {
                let [c_out, c_in, kernel, _] = c.weight.val().dims();
                let weight = train::read_f32(c.weight.val())?;
                let bias = match &c.bias {
                    Some(b) => train::read_f32(b.val())?,
                    None => vec![0.0; c_out],
                };
                Ok(ConvLayer {
                    c_in,
                    c_out,
                    kernel,
                    weight,
                    bias,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let network = Perceptron {
            hidden: self
                .dense
                .iter()
                .map(train::from_burn_linear)
                .collect::<Result<_, _>>()?,
            output: train::from_burn_linear(&self.output)?,
        };
        Ok((convs, network))
    }
}

/// The training summary stored with the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CnnTrainingLog {
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub validation_loss: Option<f64>,
    pub validation_accuracy: Option<f64>,
    pub training_rows: usize,
    pub validation_rows: usize,
    /// Wall-clock training time per epoch; not stored (the payload depends only on the data,
    /// the parameters and the seed).
    #[serde(skip)]
    pub seconds_per_epoch: f64,
}

/// A fitted `cnn`.
#[derive(Clone, Debug, PartialEq)]
pub struct CnnModel {
    params: CnnParams,
    schema: Schema,
    /// The image position of each input column.
    positions: Vec<usize>,
    classes: Vec<String>,
    /// Pixels are divided by this (the largest absolute training pixel).
    scale: f64,
    convs: Vec<ConvLayer>,
    network: Perceptron,
    log: CnnTrainingLog,
}

/// Reads one pixel.
fn pixel(field: &Field, value: &Value) -> Result<f64, ModelError> {
    let x = match value {
        Value::Float(x) => *x,
        Value::Integer(i) => *i as f64,
        Value::Null => {
            return Err(ModelError::InvalidInput {
                feature: field.name.clone(),
                row: None,
                reason: "a pixel is missing".into(),
            });
        }
        _ => {
            return Err(ModelError::InvalidInput {
                feature: field.name.clone(),
                row: None,
                reason: "a pixel must be a number".into(),
            });
        }
    };
    if x.is_finite() {
        Ok(x)
    } else {
        Err(ModelError::InvalidInput {
            feature: field.name.clone(),
            row: None,
            reason: format!("{x} is not a finite number"),
        })
    }
}

/// How many values the `[channels, height, width]` map of one image holds, checked against the
/// pixel inputs before anything is sized by the geometry: exactly one per input for a model
/// whose columns are the whole image in order (every model trained now: constant pixel columns
/// are kept), and at most [`MAX_PIXELS`], each input inside the image, for a model stored
/// before every pixel column was kept (constant ones left out, so its positions skip them).
fn plane_len(inputs: usize, positions: &[usize], p: &CnnParams) -> Result<usize, ModelError> {
    let n = p.n_pixels();
    let whole = positions.iter().enumerate().all(|(k, &i)| k == i);
    if inputs != positions.len()
        || n > MAX_PIXELS
        || n < inputs
        || (whole && n != inputs)
        || positions.iter().any(|&i| i >= n)
    {
        return Err(ModelError::invalid_param(
            "height",
            p.height,
            format!(
                "height × width × channels ({}×{}×{} = {n}) to equal the number of pixel inputs ({inputs})",
                p.height, p.width, p.channels
            ),
        ));
    }
    Ok(n)
}

/// Pixels (interleaved channels; column `k` is pixel `positions[k]`; an absent pixel, only in a
/// model stored before every pixel column was kept, reads as 0) to a `[channels, height, width]`
/// map, sized by [`plane_len`]: a geometry the inputs do not fill is refused, never allocated.
fn to_planes(pixels: &[f64], positions: &[usize], p: &CnnParams) -> Result<Vec<f64>, ModelError> {
    let (h, w, c) = (p.height, p.width, p.channels);
    let mut out = vec![0.0; plane_len(pixels.len(), positions, p)?];
    for (&i, &v) in positions.iter().zip(pixels) {
        let (yx, ch) = (i / c, i % c);
        out[ch * h * w + yx] = v;
    }
    Ok(out)
}

fn forward(convs: &[ConvLayer], network: &Perceptron, p: &CnnParams, planes: &[f64]) -> Vec<f64> {
    let (mut h, mut w) = (p.height, p.width);
    let mut x = planes.to_vec();
    for conv in convs {
        x = conv.forward_pool(&x, h, w);
        h /= 2;
        w /= 2;
    }
    network.forward(&x)
}

fn class_log_loss(
    convs: &[ConvLayer],
    network: &Perceptron,
    p: &CnnParams,
    images: &[Vec<f64>],
    y: &[u32],
) -> (f64, f64) {
    let (mut loss, mut correct) = (0.0, 0usize);
    for (img, &yi) in images.iter().zip(y) {
        let probs = softmax(&forward(convs, network, p, img));
        loss -= probs[yi as usize].max(1e-300).ln();
        correct += usize::from(argmax(&probs) == yi as usize);
    }
    let n = images.len().max(1) as f64;
    (loss / n, correct as f64 / n)
}

/// The index of the largest value (the first on ties).
pub(crate) fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// Fits a `cnn` on pixel columns and a class target.
pub fn fit(
    features: &Table,
    target: &ClassTarget,
    params: &CnnParams,
    ctx: &FitContext<'_>,
) -> Result<CnnModel, ModelError> {
    let n = features.n_rows();
    let n_classes = target.classes.len();
    train::check_class_target(n, target, "the cnn")?;
    let mut fields = Vec::new();
    for col in features.columns() {
        let ty = col.data.column_type();
        if !matches!(ty, ColumnType::Float | ColumnType::Integer) {
            return Err(ModelError::InvalidInput {
                feature: col.name.clone(),
                row: None,
                reason: format!("the cnn takes numeric pixel columns only; this column is {ty}"),
            });
        }
        fields.push(Field::new(col.name.clone(), ty));
    }
    // Every pixel column, constant ones included (the job runner keeps them for this family:
    // `keeps_constant_columns`), so the geometry is checked exactly: a height × width that
    // does not cover the columns, or covers more, is refused before anything is sized by it.
    if fields.len() != params.n_pixels() {
        return Err(ModelError::invalid_param(
            "height",
            params.height,
            format!(
                "height × width × channels ({}×{}×{} = {}) to equal the number of pixel columns ({})",
                params.height,
                params.width,
                params.channels,
                params.n_pixels(),
                fields.len()
            ),
        ));
    }
    let positions: Vec<usize> = (0..fields.len()).collect();
    let schema = Schema { fields };
    let raw: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            features
                .row(i)
                .iter()
                .zip(&schema.fields)
                .map(|(v, f)| pixel(f, v))
                .collect::<Result<Vec<f64>, _>>()
                .map_err(|e| e.at_row(i))
        })
        .collect::<Result<_, _>>()?;
    let max = raw.iter().flatten().fold(0.0f64, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max } else { 1.0 };
    let images: Vec<Vec<f64>> = raw
        .iter()
        .map(|r| {
            let scaled: Vec<f64> = r.iter().map(|x| x / scale).collect();
            to_planes(&scaled, &positions, params)
        })
        .collect::<Result<_, _>>()?;

    let opt = &params.optimisation;
    let mut rng = train::rng(ctx.seed);
    let (train_rows, valid_rows) = if opt.early_stopping() {
        train::stratified_carve(&target.y, n_classes, opt.validation_fraction, &mut rng)
    } else {
        ((0..n).collect(), Vec::new())
    };
    let valid_x: Vec<Vec<f64>> = valid_rows.iter().map(|&i| images[i].clone()).collect();
    let valid_y: Vec<u32> = valid_rows.iter().map(|&i| target.y[i]).collect();

    let device = Device::flex().autodiff();
    let k = params.kernel;
    let pad = k / 2;
    let mut c_in = params.channels;
    let mut convs = Vec::new();
    for &c_out in &params.conv_channels {
        let init = train::linear_init(c_in * k * k, c_out, &mut rng);
        let mut conv = Conv2dConfig::new([c_in, c_out], [k, k])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .init(&device);
        conv.weight = Param::from_data(TensorData::new(init.weight, [c_out, c_in, k, k]), &device);
        conv.bias = Some(Param::from_data(
            TensorData::new(init.bias, [c_out]),
            &device,
        ));
        convs.push(conv);
        c_in = c_out;
    }
    let (fh, fw, fc) = params.feature_map();
    let mut width = fh * fw * fc;
    let mut dense = Vec::new();
    for &w in &params.dense {
        dense.push(train::to_burn_linear(
            &train::linear_init(width, w, &mut rng),
            &device,
        ));
        width = w;
    }
    let output = train::to_burn_linear(&train::linear_init(width, n_classes, &mut rng), &device);
    let mut model = CnnNet {
        convs,
        pool: MaxPool2dConfig::new([2, 2]).init(),
        dense,
        output,
    };
    let mut optim = AdamWConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(opt.weight_decay as f32)
        .init();
    let mut stopping = EarlyStopping::new(if opt.early_stopping() {
        opt.patience
    } else {
        0
    });
    let plane = params.n_pixels();
    let started = std::time::Instant::now();
    let mut epochs_run = 0;
    let mut best_accuracy = None;
    for epoch in 1..=opt.epochs {
        ctx.check_cancelled()?;
        for batch in train::epoch_batches(&train_rows, opt.batch_size, &mut rng) {
            let b = batch.len();
            let mut data = Vec::with_capacity(b * plane);
            let mut onehot = vec![0.0f32; b * n_classes];
            for (r, &i) in batch.iter().enumerate() {
                data.extend(images[i].iter().map(|&x| x as f32));
                onehot[r * n_classes + target.y[i] as usize] = 1.0;
            }
            let x = Tensor::<4>::from_data(
                TensorData::new(data, [b, params.channels, params.height, params.width]),
                &device,
            );
            let masks: Vec<Option<Tensor<2>>> = params
                .dense
                .iter()
                .map(|&w| {
                    (opt.dropout > 0.0)
                        .then(|| train::dropout_mask(b, w, opt.dropout, &mut rng, &device))
                })
                .collect();
            let y = Tensor::<2>::from_data(TensorData::new(onehot, [b, n_classes]), &device);
            let logp = log_softmax(model.forward(x, masks), 1);
            let loss = (logp * y).sum().neg().div_scalar(b as f64);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(opt.learning_rate, model, grads);
        }
        epochs_run = epoch;
        ctx.progress
            .report("training", epoch as f64 / opt.epochs as f64);
        if opt.early_stopping() {
            let (c, net) = model.snapshot()?;
            let (loss, accuracy) = class_log_loss(&c, &net, params, &valid_x, &valid_y);
            if !loss.is_finite() {
                return Err(ModelError::Numerical {
                    reason: format!("validation loss is {loss} at epoch {epoch}"),
                });
            }
            let stop = stopping.record(epoch, loss, (c, net, accuracy));
            if stop {
                break;
            }
        }
    }
    let seconds_per_epoch = started.elapsed().as_secs_f64() / epochs_run.max(1) as f64;
    let (convs, network, best_epoch, validation_loss) = match stopping.best.take() {
        Some((c, net, accuracy)) => {
            best_accuracy = Some(accuracy);
            (c, net, stopping.best_epoch, Some(stopping.best_loss))
        }
        None => {
            let (c, net) = model.snapshot()?;
            (c, net, epochs_run, None)
        }
    };
    let model = CnnModel {
        params: params.clone(),
        schema,
        positions,
        classes: target.classes.clone(),
        scale,
        convs,
        network,
        log: CnnTrainingLog {
            epochs_run,
            best_epoch,
            validation_loss,
            validation_accuracy: best_accuracy,
            training_rows: train_rows.len(),
            validation_rows: valid_rows.len(),
            seconds_per_epoch,
        },
    };
    model
        .check()
        .map_err(|reason| ModelError::Numerical { reason })?;
    Ok(model)
}

/// Version of [`StoredCnn`].
const PAYLOAD_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredCnn {
    payload_version: u32,
    params: serde_json::Value,
    schema: Schema,
    positions: Vec<usize>,
    classes: Vec<String>,
    scale: f64,
    convs: Vec<ConvLayer>,
    network: Perceptron,
    training: CnnTrainingLog,
}

impl CnnModel {
    fn check(&self) -> Result<(), String> {
        let p = &self.params;
        let mut sorted = self.positions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.positions.len()
            || plane_len(self.schema.fields.len(), &self.positions, p).is_err()
        {
            return Err(format!(
                "{} pixel columns do not fit a {}×{}×{} image",
                self.schema.fields.len(),
                p.height,
                p.width,
                p.channels
            ));
        }
        if self
            .schema
            .fields
            .iter()
            .any(|f| !matches!(f.ty, ColumnType::Float | ColumnType::Integer))
        {
            return Err("a pixel column is not numeric".into());
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err("invalid pixel scale".into());
        }
        if self.convs.len() != p.conv_channels.len() {
            return Err("the convolutions do not match the parameters".into());
        }
        let mut c_in = p.channels;
        for (i, (conv, &c_out)) in self.convs.iter().zip(&p.conv_channels).enumerate() {
            conv.check(&format!("convolution {i}"))?;
            if conv.c_in != c_in || conv.c_out != c_out || conv.kernel != p.kernel {
                return Err(format!("convolution {i} does not match the parameters"));
            }
            c_in = c_out;
        }
        self.network.check()?;
        let (fh, fw, fc) = p.feature_map();
        if self.network.d_in() != fh * fw * fc
            || self.network.output.d_out != self.classes.len()
            || self.network.hidden.len() != p.dense.len()
        {
            return Err("the dense layers do not match the feature map or the classes".into());
        }
        if self.classes.len() < 2 {
            return Err("fewer than two classes".into());
        }
        Ok(())
    }

    pub fn training_log(&self) -> &CnnTrainingLog {
        &self.log
    }

    /// Class probabilities of one row of pixels.
    pub fn predict_proba_one(&self, row: &[Value]) -> Result<Vec<f64>, ModelError> {
        if row.len() != self.schema.fields.len() {
            return Err(ModelError::RowLength {
                row: None,
                expected: self.schema.fields.len(),
                got: row.len(),
            });
        }
        let pixels = row
            .iter()
            .zip(&self.schema.fields)
            .map(|(v, f)| pixel(f, v).map(|x| x / self.scale))
            .collect::<Result<Vec<f64>, _>>()?;
        let planes = to_planes(&pixels, &self.positions, &self.params)
            .map_err(|e| ModelError::invalid_artifact(format!("cnn: {e}")))?;
        Ok(softmax(&forward(
            &self.convs,
            &self.network,
            &self.params,
            &planes,
        )))
    }

    pub fn from_payload(bytes: &[u8]) -> Result<Self, ModelError> {
        let bad = |reason: String| ModelError::invalid_artifact(format!("cnn payload: {reason}"));
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        match value
            .get("payload_version")
            .and_then(serde_json::Value::as_u64)
        {
            Some(v) if v == u64::from(PAYLOAD_VERSION) => {}
            Some(v) => {
                return Err(bad(format!(
                    "payload version {v} is not supported (this aurum reads {PAYLOAD_VERSION})"
                )));
            }
            None => return Err(bad("no payload_version".into())),
        }
        let stored: StoredCnn = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        let model = CnnModel {
            params: CnnParams::from_json(&stored.params)?,
            schema: stored.schema,
            positions: stored.positions,
            classes: stored.classes,
            scale: stored.scale,
            convs: stored.convs,
            network: stored.network,
            log: stored.training,
        };
        model.check().map_err(bad)?;
        Ok(model)
    }
}

impl FittedModel for CnnModel {
    fn family(&self) -> &str {
        SPEC.name
    }

    fn task(&self) -> Task {
        Task::Multiclass
    }

    fn input_schema(&self) -> &Schema {
        &self.schema
    }

    fn params(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn summary(&self) -> serde_json::Value {
        let parameters = self
            .convs
            .iter()
            .map(|c| c.weight.len() + c.bias.len())
            .chain(
                self.network
                    .hidden
                    .iter()
                    .chain([&self.network.output])
                    .map(|l: &DenseLayer| l.weight.len() + l.bias.len()),
            )
            .sum::<usize>();
        serde_json::json!({
            "image": [self.params.height, self.params.width, self.params.channels],
            "conv_channels": self.params.conv_channels,
            "dense": self.params.dense,
            "classes": self.classes,
            "parameters": parameters,
            "pixel_scale": self.scale,
            "training": self.log,
            "dropped_columns": [],
        })
    }

    fn payload(&self) -> Result<Vec<u8>, ModelError> {
        let stored = StoredCnn {
            payload_version: PAYLOAD_VERSION,
            params: self.params.to_json(),
            schema: self.schema.clone(),
            positions: self.positions.clone(),
            classes: self.classes.clone(),
            scale: self.scale,
            convs: self.convs.clone(),
            network: self.network.clone(),
            training: self.log.clone(),
        };
        serde_json::to_vec(&stored).map_err(|e| ModelError::Serialization {
            reason: e.to_string(),
        })
    }

    fn output_spec(&self) -> OutputSpec {
        OutputSpec::Classes(self.classes.clone())
    }

    fn predict_rows(&self, rows: &[Vec<Value>]) -> Result<Vec<Output>, ModelError> {
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                let probabilities = self.predict_proba_one(row).map_err(|e| e.at_row(i))?;
                Ok(Output::Class {
                    label: self.classes[argmax(&probabilities)].clone(),
                    probabilities,
                })
            })
            .collect()
    }

    fn fit_metrics(&self) -> Metrics {
        let mut m = Metrics::new();
        m.insert("epochs_run".into(), self.log.epochs_run as f64);
        m.insert("best_epoch".into(), self.log.best_epoch as f64);
        if let Some(l) = self.log.validation_loss {
            m.insert("validation_log_loss".into(), l);
        }
        if let Some(a) = self.log.validation_accuracy {
            m.insert("validation_accuracy".into(), a);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurum_core::{CancelToken, NoProgress};

    fn digits() -> (Table, ClassTarget) {
        let bytes = include_bytes!("../../../data/images/digits_8x8.csv");
        let table = aurum_data::read_csv(bytes, &Default::default()).unwrap();
        let target = aurum_data::class_target(&table, "label").unwrap();
        (table.drop_column("label").unwrap(), target)
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        [("height", "8"), ("width", "8")]
            .iter()
            .chain(pairs)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn fit_on(table: &Table, target: &ClassTarget, pairs: &[(&str, &str)], seed: u64) -> CnnModel {
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed,
        };
        let p = CnnParams::from_params(&params(pairs)).unwrap();
        fit(table, target, &p, &ctx).unwrap()
    }

    /// The acceptance figure: at least 97 % of a held-out quarter of the digits.
    #[test]
    fn reaches_97_percent_on_a_held_out_quarter_of_the_digits() {
        let (table, target) = digits();
        let mut rng = train::rng(2024);
        let (train_rows, test_rows) = train::stratified_carve(&target.y, 10, 0.25, &mut rng);
        assert_eq!(test_rows.len(), 451); // a quarter of each digit, rounded
        let train_target = ClassTarget {
            y: train_rows.iter().map(|&i| target.y[i]).collect(),
            ..target.clone()
        };
        let m = fit_on(&table.take(&train_rows), &train_target, &[], 7);
        let test = table.take(&test_rows);
        let rows: Vec<Vec<Value>> = (0..test.n_rows()).map(|i| test.row(i)).collect();
        let out = m.predict_rows(&rows).unwrap();
        let correct = out
            .iter()
            .zip(&test_rows)
            .filter(|&(o, &i)| {
                matches!(o, Output::Class { label, .. } if *label == target.classes[target.y[i] as usize])
            })
            .count();
        let accuracy = correct as f64 / test_rows.len() as f64;
        assert!(
            accuracy >= 0.97,
            "held-out accuracy {accuracy} ({:?})",
            m.training_log()
        );
        // The payload reloads with the same bits.
        let loaded = CnnFamily.load_payload(&m.payload().unwrap()).unwrap();
        assert_eq!(loaded.predict_rows(&rows[..20]).unwrap(), out[..20]);
        assert_eq!(
            loaded.output_spec(),
            OutputSpec::Classes(target.classes.clone())
        );
    }

    #[test]
    fn same_seed_same_bits() {
        let (table, target) = digits();
        let quick = [
            ("epochs", "2"),
            ("patience", "0"),
            ("validation_fraction", "0"),
        ];
        let a = fit_on(&table, &target, &quick, 3);
        let b = fit_on(&table, &target, &quick, 3);
        assert!(
            a.payload().unwrap() == b.payload().unwrap(),
            "same seed, different payloads"
        );
    }

    #[test]
    fn the_fit_does_not_depend_on_the_thread_count() {
        let (table, target) = digits();
        let quick = [
            ("epochs", "1"),
            ("patience", "0"),
            ("validation_fraction", "0"),
        ];
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| fit_on(&table, &target, &quick, 4).payload().unwrap())
        };
        assert!(
            on(1) == on(3),
            "one and three threads trained different models"
        );
    }

    #[test]
    fn params_and_pixels_are_checked_by_name() {
        let e = CnnFamily
            .validate_params(&Params::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("`height`"), "{e}");
        let e = CnnFamily
            .validate_params(&params(&[("conv_channels", "8,8,8,8")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`conv_channels`") && e.contains("at most 3"),
            "{e}"
        );
        let e = CnnFamily
            .validate_params(&params(&[("kernel", "4")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`kernel`"), "{e}");
        let (table, target) = digits();
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed: 1,
        };
        let p = CnnParams::from_params(&params(&[("height", "4")])).unwrap();
        let e = fit(&table, &target, &p, &ctx).unwrap_err().to_string();
        assert!(e.contains("`height`") && e.contains("(64)"), "{e}");
        // A geometry larger than the columns is refused too (8×9 once trained on 64 pixels,
        // and 4096×4096 sized every image at 16 M values until the process aborted).
        let p = CnnParams::from_params(&params(&[("width", "9")])).unwrap();
        let e = fit(&table, &target, &p, &ctx).unwrap_err().to_string();
        assert!(e.contains("`height`") && e.contains("= 72"), "{e}");
        let e = CnnFamily
            .validate_params(&params(&[("height", "4096"), ("width", "4096")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`height`") && e.contains("1048576"), "{e}");
        // Every pixel is an input, constant ones included: one column fewer is refused.
        let fewer = table.drop_column("pixel_0").unwrap();
        let p = CnnParams::from_params(&params(&[])).unwrap();
        let e = fit(&fewer, &target, &p, &ctx).unwrap_err().to_string();
        assert!(e.contains("(63)"), "{e}");
        assert!(CnnFamily.keeps_constant_columns());

        let m = fit_on(
            &table,
            &target,
            &[
                ("epochs", "1"),
                ("patience", "0"),
                ("validation_fraction", "0"),
            ],
            1,
        );
        let mut row = table.row(0);
        row[5] = Value::Null;
        let e = m.predict_rows(&[row]).unwrap_err().to_string();
        assert!(e.contains("pixel_5") && e.contains("row 0"), "{e}");
        let mut v: serde_json::Value = serde_json::from_slice(&m.payload().unwrap()).unwrap();
        v["convs"][0]["kernel"] = 5.into();
        assert!(
            CnnFamily
                .load_payload(&serde_json::to_vec(&v).unwrap())
                .is_err()
        );
    }

    #[test]
    fn an_image_larger_than_its_pixel_inputs_is_refused_before_it_is_allocated() {
        // The geometry alone once sized the map: 1 M × 1 M pixels for 64 inputs asked for 8 TB
        // and aborted the process (QA: 4096×4096 on the 8×8 digits).
        let p = CnnParams {
            height: 1 << 20,
            width: 1 << 20,
            ..CnnParams::from_params(&params(&[])).unwrap()
        };
        let positions: Vec<usize> = (0..64).collect();
        let e = to_planes(&[0.5; 64], &positions, &p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`height`") && e.contains("pixel inputs (64)"),
            "{e}"
        );
        // A geometry past `usize` saturates and is refused the same way.
        let p = CnnParams {
            height: usize::MAX,
            width: 3,
            ..p
        };
        assert!(to_planes(&[0.5; 64], &positions, &p).is_err());
        let p = CnnParams::from_params(&params(&[("width", "9")])).unwrap();
        assert!(to_planes(&[0.5; 64], &positions, &p).is_err());
        let p = CnnParams::from_params(&params(&[])).unwrap();
        assert_eq!(to_planes(&[0.5; 64], &positions, &p).unwrap().len(), 64);
        // The message says what is required, not only the ceiling.
        let e = CnnFamily
            .validate_params(&params(&[("height", "4096"), ("width", "4096")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`height`") && e.contains("to equal the number of pixel columns"),
            "{e}"
        );
    }

    #[test]
    fn a_stored_model_whose_image_the_pixels_do_not_fill_is_refused_on_load() {
        let (table, target) = digits();
        let m = fit_on(
            &table,
            &target,
            &[
                ("epochs", "1"),
                ("patience", "0"),
                ("validation_fraction", "0"),
                ("conv_channels", "4"),
                ("dense", "8"),
            ],
            5,
        );
        // Trained on the whole image, the digits' always-blank pixels included: a client's
        // full image is accepted.
        assert_eq!(m.input_schema().fields.len(), 64);
        assert_eq!(m.input_schema().fields[0].name, "pixel_0");
        assert!(m.predict_rows(&[table.row(0)]).is_ok());
        let v: serde_json::Value = serde_json::from_slice(&m.payload().unwrap()).unwrap();
        // 8×9 cells over 64 pixel columns (padded, as the release once trained them): refused.
        let mut wide = v.clone();
        wide["params"]["width"] = 9.into();
        let Err(e) = CnnFamily.load_payload(&serde_json::to_vec(&wide).unwrap()) else {
            panic!("an 8×9 image over 64 pixel columns loaded");
        };
        let e = e.to_string();
        assert!(
            e.contains("64 pixel columns do not fit a 8×9×1 image"),
            "{e}"
        );
        // A model stored before constant pixel columns were kept (here `pixel_0` left out,
        // positions 1..64) still loads and serves 63 columns, the absent pixel read as 0.
        let mut legacy = v;
        legacy["schema"]["fields"].as_array_mut().unwrap().remove(0);
        legacy["positions"] = (1..64).collect::<Vec<usize>>().into();
        let old = CnnFamily
            .load_payload(&serde_json::to_vec(&legacy).unwrap())
            .unwrap();
        let row = table.row(0);
        assert_eq!(
            old.predict_rows(&[row[1..].to_vec()]).unwrap(),
            m.predict_rows(&[row]).unwrap()
        );
    }

    #[test]
    fn hand_written_convolution_matches_a_direct_sum() {
        // One 3×3 kernel over a 4×4 ramp, "same" padding, then ReLU and 2×2 max pooling.
        let conv = ConvLayer {
            c_in: 1,
            c_out: 1,
            kernel: 3,
            weight: vec![0.0, 1.0, 0.0, 1.0, -4.0, 1.0, 0.0, 1.0, 0.0],
            bias: vec![0.5],
        };
        let img: Vec<f64> = (0..16).map(|i| f64::from(i * i % 7)).collect();
        let at = |y: i64, x: i64| {
            if (0..4).contains(&y) && (0..4).contains(&x) {
                img[(y * 4 + x) as usize]
            } else {
                0.0
            }
        };
        let mut full = [[0.0; 4]; 4];
        for y in 0..4i64 {
            for x in 0..4i64 {
                full[y as usize][x as usize] =
                    0.5 + at(y - 1, x) + at(y + 1, x) + at(y, x - 1) + at(y, x + 1)
                        - 4.0 * at(y, x);
            }
        }
        let out = conv.forward_pool(&img, 4, 4);
        for py in 0..2 {
            for px in 0..2 {
                let m = (0..2)
                    .flat_map(|dy| (0..2).map(move |dx| (dy, dx)))
                    .map(|(dy, dx)| full[2 * py + dy][2 * px + dx])
                    .fold(f64::NEG_INFINITY, f64::max)
                    .max(0.0);
                assert!((out[py * 2 + px] - m).abs() < 1e-12);
            }
        }
    }
}
