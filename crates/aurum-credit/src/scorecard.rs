//! Credit scorecards: optimal WoE binning, logistic regression on the WoE values, and points.
//!
//! Why a scorecard next to plain logistic regression: it is the form credit-risk teams, model
//! validators and regulators read. Every characteristic is cut into a handful of attributes
//! ([`crate::binning`]), every attribute earns a fixed number of points, and the score is the sum.
//!
//! # Fit
//!
//! 1. Each usable column (numeric, categorical, boolean; text and dates are left out as in
//!    [`crate::pipeline`]) is binned with [`BinningOptions`] (`min_bin_share`, `max_bins`,
//!    `prebins`, `monotonic` for all numeric columns, `monotone=feature:+1,...` per feature:
//!    `+1` ascending bad rate, `-1` descending, `0` none).
//! 2. Characteristics with IV below `iv_min` (default 0.02, "unpredictive") are left out.
//! 3. A logistic regression of the bad indicator on the WoE values is fitted with this crate's
//!    solver ([`crate::logistic`]; `penalty` l2 by default, l1 for selection, `lambda`). With
//!    `WoE = ln(good share / bad share)` every coefficient should be negative; a characteristic
//!    with a positive coefficient (a collinearity artefact that would reverse its bins' order) is
//!    removed and the regression refitted, largest first, until none is left. A coefficient of
//!    exactly zero (L1) also leaves the characteristic out of the points.
//!
//! # Points
//!
//! With the scaling of [`crate::policy`] (`factor = pdo / ln 2`, `offset = base_score −
//! factor · ln(base_odds)`; defaults 600 points at 50:1 good:bad odds, 20 points to double the
//! odds), attribute `i` of characteristic `j` earns `−factor · β_j · WoE_ij` points, and the
//! intercept is kept as a separate **base points** line `offset − factor · β_0` (not distributed
//! over the characteristics, so every attribute's points read as its own effect). The score is
//! base points + Σ attribute points, exactly `offset − factor · logit(PD)`; points are not
//! rounded. An unseen category or an unexpected missing value has WoE 0 and earns 0 points.
//!
//! # Explanations and reasons
//!
//! [`FittedModel::explain`] gives log-odds contributions `β_j · (WoE_j(x) − mean_j)` against the
//! training-average WoE `mean_j`. Reason codes use *points below maximum* (see
//! [`crate::reasons`]).

use aurum_core::{
    BinaryTarget, ColumnData, ColumnType, Contribution, Explanation, Field, Params, Schema, Table,
    Value,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::binning::{BinIndex, BinningOptions, FeatureBinning, StoredBinning, Trend};
use crate::logistic::{ClassWeight, LogisticParams, Penalty, check_target, fit_dense, sigmoid};
use crate::pipeline::{
    Matrix, bool_category, date_ordinal, finite_cell, table_column, table_columns,
};
use crate::policy::{
    CreditParams, DecisionPolicy, ParamReader, ScoreScaling, monotone_to_param, params_from_json,
    parse_monotone,
};
use crate::reasons::{Reason, rank_adverse};
use crate::{FitContext, FittedModel, ModelError, ModelFamily};
use aurum_contract::{BinaryClassifier, FamilySpec, TableScores, Task, TrainingData};

/// Parameter names, sorted.
pub const PARAM_NAMES: &[&str] = &[
    "base_odds",
    "base_score",
    "iv_min",
    "lambda",
    "max_bins",
    "max_iter",
    "max_reasons",
    "min_bin_share",
    "monotone",
    "monotonic",
    "pdo",
    "penalty",
    "policy_pd_cutoff",
    "policy_score_cutoff",
    "prebins",
    "reason_texts",
    "refer_high",
    "refer_low",
    "threshold",
    "tol",
];

/// Default `iv_min`: characteristics below 0.02 IV are conventionally unpredictive.
pub const DEFAULT_IV_MIN: f64 = 0.02;

/// Default `lambda` (L2 on the WoE coefficients, average loss; the logistic default). Mean
/// held-out AUC over five seeded stratified 70/30 splits, German credit / Lending Club: 0.788 /
/// 0.713 at λ = 0, 0.788 / 0.721 at 1e-3, 0.785 / 0.732 at 0.01, 0.782 / 0.734 at 0.03.
pub const DEFAULT_LAMBDA: f64 = 0.01;

/// Typed, validated scorecard parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct ScorecardParams {
    pub binning: BinningOptions,
    /// Per-feature trend overrides (`+1` ascending bad rate, `-1` descending, `0` none).
    pub monotone: Vec<(String, i8)>,
    pub penalty: Penalty,
    pub lambda: f64,
    pub max_iter: u32,
    pub tol: f64,
    /// Characteristics with a lower IV are left out.
    pub iv_min: f64,
    /// Label threshold on the PD.
    pub threshold: f64,
    /// Scaling (`base_score`, `base_odds`, `pdo`), decision policy and reason texts.
    pub credit: CreditParams,
}

