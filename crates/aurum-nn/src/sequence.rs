//! The `sequence` family: classifies an event from the window of its entity's recent events,
//! with a causal 1-D convolutional network or a small transformer encoder.
//!
//! **Data contract.** The training table is sorted by entity and time (a customer's or a
//! card's events, oldest first; rows of different entities may interleave, only the relative
//! order of one entity's rows matters). The `entity` parameter names the column that identifies
//! the entity (any type; values compare by their text, and a missing entity has no history).
//! The instance for row `i` is the window of the last `length` events of row `i`'s entity up to
//! and including row `i`, in row order, left-padded and masked when the entity has fewer; its
//! label is row `i`'s class. Every other input column is a per-event feature, encoded by the
//! MLP's [`TabularEncoder`] (standardised numerics with median imputation and missing
//! indicators, dates as ordinals, one learned embedding per categorical feature with a reserved
//! index for unseen categories), fitted on the training rows and stored in the payload.
//!
//! **Free text.** By default (`text_encoder=tfidf`) the family does not read text: the job
//! runner's hashed TF-IDF step turns each text column into numeric columns in front of it, and
//! they become per-event numerics. With `text_encoder=transformer` the family reads every text
//! column itself ([`ModelFamily::reads_text`]): each event's cell goes through its column's
//! small transformer encoder ([`crate::text`], the `mlp`'s: same tokens, parameters and unseen
//! token rule), trained end to end with the network, and the encoded vector (`text_dim` wide)
//! joins that event's vector after the categorical embeddings. Padded window positions have no
//! cell, and a missing or token-less cell encodes as zeros.
//!
//! **Splits keep the order.** The job runner's splits (`random_split`, `time_ordered_split`)
//! return each side's row indices sorted and `Table::take` keeps the order of the indices, so
//! both sides keep the dataset's relative order and every window is built from rows in their
//! original order. With a random split an entity's training windows skip its held-out rows; a
//! time-ordered split (a `date_column`) trains on the earlier events, which is what a sequence
//! model is for. The runner scores the held-out rows as one request (the serving contract
//! below), so their windows hold held-out rows only. The validation carve for early stopping
//! is stratified over instances (the windows), never over events: a validation instance may see
//! training events as history.
//!
//! **Cost.** The defaults (windows of 16, one encoder block of width 32 or two convolutions of
//! 32 channels, batches of 128, at most 20 epochs with patience 5) train on 25 000 events in
//! about 20 s (`cnn`) to 40 s (`transformer`) on two shared cores.
//!
//! **Serving contract.** [`FittedModel::predict_rows`] treats the rows of one request as events
//! in time order: each row is scored with the window of the preceding rows of the same entity
//! *in that request*, plus itself. A caller sends an entity's recent history (up to `length`
//! events, oldest first) and reads the answer for the last row; a lone row is scored as an
//! entity's first event. Unknown categories and missing values never fail (the MLP's rules);
//! a value of the wrong type is an error naming the feature and the row.
//!
//! **Architectures.**
//! * `cnn`: `layers` causal convolutions over time (`kernel` events, `channels` filters; a
//!   position sees itself and the `kernel − 1` events before it, never later ones), each
//!   followed by ReLU, with padded positions held at zero; then the last event's channels, the
//!   mean and the maximum over the valid positions, concatenated.
//! * `transformer`: an input projection to `d_model` plus a learned embedding of the position
//!   (counted from the window's end, so the current event is always the same position), then
//!   `layers` pre-norm encoder blocks (multi-head self-attention with `heads` heads over the
//!   valid positions only, then a ReLU feed-forward of width `2·d_model`, each with a residual
//!   connection), a final layer norm, and the current (last) event's vector.
//!
//! Both end in the `dense` ReLU layers with inverted dropout (also applied to the pooled
//! vector) and one logit per class; softmax gives the probabilities (a binary target is two
//! classes). AdamW minimises the (optionally class-balanced) cross-entropy with early stopping
//! on the validation carve, as the other families do.
//!
//! The encoder blocks are [`crate::attention`]'s, shared with the `mlp`'s text encoder: written
//! in burn tensor ops for training and as an `f64` pass for serving, rather than taken from
//! burn's `TransformerEncoder` (see that module for why).

use std::collections::{HashMap, VecDeque};

use aurum_contract::{
    FamilySpec, FitContext, FittedModel, ModelError, ModelFamily, Output, OutputSpec, ParamReader,
    Params, Task, TrainingData,
};
use aurum_core::{ClassTarget, Field, Metrics, Schema, Table, Value};
use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu};
use serde::{Deserialize, Serialize};

use crate::attention::{Block, MASKED_SCORE, Norm};
pub use crate::attention::{EncoderBlock, NormLayer};
use crate::cnn::argmax;
use crate::dense::{DenseLayer, EmbeddingTable, Perceptron, softmax};
use crate::mlp::{fill_reserved_embeddings, network_input, parse_widths, seeded_embeddings};
use crate::tabular::{EncodedRow, TabularEncoder};
use crate::text::{TextBatch, TextEncoder, TextNet, TextParams};
use crate::train::{self, EarlyStopping, Optimisation};

/// Every parameter name, sorted.
pub const PARAM_NAMES: &[&str] = &[
    "architecture",
    "batch_size",
    "channels",
    "class_weight",
    "d_model",
    "dense",
    "dropout",
    "embedding_dim",
    "entity",
    "epochs",
    "heads",
    "kernel",
    "layers",
    "learning_rate",
    "length",
    "min_frequency",
    "patience",
    "seed",
    "text_dim",
    "text_encoder",
    "text_length",
    "text_vocab",
    "validation_fraction",
    "weight_decay",
];

/// What the `sequence` family is.
pub const SPEC: FamilySpec = FamilySpec {
    name: "sequence",
    aliases: &["sequence_classifier"],
    task: Task::SequenceClassification,
    summary: "Classifies an event from its entity's recent events: causal 1-D CNN or transformer encoder (burn), AdamW, early stopping.",
    params: PARAM_NAMES,
    trainable: true,
    importable: false,
};

/// The `sequence` family.
#[derive(Clone, Copy, Debug, Default)]
pub struct SequenceFamily;

/// The network that reads a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    Cnn,
    Transformer,
}

impl Architecture {
    fn name(self) -> &'static str {
        match self {
            Architecture::Cnn => "cnn",
            Architecture::Transformer => "transformer",
        }
    }
}

/// Typed, validated parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceParams {
    /// The column naming the entity whose events form the windows.
    pub entity: String,
    /// Events per window (the current one included).
    pub length: usize,
    pub architecture: Architecture,
    /// `cnn`: filters of every convolution.
    pub channels: usize,
    /// `cnn`: events each convolution sees (the current one and `kernel − 1` before it).
    pub kernel: usize,
    /// `transformer`: width of the event vectors.
    pub d_model: usize,
    /// `transformer`: attention heads (dividing `d_model`).
    pub heads: usize,
    /// Convolutions (default 2) or encoder blocks (default 1).
    pub layers: usize,
    /// Widths of the dense ReLU layers of the head.
    pub dense: Vec<usize>,
    /// Embedding width of every categorical feature; 0 sizes each by its level count.
    pub embedding_dim: usize,
    pub min_frequency: usize,
    /// Weigh each class to an equal share of the loss (`balanced`) or every row alike.
    pub balanced: bool,
    /// Overrides the job's seed when given.
    pub seed: Option<u64>,
    pub optimisation: Optimisation,
    /// How free-text columns of an event are read (`text_encoder`, `text_length`, `text_vocab`,
    /// `text_dim`): the job runner's TF-IDF step, or a transformer encoder per text column.
    pub text: TextParams,
}

impl SequenceParams {
    pub fn defaults() -> Optimisation {
        Optimisation {
            epochs: 20,
            batch_size: 128,
            learning_rate: 2e-3,
            weight_decay: 1e-4,
            dropout: 0.1,
            patience: 5,
            validation_fraction: 0.15,
        }
    }

