//! Dataset ingest (CSV, Parquet), schema inference, column profiles, validation and splits.
