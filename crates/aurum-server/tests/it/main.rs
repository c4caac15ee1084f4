//! Integration tests of the HTTP API: the router in process (most tests) and a real socket.

mod api;
mod common;
mod console;
mod e2e;
mod events;
mod forecast_calendar;
mod keys;
mod monitoring;
mod oip;
mod recommend;
mod synthesize;
mod tls;
