//! The `mlp` family: a multi-layer perceptron for tabular binary classification.
//!
//! Inputs are encoded by the stored [`TabularEncoder`] (standardised numerics with median
//! imputation and missing indicators, dates as ordinals, one learned embedding per categorical
//! feature with a reserved index for unseen categories). The network is ReLU hidden layers with
//! inverted dropout and one output logit, trained with AdamW (decoupled weight decay) on the
//! class-weighted log loss, with early stopping on a stratified validation split carved from
//! the training rows. Training runs on burn's CPU backend with autodiff; serving runs the
//! hand-written forward pass of [`crate::dense`] over the saved weights.
//!
//! **Free text.** By default (`text_encoder=tfidf`) the family does not read text: the job
//! runner's hashed TF-IDF step ([`aurum_contract::text`]) turns each text column into numeric
//! columns in front of it. With `text_encoder=transformer` the family reads every text column
//! of its input itself ([`aurum_contract::ModelFamily::reads_text`] says so to the job runner):
//! each cell becomes token ids (the TF-IDF step's tokens and pinned hash, `text_vocab` buckets,
//! the first `text_length` tokens) and a small transformer ([`crate::text`]: token and position
//! embeddings, one pre-norm encoder block with two masked attention heads, masked mean pool)
//! encodes it into `text_dim` inputs, placed after the categorical embeddings in front of the
//! hidden layers and trained end to end with them (same optimiser, early stopping, class weights
//! and seed). Why: TF-IDF sees a bag of weighted words; the encoder can learn which words matter
//! together and in which order. The fitted model's input schema keeps the column typed `text`,
//! the payload carries the encoder's weights, and serving runs the encoder's `f64` pass like
//! the rest of the network (no tensor runtime).
//!
//! **Explanations** are integrated gradients in log-odds, from the training-mean input (the mean
//! standardised numerics, indicator rates, embedding vectors and encoded text vectors of the
//! training rows) to the row, along the straight path in the perceptron's input space, with a
//! 32-step midpoint rule. A feature's contribution is the sum over its input columns (its value
//! and missing indicator, its embedding vector, or its encoded text vector). Integrated
//! gradients is complete only in the limit, so the small quadrature residual is spread over the
//! features in proportion to their absolute attributions: `base_value + Σ contributions` is the
//! row's log-odds exactly, as for the other credit families, and reasons for a declined
//! applicant rank the positive contributions.
//!
//! A text column is attributed as a categorical feature is: its encoded vector (the `text_dim`
//! outputs of its encoder) is the column's part of the perceptron's input, the path runs from the
//! training-mean encoded vector to the row's, and the column's one contribution is the sum over
//! those `text_dim` inputs. The encoder reads that column alone, so everything its vector adds
//! belongs to the column; the attribution is not split further into words (that would take
//! integrated gradients through the attention: 32 backward passes of the encoder per
//! explanation). So a contribution and an adverse-action reason name the column, with the
//! cell's text as its value, never a token id.

use aurum_contract::policy::{CREDIT_PARAM_NAMES, CreditDecision, CreditParams, Decision};
use aurum_contract::reasons::{Reason, rank_adverse};
use aurum_contract::{
    Assessment, BinaryClassifier, BinaryTarget, FamilySpec, FitContext, FittedModel, ModelError,
    ModelFamily, ParamReader, Params, Task, TrainingData,
};
use aurum_core::{Contribution, Explanation, Metrics, Schema, Table, Value};
use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

use crate::dense::{EmbeddingTable, Perceptron, Trace, logit_loss, sigmoid};
use crate::tabular::{EncodedRow, TabularEncoder};
pub use crate::text::TextEncoding;
use crate::text::{TextBatch, TextEncoder, TextNet, TextParams};
use crate::train::{self, EarlyStopping, Optimisation};

/// Integrated-gradients quadrature steps.
pub const IG_STEPS: usize = 32;

const OWN_PARAMS: &[&str] = &[
    "class_weight",
    "embedding_dim",
    "hidden",
    "min_frequency",
    "threshold",
];

/// Every parameter name, sorted.
pub const PARAM_NAMES: &[&str] = &[
    "base_odds",
    "base_score",
    "batch_size",
    "class_weight",
    "dropout",
    "embedding_dim",
    "epochs",
    "hidden",
    "learning_rate",
    "max_reasons",
    "min_frequency",
    "patience",
    "pdo",
    "policy_pd_cutoff",
    "policy_score_cutoff",
    "reason_texts",
    "refer_high",
    "refer_low",
    "text_dim",
    "text_encoder",
    "text_length",
    "text_vocab",
    "threshold",
    "validation_fraction",
    "weight_decay",
];

/// What the `mlp` family is.
pub const SPEC: FamilySpec = FamilySpec {
    name: "mlp",
    aliases: &["neural_net", "multilayer_perceptron"],
    task: Task::Binary,
    summary: "Multi-layer perceptron (burn) with categorical embeddings, dropout, AdamW and early stopping.",
    params: PARAM_NAMES,
    trainable: true,
    importable: false,
};

/// The `mlp` family.
#[derive(Clone, Copy, Debug, Default)]
pub struct MlpFamily;

/// Typed, validated parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpParams {
    pub optimisation: Optimisation,
    /// Hidden layer widths, input side first.
    pub hidden: Vec<usize>,
    /// Embedding width of every categorical feature; 0 sizes each by its level count
    /// (`min(16, round(1.6 · n^0.56))`).
    pub embedding_dim: usize,
    /// Weigh each class to half of the loss (`balanced`) or every row alike (`none`).
    pub balanced: bool,
    pub min_frequency: usize,
    pub threshold: f64,
    pub credit: CreditParams,
    /// How free-text columns are read (`text_encoder`, `text_length`, `text_vocab`, `text_dim`).
    pub text: TextParams,
}

impl MlpParams {
    pub fn defaults() -> Optimisation {
        Optimisation {
            epochs: 100,
            batch_size: 64,
            learning_rate: 1e-3,
            weight_decay: 1e-4,
            dropout: 0.1,
            patience: 10,
            validation_fraction: 0.2,
        }
    }

