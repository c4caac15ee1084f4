//! A tabular variational autoencoder for synthetic rows of one class (minority oversampling).
//!
//! Why a VAE and not a GAN: it trains stably on a few hundred rows with one loss, early stopping
//! on a validation carve works as for the other families, and sampling is one decoder pass.
//!
//! Columns follow [`aurum_data::synth::MixedLayout`]: numbers are standardised (a missing
//! number enters as the mean and is left out of the reconstruction loss), categories (and
//! booleans) are one-hot with a softmax head each, trained with cross-entropy; text and
//! datetime columns are not modelled (samples take an observed cell). The encoder gives a
//! Gaussian latent (mean and log-variance, reparameterised), the loss is reconstruction plus
//! `beta` × KL to the standard normal, trained with AdamW on burn's CPU backend.
//!
//! Sampling draws `z ~ N(0, I)` and runs the decoder through the hand-written forward pass of
//! [`crate::dense`]: numbers are un-standardised, clipped to the observed range and rounded when
//! the column is integer-valued, then set missing at the column's observed missing rate;
//! categories are drawn from the softmax (the missing level included, so its rate travels).
//! Every random draw (weights, carve, batches, reparameterisation noise, samples) comes from
//! seeded ChaCha8 streams: the same seeds give the same rows.

use aurum_contract::{FitContext, ModelError};
use aurum_core::{Table, Value};
use aurum_data::synth::{ColumnKind, EncodedRows, MixedLayout, category_value, numeric_value};
use burn::nn::Linear;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu};
use rand::Rng;
use serde::Serialize;

use crate::dense::{Perceptron, softmax};
use crate::train::{self, EarlyStopping};

/// Hyper-parameters of the tabular VAE.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VaeParams {
    /// Latent dimensions.
    pub latent_dim: usize,
    /// Width of the two hidden layers of the encoder and of the decoder.
    pub hidden: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Weight of the KL term.
    pub beta: f64,
    /// Epochs without a better validation loss before stopping (0: train every epoch).
    pub patience: usize,
    /// Share of the rows carved off for early stopping.
    pub validation_fraction: f64,
}

impl Default for VaeParams {
    fn default() -> Self {
        Self {
            latent_dim: 8,
            hidden: 64,
            epochs: 300,
            batch_size: 64,
            learning_rate: 1e-3,
            weight_decay: 1e-4,
            beta: 1.0,
            patience: 30,
            validation_fraction: 0.15,
        }
    }
}

impl VaeParams {
    /// Checks every parameter's range.
    pub fn check(&self) -> Result<(), ModelError> {
        let bad = |name: &str, value: String, expected: &str| {
            Err(ModelError::InvalidParam {
                name: name.into(),
                value,
                expected: expected.into(),
            })
        };
        if !(1..=256).contains(&self.latent_dim) {
            return bad("latent_dim", self.latent_dim.to_string(), "1 to 256");
        }
        if !(1..=4096).contains(&self.hidden) {
            return bad("hidden", self.hidden.to_string(), "1 to 4096");
        }
        if !(1..=100_000).contains(&self.epochs) {
            return bad("epochs", self.epochs.to_string(), "1 to 100000");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "0".into(), "at least 1");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 10.0) {
            return bad(
                "learning_rate",
                self.learning_rate.to_string(),
                "a number in (0, 10]",
            );
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(
                "weight_decay",
                self.weight_decay.to_string(),
                "a number >= 0",
            );
        }
        if !(self.beta >= 0.0 && self.beta.is_finite()) {
            return bad("beta", self.beta.to_string(), "a number >= 0");
        }
        if !(0.0..=0.5).contains(&self.validation_fraction)
            || (self.patience > 0 && self.validation_fraction == 0.0)
        {
            return bad(
                "validation_fraction",
                self.validation_fraction.to_string(),
                "a number in [0, 0.5], above 0 when patience > 0",
            );
        }
        Ok(())
    }

    fn early_stopping(&self) -> bool {
        self.patience > 0 && self.validation_fraction > 0.0
    }
}

/// What training did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VaeLog {
    pub epochs_run: usize,
    pub best_epoch: usize,
    /// Reconstruction + beta·KL per validation row at the best epoch (with early stopping).
    pub validation_loss: Option<f64>,
    pub training_rows: usize,
    pub validation_rows: usize,
}

/// A fitted tabular VAE: the column layout and the decoder's weights.
#[derive(Clone, Debug, PartialEq)]
pub struct TabularVae {
    layout: MixedLayout,
    decoder: Perceptron,
    latent_dim: usize,
    log: VaeLog,
}

