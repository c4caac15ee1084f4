//! The tensor codec: Open Inference Protocol data types and tensor contents, decoded from JSON
//! `data`, from raw little-endian bytes (the binary extension and gRPC `raw_input_contents`) and
//! encoded back to raw bytes.
//!
//! Every integer data type is held as `i64` (or `u64` for UINT64) and every floating type as
//! `f64`: tabular features become `Value::Integer`/`Value::Float` anyway, and one representation
//! per family keeps the conversion to rows in [`super::infer`] a single match. Range and
//! element-count checks happen here, so each problem names its tensor.

use aurum_service::ServiceError;

/// A tensor element type of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Fp32,
    Fp64,
    Bytes,
}

impl DataType {
    pub const ALL: [DataType; 13] = [
        DataType::Bool,
        DataType::Uint8,
        DataType::Uint16,
        DataType::Uint32,
        DataType::Uint64,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::Fp16,
        DataType::Fp32,
        DataType::Fp64,
        DataType::Bytes,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Uint8 => "UINT8",
            DataType::Uint16 => "UINT16",
            DataType::Uint32 => "UINT32",
            DataType::Uint64 => "UINT64",
            DataType::Int8 => "INT8",
            DataType::Int16 => "INT16",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Fp16 => "FP16",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
            DataType::Bytes => "BYTES",
        }
    }

    /// Parses a datatype name; an unknown one is a 400 naming the tensor and the valid names.
    pub fn parse(s: &str, tensor: &str) -> Result<DataType, ServiceError> {
        DataType::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = DataType::ALL.iter().map(|d| d.as_str()).collect();
                invalid(
                    "unknown_datatype",
                    format!(
                        "tensor `{tensor}` has unknown datatype `{s}`; expected one of {}",
                        names.join(", ")
                    ),
                )
            })
    }

    /// Bytes per element in the raw form; `None` for BYTES (length-prefixed).
    pub fn element_size(self) -> Option<usize> {
        match self {
            DataType::Bool | DataType::Uint8 | DataType::Int8 => Some(1),
            DataType::Uint16 | DataType::Int16 | DataType::Fp16 => Some(2),
            DataType::Uint32 | DataType::Int32 | DataType::Fp32 => Some(4),
            DataType::Uint64 | DataType::Int64 | DataType::Fp64 => Some(8),
            DataType::Bytes => None,
        }
    }

    /// The inclusive range of a signed or unsigned integer type, as `i128`.
    fn int_range(self) -> Option<(i128, i128)> {
        Some(match self {
            DataType::Int8 => (i8::MIN.into(), i8::MAX.into()),
            DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
            DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
            DataType::Int64 => (i64::MIN.into(), i64::MAX.into()),
            DataType::Uint8 => (0, u8::MAX.into()),
            DataType::Uint16 => (0, u16::MAX.into()),
            DataType::Uint32 => (0, u32::MAX.into()),
            DataType::Uint64 => (0, u64::MAX.into()),
            DataType::Bool | DataType::Fp16 | DataType::Fp32 | DataType::Fp64 | DataType::Bytes => {
                return None;
            }
        })
    }
}

/// Tensor elements, flattened in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    Bool(Vec<bool>),
    /// INT8..INT64 and UINT8..UINT32.
    Int(Vec<i64>),
    /// UINT64.
    UInt(Vec<u64>),
    /// FP16, FP32 and FP64.
    Float(Vec<f64>),
    /// BYTES: each element an arbitrary byte string (UTF-8 is checked where text is needed).
    Bytes(Vec<Vec<u8>>),
}

