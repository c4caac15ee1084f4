//! Item and user attribute tables: categorical fields and text tokens per id.
//!
//! Why one shape for both: the content model reads item attributes, the popularity model segments
//! users by one user field, and the hybrid model treats both sides alike (every attribute becomes
//! a feature id next to the entity's own id, as in LightFM). Attributes become feature names
//! `field=value` (categorical) and `text:token` (text), so the two kinds cannot collide.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::{IdMap, RecoError};

/// One entity's attributes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AttributeRow {
    pub id: String,
    /// `(field, value)` pairs, e.g. `("category", "loan")`. A field may repeat (multi-valued).
    pub categorical: Vec<(String, String)>,
    /// Text tokens, e.g. from [`tokenize`].
    pub tokens: Vec<String>,
}

impl AttributeRow {
    pub fn new(id: impl Into<String>) -> Self {
        AttributeRow {
            id: id.into(),
            ..Default::default()
        }
    }
    pub fn with(mut self, field: impl Into<String>, value: impl Into<String>) -> Self {
        self.categorical.push((field.into(), value.into()));
        self
    }
    pub fn text(mut self, text: &str) -> Self {
        self.tokens.extend(tokenize(text));
        self
    }
}

/// Lower-cased alphanumeric runs of at least two characters.
pub fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| t.chars().count() >= 2)
        .map(str::to_lowercase)
        .collect()
}

/// Attribute rows keyed by id (items or users).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributeTable {
    kind: String,
    ids: IdMap,
    rows: Vec<AttributeRow>,
}

impl AttributeTable {
    /// An item attribute table; errors name `item_attributes[i].field`.
    pub fn items(rows: Vec<AttributeRow>) -> Result<Self, RecoError> {
        Self::build("item_attributes", rows)
    }
    /// A user attribute table; errors name `user_attributes[i].field`.
    pub fn users(rows: Vec<AttributeRow>) -> Result<Self, RecoError> {
        Self::build("user_attributes", rows)
    }

    fn build(table: &'static str, rows: Vec<AttributeRow>) -> Result<Self, RecoError> {
        let mut ids = IdMap::default();
        let bad = |index, field: &str, reason: &str| RecoError::InvalidAttribute {
            table,
            index,
            field: field.to_string(),
            reason: reason.to_string(),
        };
        for (index, row) in rows.iter().enumerate() {
            if row.id.trim().is_empty() {
                return Err(bad(index, "id", "must not be empty"));
            }
            if ids.get(&row.id).is_some() {
                return Err(bad(index, "id", &format!("`{}` appears twice", row.id)));
            }
            for (field, value) in &row.categorical {
                if field.trim().is_empty() || field.contains('=') {
                    return Err(bad(
                        index,
                        "categorical",
                        &format!("field name `{field}` must be non-empty without `=`"),
                    ));
                }
                if value.trim().is_empty() {
                    return Err(bad(index, field, "value must not be empty"));
                }
            }
            if row.tokens.iter().any(|t| t.trim().is_empty()) {
                return Err(bad(index, "tokens", "tokens must not be empty"));
            }
            ids.insert(&row.id);
        }
        Ok(AttributeTable {
            kind: table.to_string(),
            ids,
            rows,
        })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    pub fn get(&self, id: &str) -> Option<&AttributeRow> {
        self.ids.get(id).map(|i| &self.rows[i as usize])
    }
    pub fn rows(&self) -> &[AttributeRow] {
        &self.rows
    }

    /// Fails with the ids of this table that `known` (the interactions' users or items) lacks.
    pub fn check_against(&self, known: &IdMap) -> Result<(), RecoError> {
        let unknown: Vec<String> = self
            .rows
            .iter()
            .filter(|r| known.get(&r.id).is_none())
            .map(|r| r.id.clone())
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            let kind = if self.kind == "item_attributes" {
                "item"
            } else {
                "user"
            };
            Err(RecoError::UnknownIds { kind, ids: unknown })
        }
    }

    /// Whether any row has `field`.
    pub fn has_field(&self, field: &str) -> bool {
        self.rows
            .iter()
            .any(|r| r.categorical.iter().any(|(f, _)| f == field))
    }

    /// The ids whose `field` takes one of `values`; an error names a field no row has.
    pub fn ids_with(&self, field: &str, values: &[&str]) -> Result<HashSet<String>, RecoError> {
        if !self.has_field(field) {
            return Err(RecoError::param(
                "filter.field",
                format!("no {} row has the field `{field}`", self.kind),
            ));
        }
        Ok(self
            .rows
            .iter()
            .filter(|r| {
                r.categorical
                    .iter()
                    .any(|(f, v)| f == field && values.contains(&v.as_str()))
            })
            .map(|r| r.id.clone())
            .collect())
    }

    /// The first value of `field` for `id`.
    pub fn value(&self, id: &str, field: &str) -> Option<&str> {
        self.get(id)?
            .categorical
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, v)| v.as_str())
    }
}

/// The feature names of one row: `field=value` and `text:token` (tokens repeat as counts).
pub(crate) fn feature_names(row: &AttributeRow) -> impl Iterator<Item = String> + '_ {
    row.categorical
        .iter()
        .map(|(f, v)| format!("{f}={v}"))
        .chain(row.tokens.iter().map(|t| format!("text:{t}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenize_lowercases_and_drops_short_runs() {
        assert_eq!(
            tokenize("Fixed-rate Mortgage, 5y!"),
            vec!["fixed", "rate", "mortgage", "5y"]
        );
    }

    #[test]
    fn validation_names_table_row_and_field() {
        let e = AttributeTable::items(vec![AttributeRow::new("a"), AttributeRow::new("a")])
            .unwrap_err();
        assert_eq!(e.to_string(), "item_attributes[1].id: `a` appears twice");
        let e = AttributeTable::users(vec![AttributeRow::new("u").with("job", " ")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "user_attributes[0].job: value must not be empty"
        );
        let e = AttributeTable::users(vec![AttributeRow::new("u").with("a=b", "c")]).unwrap_err();
        assert_eq!(e.code(), "reco_invalid_attribute");
    }

    #[test]
    fn check_against_names_unknown_ids() {
        let t = AttributeTable::items(vec![AttributeRow::new("x"), AttributeRow::new("ghost")])
            .unwrap();
        let known = IdMap::from(vec!["x".to_string()]);
        let e = t.check_against(&known).unwrap_err();
        assert_eq!(e.to_string(), "unknown item id(s) `ghost`");
    }

    #[test]
    fn ids_with_and_features() {
        let t = AttributeTable::items(vec![
            AttributeRow::new("x")
                .with("category", "loan")
                .text("Home loan"),
            AttributeRow::new("y").with("category", "savings"),
        ])
        .unwrap();
        assert_eq!(
            t.ids_with("category", &["loan"]).unwrap(),
            HashSet::from(["x".to_string()])
        );
        assert!(
            t.ids_with("colour", &["red"])
                .unwrap_err()
                .to_string()
                .contains("`colour`")
        );
        let f: Vec<String> = feature_names(t.get("x").unwrap()).collect();
        assert_eq!(f, vec!["category=loan", "text:home", "text:loan"]);
        assert_eq!(t.value("y", "category"), Some("savings"));
    }
}
