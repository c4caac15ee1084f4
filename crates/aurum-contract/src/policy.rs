//! Credit decisions: score scaling, the decision policy (approve / refer / decline) and the
//! training parameters both share across the credit families.
//!
//! # Score scaling
//!
//! Scores follow the usual scorecard convention, on the *good:bad* odds:
//!
//! ```text
//! score = offset + factor · ln(odds_good),   odds_good = (1 − PD) / PD
//! factor = pdo / ln 2,   offset = base_score − factor · ln(base_odds)
//! ```
//!
//! so a score of `base_score` means good:bad odds of `base_odds`, and every `pdo` points double
//! the odds. Defaults ([`ScoreScaling::default`]): `base_score = 600`, `base_odds = 50` (50:1),
//! `pdo = 20`. Scorecards sum attribute points to this score exactly; every other family maps its
//! PD through the same formula (with its own `base_score` / `base_odds` / `pdo` parameters where
//! it has them, the defaults otherwise), so a score cutoff means the same odds for every family.
//!
//! # Decision policy
//!
//! A [`DecisionPolicy`] is fixed at training time (parameters `policy_pd_cutoff` *or*
//! `policy_score_cutoff`, `refer_low` + `refer_high`, `max_reasons`) and stored in the model:
//!
//! 1. the **refer band** `[refer_low, refer_high)`, in the unit of the cutoff (PD or points),
//!    wins first: a value inside it is [`Decision::Refer`];
//! 2. otherwise a **PD cutoff** `c` declines when `PD ≥ c` (the same rule as the label
//!    threshold), a **score cutoff** `s` declines when `score < s`; everything else is approved.
//!
//! Without a cutoff parameter the cutoff is the PD at the model's `threshold`. Refer and decline
//! decisions carry up to `max_reasons` adverse reasons (see [`crate::reasons`]); approvals none.

use aurum_core::Params;

use crate::ModelError;
use crate::reasons::{Reason, ReasonTable};

/// Default `base_score`: the score at the base odds.
pub const DEFAULT_BASE_SCORE: f64 = 600.0;
/// Default `base_odds`: good:bad odds of 50:1 at the base score.
pub const DEFAULT_BASE_ODDS: f64 = 50.0;
/// Default `pdo`: points to double the odds.
pub const DEFAULT_PDO: f64 = 20.0;
/// Default `max_reasons`.
pub const DEFAULT_MAX_REASONS: usize = 4;
/// Largest accepted `max_reasons`.
pub const MAX_REASONS_LIMIT: usize = 32;

/// Maps default log-odds to points (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreScaling {
    pub base_score: f64,
    /// Good:bad odds at `base_score`, `> 0`.
    pub base_odds: f64,
    /// Points to double the odds, `> 0`.
    pub pdo: f64,
}

impl Default for ScoreScaling {
    fn default() -> Self {
        Self {
            base_score: DEFAULT_BASE_SCORE,
            base_odds: DEFAULT_BASE_ODDS,
            pdo: DEFAULT_PDO,
        }
    }
}

/// PDs are clipped to `[PD_EPS, 1 − PD_EPS]` before [`ScoreScaling::score_from_pd`] takes logs.
pub const PD_EPS: f64 = 1e-15;

impl ScoreScaling {
    /// Points per unit of log-odds: `pdo / ln 2`.
    pub fn factor(&self) -> f64 {
        self.pdo / std::f64::consts::LN_2
    }

    /// The score at even odds: `base_score − factor · ln(base_odds)`.
    pub fn offset(&self) -> f64 {
        self.base_score - self.factor() * self.base_odds.ln()
    }

    /// The score of default log-odds `z = ln(PD / (1 − PD))`: `offset − factor · z`.
    pub fn score_from_log_odds(&self, z: f64) -> f64 {
        self.offset() - self.factor() * z
    }

    /// The score of a PD (clipped to `[PD_EPS, 1 − PD_EPS]`).
    pub fn score_from_pd(&self, pd: f64) -> f64 {
        let p = pd.clamp(PD_EPS, 1.0 - PD_EPS);
        self.score_from_log_odds((p / (1.0 - p)).ln())
    }

    /// The PD of a score (inverse of [`ScoreScaling::score_from_log_odds`]).
    pub fn pd_from_score(&self, score: f64) -> f64 {
        let z = (self.offset() - score) / self.factor();
        sigmoid(z)
    }