impl TensorData {
    pub fn len(&self) -> usize {
        match self {
            TensorData::Bool(v) => v.len(),
            TensorData::Int(v) => v.len(),
            TensorData::UInt(v) => v.len(),
            TensorData::Float(v) => v.len(),
            TensorData::Bytes(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A decoded input tensor whose element count matches its shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl Tensor {
    /// Checks the shape against the data: every dimension non-negative and the element count
    /// equal to the product of the dimensions.
    pub fn new(
        name: String,
        datatype: DataType,
        shape: &[i64],
        data: TensorData,
    ) -> Result<Tensor, ServiceError> {
        let shape = checked_shape(&name, shape)?;
        let expected = element_count(&name, &shape)?;
        if data.len() != expected {
            return Err(invalid(
                "shape_mismatch",
                format!(
                    "tensor `{name}` has shape {shape:?} ({expected} elements) but its data holds {} elements",
                    data.len()
                ),
            ));
        }
        Ok(Tensor {
            name,
            datatype,
            shape,
            data,
        })
    }
}

/// A shape from the wire: every dimension must be non-negative (no -1 in requests).
pub fn checked_shape(name: &str, shape: &[i64]) -> Result<Vec<usize>, ServiceError> {
    shape
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| {
                invalid(
                    "invalid_shape",
                    format!(
                        "tensor `{name}` has shape {shape:?}; every dimension must be 0 or more"
                    ),
                )
            })
        })
        .collect()
}

/// The number of elements a shape holds, refusing overflow.
pub fn element_count(name: &str, shape: &[usize]) -> Result<usize, ServiceError> {
    shape.iter().try_fold(1usize, |acc, &d| {
        acc.checked_mul(d).ok_or_else(|| {
            invalid(
                "invalid_shape",
                format!("tensor `{name}` has shape {shape:?}, which is too large"),
            )
        })
    })
}

pub(crate) fn invalid(code: &'static str, message: String) -> ServiceError {
    ServiceError::Invalid {
        code,
        field: None,
        message,
    }
}

// ----- raw bytes -----

/// Decodes `count` elements of `datatype` from raw little-endian bytes. BYTES elements are each
/// a 4-byte little-endian length followed by that many bytes. The bytes must hold exactly the
/// elements the shape asks for, no more and no less.
pub fn decode_raw(
    name: &str,
    datatype: DataType,
    count: usize,
    bytes: &[u8],
) -> Result<TensorData, ServiceError> {
    let Some(size) = datatype.element_size() else {
        // BYTES: length-prefixed elements, no fixed size.
        return decode_raw_bytes(name, count, bytes).map(TensorData::Bytes);
    };
    let needed = count.saturating_mul(size);
    if bytes.len() != needed {
        return Err(invalid(
            "binary_size_mismatch",
            format!(
                "tensor `{name}`: {} bytes of raw data, but {count} {} elements take {needed} bytes",
                bytes.len(),
                datatype.as_str()
            ),
        ));
    }
    let chunks = bytes.chunks_exact(size);
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(bytes.iter().map(|&b| b != 0).collect()),
        DataType::Uint8 => TensorData::Int(bytes.iter().map(|&b| i64::from(b)).collect()),
        DataType::Int8 => TensorData::Int(bytes.iter().map(|&b| i64::from(b as i8)).collect()),
        DataType::Uint16 => TensorData::Int(
            chunks
                .map(|c| i64::from(u16::from_le_bytes(arr(c))))
                .collect(),
        ),
        DataType::Int16 => TensorData::Int(
            chunks
                .map(|c| i64::from(i16::from_le_bytes(arr(c))))
                .collect(),
        ),
        DataType::Uint32 => TensorData::Int(
            chunks
                .map(|c| i64::from(u32::from_le_bytes(arr(c))))
                .collect(),
        ),
        DataType::Int32 => TensorData::Int(
            chunks
                .map(|c| i64::from(i32::from_le_bytes(arr(c))))
                .collect(),
        ),
        DataType::Uint64 => TensorData::UInt(chunks.map(|c| u64::from_le_bytes(arr(c))).collect()),
        DataType::Int64 => TensorData::Int(chunks.map(|c| i64::from_le_bytes(arr(c))).collect()),
        DataType::Fp16 => TensorData::Float(
            chunks
                .map(|c| f16_to_f64(u16::from_le_bytes(arr(c))))
                .collect(),
        ),
        DataType::Fp32 => TensorData::Float(
            chunks
                .map(|c| f64::from(f32::from_le_bytes(arr(c))))
                .collect(),
        ),
        DataType::Fp64 => TensorData::Float(chunks.map(|c| f64::from_le_bytes(arr(c))).collect()),
        DataType::Bytes => TensorData::Bytes(decode_raw_bytes(name, count, bytes)?),
    })
}

fn arr<const N: usize>(c: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(c);
    a
}