impl Default for ScorecardParams {
    fn default() -> Self {
        Self {
            binning: BinningOptions::default(),
            monotone: Vec::new(),
            penalty: Penalty::L2,
            lambda: DEFAULT_LAMBDA,
            max_iter: 1000,
            tol: 1e-6,
            iv_min: DEFAULT_IV_MIN,
            threshold: 0.5,
            credit: CreditParams::at_threshold(0.5),
        }
    }
}

impl ScorecardParams {
    /// Validates raw `key=value` parameters; missing keys take their defaults.
    pub fn from_params(params: &Params) -> Result<Self, ModelError> {
        let r = ParamReader::new("scorecard", params, PARAM_NAMES)?;
        let mut p = Self::default();
        if let Some(x) = r.f64(
            "min_bin_share",
            |x| (0.0..=0.5).contains(&x),
            "a number in [0, 0.5]",
        )? {
            p.binning.min_bin_share = x;
        }
        if let Some(n) = r.usize("max_bins", 1..=crate::binning::MAX_BINS_LIMIT)? {
            p.binning.max_bins = n;
        }
        if let Some(n) = r.usize("prebins", 1..=crate::binning::MAX_BINS_LIMIT)? {
            p.binning.prebins = n;
        }
        if let Some(t) = r.choice(
            "monotonic",
            &[
                ("auto", Trend::Auto),
                ("ascending", Trend::Ascending),
                ("descending", Trend::Descending),
                ("none", Trend::None),
            ],
        )? {
            p.binning.trend = t;
        }
        if let Some(s) = r.str("monotone") {
            p.monotone = parse_monotone(s)?;
        }
        if let Some(x) = r.choice(
            "penalty",
            &[
                ("l2", Penalty::L2),
                ("l1", Penalty::L1),
                ("none", Penalty::None),
            ],
        )? {
            p.penalty = x;
        }
        if let Some(x) = r.f64("lambda", |x| x >= 0.0, "a number >= 0")? {
            if p.penalty == Penalty::None && x != 0.0 {
                return Err(ModelError::invalid_param(
                    "lambda",
                    x,
                    "0 or unset when penalty=none",
                ));
            }
            p.lambda = x;
        }
        if p.penalty == Penalty::None {
            p.lambda = 0.0;
        }
        if let Some(n) = r.usize("max_iter", 1..=1_000_000)? {
            p.max_iter = n as u32;
        }
        if let Some(x) = r.f64("tol", |x| x > 0.0, "a number > 0")? {
            p.tol = x;
        }
        if let Some(x) = r.f64("iv_min", |x| x >= 0.0, "a number >= 0")? {
            p.iv_min = x;
        }
        if let Some(x) = r.f64(
            "threshold",
            |x| (0.0..=1.0).contains(&x),
            "a number in [0, 1]",
        )? {
            p.threshold = x;
        }
        p.credit = CreditParams::read(&r, p.threshold)?;
        Ok(p)
    }

    fn logistic(&self) -> LogisticParams {
        LogisticParams {
            penalty: self.penalty,
            lambda: self.lambda,
            max_iter: self.max_iter,
            tol: self.tol,
            threshold: self.threshold,
            class_weight: ClassWeight::None,
            min_frequency: 1,
            date_parts: false,
        }
    }

    fn check(&self) -> Result<(), ModelError> {
        self.binning.check()?;
        self.logistic().check()?;
        if !(self.iv_min.is_finite() && self.iv_min >= 0.0) {
            return Err(ModelError::invalid_param(
                "iv_min",
                self.iv_min,
                "a number >= 0",
            ));
        }
        self.credit.check()
    }

    /// The canonical form recorded in manifests: every key, defaults filled in.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("min_bin_share".into(), self.binning.min_bin_share.into());
        m.insert("max_bins".into(), self.binning.max_bins.into());
        m.insert("prebins".into(), self.binning.prebins.into());
        m.insert("monotonic".into(), self.binning.trend.as_str().into());
        m.insert("monotone".into(), monotone_to_param(&self.monotone).into());
        m.insert("penalty".into(), self.penalty.as_str().into());
        m.insert("lambda".into(), self.lambda.into());
        m.insert("max_iter".into(), self.max_iter.into());
        m.insert("tol".into(), self.tol.into());
        m.insert("iv_min".into(), self.iv_min.into());
        m.insert("threshold".into(), self.threshold.into());
        self.credit.write_json(&mut m);
        serde_json::Value::Object(m)
    }

    fn from_json(v: &serde_json::Value) -> Result<Self, ModelError> {
        let params = params_from_json("scorecard", v)?;
        Self::from_params(&params)
            .map_err(|e| ModelError::invalid_artifact(format!("scorecard params: {e}")))
    }

    fn trend_for(&self, feature: &str) -> Trend {
        match self.monotone.iter().find(|(n, _)| n == feature) {
            Some((_, 1)) => Trend::Ascending,
            Some((_, -1)) => Trend::Descending,
            Some(_) => Trend::None,
            None => self.binning.trend,
        }
    }
}

