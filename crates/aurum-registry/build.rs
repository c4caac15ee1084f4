//! Rebuilds the crate when a migration file is added or changed: `sqlx_macros::migrate!` embeds
//! `migrations/` at compile time, and cargo does not otherwise notice new files there.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
