//! Neural model families trained in Rust with burn: `mlp` (tabular binary classification, with
//! an optional transformer encoder of free-text columns, [`text`]), `cnn` (images as pixel
//! columns, multiclass), `sequence` (an event classified from its entity's recent events,
//! [`sequence`]; its transformer shares the encoder block of [`attention`] with the text
//! encoder), `fraud_sequence` (the same network over the fraud engine's entity history,
//! [`fraud_sequence`]), and the `lstm` / `gru` forecasters of a
//! univariate series ([`recurrent`]), which plug into `aurum-forecast` as external forecasters;
//! and a tabular VAE ([`vae`]) that generates synthetic rows of one class (not a family).
//!
//! Why a crate of its own: burn is the heaviest dependency aurum has, and only this crate may
//! name it. The families implement the open model contract (`aurum-contract`), so the job
//! runner, registry, cache and servers train and serve them without knowing they are neural.
//!
//! Why training and serving are split: burn (its pure-Rust `flex` CPU backend with autodiff and
//! AdamW) trains; the fitted model keeps plain `f32` weights and serves them through a
//! hand-written forward pass ([`dense`], [`cnn`]) that is `Send + Sync`, needs no tensor runtime
//! and gives the same bits after every reload. Every random draw comes from one seeded ChaCha8
//! stream ([`train`]), so the same seed gives the same model.
//!
//! What this crate deliberately does not know: HTTP, storage, async runtimes, logging.

pub mod attention;
pub mod cnn;
pub mod dense;
pub mod fraud_sequence;
pub mod mlp;
pub mod recurrent;
pub mod sequence;
pub mod tabular;
pub mod text;
pub mod train;
pub mod vae;

pub use cnn::CnnFamily;
pub use fraud_sequence::FRAUD_SEQUENCE;
pub use mlp::MlpFamily;
pub use recurrent::{RecurrentForecaster, register_forecasters};
pub use sequence::SequenceFamily;
