//! The binary tensor data extension (REST).
//!
//! A request whose `Inference-Header-Content-Length` header is N carries N bytes of JSON
//! followed by raw tensor bytes; each input with `parameters.binary_data_size = k` takes the
//! next k bytes, in the order of `inputs`. An output asked for with `parameters.binary_data`
//! (per output, or `parameters.binary_data_output` for the whole request) is returned the same
//! way: its JSON entry carries `parameters.binary_data_size` instead of `data`, and the
//! response's `Inference-Header-Content-Length` says where the JSON ends. This is the layout
//! tritonclient's HTTP client uses by default.

use aurum_service::ServiceError;
use axum::http::HeaderMap;

use super::tensor::invalid;

/// The header that splits the JSON part from the binary part, in requests and responses.
pub const HEADER: &str = "inference-header-content-length";

/// The JSON header length a request declares, if any.
pub fn header_length(headers: &HeaderMap) -> Result<Option<usize>, ServiceError> {
    let Some(v) = headers.get(HEADER) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .map(Some)
        .ok_or_else(|| {
            invalid(
                "invalid_header",
                format!("the {HEADER} header must be a byte count, got {v:?}"),
            )
        })
}

/// Splits a body into its JSON part and its binary part.
pub fn split(body: &[u8], header_len: Option<usize>) -> Result<(&[u8], &[u8]), ServiceError> {
    match header_len {
        None => Ok((body, &[])),
        Some(n) if n <= body.len() => Ok(body.split_at(n)),
        Some(n) => Err(invalid(
            "binary_size_mismatch",
            format!(
                "{HEADER} is {n} but the request body has only {} bytes",
                body.len()
            ),
        )),
    }
}

/// Hands out consecutive slices of the binary part to the inputs that declare one.
pub struct BinaryReader<'a> {
    rest: &'a [u8],
    total: usize,
    has_header: bool,
}

impl<'a> BinaryReader<'a> {
    pub fn new(binary: &'a [u8], has_header: bool) -> Self {
        BinaryReader {
            rest: binary,
            total: binary.len(),
            has_header,
        }
    }

    /// The next `size` bytes, for input `name`.
    pub fn take(&mut self, name: &str, size: u64) -> Result<&'a [u8], ServiceError> {
        if !self.has_header {
            return Err(invalid(
                "binary_size_mismatch",
                format!(
                    "input `{name}` declares binary_data_size, but the request has no {HEADER} header to say where its binary data starts"
                ),
            ));
        }
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size > self.rest.len() {
            return Err(invalid(
                "binary_size_mismatch",
                format!(
                    "input `{name}` declares binary_data_size {size}, but only {} of the request's {} binary bytes remain",
                    self.rest.len(),
                    self.total
                ),
            ));
        }
        let (head, tail) = self.rest.split_at(size);
        self.rest = tail;
        Ok(head)
    }

    /// Every binary byte must belong to an input.
    pub fn finish(self) -> Result<(), ServiceError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(invalid(
                "binary_size_mismatch",
                format!(
                    "the request carries {} bytes of binary data but its inputs' binary_data_size add up to {}",
                    self.total,
                    self.total - self.rest.len()
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_take() {
        let body = b"{\"a\":1}\x01\x02\x03";
        let (json, bin) = split(body, Some(7)).unwrap();
        assert_eq!(json, b"{\"a\":1}");
        let mut r = BinaryReader::new(bin, true);
        assert_eq!(r.take("x", 2).unwrap(), [1, 2]);
        assert!(r.take("y", 2).is_err());
        let mut r = BinaryReader::new(bin, true);
        r.take("x", 2).unwrap();
        assert!(r.finish().is_err());
        assert!(split(body, Some(99)).is_err());
        assert!(BinaryReader::new(&[], false).take("x", 0).is_err());
    }
}
