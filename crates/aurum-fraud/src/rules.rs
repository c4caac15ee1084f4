//! Rules and the final decision: `allow`, `review` or `block`, with the reasons.
//!
//! Why rules beside a model: fraud teams must react within minutes to a new pattern (a
//! compromised terminal, a card-testing burst) without retraining, and they keep lists of
//! entities that are always blocked (confirmed fraudsters) or always allowed (internal test
//! cards). The precedence is fixed and simple enough to explain to an auditor:
//!
//! 1. a deny-list hit blocks;
//! 2. otherwise an allow-list hit allows, whatever the rules and the score say;
//! 3. otherwise the strictest of the model score's band (`review_at`, `block_at`) and the actions
//!    of the threshold rules that fired.
//!
//! Reasons list every list hit and fired rule, the score band when it was reached, and, when the
//! decision is not `allow`, the top features from a caller-supplied contribution list (e.g. SHAP
//! values from the model that produced the score).

use aurum_core::Contribution;
use serde::{Deserialize, Serialize};

use crate::error::{FraudError, Result};
use crate::event::Event;
use crate::spec::CompiledSpec;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Allow,
    Review,
    Block,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
}

impl Op {
    fn holds(self, x: f64, t: f64) -> bool {
        match self {
            Op::Gt => x > t,
            Op::Ge => x >= t,
            Op::Lt => x < t,
            Op::Le => x <= t,
        }
    }
}

/// `feature op value` ⇒ `action`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub feature: String,
    pub op: Op,
    pub value: f64,
    pub action: Action,
}

/// An entity key and one of its values (`CUSTOMER_ID` = `42`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListEntry {
    pub entity: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub allow: Vec<ListEntry>,
    #[serde(default)]
    pub deny: Vec<ListEntry>,
    /// Scores at or above this are reviewed.
    pub review_at: f64,
    /// Scores at or above this are blocked.
    pub block_at: f64,
    /// How many features to give as reasons (largest positive contributions).
    #[serde(default = "default_top")]
    pub top_features: usize,
}

