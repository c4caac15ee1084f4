//! Integration tests of the service layer (one test binary, modules per topic).

mod bootstrap;
mod challenger_shared;
mod encryption;
mod forecast_jobs;
mod real_files;
mod sequence_family;
mod shared_stores;
mod text_features;
mod toy_family;
