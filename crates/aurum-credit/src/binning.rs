//! Optimal binning with weight of evidence (WoE) and information value (IV), the first stage of a
//! credit scorecard.
//!
//! Why bins: a scorecard gives each applicant a fixed number of points per *attribute* (bin) of
//! each characteristic, so the bins must be few, large enough to be stable, and (for numeric
//! characteristics) ordered in risk so that the points read sensibly.
//!
//! # Sign convention
//!
//! `good` is the negative class and `bad` the positive class (the event, e.g. default). For a bin
//! with `g` goods and `b` bads out of `G` goods and `B` bads in total:
//!
//! ```text
//! WoE = ln( (g / G) / (b / B) )          higher WoE = lower risk
//! IV  = Σ_bins (g / G − b / B) · WoE     ≥ 0
//! ```
//!
//! A bin with no goods or no bads would have an infinite WoE; such a bin gets `0.5` added to both
//! its counts (Laplace smoothing of empty cells) before the shares are taken. Only those bins are
//! smoothed.
//!
//! # Numeric characteristics
//!
//! 1. **Pre-binning**: up to [`BinningOptions::prebins`] (default 20) quantile bins of the
//!    non-missing values, cut at observed values (`x < cut` goes left), duplicates removed.
//! 2. **Trend** ([`Trend`], parameter `monotonic`): for `ascending` (the bad rate rises with the
//!    value) or `descending`, adjacent pre-bins that violate the trend are pooled with the
//!    pool-adjacent-violators algorithm on the bad rate; `auto` bins both ways and keeps the
//!    direction with the higher IV; `none` keeps the pre-bins as they are.
//! 3. **Minimum size**: while a bin holds fewer than `ceil(min_bin_share · n)` rows (`n` counts
//!    every training row, missing ones included; default share 5%), the smallest bin is merged
//!    into the neighbour with the closer bad rate. Merging neighbours of a monotone sequence keeps
//!    it monotone.
//! 4. **Maximum count**: while there are more than `max_bins` (default 10) bins, the adjacent pair
//!    whose merge loses the least IV is merged.
//! 5. **Monotone WoE**: with a trend, any adjacent pair whose *smoothed* WoE still breaks it is
//!    merged, so the stored WoE is monotone (non-increasing for `ascending`, non-decreasing for
//!    `descending`), not just the raw bad rate.
//!
//! # Categorical and boolean characteristics
//!
//! Categories (booleans as `"false"` / `"true"`) are ordered by bad rate (ties by name) and then
//! treated like numeric pre-bins without a trend: steps 3 and 4 merge neighbours in that order,
//! so every bin is a set of categories of similar risk.
//!
//! # Missing and unseen values
//!
//! Missing values in training get their own bin, exempt from the size rules and the trend. A
//! missing value at scoring time when training had none, or a category never seen in training,
//! falls in no bin: it is [`BinIndex::Unseen`] and gets WoE 0, the population-average risk (the
//! convention of `optbinning`). IV counts the missing bin.

use std::collections::BTreeMap;
use std::ops::Range;

use aurum_core::{ColumnData, ColumnType, Field, Value};
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::pipeline::{
    LevelIndex, category_column, numeric_column, read_category, read_numeric, value_of_number,
};

/// Default smallest share of training rows in a (non-missing) bin.
pub const DEFAULT_MIN_BIN_SHARE: f64 = 0.05;
/// Default largest number of (non-missing) bins.
pub const DEFAULT_MAX_BINS: usize = 10;
/// Default number of quantile pre-bins of a numeric characteristic.
pub const DEFAULT_PREBINS: usize = 20;
/// Added to both counts of a bin with no goods or no bads.
pub const EMPTY_CELL_SMOOTHING: f64 = 0.5;
/// Largest accepted `max_bins` / `prebins`.
pub const MAX_BINS_LIMIT: usize = 1000;

/// The required direction of the bad rate as a numeric value grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trend {
    /// Try both directions, keep the one with the higher IV.
    Auto,
    /// The bad rate does not fall as the value rises (WoE non-increasing).
    Ascending,
    /// The bad rate does not rise as the value rises (WoE non-decreasing).
    Descending,
    /// No constraint.
    None,
}

