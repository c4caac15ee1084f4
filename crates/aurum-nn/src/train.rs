//! What both families' training loops share: seeded randomness, the validation carve, weight
//! initialisation, dropout masks, early stopping and reading weights back from burn.
//!
//! Every random draw (initial weights, the validation split, batch order, dropout) comes from one
//! ChaCha8 stream seeded with the job's seed; burn's own random number generator is never used,
//! so two fits with the same seed give the same bits even when other fits run in parallel.

use aurum_contract::ModelError;
use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dense::DenseLayer;

pub type SeededRng = ChaCha8Rng;

pub fn rng(seed: u64) -> SeededRng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Splits row indices into (training, validation), stratified by class: each class gives
/// `round(fraction · count)` rows to validation (at least one when it has two or more rows and
/// `fraction > 0`). Both lists come back sorted.
pub fn stratified_carve(
    classes: &[u32],
    n_classes: usize,
    fraction: f64,
    rng: &mut SeededRng,
) -> (Vec<usize>, Vec<usize>) {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &c) in classes.iter().enumerate() {
        by_class[c as usize].push(i);
    }
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for mut rows in by_class {
        rows.shuffle(rng);
        let mut k = (fraction * rows.len() as f64).round() as usize;
        if fraction > 0.0 && k == 0 && rows.len() >= 2 {
            k = 1;
        }
        valid.extend_from_slice(&rows[..k]);
        train.extend_from_slice(&rows[k..]);
    }
    train.sort_unstable();
    valid.sort_unstable();
    (train, valid)
}

/// Checks a class target for `n` rows: one class per row, every class index in range, at least
/// two classes and two rows per class on average; `what` names the model in the error.
pub fn check_class_target(
    n: usize,
    target: &aurum_core::ClassTarget,
    what: &str,
) -> Result<(), ModelError> {
    let n_classes = target.classes.len();
    if target.y.len() != n {
        return Err(ModelError::InvalidTarget {
            reason: format!("{} target values for {n} rows", target.y.len()),
        });
    }
    if n_classes < 2 || n < 2 * n_classes || target.y.iter().any(|&c| c as usize >= n_classes) {
        return Err(ModelError::NotEnoughData {
            reason: format!(
                "{n} rows of {n_classes} classes: {what} needs at least two classes and two rows per class"
            ),
        });
    }
    Ok(())
}

/// PyTorch's default for a linear layer: weights and biases uniform in `±1/√fan_in`.
pub fn linear_init(d_in: usize, d_out: usize, rng: &mut SeededRng) -> DenseLayer {
    let k = 1.0 / (d_in as f64).sqrt();
    let mut draw =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-k..k) as f32).collect() };
    let weight = draw(d_in * d_out);
    let bias = draw(d_out);
    DenseLayer {
        d_in,
        d_out,
        weight,
        bias,
    }
}

/// Standard normal draws (Box–Muller), PyTorch's default for embeddings.
pub fn normal(n: usize, rng: &mut SeededRng) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let u1: f64 = rng.random_range(f64::EPSILON..1.0);
            let u2: f64 = rng.random();
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect()
}

/// A burn linear layer holding `layer`'s weights.
pub fn to_burn_linear(layer: &DenseLayer, device: &Device) -> Linear {
    Linear {
        weight: Param::from_data(
            TensorData::new(layer.weight.clone(), [layer.d_in, layer.d_out]),
            device,
        ),
        bias: Some(Param::from_data(
            TensorData::new(layer.bias.clone(), [layer.d_out]),
            device,
        )),
    }
}

/// The values of a burn tensor as `f32`.
pub fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, ModelError> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| ModelError::Numerical {
            reason: format!("reading weights back from the tensor runtime: {e:?}"),
        })
}

/// A burn linear layer's weights back as a [`DenseLayer`].
pub fn from_burn_linear(layer: &Linear) -> Result<DenseLayer, ModelError> {
    let [d_in, d_out] = layer.weight.val().dims();
    let weight = read_f32(layer.weight.val())?;
    let bias = match &layer.bias {
        Some(b) => read_f32(b.val())?,
        None => vec![0.0; d_out],
    };
    let out = DenseLayer {
        d_in,
        d_out,
        weight,
        bias,
    };
    out.check("trained layer")
        .map_err(|reason| ModelError::Numerical { reason })?;
    Ok(out)
}

/// Inverted dropout: a `[rows, width]` mask of 0 and `1/(1−p)`.
pub fn dropout_mask(
    rows: usize,
    width: usize,
    p: f64,
    rng: &mut SeededRng,
    device: &Device,
) -> Tensor<2> {
    let keep = (1.0 / (1.0 - p)) as f32;
    let mask: Vec<f32> = (0..rows * width)
        .map(|_| if rng.random::<f64>() < p { 0.0 } else { keep })
        .collect();
    Tensor::from_data(TensorData::new(mask, [rows, width]), device)
}

