//! Integration tests for aurum-fraud, one binary (see the workspace's testing notes).

mod common;
mod durable;
mod handbook;
mod replay;