impl Trend {
    pub const ALL: [Trend; 4] = [
        Trend::Auto,
        Trend::Ascending,
        Trend::Descending,
        Trend::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Trend::Auto => "auto",
            Trend::Ascending => "ascending",
            Trend::Descending => "descending",
            Trend::None => "none",
        }
    }

    /// Parses `auto`, `ascending`, `descending`, `none` (case-insensitive).
    pub fn parse(s: &str) -> Option<Trend> {
        Trend::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// How to bin one characteristic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BinningOptions {
    /// Smallest share of all training rows in a non-missing bin, in `[0, 0.5]`.
    pub min_bin_share: f64,
    /// Largest number of non-missing bins, at least 1.
    pub max_bins: usize,
    /// Quantile pre-bins of numeric values, at least 1.
    pub prebins: usize,
    /// Trend of the bad rate for numeric characteristics (ignored for categorical ones).
    pub trend: Trend,
}

impl Default for BinningOptions {
    fn default() -> Self {
        Self {
            min_bin_share: DEFAULT_MIN_BIN_SHARE,
            max_bins: DEFAULT_MAX_BINS,
            prebins: DEFAULT_PREBINS,
            trend: Trend::Auto,
        }
    }
}

impl BinningOptions {
    pub(crate) fn check(&self) -> Result<(), ModelError> {
        if !(0.0..=0.5).contains(&self.min_bin_share) {
            return Err(ModelError::invalid_param(
                "min_bin_share",
                self.min_bin_share,
                "a number in [0, 0.5]",
            ));
        }
        if !(1..=MAX_BINS_LIMIT).contains(&self.max_bins) {
            return Err(ModelError::invalid_param(
                "max_bins",
                self.max_bins,
                format!("an integer in 1..={MAX_BINS_LIMIT}"),
            ));
        }
        if !(1..=MAX_BINS_LIMIT).contains(&self.prebins) {
            return Err(ModelError::invalid_param(
                "prebins",
                self.prebins,
                format!("an integer in 1..={MAX_BINS_LIMIT}"),
            ));
        }
        Ok(())
    }
}

/// WoE and IV contribution of a bin with `goods` and `bads` out of `total_goods` and
/// `total_bads` (both `> 0`), with the empty-cell smoothing of the module docs.
pub fn woe_iv(goods: usize, bads: usize, total_goods: usize, total_bads: usize) -> (f64, f64) {
    let (g, b) = if goods == 0 || bads == 0 {
        (
            goods as f64 + EMPTY_CELL_SMOOTHING,
            bads as f64 + EMPTY_CELL_SMOOTHING,
        )
    } else {
        (goods as f64, bads as f64)
    };
    let dg = g / total_goods as f64;
    let db = b / total_bads as f64;
    let woe = (dg / db).ln();
    (woe, (dg - db) * woe)
}

/// One bin of a fitted binning.
#[derive(Clone, Debug, PartialEq)]
pub struct Bin {
    /// `[12, 24)`, `(-inf, 12)`, `A11, A12`, `missing`.
    pub label: String,
    pub goods: usize,
    pub bads: usize,
    pub woe: f64,
    /// This bin's IV contribution.
    pub iv: f64,
}

impl Bin {
    pub fn count(&self) -> usize {
        self.goods + self.bads
    }

    /// `bads / count` (0 for an empty bin).
    pub fn bad_rate(&self) -> f64 {
        if self.count() == 0 {
            0.0
        } else {
            self.bads as f64 / self.count() as f64
        }
    }
}

/// Where a value falls in a binning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinIndex {
    /// The `i`-th non-missing bin.
    Bin(usize),
    /// The missing-values bin (training had missing values).
    Missing,
    /// No bin: a missing value training never saw, or an unseen category (WoE 0).
    Unseen,
}

/// How values map to bins.
#[derive(Clone, Debug, PartialEq)]
pub enum BinRule {
    /// Bin `i` holds `edges[i-1] <= x < edges[i]` (the first and last bins are open-ended).
    /// `ranges[i]` is the smallest and largest training value in bin `i`.
    Numeric {
        edges: Vec<f64>,
        ranges: Vec<(f64, f64)>,
    },
    /// Bin `i` holds the categories `groups[i]`.
    Categorical {
        groups: Vec<Vec<String>>,
        index: LevelIndex,
    },
}

/// The fitted binning of one characteristic.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureBinning {
    field: Field,
    rule: BinRule,
    bins: Vec<Bin>,
    missing: Option<Bin>,
    trend: Trend,
    iv: f64,
}