/// The network as burn trains it.
#[derive(Module, Debug)]
struct VaeNet {
    encoder: Vec<Linear>,
    mu: Linear,
    logvar: Linear,
    decoder: Vec<Linear>,
    output: Linear,
}

impl VaeNet {
    /// `(reconstruction outputs, mu, logvar)`; `eps` is the reparameterisation noise (`None`:
    /// the latent mean).
    fn forward(&self, x: Tensor<2>, eps: Option<Tensor<2>>) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
        let mut h = x;
        for layer in &self.encoder {
            h = relu(layer.forward(h));
        }
        let mu = self.mu.forward(h.clone());
        let logvar = self.logvar.forward(h).clamp(-10.0, 10.0);
        let mut z = match eps {
            Some(e) => mu.clone() + (logvar.clone() * 0.5).exp() * e,
            None => mu.clone(),
        };
        for layer in &self.decoder {
            z = relu(layer.forward(z));
        }
        (self.output.forward(z), mu, logvar)
    }
}

/// The one-hot and standardised input block of the encoded rows.
struct Blocks {
    /// `[n, d]` input vectors: standardised numbers (0 when missing), then one-hot codes.
    x: Vec<f32>,
    /// `[n, n_numeric]`: 1 where the number is present.
    mask: Vec<f32>,
    d: usize,
    n_numeric: usize,
    /// The width of each categorical block, in order.
    widths: Vec<usize>,
}

fn blocks(layout: &MixedLayout, enc: &EncodedRows) -> Blocks {
    let widths: Vec<usize> = layout.categorical().map(|c| c.n_codes()).collect();
    let n_numeric = enc.n_numeric;
    let d = n_numeric + widths.iter().sum::<usize>();
    let mut x = vec![0.0f32; enc.n_rows * d];
    let mut mask = vec![0.0f32; enc.n_rows * n_numeric];
    for i in 0..enc.n_rows {
        let row = &mut x[i * d..(i + 1) * d];
        for (j, &z) in enc.numeric_row(i).iter().enumerate() {
            if !z.is_nan() {
                row[j] = z as f32;
                mask[i * n_numeric + j] = 1.0;
            }
        }
        let mut offset = n_numeric;
        for (&code, &w) in enc.code_row(i).iter().zip(&widths) {
            row[offset + (code as usize).min(w - 1)] = 1.0;
            offset += w;
        }
    }
    Blocks {
        x,
        mask,
        d,
        n_numeric,
        widths,
    }
}

impl Blocks {
    fn batch(&self, rows: &[usize], device: &Device) -> (Tensor<2>, Tensor<2>) {
        let b = rows.len();
        let mut x = Vec::with_capacity(b * self.d);
        let mut m = Vec::with_capacity(b * self.n_numeric);
        for &i in rows {
            x.extend_from_slice(&self.x[i * self.d..(i + 1) * self.d]);
            m.extend_from_slice(&self.mask[i * self.n_numeric..(i + 1) * self.n_numeric]);
        }
        (
            Tensor::from_data(TensorData::new(x, [b, self.d]), device),
            Tensor::from_data(TensorData::new(m, [b, self.n_numeric.max(1)]), device),
        )
    }

    /// The summed loss of a batch: masked squared error / 2 on the numbers, cross-entropy per
    /// categorical block, and `beta` × KL.
    fn loss(
        &self,
        x: Tensor<2>,
        mask: Tensor<2>,
        (out, mu, logvar): (Tensor<2>, Tensor<2>, Tensor<2>),
        beta: f64,
    ) -> Tensor<1> {
        let mut total = if self.n_numeric > 0 {
            let diff =
                out.clone().narrow(1, 0, self.n_numeric) - x.clone().narrow(1, 0, self.n_numeric);
            (diff.square() * mask).sum().mul_scalar(0.5)
        } else {
            Tensor::<1>::zeros([1], &x.device())
        };
        let mut offset = self.n_numeric;
        for &w in &self.widths {
            let logp = log_softmax(out.clone().narrow(1, offset, w), 1);
            total = total + (logp * x.clone().narrow(1, offset, w)).sum().neg();
            offset += w;
        }
        let kl = (logvar.clone().exp() + mu.square() - logvar - 1.0)
            .sum()
            .mul_scalar(0.5);
        total + kl.mul_scalar(beta)
    }
}

