//! Turning a target column into a 0/1 [`BinaryTarget`].
//!
//! Which label is "positive" decides what every probability, threshold and metric downstream
//! means, so the choice is made here, once, by a fixed and documented rule (see
//! [`binary_target`]) rather than by whatever label happens to sort first. In credit risk the
//! positive class is the event being predicted — default, `bad` — and the rule picks it for the
//! usual spellings without configuration.

use std::borrow::Cow;

use aurum_core::{BinaryTarget, ClassTarget, ColumnData, ColumnType, NumericTarget, Table};

use crate::DataError;

/// Labels (compared case-insensitively) that name the event a model predicts.
pub const POSITIVE_LABELS: &[&str] = &[
    "1",
    "true",
    "yes",
    "y",
    "bad",
    "default",
    "defaulted",
    "fraud",
    "positive",
    "churn",
];

/// Encodes column `column` of `table` as a binary 0/1 target.
///
/// The positive class (encoded 1) is, in order of precedence:
/// 1. the explicit `positive` label, if given (it must be one of the column's two labels; for a
///    numeric column `1` and `1.0` are the same label, for a boolean column case is ignored);
/// 2. `true` for a boolean column;
/// 3. `1` for an integer or float column holding exactly 0 and 1;
/// 4. the one label found in [`POSITIVE_LABELS`] (case-insensitive), if exactly one of the two
///    labels is in that list (so `good`/`bad` gives `bad`, `no`/`yes` gives `yes`);
/// 5. otherwise the minority class, and on a tie the lexicographically greater label.
///
/// Labels are the cells' text: strings as they are, numbers as printed (`1`, `0.5`), booleans as
/// `true`/`false`.
///
/// # Errors
///
/// [`DataError::UnknownColumn`] (listing the available columns), [`DataError::MissingTarget`]
/// and [`DataError::NonBinaryTarget`] naming the 1-based data row and the CSV line (row + 1, as
/// line 1 is the header), [`DataError::SingleClass`], [`DataError::UnknownLabel`], and
/// [`DataError::NoDataRows`] for an empty table.
pub fn binary_target(
    table: &Table,
    column: &str,
    positive: Option<&str>,
) -> Result<BinaryTarget, DataError> {
    let col = table
        .column(column)
        .ok_or_else(|| DataError::UnknownColumn {
            name: column.to_string(),
            context: "target",
            available: table.columns().iter().map(|c| c.name.clone()).collect(),
        })?;
    let data = &col.data;
    let labels: Box<dyn Iterator<Item = Option<Cow<'_, str>>>> = match data {
        ColumnData::Categorical(v) | ColumnData::Text(v) => {
            Box::new(v.iter().map(|s| s.as_deref().map(Cow::Borrowed)))
        }
        _ => Box::new(
            (0..data.len())
                .map(|row| (!data.is_missing(row)).then(|| Cow::Owned(data.get(row).to_string()))),
        ),
    };

    let mut seen: Vec<String> = Vec::with_capacity(2);
    let mut class: Vec<u8> = Vec::with_capacity(data.len());
    for (i, label) in labels.enumerate() {
        let row = i + 1;
        let Some(label) = label else {
            return Err(DataError::MissingTarget {
                column: column.to_string(),
                row,
                line: row + 1,
            });
        };
        let index = match seen.iter().position(|s| *s == label) {
            Some(index) => index,
            None if seen.len() < 2 => {
                seen.push(label.into_owned());
                seen.len() - 1
            }
            None => {
                return Err(DataError::NonBinaryTarget {
                    column: column.to_string(),
                    row,
                    line: row + 1,
                    value: crate::infer::excerpt(&label),
                    first: seen[0].clone(),
                    second: seen[1].clone(),
                });
            }
        };
        class.push(index as u8);
    }
    let labels: [String; 2] = match seen.as_slice() {
        [] => return Err(DataError::NoDataRows),
        [only] => {
            return Err(DataError::SingleClass {
                column: column.to_string(),
                label: only.clone(),
            });
        }
        [a, b, ..] => [a.clone(), b.clone()],
    };
    let counts = [
        class.iter().filter(|&&c| c == 0).count(),
        class.iter().filter(|&&c| c == 1).count(),
    ];
    let pos = positive_index(&labels, counts, data.column_type(), positive).ok_or_else(|| {
        DataError::UnknownLabel {
            column: column.to_string(),
            label: positive.unwrap_or_default().to_string(),
            labels: labels.clone(),
        }
    })?;
    let y = class
        .iter()
        .map(|&c| if usize::from(c) == pos { 1.0 } else { 0.0 })
        .collect();
    let [a, b] = labels;
    let (positive_label, negative_label) = if pos == 0 { (a, b) } else { (b, a) };
    Ok(BinaryTarget {
        column: column.to_string(),
        y,
        positive_label,
        negative_label,
    })
}

