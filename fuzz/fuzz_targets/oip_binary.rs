//! `/v2` inference bodies with the binary tensor extension: `decode_infer_request`, everything
//! `POST /v2/models/{name}/infer` reads from a body before a model is involved (the JSON part,
//! `binary_data_size` slices of the binary part, raw little-endian and length-prefixed BYTES
//! tensors, shapes against element counts).
//!
//! Input layout: the first line is the `Inference-Header-Content-Length` header value, parsed by
//! the server's own `header_length` (an empty first line means no header); the rest is the body.
//! A first line that is not a valid header value is skipped. Errors are expected; a panic is a
//! bug.
#![no_main]

use aurum_server::oip::binary::{HEADER, header_length};
use aurum_server::oip::decode_infer_request;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (line, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let mut headers = HeaderMap::new();
    if !line.is_empty() {
        let Ok(value) = HeaderValue::from_bytes(line) else {
            return;
        };
        headers.insert(HEADER, value);
    }
    let Ok(header_len) = header_length(&headers) else {
        return;
    };
    let _ = decode_infer_request(body, header_len);
});
