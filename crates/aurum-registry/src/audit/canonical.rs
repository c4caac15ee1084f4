//! The canonical JSON encoding that every audit hash is computed over.
//!
//! A hash chain is only as good as the byte string under the hash: two writers (or one writer and
//! a later verifier, possibly a different backend or a newer `serde_json`) must produce exactly the
//! same bytes for the same logical content. So the encoding is defined here, by hand, and pinned
//! by a golden test, instead of being whatever `serde_json::to_string` happens to print:
//!
//! - no whitespace anywhere;
//! - object keys sorted by their UTF-8 bytes, recursively;
//! - strings quoted with `"`, escaping only `"`, `\` and control characters (`\b \f \n \r \t`,
//!   others as `\u00XX` with lowercase hex); everything else, non-ASCII included, is written as is;
//! - integers (anything that fits `i64` or `u64`) in plain decimal;
//! - other numbers as the shortest round-tripping `f64` in Rust's `{:e}` form (`1e-1`, `1.5e0`),
//!   so a float never silently becomes an integer and the text parses back to the same value.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The encoding of an audit record's hashed fields, in fixed order, as one canonical JSON array:
/// `[format_version, seq, ts, event, actor, request_id, model, version, input_sha256, details,
/// prev_hash]`, absent optional fields as `null`.
#[derive(Debug, Clone, Copy)]
pub(super) struct HashedFields<'a> {
    pub format_version: i64,
    pub seq: u64,
    pub ts: &'a str,
    pub event: &'a str,
    pub actor: &'a str,
    pub request_id: Option<&'a str>,
    pub model: Option<&'a str>,
    pub version: Option<i64>,
    pub input_sha256: Option<&'a str>,
    /// `details` already in canonical form ([`canonical_json`]).
    pub details: &'a str,
    pub prev_hash: &'a str,
}

impl HashedFields<'_> {
    /// The canonical byte string the record hash is taken over.
    pub(super) fn encode(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push('[');
        write_i64(&mut out, self.format_version);
        out.push(',');
        write_u64(&mut out, self.seq);
        for text in [
            Some(self.ts),
            Some(self.event),
            Some(self.actor),
            self.request_id,
            self.model,
        ] {
            out.push(',');
            write_opt_str(&mut out, text);
        }
        out.push(',');
        match self.version {
            Some(version) => write_i64(&mut out, version),
            None => out.push_str("null"),
        }
        out.push(',');
        write_opt_str(&mut out, self.input_sha256);
        out.push(',');
        out.push_str(self.details);
        out.push(',');
        write_str(&mut out, self.prev_hash);
        out.push(']');
        out
    }

    /// SHA-256 (lowercase hex) of [`encode`](Self::encode).
    pub(super) fn hash(&self) -> String {
        aurum_core::sha256_hex(self.encode().as_bytes())
    }
}

/// `value` in the canonical encoding described in the module docs.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// SHA-256 (lowercase hex) of the canonical encoding of a prediction input.
///
/// This is what the audit log stores by default instead of the input itself: it proves *which*
/// input was scored (anyone holding the input can recompute it) without keeping personal data in
/// the log. Key order does not matter: `{"a":1,"b":2}` and `{"b":2,"a":1}` hash the same.
pub fn hash_input(canonical_json: &Value) -> String {
    aurum_core::sha256_hex(self::canonical_json(canonical_json).as_bytes())
}

/// Appends `text` as a canonical JSON string, for callers that write a canonical form directly
/// instead of building a [`Value`] tree first (the prediction input hash, per request).
pub fn push_str(out: &mut String, text: &str) {
    write_str(out, text);
}

/// Appends a finite `f64` as a canonical JSON float (shortest round trip, `{:e}` form: `3e1`,
/// `1.5e0`), exactly as [`canonical_json`] writes a non-integer number.
pub fn push_f64(out: &mut String, value: f64) {
    debug_assert!(value.is_finite());
    let _ = write!(out, "{value:e}");
}

/// Appends an integer in canonical (plain decimal) form.
pub fn push_i64(out: &mut String, value: i64) {
    write_i64(out, value);
}