/// Fits a tabular VAE on the rows of `table` (the rows of one class, target column removed).
pub fn fit_vae(
    table: &Table,
    params: &VaeParams,
    ctx: &FitContext<'_>,
) -> Result<TabularVae, ModelError> {
    params.check()?;
    let n = table.n_rows();
    if n < 10 {
        return Err(ModelError::NotEnoughData {
            reason: format!("{n} rows: the VAE needs at least 10 rows of the class"),
        });
    }
    let layout = MixedLayout::fit(table).map_err(|e| ModelError::NotEnoughData {
        reason: e.to_string(),
    })?;
    let enc = layout.encode(table);
    let bl = blocks(&layout, &enc);
    if bl.d == 0 {
        return Err(ModelError::NotEnoughData {
            reason: "no numeric, boolean or categorical column to model".into(),
        });
    }
    let mut rng = train::rng(ctx.seed);
    let (train_rows, valid_rows) = if params.early_stopping() {
        train::stratified_carve(&vec![0; n], 1, params.validation_fraction, &mut rng)
    } else {
        ((0..n).collect(), Vec::new())
    };
    let device = Device::flex().autodiff();
    let h = params.hidden;
    let z = params.latent_dim;
    let mut lin =
        |a: usize, b: usize| train::to_burn_linear(&train::linear_init(a, b, &mut rng), &device);
    let mut model = VaeNet {
        encoder: vec![lin(bl.d, h), lin(h, h)],
        mu: lin(h, z),
        logvar: lin(h, z),
        decoder: vec![lin(z, h), lin(h, h)],
        output: lin(h, bl.d),
    };
    let mut optim = AdamWConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(params.weight_decay as f32)
        .init();
    let mut stopping = EarlyStopping::new(if params.early_stopping() {
        params.patience
    } else {
        0
    });
    let (valid_x, valid_mask) = bl.batch(&valid_rows, &device);
    let mut epochs_run = 0;
    for epoch in 1..=params.epochs {
        ctx.check_cancelled()?;
        for batch in train::epoch_batches(&train_rows, params.batch_size, &mut rng) {
            let b = batch.len();
            let (x, mask) = bl.batch(&batch, &device);
            let eps = Tensor::<2>::from_data(
                TensorData::new(train::normal(b * z, &mut rng), [b, z]),
                &device,
            );
            let out = model.forward(x.clone(), Some(eps));
            let loss = bl.loss(x, mask, out, params.beta).div_scalar(b as f64);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(params.learning_rate, model, grads);
        }
        epochs_run = epoch;
        ctx.progress
            .report("training", epoch as f64 / params.epochs as f64);
        if params.early_stopping() {
            let out = model.forward(valid_x.clone(), None);
            let loss = bl.loss(valid_x.clone(), valid_mask.clone(), out, params.beta);
            let loss = f64::from(train::read_f32(loss)?[0]) / valid_rows.len() as f64;
            if !loss.is_finite() {
                return Err(ModelError::Numerical {
                    reason: format!("validation loss is {loss} at epoch {epoch}"),
                });
            }
            if stopping.record(epoch, loss, model.clone()) {
                break;
            }
        }
    }
    let (model, best_epoch, validation_loss) = match stopping.best.take() {
        Some(m) if params.early_stopping() => (m, stopping.best_epoch, Some(stopping.best_loss)),
        _ => (model, epochs_run, None),
    };
    let decoder = Perceptron {
        hidden: model
            .decoder
            .iter()
            .map(train::from_burn_linear)
            .collect::<Result<_, _>>()?,
        output: train::from_burn_linear(&model.output)?,
    };
    Ok(TabularVae {
        layout,
        decoder,
        latent_dim: z,
        log: VaeLog {
            epochs_run,
            best_epoch,
            validation_loss,
            training_rows: train_rows.len(),
            validation_rows: valid_rows.len(),
        },
    })
}

impl TabularVae {
    /// What training did.
    pub fn log(&self) -> &VaeLog {
        &self.log
    }

    /// The column layout the model was fitted with.
    pub fn layout(&self) -> &MixedLayout {
        &self.layout
    }