/// The `scorecard` family.
/// What the `scorecard` family is.
pub const SPEC: FamilySpec = FamilySpec {
    name: "scorecard",
    aliases: &[],
    task: Task::Binary,
    summary: "Credit scorecard: optimal WoE binning, logistic regression on the WoE values, points scaled by base score, base odds and points to double the odds.",
    params: PARAM_NAMES,
    trainable: true,
    importable: false,
};

#[derive(Clone, Copy, Debug, Default)]
pub struct ScorecardFamily;

impl ModelFamily for ScorecardFamily {
    fn spec(&self) -> &FamilySpec {
        &SPEC
    }

    fn validate_params(&self, params: &Params) -> Result<serde_json::Value, ModelError> {
        ScorecardParams::from_params(params).map(|p| p.to_json())
    }

    fn fit(
        &self,
        data: &TrainingData<'_>,
        params: &Params,
        ctx: &FitContext<'_>,
    ) -> Result<Box<dyn FittedModel>, ModelError> {
        let (features, target) = (data.features, data.binary()?);
        let params = ScorecardParams::from_params(params)?;
        Ok(Box::new(fit(features, target, &params, ctx)?))
    }

    fn load_payload(&self, payload: &[u8]) -> Result<Box<dyn FittedModel>, ModelError> {
        Ok(Box::new(ScorecardModel::from_payload(payload)?))
    }
}

/// Why a training column has no points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScorecardDrop {
    /// Text or datetime column.
    UnsupportedType,
    /// No non-missing value in training.
    AllMissing,
    /// IV below `iv_min`.
    LowIv,
    /// Its coefficient came out positive (against its WoE).
    WrongSign,
    /// L1 set its coefficient to zero.
    ZeroCoefficient,
}

impl ScorecardDrop {
    pub fn as_str(self) -> &'static str {
        match self {
            ScorecardDrop::UnsupportedType => "unsupported_type",
            ScorecardDrop::AllMissing => "all_missing",
            ScorecardDrop::LowIv => "low_iv",
            ScorecardDrop::WrongSign => "wrong_sign",
            ScorecardDrop::ZeroCoefficient => "zero_coefficient",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            ScorecardDrop::UnsupportedType,
            ScorecardDrop::AllMissing,
            ScorecardDrop::LowIv,
            ScorecardDrop::WrongSign,
            ScorecardDrop::ZeroCoefficient,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// One line of the points table.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributePoints {
    pub feature: String,
    /// The bin label (`[12, 24)`, `A11, A12`, `missing`).
    pub bin: String,
    pub points: f64,
}

/// A fitted scorecard.
#[derive(Clone, Debug, PartialEq)]
pub struct ScorecardModel {
    params: ScorecardParams,
    input_schema: Schema,
    /// One per input feature.
    binnings: Vec<FeatureBinning>,
    /// One per input feature, 0 for a characteristic without points.
    coefficients: Vec<f64>,
    intercept: f64,
    /// Training mean of each input feature's WoE (the explanation reference).
    woe_means: Vec<f64>,
    /// Columns without points, with the reason (input features and left-out columns).
    dropped: Vec<(String, ScorecardDrop)>,
    positive_label: String,
    negative_label: String,
    iterations: u32,
    converged: bool,
}

/// Fits a scorecard on `features` (input columns only) and `target`.
pub fn fit(
    features: &Table,
    target: &BinaryTarget,
    params: &ScorecardParams,
    ctx: &FitContext<'_>,
) -> Result<ScorecardModel, ModelError> {
    params.check()?;
    check_target(features, target)?;
    for (name, _) in &params.monotone {
        match features.column(name).map(|c| c.data.column_type()) {
            Some(t) if t.is_numeric() || t == ColumnType::Date => {}
            Some(t) => {
                return Err(ModelError::invalid_param(
                    "monotone",
                    name,
                    format!("a numeric feature (`{name}` is {t})"),
                ));
            }
            None => {
                return Err(ModelError::invalid_param(
                    "monotone",
                    name,
                    "a feature of the training table",
                ));
            }
        }
    }
    params
        .credit
        .check_features(|f| features.column(f).is_some())?;
    ctx.check_cancelled()?;

    let y = &target.y;
    let mut fields = Vec::new();
    let mut binnings = Vec::new();
    let mut dropped = Vec::new();
    let n_cols = features.n_cols().max(1);
    for (k, col) in features.columns().iter().enumerate() {
        ctx.check_cancelled()?;
        ctx.progress.report("binning", k as f64 / n_cols as f64);
        let ty = col.data.column_type();
        if matches!(col.data, ColumnData::Text(_) | ColumnData::DateTime(_)) {
            dropped.push((col.name.clone(), ScorecardDrop::UnsupportedType));
            continue;
        }
        let field = Field::new(col.name.clone(), ty);
        let options = BinningOptions {
            trend: params.trend_for(&col.name),
            ..params.binning
        };
        match FeatureBinning::fit(&field, &col.data, y, &options)? {
            Some(b) => {
                fields.push(field);
                binnings.push(b);
            }
            None => dropped.push((col.name.clone(), ScorecardDrop::AllMissing)),
        }
    }
    if binnings.is_empty() {
        return Err(ModelError::NoUsableFeatures {
            reason: "no numeric, categorical or boolean column with a value".into(),
        });
    }
    let input_schema = Schema::new(fields).map_err(|e| ModelError::InvalidInput {
        feature: String::new(),
        row: None,
        reason: e.to_string(),
    })?;

    // WoE of every training row, per input feature.
    let n = features.n_rows();
    let woe_cols: Vec<Vec<f64>> = input_schema
        .fields
        .iter()
        .zip(&binnings)
        .map(|(f, b)| woe_column(b, table_column(features, f)?))
        .collect::<Result<_, _>>()?;
    let woe_means: Vec<f64> = woe_cols
        .iter()
        .map(|c| c.iter().sum::<f64>() / n as f64)
        .collect();

    let mut candidates: Vec<usize> = Vec::new();
    for (j, b) in binnings.iter().enumerate() {
        if b.iv() >= params.iv_min {
            candidates.push(j);
        } else {
            dropped.push((b.field().name.clone(), ScorecardDrop::LowIv));
        }
    }
    let logistic = params.logistic();
    let mut fit_round = 0.0;
    let sol = loop {
        if candidates.is_empty() {
            let best = binnings
                .iter()
                .max_by(|a, b| a.iv().total_cmp(&b.iv()))
                .map(|b| format!("{} ({:.4})", b.field().name, b.iv()))
                .unwrap_or_default();
            return Err(ModelError::NoUsableFeatures {
                reason: format!(
                    "no characteristic keeps a negative WoE coefficient with IV >= {} (highest IV: {best})",
                    params.iv_min
                ),
            });
        }
        ctx.check_cancelled()?;
        ctx.progress.report("fit", fit_round / (fit_round + 1.0));
        fit_round += 1.0;
        let k = candidates.len();
        let mut data = vec![0.0; n * k];
        for (c, &j) in candidates.iter().enumerate() {
            for (i, w) in woe_cols[j].iter().enumerate() {
                data[i * k + c] = *w;
            }
        }
        let m = Matrix::from_row_major(n, k, data);
        let sol = fit_dense(&m, y, &logistic, ctx)?;
        let worst = sol
            .coefficients
            .iter()
            .enumerate()
            .filter(|(_, b)| **b > 0.0)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(c, _)| c);
        match worst {
            Some(c) => {
                let j = candidates.remove(c);
                dropped.push((binnings[j].field().name.clone(), ScorecardDrop::WrongSign));
            }
            None => break (sol, candidates),
        }
    };
    let (sol, selected) = sol;
    let mut coefficients = vec![0.0; binnings.len()];
    for (c, &j) in selected.iter().enumerate() {
        coefficients[j] = sol.coefficients[c];
        if sol.coefficients[c] == 0.0 {
            dropped.push((
                binnings[j].field().name.clone(),
                ScorecardDrop::ZeroCoefficient,
            ));
        }
    }
    ctx.progress.report("fit", 1.0);
    Ok(ScorecardModel {
        params: params.clone(),
        input_schema,
        binnings,
        coefficients,
        intercept: sol.intercept,
        woe_means,
        dropped,
        positive_label: target.positive_label.clone(),
        negative_label: target.negative_label.clone(),
        iterations: sol.iterations,
        converged: sol.converged,
    })
}

