//! Route handlers, one module per resource. Handlers are thin: parse, check the permission,
//! call the [`aurum_service::Platform`], render.

pub mod admin;
pub mod batch;
pub mod datasets;
pub mod events;
pub mod flows;
pub mod forecast;
pub mod models;
pub mod predict;
pub mod recommend;
pub mod training;