    pub fn from_params(params: &Params) -> Result<Self, ModelError> {
        let r = ParamReader::new("sequence", params, PARAM_NAMES)?;
        let entity = match r.str("entity") {
            Some(e) if !e.is_empty() => e.to_string(),
            other => {
                return Err(ModelError::invalid_param(
                    "entity",
                    other.unwrap_or(""),
                    "the name of the column identifying the entity (required)",
                ));
            }
        };
        let length = r.usize("length", 1..=512)?.unwrap_or(16);
        let architecture = r
            .choice(
                "architecture",
                &[
                    ("cnn", Architecture::Cnn),
                    ("transformer", Architecture::Transformer),
                ],
            )?
            .unwrap_or(Architecture::Transformer);
        let channels = r.usize("channels", 1..=1024)?.unwrap_or(32);
        let kernel = r.usize("kernel", 1..=64)?.unwrap_or(3);
        let d_model = r.usize("d_model", 1..=1024)?.unwrap_or(32);
        let heads = r.usize("heads", 1..=64)?.unwrap_or(4);
        if !d_model.is_multiple_of(heads) {
            return Err(ModelError::invalid_param(
                "heads",
                heads,
                format!("a divisor of d_model ({d_model})"),
            ));
        }
        // One encoder block already relates every pair of events in the window; two causal
        // convolutions of three see five events.
        let layers = r.usize("layers", 1..=8)?.unwrap_or(match architecture {
            Architecture::Cnn => 2,
            Architecture::Transformer => 1,
        });
        let dense = match r.str("dense") {
            None => vec![32],
            Some(s) => parse_widths(s).map_err(|_| {
                ModelError::invalid_param(
                    "dense",
                    s,
                    "one to eight comma-separated layer widths in 1..=4096, such as 32",
                )
            })?,
        };
        let embedding_dim = r.usize("embedding_dim", 0..=256)?.unwrap_or(0);
        let min_frequency = r.usize("min_frequency", 1..=usize::MAX)?.unwrap_or(1);
        let balanced = r
            .choice("class_weight", &[("none", false), ("balanced", true)])?
            .unwrap_or(false);
        let seed = r
            .str("seed")
            .map(|s| {
                s.parse::<u64>()
                    .map_err(|_| ModelError::invalid_param("seed", s, "an integer in 0..=2^64-1"))
            })
            .transpose()?;
        let optimisation = Optimisation::read(&r, Self::defaults())?;
        let text = TextParams::read(&r)?;
        Ok(Self {
            entity,
            length,
            architecture,
            channels,
            kernel,
            d_model,
            heads,
            layers,
            dense,
            embedding_dim,
            min_frequency,
            balanced,
            seed,
            optimisation,
            text,
        })
    }

    /// The canonical form recorded in manifests: every key, defaults filled in.
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        self.optimisation.write_json(&mut out);
        let widths: Vec<String> = self.dense.iter().map(ToString::to_string).collect();
        out.insert("entity".into(), self.entity.clone().into());
        out.insert("length".into(), self.length.into());
        out.insert("architecture".into(), self.architecture.name().into());
        out.insert("channels".into(), self.channels.into());
        out.insert("kernel".into(), self.kernel.into());
        out.insert("d_model".into(), self.d_model.into());
        out.insert("heads".into(), self.heads.into());
        out.insert("layers".into(), self.layers.into());
        out.insert("dense".into(), widths.join(",").into());
        out.insert("embedding_dim".into(), self.embedding_dim.into());
        out.insert("min_frequency".into(), self.min_frequency.into());
        out.insert(
            "class_weight".into(),
            if self.balanced { "balanced" } else { "none" }.into(),
        );
        if let Some(s) = self.seed {
            // As text: JSON numbers above 2^53 do not survive every reader.
            out.insert("seed".into(), s.to_string().into());
        }
        self.text.write_json(&mut out);
        serde_json::Value::Object(out)
    }

    fn from_json(v: &serde_json::Value) -> Result<Self, ModelError> {
        let params = aurum_contract::policy::params_from_json("sequence", v)?;
        Self::from_params(&params)
            .map_err(|e| ModelError::invalid_artifact(format!("sequence params: {e}")))
    }

    /// Width of the vector the window is pooled into (the head's input).
    pub(crate) fn pooled_width(&self) -> usize {
        match self.architecture {
            Architecture::Cnn => 3 * self.channels,
            Architecture::Transformer => self.d_model,
        }
    }
}

impl ModelFamily for SequenceFamily {
    fn spec(&self) -> &FamilySpec {
        &SPEC
    }

    fn validate_params(&self, params: &Params) -> Result<serde_json::Value, ModelError> {
        SequenceParams::from_params(params).map(|p| p.to_json())
    }

    fn fit(
        &self,
        data: &TrainingData<'_>,
        params: &Params,
        ctx: &FitContext<'_>,
    ) -> Result<Box<dyn FittedModel>, ModelError> {
        let target = data.classes()?;
        let params = SequenceParams::from_params(params)?;
        Ok(Box::new(fit(data.features, target, &params, ctx)?))
    }

    fn load_payload(&self, payload: &[u8]) -> Result<Box<dyn FittedModel>, ModelError> {
        Ok(Box::new(SequenceModel::from_payload(payload)?))
    }

    /// With `text_encoder=transformer` the family encodes each event's text columns itself.
    fn reads_text(&self, params: &Params) -> bool {
        SequenceParams::from_params(params).is_ok_and(|p| p.text.reads_text())
    }
}

// ---------------------------------------------------------------------------------------------
// Stored weights and the served forward pass.

/// The part of the network that turns a window of event vectors into one vector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// Causal convolutions: layer `l` maps the concatenated vectors of positions
    /// `t − kernel + 1 ..= t` (zeros before the window) to position `t`'s channels.
    Cnn {
        kernel: usize,
        convs: Vec<DenseLayer>,
    },
    /// Input projection, position embeddings `[length, d_model]` (row `length − 1` is the
    /// current event), encoder blocks and the final norm.
    Transformer {
        heads: usize,
        input: DenseLayer,
        positions: Vec<f32>,
        blocks: Vec<EncoderBlock>,
        norm: NormLayer,
    },
}

impl Body {
    /// Pools a window of event vectors (oldest first, at least one, at most `length`).
    fn forward(&self, window: &[&[f64]], length: usize) -> Vec<f64> {
        match self {
            Body::Cnn { kernel, convs } => {
                let mut h: Vec<Vec<f64>> = window.iter().map(|x| x.to_vec()).collect();
                let mut stacked = Vec::new();
                for conv in convs {
                    let c_in = conv.d_in / kernel;
                    let mut next = Vec::with_capacity(h.len());
                    for t in 0..h.len() {
                        stacked.clear();
                        for j in 0..*kernel {
                            // Position t − (kernel − 1) + j; before the window it is zero.
                            match (t + j).checked_sub(kernel - 1) {
                                Some(s) => stacked.extend_from_slice(&h[s]),
                                None => stacked.extend(std::iter::repeat_n(0.0, c_in)),
                            }
                        }
                        let mut out = Vec::new();
                        conv.forward(&stacked, &mut out);
                        for z in &mut out {
                            *z = z.max(0.0);
                        }
                        next.push(out);
                    }
                    h = next;
                }
                let c = h[0].len();
                let n = h.len() as f64;
                let mut pooled = h[h.len() - 1].clone();
                let mut sum = vec![0.0; c];
                let mut max = vec![0.0f64; c];
                for x in &h {
                    for j in 0..c {
                        sum[j] += x[j];
                        max[j] = max[j].max(x[j]);
                    }
                }
                pooled.extend(sum.iter().map(|s| s / n));
                pooled.extend(max);
                pooled
            }
            Body::Transformer {
                heads,
                input,
                positions,
                blocks,
                norm,
            } => {
                let d = input.d_out;
                let offset = length - window.len();
                let mut h: Vec<Vec<f64>> = Vec::with_capacity(window.len());
                for (t, x) in window.iter().enumerate() {
                    let mut out = Vec::new();
                    input.forward(x, &mut out);
                    let p = &positions[(offset + t) * d..(offset + t + 1) * d];
                    for (o, &w) in out.iter_mut().zip(p) {
                        *o += f64::from(w);
                    }
                    h.push(out);
                }
                for block in blocks {
                    block.forward(&mut h, *heads);
                }
                norm.forward(&h[h.len() - 1])
            }
        }
    }

    fn n_parameters(&self) -> usize {
        let dense = |l: &DenseLayer| l.weight.len() + l.bias.len();
        match self {
            Body::Cnn { convs, .. } => convs.iter().map(dense).sum(),
            Body::Transformer {
                input,
                positions,
                blocks,
                norm,
                ..
            } => {
                dense(input)
                    + positions.len()
                    + norm.n_parameters()
                    + blocks.iter().map(EncoderBlock::n_parameters).sum::<usize>()
            }
        }
    }

