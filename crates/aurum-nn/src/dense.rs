//! The stored weights of a network and the hand-written forward pass that serves them.
//!
//! Why serving does not run burn: a fitted model must be `Send + Sync`, answer one row in
//! microseconds and give the same bits after a reload on any machine. A forward pass over the
//! saved `f32` weights, accumulated in `f64` in a fixed order, does all three and needs no
//! tensor runtime; burn is used to train (autodiff, AdamW). The forward pass is also what early
//! stopping measures, so the validation loss is the loss of the model that is served.

use serde::{Deserialize, Serialize};

/// A fully connected layer: `out_j = bias_j + Σ_i in_i · weight[i · d_out + j]` (burn's
/// `[d_input, d_output]` row-major layout).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DenseLayer {
    pub d_in: usize,
    pub d_out: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl DenseLayer {
    /// Checks shapes and finiteness (what the forward pass relies on).
    pub fn check(&self, what: &str) -> Result<(), String> {
        if self.d_in == 0 || self.d_out == 0 {
            return Err(format!("{what} has an empty shape"));
        }
        if self.weight.len() != self.d_in * self.d_out || self.bias.len() != self.d_out {
            return Err(format!(
                "{what}: {} weights and {} biases for shape {}x{}",
                self.weight.len(),
                self.bias.len(),
                self.d_in,
                self.d_out
            ));
        }
        if self.weight.iter().chain(&self.bias).any(|w| !w.is_finite()) {
            return Err(format!("{what} has a non-finite weight"));
        }
        Ok(())
    }

    /// `out = bias + inᵀ · weight`, in a fixed order.
    pub fn forward(&self, input: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.extend(self.bias.iter().map(|&b| f64::from(b)));
        for (i, &x) in input.iter().enumerate() {
            if x == 0.0 {
                continue;
            }
            let row = &self.weight[i * self.d_out..(i + 1) * self.d_out];
            for (o, &w) in out.iter_mut().zip(row) {
                *o += x * f64::from(w);
            }
        }
    }

    /// `grad_in = weight · grad_out`.
    pub fn backward(&self, grad_out: &[f64], grad_in: &mut Vec<f64>) {
        grad_in.clear();
        grad_in.extend((0..self.d_in).map(|i| {
            let row = &self.weight[i * self.d_out..(i + 1) * self.d_out];
            row.iter()
                .zip(grad_out)
                .map(|(&w, &g)| f64::from(w) * g)
                .sum::<f64>()
        }));
    }
}

/// An embedding table: `rows` vectors of `dim` values, row-major.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingTable {
    pub rows: usize,
    pub dim: usize,
    pub weight: Vec<f32>,
}

impl EmbeddingTable {
    pub fn row(&self, index: usize) -> &[f32] {
        &self.weight[index * self.dim..(index + 1) * self.dim]
    }

    pub fn check(&self, what: &str) -> Result<(), String> {
        if self.rows == 0 || self.dim == 0 || self.weight.len() != self.rows * self.dim {
            return Err(format!("{what} has an inconsistent shape"));
        }
        if self.weight.iter().any(|w| !w.is_finite()) {
            return Err(format!("{what} has a non-finite weight"));
        }
        Ok(())
    }
}

/// A multi-layer perceptron with ReLU hidden layers and a linear output layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Perceptron {
    pub hidden: Vec<DenseLayer>,
    pub output: DenseLayer,
}

/// Activations kept by [`Perceptron::forward_keep`] for the backward pass.
#[derive(Debug, Default)]
pub struct Trace {
    /// The pre-activations of each hidden layer.
    pre: Vec<Vec<f64>>,
}

impl Perceptron {
    pub fn d_in(&self) -> usize {
        self.hidden.first().unwrap_or(&self.output).d_in
    }

    pub fn check(&self) -> Result<(), String> {
        let mut d = self.d_in();
        for (k, layer) in self.hidden.iter().chain([&self.output]).enumerate() {
            layer.check(&format!("layer {k}"))?;
            if layer.d_in != d {
                return Err(format!(
                    "layer {k} takes {} inputs but receives {d}",
                    layer.d_in
                ));
            }
            d = layer.d_out;
        }
        Ok(())
    }