/// Counts of one group of adjacent atoms (pre-bins or ordered categories).
#[derive(Clone, Debug)]
struct Group {
    goods: usize,
    bads: usize,
    atoms: Range<usize>,
}

impl Group {
    fn count(&self) -> usize {
        self.goods + self.bads
    }
}

fn merge(groups: &mut Vec<Group>, i: usize) {
    let next = groups.remove(i + 1);
    let g = &mut groups[i];
    g.goods += next.goods;
    g.bads += next.bads;
    g.atoms = g.atoms.start..next.atoms.end;
}

/// `rate(a) > rate(b)` exactly (cross-multiplied counts).
fn rate_gt(a: &Group, b: &Group) -> bool {
    (a.bads as u128) * (b.count() as u128) > (b.bads as u128) * (a.count() as u128)
}

fn rate(g: &Group) -> f64 {
    g.bads as f64 / g.count().max(1) as f64
}

/// Pool adjacent violators: afterwards the bad rate is non-decreasing (`ascending`) or
/// non-increasing along the groups.
fn pava(groups: Vec<Group>, ascending: bool) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::with_capacity(groups.len());
    for g in groups {
        out.push(g);
        while out.len() >= 2 {
            let (a, b) = (&out[out.len() - 2], &out[out.len() - 1]);
            let violates = if ascending {
                rate_gt(a, b)
            } else {
                rate_gt(b, a)
            };
            if !violates {
                break;
            }
            let i = out.len() - 2;
            merge(&mut out, i);
        }
    }
    out
}

fn enforce_min_count(groups: &mut Vec<Group>, min_count: usize) {
    while groups.len() > 1 {
        let Some((i, _)) = groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.count() < min_count)
            .min_by_key(|(i, g)| (g.count(), *i))
        else {
            break;
        };
        let left = i.checked_sub(1);
        let right = (i + 1 < groups.len()).then_some(i + 1);
        let j = match (left, right) {
            (Some(l), Some(r)) => {
                let dl = (rate(&groups[l]) - rate(&groups[i])).abs();
                let dr = (rate(&groups[r]) - rate(&groups[i])).abs();
                if dl < dr || (dl == dr && groups[l].count() <= groups[r].count()) {
                    l
                } else {
                    r
                }
            }
            (Some(l), None) => l,
            (None, Some(r)) => r,
            (None, None) => break,
        };
        merge(groups, i.min(j));
    }
}

fn group_iv(g: &Group, total_goods: usize, total_bads: usize) -> f64 {
    woe_iv(g.goods, g.bads, total_goods, total_bads).1
}

fn enforce_max_bins(groups: &mut Vec<Group>, max_bins: usize, tg: usize, tb: usize) {
    while groups.len() > max_bins.max(1) {
        let best = (0..groups.len() - 1)
            .map(|i| {
                let (a, b) = (&groups[i], &groups[i + 1]);
                let merged = Group {
                    goods: a.goods + b.goods,
                    bads: a.bads + b.bads,
                    atoms: 0..0,
                };
                let loss = group_iv(a, tg, tb) + group_iv(b, tg, tb) - group_iv(&merged, tg, tb);
                (i, loss)
            })
            .min_by(|x, y| x.1.total_cmp(&y.1))
            .map(|(i, _)| i);
        match best {
            Some(i) => merge(groups, i),
            None => break,
        }
    }
}

/// Merges adjacent pairs until the smoothed WoE follows the trend (non-increasing for ascending
/// bad rates).
fn enforce_monotone_woe(groups: &mut Vec<Group>, ascending: bool, tg: usize, tb: usize) {
    loop {
        let woe: Vec<f64> = groups
            .iter()
            .map(|g| woe_iv(g.goods, g.bads, tg, tb).0)
            .collect();
        let violation = woe
            .windows(2)
            .position(|w| if ascending { w[1] > w[0] } else { w[1] < w[0] });
        match violation {
            Some(i) => merge(groups, i),
            None => break,
        }
    }
}

fn total_iv(groups: &[Group], tg: usize, tb: usize) -> f64 {
    groups.iter().map(|g| group_iv(g, tg, tb)).sum()
}