    pub fn from_params(params: &Params) -> Result<Self, ModelError> {
        debug_assert!(
            OWN_PARAMS
                .iter()
                .chain(Optimisation::PARAM_NAMES)
                .chain(CREDIT_PARAM_NAMES)
                .chain(crate::text::PARAM_NAMES)
                .all(|p| PARAM_NAMES.contains(p))
        );
        let r = ParamReader::new("mlp", params, PARAM_NAMES)?;
        let optimisation = Optimisation::read(&r, Self::defaults())?;
        let hidden = match r.str("hidden") {
            None => vec![64, 32],
            Some(s) => parse_widths(s)?,
        };
        let embedding_dim = r.usize("embedding_dim", 0..=256)?.unwrap_or(0);
        let balanced = r
            .choice("class_weight", &[("none", false), ("balanced", true)])?
            .unwrap_or(false);
        let min_frequency = r.usize("min_frequency", 1..=usize::MAX)?.unwrap_or(1);
        let threshold = r
            .f64(
                "threshold",
                |x| (0.0..=1.0).contains(&x),
                "a number in [0, 1]",
            )?
            .unwrap_or(0.5);
        let credit = CreditParams::read(&r, threshold)?;
        let text = TextParams::read(&r)?;
        Ok(Self {
            optimisation,
            hidden,
            embedding_dim,
            balanced,
            min_frequency,
            threshold,
            credit,
            text,
        })
    }

    /// The canonical form recorded in manifests: every key, defaults filled in.
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        self.optimisation.write_json(&mut out);
        let widths: Vec<String> = self.hidden.iter().map(ToString::to_string).collect();
        out.insert("hidden".into(), widths.join(",").into());
        out.insert("embedding_dim".into(), self.embedding_dim.into());
        out.insert(
            "class_weight".into(),
            if self.balanced { "balanced" } else { "none" }.into(),
        );
        out.insert("min_frequency".into(), self.min_frequency.into());
        out.insert("threshold".into(), self.threshold.into());
        self.text.write_json(&mut out);
        self.credit.write_json(&mut out);
        serde_json::Value::Object(out)
    }

    fn from_json(v: &serde_json::Value) -> Result<Self, ModelError> {
        let params = aurum_contract::policy::params_from_json("mlp", v)?;
        Self::from_params(&params)
            .map_err(|e| ModelError::invalid_artifact(format!("mlp params: {e}")))
    }
}

/// `64,32` → `[64, 32]`: one to eight widths in 1..=4096.
pub(crate) fn parse_widths(s: &str) -> Result<Vec<usize>, ModelError> {
    let widths: Option<Vec<usize>> = s
        .split(',')
        .map(|w| {
            w.trim()
                .parse::<usize>()
                .ok()
                .filter(|w| (1..=4096).contains(w))
        })
        .collect();
    match widths {
        Some(w) if (1..=8).contains(&w.len()) => Ok(w),
        _ => Err(ModelError::invalid_param(
            "hidden",
            s,
            "one to eight comma-separated layer widths in 1..=4096, such as 64,32",
        )),
    }
}

/// The seeded embedding tables of `encoder`'s categorical features (standard normal, PyTorch's
/// default for an embedding), each `embedding_dim` wide (0: [`auto_embedding_dim`]), and the
/// network's input width per row or event: the numeric block plus every embedding.
pub(crate) fn seeded_embeddings(
    encoder: &TabularEncoder,
    embedding_dim: usize,
    rng: &mut train::SeededRng,
    device: &Device,
) -> (Vec<Embedding>, usize) {
    let sizes = encoder.category_sizes();
    let dims: Vec<usize> = sizes
        .iter()
        .map(|&s| {
            if embedding_dim == 0 {
                auto_embedding_dim(s)
            } else {
                embedding_dim
            }
        })
        .collect();
    let width = encoder.n_numeric() + dims.iter().sum::<usize>();
    let embeddings = sizes
        .iter()
        .zip(&dims)
        .map(|(&rows, &dim)| Embedding {
            weight: Param::from_data(
                TensorData::new(train::normal(rows * dim, rng), [rows, dim]),
                device,
            ),
        })
        .collect();
    (embeddings, width)
}

/// The embedding width of a feature with `n` indices.
pub fn auto_embedding_dim(n: usize) -> usize {
    ((1.6 * (n as f64).powf(0.56)).round() as usize).clamp(1, 16)
}

impl ModelFamily for MlpFamily {
    fn spec(&self) -> &FamilySpec {
        &SPEC
    }

    fn validate_params(&self, params: &Params) -> Result<serde_json::Value, ModelError> {
        MlpParams::from_params(params).map(|p| p.to_json())
    }

    fn fit(
        &self,
        data: &TrainingData<'_>,
        params: &Params,
        ctx: &FitContext<'_>,
    ) -> Result<Box<dyn FittedModel>, ModelError> {
        let target = data.binary()?;
        let params = MlpParams::from_params(params)?;
        Ok(Box::new(fit(data.features, target, &params, ctx)?))
    }

    /// With `text_encoder=transformer` the family encodes text columns itself.
    fn reads_text(&self, params: &Params) -> bool {
        MlpParams::from_params(params).is_ok_and(|p| p.text.reads_text())
    }

    fn load_payload(&self, payload: &[u8]) -> Result<Box<dyn FittedModel>, ModelError> {
        Ok(Box::new(MlpModel::from_payload(payload)?))
    }
}

/// The network as burn trains it.
#[derive(Module, Debug)]
struct MlpNet {
    embeddings: Vec<Embedding>,
    texts: Vec<TextNet>,
    hidden: Vec<Linear>,
    output: Linear,
}

/// What a fit keeps of the network at an epoch: the weights serving reads.
type Snapshot = (Vec<EmbeddingTable>, Vec<TextEncoder>, Perceptron);

impl MlpNet {
    fn forward(
        &self,
        numeric: Option<Tensor<2>>,
        categories: Vec<Tensor<1, Int>>,
        texts: Vec<TextBatch>,
        masks: Vec<Option<Tensor<2>>>,
    ) -> Tensor<2> {
        let mut parts: Vec<Tensor<2>> = numeric.into_iter().collect();
        for (e, idx) in self.embeddings.iter().zip(categories) {
            parts.push(e.weight.val().select(0, idx));
        }
        for (t, batch) in self.texts.iter().zip(texts) {
            parts.push(t.forward(batch));
        }
        let mut x = if parts.len() == 1 {
            parts.remove(0)
        } else {
            Tensor::cat(parts, 1)
        };
        for (layer, mask) in self.hidden.iter().zip(masks) {
            x = relu(layer.forward(x));
            if let Some(m) = mask {
                x = x * m;
            }
        }
        self.output.forward(x)
    }