    /// The outputs (logits) for one input vector.
    pub fn forward(&self, input: &[f64]) -> Vec<f64> {
        let mut a = input.to_vec();
        let mut b = Vec::new();
        for layer in &self.hidden {
            layer.forward(&a, &mut b);
            for x in &mut b {
                *x = x.max(0.0);
            }
            std::mem::swap(&mut a, &mut b);
        }
        self.output.forward(&a, &mut b);
        b
    }

    /// [`Perceptron::forward`], keeping what [`Perceptron::input_gradient`] needs.
    pub fn forward_keep(&self, input: &[f64], trace: &mut Trace) -> Vec<f64> {
        trace.pre.clear();
        let mut a = input.to_vec();
        let mut b = Vec::new();
        for layer in &self.hidden {
            layer.forward(&a, &mut b);
            trace.pre.push(b.clone());
            for x in &mut b {
                *x = x.max(0.0);
            }
            std::mem::swap(&mut a, &mut b);
        }
        self.output.forward(&a, &mut b);
        b
    }

    /// The gradient of output `k` with respect to the input, at the point `trace` recorded.
    pub fn input_gradient(&self, trace: &Trace, k: usize) -> Vec<f64> {
        let mut g: Vec<f64> = (0..self.output.d_in)
            .map(|i| f64::from(self.output.weight[i * self.output.d_out + k]))
            .collect();
        let mut next = Vec::new();
        for (layer, pre) in self.hidden.iter().zip(&trace.pre).rev() {
            for (gj, &z) in g.iter_mut().zip(pre) {
                if z <= 0.0 {
                    *gj = 0.0;
                }
            }
            layer.backward(&g, &mut next);
            std::mem::swap(&mut g, &mut next);
        }
        g
    }
}

/// `1 / (1 + e^-z)`, stable for large |z|.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// The softmax of logits, stable.
pub fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits.iter().map(|z| (z - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Binary log loss of a logit, `softplus(z) − y·z`.
pub fn logit_loss(z: f64, y: f64) -> f64 {
    z.max(0.0) - z * y + (-z.abs()).exp().ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> Perceptron {
        Perceptron {
            hidden: vec![DenseLayer {
                d_in: 2,
                d_out: 3,
                weight: vec![0.5, -1.0, 0.25, 1.5, 0.75, -0.5],
                bias: vec![0.1, 0.2, -0.3],
            }],
            output: DenseLayer {
                d_in: 3,
                d_out: 1,
                weight: vec![1.0, -2.0, 0.5],
                bias: vec![0.05],
            },
        }
    }

    #[test]
    fn forward_matches_a_hand_computation() {
        let x = [1.0, 2.0];
        // hidden pre: [0.1+0.5+3.0, 0.2-1.0+1.5, -0.3+0.25-1.0] = [3.6, 0.7, -1.05]
        let z = net().forward(&x)[0];
        let expected = 0.05 + 3.6 - 2.0 * 0.7;
        // The weights are f32: 0.1 and 0.05 are not exact.
        assert!((z - expected).abs() < 1e-6, "{z}");
        assert!(net().check().is_ok());
    }

    #[test]
    fn input_gradient_matches_finite_differences() {
        let n = net();
        let x = [0.3, -0.7];
        let mut trace = Trace::default();
        n.forward_keep(&x, &mut trace);
        let g = n.input_gradient(&trace, 0);
        for i in 0..2 {
            let mut up = x;
            up[i] += 1e-6;
            let mut down = x;
            down[i] -= 1e-6;
            let fd = (n.forward(&up)[0] - n.forward(&down)[0]) / 2e-6;
            assert!((fd - g[i]).abs() < 1e-6, "{i}: {fd} vs {}", g[i]);
        }
    }

    #[test]
    fn shapes_are_checked() {
        let mut n = net();
        n.output.weight.pop();
        assert!(n.check().is_err());
        let mut n = net();
        n.hidden[0].bias[0] = f32::NAN;
        assert!(n.check().is_err());
    }
}