    fn check(&self) -> Result<(), ModelError> {
        if !self.base_score.is_finite() {
            return Err(ModelError::invalid_param(
                "base_score",
                self.base_score,
                "a finite number",
            ));
        }
        if !(self.base_odds.is_finite() && self.base_odds > 0.0) {
            return Err(ModelError::invalid_param(
                "base_odds",
                self.base_odds,
                "a number > 0",
            ));
        }
        if !(self.pdo.is_finite() && self.pdo > 0.0) {
            return Err(ModelError::invalid_param("pdo", self.pdo, "a number > 0"));
        }
        Ok(())
    }
}

/// What the decision compares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cutoff {
    /// Decline when `PD ≥ cutoff`; in `[0, 1]`.
    Pd(f64),
    /// Decline when `score < cutoff`.
    Score(f64),
}

/// The outcome of a credit decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    Approve,
    Refer,
    Decline,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Refer => "refer",
            Decision::Decline => "decline",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decision for one applicant.
#[derive(Clone, Debug, PartialEq)]
pub struct CreditDecision {
    /// Probability of default (the positive class).
    pub pd: f64,
    /// The score in points, where the family has one.
    pub score: Option<f64>,
    pub decision: Decision,
    /// Adverse reasons, most adverse first; empty for approvals.
    pub reasons: Vec<Reason>,
}

/// How PDs and scores become decisions (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionPolicy {
    pub cutoff: Cutoff,
    /// `[low, high)` in the unit of `cutoff`: values inside are referred.
    pub refer_band: Option<(f64, f64)>,
    /// Most reasons returned with a refer or decline (default 4).
    pub max_reasons: usize,
}

impl DecisionPolicy {
    /// The default policy of a model with label threshold `threshold`: decline at
    /// `PD ≥ threshold`, no refer band, 4 reasons.
    pub fn at_threshold(threshold: f64) -> Self {
        Self {
            cutoff: Cutoff::Pd(threshold),
            refer_band: None,
            max_reasons: DEFAULT_MAX_REASONS,
        }
    }

    /// The decision for a PD and score. A score cutoff with no score (a family without one)
    /// compares the PD's score under the default [`ScoreScaling`].
    pub fn decide(&self, pd: f64, score: Option<f64>) -> Decision {
        let value = match self.cutoff {
            Cutoff::Pd(_) => pd,
            Cutoff::Score(_) => score.unwrap_or_else(|| ScoreScaling::default().score_from_pd(pd)),
        };
        if let Some((low, high)) = self.refer_band
            && low <= value
            && value < high
        {
            return Decision::Refer;
        }
        let decline = match self.cutoff {
            Cutoff::Pd(c) => value >= c,
            Cutoff::Score(c) => value < c,
        };
        if decline {
            Decision::Decline
        } else {
            Decision::Approve
        }
    }

    /// Checks the invariants [`DecisionPolicy::decide`] relies on, naming the parameter.
    pub fn check(&self) -> Result<(), ModelError> {
        let unit = |x: f64| (0.0..=1.0).contains(&x);
        match self.cutoff {
            Cutoff::Pd(c) if !unit(c) => {
                return Err(ModelError::invalid_param(
                    "policy_pd_cutoff",
                    c,
                    "a number in [0, 1]",
                ));
            }
            Cutoff::Score(c) if !c.is_finite() => {
                return Err(ModelError::invalid_param(
                    "policy_score_cutoff",
                    c,
                    "a finite number",
                ));
            }
            _ => {}
        }
        if let Some((low, high)) = self.refer_band {
            let in_unit = match self.cutoff {
                Cutoff::Pd(_) => unit(low) && unit(high),
                Cutoff::Score(_) => low.is_finite() && high.is_finite(),
            };
            if !in_unit || low >= high {
                let expected = match self.cutoff {
                    Cutoff::Pd(_) => "refer_low < refer_high, both PDs in [0, 1]",
                    Cutoff::Score(_) => "refer_low < refer_high, both finite scores",
                };
                return Err(ModelError::invalid_param(
                    "refer_high",
                    high,
                    format!("{expected} (refer_low is {low})"),
                ));
            }
        }
        if !(1..=MAX_REASONS_LIMIT).contains(&self.max_reasons) {
            return Err(ModelError::invalid_param(
                "max_reasons",
                self.max_reasons,
                format!("an integer in 1..={MAX_REASONS_LIMIT}"),
            ));
        }
        Ok(())
    }
}

// ---- parameters shared by the credit families ---------------------------------------------------

/// Parameter names every credit family (scorecard, gbdt) accepts besides its own.
pub const CREDIT_PARAM_NAMES: &[&str] = &[
    "base_odds",
    "base_score",
    "max_reasons",
    "pdo",
    "policy_pd_cutoff",
    "policy_score_cutoff",
    "reason_texts",
    "refer_high",
    "refer_low",
];