/// Index (0 or 1) of the positive label; `None` only when an explicit label matches neither.
fn positive_index(
    labels: &[String; 2],
    counts: [usize; 2],
    ty: ColumnType,
    explicit: Option<&str>,
) -> Option<usize> {
    let number = |s: &str| s.trim().parse::<f64>().ok();
    if let Some(want) = explicit {
        return labels.iter().position(|l| {
            l == want
                || (ty.is_numeric() && number(l).is_some() && number(l) == number(want))
                || (ty == ColumnType::Boolean && l.eq_ignore_ascii_case(want.trim()))
        });
    }
    if ty == ColumnType::Boolean {
        return labels.iter().position(|l| l == "true");
    }
    if ty.is_numeric() {
        let values = [number(&labels[0]), number(&labels[1])];
        if values.contains(&Some(0.0)) && values.contains(&Some(1.0)) {
            return values.iter().position(|v| *v == Some(1.0));
        }
    }
    let listed = |l: &str| {
        POSITIVE_LABELS
            .iter()
            .any(|p| l.trim().eq_ignore_ascii_case(p))
    };
    match (listed(&labels[0]), listed(&labels[1])) {
        (true, false) => return Some(0),
        (false, true) => return Some(1),
        _ => {}
    }
    Some(match counts[0].cmp(&counts[1]) {
        std::cmp::Ordering::Less => 0,
        std::cmp::Ordering::Greater => 1,
        std::cmp::Ordering::Equal => usize::from(labels[1] > labels[0]),
    })
}

fn target_column<'a>(table: &'a Table, column: &str) -> Result<&'a ColumnData, DataError> {
    table
        .column(column)
        .map(|c| &c.data)
        .ok_or_else(|| DataError::UnknownColumn {
            name: column.to_string(),
            context: "target",
            available: table.columns().iter().map(|c| c.name.clone()).collect(),
        })
}

/// The numeric target of a regression or forecasting task: the column's values, NaN where a cell
/// is missing. A column that is not numeric is [`DataError::NonNumericTarget`].
pub fn numeric_target(table: &Table, column: &str) -> Result<NumericTarget, DataError> {
    let y = match target_column(table, column)? {
        ColumnData::Float(v) => v.iter().map(|x| x.unwrap_or(f64::NAN)).collect(),
        ColumnData::Integer(v) => v.iter().map(|x| x.map_or(f64::NAN, |i| i as f64)).collect(),
        other => {
            return Err(DataError::NonNumericTarget {
                column: column.to_string(),
                ty: other.column_type().to_string(),
            });
        }
    };
    Ok(NumericTarget {
        column: column.to_string(),
        y,
    })
}

/// Most classes a multiclass target may have.
pub const MAX_CLASSES: usize = 1000;

/// The multiclass target: labels sorted, one class index per row. A missing cell is
/// [`DataError::MissingTarget`]; one label only is [`DataError::SingleClass`].
pub fn class_target(table: &Table, column: &str) -> Result<ClassTarget, DataError> {
    let data = target_column(table, column)?;
    let mut labels = Vec::with_capacity(data.len());
    for row in 0..data.len() {
        if data.is_missing(row) {
            return Err(DataError::MissingTarget {
                column: column.to_string(),
                row: row + 1,
                line: row + 2,
            });
        }
        labels.push(data.get(row).to_string());
    }
    let mut classes: Vec<String> = labels.clone();
    classes.sort_unstable();
    classes.dedup();
    match classes.len() {
        0 => return Err(DataError::NoDataRows),
        1 => {
            return Err(DataError::SingleClass {
                column: column.to_string(),
                label: classes[0].clone(),
            });
        }
        n if n > MAX_CLASSES => {
            return Err(DataError::TooManyClasses {
                column: column.to_string(),
                limit: MAX_CLASSES,
            });
        }
        _ => {}
    }
    let y = labels
        .iter()
        .map(|l| classes.binary_search(l).map_or(0, |i| i as u32))
        .collect();
    Ok(ClassTarget {
        column: column.to_string(),
        classes,
        y,
    })
}

