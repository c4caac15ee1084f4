//! The model families, one module each. Every model is a plain serde struct holding its
//! parameters' results and the [`crate::History`] it was fitted on, and implements
//! [`crate::Recommender`].

pub mod als;
pub mod blend;
pub mod bpr;
pub mod content;
pub mod ease;
pub mod hybrid;
pub mod item_knn;
pub mod popularity;
pub mod random_walk;