/// The WoE of every row of a column under a binning.
fn woe_column(b: &FeatureBinning, data: &ColumnData) -> Result<Vec<f64>, ModelError> {
    let mut out = vec![0.0; data.len()];
    woe_block(b, data, 0, &mut out)?;
    Ok(out)
}

/// The WoE of rows `start..start + out.len()` of a column under a binning, into `out`; a cell
/// that cannot be binned names its row.
fn woe_block(
    b: &FeatureBinning,
    data: &ColumnData,
    start: usize,
    out: &mut [f64],
) -> Result<(), ModelError> {
    let range = start..start + out.len();
    let number = |x: Option<f64>| b.woe(b.bin_of_number(x));
    match data {
        ColumnData::Categorical(v) => {
            for (o, c) in out.iter_mut().zip(&v[range]) {
                *o = b.woe(b.bin_of_category(c.as_deref()));
            }
        }
        ColumnData::Boolean(v) => {
            for (o, c) in out.iter_mut().zip(&v[range]) {
                *o = b.woe(b.bin_of_category(c.map(bool_category)));
            }
        }
        ColumnData::Float(v) => {
            for (i, (o, x)) in out.iter_mut().zip(&v[range]).enumerate() {
                let x = match x {
                    Some(x) => finite_cell(&b.field().name, start + i, *x)?,
                    None => None,
                };
                *o = number(x);
            }
        }
        ColumnData::Integer(v) => {
            for (o, x) in out.iter_mut().zip(&v[range]) {
                *o = number(x.map(|i| i as f64));
            }
        }
        ColumnData::Date(v) => {
            for (o, d) in out.iter_mut().zip(&v[range]) {
                *o = number(d.map(date_ordinal));
            }
        }
        _ => {
            return Err(ModelError::InvalidInput {
                feature: b.field().name.clone(),
                row: None,
                reason: format!("{} columns cannot be binned", data.column_type()),
            });
        }
    }
    Ok(())
}