#[cfg(test)]
mod tests {
    use aurum_core::Column;

    use super::*;

    fn strings(v: &[&str]) -> Table {
        let data = v
            .iter()
            .map(|s| (!s.is_empty()).then(|| s.to_string()))
            .collect();
        Table::new(vec![Column {
            name: "t".into(),
            data: ColumnData::Categorical(data),
        }])
        .unwrap()
    }

    fn target(v: &[&str], positive: Option<&str>) -> Result<BinaryTarget, DataError> {
        binary_target(&strings(v), "t", positive)
    }

    #[test]
    fn good_bad_picks_bad() {
        let t = target(&["good", "bad", "good", "good"], None).unwrap();
        assert_eq!(
            (t.positive_label.as_str(), t.negative_label.as_str()),
            ("bad", "good")
        );
        assert_eq!(t.y, vec![0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn keyword_beats_minority() {
        // `yes` is the majority here but is still the event.
        let t = target(&["Yes", "Yes", "no"], None).unwrap();
        assert_eq!(t.positive_label, "Yes");
    }

    #[test]
    fn minority_then_greater_label() {
        assert_eq!(target(&["a", "b", "b"], None).unwrap().positive_label, "a");
        assert_eq!(target(&["a", "b"], None).unwrap().positive_label, "b");
    }

    #[test]
    fn explicit_label() {
        assert_eq!(
            target(&["good", "bad"], Some("good"))
                .unwrap()
                .positive_label,
            "good"
        );
        let err = target(&["good", "bad"], Some("Bad")).unwrap_err();
        assert_eq!(err.code(), "unknown_label");
        assert!(err.to_string().contains("`good` and `bad`"), "{err}");
    }

    #[test]
    fn numeric_and_boolean() {
        let t = Table::new(vec![
            Column {
                name: "i".into(),
                data: ColumnData::Integer(vec![Some(1), Some(0), Some(1)]),
            },
            Column {
                name: "f".into(),
                data: ColumnData::Float(vec![Some(0.0), Some(1.0), Some(0.0)]),
            },
            Column {
                name: "b".into(),
                data: ColumnData::Boolean(vec![Some(false), Some(true), Some(true)]),
            },
        ])
        .unwrap();
        // The majority class 1 is still positive for a 0/1 column.
        assert_eq!(binary_target(&t, "i", None).unwrap().y, vec![1.0, 0.0, 1.0]);
        assert_eq!(binary_target(&t, "f", None).unwrap().positive_label, "1");
        assert_eq!(
            binary_target(&t, "f", Some("1.0")).unwrap().positive_label,
            "1"
        );
        assert_eq!(binary_target(&t, "b", None).unwrap().positive_label, "true");
        assert_eq!(
            binary_target(&t, "b", Some("FALSE"))
                .unwrap()
                .positive_label,
            "false"
        );
    }

    #[test]
    fn errors_name_row_and_line() {
        let err = target(&["a", "b", "", "a"], None).unwrap_err();
        assert_eq!(
            err,
            DataError::MissingTarget {
                column: "t".into(),
                row: 3,
                line: 4
            }
        );
        let err = target(&["a", "b", "a", "c"], None).unwrap_err();
        assert_eq!(
            err,
            DataError::NonBinaryTarget {
                column: "t".into(),
                row: 4,
                line: 5,
                value: "c".into(),
                first: "a".into(),
                second: "b".into(),
            }
        );
        assert_eq!(
            target(&["a", "a"], None).unwrap_err().code(),
            "single_class"
        );
        let err = binary_target(&strings(&["a"]), "nope", None).unwrap_err();
        assert!(err.to_string().contains("available columns: `t`"), "{err}");
    }
}