/// The groups of atoms after the trend, size and count rules. `missing_iv` is the IV of the
/// missing bin (added when comparing directions, which it does not change).
fn optimise(
    atoms: Vec<Group>,
    trend: Trend,
    min_count: usize,
    max_bins: usize,
    tg: usize,
    tb: usize,
) -> (Vec<Group>, Trend) {
    let run = |ascending: Option<bool>| {
        let mut g = match ascending {
            Some(asc) => pava(atoms.clone(), asc),
            None => atoms.clone(),
        };
        enforce_min_count(&mut g, min_count);
        enforce_max_bins(&mut g, max_bins, tg, tb);
        if let Some(asc) = ascending {
            enforce_monotone_woe(&mut g, asc, tg, tb);
        }
        g
    };
    match trend {
        Trend::Ascending => (run(Some(true)), Trend::Ascending),
        Trend::Descending => (run(Some(false)), Trend::Descending),
        Trend::None => (run(None), Trend::None),
        Trend::Auto => {
            let up = run(Some(true));
            let down = run(Some(false));
            if total_iv(&down, tg, tb) > total_iv(&up, tg, tb) {
                (down, Trend::Descending)
            } else {
                (up, Trend::Ascending)
            }
        }
    }
}

fn fmt_edge(x: f64, ty: ColumnType) -> String {
    // A date feature is binned on its day ordinal; `x >= edge` first holds on day ceil(edge),
    // so that day names the edge, as a date a person can read.
    if ty == ColumnType::Date
        && let Some(d) = crate::pipeline::date_of_ordinal(x.ceil())
    {
        return d.format("%Y-%m-%d").to_string();
    }
    format!("{x}")
}

impl FeatureBinning {
    /// Bins one training column against `y` (1 = bad). `None` when the column has no
    /// non-missing value. Text, date and datetime columns are refused with
    /// [`ModelError::InvalidInput`]; so is `y` of the wrong length or with one class only.
    pub fn fit(
        field: &Field,
        data: &ColumnData,
        y: &[f64],
        options: &BinningOptions,
    ) -> Result<Option<FeatureBinning>, ModelError> {
        options.check()?;
        let bad_input = |reason: String| ModelError::InvalidInput {
            feature: field.name.clone(),
            row: None,
            reason,
        };
        if data.len() != y.len() {
            return Err(ModelError::InvalidTarget {
                reason: format!(
                    "the target has {} values but feature `{}` has {} rows",
                    y.len(),
                    field.name,
                    data.len()
                ),
            });
        }
        let tb = y.iter().filter(|&&v| v == 1.0).count();
        let tg = y.len() - tb;
        if tb == 0 || tg == 0 {
            return Err(ModelError::NotEnoughData {
                reason: "binning needs both classes in the target".into(),
            });
        }
        let min_count = (options.min_bin_share * y.len() as f64 - 1e-9)
            .ceil()
            .max(0.0) as usize;
        if let Some(values) = numeric_column(&field.name, data) {
            let values = values?;
            Ok(Self::fit_numeric(
                field, &values, y, options, min_count, tg, tb,
            ))
        } else if let Some(values) = category_column(data) {
            Ok(Self::fit_categorical(
                field, &values, y, options, min_count, tg, tb,
            ))
        } else {
            Err(bad_input(format!(
                "{} columns cannot be binned",
                data.column_type()
            )))
        }
    }

    fn missing_bin(
        values_missing: impl Iterator<Item = bool>,
        y: &[f64],
        tg: usize,
        tb: usize,
    ) -> Option<Bin> {
        let (mut goods, mut bads) = (0, 0);
        for (m, &yi) in values_missing.zip(y) {
            if m {
                if yi == 1.0 {
                    bads += 1;
                } else {
                    goods += 1;
                }
            }
        }
        (goods + bads > 0).then(|| {
            let (woe, iv) = woe_iv(goods, bads, tg, tb);
            Bin {
                label: "missing".into(),
                goods,
                bads,
                woe,
                iv,
            }
        })
    }