    /// `rows` synthetic rows with the fitted table's columns and types, from `seed`.
    pub fn sample(&self, rows: usize, seed: u64) -> Table {
        let mut rng = train::rng(seed);
        let cols = &self.layout.columns;
        let mut cells: Vec<Vec<Value>> = vec![Vec::with_capacity(rows); cols.len()];
        for _ in 0..rows {
            let z: Vec<f64> = train::normal(self.latent_dim, &mut rng)
                .into_iter()
                .map(f64::from)
                .collect();
            let out = self.decoder.forward(&z);
            let (mut jn, mut offset) = (0, self.layout.numeric().count());
            for (spec, out_cells) in cols.iter().zip(cells.iter_mut()) {
                let value = match &spec.kind {
                    ColumnKind::Numeric(s) => {
                        let missing = rng.random::<f64>() < s.missing_rate;
                        let x = s.decode(out[jn]);
                        jn += 1;
                        numeric_value(spec.ty, (!missing).then_some(x))
                    }
                    ColumnKind::Categorical(s) => {
                        let w = s.n_codes();
                        let p = softmax(&out[offset..offset + w]);
                        offset += w;
                        let u: f64 = rng.random();
                        let mut acc = 0.0;
                        let code = p
                            .iter()
                            .position(|&pk| {
                                acc += pk;
                                u < acc
                            })
                            .unwrap_or(w - 1);
                        category_value(spec.ty, s, code)
                    }
                    ColumnKind::Resampled { values } => {
                        values[rng.random_range(0..values.len())].clone()
                    }
                };
                out_cells.push(value);
            }
        }
        self.layout.build(cells)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurum_core::{CancelToken, ColumnData, ColumnType, NoProgress};

    fn minority() -> Table {
        let bytes = include_bytes!("../../../data/demo/german_credit.csv");
        let t = aurum_data::read_csv(bytes, &Default::default()).unwrap();
        let y = t.column("creditability").unwrap();
        let rows: Vec<usize> = (0..t.n_rows())
            .filter(|&i| y.data.get(i) == Value::Str("bad".into()))
            .collect();
        let mut t = t.take(&rows).drop_column("creditability").unwrap();
        // A float column with missing cells, to check the missing rate travels.
        let amount = t.column("credit_amount").unwrap().data.clone();
        let holes: Vec<Option<f64>> = (0..t.n_rows())
            .map(|i| match amount.get(i) {
                Value::Integer(x) if i % 5 != 0 => Some(x as f64 / 7.0),
                _ => None,
            })
            .collect();
        t = Table::new(
            t.columns()
                .iter()
                .cloned()
                .chain([aurum_core::Column {
                    name: "holey".into(),
                    data: ColumnData::Float(holes),
                }])
                .collect(),
        )
        .unwrap();
        t
    }

    fn fit(seed: u64) -> TabularVae {
        let params = VaeParams {
            epochs: 40,
            patience: 10,
            ..VaeParams::default()
        };
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed,
        };
        fit_vae(&minority(), &params, &ctx).unwrap()
    }

    #[test]
    fn same_seed_same_samples_and_decoding_keeps_types_and_ranges() {
        let t = minority();
        let (a, b) = (fit(7), fit(7));
        assert_eq!(a, b, "same seed, different models");
        let s = a.sample(600, 3);
        assert_eq!(s, b.sample(600, 3));
        assert_ne!(s, a.sample(600, 4));
        assert_eq!(s.schema(), t.schema());
        assert_eq!(s.n_rows(), 600);
        assert!(a.log().epochs_run >= 1 && a.log().validation_loss.is_some());
        for (spec, col) in a.layout().columns.iter().zip(s.columns()) {
            let src = t.column(&spec.name).unwrap();
            for i in 0..s.n_rows() {
                match (&spec.kind, col.data.get(i)) {
                    (_, Value::Null) => {}
                    (ColumnKind::Numeric(ns), v) => {
                        let x = match v {
                            Value::Float(x) => x,
                            Value::Integer(x) => x as f64,
                            other => panic!("{}: {other:?}", spec.name),
                        };
                        assert!(
                            x >= ns.min && x <= ns.max,
                            "{} out of range: {x}",
                            spec.name
                        );
                        if ns.integer {
                            assert_eq!(x.fract(), 0.0, "{}", spec.name);
                        }
                    }
                    (ColumnKind::Categorical(cs), Value::Str(v)) => {
                        assert!(cs.levels.contains(&v), "{}: {v}", spec.name);
                    }
                    (_, v) => panic!("{}: unexpected {v:?}", spec.name),
                }
            }
            if src.data.column_type() == ColumnType::Integer {
                assert!(matches!(col.data, ColumnData::Integer(_)));
            }
        }
        // The missing rate of the holey column (1 in 5) is reproduced.
        let holey = s.column("holey").unwrap();
        let missing = (0..s.n_rows())
            .filter(|&i| holey.data.is_missing(i))
            .count();
        let rate = missing as f64 / s.n_rows() as f64;
        assert!((rate - 0.2).abs() < 0.06, "missing rate {rate}");
        // Samples are spread, not one row repeated.
        let amounts: std::collections::BTreeSet<String> = (0..s.n_rows())
            .map(|i| s.column("credit_amount").unwrap().data.get(i).to_string())
            .collect();
        assert!(amounts.len() > 50, "{} distinct amounts", amounts.len());
    }
}