impl ScorecardModel {
    /// The WoE column of every input characteristic of `table`, in input order, the columns
    /// binned in parallel; the first failing column's error, in input order.
    fn woe_table(&self, table: &Table) -> Result<Vec<Vec<f64>>, ModelError> {
        let columns = table_columns(table, &self.input_schema.fields)?;
        self.binnings
            .par_iter()
            .zip(columns)
            .map(|(b, data)| woe_column(b, data))
            .collect::<Vec<_>>()
            .into_iter()
            .collect()
    }

    /// Per row of `table`: `Σ_j β_j · WoE_j` from `-0.0` and `Σ_j points_j` from `0.0`, each
    /// characteristic added in input order as the row paths add them (so the same bits). Rows
    /// go in 1 024-row blocks over rayon's threads, each block binning every characteristic
    /// into one reused buffer; the error is [`ScorecardModel::woe_table`]'s (the first failing
    /// column in input order), whichever block hit one.
    fn table_sums(&self, table: &Table) -> Result<(Vec<f64>, Vec<f64>), ModelError> {
        const ROWS: usize = 1024;
        let columns = table_columns(table, &self.input_schema.fields)?;
        let n = table.n_rows();
        let factor = self.scaling().factor();
        let mut z = vec![-0.0; n];
        let mut points = vec![0.0; n];
        let spread = z
            .par_chunks_mut(ROWS)
            .zip(points.par_chunks_mut(ROWS))
            .enumerate()
            .try_for_each_init(
                || vec![0.0; ROWS],
                |woe, (block, (z, points))| {
                    let woe = &mut woe[..z.len()];
                    for ((b, data), &beta) in
                        self.binnings.iter().zip(&columns).zip(&self.coefficients)
                    {
                        woe_block(b, data, block * ROWS, woe)?;
                        for ((z, s), w) in z.iter_mut().zip(points.iter_mut()).zip(woe.iter()) {
                            *z += beta * w;
                            *s += if beta == 0.0 { 0.0 } else { -factor * beta * w };
                        }
                    }
                    Ok(())
                },
            );
        if let Err(e) = spread {
            self.woe_table(table)?;
            return Err(e);
        }
        Ok((z, points))
    }

    pub fn scorecard_params(&self) -> &ScorecardParams {
        &self.params
    }

    /// One binning per input feature, in input order.
    pub fn binnings(&self) -> &[FeatureBinning] {
        &self.binnings
    }

    /// The binning of `feature`.
    pub fn binning(&self, feature: &str) -> Option<&FeatureBinning> {
        self.input_schema
            .index_of(feature)
            .map(|j| &self.binnings[j])
    }

    /// The WoE coefficient of each input feature (0 without points).
    pub fn coefficients(&self) -> &[f64] {
        &self.coefficients
    }

    pub fn intercept(&self) -> f64 {
        self.intercept
    }

    /// Columns without points and why.
    pub fn dropped(&self) -> &[(String, ScorecardDrop)] {
        &self.dropped
    }

    pub fn scaling(&self) -> ScoreScaling {
        self.params.credit.scaling
    }

    /// The base points line: `offset − factor · β_0`.
    pub fn base_points(&self) -> f64 {
        let s = self.scaling();
        s.offset() - s.factor() * self.intercept
    }

    fn points_of(&self, j: usize, index: BinIndex) -> f64 {
        if self.coefficients[j] == 0.0 {
            return 0.0;
        }
        -self.scaling().factor() * self.coefficients[j] * self.binnings[j].woe(index)
    }

    /// The most points any attribute (bin, missing bin included) of input feature `j` earns.
    fn max_points_of(&self, j: usize) -> f64 {
        self.binnings[j]
            .indices()
            .map(|i| self.points_of(j, i))
            .fold(f64::NEG_INFINITY, f64::max)
    }

    /// The points table: every attribute of every characteristic with points, in input order.
    pub fn points_table(&self) -> Vec<AttributePoints> {
        let mut out = Vec::new();
        for (j, b) in self.binnings.iter().enumerate() {
            if self.coefficients[j] == 0.0 {
                continue;
            }
            for i in b.indices() {
                out.push(AttributePoints {
                    feature: b.field().name.clone(),
                    bin: b.bin(i).map(|b| b.label.clone()).unwrap_or_default(),
                    points: self.points_of(j, i),
                });
            }
        }
        out
    }

    /// A value of `feature` in its highest-points attribute: the reference of the points-below-
    /// maximum reason codes (moving a feature there removes its shortfall).
    pub fn reference_value(&self, feature: &str) -> Option<Value> {
        let j = self.input_schema.index_of(feature)?;
        let b = &self.binnings[j];
        let best = b
            .indices()
            .max_by(|x, y| self.points_of(j, *x).total_cmp(&self.points_of(j, *y)))?;
        b.representative(best)
    }

    fn bins_of_row(&self, row: &[Value]) -> Result<Vec<BinIndex>, ModelError> {
        if row.len() != self.input_schema.len() {
            return Err(ModelError::RowLength {
                row: None,
                expected: self.input_schema.len(),
                got: row.len(),
            });
        }
        self.binnings
            .iter()
            .zip(row)
            .map(|(b, v)| b.bin_index(v))
            .collect()
    }