/// Scaling, policy and reason texts as given at training time.
#[derive(Clone, Debug, PartialEq)]
pub struct CreditParams {
    pub scaling: ScoreScaling,
    pub policy: DecisionPolicy,
    pub reason_texts: ReasonTable,
}

impl CreditParams {
    /// Defaults for a model with label threshold `threshold`.
    pub fn at_threshold(threshold: f64) -> Self {
        Self {
            scaling: ScoreScaling::default(),
            policy: DecisionPolicy::at_threshold(threshold),
            reason_texts: ReasonTable::new(),
        }
    }

    /// Reads the shared credit parameters (scaling, policy, reason texts) from `r`; `threshold`
    /// is the default PD cutoff.
    pub fn read(r: &ParamReader<'_>, threshold: f64) -> Result<Self, ModelError> {
        let mut p = Self::at_threshold(threshold);
        if let Some(x) = r.f64("base_score", |x| x.is_finite(), "a finite number")? {
            p.scaling.base_score = x;
        }
        if let Some(x) = r.f64("base_odds", |x| x > 0.0, "a number > 0")? {
            p.scaling.base_odds = x;
        }
        if let Some(x) = r.f64("pdo", |x| x > 0.0, "a number > 0")? {
            p.scaling.pdo = x;
        }
        let pd = r.f64(
            "policy_pd_cutoff",
            |x| (0.0..=1.0).contains(&x),
            "a number in [0, 1]",
        )?;
        let score = r.f64("policy_score_cutoff", |x| x.is_finite(), "a finite number")?;
        p.policy.cutoff = match (pd, score) {
            (Some(_), Some(s)) => {
                return Err(ModelError::invalid_param(
                    "policy_score_cutoff",
                    s,
                    "unset when policy_pd_cutoff is set (one cutoff per policy)",
                ));
            }
            (Some(c), None) => Cutoff::Pd(c),
            (None, Some(s)) => Cutoff::Score(s),
            (None, None) => Cutoff::Pd(threshold),
        };
        let low = r.f64("refer_low", f64::is_finite, "a finite number")?;
        let high = r.f64("refer_high", f64::is_finite, "a finite number")?;
        p.policy.refer_band = match (low, high) {
            (Some(l), Some(h)) => Some((l, h)),
            (None, None) => None,
            (Some(l), None) => {
                return Err(ModelError::invalid_param(
                    "refer_low",
                    l,
                    "to come with refer_high",
                ));
            }
            (None, Some(h)) => {
                return Err(ModelError::invalid_param(
                    "refer_high",
                    h,
                    "to come with refer_low",
                ));
            }
        };
        if let Some(n) = r.usize("max_reasons", 1..=MAX_REASONS_LIMIT)? {
            p.policy.max_reasons = n;
        }
        if let Some(s) = r.str("reason_texts") {
            p.reason_texts = ReasonTable::parse(s)?;
        }
        p.check()?;
        Ok(p)
    }

    pub fn check(&self) -> Result<(), ModelError> {
        self.scaling.check()?;
        self.policy.check()
    }

    /// The canonical entries (every key; `null` for an unset cutoff or band).
    pub fn write_json(&self, out: &mut serde_json::Map<String, serde_json::Value>) {
        use serde_json::Value as J;
        let (pd, score) = match self.policy.cutoff {
            Cutoff::Pd(c) => (J::from(c), J::Null),
            Cutoff::Score(s) => (J::Null, J::from(s)),
        };
        let (low, high) = match self.policy.refer_band {
            Some((l, h)) => (J::from(l), J::from(h)),
            None => (J::Null, J::Null),
        };
        out.insert("base_score".into(), self.scaling.base_score.into());
        out.insert("base_odds".into(), self.scaling.base_odds.into());
        out.insert("pdo".into(), self.scaling.pdo.into());
        out.insert("policy_pd_cutoff".into(), pd);
        out.insert("policy_score_cutoff".into(), score);
        out.insert("refer_low".into(), low);
        out.insert("refer_high".into(), high);
        out.insert("max_reasons".into(), self.policy.max_reasons.into());
        out.insert("reason_texts".into(), self.reason_texts.to_param().into());
    }

    /// Checks that every feature named in `reason_texts` is an input feature.
    pub fn check_features(&self, mut known: impl FnMut(&str) -> bool) -> Result<(), ModelError> {
        if let Some(f) = self.reason_texts.features().find(|f| !known(f)) {
            return Err(ModelError::invalid_param(
                "reason_texts",
                f,
                "a feature of the training table",
            ));
        }
        Ok(())
    }
}

