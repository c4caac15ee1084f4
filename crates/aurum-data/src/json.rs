//! JSON parsed strictly: a duplicate object key anywhere is an error. Request bodies (every
//! JSON route of the server) and JSON Lines batch inputs go through [`parse_strict`].
//!
//! `serde_json::Value` keeps the last of two equal keys, so `{"age": 30, "age": 70}` would be
//! scored with 70 while a reviewer reading the audited body (or a proxy that keeps the first
//! key) sees 30. RFC 8259 leaves duplicates to the implementation; we refuse them, naming the
//! path of the second occurrence (`records[0].age`).
//!
//! [`parse_strict`] builds the same `Value` `serde_json::from_slice` would, through a visitor
//! that checks each object's keys as it inserts them. The path is a chain of borrowed segments
//! on the stack and is only rendered when a duplicate is found, so valid bodies pay for one
//! hash lookup per key and nothing else.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a body was refused.
#[derive(Debug)]
pub enum StrictError {
    /// Not JSON (serde_json's message gives line and column).
    Syntax(serde_json::Error),
    /// An object has the same key twice; the path of the second occurrence.
    DuplicateKey(String),
}

/// Parses `bytes` as a JSON value, refusing duplicate object keys at any depth.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, StrictError> {
    let duplicate = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = Node {
        at: &Segment::Root,
        duplicate: &duplicate,
    };
    let result = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match (result, duplicate.into_inner()) {
        (_, Some(path)) => Err(StrictError::DuplicateKey(path)),
        (Ok(v), None) => Ok(v),
        (Err(e), None) => Err(StrictError::Syntax(e)),
    }
}

/// Where a value sits in the document.
enum Segment<'a> {
    Root,
    Key(&'a Segment<'a>, &'a str),
    Index(&'a Segment<'a>, usize),
}

impl fmt::Display for Segment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Root => Ok(()),
            Segment::Key(Segment::Root, k) => write!(f, "{k}"),
            Segment::Key(parent, k) => write!(f, "{parent}.{k}"),
            Segment::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

#[derive(Clone, Copy)]
struct Node<'a> {
    at: &'a Segment<'a>,
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        loop {
            let at = Segment::Index(self.at, out.len());
            let child = Node {
                at: &at,
                duplicate: self.duplicate,
            };
            match seq.next_element_seed(child)? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let at = Segment::Key(self.at, &key);
            if out.contains_key(&key) {
                let path = at.to_string();
                let message = format!("duplicate key `{path}`");
                *self.duplicate.borrow_mut() = Some(path);
                return Err(de::Error::custom(message));
            }
            let value = map.next_value_seed(Node {
                at: &at,
                duplicate: self.duplicate,
            })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dup(s: &str) -> String {
        match parse_strict(s.as_bytes()) {
            Err(StrictError::DuplicateKey(p)) => p,
            other => panic!("expected a duplicate key in {s}, got {other:?}"),
        }
    }

    #[test]
    fn duplicates_are_named_by_path() {
        assert_eq!(dup(r#"{"a": 1, "a": 2}"#), "a");
        assert_eq!(
            dup(r#"{"records": [{"x": 1}, {"x": 1, "y": 2, "x": 3}]}"#),
            "records[1].x"
        );
        assert_eq!(dup(r#"[{"k": {"a": {}, "a": []}}]"#), "[0].k.a");
    }

    #[test]
    fn valid_documents_parse_as_serde_json_does() {
        for s in [
            r#"{"a": [1, -2, 3.5, 1e300, "s", true, null, {"b": {}}], "c": 18446744073709551615}"#,
            "[]",
            "  42 ",
            r#""\u00e9""#,
        ] {
            let ours = parse_strict(s.as_bytes()).unwrap();
            let theirs: Value = serde_json::from_str(s).unwrap();
            assert_eq!(ours, theirs, "{s}");
        }
    }

    #[test]
    fn syntax_errors_and_trailing_bytes_are_refused() {
        for s in ["", "{", r#"{"a": NaN}"#, "[1] [2]", r#"{"a":1}x"#] {
            assert!(
                matches!(parse_strict(s.as_bytes()), Err(StrictError::Syntax(_))),
                "{s}"
            );
        }
    }
}