    pub(crate) fn check(&self, p: &SequenceParams, d_event: usize) -> Result<(), String> {
        match (self, p.architecture) {
            (Body::Cnn { kernel, convs }, Architecture::Cnn) => {
                if *kernel != p.kernel || convs.len() != p.layers {
                    return Err("the convolutions do not match the parameters".into());
                }
                let mut c_in = d_event;
                for (i, conv) in convs.iter().enumerate() {
                    conv.check(&format!("convolution {i}"))?;
                    if conv.d_in != kernel * c_in || conv.d_out != p.channels {
                        return Err(format!("convolution {i} does not match its input"));
                    }
                    c_in = conv.d_out;
                }
                Ok(())
            }
            (
                Body::Transformer {
                    heads,
                    input,
                    positions,
                    blocks,
                    norm,
                },
                Architecture::Transformer,
            ) => {
                let d = p.d_model;
                input.check("input projection")?;
                if *heads != p.heads || input.d_in != d_event || input.d_out != d {
                    return Err("the input projection does not match the parameters".into());
                }
                if positions.len() != p.length * d || positions.iter().any(|w| !w.is_finite()) {
                    return Err("the position embeddings do not match the window length".into());
                }
                if blocks.len() != p.layers {
                    return Err("the encoder blocks do not match the parameters".into());
                }
                for (i, b) in blocks.iter().enumerate() {
                    b.check(d, &format!("block {i}"))?;
                }
                norm.check(d, "final norm")
            }
            _ => Err("the network does not match the architecture parameter".into()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Training.

/// The network as burn trains it; the unused architecture's parts are empty.
#[derive(Module, Debug)]
struct SequenceNet {
    embeddings: Vec<Embedding>,
    convs: Vec<Linear>,
    input: Vec<Linear>,
    positions: Vec<Param<Tensor<2>>>,
    blocks: Vec<Block>,
    norm: Vec<Norm>,
    hidden: Vec<Linear>,
    output: Linear,
    /// One encoder per text feature (`text_encoder=transformer`).
    texts: Vec<TextNet>,
}

/// One batch of windows as tensors.
struct Batch {
    /// `[b, length, n_numeric]`, zero at padded positions.
    numeric: Option<Tensor<3>>,
    /// Per categorical feature, `b · length` indices (0 at padded positions).
    categories: Vec<Tensor<1, Int>>,
    /// `[b, length, 1]`: 1 at valid positions.
    mask: Tensor<3>,
    /// `[b, 1]`: valid positions per window.
    n_valid: Tensor<2>,
    /// `[b, 1, 1, length]`: 0 for valid keys, [`MASKED_SCORE`] for padded ones.
    key_bias: Tensor<4>,
    /// Per text feature, the `b · length` cells (none at padded positions).
    texts: Vec<TextBatch>,
}

impl SequenceNet {
    fn forward(
        &self,
        batch: Batch,
        p: &SequenceParams,
        dropout: Vec<Option<Tensor<2>>>,
    ) -> Tensor<2> {
        let [b, l, _] = batch.mask.dims();
        let mut parts: Vec<Tensor<3>> = batch.numeric.into_iter().collect();
        for (e, idx) in self.embeddings.iter().zip(batch.categories) {
            let [_, dim] = e.weight.val().dims();
            parts.push(e.weight.val().select(0, idx).reshape([b, l, dim]));
        }
        for (t, cells) in self.texts.iter().zip(batch.texts) {
            let encoded = t.forward(cells);
            let [_, dim] = encoded.dims();
            parts.push(encoded.reshape([b, l, dim]));
        }
        let x = if parts.len() == 1 {
            parts.remove(0)
        } else {
            Tensor::cat(parts, 2)
        };
        let x = x * batch.mask.clone();
        let mut pooled: Tensor<2> = match p.architecture {
            Architecture::Cnn => {
                let k = p.kernel;
                let mut h = x;
                for conv in &self.convs {
                    let [_, _, c] = h.dims();
                    let padded = if k > 1 {
                        Tensor::cat(vec![Tensor::zeros([b, k - 1, c], &h.device()), h], 1)
                    } else {
                        h
                    };
                    let stacked =
                        Tensor::cat((0..k).map(|j| padded.clone().narrow(1, j, l)).collect(), 2);
                    h = relu(conv.forward(stacked)) * batch.mask.clone();
                }
                let [_, _, c] = h.dims();
                let last: Tensor<2> = h.clone().narrow(1, l - 1, 1).reshape([b, c]);
                let mean: Tensor<2> = h.clone().sum_dim(1).reshape([b, c]) / batch.n_valid;
                let max: Tensor<2> = h.max_dim(1).reshape([b, c]);
                Tensor::cat(vec![last, mean, max], 1)
            }
            Architecture::Transformer => {
                let d = p.d_model;
                let mut h = self.input[0].forward(x) + self.positions[0].val().reshape([1, l, d]);
                for block in &self.blocks {
                    h = block.forward(h, batch.key_bias.clone(), p.heads);
                }
                let last = h.narrow(1, l - 1, 1);
                self.norm[0].forward(last).reshape([b, d])
            }
        };
        let mut dropout = dropout.into_iter();
        if let Some(Some(m)) = dropout.next() {
            pooled = pooled * m;
        }
        let mut z = pooled;
        for (layer, mask) in self.hidden.iter().zip(dropout) {
            z = relu(layer.forward(z));
            if let Some(m) = mask {
                z = z * m;
            }
        }
        self.output.forward(z)
    }

    fn snapshot(&self, p: &SequenceParams) -> Result<Weights, ModelError> {
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
        let body = match p.architecture {
            Architecture::Cnn => Body::Cnn {
                kernel: p.kernel,
                convs: self
                    .convs
                    .iter()
                    .map(train::from_burn_linear)
                    .collect::<Result<_, _>>()?,
            },
            Architecture::Transformer => Body::Transformer {
                heads: p.heads,
                input: train::from_burn_linear(&self.input[0])?,
                positions: train::read_f32(self.positions[0].val())?,
                blocks: self
                    .blocks
                    .iter()
                    .map(Block::snapshot)
                    .collect::<Result<_, _>>()?,
                norm: self.norm[0].snapshot()?,
            },
        };
        let head = Perceptron {
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
        Ok(Weights {
            embeddings,
            texts,
            body,
            head,
        })
    }
}

/// Everything the served forward pass needs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Weights {
    pub embeddings: Vec<EmbeddingTable>,
    /// One encoder per text feature, in feature order.
    pub texts: Vec<TextEncoder>,
    pub body: Body,
    pub head: Perceptron,
}

impl Weights {
    /// The vector of one event: numerics, categorical embeddings, encoded text.
    fn event_vector(&self, row: &EncodedRow, out: &mut Vec<f64>) {
        network_input(&self.embeddings, &self.texts, row, out);
    }

    /// Class probabilities of a window of event vectors.
    pub(crate) fn proba(&self, window: &[&[f64]], length: usize) -> Vec<f64> {
        softmax(&self.head.forward(&self.body.forward(window, length)))
    }
}

/// The windows of `batch` as tensors: row `r`'s window fills positions `length − len ..` of
/// row `r`, earlier positions are padding (zero inputs, masked).
fn window_batch(
    batch: &[usize],
    windows: &[Vec<usize>],
    rows: &[EncodedRow],
    l: usize,
    n_categories: usize,
    device: &Device,
) -> Batch {
    let b = batch.len();
    let n_numeric = rows.first().map_or(0, |r| r.numeric.len());
    let mut numeric = vec![0.0f32; b * l * n_numeric];
    let mut categories = vec![vec![0i64; b * l]; n_categories];
    let mut mask = vec![0.0f32; b * l];
    let mut key_bias = vec![MASKED_SCORE; b * l];
    let mut n_valid = vec![0.0f32; b];
    let n_text = rows.first().map_or(0, |r| r.tokens.len());
    let mut cells: Vec<Vec<&[u32]>> = vec![vec![&[]; b * l]; n_text];
    for (r, &i) in batch.iter().enumerate() {
        let w = &windows[i];
        let offset = l - w.len();
        for (t, &e) in w.iter().enumerate() {
            let pos = r * l + offset + t;
            for (k, ids) in rows[e].tokens.iter().enumerate() {
                cells[k][pos] = ids;
            }
            for (dst, &x) in numeric[pos * n_numeric..(pos + 1) * n_numeric]
                .iter_mut()
                .zip(&rows[e].numeric)
            {
                *dst = x as f32;
            }
            for (k, &c) in rows[e].categories.iter().enumerate() {
                categories[k][pos] = i64::from(c);
            }
            mask[pos] = 1.0;
            key_bias[pos] = 0.0;
        }
        n_valid[r] = w.len() as f32;
    }
    Batch {
        numeric: (n_numeric > 0)
            .then(|| Tensor::<3>::from_data(TensorData::new(numeric, [b, l, n_numeric]), device)),
        categories: categories
            .into_iter()
            .map(|idx| Tensor::<1, Int>::from_data(TensorData::new(idx, [b * l]), device))
            .collect(),
        mask: Tensor::<3>::from_data(TensorData::new(mask, [b, l, 1]), device),
        n_valid: Tensor::<2>::from_data(TensorData::new(n_valid, [b, 1]), device),
        key_bias: Tensor::<4>::from_data(TensorData::new(key_bias, [b, 1, 1, l]), device),
        texts: cells.iter().map(|c| TextBatch::new(c, device)).collect(),
    }
}

/// A text key of an entity value; `None` when missing (no history).
fn entity_key(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Str(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Float(x) => Some(x.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        Value::Date(d) => Some(d.to_string()),
        Value::DateTime(t) => Some(t.to_string()),
    }
}

/// For each row, the rows of its window (oldest first, the row itself last): the last `length`
/// rows with the same entity key up to and including it, in row order.
fn windows(keys: &[Option<String>], length: usize) -> Vec<Vec<usize>> {
    let mut history: HashMap<&str, VecDeque<usize>> = HashMap::new();
    keys.iter()
        .enumerate()
        .map(|(i, key)| match key {
            None => vec![i],
            Some(k) => {
                let h = history.entry(k.as_str()).or_default();
                if h.len() == length {
                    h.pop_front();
                }
                h.push_back(i);
                h.iter().copied().collect()
            }
        })
        .collect()
}

/// The training summary stored with the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SequenceTrainingLog {
    pub epochs_run: usize,
    pub best_epoch: usize,
    /// The (class-weighted) validation log loss at the best epoch, when early stopping ran.
    pub validation_loss: Option<f64>,
    pub validation_accuracy: Option<f64>,
    pub training_rows: usize,
    pub validation_rows: usize,
    /// Entities in the training table.
    pub entities: usize,
    /// Wall-clock training time per epoch; not stored (the payload depends only on the data,
    /// the parameters and the seed).
    #[serde(skip)]
    pub seconds_per_epoch: f64,
}

/// A fitted `sequence` model.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceModel {
    params: SequenceParams,
    /// The entity column, then the encoder's features.
    schema: Schema,
    encoder: TabularEncoder,
    weights: Weights,
    classes: Vec<String>,
    log: SequenceTrainingLog,
}

/// Validation log loss (weighted) and accuracy of the served forward pass.
fn validation_scores(
    w: &Weights,
    events: &[Vec<f64>],
    windows: &[Vec<usize>],
    rows: &[usize],
    y: &[u32],
    class_weights: &[f64],
    length: usize,
) -> (f64, f64) {
    let (mut loss, mut wsum, mut correct) = (0.0, 0.0, 0usize);
    let mut window: Vec<&[f64]> = Vec::with_capacity(length);
    for &i in rows {
        window.clear();
        window.extend(windows[i].iter().map(|&e| events[e].as_slice()));
        let probs = w.proba(&window, length);
        let c = y[i] as usize;
        loss -= class_weights[c] * probs[c].max(1e-300).ln();
        wsum += class_weights[c];
        correct += usize::from(argmax(&probs) == c);
    }
    (
        loss / wsum.max(f64::MIN_POSITIVE),
        correct as f64 / rows.len().max(1) as f64,
    )
}

/// Prepared training instances: the event vectors' inputs, and per instance its window (event
/// indices, oldest first, the instance's own event last) and class.
pub(crate) struct Instances<'a> {
    pub events: &'a [EncodedRow],
    pub windows: &'a [Vec<usize>],
    pub y: &'a [u32],
    pub n_classes: usize,
}

/// A trained network and its training summary (`entities` left at 0 for the caller).
pub(crate) struct Trained {
    pub weights: Weights,
    pub log: SequenceTrainingLog,
}

/// Trains the network of `params` on prepared instances: class weights, the seeded validation
/// carve, seeded initial weights (`embed` draws the categorical embeddings and returns them with
/// the width of the numerics and embeddings; a text encoder per text feature of the events
/// follows them, drawn last), AdamW with dropout and early stopping on the served forward pass.
/// The `sequence` family (windows of a sorted table) and `fraud_sequence` (windows of the fraud
/// engine's entity history) both train through it.
pub(crate) fn train_network(
    inst: &Instances<'_>,
    params: &SequenceParams,
    embed: impl FnOnce(&mut train::SeededRng, &Device) -> (Vec<Embedding>, usize),
    ctx: &FitContext<'_>,
) -> Result<Trained, ModelError> {
    let n = inst.y.len();
    let n_classes = inst.n_classes;
    let mut counts = vec![0usize; n_classes];
    for &c in inst.y {
        counts[c as usize] += 1;
    }
    let class_weights: Vec<f64> = counts
        .iter()
        .map(|&c| {
            if params.balanced && c > 0 {
                n as f64 / (n_classes * c) as f64
            } else {
                1.0
            }
        })
        .collect();

    let opt = &params.optimisation;
    let mut rng = train::rng(params.seed.unwrap_or(ctx.seed));
    let (train_rows, valid_rows) = if opt.early_stopping() {
        train::stratified_carve(inst.y, n_classes, opt.validation_fraction, &mut rng)
    } else {
        ((0..n).collect(), Vec::new())
    };

    // Seeded initial weights (PyTorch's defaults for linear layers and embeddings).
    let device = Device::flex().autodiff();
    let (embeddings, d_tabular) = embed(&mut rng, &device);
    let n_categorical = embeddings.len();
    let n_text = inst.events.first().map_or(0, |r| r.tokens.len());
    let d_event = d_tabular + n_text * params.text.dim;
    let linear = |d_in: usize, d_out: usize, rng: &mut train::SeededRng| {
        train::to_burn_linear(&train::linear_init(d_in, d_out, rng), &device)
    };
    let (mut convs, mut input, mut positions, mut blocks, mut norm) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    match params.architecture {
        Architecture::Cnn => {
            let mut c_in = d_event;
            for _ in 0..params.layers {
                convs.push(linear(params.kernel * c_in, params.channels, &mut rng));
                c_in = params.channels;
            }
        }
        Architecture::Transformer => {
            let d = params.d_model;
            input.push(linear(d_event, d, &mut rng));
            let pos: Vec<f32> = train::normal(params.length * d, &mut rng)
                .into_iter()
                .map(|x| 0.1 * x)
                .collect();
            positions.push(Param::from_data(
                TensorData::new(pos, [params.length, d]),
                &device,
            ));
            for _ in 0..params.layers {
                blocks.push(Block::seeded(d, &mut rng, &device));
            }
            norm.push(Norm::new(d, &device));
        }
    }
    let mut width = params.pooled_width();
    let mut hidden = Vec::new();
    for &w in &params.dense {
        hidden.push(linear(width, w, &mut rng));
        width = w;
    }
    let output = linear(width, n_classes, &mut rng);
    // Drawn last, so a fit without text draws what it always drew.
    let texts = params.text.seeded_nets(n_text, &mut rng, &device);
    let mut model = SequenceNet {
        embeddings,
        convs,
        input,
        positions,
        blocks,
        norm,
        hidden,
        output,
        texts,
    };
    let mut optim = AdamWConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(opt.weight_decay as f32)
        .init();

    // The served forward pass reads event vectors; validation rebuilds them each epoch from the
    // current embeddings and text encoders.
    let events_of = |w: &Weights| -> Vec<Vec<f64>> {
        let mut x = Vec::new();
        inst.events
            .iter()
            .map(|r| {
                w.event_vector(r, &mut x);
                x.clone()
            })
            .collect()
    };

    let l = params.length;
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
            let tensors =
                window_batch(&batch, inst.windows, inst.events, l, n_categorical, &device);
            let mut target_weights = vec![0.0f32; b * n_classes];
            for (r, &i) in batch.iter().enumerate() {
                let c = inst.y[i] as usize;
                target_weights[r * n_classes + c] = class_weights[c] as f32;
            }
            let dropout: Vec<Option<Tensor<2>>> = std::iter::once(params.pooled_width())
                .chain(params.dense.iter().copied())
                .map(|w| {
                    (opt.dropout > 0.0)
                        .then(|| train::dropout_mask(b, w, opt.dropout, &mut rng, &device))
                })
                .collect();
            let yt =
                Tensor::<2>::from_data(TensorData::new(target_weights, [b, n_classes]), &device);
            let logp = log_softmax(model.forward(tensors, params, dropout), 1);
            let loss = (logp * yt).sum().neg().div_scalar(b as f64);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(opt.learning_rate, model, grads);
        }
        epochs_run = epoch;
        ctx.progress
            .report("training", epoch as f64 / opt.epochs as f64);
        if opt.early_stopping() {
            let w = model.snapshot(params)?;
            let events = events_of(&w);
            let (loss, accuracy) = validation_scores(
                &w,
                &events,
                inst.windows,
                &valid_rows,
                inst.y,
                &class_weights,
                l,
            );
            if !loss.is_finite() {
                return Err(ModelError::Numerical {
                    reason: format!("validation loss is {loss} at epoch {epoch}"),
                });
            }
            if stopping.record(epoch, loss, (w, accuracy)) {
                break;
            }
        }
    }
    let seconds_per_epoch = started.elapsed().as_secs_f64() / epochs_run.max(1) as f64;
    let (weights, best_epoch, validation_loss, validation_accuracy) = match stopping.best.take() {
        Some((w, accuracy)) => (
            w,
            stopping.best_epoch,
            Some(stopping.best_loss),
            Some(accuracy),
        ),
        None => (model.snapshot(params)?, epochs_run, None, None),
    };
    let mut weights = weights;
    if n_text > 0 {
        // The events the training instances read (their windows), for the unseen token ids.
        let mut seen = vec![false; inst.events.len()];
        for &i in &train_rows {
            for &e in &inst.windows[i] {
                seen[e] = true;
            }
        }
        for (k, t) in weights.texts.iter_mut().enumerate() {
            t.fill_unseen(
                inst.events
                    .iter()
                    .zip(&seen)
                    .filter(|(_, s)| **s)
                    .map(|(r, _)| r.tokens[k].as_slice()),
            );
        }
    }
    Ok(Trained {
        weights,
        log: SequenceTrainingLog {
            epochs_run,
            best_epoch,
            validation_loss,
            validation_accuracy,
            training_rows: train_rows.len(),
            validation_rows: valid_rows.len(),
            entities: 0,
            seconds_per_epoch,
        },
    })
}