    fn logit_of_bins(&self, bins: &[BinIndex]) -> f64 {
        self.intercept
            + bins
                .iter()
                .enumerate()
                .map(|(j, &i)| self.coefficients[j] * self.binnings[j].woe(i))
                .sum::<f64>()
    }

    /// The default log-odds of one row.
    pub fn decision_function(&self, row: &[Value]) -> Result<f64, ModelError> {
        Ok(self.logit_of_bins(&self.bins_of_row(row)?))
    }

    /// The points of each input feature for one row.
    pub fn row_points(&self, row: &[Value]) -> Result<Vec<f64>, ModelError> {
        let bins = self.bins_of_row(row)?;
        Ok(bins
            .iter()
            .enumerate()
            .map(|(j, &i)| self.points_of(j, i))
            .collect())
    }

    /// Rebuilds a model from [`FittedModel::payload`] bytes, checking every invariant scoring
    /// relies on.
    pub fn from_payload(bytes: &[u8]) -> Result<Self, ModelError> {
        let bad =
            |reason: String| ModelError::invalid_artifact(format!("scorecard payload: {reason}"));
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        match value
            .get("payload_version")
            .and_then(serde_json::Value::as_u64)
        {
            Some(v) if v == u64::from(PAYLOAD_VERSION) => {}
            Some(v) => {
                return Err(bad(format!(
                    "payload version {v} is not supported (this aurum reads {PAYLOAD_VERSION})"
                )));
            }
            None => return Err(bad("no payload_version".into())),
        }
        let stored: StoredScorecard =
            serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        let params = ScorecardParams::from_json(&stored.params)?;
        let binnings: Vec<FeatureBinning> = stored
            .binnings
            .into_iter()
            .map(FeatureBinning::from_stored)
            .collect::<Result<_, _>>()?;
        if binnings.is_empty() {
            return Err(bad("no characteristics".into()));
        }
        let input_schema = Schema::new(binnings.iter().map(|b| b.field().clone()).collect())
            .map_err(|e| bad(e.to_string()))?;
        let k = binnings.len();
        if stored.coefficients.len() != k || stored.woe_means.len() != k {
            return Err(bad(format!(
                "{} coefficients and {} WoE means for {k} characteristics",
                stored.coefficients.len(),
                stored.woe_means.len()
            )));
        }
        if !stored.intercept.is_finite()
            || stored
                .coefficients
                .iter()
                .chain(&stored.woe_means)
                .any(|c| !c.is_finite())
        {
            return Err(bad("non-finite coefficient".into()));
        }
        if stored.positive_label.is_empty() || stored.positive_label == stored.negative_label {
            return Err(bad("positive and negative labels must differ".into()));
        }
        let dropped = stored
            .dropped
            .into_iter()
            .map(|d| {
                ScorecardDrop::parse(&d.reason)
                    .map(|r| (d.name, r))
                    .ok_or_else(|| bad(format!("unknown drop reason `{}`", d.reason)))
            })
            .collect::<Result<_, _>>()?;
        Ok(ScorecardModel {
            params,
            input_schema,
            binnings,
            coefficients: stored.coefficients,
            intercept: stored.intercept,
            woe_means: stored.woe_means,
            dropped,
            positive_label: stored.positive_label,
            negative_label: stored.negative_label,
            iterations: stored.iterations,
            converged: stored.converged,
        })
    }
}

impl FittedModel for ScorecardModel {
    fn family(&self) -> &str {
        "scorecard"
    }

    fn task(&self) -> Task {
        Task::Binary
    }

    fn input_schema(&self) -> &Schema {
        &self.input_schema
    }

    fn params(&self) -> serde_json::Value {
        self.params.to_json()
    }

    fn summary(&self) -> serde_json::Value {
        let characteristics: Vec<_> = self
            .binnings
            .iter()
            .zip(&self.coefficients)
            .map(|(b, c)| {
                serde_json::json!({
                    "name": b.field().name,
                    "iv": b.iv(),
                    "bins": b.bins().len() + usize::from(b.missing().is_some()),
                    "coefficient": c,
                })
            })
            .collect();
        serde_json::json!({
            "intercept": self.intercept,
            "base_points": self.base_points(),
            "characteristics": characteristics,
            "with_points": self.coefficients.iter().filter(|c| **c != 0.0).count(),
            "iterations": self.iterations,
            "converged": self.converged,
            "dropped_columns": dropped_json(&self.dropped),
        })
    }