/// Typed reading of raw `key=value` parameters, shared by the credit families.
pub struct ParamReader<'a> {
    params: &'a Params,
}

impl<'a> ParamReader<'a> {
    /// Refuses keys outside `allowed` with [`ModelError::UnknownParam`].
    pub fn new(
        model: &'static str,
        params: &'a Params,
        allowed: &'static [&'static str],
    ) -> Result<Self, ModelError> {
        if let Some(name) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ModelError::UnknownParam {
                model,
                name: name.clone(),
                allowed: allowed.to_vec(),
            });
        }
        Ok(Self { params })
    }

    /// The trimmed value of `key`, if given.
    pub fn str(&self, key: &str) -> Option<&'a str> {
        self.params.get(key).map(|v| v.trim())
    }

    /// A finite number satisfying `ok`.
    pub fn f64(
        &self,
        key: &str,
        ok: impl Fn(f64) -> bool,
        expected: &str,
    ) -> Result<Option<f64>, ModelError> {
        self.str(key)
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && ok(*x))
                    .ok_or_else(|| ModelError::invalid_param(key, v, expected))
            })
            .transpose()
    }

    /// An integer in `range`.
    pub fn usize(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<usize>,
    ) -> Result<Option<usize>, ModelError> {
        self.str(key)
            .map(|v| {
                v.parse::<usize>()
                    .ok()
                    .filter(|x| range.contains(x))
                    .ok_or_else(|| {
                        ModelError::invalid_param(
                            key,
                            v,
                            format!("an integer in {}..={}", range.start(), range.end()),
                        )
                    })
            })
            .transpose()
    }

    /// One of `options` (case-insensitive).
    pub fn choice<T: Copy>(
        &self,
        key: &str,
        options: &[(&str, T)],
    ) -> Result<Option<T>, ModelError> {
        self.str(key)
            .map(|v| {
                let lower = v.to_ascii_lowercase();
                options
                    .iter()
                    .find(|(name, _)| *name == lower)
                    .map(|(_, t)| *t)
                    .ok_or_else(|| {
                        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                        ModelError::invalid_param(key, v, format!("one of {}", names.join(", ")))
                    })
            })
            .transpose()
    }
}

/// Turns canonical JSON parameters back into raw parameters (numbers and strings as text, `null`
/// as absent), so stored parameters pass through the same validation as user input.
pub fn params_from_json(family: &str, v: &serde_json::Value) -> Result<Params, ModelError> {
    let obj = v.as_object().ok_or_else(|| {
        ModelError::invalid_artifact(format!("{family} params are not an object"))
    })?;
    let mut params = Params::new();
    for (k, v) in obj {
        let s = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                return Err(ModelError::invalid_artifact(format!(
                    "{family} parameter `{k}` is not a scalar"
                )));
            }
        };
        params.insert(k.clone(), s);
    }
    Ok(params)
}

/// Parses `name:+1,name:-1` (signs `+1`, `1`, `-1`, `0`) into `(feature, sign)` pairs, each
/// feature at most once.
pub fn parse_monotone(value: &str) -> Result<Vec<(String, i8)>, ModelError> {
    let mut out: Vec<(String, i8)> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || {
            ModelError::invalid_param(
                "monotone",
                entry,
                "comma-separated `feature:+1`, `feature:-1` or `feature:0` entries",
            )
        };
        let (name, sign) = entry.rsplit_once(':').ok_or_else(bad)?;
        let name = name.trim();
        let sign = match sign.trim() {
            "+1" | "1" => 1,
            "-1" => -1,
            "0" => 0,
            _ => return Err(bad()),
        };
        if name.is_empty() {
            return Err(bad());
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(ModelError::invalid_param(
                "monotone",
                name,
                "each feature at most once",
            ));
        }
        out.push((name.to_string(), sign));
    }
    Ok(out)
}

