//! Model families behind one contract (fit, predict, explain, save, load), preprocessing pipelines, versioned artifacts and evaluation metrics.