/// Fits a `sequence` model on `features` (the entity column and the per-event inputs, sorted by
/// entity and time) and a class target.
pub fn fit(
    features: &Table,
    target: &ClassTarget,
    params: &SequenceParams,
    ctx: &FitContext<'_>,
) -> Result<SequenceModel, ModelError> {
    let n = features.n_rows();
    let n_classes = target.classes.len();
    train::check_class_target(n, target, "the sequence model")?;
    let entity_col = features.column(&params.entity).ok_or_else(|| {
        ModelError::invalid_param(
            "entity",
            &params.entity,
            "the name of a column of the training table",
        )
    })?;
    let entity = Field::new(entity_col.name.clone(), entity_col.data.column_type());
    let keys: Vec<Option<String>> = (0..n)
        .map(|i| entity_key(&entity_col.data.get(i)))
        .collect();
    let inputs =
        features
            .drop_column(&params.entity)
            .map_err(|e| ModelError::NoUsableFeatures {
                reason: e.to_string(),
            })?;
    let encoder =
        TabularEncoder::fit_with_text(&inputs, params.min_frequency, params.text.tokens())?;
    let rows = encoder.encode_table(&inputs)?;
    let windows = windows(&keys, params.length);
    let entities = {
        let mut k: Vec<&str> = keys.iter().flatten().map(String::as_str).collect();
        k.sort_unstable();
        k.dedup();
        k.len()
    };

    let trained = train_network(
        &Instances {
            events: &rows,
            windows: &windows,
            y: &target.y,
            n_classes,
        },
        params,
        |rng, device| seeded_embeddings(&encoder, params.embedding_dim, rng, device),
        ctx,
    )?;
    let mut weights = trained.weights;
    fill_reserved_embeddings(&mut weights.embeddings, &rows);
    let mut fields = vec![entity];
    fields.extend(encoder.fields.iter().cloned());
    let model = SequenceModel {
        params: params.clone(),
        schema: Schema { fields },
        encoder,
        weights,
        classes: target.classes.clone(),
        log: SequenceTrainingLog {
            entities,
            ..trained.log
        },
    };
    model
        .check()
        .map_err(|reason| ModelError::Numerical { reason })?;
    Ok(model)
}

