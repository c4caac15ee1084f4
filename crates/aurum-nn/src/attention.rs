//! The pre-norm transformer encoder block, written twice: in burn tensor ops for training and as
//! an `f64` forward pass over the stored `f32` weights for serving.
//!
//! Two networks use it: the `sequence` family's transformer (a window of events) and the `mlp`'s
//! text encoder (the tokens of a free-text cell, [`crate::text`]). Both train the [`Block`] and
//! serve the [`EncoderBlock`]; keeping the pair in one module is what keeps them the same
//! function (each family tests its served pass against its burn graph to 1e-5).
//!
//! The block: `x + out(attention(norm1(x)))`, then `x + ff_out(relu(ff_in(norm2(x))))`, with
//! `heads` attention heads of width `d / heads`, scaled dot products, and padded keys masked (an
//! additive [`MASKED_SCORE`] in training; the served pass sees only the valid positions).
//!
//! Why the block is written here rather than taken from burn's `TransformerEncoder`: serving runs
//! a hand-written forward pass over the saved `f32` weights (see the crate docs), which must
//! compute exactly what training computed, and burn's layer draws its dropout from burn's own
//! random generator, which would break the seeded reproducibility of the crate. The block is a
//! few tensor operations, and the same few lines in `f64` serve it.

use aurum_contract::ModelError;
use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::{relu, softmax as burn_softmax};
use serde::{Deserialize, Serialize};

use crate::dense::{DenseLayer, softmax};
use crate::train;

/// Layer-norm epsilon (PyTorch's and burn's default).
pub const NORM_EPSILON: f64 = 1e-5;

/// Added to the attention scores of padded keys: their weight is exactly zero in `f32`.
pub const MASKED_SCORE: f32 = -1e9;

// ---------------------------------------------------------------------------------------------
// Stored weights and the served forward pass.

/// A layer norm's scale and shift.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NormLayer {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

impl NormLayer {
    /// Checks the width and finiteness.
    pub fn check(&self, d: usize, what: &str) -> Result<(), String> {
        if self.gamma.len() != d || self.beta.len() != d {
            return Err(format!("{what} does not have width {d}"));
        }
        if self.gamma.iter().chain(&self.beta).any(|w| !w.is_finite()) {
            return Err(format!("{what} has a non-finite weight"));
        }
        Ok(())
    }

    /// `(x − mean) / √(var + ε) · γ + β` with the population variance.
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let inv = 1.0 / (var + NORM_EPSILON).sqrt();
        x.iter()
            .zip(self.gamma.iter().zip(&self.beta))
            .map(|(v, (&g, &b))| (v - mean) * inv * f64::from(g) + f64::from(b))
            .collect()
    }

    /// Weights and biases.
    pub fn n_parameters(&self) -> usize {
        self.gamma.len() + self.beta.len()
    }
}

/// One pre-norm transformer encoder block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderBlock {
    pub norm1: NormLayer,
    pub query: DenseLayer,
    pub key: DenseLayer,
    pub value: DenseLayer,
    pub out: DenseLayer,
    pub norm2: NormLayer,
    pub ff_in: DenseLayer,
    pub ff_out: DenseLayer,
}

impl EncoderBlock {
    /// Checks every shape against the width `d` and finiteness.
    pub fn check(&self, d: usize, what: &str) -> Result<(), String> {
        self.norm1.check(d, &format!("{what} norm 1"))?;
        self.norm2.check(d, &format!("{what} norm 2"))?;
        for (name, l) in [
            ("query", &self.query),
            ("key", &self.key),
            ("value", &self.value),
            ("out", &self.out),
        ] {
            l.check(&format!("{what} {name}"))?;
            if l.d_in != d || l.d_out != d {
                return Err(format!("{what} {name} is not {d}×{d}"));
            }
        }
        self.ff_in.check(&format!("{what} ff_in"))?;
        self.ff_out.check(&format!("{what} ff_out"))?;
        if self.ff_in.d_in != d || self.ff_out.d_out != d || self.ff_in.d_out != self.ff_out.d_in {
            return Err(format!("{what} feed-forward does not fit width {d}"));
        }
        Ok(())
    }

    /// Weights and biases.
    pub fn n_parameters(&self) -> usize {
        [
            &self.query,
            &self.key,
            &self.value,
            &self.out,
            &self.ff_in,
            &self.ff_out,
        ]
        .into_iter()
        .map(|l| l.weight.len() + l.bias.len())
        .sum::<usize>()
            + self.norm1.n_parameters()
            + self.norm2.n_parameters()
    }