    /// Binning tables with points, the points table, scaling and policy.
    fn details(&self) -> serde_json::Value {
        let s = self.scaling();
        let characteristics: Vec<_> = self
            .binnings
            .iter()
            .enumerate()
            .map(|(j, b)| {
                let mut t = b.table_json();
                let points: Vec<f64> = b.indices().map(|i| self.points_of(j, i)).collect();
                if let Some(rows) = t["bins"].as_array_mut() {
                    for (row, p) in rows.iter_mut().zip(points) {
                        row["points"] = p.into();
                    }
                }
                t["coefficient"] = self.coefficients[j].into();
                t["selected"] = (self.coefficients[j] != 0.0).into();
                t
            })
            .collect();
        let points: Vec<_> = self
            .points_table()
            .into_iter()
            .map(|p| serde_json::json!({"feature": p.feature, "bin": p.bin, "points": p.points}))
            .collect();
        serde_json::json!({
            "scaling": {
                "base_score": s.base_score,
                "base_odds": s.base_odds,
                "pdo": s.pdo,
                "factor": s.factor(),
                "offset": s.offset(),
            },
            "base_points": self.base_points(),
            "intercept": self.intercept,
            "binning": characteristics,
            "points": points,
            "dropped_columns": dropped_json(&self.dropped),
        })
    }

    fn payload(&self) -> Result<Vec<u8>, ModelError> {
        let stored = StoredScorecard {
            payload_version: PAYLOAD_VERSION,
            params: self.params.to_json(),
            binnings: self
                .binnings
                .iter()
                .map(FeatureBinning::to_stored)
                .collect(),
            coefficients: self.coefficients.clone(),
            intercept: self.intercept,
            woe_means: self.woe_means.clone(),
            dropped: self
                .dropped
                .iter()
                .map(|(n, r)| StoredDrop {
                    name: n.clone(),
                    reason: r.as_str().to_string(),
                })
                .collect(),
            positive_label: self.positive_label.clone(),
            negative_label: self.negative_label.clone(),
            iterations: self.iterations,
            converged: self.converged,
        };
        serde_json::to_vec(&stored).map_err(|e| ModelError::Serialization {
            reason: e.to_string(),
        })
    }

    fn as_binary(&self) -> Option<&dyn BinaryClassifier> {
        Some(self)
    }

    fn into_binary(self: Box<Self>) -> Option<Box<dyn BinaryClassifier>> {
        Some(self)
    }
}

impl BinaryClassifier for ScorecardModel {
    fn threshold(&self) -> f64 {
        self.params.threshold
    }

    fn labels(&self) -> (&str, &str) {
        (&self.positive_label, &self.negative_label)
    }

    fn predict_proba_one(&self, row: &[Value]) -> Result<f64, ModelError> {
        self.decision_function(row).map(sigmoid)
    }

    /// The terms summed as [`ScorecardModel::decision_function`] sums them (from `-0.0`, as
    /// `Iterator::sum` does, then added to the intercept): the same bits.
    fn predict_proba_table(&self, table: &Table) -> Result<Vec<f64>, ModelError> {
        let (z, _) = self.table_sums(table)?;
        Ok(z.into_iter().map(|z| sigmoid(self.intercept + z)).collect())
    }

    /// Log-odds contributions `β_j · (WoE_j(x) − mean_j)`; the base value is
    /// `β_0 + Σ_j β_j · mean_j`, so base + contributions = log-odds exactly.
    fn explain(&self, row: &[Value]) -> Result<Explanation, ModelError> {
        let bins = self.bins_of_row(row)?;
        let base_value = self.intercept
            + self
                .coefficients
                .iter()
                .zip(&self.woe_means)
                .map(|(b, m)| b * m)
                .sum::<f64>();
        let mut contributions: Vec<Contribution> = self
            .input_schema
            .fields
            .iter()
            .zip(row)
            .enumerate()
            .map(|(j, (f, v))| Contribution {
                feature: f.name.clone(),
                value: v.clone(),
                contribution: self.coefficients[j]
                    * (self.binnings[j].woe(bins[j]) - self.woe_means[j]),
            })
            .collect();
        contributions.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
        Ok(Explanation {
            space: "log_odds".into(),
            base_value,
            contributions,
        })
    }

    /// Base points + Σ attribute points.
    fn score_points(&self, row: &[Value]) -> Result<Option<f64>, ModelError> {
        Ok(Some(
            self.base_points() + self.row_points(row)?.iter().sum::<f64>(),
        ))
    }

    /// [`BinaryClassifier::score_points`] for a table: each characteristic's points added in
    /// input order, as the row path sums them.
    fn score_points_table(&self, table: &Table) -> Result<Option<Vec<f64>>, ModelError> {
        let (_, points) = self.table_sums(table)?;
        let base = self.base_points();
        Ok(Some(points.into_iter().map(|s| base + s).collect()))
    }

    /// [`ScorecardModel::predict_proba_table`] and [`ScorecardModel::score_points_table`] from
    /// one WoE pass over the table.
    fn score_table(&self, table: &Table) -> Result<TableScores, ModelError> {
        let (z, points) = self.table_sums(table)?;
        let base = self.base_points();
        Ok(TableScores {
            pd: z.into_iter().map(|z| sigmoid(self.intercept + z)).collect(),
            points: Some(points.into_iter().map(|s| base + s).collect()),
        })
    }

    fn policy(&self) -> DecisionPolicy {
        self.params.credit.policy.clone()
    }