fn decode_raw_bytes(name: &str, count: usize, bytes: &[u8]) -> Result<Vec<Vec<u8>>, ServiceError> {
    let mut out = Vec::with_capacity(count.min(bytes.len() / 4));
    let mut rest = bytes;
    while !rest.is_empty() {
        let bad = |what: String| {
            invalid(
                "binary_size_mismatch",
                format!("tensor `{name}`: BYTES raw data is malformed: {what}"),
            )
        };
        if rest.len() < 4 {
            return Err(bad(format!(
                "element {} has a truncated 4-byte length prefix",
                out.len()
            )));
        }
        let len = u32::from_le_bytes(arr(&rest[..4])) as usize;
        rest = &rest[4..];
        if rest.len() < len {
            return Err(bad(format!(
                "element {} declares {len} bytes but only {} remain",
                out.len(),
                rest.len()
            )));
        }
        out.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
    if out.len() != count {
        return Err(invalid(
            "shape_mismatch",
            format!(
                "tensor `{name}`: its raw BYTES data holds {} elements but its shape needs {count}",
                out.len()
            ),
        ));
    }
    Ok(out)
}

/// IEEE 754 half precision to f64 (exact: every f16 is an f64).
pub fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 if frac == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        _ => sign * (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

/// Appends `values` as raw FP64 (little-endian).
pub fn encode_fp64(values: &[f64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 8);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Appends `values` as raw BOOL (one byte each, 0 or 1).
pub fn encode_bool(values: &[bool]) -> Vec<u8> {
    values.iter().map(|&b| u8::from(b)).collect()
}

/// Encodes strings as raw BYTES: each a 4-byte little-endian length and the bytes.
pub fn encode_bytes<S: AsRef<[u8]>>(values: &[S]) -> Vec<u8> {
    let total: usize = values.iter().map(|v| 4 + v.as_ref().len()).sum();
    let mut out = Vec::with_capacity(total);
    for v in values {
        let v = v.as_ref();
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

// ----- typed element lists (JSON `data` and gRPC `contents`) -----

/// A number as JSON gives it: exact integers stay integers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Int(i64),
    UInt(u64),
    Float(f64),
}

impl Num {
    fn describe(self) -> String {
        match self {
            Num::Int(i) => i.to_string(),
            Num::UInt(u) => u.to_string(),
            Num::Float(f) => f.to_string(),
        }
    }

    /// The exact integer value, when there is one (integral floats count).
    fn as_i128(self) -> Option<i128> {
        match self {
            Num::Int(i) => Some(i.into()),
            Num::UInt(u) => Some(u.into()),
            Num::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i128),
            Num::Float(_) => None,
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::UInt(u) => u as f64,
            Num::Float(f) => f,
        }
    }
}

/// Elements of one kind, flattened from (possibly nested) lists.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Elements {
    #[default]
    Empty,
    Bool(Vec<bool>),
    Num(Vec<Num>),
    Str(Vec<String>),
}

impl Elements {
    fn kind(&self) -> &'static str {
        match self {
            Elements::Empty => "nothing",
            Elements::Bool(_) => "booleans",
            Elements::Num(_) => "numbers",
            Elements::Str(_) => "strings",
        }
    }

    /// Converts the elements to `datatype`, checking each one (integers in range, integral
    /// values for integer types, the right kind of element for the type).
    pub fn into_data(self, name: &str, datatype: DataType) -> Result<TensorData, ServiceError> {
        let wrong = |got: &str| {
            invalid(
                "datatype_mismatch",
                format!(
                    "tensor `{name}` is {} but its data holds {got}",
                    datatype.as_str()
                ),
            )
        };
        match (datatype, self) {
            (DataType::Bool, Elements::Bool(v)) => Ok(TensorData::Bool(v)),
            (DataType::Bool, Elements::Empty) => Ok(TensorData::Bool(Vec::new())),
            (DataType::Bytes, Elements::Str(v)) => Ok(TensorData::Bytes(
                v.into_iter().map(String::into_bytes).collect(),
            )),
            (DataType::Bytes, Elements::Empty) => Ok(TensorData::Bytes(Vec::new())),
            (DataType::Fp64, Elements::Num(v)) => {
                Ok(TensorData::Float(v.into_iter().map(Num::as_f64).collect()))
            }
            // FP16 data is rounded to half precision (to nearest, ties to even), as binary FP16
            // tensors arrive; beyond ±65 504 it is infinite and refused like any non-finite
            // value.
            (DataType::Fp16, Elements::Num(v)) => Ok(TensorData::Float(
                v.into_iter()
                    .map(|n| half::f16::from_f64(n.as_f64()).to_f64())
                    .collect(),
            )),
            // FP32 data is rounded to f32, so JSON and binary FP32 requests score alike.
            (DataType::Fp32, Elements::Num(v)) => Ok(TensorData::Float(
                v.into_iter()
                    .map(|n| f64::from(n.as_f64() as f32))
                    .collect(),
            )),
            (DataType::Fp16 | DataType::Fp32 | DataType::Fp64, Elements::Empty) => {
                Ok(TensorData::Float(Vec::new()))
            }
            (DataType::Uint64, Elements::Num(v)) => {
                let ints = check_ints(name, datatype, &v)?;
                Ok(TensorData::UInt(
                    ints.into_iter().map(|i| i as u64).collect(),
                ))
            }
            (DataType::Uint64, Elements::Empty) => Ok(TensorData::UInt(Vec::new())),
            (
                DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Uint8
                | DataType::Uint16
                | DataType::Uint32,
                Elements::Num(v),
            ) => {
                let ints = check_ints(name, datatype, &v)?;
                Ok(TensorData::Int(
                    ints.into_iter().map(|i| i as i64).collect(),
                ))
            }
            (
                DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Uint8
                | DataType::Uint16
                | DataType::Uint32,
                Elements::Empty,
            ) => Ok(TensorData::Int(Vec::new())),
            (_, other) => Err(wrong(other.kind())),
        }
    }
}

fn check_ints(name: &str, datatype: DataType, v: &[Num]) -> Result<Vec<i128>, ServiceError> {
    let (lo, hi) = datatype.int_range().unwrap_or((i128::MIN, i128::MAX));
    v.iter()
        .enumerate()
        .map(|(i, n)| match n.as_i128() {
            Some(x) if (lo..=hi).contains(&x) => Ok(x),
            Some(_) => Err(invalid(
                "value_out_of_range",
                format!(
                    "tensor `{name}` element {i} is {}, outside the range of {}",
                    n.describe(),
                    datatype.as_str()
                ),
            )),
            None => Err(invalid(
                "datatype_mismatch",
                format!(
                    "tensor `{name}` element {i} is {}, not an integer as {} needs",
                    n.describe(),
                    datatype.as_str()
                ),
            )),
        })
        .collect()
}

// ----- JSON `data`: flattened while parsing, without building a serde_json::Value tree -----

impl<'de> serde::Deserialize<'de> for Elements {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut acc = Elements::Empty;
        d.deserialize_any(Flatten {
            acc: &mut acc,
            depth: 0,
        })?;
        Ok(acc)
    }
}

