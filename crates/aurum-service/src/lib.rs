//! The application service layer shared by the REST server and the CLI: datasets, training jobs, model cache, prediction, audit. No HTTP.