    /// Points below maximum: `max_points(feature) − points(feature)` per characteristic.
    fn reasons(&self, row: &[Value], max: usize) -> Result<Vec<Reason>, ModelError> {
        let points = self.row_points(row)?;
        let shortfalls: Vec<(&str, f64)> = (0..self.binnings.len())
            .filter(|&j| self.coefficients[j] != 0.0)
            .map(|j| {
                (
                    self.input_schema.fields[j].name.as_str(),
                    self.max_points_of(j) - points[j],
                )
            })
            .collect();
        Ok(rank_adverse(
            shortfalls,
            &self.params.credit.reason_texts,
            max,
        ))
    }
}

fn dropped_json(dropped: &[(String, ScorecardDrop)]) -> serde_json::Value {
    dropped
        .iter()
        .map(|(n, r)| serde_json::json!({"name": n, "reason": r.as_str()}))
        .collect()
}

/// Version of [`StoredScorecard`], independent of the artifact container's format version.
const PAYLOAD_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredScorecard {
    payload_version: u32,
    params: serde_json::Value,
    binnings: Vec<StoredBinning>,
    coefficients: Vec<f64>,
    intercept: f64,
    woe_means: Vec<f64>,
    dropped: Vec<StoredDrop>,
    positive_label: String,
    negative_label: String,
    iterations: u32,
    converged: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredDrop {
    name: String,
    reason: String,
}

#[cfg(test)]
mod tests {
    use aurum_core::{CancelToken, Column, NoProgress};

    use super::*;

    #[test]
    fn param_names_are_sorted_and_include_the_credit_ones() {
        assert!(PARAM_NAMES.windows(2).all(|w| w[0] < w[1]));
        for n in crate::policy::CREDIT_PARAM_NAMES {
            assert!(PARAM_NAMES.contains(n), "{n}");
        }
    }

    #[test]
    fn params_validate_and_round_trip() {
        let fam = ScorecardFamily;
        let canonical = fam.validate_params(&Params::new()).unwrap();
        assert_eq!(canonical["base_score"], 600.0);
        assert_eq!(canonical["base_odds"], 50.0);
        assert_eq!(canonical["pdo"], 20.0);
        assert_eq!(canonical["monotonic"], "auto");
        assert_eq!(canonical["policy_pd_cutoff"], 0.5);
        assert_eq!(canonical["iv_min"], 0.02);
        let back = ScorecardParams::from_json(&canonical).unwrap();
        assert_eq!(back, ScorecardParams::default());

        let e = fam
            .validate_params(&[("pdo_points".to_string(), "20".to_string())].into())
            .unwrap_err();
        assert_eq!(e.code(), "unknown_param");
        assert!(
            e.to_string().contains("allowed: base_odds, base_score"),
            "{e}"
        );
        for (k, v) in [
            ("monotonic", "up"),
            ("min_bin_share", "0.6"),
            ("max_bins", "0"),
            ("iv_min", "-1"),
            ("monotone", "x:3"),
            ("penalty", "l3"),
        ] {
            let e = fam
                .validate_params(&[(k.to_string(), v.to_string())].into())
                .unwrap_err();
            assert_eq!(e.code(), "invalid_param", "{k}={v}");
        }
    }

    /// x drives the bad rate up; c is pure noise.
    fn toy() -> (Table, BinaryTarget) {
        let n = 400;
        let x: Vec<Option<f64>> = (0..n).map(|i| Some((i % 100) as f64)).collect();
        let c: Vec<Option<String>> = (0..n).map(|i| Some(format!("c{}", i % 3))).collect();
        let y: Vec<f64> = (0..n)
            .map(|i| f64::from(u8::from((i % 100) * 7 % 100 < (i % 100) / 2 + 10)))
            .collect();
        let t = Table::new(vec![
            Column {
                name: "x".into(),
                data: ColumnData::Float(x),
            },
            Column {
                name: "c".into(),
                data: ColumnData::Categorical(c),
            },
        ])
        .unwrap();
        let y = BinaryTarget {
            column: "y".into(),
            y,
            positive_label: "bad".into(),
            negative_label: "good".into(),
        };
        (t, y)
    }

    #[test]
    fn points_add_up_to_the_scaled_log_odds() {
        let (t, y) = toy();
        let cancel = CancelToken::new();
        let ctx = FitContext {
            progress: &NoProgress,
            cancel: &cancel,
            seed: 0,
        };
        let m = fit(&t, &y, &ScorecardParams::default(), &ctx).unwrap();
        assert!(m.coefficients()[0] < 0.0);
        let s = m.scaling();
        for i in 0..t.n_rows() {
            let row = t.row(i);
            let z = m.decision_function(&row).unwrap();
            let score = m.score_points(&row).unwrap().unwrap();
            assert!((score - s.score_from_log_odds(z)).abs() < 1e-9);
            let e = m.explain(&row).unwrap();
            let total = e.base_value + e.contributions.iter().map(|c| c.contribution).sum::<f64>();
            assert!((total - z).abs() < 1e-12);
        }
        let back = ScorecardModel::from_payload(&m.payload().unwrap()).unwrap();
        assert_eq!(back, m);
    }
}