    /// The block over the valid positions `h` (in order), in place.
    pub fn forward(&self, h: &mut [Vec<f64>], heads: usize) {
        let d = self.query.d_out;
        let dh = d / heads;
        let scale = 1.0 / (dh as f64).sqrt();
        let (mut q, mut k, mut v) = (Vec::new(), Vec::new(), Vec::new());
        let mut buf = Vec::new();
        for x in h.iter() {
            let a = self.norm1.forward(x);
            self.query.forward(&a, &mut buf);
            q.push(buf.clone());
            self.key.forward(&a, &mut buf);
            k.push(buf.clone());
            self.value.forward(&a, &mut buf);
            v.push(buf.clone());
        }
        let n = h.len();
        let mut scores = vec![0.0; n];
        let mut context = vec![0.0; d];
        for (t, x) in h.iter_mut().enumerate() {
            context.fill(0.0);
            for head in 0..heads {
                let r = head * dh..(head + 1) * dh;
                for (s, score) in scores.iter_mut().enumerate() {
                    *score = q[t][r.clone()]
                        .iter()
                        .zip(&k[s][r.clone()])
                        .map(|(a, b)| a * b)
                        .sum::<f64>()
                        * scale;
                }
                let p = softmax(&scores);
                for (s, &w) in p.iter().enumerate() {
                    for (c, &vv) in context[r.clone()].iter_mut().zip(&v[s][r.clone()]) {
                        *c += w * vv;
                    }
                }
            }
            self.out.forward(&context, &mut buf);
            for (xi, o) in x.iter_mut().zip(&buf) {
                *xi += o;
            }
            let f = self.norm2.forward(x);
            let mut hidden = Vec::new();
            self.ff_in.forward(&f, &mut hidden);
            for z in &mut hidden {
                *z = z.max(0.0);
            }
            self.ff_out.forward(&hidden, &mut buf);
            for (xi, o) in x.iter_mut().zip(&buf) {
                *xi += o;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Training.

/// A layer norm as burn trains it.
#[derive(Module, Debug)]
pub(crate) struct Norm {
    pub(crate) gamma: Param<Tensor<1>>,
    pub(crate) beta: Param<Tensor<1>>,
}

impl Norm {
    /// γ = 1, β = 0 (PyTorch's initialisation).
    pub(crate) fn new(d: usize, device: &Device) -> Self {
        Self {
            gamma: Param::from_data(TensorData::new(vec![1.0f32; d], [d]), device),
            beta: Param::from_data(TensorData::new(vec![0.0f32; d], [d]), device),
        }
    }

    /// A norm holding stored weights (for comparing the two forward passes).
    #[cfg(test)]
    pub(crate) fn from_weights(n: &NormLayer, device: &Device) -> Self {
        Self {
            gamma: Param::from_data(TensorData::new(n.gamma.clone(), [n.gamma.len()]), device),
            beta: Param::from_data(TensorData::new(n.beta.clone(), [n.beta.len()]), device),
        }
    }

    /// Normalises the last dimension of `[b, l, d]`.
    pub(crate) fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [_, _, d] = x.dims();
        let mean = x.clone().mean_dim(2);
        let centred = x - mean;
        let var = (centred.clone() * centred.clone()).mean_dim(2);
        let normed = centred / var.add_scalar(NORM_EPSILON).sqrt();
        normed * self.gamma.val().reshape([1, 1, d]) + self.beta.val().reshape([1, 1, d])
    }

    pub(crate) fn snapshot(&self) -> Result<NormLayer, ModelError> {
        Ok(NormLayer {
            gamma: train::read_f32(self.gamma.val())?,
            beta: train::read_f32(self.beta.val())?,
        })
    }
}

/// An encoder block as burn trains it.
#[derive(Module, Debug)]
pub(crate) struct Block {
    pub(crate) norm1: Norm,
    pub(crate) query: Linear,
    pub(crate) key: Linear,
    pub(crate) value: Linear,
    pub(crate) out: Linear,
    pub(crate) norm2: Norm,
    pub(crate) ff_in: Linear,
    pub(crate) ff_out: Linear,
}

impl Block {
    /// A block of width `d` with a feed-forward of `2·d`, its linear layers drawn from `rng`
    /// (PyTorch's defaults) in the order query, key, value, out, ff_in, ff_out.
    pub(crate) fn seeded(d: usize, rng: &mut train::SeededRng, device: &Device) -> Self {
        let mut linear = |d_in: usize, d_out: usize| {
            train::to_burn_linear(&train::linear_init(d_in, d_out, rng), device)
        };
        Self {
            norm1: Norm::new(d, device),
            query: linear(d, d),
            key: linear(d, d),
            value: linear(d, d),
            out: linear(d, d),
            norm2: Norm::new(d, device),
            ff_in: linear(d, 2 * d),
            ff_out: linear(2 * d, d),
        }
    }

    /// A block holding stored weights (for comparing the two forward passes).
    #[cfg(test)]
    pub(crate) fn from_weights(b: &EncoderBlock, device: &Device) -> Self {
        let linear = |l: &DenseLayer| train::to_burn_linear(l, device);
        Self {
            norm1: Norm::from_weights(&b.norm1, device),
            query: linear(&b.query),
            key: linear(&b.key),
            value: linear(&b.value),
            out: linear(&b.out),
            norm2: Norm::from_weights(&b.norm2, device),
            ff_in: linear(&b.ff_in),
            ff_out: linear(&b.ff_out),
        }
    }

    /// The block over `[b, l, d]`; `key_bias` is `[b, 1, 1, l]`: 0 for valid keys and
    /// [`MASKED_SCORE`] for padded ones.
    pub(crate) fn forward(&self, x: Tensor<3>, key_bias: Tensor<4>, heads: usize) -> Tensor<3> {
        let [b, l, d] = x.dims();
        let dh = d / heads;
        let a = self.norm1.forward(x.clone());
        let split = |t: Tensor<3>| t.reshape([b, l, heads, dh]).swap_dims(1, 2);
        let q = split(self.query.forward(a.clone()));
        let k = split(self.key.forward(a.clone()));
        let v = split(self.value.forward(a));
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (dh as f64).sqrt())
            + key_bias;
        let context = burn_softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([b, l, d]);
        let x = x + self.out.forward(context);
        let f = relu(self.ff_in.forward(self.norm2.forward(x.clone())));
        x.clone() + self.ff_out.forward(f)
    }

    pub(crate) fn snapshot(&self) -> Result<EncoderBlock, ModelError> {
        Ok(EncoderBlock {
            norm1: self.norm1.snapshot()?,
            query: train::from_burn_linear(&self.query)?,
            key: train::from_burn_linear(&self.key)?,
            value: train::from_burn_linear(&self.value)?,
            out: train::from_burn_linear(&self.out)?,
            norm2: self.norm2.snapshot()?,
            ff_in: train::from_burn_linear(&self.ff_in)?,
            ff_out: train::from_burn_linear(&self.ff_out)?,
        })
    }
}