    fn snapshot(&self) -> Result<Snapshot, ModelError> {
        let embeddings = self
            .embeddings
            .iter()
            .map(|e| {
                let [rows, dim] = e.weight.val().dims();
                Ok(EmbeddingTable {
                    rows,
                    dim,
                    weight: train::read_f32(e.weight.val())?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let network = Perceptron {
            hidden: self
                .hidden
                .iter()
                .map(train::from_burn_linear)
                .collect::<Result<_, _>>()?,
            output: train::from_burn_linear(&self.output)?,
        };
        let texts = self
            .texts
            .iter()
            .map(TextNet::snapshot)
            .collect::<Result<_, _>>()?;
        Ok((embeddings, texts, network))
    }
}

/// The training summary stored with the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingLog {
    pub epochs_run: usize,
    pub best_epoch: usize,
    /// The (class-weighted) validation log loss at the best epoch, when early stopping ran.
    pub validation_loss: Option<f64>,
    pub training_rows: usize,
    pub validation_rows: usize,
    /// Wall-clock training time per epoch; not stored (the payload depends only on the data,
    /// the parameters and the seed).
    #[serde(skip)]
    pub seconds_per_epoch: f64,
}

/// A fitted `mlp`.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpModel {
    params: MlpParams,
    encoder: TabularEncoder,
    schema: Schema,
    embeddings: Vec<EmbeddingTable>,
    /// One encoder per text feature, in feature order (`text_encoder=transformer`).
    texts: Vec<TextEncoder>,
    network: Perceptron,
    /// The training-mean input vector: the integrated-gradients baseline.
    baseline: Vec<f64>,
    positive_label: String,
    negative_label: String,
    log: TrainingLog,
}

/// The network input of an encoded row: its numeric block, then each categorical feature's
/// embedding vector.
pub(crate) fn input_vector(embeddings: &[EmbeddingTable], row: &EncodedRow, out: &mut Vec<f64>) {
    out.clear();
    out.extend_from_slice(&row.numeric);
    for (table, &idx) in embeddings.iter().zip(&row.categories) {
        out.extend(table.row(idx as usize).iter().map(|&w| f64::from(w)));
    }
}

/// The perceptron input of an encoded row: [`input_vector`], then each text feature's encoded
/// vector.
pub(crate) fn network_input(
    embeddings: &[EmbeddingTable],
    texts: &[TextEncoder],
    row: &EncodedRow,
    out: &mut Vec<f64>,
) {
    input_vector(embeddings, row, out);
    for (t, ids) in texts.iter().zip(&row.tokens) {
        out.extend(t.forward(ids));
    }
}

/// The reserved index never trained when every category was frequent: it then takes the
/// training-frequency-weighted mean embedding, so an unseen category scores as the feature's
/// average (and contributes nothing against the mean baseline).
pub(crate) fn fill_reserved_embeddings(embeddings: &mut [EmbeddingTable], rows: &[EncodedRow]) {
    let n = rows.len().max(1);
    for (k, table) in embeddings.iter_mut().enumerate() {
        let mut sum = vec![0.0f64; table.dim];
        let mut reserved_used = false;
        for row in rows {
            let idx = row.categories[k] as usize;
            reserved_used |= idx == crate::tabular::UNSEEN_INDEX as usize;
            for (s, &w) in sum.iter_mut().zip(table.row(idx)) {
                *s += f64::from(w);
            }
        }
        if !reserved_used {
            for (j, s) in sum.iter().enumerate() {
                table.weight[j] = (s / n as f64) as f32;
            }
        }
    }
}

fn batch_log_loss(
    embeddings: &[EmbeddingTable],
    texts: &[TextEncoder],
    network: &Perceptron,
    rows: &[EncodedRow],
    y: &[f64],
    weights: [f64; 2],
) -> f64 {
    let mut x = Vec::new();
    let (mut total, mut wsum) = (0.0, 0.0);
    for (row, &yi) in rows.iter().zip(y) {
        network_input(embeddings, texts, row, &mut x);
        let z = network.forward(&x)[0];
        let w = weights[usize::from(yi > 0.5)];
        total += w * logit_loss(z, yi);
        wsum += w;
    }
    total / wsum.max(f64::MIN_POSITIVE)
}

/// Fits an `mlp` on `features` (input columns only) and `target`.
pub fn fit(
    features: &Table,
    target: &BinaryTarget,
    params: &MlpParams,
    ctx: &FitContext<'_>,
) -> Result<MlpModel, ModelError> {
    let n = features.n_rows();
    if target.len() != n {
        return Err(ModelError::InvalidTarget {
            reason: format!("{} target values for {n} rows", target.len()),
        });
    }
    let n_pos = target.y.iter().filter(|&&y| y > 0.5).count();
    if n < 10 || n_pos == 0 || n_pos == n {
        return Err(ModelError::NotEnoughData {
            reason: format!(
                "{n} rows with {n_pos} positive: the mlp needs at least 10 rows and both classes"
            ),
        });
    }
    let opt = &params.optimisation;
    let encoder =
        TabularEncoder::fit_with_text(features, params.min_frequency, params.text.tokens())?;
    params
        .credit
        .check_features(|f| encoder.fields.iter().any(|x| x.name == f))?;
    let rows = encoder.encode_table(features)?;
    let y = &target.y;
    let classes: Vec<u32> = y.iter().map(|&v| u32::from(v > 0.5)).collect();
    let class_weights = if params.balanced {
        [
            n as f64 / (2.0 * (n - n_pos) as f64),
            n as f64 / (2.0 * n_pos as f64),
        ]
    } else {
        [1.0, 1.0]
    };

    let mut rng = train::rng(ctx.seed);
    let (train_rows, valid_rows) = if opt.early_stopping() {
        train::stratified_carve(&classes, 2, opt.validation_fraction, &mut rng)
    } else {
        ((0..n).collect(), Vec::new())
    };
    let valid_x: Vec<EncodedRow> = valid_rows.iter().map(|&i| rows[i].clone()).collect();
    let valid_y: Vec<f64> = valid_rows.iter().map(|&i| y[i]).collect();

    // Seeded initial weights (PyTorch's defaults).
    let device = Device::flex().autodiff();
    let (embeddings, d_tabular) =
        seeded_embeddings(&encoder, params.embedding_dim, &mut rng, &device);
    let n_numeric = encoder.n_numeric();
    let n_categorical = embeddings.len();
    let n_text = encoder.text_features().len();
    let d_in = d_tabular + n_text * params.text.dim;
    let mut width = d_in;
    let mut hidden = Vec::new();
    for &w in &params.hidden {
        hidden.push(train::to_burn_linear(
            &train::linear_init(width, w, &mut rng),
            &device,
        ));
        width = w;
    }
    let output = train::to_burn_linear(&train::linear_init(width, 1, &mut rng), &device);
    // Drawn last, so a fit without text draws what it always drew.
    let texts = params.text.seeded_nets(n_text, &mut rng, &device);
    let mut model = MlpNet {
        embeddings,
        texts,
        hidden,
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
    let started = std::time::Instant::now();
    let mut epochs_run = 0;
    for epoch in 1..=opt.epochs {
        ctx.check_cancelled()?;
        for batch in train::epoch_batches(&train_rows, opt.batch_size, &mut rng) {
            let b = batch.len();
            let numeric = (n_numeric > 0).then(|| {
                let mut data = Vec::with_capacity(b * n_numeric);
                for &i in &batch {
                    data.extend(rows[i].numeric.iter().map(|&x| x as f32));
                }
                Tensor::<2>::from_data(TensorData::new(data, [b, n_numeric]), &device)
            });
            let categories: Vec<Tensor<1, Int>> = (0..n_categorical)
                .map(|k| {
                    let idx: Vec<i64> = batch
                        .iter()
                        .map(|&i| i64::from(rows[i].categories[k]))
                        .collect();
                    Tensor::<1, Int>::from_data(TensorData::new(idx, [b]), &device)
                })
                .collect();
            let texts: Vec<TextBatch> = (0..n_text)
                .map(|k| {
                    let cells: Vec<&[u32]> = batch
                        .iter()
                        .map(|&i| rows[i].tokens[k].as_slice())
                        .collect();
                    TextBatch::new(&cells, &device)
                })
                .collect();
            let masks: Vec<Option<Tensor<2>>> = params
                .hidden
                .iter()
                .map(|&w| {
                    (opt.dropout > 0.0)
                        .then(|| train::dropout_mask(b, w, opt.dropout, &mut rng, &device))
                })
                .collect();
            let yb: Vec<f32> = batch.iter().map(|&i| y[i] as f32).collect();
            let wb: Vec<f32> = batch
                .iter()
                .map(|&i| class_weights[classes[i] as usize] as f32)
                .collect();
            let yt = Tensor::<1>::from_data(TensorData::new(yb, [b]), &device);
            let wt = Tensor::<1>::from_data(TensorData::new(wb, [b]), &device);
            let z: Tensor<1> = model
                .forward(numeric, categories, texts, masks)
                .reshape([b]);
            let losses = z.clone().clamp_min(0.0) - z.clone() * yt + z.abs().neg().exp().log1p();
            let loss = (losses * wt).sum().div_scalar(b as f64);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(opt.learning_rate, model, grads);
        }
        epochs_run = epoch;
        ctx.progress
            .report("training", epoch as f64 / opt.epochs as f64);
        if opt.early_stopping() {
            let (emb, texts, net) = model.snapshot()?;
            let loss = batch_log_loss(&emb, &texts, &net, &valid_x, &valid_y, class_weights);
            if !loss.is_finite() {
                return Err(ModelError::Numerical {
                    reason: format!("validation loss is {loss} at epoch {epoch}"),
                });
            }
            if stopping.record(epoch, loss, (emb, texts, net)) {
                break;
            }
        }
    }
    let seconds_per_epoch = started.elapsed().as_secs_f64() / epochs_run.max(1) as f64;
    let ((mut embeddings, mut texts, network), best_epoch, validation_loss) =
        match stopping.best.take() {
            Some(w) => (w, stopping.best_epoch, Some(stopping.best_loss)),
            None => (model.snapshot()?, epochs_run, None),
        };

    fill_reserved_embeddings(&mut embeddings, &rows);
    for (k, t) in texts.iter_mut().enumerate() {
        t.fill_unseen(train_rows.iter().map(|&i| rows[i].tokens[k].as_slice()));
    }
    let mut baseline = vec![0.0; d_in];
    let mut x = Vec::new();
    for row in &rows {
        network_input(&embeddings, &texts, row, &mut x);
        for (b, v) in baseline.iter_mut().zip(&x) {
            *b += v;
        }
    }
    for b in &mut baseline {
        *b /= n as f64;
    }
    let model = MlpModel {
        params: params.clone(),
        schema: encoder.schema(),
        encoder,
        embeddings,
        texts,
        network,
        baseline,
        positive_label: target.positive_label.clone(),
        negative_label: target.negative_label.clone(),
        log: TrainingLog {
            epochs_run,
            best_epoch,
            validation_loss,
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

impl MlpModel {
    fn check(&self) -> Result<(), String> {
        self.encoder.check()?;
        self.network.check()?;
        let sizes = self.encoder.category_sizes();
        if sizes.len() != self.embeddings.len() {
            return Err(format!(
                "{} embedding tables for {} categorical features",
                self.embeddings.len(),
                sizes.len()
            ));
        }
        for (k, (t, &s)) in self.embeddings.iter().zip(&sizes).enumerate() {
            t.check(&format!("embedding {k}"))?;
            if t.rows != s {
                return Err(format!("embedding {k} has {} rows for {s} indices", t.rows));
            }
        }
        self.params
            .text
            .check_encoders(&self.encoder.named_text_features(), &self.texts)?;
        let d_in = self.encoder.n_numeric()
            + self.embeddings.iter().map(|t| t.dim).sum::<usize>()
            + self.texts.iter().map(TextEncoder::dim).sum::<usize>();
        if self.network.d_in() != d_in || self.network.output.d_out != 1 {
            return Err(format!(
                "the network takes {} inputs and gives {} outputs; the encoder gives {d_in} inputs for 1 output",
                self.network.d_in(),
                self.network.output.d_out
            ));
        }
        if self.baseline.len() != d_in || self.baseline.iter().any(|b| !b.is_finite()) {
            return Err("the baseline does not fit the network".into());
        }
        if self.positive_label.is_empty() || self.positive_label == self.negative_label {
            return Err("positive and negative labels must differ".into());
        }
        Ok(())
    }

    /// The training summary.
    pub fn training_log(&self) -> &TrainingLog {
        &self.log
    }

    fn encode(&self, row: &[Value]) -> Result<Vec<f64>, ModelError> {
        let mut enc = EncodedRow::default();
        self.encoder.encode_row(row, &mut enc)?;
        let mut x = Vec::new();
        network_input(&self.embeddings, &self.texts, &enc, &mut x);
        Ok(x)
    }

    /// The log-odds of one row.
    pub fn decision_function(&self, row: &[Value]) -> Result<f64, ModelError> {
        Ok(self.network.forward(&self.encode(row)?)[0])
    }

    /// Integrated gradients of the logit at `x` (see the module docs).
    fn explanation_of(&self, row: &[Value], x: &[f64]) -> Explanation {
        let x0 = &self.baseline;
        let mut trace = Trace::default();
        let mut grad_sum = vec![0.0; x.len()];
        let mut point = vec![0.0; x.len()];
        for s in 0..IG_STEPS {
            let alpha = (s as f64 + 0.5) / IG_STEPS as f64;
            for ((p, &a), &b) in point.iter_mut().zip(x0).zip(x) {
                *p = a + alpha * (b - a);
            }
            self.network.forward_keep(&point, &mut trace);
            for (g, d) in grad_sum
                .iter_mut()
                .zip(self.network.input_gradient(&trace, 0))
            {
                *g += d;
            }
        }
        let mut owners = self.encoder.numeric_owner();
        for (t, &f) in self.embeddings.iter().zip(&self.encoder.category_owner()) {
            owners.extend(std::iter::repeat_n(f, t.dim));
        }
        for (t, (f, _)) in self.texts.iter().zip(self.encoder.text_features()) {
            owners.extend(std::iter::repeat_n(f, t.dim()));
        }
        let mut per_feature = vec![0.0; self.encoder.fields.len()];
        for (j, &f) in owners.iter().enumerate() {
            per_feature[f] += (x[j] - x0[j]) * grad_sum[j] / IG_STEPS as f64;
        }
        let base_value = self.network.forward(x0)[0];
        let logit = self.network.forward(x)[0];
        let residual = (logit - base_value) - per_feature.iter().sum::<f64>();
        let scale: f64 = per_feature.iter().map(|a| a.abs()).sum();
        if scale > 0.0 {
            for a in &mut per_feature {
                *a += residual * a.abs() / scale;
            }
        }
        let mut contributions: Vec<Contribution> = self
            .encoder
            .fields
            .iter()
            .zip(row)
            .zip(per_feature)
            .map(|((field, value), contribution)| Contribution {
                feature: field.name.clone(),
                value: value.clone(),
                contribution,
            })
            .collect();
        contributions.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
        Explanation {
            space: "log_odds".into(),
            base_value,
            contributions,
        }
    }

    fn rank_reasons(&self, e: &Explanation, max: usize) -> Vec<Reason> {
        rank_adverse(
            e.contributions
                .iter()
                .map(|c| (c.feature.as_str(), c.contribution)),
            &self.params.credit.reason_texts,
            max,
        )
    }

    /// Rebuilds a model from [`FittedModel::payload`] bytes, checking every invariant serving
    /// relies on.
    pub fn from_payload(bytes: &[u8]) -> Result<Self, ModelError> {
        let bad = |reason: String| ModelError::invalid_artifact(format!("mlp payload: {reason}"));
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
        let stored: StoredMlp = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        let params = MlpParams::from_json(&stored.params)?;
        let model = MlpModel {
            params,
            schema: stored.encoder.schema(),
            encoder: stored.encoder,
            embeddings: stored.embeddings,
            texts: stored.texts,
            network: stored.network,
            baseline: stored.baseline,
            positive_label: stored.positive_label,
            negative_label: stored.negative_label,
            log: stored.training,
        };
        model.check().map_err(bad)?;
        Ok(model)
    }
}

/// Version of [`StoredMlp`], independent of the artifact container's format version.
const PAYLOAD_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredMlp {
    payload_version: u32,
    params: serde_json::Value,
    encoder: TabularEncoder,
    embeddings: Vec<EmbeddingTable>,
    /// Absent without text encoders (the payloads written before them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    texts: Vec<TextEncoder>,
    network: Perceptron,
    baseline: Vec<f64>,
    positive_label: String,
    negative_label: String,
    training: TrainingLog,
}

impl FittedModel for MlpModel {
    fn family(&self) -> &str {
        SPEC.name
    }

    fn task(&self) -> Task {
        Task::Binary
    }

    fn input_schema(&self) -> &Schema {
        &self.schema
    }

    fn params(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn summary(&self) -> serde_json::Value {
        let dropped: Vec<_> = self
            .encoder
            .dropped
            .iter()
            .map(|d| serde_json::json!({ "name": d.name, "type": d.ty.as_str(), "reason": d.reason }))
            .collect();
        let layers: Vec<usize> = std::iter::once(self.network.d_in())
            .chain(self.network.hidden.iter().map(|l| l.d_out))
            .chain([1])
            .collect();
        let embeddings: Vec<_> = self
            .encoder
            .category_owner()
            .iter()
            .zip(&self.embeddings)
            .map(|(&f, t)| {
                serde_json::json!({ "feature": self.encoder.fields[f].name, "indices": t.rows, "dim": t.dim })
            })
            .collect();
        let parameters = self
            .network
            .hidden
            .iter()
            .chain([&self.network.output])
            .map(|l| l.weight.len() + l.bias.len())
            .sum::<usize>()
            + self
                .embeddings
                .iter()
                .map(|t| t.weight.len())
                .sum::<usize>()
            + self
                .texts
                .iter()
                .map(TextEncoder::n_parameters)
                .sum::<usize>();
        let text_encoders =
            crate::text::encoders_summary(&self.encoder.named_text_features(), &self.texts);
        serde_json::json!({
            "layers": layers,
            "embeddings": embeddings,
            "text_encoders": text_encoders,
            "parameters": parameters,
            "training": self.log,
            "dropped_columns": dropped,
        })
    }

    fn payload(&self) -> Result<Vec<u8>, ModelError> {
        let stored = StoredMlp {
            payload_version: PAYLOAD_VERSION,
            params: self.params.to_json(),
            encoder: self.encoder.clone(),
            embeddings: self.embeddings.clone(),
            texts: self.texts.clone(),
            network: self.network.clone(),
            baseline: self.baseline.clone(),
            positive_label: self.positive_label.clone(),
            negative_label: self.negative_label.clone(),
            training: self.log.clone(),
        };
        serde_json::to_vec(&stored).map_err(|e| ModelError::Serialization {
            reason: e.to_string(),
        })
    }

    fn fit_metrics(&self) -> Metrics {
        let mut m = Metrics::new();
        m.insert("epochs_run".into(), self.log.epochs_run as f64);
        m.insert("best_epoch".into(), self.log.best_epoch as f64);
        if let Some(l) = self.log.validation_loss {
            m.insert("validation_log_loss".into(), l);
        }
        m
    }

    fn as_binary(&self) -> Option<&dyn BinaryClassifier> {
        Some(self)
    }

    fn into_binary(self: Box<Self>) -> Option<Box<dyn BinaryClassifier>> {
        Some(self)
    }
}

impl BinaryClassifier for MlpModel {
    fn threshold(&self) -> f64 {
        self.params.threshold
    }

    fn labels(&self) -> (&str, &str) {
        (&self.positive_label, &self.negative_label)
    }

    fn predict_proba_one(&self, row: &[Value]) -> Result<f64, ModelError> {
        self.decision_function(row).map(sigmoid)
    }

    /// The row path for every row (the same bits as [`BinaryClassifier::predict_proba_one`]).
    fn predict_proba_table(&self, table: &Table) -> Result<Vec<f64>, ModelError> {
        let rows = self.encoder.encode_table(table)?;
        let mut x = Vec::new();
        Ok(rows
            .iter()
            .map(|r| {
                network_input(&self.embeddings, &self.texts, r, &mut x);
                sigmoid(self.network.forward(&x)[0])
            })
            .collect())
    }

    fn explain(&self, row: &[Value]) -> Result<Explanation, ModelError> {
        let x = self.encode(row)?;
        Ok(self.explanation_of(row, &x))
    }

    fn score_points(&self, row: &[Value]) -> Result<Option<f64>, ModelError> {
        let pd = self.predict_proba_one(row)?;
        Ok(Some(self.params.credit.scaling.score_from_pd(pd)))
    }

    fn policy(&self) -> aurum_contract::policy::DecisionPolicy {
        self.params.credit.policy.clone()
    }

    fn reasons(&self, row: &[Value], max: usize) -> Result<Vec<Reason>, ModelError> {
        Ok(self.rank_reasons(&self.explain(row)?, max))
    }

    /// One encode and one forward pass; one attribution shared by reasons and explanation,
    /// only for refer, decline or `explain`.
    fn assess(&self, row: &[Value], explain: bool) -> Result<Assessment, ModelError> {
        let x = self.encode(row)?;
        let pd = sigmoid(self.network.forward(&x)[0]);
        let score = Some(self.params.credit.scaling.score_from_pd(pd));
        let policy = self.policy();
        let decision = policy.decide(pd, score);
        let adverse = decision != Decision::Approve;
        let explanation = (explain || adverse).then(|| self.explanation_of(row, &x));
        let reasons = match &explanation {
            Some(e) if adverse => self.rank_reasons(e, policy.max_reasons),
            _ => Vec::new(),
        };
        Ok(Assessment {
            decision: CreditDecision {
                pd,
                score,
                decision,
                reasons,
            },
            explanation: explanation.filter(|_| explain),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurum_core::{CancelToken, NoProgress, Progress};

    use crate::text::tests::{fit_mlp, loan_text};

    pub(crate) fn german() -> (Table, BinaryTarget) {
        let bytes = include_bytes!("../../../data/demo/german_credit.csv");
        let table = aurum_data::read_csv(bytes, &Default::default()).unwrap();
        let target = aurum_data::binary_target(&table, "creditability", None).unwrap();
        (table.drop_column("creditability").unwrap(), target)
    }

    fn params(pairs: &[(&str, &str)]) -> MlpParams {
        let p: Params = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        MlpParams::from_params(&p).unwrap()
    }

    fn fit_with(seed: u64, pairs: &[(&str, &str)]) -> MlpModel {
        let (table, target) = german();
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed,
        };
        fit(&table, &target, &params(pairs), &ctx).unwrap()
    }

    /// ROC-AUC by the fraud metrics' rank statistic (ties count one half).
    fn auc(p: &[f64], y: &[f64]) -> f64 {
        aurum_fraud::metrics::roc_auc(p, &y.iter().map(|&v| v > 0.5).collect::<Vec<_>>())
            .expect("both classes in the held-out rows")
    }

    #[test]
    fn params_are_validated_and_canonical() {
        let fam = MlpFamily;
        let json = fam.validate_params(&Params::new()).unwrap();
        assert_eq!(json["hidden"], "64,32");
        assert_eq!(json["patience"], 10);
        let again = MlpParams::from_json(&json).unwrap();
        assert_eq!(again, MlpParams::from_params(&Params::new()).unwrap());
        let bad = |k: &str, v: &str| {
            let p: Params = [(k.to_string(), v.to_string())].into();
            fam.validate_params(&p).unwrap_err().to_string()
        };
        assert!(
            bad("hiden", "3").contains("allowed: base_odds"),
            "{}",
            bad("hiden", "3")
        );
        assert!(bad("hidden", "64,,3").contains("`hidden`"));
        assert!(bad("hidden", "0").contains("`hidden`"));
        assert!(bad("dropout", "1").contains("`dropout`"));
        assert!(bad("class_weight", "heavy").contains("none, balanced"));
        let p: Params = [
            ("patience".to_string(), "5".to_string()),
            ("validation_fraction".to_string(), "0".to_string()),
        ]
        .into();
        let e = fam.validate_params(&p).unwrap_err().to_string();
        assert!(e.contains("`validation_fraction`"), "{e}");
    }

    #[test]
    fn same_seed_same_bits_and_the_payload_reloads_exactly() {
        let quick = [
            ("epochs", "6"),
            ("patience", "0"),
            ("validation_fraction", "0"),
        ];
        let a = fit_with(11, &quick);
        let b = fit_with(11, &quick);
        assert!(
            a.payload().unwrap() == b.payload().unwrap(),
            "same seed, different payloads"
        );
        let c = fit_with(12, &quick);
        assert!(a.payload().unwrap() != c.payload().unwrap());

        let (table, target) = german();
        let loaded = MlpFamily.load_payload(&a.payload().unwrap()).unwrap();
        let loaded = loaded.as_binary().unwrap();
        let pa = a.predict_proba_table(&table).unwrap();
        let pb = loaded.predict_proba_table(&table).unwrap();
        assert_eq!(
            pa.iter().map(|p| p.to_bits()).collect::<Vec<_>>(),
            pb.iter().map(|p| p.to_bits()).collect::<Vec<_>>()
        );
        // Row path and batch path agree bit for bit.
        for i in [0, 7, 500] {
            assert_eq!(
                a.predict_proba_one(&table.row(i)).unwrap().to_bits(),
                pa[i].to_bits()
            );
        }
        assert_eq!(loaded.explain(&table.row(3)), a.explain(&table.row(3)));
        assert!(
            auc(&pa, &target.y) > 0.75,
            "training AUC {}",
            auc(&pa, &target.y)
        );
    }

    /// burn's CPU kernels run on the rayon pool of the caller: the fit must not depend on its
    /// size.
    #[test]
    fn the_fit_does_not_depend_on_the_thread_count() {
        let quick = [
            ("epochs", "3"),
            ("patience", "0"),
            ("validation_fraction", "0"),
            ("hidden", "512,64"),
            ("batch_size", "512"),
        ];
        let on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| fit_with(9, &quick).payload().unwrap())
        };
        assert!(
            on(1) == on(3),
            "one and three threads trained different models"
        );
    }

    #[test]
    fn early_stopping_generalises_on_a_held_out_split() {
        let (table, target) = german();
        let split = aurum_data::stratified_split(&target.y, 0.3, 42).unwrap();
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed: 42,
        };
        let m = fit(
            &table.take(&split.train),
            &target.take(&split.train),
            &params(&[]),
            &ctx,
        )
        .unwrap();
        let log = m.training_log();
        assert!(
            log.epochs_run < 100 && log.best_epoch + 10 == log.epochs_run,
            "{log:?}"
        );
        assert_eq!(log.validation_rows, 140);
        let test = table.take(&split.test);
        let p = m.predict_proba_table(&test).unwrap();
        let a = auc(&p, &target.take(&split.test).y);
        assert!(a > 0.74, "held-out AUC {a}");
    }

    #[test]
    fn explanations_add_up_and_unseen_categories_score() {
        let m = fit_with(
            3,
            &[
                ("epochs", "5"),
                ("patience", "0"),
                ("validation_fraction", "0"),
            ],
        );
        let (table, _) = german();
        let mut row = table.row(1);
        for r in [row.clone(), {
            let purpose = m.input_schema().index_of("purpose").unwrap();
            row[purpose] = Value::Str("never seen".into());
            row.clone()
        }] {
            let e = m.explain(&r).unwrap();
            let z = m.decision_function(&r).unwrap();
            let total = e.base_value + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
            assert!((total - z).abs() < 1e-9, "{total} vs {z}");
            assert_eq!(e.contributions.len(), 20);
        }
        // Integrated gradients before the residual is spread: close to complete already.
        let a = m.assess(&table.row(1), true).unwrap();
        assert_eq!(a.explanation.unwrap(), m.explain(&table.row(1)).unwrap());
        // A wrong type names the feature.
        let mut bad = table.row(1);
        bad[1] = Value::Str("six".into());
        let e = m.predict_proba_one(&bad).unwrap_err().to_string();
        assert!(e.contains("duration_in_month"), "{e}");
    }

    #[test]
    fn a_declined_applicant_gets_adverse_reasons() {
        let m = fit_with(
            5,
            &[
                ("epochs", "8"),
                ("patience", "0"),
                ("validation_fraction", "0"),
                ("policy_pd_cutoff", "0.3"),
            ],
        );
        let (table, _) = german();
        let declined = (0..100)
            .map(|i| m.assess(&table.row(i), false).unwrap())
            .find(|a| a.decision.decision == Decision::Decline)
            .expect("a decline among 100 applicants");
        assert!(!declined.decision.reasons.is_empty());
        assert!(declined.decision.reasons.len() <= 4);
    }

    #[test]
    fn fit_honours_cancel_and_reports_progress() {
        struct Recorder(std::sync::Mutex<Vec<f64>>);
        impl Progress for Recorder {
            fn report(&self, _stage: &str, fraction: f64) {
                self.0.lock().unwrap().push(fraction);
            }
        }
        let (table, target) = german();
        let cancel = CancelToken::new();
        let rec = Recorder(Default::default());
        let ctx = FitContext {
            progress: &rec,
            cancel: &cancel,
            seed: 1,
        };
        fit(
            &table,
            &target,
            &params(&[
                ("epochs", "3"),
                ("patience", "0"),
                ("validation_fraction", "0"),
            ]),
            &ctx,
        )
        .unwrap();
        assert_eq!(*rec.0.lock().unwrap(), [1.0 / 3.0, 2.0 / 3.0, 1.0]);
        cancel.cancel();
        let e = fit(&table, &target, &params(&[]), &ctx).unwrap_err();
        assert_eq!(e, ModelError::Cancelled);
    }

    #[test]
    fn damaged_payloads_are_refused_without_panicking() {
        let m = fit_with(
            2,
            &[
                ("epochs", "1"),
                ("patience", "0"),
                ("validation_fraction", "0"),
            ],
        );
        let bytes = m.payload().unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["payload_version"] = 99.into();
        let e = MlpFamily
            .load_payload(&serde_json::to_vec(&v).unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("payload version 99"), "{e}");
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["network"]["output"]["bias"] = serde_json::json!([0.0, 1.0]);
        assert!(
            MlpFamily
                .load_payload(&serde_json::to_vec(&v).unwrap())
                .is_err()
        );
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(MlpFamily.load_payload(&bytes[..cut]).is_err());
        }
    }

    // -----------------------------------------------------------------------------------------
    // The transformer text encoder (`text_encoder=transformer`).

    const QUICK_TEXT: &[(&str, &str)] = &[
        ("text_encoder", "transformer"),
        ("text_length", "6"),
        ("text_vocab", "64"),
        ("text_dim", "8"),
        ("epochs", "3"),
        ("patience", "0"),
        ("validation_fraction", "0"),
    ];

    #[test]
    fn text_parameters_are_validated_and_decide_who_reads_text() {
        let fam = MlpFamily;
        let p = |pairs: &[(&str, &str)]| -> Params {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let json = fam.validate_params(&Params::new()).unwrap();
        assert_eq!(json["text_encoder"], "tfidf");
        assert_eq!(json["text_length"], 32);
        assert_eq!(json["text_vocab"], 4096);
        assert_eq!(json["text_dim"], 16);
        assert!(!fam.reads_text(&Params::new()));
        assert!(fam.reads_text(&p(&[("text_encoder", "transformer")])));
        assert!(!fam.reads_text(&p(&[("text_encoder", "tfidf")])));
        for (k, v) in [
            ("text_encoder", "bert"),
            ("text_length", "0"),
            ("text_vocab", "8"),
            ("text_dim", "7"),
            ("text_dim", "256"),
        ] {
            let e = fam.validate_params(&p(&[(k, v)])).unwrap_err();
            assert_eq!(e.code(), "invalid_param");
            assert!(e.to_string().contains(&format!("`{k}`")), "{e}");
        }
        let e = fam
            .validate_params(&p(&[("text_encoder", "bert")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("tfidf, transformer"), "{e}");
        assert!(!fam.reads_text(&p(&[("text_encoder", "bert")])));
    }

    /// The trained weights back in a burn network (for comparing the two forward passes).
    fn burn_net(m: &MlpModel, device: &Device) -> MlpNet {
        MlpNet {
            embeddings: m
                .embeddings
                .iter()
                .map(|e| Embedding {
                    weight: Param::from_data(
                        TensorData::new(e.weight.clone(), [e.rows, e.dim]),
                        device,
                    ),
                })
                .collect(),
            texts: m
                .texts
                .iter()
                .map(|t| TextNet::from_weights(t, device))
                .collect(),
            hidden: m
                .network
                .hidden
                .iter()
                .map(|l| train::to_burn_linear(l, device))
                .collect(),
            output: train::to_burn_linear(&m.network.output, device),
        }
    }

    /// The served `f64` pass (encoder, embeddings, perceptron) computes the burn graph's logit,
    /// for cells that are missing, empty, unseen, short and longer than `text_length`.
    #[test]
    fn the_served_text_mlp_is_the_trained_network() {
        let (table, target) = loan_text(400, 3);
        let m = fit_mlp(&table, &target, QUICK_TEXT, 4);
        assert_eq!(m.texts.len(), 1);
        let purpose = m.input_schema().index_of("purpose").unwrap();
        let mut rows: Vec<Vec<Value>> = (0..6).map(|i| table.row(i)).collect();
        for text in [
            None,
            Some(""),
            Some("zygote quasar flummox"),
            Some("car"),
            Some("I need money for a small business, new roof, medical bills and a wedding"),
        ] {
            let mut r = table.row(0);
            r[purpose] = text.map_or(Value::Null, |t| Value::Str(t.into()));
            rows.push(r);
        }
        let encoded: Vec<EncodedRow> = rows
            .iter()
            .map(|r| {
                let mut e = EncodedRow::default();
                m.encoder.encode_row(r, &mut e).unwrap();
                e
            })
            .collect();
        assert!(encoded.iter().any(|e| e.tokens[0].is_empty()));
        assert!(encoded.iter().any(|e| e.tokens[0].len() == 6));
        let device = Device::flex();
        let net = burn_net(&m, &device);
        let b = rows.len();
        let n_numeric = m.encoder.n_numeric();
        let numeric: Vec<f32> = encoded
            .iter()
            .flat_map(|e| e.numeric.iter().map(|&x| x as f32))
            .collect();
        let cells: Vec<&[u32]> = encoded.iter().map(|e| e.tokens[0].as_slice()).collect();
        let logits = net.forward(
            Some(Tensor::<2>::from_data(
                TensorData::new(numeric, [b, n_numeric]),
                &device,
            )),
            Vec::new(),
            vec![TextBatch::new(&cells, &device)],
            vec![None; m.network.hidden.len()],
        );
        let logits = train::read_f32(logits).unwrap();
        for (i, r) in rows.iter().enumerate() {
            let served = m.decision_function(r).unwrap();
            let trained = f64::from(logits[i]);
            assert!(
                (served - trained).abs() < 1e-5,
                "row {i}: served {served} vs burn {trained}"
            );
        }
    }

    #[test]
    fn a_text_mlp_reloads_bit_identically_and_explains_by_column() {
        let (table, target) = loan_text(400, 3);
        let a = fit_mlp(&table, &target, QUICK_TEXT, 11);
        let b = fit_mlp(&table, &target, QUICK_TEXT, 11);
        let bytes = a.payload().unwrap();
        assert!(
            bytes == b.payload().unwrap(),
            "same seed, different payloads"
        );
        let c = fit_mlp(&table, &target, QUICK_TEXT, 12);
        assert!(bytes != c.payload().unwrap());
        let stored: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(stored["texts"].as_array().map(Vec::len), Some(1));
        assert_eq!(stored["params"]["text_encoder"], "transformer");
        assert_eq!(
            a.input_schema().field("purpose").map(|f| f.ty),
            Some(aurum_core::ColumnType::Text)
        );
        assert_eq!(a.summary()["text_encoders"][0]["feature"], "purpose");

        let loaded = MlpFamily.load_payload(&bytes).unwrap();
        let loaded = loaded.as_binary().unwrap();
        let pa = a.predict_proba_table(&table).unwrap();
        let pb = loaded.predict_proba_table(&table).unwrap();
        assert_eq!(
            pa.iter().map(|p| p.to_bits()).collect::<Vec<_>>(),
            pb.iter().map(|p| p.to_bits()).collect::<Vec<_>>()
        );
        for i in [0, 9, 123] {
            let row = table.row(i);
            assert_eq!(
                a.predict_proba_one(&row).unwrap().to_bits(),
                pa[i].to_bits()
            );
            let e = a.explain(&row).unwrap();
            assert_eq!(loaded.explain(&row).unwrap(), e);
            let names: Vec<&str> = e.contributions.iter().map(|c| c.feature.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, ["amount", "income", "purpose"]);
            let total = e.base_value + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
            let z = a.decision_function(&row).unwrap();
            assert!((total - z).abs() < 1e-9, "{total} vs {z}");
            let purpose = e
                .contributions
                .iter()
                .find(|c| c.feature == "purpose")
                .unwrap();
            assert_eq!(purpose.value, row[0]);
        }
        // The text moves the score, and its contribution is the column's.
        let mut business = table.row(0);
        business[0] = Value::Str("starting a small business".into());
        let mut home = business.clone();
        home[0] = Value::Str("kitchen remodel for my home".into());
        assert_ne!(
            a.predict_proba_one(&business).unwrap(),
            a.predict_proba_one(&home).unwrap()
        );
        let reasons = a.reasons(&business, 3).unwrap();
        assert!(
            reasons
                .iter()
                .all(|r| ["amount", "income", "purpose"].contains(&r.feature.as_str()))
        );
        // A number where text belongs names the column.
        let mut bad = table.row(0);
        bad[0] = Value::Float(3.0);
        let e = a.predict_proba_one(&bad).unwrap_err().to_string();
        assert!(e.contains("`purpose`") && e.contains("free text"), "{e}");
        // A damaged encoder is refused at load.
        let mut v = stored.clone();
        v["texts"][0]["positions"] = serde_json::json!([0.0]);
        assert!(
            MlpFamily
                .load_payload(&serde_json::to_vec(&v).unwrap())
                .is_err()
        );
        let mut v = stored;
        v["texts"] = serde_json::json!([]);
        assert!(
            MlpFamily
                .load_payload(&serde_json::to_vec(&v).unwrap())
                .is_err()
        );
    }

    #[test]
    fn without_the_transformer_text_is_not_read() {
        let (table, target) = loan_text(200, 3);
        let m = fit_mlp(
            &table,
            &target,
            &[
                ("epochs", "1"),
                ("patience", "0"),
                ("validation_fraction", "0"),
            ],
            1,
        );
        assert!(m.input_schema().field("purpose").is_none());
        assert!(m.texts.is_empty());
        let stored: serde_json::Value = serde_json::from_slice(&m.payload().unwrap()).unwrap();
        assert!(stored.get("texts").is_none());
        assert_eq!(
            m.dropped_columns(),
            [("purpose".to_string(), "unsupported_type".to_string())]
        );
    }
}
