//! The only crate that speaks HTTP: axum router, wire types, auth, error mapping, OpenAPI, metrics.