    fn fit_numeric(
        field: &Field,
        values: &[Option<f64>],
        y: &[f64],
        options: &BinningOptions,
        min_count: usize,
        tg: usize,
        tb: usize,
    ) -> Option<FeatureBinning> {
        let mut present: Vec<(f64, bool)> = values
            .iter()
            .zip(y)
            .filter_map(|(x, &yi)| x.map(|x| (x, yi == 1.0)))
            .collect();
        if present.is_empty() {
            return None;
        }
        present.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let m = present.len();
        let mut cuts: Vec<f64> = Vec::new();
        for q in 1..options.prebins {
            let c = present[q * m / options.prebins].0;
            if c > present[0].0 && cuts.last().is_none_or(|&l| c > l) {
                cuts.push(c);
            }
        }
        let mut atoms: Vec<Group> = (0..=cuts.len())
            .map(|k| Group {
                goods: 0,
                bads: 0,
                atoms: k..k + 1,
            })
            .collect();
        for &(x, bad) in &present {
            let k = cuts.partition_point(|&c| c <= x);
            if bad {
                atoms[k].bads += 1;
            } else {
                atoms[k].goods += 1;
            }
        }
        let (groups, trend) = optimise(atoms, options.trend, min_count, options.max_bins, tg, tb);
        let edges: Vec<f64> = groups[1..]
            .iter()
            .map(|g| cuts[g.atoms.start - 1])
            .collect();
        let mut ranges = vec![(f64::INFINITY, f64::NEG_INFINITY); groups.len()];
        for &(x, _) in &present {
            let i = edges.partition_point(|&e| e <= x);
            ranges[i].0 = ranges[i].0.min(x);
            ranges[i].1 = ranges[i].1.max(x);
        }
        let rule = BinRule::Numeric { edges, ranges };
        let missing = Self::missing_bin(values.iter().map(Option::is_none), y, tg, tb);
        Some(Self::assemble(
            field.clone(),
            rule,
            &groups,
            missing,
            trend,
            tg,
            tb,
        ))
    }

    fn fit_categorical(
        field: &Field,
        values: &[Option<&str>],
        y: &[f64],
        options: &BinningOptions,
        min_count: usize,
        tg: usize,
        tb: usize,
    ) -> Option<FeatureBinning> {
        let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (v, &yi) in values.iter().zip(y) {
            if let Some(c) = v {
                let e = counts.entry(c).or_default();
                if yi == 1.0 {
                    e.1 += 1;
                } else {
                    e.0 += 1;
                }
            }
        }
        if counts.is_empty() {
            return None;
        }
        let mut cats: Vec<(&str, usize, usize)> =
            counts.into_iter().map(|(c, (g, b))| (c, g, b)).collect();
        // By bad rate (exact cross-multiplication), ties by name (the BTreeMap order, kept by the
        // stable sort).
        cats.sort_by(|a, b| {
            let lhs = (a.2 as u128) * ((b.1 + b.2) as u128);
            let rhs = (b.2 as u128) * ((a.1 + a.2) as u128);
            lhs.cmp(&rhs)
        });
        let atoms: Vec<Group> = cats
            .iter()
            .enumerate()
            .map(|(k, (_, g, b))| Group {
                goods: *g,
                bads: *b,
                atoms: k..k + 1,
            })
            .collect();
        let (groups, _) = optimise(atoms, Trend::None, min_count, options.max_bins, tg, tb);
        let groups_names: Vec<Vec<String>> = groups
            .iter()
            .map(|g| {
                cats[g.atoms.clone()]
                    .iter()
                    .map(|c| c.0.to_string())
                    .collect()
            })
            .collect();
        let rule = BinRule::categorical(groups_names);
        let missing = Self::missing_bin(values.iter().map(Option::is_none), y, tg, tb);
        Some(Self::assemble(
            field.clone(),
            rule,
            &groups,
            missing,
            Trend::None,
            tg,
            tb,
        ))
    }