struct Flatten<'a> {
    acc: &'a mut Elements,
    depth: usize,
}

impl Flatten<'_> {
    fn push<E: serde::de::Error>(self, item: Item) -> Result<(), E> {
        if self.depth == 0 {
            return Err(E::custom("tensor `data` must be an array (flat or nested)"));
        }
        match (&mut *self.acc, item) {
            (Elements::Bool(v), Item::Bool(b)) => v.push(b),
            (Elements::Num(v), Item::Num(n)) => v.push(n),
            (Elements::Str(v), Item::Str(s)) => v.push(s),
            (acc @ Elements::Empty, item) => {
                *acc = match item {
                    Item::Bool(b) => Elements::Bool(vec![b]),
                    Item::Num(n) => Elements::Num(vec![n]),
                    Item::Str(s) => Elements::Str(vec![s]),
                }
            }
            (acc, item) => {
                return Err(E::custom(format!(
                    "tensor `data` mixes {} and {}",
                    acc.kind(),
                    item.kind()
                )));
            }
        }
        Ok(())
    }
}

enum Item {
    Bool(bool),
    Num(Num),
    Str(String),
}

impl Item {
    fn kind(&self) -> &'static str {
        match self {
            Item::Bool(_) => "booleans",
            Item::Num(_) => "numbers",
            Item::Str(_) => "strings",
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Flatten<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of booleans, numbers or strings (flat or nested)")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.push(Item::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.push(Item::Num(Num::Int(v)))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.push(Item::Num(match i64::try_from(v) {
            Ok(i) => Num::Int(i),
            Err(_) => Num::UInt(v),
        }))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        self.push(Item::Num(Num::Float(v)))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.push(Item::Str(v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<(), E> {
        self.push(Item::Str(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Err(E::custom(
            "tensor `data` holds null; the protocol has no missing-value element",
        ))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.depth + 1;
        let acc = self.acc;
        while seq
            .next_element_seed(Flatten {
                acc: &mut *acc,
                depth,
            })?
            .is_some()
        {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Elements, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn nested_and_flat_data_flatten_alike() {
        let flat = parse("[1, 2, 3, 4]").unwrap();
        let nested = parse("[[1, 2], [3, 4]]").unwrap();
        assert_eq!(flat, nested);
        assert_eq!(
            parse(r#"[["a"], ["b"]]"#).unwrap(),
            Elements::Str(vec!["a".into(), "b".into()])
        );
        assert_eq!(parse("[]").unwrap(), Elements::Empty);
        assert!(
            parse(r#"[1, "a"]"#)
                .unwrap_err()
                .to_string()
                .contains("mixes")
        );
        assert!(parse("[null]").unwrap_err().to_string().contains("null"));
        assert!(parse("3").unwrap_err().to_string().contains("array"));
    }

    #[test]
    fn integer_types_are_range_checked() {
        let e = parse("[127, -128]").unwrap();
        assert_eq!(
            e.clone().into_data("x", DataType::Int8).unwrap(),
            TensorData::Int(vec![127, -128])
        );
        let err = parse("[128]").unwrap().into_data("x", DataType::Int8);
        assert!(err.unwrap_err().to_string().contains("outside the range"));
        let err = parse("[-1]").unwrap().into_data("x", DataType::Uint32);
        assert!(err.unwrap_err().to_string().contains("outside the range"));
        let err = parse("[1.5]").unwrap().into_data("x", DataType::Int64);
        assert!(err.unwrap_err().to_string().contains("not an integer"));
        assert_eq!(
            parse("[18446744073709551615]")
                .unwrap()
                .into_data("x", DataType::Uint64)
                .unwrap(),
            TensorData::UInt(vec![u64::MAX])
        );
        let err = parse(r#"["a"]"#).unwrap().into_data("x", DataType::Fp64);
        assert!(err.unwrap_err().to_string().contains("holds strings"));
    }

    #[test]
    fn raw_round_trips_and_size_checks() {
        let v = [0.25f64, -3.5];
        assert_eq!(
            decode_raw("p", DataType::Fp64, 2, &encode_fp64(&v)).unwrap(),
            TensorData::Float(v.to_vec())
        );
        assert!(decode_raw("p", DataType::Fp64, 3, &encode_fp64(&v)).is_err());
        let s = encode_bytes(&["ab", "", "ü"]);
        assert_eq!(
            decode_raw("s", DataType::Bytes, 3, &s).unwrap(),
            TensorData::Bytes(vec![b"ab".to_vec(), vec![], "ü".as_bytes().to_vec()])
        );
        assert!(decode_raw("s", DataType::Bytes, 2, &s).is_err());
        assert!(decode_raw("s", DataType::Bytes, 3, &s[..s.len() - 1]).is_err());
        let i16s: Vec<u8> = [-2i16, 300].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(
            decode_raw("i", DataType::Int16, 2, &i16s).unwrap(),
            TensorData::Int(vec![-2, 300])
        );
    }

    #[test]
    fn half_precision() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert_eq!(f16_to_f64(0x3555), 0.333251953125);
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24));
        assert!(f16_to_f64(0x7e00).is_nan());
        assert_eq!(f16_to_f64(0x7c00), f64::INFINITY);
    }

    #[test]
    fn shape_must_match_data() {
        let t = Tensor::new(
            "a".into(),
            DataType::Int64,
            &[2, 1],
            TensorData::Int(vec![1]),
        );
        assert!(t.unwrap_err().to_string().contains("2 elements"));
        let t = Tensor::new("a".into(), DataType::Int64, &[-1], TensorData::Int(vec![1]));
        assert!(t.unwrap_err().to_string().contains("0 or more"));
    }
}