// ---------------------------------------------------------------------------------------------
// The fitted model.

/// Version of [`StoredSequence`].
const PAYLOAD_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSequence {
    payload_version: u32,
    params: serde_json::Value,
    schema: Schema,
    encoder: TabularEncoder,
    embeddings: Vec<EmbeddingTable>,
    /// Absent without text encoders (the payloads written before them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    texts: Vec<TextEncoder>,
    body: Body,
    head: Perceptron,
    classes: Vec<String>,
    training: SequenceTrainingLog,
}

impl SequenceModel {
    fn check(&self) -> Result<(), String> {
        self.encoder.check()?;
        let w = &self.weights;
        let fields = &self.schema.fields;
        if fields.first().map(|f| f.name.as_str()) != Some(self.params.entity.as_str())
            || fields[1..] != self.encoder.fields[..]
        {
            return Err("the input schema is not the entity column and the features".into());
        }
        let sizes = self.encoder.category_sizes();
        if sizes.len() != w.embeddings.len() {
            return Err(format!(
                "{} embedding tables for {} categorical features",
                w.embeddings.len(),
                sizes.len()
            ));
        }
        for (k, (t, &s)) in w.embeddings.iter().zip(&sizes).enumerate() {
            t.check(&format!("embedding {k}"))?;
            if t.rows != s {
                return Err(format!("embedding {k} has {} rows for {s} indices", t.rows));
            }
        }
        self.params
            .text
            .check_encoders(&self.encoder.named_text_features(), &w.texts)?;
        let d_event = self.encoder.n_numeric()
            + w.embeddings.iter().map(|t| t.dim).sum::<usize>()
            + w.texts.iter().map(TextEncoder::dim).sum::<usize>();
        w.body.check(&self.params, d_event)?;
        w.head.check()?;
        if w.head.d_in() != self.params.pooled_width()
            || w.head.hidden.len() != self.params.dense.len()
            || w.head.output.d_out != self.classes.len()
        {
            return Err("the dense head does not match the network or the classes".into());
        }
        if self.classes.len() < 2 {
            return Err("fewer than two classes".into());
        }
        Ok(())
    }

    /// The training summary.
    pub fn training_log(&self) -> &SequenceTrainingLog {
        &self.log
    }

    /// Class probabilities of every row of a request, each scored with the window of the
    /// preceding rows of its entity in `rows` (see the module docs).
    pub fn predict_proba(&self, rows: &[Vec<Value>]) -> Result<Vec<Vec<f64>>, ModelError> {
        let width = self.schema.fields.len();
        let mut keys = Vec::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        let mut enc = EncodedRow::default();
        let mut x = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            if row.len() != width {
                return Err(ModelError::RowLength {
                    row: Some(i),
                    expected: width,
                    got: row.len(),
                });
            }
            keys.push(entity_key(&row[0]));
            self.encoder
                .encode_row(&row[1..], &mut enc)
                .map_err(|e| e.at_row(i))?;
            self.weights.event_vector(&enc, &mut x);
            events.push(x.clone());
        }
        let mut window: Vec<&[f64]> = Vec::with_capacity(self.params.length);
        Ok(windows(&keys, self.params.length)
            .iter()
            .map(|w| {
                window.clear();
                window.extend(w.iter().map(|&e| events[e].as_slice()));
                self.weights.proba(&window, self.params.length)
            })
            .collect())
    }

    /// Rebuilds a model from [`FittedModel::payload`] bytes, checking every invariant serving
    /// relies on.
    pub fn from_payload(bytes: &[u8]) -> Result<Self, ModelError> {
        let bad =
            |reason: String| ModelError::invalid_artifact(format!("sequence payload: {reason}"));
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
        let stored: StoredSequence =
            serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        let model = SequenceModel {
            params: SequenceParams::from_json(&stored.params)?,
            schema: stored.schema,
            encoder: stored.encoder,
            weights: Weights {
                embeddings: stored.embeddings,
                texts: stored.texts,
                body: stored.body,
                head: stored.head,
            },
            classes: stored.classes,
            log: stored.training,
        };
        model.check().map_err(bad)?;
        Ok(model)
    }
}

impl FittedModel for SequenceModel {
    fn family(&self) -> &str {
        SPEC.name
    }

    fn task(&self) -> Task {
        Task::SequenceClassification
    }

    fn input_schema(&self) -> &Schema {
        &self.schema
    }