/// The top-level fields of `input` named in `fields_in_clear`, and nothing else.
///
/// Fields not named are omitted, not replaced by placeholders, so nothing about their values
/// (not even their length) reaches the log. With the default, an empty `fields_in_clear`, the
/// result is `{}`: only the input hash ([`hash_input`]) is stored. Names that are not in `input`
/// are skipped; a non-object `input` gives `{}`.
pub fn mask_fields(input: &Value, fields_in_clear: &[String]) -> Value {
    let mut kept = Map::new();
    if let Value::Object(fields) = input {
        for name in fields_in_clear {
            if let Some(value) = fields.get(name) {
                kept.insert(name.clone(), value.clone());
            }
        }
    }
    Value::Object(kept)
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => {
            if let Some(int) = number.as_i64() {
                write_i64(out, int);
            } else if let Some(uint) = number.as_u64() {
                write_u64(out, uint);
            } else if let Some(float) = number.as_f64() {
                // `serde_json` never holds NaN or infinities, so `{:e}` is valid JSON here.
                let _ = write!(out, "{float:e}");
            } else {
                // Unreachable without `arbitrary_precision`; with it, keep the literal.
                out.push_str(&number.to_string());
            }
        }
        Value::String(text) => write_str(out, text),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            let mut entries: Vec<(&String, &Value)> = fields.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, key);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_i64(out: &mut String, value: i64) {
    let _ = write!(out, "{value}");
}

fn write_u64(out: &mut String, value: u64) {
    let _ = write!(out, "{value}");
}

fn write_opt_str(out: &mut String, text: Option<&str>) {
    match text {
        Some(text) => write_str(out, text),
        None => out.push_str("null"),
    }
}

fn write_str(out: &mut String, text: &str) {
    out.push('"');
    // Copy runs of characters that need no escape in one go; escapes are rare.
    let mut start = 0;
    for (i, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn object_keys_are_sorted_recursively() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"d":[{"y":1,"x":2}],"c":3}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"c":3,"d":[{"x":2,"y":1}]},"b":1}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":3,"d":[{"x":2,"y":1}]},"b":1}"#
        );
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(hash_input(&a), hash_input(&b));
    }

    #[test]
    fn numbers_strings_and_literals_have_one_spelling() {
        let value = json!({
            "int": -7,
            "big": u64::MAX,
            "float": 0.1,
            "whole_float": 100.0,
            "tiny": 1.5e-7,
            "text": "quote \" backslash \\ newline \n bell \u{7} é",
            "flags": [true, false, null],
        });
        assert_eq!(
            canonical_json(&value),
            concat!(
                r#"{"big":18446744073709551615,"flags":[true,false,null],"float":1e-1,"#,
                r#""int":-7,"text":"quote \" backslash \\ newline \n bell \u0007 é","#,
                r#""tiny":1.5e-7,"whole_float":1e2}"#
            )
        );
    }

    #[test]
    fn canonical_text_parses_back_to_the_same_encoding() {
        let value = json!({"x": [0.1, 2.5e300, -0.0, 3, "é\u{1f}"], "m": {"z": null}});
        let text = canonical_json(&value);
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(canonical_json(&reparsed), text);
    }

    /// Pins the record encoding: changing it breaks every stored chain, so it needs a new
    /// `format_version`, not an edit here.
    #[test]
    fn record_encoding_is_pinned() {
        let details = json!({"latency_us": 812, "outputs": {"score": 0.25}});
        let fields = HashedFields {
            format_version: 1,
            seq: 42,
            ts: "2025-01-02T03:04:05.123456Z",
            event: "prediction",
            actor: "ops-key",
            request_id: Some("req-1"),
            model: Some("churn"),
            version: Some(3),
            input_sha256: None,
            details: &canonical_json(&details),
            prev_hash: &"0".repeat(64),
        };
        let expected = concat!(
            r#"[1,42,"2025-01-02T03:04:05.123456Z","prediction","ops-key","req-1","churn",3,null,"#,
            r#"{"latency_us":812,"outputs":{"score":2.5e-1}},"#,
            r#""0000000000000000000000000000000000000000000000000000000000000000"]"#
        );
        assert_eq!(fields.encode(), expected);
        assert_eq!(fields.hash(), aurum_core::sha256_hex(expected.as_bytes()));
    }

    #[test]
    fn mask_fields_keeps_only_named_fields() {
        let input = json!({"age": 41, "income": 52000.0, "name": "Ada"});
        assert_eq!(mask_fields(&input, &[]), json!({}));
        assert_eq!(
            mask_fields(&input, &["age".to_owned(), "missing".to_owned()]),
            json!({"age": 41})
        );
        assert_eq!(mask_fields(&json!([1, 2]), &["age".to_owned()]), json!({}));
    }
}