/// Early stopping on a validation loss: remembers the best epoch and its weights.
#[derive(Debug)]
pub struct EarlyStopping<W> {
    patience: usize,
    pub best_loss: f64,
    pub best_epoch: usize,
    pub best: Option<W>,
}

impl<W> EarlyStopping<W> {
    /// `patience` epochs without improvement stop training; 0 never stops (the last epoch's
    /// weights are kept).
    pub fn new(patience: usize) -> Self {
        Self {
            patience,
            best_loss: f64::INFINITY,
            best_epoch: 0,
            best: None,
        }
    }

    /// Records an epoch; returns whether training should stop.
    pub fn record(&mut self, epoch: usize, loss: f64, weights: W) -> bool {
        if self.patience == 0 {
            self.best_loss = loss;
            self.best_epoch = epoch;
            self.best = Some(weights);
            return false;
        }
        if loss < self.best_loss {
            self.best_loss = loss;
            self.best_epoch = epoch;
            self.best = Some(weights);
        }
        epoch - self.best_epoch >= self.patience
    }
}

/// The shared training hyper-parameters of both families.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimisation {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub dropout: f64,
    pub patience: usize,
    pub validation_fraction: f64,
}

impl Optimisation {
    pub const PARAM_NAMES: &'static [&'static str] = &[
        "batch_size",
        "dropout",
        "epochs",
        "learning_rate",
        "patience",
        "validation_fraction",
        "weight_decay",
    ];

    pub fn read(
        r: &aurum_contract::ParamReader<'_>,
        defaults: Optimisation,
    ) -> Result<Self, ModelError> {
        let mut p = defaults;
        if let Some(n) = r.usize("epochs", 1..=100_000)? {
            p.epochs = n;
        }
        if let Some(n) = r.usize("batch_size", 1..=1_000_000)? {
            p.batch_size = n;
        }
        if let Some(x) = r.f64(
            "learning_rate",
            |x| x > 0.0 && x <= 10.0,
            "a number in (0, 10]",
        )? {
            p.learning_rate = x;
        }
        if let Some(x) = r.f64("weight_decay", |x| x >= 0.0, "a number >= 0")? {
            p.weight_decay = x;
        }
        if let Some(x) = r.f64(
            "dropout",
            |x| (0.0..0.95).contains(&x),
            "a number in [0, 0.95)",
        )? {
            p.dropout = x;
        }
        if let Some(n) = r.usize("patience", 0..=100_000)? {
            p.patience = n;
        }
        if let Some(x) = r.f64(
            "validation_fraction",
            |x| (0.0..=0.5).contains(&x),
            "a number in [0, 0.5]",
        )? {
            p.validation_fraction = x;
        }
        if p.patience > 0 && p.validation_fraction == 0.0 {
            return Err(ModelError::invalid_param(
                "validation_fraction",
                0,
                "a number in (0, 0.5] while patience > 0 (early stopping needs a validation split; set patience=0 to train every epoch)",
            ));
        }
        Ok(p)
    }

    pub fn write_json(&self, out: &mut serde_json::Map<String, serde_json::Value>) {
        out.insert("epochs".into(), self.epochs.into());
        out.insert("batch_size".into(), self.batch_size.into());
        out.insert("learning_rate".into(), self.learning_rate.into());
        out.insert("weight_decay".into(), self.weight_decay.into());
        out.insert("dropout".into(), self.dropout.into());
        out.insert("patience".into(), self.patience.into());
        out.insert(
            "validation_fraction".into(),
            self.validation_fraction.into(),
        );
    }

    /// Whether a validation split is carved (early stopping on).
    pub fn early_stopping(&self) -> bool {
        self.patience > 0 && self.validation_fraction > 0.0
    }
}

/// The rows of the next epoch, in a seeded order, cut into batches.
pub fn epoch_batches(rows: &[usize], batch_size: usize, rng: &mut SeededRng) -> Vec<Vec<usize>> {
    let mut order = rows.to_vec();
    order.shuffle(rng);
    order.chunks(batch_size).map(<[usize]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carve_is_stratified_seeded_and_disjoint() {
        let classes: Vec<u32> = (0..100).map(|i| u32::from(i % 4 == 0)).collect();
        let (t, v) = stratified_carve(&classes, 2, 0.2, &mut rng(7));
        assert_eq!(t.len() + v.len(), 100);
        assert_eq!(v.iter().filter(|&&i| classes[i] == 1).count(), 5);
        assert_eq!(v.len(), 20);
        assert!(v.iter().all(|i| t.binary_search(i).is_err()));
        assert_eq!((t, v), stratified_carve(&classes, 2, 0.2, &mut rng(7)));
    }

    #[test]
    fn early_stopping_keeps_the_best_epoch() {
        let mut es = EarlyStopping::new(2);
        assert!(!es.record(1, 1.0, 'a'));
        assert!(!es.record(2, 0.5, 'b'));
        assert!(!es.record(3, 0.6, 'c'));
        assert!(es.record(4, 0.7, 'd'));
        assert_eq!((es.best_epoch, es.best), (2, Some('b')));
    }
}
