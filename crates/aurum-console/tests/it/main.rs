//! Integration tests of the console: its router in process over a real platform.

mod console;