    fn assemble(
        field: Field,
        rule: BinRule,
        groups: &[Group],
        missing: Option<Bin>,
        trend: Trend,
        tg: usize,
        tb: usize,
    ) -> FeatureBinning {
        let bins: Vec<Bin> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let (woe, iv) = woe_iv(g.goods, g.bads, tg, tb);
                Bin {
                    label: rule.label(i, field.ty),
                    goods: g.goods,
                    bads: g.bads,
                    woe,
                    iv,
                }
            })
            .collect();
        let iv = bins.iter().chain(&missing).map(|b| b.iv).sum();
        FeatureBinning {
            field,
            rule,
            bins,
            missing,
            trend,
            iv,
        }
    }

    /// The characteristic (name and type).
    pub fn field(&self) -> &Field {
        &self.field
    }

    pub fn rule(&self) -> &BinRule {
        &self.rule
    }

    /// The non-missing bins in order (ascending values for numeric characteristics, ascending
    /// bad rate for categorical ones).
    pub fn bins(&self) -> &[Bin] {
        &self.bins
    }

    /// The missing-values bin, when training had missing values.
    pub fn missing(&self) -> Option<&Bin> {
        self.missing.as_ref()
    }

    /// The trend the numeric bins follow (`auto` resolved); `none` for categorical ones.
    pub fn trend(&self) -> Trend {
        self.trend
    }

    /// Information value (all bins, missing included).
    pub fn iv(&self) -> f64 {
        self.iv
    }

    /// The bin of a scoring value (type rules of [`crate::pipeline`]).
    pub fn bin_index(&self, value: &Value) -> Result<BinIndex, ModelError> {
        Ok(match &self.rule {
            BinRule::Numeric { .. } => self.bin_of_number(read_numeric(&self.field, value)?),
            BinRule::Categorical { .. } => self.bin_of_category(read_category(&self.field, value)?),
        })
    }

    /// The bin of a numeric value (`None` = missing).
    pub fn bin_of_number(&self, x: Option<f64>) -> BinIndex {
        match (x, &self.rule) {
            (None, _) => self.missing_index(),
            (Some(x), BinRule::Numeric { edges, .. }) => {
                BinIndex::Bin(edges.partition_point(|&e| e <= x))
            }
            (Some(_), BinRule::Categorical { .. }) => BinIndex::Unseen,
        }
    }

    /// The bin of a category (`None` = missing).
    pub fn bin_of_category(&self, c: Option<&str>) -> BinIndex {
        match (c, &self.rule) {
            (None, _) => self.missing_index(),
            (Some(c), BinRule::Categorical { index, .. }) => {
                index.get(c).map_or(BinIndex::Unseen, |&i| BinIndex::Bin(i))
            }
            (Some(_), BinRule::Numeric { .. }) => BinIndex::Unseen,
        }
    }

    fn missing_index(&self) -> BinIndex {
        if self.missing.is_some() {
            BinIndex::Missing
        } else {
            BinIndex::Unseen
        }
    }

    /// The WoE of a bin (0 for [`BinIndex::Unseen`]).
    pub fn woe(&self, index: BinIndex) -> f64 {
        self.bin(index).map_or(0.0, |b| b.woe)
    }

    /// The bin at `index` (`None` for [`BinIndex::Unseen`]).
    pub fn bin(&self, index: BinIndex) -> Option<&Bin> {
        match index {
            BinIndex::Bin(i) => self.bins.get(i),
            BinIndex::Missing => self.missing.as_ref(),
            BinIndex::Unseen => None,
        }
    }

    /// Every bin index in table order: the bins, then the missing bin if any.
    pub fn indices(&self) -> impl Iterator<Item = BinIndex> + '_ {
        (0..self.bins.len())
            .map(BinIndex::Bin)
            .chain(self.missing.as_ref().map(|_| BinIndex::Missing))
    }

    /// A training value that falls in bin `index` (the smallest numeric value seen in it, or the
    /// first category of the group; `Null` for the missing bin). `None` for
    /// [`BinIndex::Unseen`].
    pub fn representative(&self, index: BinIndex) -> Option<Value> {
        match index {
            BinIndex::Unseen => None,
            BinIndex::Missing => Some(Value::Null),
            BinIndex::Bin(i) => match &self.rule {
                BinRule::Numeric { ranges, .. } => {
                    Some(value_of_number(&self.field, ranges.get(i)?.0))
                }
                BinRule::Categorical { groups, .. } => {
                    let c = groups.get(i)?.first()?;
                    Some(if self.field.ty == ColumnType::Boolean {
                        Value::Boolean(c == "true")
                    } else {
                        Value::Str(c.clone())
                    })
                }
            },
        }
    }

    /// The binning table as JSON: characteristic, type, trend, IV, and one row per bin (label,
    /// count, goods, bads, bad rate, WoE, IV contribution).
    pub fn table_json(&self) -> serde_json::Value {
        let row = |b: &Bin| {
            serde_json::json!({
                "bin": b.label,
                "count": b.count(),
                "goods": b.goods,
                "bads": b.bads,
                "bad_rate": b.bad_rate(),
                "woe": b.woe,
                "iv": b.iv,
            })
        };
        serde_json::json!({
            "feature": self.field.name,
            "type": self.field.ty.as_str(),
            "trend": self.trend.as_str(),
            "iv": self.iv,
            "bins": self.bins.iter().chain(&self.missing).map(row).collect::<Vec<_>>(),
        })
    }

    pub(crate) fn to_stored(&self) -> StoredBinning {
        let (edges, ranges, groups) = match &self.rule {
            BinRule::Numeric { edges, ranges } => (Some(edges.clone()), Some(ranges.clone()), None),
            BinRule::Categorical { groups, .. } => (None, None, Some(groups.clone())),
        };
        let stored = |b: &Bin| StoredBin {
            goods: b.goods,
            bads: b.bads,
            woe: b.woe,
            iv: b.iv,
        };
        StoredBinning {
            name: self.field.name.clone(),
            ty: self.field.ty,
            trend: self.trend.as_str().to_string(),
            edges,
            ranges,
            groups,
            bins: self.bins.iter().map(stored).collect(),
            missing: self.missing.as_ref().map(stored),
        }
    }

    /// Rebuilds a binning from its stored form, checking what scoring relies on.
    pub(crate) fn from_stored(s: StoredBinning) -> Result<Self, ModelError> {
        let name = s.name.clone();
        let bad = |msg: &str| {
            Err(ModelError::invalid_artifact(format!(
                "binning of `{name}`: {msg}"
            )))
        };
        let trend = match Trend::parse(&s.trend) {
            Some(Trend::Auto) | None => return bad("unknown trend"),
            Some(t) => t,
        };
        if s.bins.is_empty() {
            return bad("no bins");
        }
        let finite = |b: &StoredBin| b.woe.is_finite() && b.iv.is_finite() && b.iv >= 0.0;
        if !s.bins.iter().chain(&s.missing).all(finite) {
            return bad("non-finite WoE or IV");
        }
        let rule = match (s.ty, s.edges, s.ranges, s.groups) {
            (
                ColumnType::Float | ColumnType::Integer | ColumnType::Date,
                Some(edges),
                Some(ranges),
                None,
            ) => {
                if edges.len() + 1 != s.bins.len() || ranges.len() != s.bins.len() {
                    return bad("edges do not match the bins");
                }
                if edges.iter().any(|e| !e.is_finite()) || edges.windows(2).any(|w| w[0] >= w[1]) {
                    return bad("edges must be finite and increasing");
                }
                if ranges
                    .iter()
                    .any(|(lo, hi)| !(lo.is_finite() && hi.is_finite() && lo <= hi))
                {
                    return bad("invalid value ranges");
                }
                BinRule::Numeric { edges, ranges }
            }
            (ColumnType::Categorical | ColumnType::Boolean, None, None, Some(groups)) => {
                if groups.len() != s.bins.len() || groups.iter().any(Vec::is_empty) {
                    return bad("category groups do not match the bins");
                }
                let rule = BinRule::categorical(groups);
                let BinRule::Categorical { groups, index } = &rule else {
                    unreachable!("categorical() builds a categorical rule")
                };
                if index.len() != groups.iter().map(Vec::len).sum::<usize>() {
                    return bad("a category is in two groups");
                }
                if s.ty == ColumnType::Boolean && index.keys().any(|k| k != "true" && k != "false")
                {
                    return bad("a boolean characteristic has a non-boolean category");
                }
                rule
            }
            _ => return bad("the rule does not match the type"),
        };
        let field = Field::new(s.name, s.ty);
        let to_bin = |i: Option<usize>, b: StoredBin| Bin {
            label: i.map_or_else(|| "missing".to_string(), |i| rule.label(i, s.ty)),
            goods: b.goods,
            bads: b.bads,
            woe: b.woe,
            iv: b.iv,
        };
        let bins: Vec<Bin> = s
            .bins
            .into_iter()
            .enumerate()
            .map(|(i, b)| to_bin(Some(i), b))
            .collect();
        let missing = s.missing.map(|b| to_bin(None, b));
        let iv = bins.iter().chain(&missing).map(|b| b.iv).sum();
        Ok(FeatureBinning {
            field,
            rule,
            bins,
            missing,
            trend,
            iv,
        })
    }
}