    fn params(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn summary(&self) -> serde_json::Value {
        let w = &self.weights;
        let parameters = w
            .embeddings
            .iter()
            .map(|t| t.weight.len())
            .chain(
                w.head
                    .hidden
                    .iter()
                    .chain([&w.head.output])
                    .map(|l| l.weight.len() + l.bias.len()),
            )
            .sum::<usize>()
            + w.body.n_parameters()
            + w.texts.iter().map(TextEncoder::n_parameters).sum::<usize>();
        serde_json::json!({
            "entity": self.params.entity,
            "length": self.params.length,
            "architecture": self.params.architecture.name(),
            "classes": self.classes,
            "parameters": parameters,
            "training": self.log,
            "dropped_columns": self.encoder.dropped,
            "text_encoders": crate::text::encoders_summary(
                &self.encoder.named_text_features(),
                &w.texts
            ),
        })
    }

    fn payload(&self) -> Result<Vec<u8>, ModelError> {
        let stored = StoredSequence {
            payload_version: PAYLOAD_VERSION,
            params: self.params.to_json(),
            schema: self.schema.clone(),
            encoder: self.encoder.clone(),
            embeddings: self.weights.embeddings.clone(),
            texts: self.weights.texts.clone(),
            body: self.weights.body.clone(),
            head: self.weights.head.clone(),
            classes: self.classes.clone(),
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
        Ok(self
            .predict_proba(rows)?
            .into_iter()
            .map(|probabilities| Output::Class {
                label: self.classes[argmax(&probabilities)].clone(),
                probabilities,
            })
            .collect())
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
    use aurum_core::{CancelToken, Column, ColumnData, NoProgress};
    use burn::tensor::activation::softmax as burn_softmax;
    use rand::Rng;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn fit_on(table: &Table, target: &ClassTarget, pairs: &[(&str, &str)]) -> SequenceModel {
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed: 11,
        };
        let p = SequenceParams::from_params(&params(pairs)).unwrap();
        fit(table, target, &p, &ctx).unwrap()
    }

    fn rows_of(table: &Table) -> Vec<Vec<Value>> {
        (0..table.n_rows()).map(|i| table.row(i)).collect()
    }

    /// The probability of `class` for every row.
    fn scores(model: &SequenceModel, rows: &[Vec<Value>], class: usize) -> Vec<f64> {
        model
            .predict_proba(rows)
            .unwrap()
            .into_iter()
            .map(|p| p[class])
            .collect()
    }

    /// ROC-AUC by the fraud metrics' rank statistic (ties count one half).
    fn auc(scores: &[f64], positive: &[bool]) -> f64 {
        aurum_fraud::metrics::roc_auc(scores, positive).expect("both classes in the held-out rows")
    }

    /// Entities whose label is the *previous* event's channel: `alert` after a `web` event,
    /// `ok` otherwise (and for an entity's first event). The row's own values carry no signal.
    fn previous_event_data(entities: usize, events: usize, seed: u64) -> (Table, ClassTarget) {
        let mut rng = train::rng(seed);
        let (mut entity, mut channel, mut amount, mut label) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for e in 0..entities {
            let mut previous_web = false;
            for _ in 0..events {
                let web = rng.random::<bool>();
                entity.push(Some(format!("card-{e}")));
                channel.push(Some(if web { "web" } else { "store" }.to_string()));
                amount.push(Some(rng.random_range(0.0..100.0)));
                label.push(Some(if previous_web { "alert" } else { "ok" }.to_string()));
                previous_web = web;
            }
        }
        card_events(
            entity,
            Column {
                name: "channel".into(),
                data: ColumnData::Categorical(channel),
            },
            amount,
            label,
        )
    }

    /// `card`, `what` (the event's own column), `amount` and the class target `label`.
    fn card_events(
        entity: Vec<Option<String>>,
        what: Column,
        amount: Vec<Option<f64>>,
        label: Vec<Option<String>>,
    ) -> (Table, ClassTarget) {
        let table = Table::new(vec![
            Column {
                name: "card".into(),
                data: ColumnData::Categorical(entity),
            },
            what,
            Column {
                name: "amount".into(),
                data: ColumnData::Float(amount),
            },
            Column {
                name: "label".into(),
                data: ColumnData::Categorical(label),
            },
        ])
        .unwrap();
        let target = aurum_data::class_target(&table, "label").unwrap();
        (table.drop_column("label").unwrap(), target)
    }

    fn accuracy(model: &SequenceModel, table: &Table, target: &ClassTarget) -> f64 {
        let out = model.predict_rows(&rows_of(table)).unwrap();
        let correct = out
            .iter()
            .zip(&target.y)
            .filter(|&(o, &y)| {
                matches!(o, Output::Class { label, .. } if *label == target.classes[y as usize])
            })
            .count();
        correct as f64 / target.y.len() as f64
    }

    /// The label depends only on the previous event of the same entity: both architectures
    /// learn it from a window, and the same family with a one-event window (a per-row model)
    /// cannot beat the majority class.
    #[test]
    fn windows_carry_the_previous_event() {
        let (train_x, train_y) = previous_event_data(120, 25, 1);
        let (test_x, test_y) = previous_event_data(40, 25, 2);
        let majority = test_y.y.iter().filter(|&&c| c == 1).count() as f64 / 1000.0;
        for arch in ["cnn", "transformer"] {
            let base = [
                ("entity", "card"),
                ("architecture", arch),
                ("epochs", "25"),
                ("length", "4"),
            ];
            let m = fit_on(&train_x, &train_y, &base);
            let acc = accuracy(&m, &test_x, &test_y);
            assert!(
                acc > 0.97,
                "{arch}: accuracy {acc} ({:?})",
                m.training_log()
            );

            let per_row = fit_on(
                &train_x,
                &train_y,
                &[base[0], base[1], base[2], ("length", "1")],
            );
            let acc1 = accuracy(&per_row, &test_x, &test_y);
            assert!(
                acc1 < majority.max(1.0 - majority) + 0.05,
                "{arch}: a one-event window reached {acc1}"
            );
        }
    }

    /// The serving contract: a row is scored with the preceding rows of its entity in the
    /// request, whatever other entities' rows are interleaved; a lone row is a first event.
    #[test]
    fn a_request_is_a_history_per_entity_and_reloads_bit_identically() {
        let (train_x, train_y) = previous_event_data(60, 20, 3);
        let (test_x, _) = previous_event_data(2, 6, 4);
        for arch in ["cnn", "transformer"] {
            let m = fit_on(
                &train_x,
                &train_y,
                &[
                    ("entity", "card"),
                    ("architecture", arch),
                    ("epochs", "3"),
                    ("length", "3"),
                ],
            );
            let rows = rows_of(&test_x);
            let together = m.predict_rows(&rows).unwrap();
            // Interleave the two entities: every row keeps its own history.
            let order: Vec<usize> = (0..6).flat_map(|k| [k, 6 + k]).collect();
            let mixed: Vec<Vec<Value>> = order.iter().map(|&i| rows[i].clone()).collect();
            let out = m.predict_rows(&mixed).unwrap();
            for (o, &i) in out.iter().zip(&order) {
                assert_eq!(*o, together[i], "{arch}: row {i}");
            }
            // The last event with its own history, and alone.
            assert_eq!(m.predict_rows(&rows[2..6]).unwrap()[3], together[5]);
            let alone = m.predict_rows(&rows[5..6]).unwrap()[0].clone();
            let mut stranger = rows[5].clone();
            stranger[0] = Value::Str("card-new".into());
            let mut request = rows[0..5].to_vec();
            request.push(stranger);
            assert_eq!(m.predict_rows(&request).unwrap()[5], alone, "{arch}");
            assert_ne!(
                m.predict_proba(&rows[5..6]).unwrap()[0],
                m.predict_proba(&rows).unwrap()[5],
                "{arch}: the history changes nothing"
            );
            let loaded = SequenceFamily.load_payload(&m.payload().unwrap()).unwrap();
            assert_eq!(loaded.predict_rows(&rows).unwrap(), together);
            assert_eq!(loaded.predict_rows(&mixed).unwrap(), out);
            assert_eq!(loaded.task(), Task::SequenceClassification);
            assert_eq!(
                loaded.input_schema().names().collect::<Vec<_>>(),
                ["card", "channel", "amount"]
            );
        }
    }

    /// The handbook simulator's transactions of customers `0..customers`, sorted by customer
    /// and time, with the entity and the amount as inputs; and whether each row falls in the
    /// held-out period (day 120 onwards).
    fn handbook(customers: i64) -> (Table, ClassTarget, Vec<bool>) {
        let bytes = include_bytes!("../../../data/fraud/handbook_sim_transactions.csv");
        let table = aurum_data::read_csv(bytes, &Default::default()).unwrap();
        let int = |name: &str, i: usize| match table.column(name).unwrap().data.get(i) {
            Value::Integer(v) => v,
            other => panic!("{name}: {other:?}"),
        };
        let mut order: Vec<usize> = (0..table.n_rows())
            .filter(|&i| int("CUSTOMER_ID", i) < customers)
            .collect();
        order.sort_by_key(|&i| (int("CUSTOMER_ID", i), int("TX_TIME_SECONDS", i), i));
        let held_out = order
            .iter()
            .map(|&i| int("TX_TIME_DAYS", i) >= 120)
            .collect();
        let table = table
            .take(&order)
            .select(["CUSTOMER_ID", "TX_AMOUNT", "TX_FRAUD"])
            .unwrap();
        let target = aurum_data::class_target(&table, "TX_FRAUD").unwrap();
        (table.drop_column("TX_FRAUD").unwrap(), target, held_out)
    }

    /// Real data, real training: fraud in the handbook simulator comes from amounts above 220
    /// (scenario 1), compromised terminals (2, invisible to a customer's own history) and
    /// compromised customers whose amounts are multiplied by five for two weeks (3, visible only
    /// against the customer's usual amounts). Trained on days 0–119 of the customers numbered
    /// below 1000 (103 of them, 25k rows) and scored on days 120–182 (117 frauds) with each
    /// customer's full history as the request, both architectures must clearly beat the amount
    /// alone as a score: its ROC curve holds every fixed amount threshold (such as scenario 1's
    /// 220), and a one-event window of this family scores exactly as the amount does (0.695).
    /// Measured: cnn 0.730, transformer 0.741.
    #[test]
    fn learns_handbook_fraud_beyond_any_amount_threshold() {
        let (table, target, held_out) = handbook(1000);
        let train_idx: Vec<usize> = (0..table.n_rows()).filter(|&i| !held_out[i]).collect();
        let test_idx: Vec<usize> = (0..table.n_rows()).filter(|&i| held_out[i]).collect();
        let train_y = ClassTarget {
            y: train_idx.iter().map(|&i| target.y[i]).collect(),
            ..target.clone()
        };
        assert_eq!(target.classes, ["0", "1"]);
        let fraud: Vec<bool> = test_idx.iter().map(|&i| target.y[i] == 1).collect();
        let n_fraud = fraud.iter().filter(|&&f| f).count();
        assert!(n_fraud >= 30, "{n_fraud} held-out frauds");
        let rows = rows_of(&table);
        let amount: Vec<f64> = test_idx
            .iter()
            .map(|&i| match rows[i][1] {
                Value::Float(x) => x,
                ref v => panic!("{v:?}"),
            })
            .collect();
        let amount_auc = auc(&amount, &fraud);
        for arch in ["cnn", "transformer"] {
            let started = std::time::Instant::now();
            let m = fit_on(
                &table.take(&train_idx),
                &train_y,
                &[
                    ("entity", "CUSTOMER_ID"),
                    ("architecture", arch),
                    ("class_weight", "balanced"),
                ],
            );
            let p = scores(&m, &rows, 1);
            let held: Vec<f64> = test_idx.iter().map(|&i| p[i]).collect();
            let model_auc = auc(&held, &fraud);
            eprintln!(
                "{arch}: held-out ROC-AUC {model_auc:.4} (amount alone {amount_auc:.4}), {} training rows, {n_fraud} held-out frauds, {:?}, {:.1} s",
                train_idx.len(),
                m.training_log(),
                started.elapsed().as_secs_f64()
            );
            assert!(
                model_auc > 0.7 && model_auc > amount_auc + 0.025,
                "{arch}: ROC-AUC {model_auc} against the amount's {amount_auc}"
            );
        }
    }

    #[test]
    fn same_seed_same_payload_and_the_seed_matters() {
        let (x, y) = previous_event_data(30, 10, 5);
        for arch in ["cnn", "transformer"] {
            let quick = [
                ("entity", "card"),
                ("architecture", arch),
                ("epochs", "2"),
                ("length", "3"),
            ];
            let a = fit_on(&x, &y, &quick).payload().unwrap();
            let b = fit_on(&x, &y, &quick).payload().unwrap();
            assert!(a == b, "{arch}: same seed, different payloads");
            let mut seeded = quick.to_vec();
            seeded.push(("seed", "99"));
            let c = fit_on(&x, &y, &seeded).payload().unwrap();
            assert!(a != c, "{arch}: the seed parameter changed nothing");
        }
    }

    #[test]
    fn params_inputs_and_payloads_are_checked_by_name() {
        let e =
            |pairs: &[(&str, &str)]| SequenceFamily.validate_params(&params(pairs)).unwrap_err();
        assert!(matches!(
            e(&[("entity", "card"), ("window", "3")]),
            ModelError::UnknownParam { .. }
        ));
        for (pairs, key) in [
            (&[("length", "4")][..], "`entity`"),
            (&[("entity", "card"), ("length", "0")][..], "`length`"),
            (
                &[("entity", "card"), ("architecture", "rnn")][..],
                "`architecture`",
            ),
            (
                &[("entity", "card"), ("d_model", "30"), ("heads", "4")][..],
                "`heads`",
            ),
            (
                &[("entity", "card"), ("class_weight", "x")][..],
                "`class_weight`",
            ),
            (&[("entity", "card"), ("dense", "0")][..], "`dense`"),
            (&[("entity", "card"), ("seed", "-1")][..], "`seed`"),
        ] {
            let msg = e(pairs).to_string();
            assert!(msg.contains(key), "{pairs:?}: {msg}");
        }
        let canonical = SequenceFamily
            .validate_params(&params(&[("entity", "card")]))
            .unwrap();
        assert_eq!(canonical["architecture"], "transformer");
        assert_eq!(canonical["length"], 16);

        let (x, y) = previous_event_data(20, 8, 6);
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed: 1,
        };
        let p = SequenceParams::from_params(&params(&[("entity", "customer")])).unwrap();
        let msg = fit(&x, &y, &p, &ctx).unwrap_err().to_string();
        assert!(
            msg.contains("`entity`") && msg.contains("customer"),
            "{msg}"
        );

        let m = fit_on(
            &x,
            &y,
            &[
                ("entity", "card"),
                ("epochs", "1"),
                ("patience", "0"),
                ("validation_fraction", "0"),
            ],
        );
        // Unknown categories, missing values and a missing entity are scored.
        let odd = vec![
            vec![Value::Null, Value::Str("phone".into()), Value::Null],
            vec![Value::Str("card-0".into()), Value::Null, Value::Integer(3)],
        ];
        let out = m.predict_proba(&odd).unwrap();
        assert!(out.iter().flatten().all(|p| p.is_finite()));
        // A wrong type names the feature and the row.
        let bad = vec![
            vec![
                Value::Str("card-0".into()),
                Value::Str("web".into()),
                Value::Float(1.0),
            ],
            vec![
                Value::Str("card-0".into()),
                Value::Str("web".into()),
                Value::Str("ten".into()),
            ],
        ];
        let msg = m.predict_rows(&bad).unwrap_err().to_string();
        assert!(msg.contains("`amount`") && msg.contains("row 1"), "{msg}");
        let msg = m
            .predict_rows(&[vec![Value::Null]])
            .unwrap_err()
            .to_string();
        assert!(msg.contains('3'), "{msg}");

        let mut v: serde_json::Value = serde_json::from_slice(&m.payload().unwrap()).unwrap();
        v["params"]["length"] = 5.into();
        assert!(
            SequenceFamily
                .load_payload(&serde_json::to_vec(&v).unwrap())
                .is_err()
        );
        v["params"]["length"] = 16.into();
        v["params"]["architecture"] = "cnn".into();
        assert!(
            SequenceFamily
                .load_payload(&serde_json::to_vec(&v).unwrap())
                .is_err()
        );
    }

    /// Merchant memos of card events; the first two name risky merchants.
    const MEMOS: &[&str] = &[
        "crypto exchange top up",
        "casino chips",
        "grocery store",
        "coffee shop downtown",
        "fuel station",
        "streaming subscription renewal",
    ];

    /// Entities whose label is `alert` right after an event whose free-text memo names a risky
    /// merchant, `ok` otherwise. A memo may be missing (never risky) and carries a reference
    /// number (the tokeniser drops numbers); the amount is noise. Only the previous event's
    /// text carries the label.
    fn previous_memo_data(entities: usize, events: usize, seed: u64) -> (Table, ClassTarget) {
        let mut rng = train::rng(seed);
        let (mut entity, mut memo, mut amount, mut label) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for e in 0..entities {
            let mut previous_risky = false;
            for _ in 0..events {
                let k = rng.random_range(0..MEMOS.len() + 1);
                let prefix = ["", "pos ", "card payment "][rng.random_range(0..3)];
                entity.push(Some(format!("card-{e}")));
                memo.push(
                    MEMOS
                        .get(k)
                        .map(|m| format!("{prefix}{m} ref {}", rng.random_range(1000..9999))),
                );
                amount.push(Some(rng.random_range(0.0..100.0)));
                label.push(Some(
                    if previous_risky { "alert" } else { "ok" }.to_string(),
                ));
                previous_risky = k < 2;
            }
        }
        card_events(
            entity,
            Column {
                name: "memo".into(),
                data: ColumnData::Text(memo),
            },
            amount,
            label,
        )
    }

    /// `text_encoder=transformer`: each event's memo goes through the text encoder into the
    /// event's vector, so both architectures learn a label only the previous event's text
    /// carries, while the family without the encoder (which leaves text to the job runner's
    /// TF-IDF step and drops it itself) stays at the majority class. The served pass is the
    /// trained network with text, and the model reloads bit-identically. Measured: held-out
    /// accuracy 1.000 for both architectures with the encoder, 0.757 (the majority) without.
    #[test]
    fn event_text_reaches_the_window_through_the_transformer_encoder() {
        let (train_x, train_y) = previous_memo_data(100, 20, 21);
        let (test_x, test_y) = previous_memo_data(30, 20, 22);
        let alert = test_y.classes.iter().position(|c| c == "alert").unwrap();
        let share = test_y.y.iter().filter(|&&c| c as usize == alert).count() as f64
            / test_y.y.len() as f64;
        let majority = share.max(1.0 - share);
        let text = [
            ("entity", "card"),
            ("text_encoder", "transformer"),
            ("text_length", "6"),
            ("text_vocab", "64"),
            ("text_dim", "8"),
        ];
        assert!(SequenceFamily.reads_text(&params(&text)));
        assert!(!SequenceFamily.reads_text(&params(&[("entity", "card")])));
        for arch in ["cnn", "transformer"] {
            let mut pairs = vec![("architecture", arch), ("epochs", "20"), ("length", "3")];
            pairs.push(text[0]);
            let without = fit_on(&train_x, &train_y, &pairs);
            assert!(without.weights.texts.is_empty());
            // The family drops the text column it does not read (the runner projects to the
            // input schema, as serving does).
            let names: Vec<&str> = without.input_schema().names().collect();
            assert_eq!(names, ["card", "amount"]);
            let acc0 = accuracy(&without, &test_x.select(names).unwrap(), &test_y);
            assert!(
                acc0 < majority + 0.03,
                "{arch}: {acc0} without reading text"
            );
            pairs.extend(&text[1..]);
            let m = fit_on(&train_x, &train_y, &pairs);
            let acc = accuracy(&m, &test_x, &test_y);
            assert!(
                acc > 0.95,
                "{arch}: accuracy {acc} with the text encoder, majority {majority} ({:?})",
                m.training_log()
            );
            assert_eq!(m.summary()["text_encoders"][0]["feature"], "memo");
            assert_eq!(m.params()["text_encoder"], "transformer");

            // Served = trained, padding and empty cells included.
            let rows = rows_of(&test_x);
            let rows = &rows[..60];
            let encoded = assert_served_is_trained(&m, rows, arch);
            assert!(encoded.iter().any(|e| e.tokens[0].is_empty()));

            let payload = m.payload().unwrap();
            let loaded = SequenceFamily.load_payload(&payload).unwrap();
            assert_eq!(
                loaded.predict_rows(rows).unwrap(),
                m.predict_rows(rows).unwrap()
            );
            assert_eq!(loaded.payload().unwrap(), payload);
            // A number where text belongs names the column.
            let mut bad = rows[..1].to_vec();
            bad[0][1] = Value::Float(3.0);
            let e = m.predict_rows(&bad).unwrap_err().to_string();
            assert!(e.contains("`memo`"), "{e}");
            // A payload whose encoders do not match the text parameters is refused.
            let mut v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
            v["texts"] = serde_json::json!([]);
            let e = SequenceFamily
                .load_payload(&serde_json::to_vec(&v).unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains("text encoders"), "{e}");
        }
    }

    /// Checks that the served pass gives the burn graph's probabilities (1e-5) for every row of
    /// a two-class request; returns the encoded rows.
    fn assert_served_is_trained(
        m: &SequenceModel,
        rows: &[Vec<Value>],
        what: &str,
    ) -> Vec<EncodedRow> {
        let served = m.predict_proba(rows).unwrap();
        let keys: Vec<Option<String>> = rows.iter().map(|r| entity_key(&r[0])).collect();
        let encoded: Vec<EncodedRow> = rows
            .iter()
            .map(|r| {
                let mut e = EncodedRow::default();
                m.encoder.encode_row(&r[1..], &mut e).unwrap();
                e
            })
            .collect();
        let l = m.params.length;
        let device = Device::flex();
        let net = burn_net(&m.weights, &device);
        let all: Vec<usize> = (0..rows.len()).collect();
        let batch = window_batch(
            &all,
            &windows(&keys, l),
            &encoded,
            l,
            m.weights.embeddings.len(),
            &device,
        );
        let dropout = vec![None; 1 + m.params.dense.len()];
        let logits = net.forward(batch, &m.params, dropout);
        let probs = train::read_f32(burn_softmax(logits, 1)).unwrap();
        for (i, p) in served.iter().enumerate() {
            for (c, &q) in p.iter().enumerate() {
                let b = f64::from(probs[i * 2 + c]);
                assert!(
                    (q - b).abs() < 1e-5,
                    "{what}: row {i} class {c}: {q} vs {b}"
                );
            }
        }
        encoded
    }

    /// The trained weights back in a burn network (for comparing the two forward passes).
    fn burn_net(w: &Weights, device: &Device) -> SequenceNet {
        let linear = |l: &DenseLayer| train::to_burn_linear(l, device);
        let (mut convs, mut input, mut positions, mut blocks, mut norms) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        match &w.body {
            Body::Cnn { convs: c, .. } => convs = c.iter().map(linear).collect(),
            Body::Transformer {
                input: i,
                positions: pos,
                blocks: b,
                norm: n,
                ..
            } => {
                let d = i.d_out;
                input.push(linear(i));
                positions.push(Param::from_data(
                    TensorData::new(pos.clone(), [pos.len() / d, d]),
                    device,
                ));
                blocks = b.iter().map(|b| Block::from_weights(b, device)).collect();
                norms.push(Norm::from_weights(n, device));
            }
        }
        SequenceNet {
            embeddings: w
                .embeddings
                .iter()
                .map(|e| Embedding {
                    weight: Param::from_data(
                        TensorData::new(e.weight.clone(), [e.rows, e.dim]),
                        device,
                    ),
                })
                .collect(),
            convs,
            input,
            positions,
            blocks,
            norm: norms,
            hidden: w.head.hidden.iter().map(linear).collect(),
            output: linear(&w.head.output),
            texts: w
                .texts
                .iter()
                .map(|t| TextNet::from_weights(t, device))
                .collect(),
        }
    }

    /// The hand-written `f64` pass that serves (and measures early stopping) computes what the
    /// burn graph trained, padding and masks included, for windows of every length.
    #[test]
    fn the_served_forward_pass_is_the_trained_network() {
        let (x, y) = previous_event_data(40, 10, 7);
        let (test_x, _) = previous_event_data(6, 9, 8);
        for arch in ["cnn", "transformer"] {
            let m = fit_on(
                &x,
                &y,
                &[
                    ("entity", "card"),
                    ("architecture", arch),
                    ("epochs", "3"),
                    ("length", "5"),
                    ("layers", "2"),
                    ("kernel", "2"),
                    ("d_model", "8"),
                    ("heads", "2"),
                ],
            );
            let rows = rows_of(&test_x);
            let keys: Vec<Option<String>> = rows.iter().map(|r| entity_key(&r[0])).collect();
            let w = windows(&keys, 5);
            assert!(w.iter().any(|w| w.len() == 1) && w.iter().any(|w| w.len() == 5));
            assert_served_is_trained(&m, &rows, arch);
        }
    }
}
