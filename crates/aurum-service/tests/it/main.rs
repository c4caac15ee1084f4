//! Integration tests of the service layer (one test binary, modules per topic).

mod real_files;
mod toy_family;