impl BinRule {
    fn categorical(groups: Vec<Vec<String>>) -> BinRule {
        let index = groups
            .iter()
            .enumerate()
            .flat_map(|(i, g)| g.iter().map(move |c| (c.clone(), i)))
            .collect();
        BinRule::Categorical { groups, index }
    }

    /// Number of non-missing bins.
    pub fn len(&self) -> usize {
        match self {
            BinRule::Numeric { edges, .. } => edges.len() + 1,
            BinRule::Categorical { groups, .. } => groups.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The label of bin `i`: `(-inf, a)`, `[a, b)`, `[b, inf)` or the comma-separated categories.
    /// The edges of a date feature (`ty`) are shown as dates (`[1997-02-28, 2004-03-03)`).
    pub fn label(&self, i: usize, ty: ColumnType) -> String {
        match self {
            BinRule::Numeric { edges, .. } => {
                let lo = i
                    .checked_sub(1)
                    .and_then(|j| edges.get(j))
                    .map_or_else(|| "(-inf".to_string(), |e| format!("[{}", fmt_edge(*e, ty)));
                let hi = edges
                    .get(i)
                    .map_or_else(|| "inf)".to_string(), |e| format!("{})", fmt_edge(*e, ty)));
                format!("{lo}, {hi}")
            }
            BinRule::Categorical { groups, .. } => {
                groups.get(i).map_or_else(String::new, |g| g.join(", "))
            }
        }
    }
}

/// The stored form of a [`FeatureBinning`] inside a scorecard payload.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoredBinning {
    name: String,
    #[serde(rename = "type")]
    ty: ColumnType,
    trend: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    edges: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ranges: Option<Vec<(f64, f64)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<Vec<String>>>,
    bins: Vec<StoredBin>,
    missing: Option<StoredBin>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredBin {
    goods: usize,
    bads: usize,
    woe: f64,
    iv: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(goods: usize, bads: usize, k: usize) -> Group {
        Group {
            goods,
            bads,
            atoms: k..k + 1,
        }
    }

    #[test]
    fn pava_pools_violators() {
        // Bad rates 0.1, 0.3, 0.2, 0.4 → ascending pools the middle pair (rate 0.25).
        let g = vec![
            group(9, 1, 0),
            group(7, 3, 1),
            group(8, 2, 2),
            group(6, 4, 3),
        ];
        let up = pava(g.clone(), true);
        let rates: Vec<f64> = up.iter().map(rate).collect();
        assert_eq!(rates, [0.1, 0.25, 0.4]);
        assert_eq!(up[1].atoms, 1..3);
        // Descending pools everything into one group.
        let down = pava(g, false);
        assert_eq!(down.len(), 1);
        assert_eq!(down[0].count(), 40);
    }

    #[test]
    fn min_count_merges_into_the_closer_rate() {
        // The middle group (2 rows, rate 0.5) is too small; its neighbours have rates 0.4 and
        // 0.1, so it joins the left one.
        let mut g = vec![group(6, 4, 0), group(1, 1, 1), group(9, 1, 2)];
        enforce_min_count(&mut g, 5);
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].goods, g[0].bads, g[0].atoms.clone()), (7, 5, 0..2));
    }

    #[test]
    fn labels() {
        let r = BinRule::Numeric {
            edges: vec![12.0, 24.5],
            ranges: vec![(4.0, 11.0), (12.0, 24.0), (30.0, 72.0)],
        };
        let f = ColumnType::Float;
        assert_eq!(r.label(0, f), "(-inf, 12)");
        assert_eq!(r.label(1, f), "[12, 24.5)");
        assert_eq!(r.label(2, f), "[24.5, inf)");
        // Date features are binned on day ordinals and labelled with dates (the first day on
        // each side of an edge: 9920.5 → 1997-03-01).
        let d = BinRule::Numeric {
            edges: vec![9920.0, 9920.5],
            ranges: vec![(9000.0, 9919.0), (9920.0, 9920.0), (9921.0, 9990.0)],
        };
        assert_eq!(d.label(0, ColumnType::Date), "(-inf, 1997-02-28)");
        assert_eq!(d.label(1, ColumnType::Date), "[1997-02-28, 1997-03-01)");
        assert_eq!(d.label(2, ColumnType::Date), "[1997-03-01, inf)");
        assert_eq!(r.len(), 3);
    }
}