fn default_top() -> usize {
    3
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reason {
    DenyList {
        entity: String,
        value: String,
    },
    AllowList {
        entity: String,
        value: String,
    },
    Rule {
        name: String,
        feature: String,
        value: f64,
        action: Action,
    },
    Score {
        score: f64,
        threshold: f64,
        action: Action,
    },
    Feature {
        feature: String,
        contribution: f64,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub action: Action,
    pub score: f64,
    pub reasons: Vec<Reason>,
}

impl RuleSet {
    /// Checks the rule set against a spec: every feature and entity named exists, thresholds
    /// are finite and ordered, rule names are unique.
    pub fn validate(&self, spec: &CompiledSpec) -> Result<()> {
        if !self.review_at.is_finite() || !self.block_at.is_finite() {
            return Err(FraudError::input(
                "review_at",
                "review_at and block_at must be finite",
            ));
        }
        if self.review_at > self.block_at {
            return Err(FraudError::input(
                "review_at",
                format!("{} is above block_at ({})", self.review_at, self.block_at),
            ));
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.name.trim().is_empty() {
                return Err(FraudError::input(format!("rules[{i}].name"), "is empty"));
            }
            if let Some(j) = self.rules[..i].iter().position(|o| o.name == r.name) {
                return Err(FraudError::input(
                    format!("rules[{i}].name"),
                    format!("{:?} is also rules[{j}].name", r.name),
                ));
            }
            if !spec.feature_names().contains(&r.feature) {
                return Err(FraudError::input(
                    format!("rules[{i}].feature"),
                    format!("{:?} is not a feature of the spec", r.feature),
                ));
            }
            if !r.value.is_finite() {
                return Err(FraudError::input(
                    format!("rules[{i}].value"),
                    "must be finite",
                ));
            }
        }
        for (list, entries) in [("allow", &self.allow), ("deny", &self.deny)] {
            for (i, e) in entries.iter().enumerate() {
                if !spec.schema().entities.contains(&e.entity) {
                    return Err(FraudError::input(
                        format!("{list}[{i}].entity"),
                        format!("{:?} is not one of schema.entities", e.entity),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The decision for one event, given its features (in spec order), the model's score and
    /// the model's per-feature contributions (any order; may be empty).
    pub fn decide(
        &self,
        spec: &CompiledSpec,
        event: &Event,
        features: &[f64],
        score: f64,
        contributions: &[Contribution],
    ) -> Result<Decision> {
        if features.len() != spec.feature_names().len() {
            return Err(FraudError::input(
                "features",
                format!(
                    "has {} values, the spec has {} features",
                    features.len(),
                    spec.feature_names().len()
                ),
            ));
        }
        if !score.is_finite() {
            return Err(FraudError::input("score", format!("{score} is not finite")));
        }
        let entities = &spec.schema().entities;
        let hits = |list: &[ListEntry]| -> Vec<ListEntry> {
            list.iter()
                .filter(|l| {
                    entities
                        .iter()
                        .position(|e| *e == l.entity)
                        .is_some_and(|i| event.keys.get(i) == Some(&l.value))
                })
                .cloned()
                .collect()
        };
        let denied = hits(&self.deny);
        if !denied.is_empty() {
            let reasons = denied
                .into_iter()
                .map(|l| Reason::DenyList {
                    entity: l.entity,
                    value: l.value,
                })
                .collect();
            return Ok(Decision {
                action: Action::Block,
                score,
                reasons,
            });
        }
        let allowed = hits(&self.allow);
        if !allowed.is_empty() {
            let reasons = allowed
                .into_iter()
                .map(|l| Reason::AllowList {
                    entity: l.entity,
                    value: l.value,
                })
                .collect();
            return Ok(Decision {
                action: Action::Allow,
                score,
                reasons,
            });
        }
        let mut action = Action::Allow;
        let mut reasons = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            let idx = spec
                .feature_names()
                .iter()
                .position(|n| *n == r.feature)
                .ok_or_else(|| {
                    FraudError::input(
                        format!("rules[{i}].feature"),
                        format!("{:?} is not a feature of the spec", r.feature),
                    )
                })?;
            if r.op.holds(features[idx], r.value) {
                action = action.max(r.action);
                reasons.push(Reason::Rule {
                    name: r.name.clone(),
                    feature: r.feature.clone(),
                    value: features[idx],
                    action: r.action,
                });
            }
        }
        let band = if score >= self.block_at {
            Some((Action::Block, self.block_at))
        } else if score >= self.review_at {
            Some((Action::Review, self.review_at))
        } else {
            None
        };
        if let Some((a, threshold)) = band {
            action = action.max(a);
            reasons.push(Reason::Score {
                score,
                threshold,
                action: a,
            });
        }
        if action != Action::Allow {
            let mut top: Vec<&Contribution> = contributions
                .iter()
                .filter(|c| c.contribution > 0.0)
                .collect();
            top.sort_by(|a, b| {
                b.contribution
                    .total_cmp(&a.contribution)
                    .then_with(|| a.feature.cmp(&b.feature))
            });
            reasons.extend(
                top.into_iter()
                    .take(self.top_features)
                    .map(|c| Reason::Feature {
                        feature: c.feature.clone(),
                        contribution: c.contribution,
                    }),
            );
        }
        Ok(Decision {
            action,
            score,
            reasons,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::FeatureSpec;
    use aurum_core::Value;

    fn spec() -> CompiledSpec {
        FeatureSpec::from_toml_str(
            r#"
[schema]
id = "id"
timestamp = "ts"
amount = "amount"
entities = ["customer_id", "terminal_id"]
[[features]]
kind = "amount"
[[features]]
kind = "count"
entity = "customer_id"
window = "1h"
"#,
        )
        .unwrap()
        .compile()
        .unwrap()
    }

    fn rules() -> RuleSet {
        serde_json::from_str(
            r#"{"rules": [{"name": "big", "feature": "amount", "op": ">", "value": 220, "action": "block"},
                          {"name": "burst", "feature": "customer_id_count_1h", "op": ">=", "value": 5, "action": "review"}],
                "allow": [{"entity": "customer_id", "value": "vip"}],
                "deny": [{"entity": "terminal_id", "value": "bad"}],
                "review_at": 0.5, "block_at": 0.9, "top_features": 1}"#,
        )
        .unwrap()
    }

    fn ev(c: &str, t: &str) -> Event {
        Event {
            id: "1".into(),
            ts: 0,
            keys: vec![c.into(), t.into()],
            amount: Some(1.0),
            label: None,
            extra: Default::default(),
        }
    }

    fn contrib(feature: &str, c: f64) -> Contribution {
        Contribution {
            feature: feature.into(),
            value: Value::Null,
            contribution: c,
        }
    }

    #[test]
    fn precedence_and_reasons() {
        let (s, r) = (spec(), rules());
        r.validate(&s).unwrap();
        let contribs = [
            contrib("amount", 0.2),
            contrib("customer_id_count_1h", 0.7),
            contrib("x", -1.0),
        ];
        let d = r
            .decide(&s, &ev("c", "t"), &[10.0, 1.0], 0.1, &contribs)
            .unwrap();
        assert_eq!((d.action, d.reasons.len()), (Action::Allow, 0));
        let d = r
            .decide(&s, &ev("c", "t"), &[10.0, 6.0], 0.6, &contribs)
            .unwrap();
        assert_eq!(d.action, Action::Review);
        assert_eq!(
            d.reasons,
            [
                Reason::Rule {
                    name: "burst".into(),
                    feature: "customer_id_count_1h".into(),
                    value: 6.0,
                    action: Action::Review
                },
                Reason::Score {
                    score: 0.6,
                    threshold: 0.5,
                    action: Action::Review
                },
                Reason::Feature {
                    feature: "customer_id_count_1h".into(),
                    contribution: 0.7
                },
            ]
        );
        assert_eq!(
            r.decide(&s, &ev("c", "t"), &[300.0, 0.0], 0.0, &[])
                .unwrap()
                .action,
            Action::Block
        );
        assert_eq!(
            r.decide(&s, &ev("c", "t"), &[1.0, 0.0], 0.95, &[])
                .unwrap()
                .action,
            Action::Block
        );
        let vip = r
            .decide(&s, &ev("vip", "t"), &[300.0, 0.0], 0.99, &[])
            .unwrap();
        assert_eq!(vip.action, Action::Allow);
        let denied = r
            .decide(&s, &ev("vip", "bad"), &[1.0, 0.0], 0.0, &[])
            .unwrap();
        assert_eq!(
            denied.reasons,
            [Reason::DenyList {
                entity: "terminal_id".into(),
                value: "bad".into()
            }]
        );
        assert_eq!(denied.action, Action::Block);
    }

    #[test]
    fn validation_names_the_field() {
        let s = spec();
        let mut r = rules();
        r.rules[1].feature = "nope".into();
        assert_eq!(
            r.validate(&s).unwrap_err().to_string(),
            r#"rules[1].feature: "nope" is not a feature of the spec"#
        );
        let mut r = rules();
        r.deny[0].entity = "card".into();
        assert_eq!(
            r.validate(&s).unwrap_err().to_string(),
            r#"deny[0].entity: "card" is not one of schema.entities"#
        );
        let mut r = rules();
        r.review_at = 0.95;
        assert!(
            r.validate(&s)
                .unwrap_err()
                .to_string()
                .starts_with("review_at: 0.95 is above")
        );
        assert_eq!(
            rules()
                .decide(&s, &ev("c", "t"), &[1.0], 0.0, &[])
                .unwrap_err()
                .code(),
            "fraud_invalid_input"
        );
        assert!(
            serde_json::from_str::<RuleSet>(r#"{"review_at": 0.5, "block_at": 0.9, "extra": 1}"#)
                .is_err()
        );
    }
}