/// The canonical form of a [`parse_monotone`] list (input order kept).
pub fn monotone_to_param(list: &[(String, i8)]) -> String {
    list.iter()
        .map(|(n, s)| {
            let s = match s {
                1 => "+1",
                -1 => "-1",
                _ => "0",
            };
            format!("{n}:{s}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `1 / (1 + e^{-z})` without overflow.
#[inline]
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn read(pairs: &[(&str, &str)]) -> Result<CreditParams, ModelError> {
        let p = params(pairs);
        let r = ParamReader::new("gbdt", &p, CREDIT_PARAM_NAMES)?;
        CreditParams::read(&r, 0.5)
    }

    #[test]
    fn scaling_defaults_and_identities() {
        let s = ScoreScaling::default();
        // 600 points at 50:1 good:bad odds (PD = 1/51); 20 more points double the odds.
        assert!((s.score_from_pd(1.0 / 51.0) - 600.0).abs() < 1e-9);
        assert!((s.score_from_pd(1.0 / 101.0) - 620.0).abs() < 1e-9);
        assert!((s.score_from_pd(0.5) - s.offset()).abs() < 1e-9);
        assert!((s.offset() - (600.0 - 20.0 / 2f64.ln() * 50f64.ln())).abs() < 1e-9);
        for pd in [0.01, 0.2, 0.7] {
            assert!((s.pd_from_score(s.score_from_pd(pd)) - pd).abs() < 1e-12);
        }
        assert!(s.score_from_pd(0.0).is_finite() && s.score_from_pd(1.0).is_finite());
    }

    #[test]
    fn decisions_follow_band_then_cutoff() {
        let p = DecisionPolicy {
            cutoff: Cutoff::Pd(0.3),
            refer_band: Some((0.2, 0.4)),
            max_reasons: 4,
        };
        assert_eq!(p.decide(0.1, None), Decision::Approve);
        assert_eq!(p.decide(0.2, None), Decision::Refer);
        assert_eq!(p.decide(0.35, None), Decision::Refer);
        assert_eq!(p.decide(0.4, None), Decision::Decline);
        let s = DecisionPolicy {
            cutoff: Cutoff::Score(580.0),
            refer_band: None,
            max_reasons: 4,
        };
        assert_eq!(s.decide(0.9, Some(580.0)), Decision::Approve);
        assert_eq!(s.decide(0.0, Some(579.9)), Decision::Decline);
        assert_eq!(
            DecisionPolicy::at_threshold(0.5).decide(0.5, None),
            Decision::Decline
        );
    }

    #[test]
    fn credit_params_validate() {
        let d = read(&[]).unwrap();
        assert_eq!(d, CreditParams::at_threshold(0.5));
        let p = read(&[
            ("policy_score_cutoff", "590"),
            ("refer_low", "580"),
            ("refer_high", "600"),
            ("max_reasons", "2"),
            ("pdo", "40"),
        ])
        .unwrap();
        assert_eq!(p.policy.cutoff, Cutoff::Score(590.0));
        assert_eq!(p.policy.refer_band, Some((580.0, 600.0)));
        assert_eq!(p.scaling.pdo, 40.0);
        let mut m = serde_json::Map::new();
        p.write_json(&mut m);
        let raw = params_from_json("gbdt", &serde_json::Value::Object(m)).unwrap();
        let r = ParamReader::new("gbdt", &raw, CREDIT_PARAM_NAMES).unwrap();
        assert_eq!(CreditParams::read(&r, 0.5).unwrap(), p);

        let cases = [
            (
                vec![("policy_pd_cutoff", "0.2"), ("policy_score_cutoff", "1")],
                "policy_score_cutoff",
            ),
            (vec![("policy_pd_cutoff", "1.2")], "policy_pd_cutoff"),
            (vec![("refer_low", "0.1")], "refer_low"),
            (
                vec![("refer_low", "0.3"), ("refer_high", "0.2")],
                "refer_high",
            ),
            (
                vec![("refer_low", "0.3"), ("refer_high", "700")],
                "refer_high",
            ),
            (vec![("max_reasons", "0")], "max_reasons"),
            (vec![("pdo", "-20")], "pdo"),
            (vec![("base_odds", "0")], "base_odds"),
        ];
        for (pairs, key) in cases {
            match read(&pairs).unwrap_err() {
                ModelError::InvalidParam { name, .. } => assert_eq!(name, key, "{pairs:?}"),
                e => panic!("{e}"),
            }
        }
    }

    #[test]
    fn monotone_lists() {
        let l = parse_monotone(" a:+1, b:-1 ,c:0,d:1").unwrap();
        assert_eq!(
            l,
            [
                ("a".to_string(), 1),
                ("b".to_string(), -1),
                ("c".to_string(), 0),
                ("d".to_string(), 1)
            ]
        );
        assert_eq!(monotone_to_param(&l), "a:+1,b:-1,c:0,d:+1");
        assert!(parse_monotone("").unwrap().is_empty());
        for bad in ["a", "a:2", ":1", "a:1,a:-1"] {
            assert_eq!(parse_monotone(bad).unwrap_err().code(), "invalid_param");
        }
    }
}
