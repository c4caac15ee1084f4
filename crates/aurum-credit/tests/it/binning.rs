//! WoE / IV against a hand-computed table, and the binning rules (minimum share, maximum count,
//! monotone WoE) on random data.

use aurum_core::{ColumnData, ColumnType, Field, Value};
use aurum_credit::binning::{BinIndex, BinningOptions, FeatureBinning, Trend, woe_iv};
use proptest::prelude::*;

fn options(min_bin_share: f64, trend: Trend) -> BinningOptions {
    BinningOptions {
        min_bin_share,
        max_bins: 10,
        prebins: 20,
        trend,
    }
}

/// x = 1: 5 goods, 1 bad; x = 2: 3 goods, 3 bads; x = 3: 0 goods, 2 bads (G = 8, B = 6).
fn hand_table() -> (Vec<Option<f64>>, Vec<f64>) {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (value, goods, bads) in [(1.0, 5, 1), (2.0, 3, 3), (3.0, 0, 2)] {
        for k in 0..goods + bads {
            x.push(Some(value));
            y.push(f64::from(u8::from(k >= goods)));
        }
    }
    (x, y)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn woe_and_iv_match_the_hand_computation() {
    // WoE = ln((g/G) / (b/B)), IV = Σ (g/G − b/B)·WoE, with 0.5 added to both counts of a bin
    // that has an empty cell. G = 8 goods, B = 6 bads.
    //   bin x=1: g/G = 5/8 = 0.625,  b/B = 1/6;  WoE = ln(0.625·6)   = ln 3.75 =  1.3217558
    //            IV = (0.625 − 0.1666667)·1.3217558                           =  0.6058047
    //   bin x=2: g/G = 3/8 = 0.375,  b/B = 3/6;  WoE = ln 0.75            = −0.2876821
    //            IV = (0.375 − 0.5)·(−0.2876821)                              =  0.0359603
    //   bin x=3: no goods → g = 0.5, b = 2.5: g/G = 0.0625, b/B = 0.4166667
    //            WoE = ln(0.0625 / 0.4166667) = ln 0.15                       = −1.8971200
    //            IV = (0.0625 − 0.4166667)·(−1.8971200)                       =  0.6718967
    //   total IV                                                              =  1.3136617
    let expected = [
        (5, 1, 3.75f64.ln(), (0.625 - 1.0 / 6.0) * 3.75f64.ln()),
        (3, 3, 0.75f64.ln(), (0.375 - 0.5) * 0.75f64.ln()),
        (0, 2, 0.15f64.ln(), (0.0625 - 2.5 / 6.0) * 0.15f64.ln()),
    ];
    assert!((expected[0].3 - 0.6058047).abs() < 1e-7);
    assert!((expected[2].2 - -1.8971200).abs() < 1e-7);
    for (g, b, woe, iv) in expected {
        let (w, i) = woe_iv(g, b, 8, 6);
        assert!(close(w, woe) && close(i, iv), "{g} {b}: {w} {i}");
    }

    let (x, y) = hand_table();
    let field = Field::new("x", ColumnType::Float);
    // Every distinct value is a pre-bin; no size rule and no trend keep them all.
    let b = FeatureBinning::fit(
        &field,
        &ColumnData::Float(x.clone()),
        &y,
        &options(0.0, Trend::None),
    )
    .unwrap()
    .unwrap();
    assert_eq!(b.bins().len(), 3);
    let labels: Vec<&str> = b.bins().iter().map(|b| b.label.as_str()).collect();
    assert_eq!(labels, ["(-inf, 2)", "[2, 3)", "[3, inf)"]);
    for (bin, (g, bads, woe, iv)) in b.bins().iter().zip(expected) {
        assert_eq!((bin.goods, bin.bads), (g, bads));
        assert!(close(bin.woe, woe) && close(bin.iv, iv), "{bin:?}");
    }
    assert!((b.iv() - 1.3136617).abs() < 1e-6, "{}", b.iv());
    assert!(b.missing().is_none());
    assert_eq!(b.bin_index(&Value::Integer(2)).unwrap(), BinIndex::Bin(1));
    assert_eq!(b.bin_index(&Value::Float(-50.0)).unwrap(), BinIndex::Bin(0));
    // A missing value training never saw falls in no bin: WoE 0.
    assert_eq!(b.bin_index(&Value::Null).unwrap(), BinIndex::Unseen);
    assert_eq!(b.woe(BinIndex::Unseen), 0.0);

    // The bad rate (1/6, 1/2, 1) already ascends: `ascending` and `auto` keep the bins...
    for trend in [Trend::Ascending, Trend::Auto] {
        let b = FeatureBinning::fit(
            &field,
            &ColumnData::Float(x.clone()),
            &y,
            &options(0.0, trend),
        )
        .unwrap()
        .unwrap();
        assert_eq!(b.bins().len(), 3);
        assert_eq!(b.trend(), Trend::Ascending);
    }
    // ...`descending` pools everything: one bin holding all rows, WoE ln(1) = 0, IV 0.
    let b = FeatureBinning::fit(
        &field,
        &ColumnData::Float(x),
        &y,
        &options(0.0, Trend::Descending),
    )
    .unwrap()
    .unwrap();
    assert_eq!(b.bins().len(), 1);
    assert_eq!((b.bins()[0].goods, b.bins()[0].bads), (8, 6));
    assert!(close(b.bins()[0].woe, 0.0) && close(b.iv(), 0.0));
}

#[test]
fn categories_are_ordered_by_bad_rate_and_small_ones_merged() {
    let (x, y) = hand_table();
    let names = |v: Option<f64>| v.map(|v| ["", "A", "B", "C"][v as usize].to_string());
    let mut cats: Vec<Option<String>> = x.into_iter().map(names).collect();
    let mut y = y;
    // Two missing values (1 good, 1 bad) get their own bin.
    cats.extend([None, None]);
    y.extend([0.0, 1.0]);
    let field = Field::new("c", ColumnType::Categorical);
    // 16 rows, min share 0.2 → at least ceil(3.2) = 4 rows: C (2 rows) joins B, its only
    // neighbour in bad-rate order A < B < C. G = 9, B = 7 with the missing rows.
    let b = FeatureBinning::fit(
        &field,
        &ColumnData::Categorical(cats),
        &y,
        &options(0.2, Trend::Auto),
    )
    .unwrap()
    .unwrap();
    let labels: Vec<&str> = b.bins().iter().map(|b| b.label.as_str()).collect();
    assert_eq!(labels, ["A", "B, C"]);
    assert_eq!((b.bins()[1].goods, b.bins()[1].bads), (3, 5));
    assert!(close(b.bins()[1].woe, ((3.0f64 / 9.0) / (5.0 / 7.0)).ln()));
    let m = b.missing().unwrap();
    assert_eq!((m.goods, m.bads), (1, 1));
    assert!(close(m.woe, ((1.0f64 / 9.0) / (1.0 / 7.0)).ln()));
    assert_eq!(b.bin_index(&Value::Null).unwrap(), BinIndex::Missing);
    assert_eq!(
        b.bin_index(&Value::Str("Z".into())).unwrap(),
        BinIndex::Unseen
    );
    assert_eq!(
        b.bin_index(&Value::Str("C".into())).unwrap(),
        BinIndex::Bin(1)
    );
    assert_eq!(
        b.representative(BinIndex::Bin(1)),
        Some(Value::Str("B".into()))
    );
    assert_eq!(b.trend(), Trend::None);
    let e = b.bin_index(&Value::Float(1.0)).unwrap_err();
    assert_eq!(e.code(), "invalid_input");
    let table = b.table_json();
    assert_eq!(table["bins"][2]["bin"], "missing");
    assert_eq!(table["bins"][1]["count"], 8);
}

fn trend_strategy() -> impl Strategy<Value = Trend> {
    prop_oneof![
        Just(Trend::Auto),
        Just(Trend::Ascending),
        Just(Trend::Descending),
        Just(Trend::None)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random values and outcomes: bins cover every row, respect the minimum share and maximum
    /// count, and follow the trend in WoE when one is asked for.
    #[test]
    fn bins_respect_min_share_max_bins_and_trend(
        rows in proptest::collection::vec((proptest::option::weighted(0.9, -50i32..50), 0.0f64..1.0), 20..400),
        slope in -0.02f64..0.02,
        min_share in 0.0f64..0.3,
        max_bins in 1usize..12,
        prebins in 1usize..40,
        trend in trend_strategy(),
    ) {
        let x: Vec<Option<f64>> = rows.iter().map(|(x, _)| x.map(f64::from)).collect();
        let mut y: Vec<f64> = rows
            .iter()
            .map(|(x, u)| f64::from(u8::from(*u < 0.3 + slope * f64::from(x.unwrap_or(0)))))
            .collect();
        y[0] = 0.0;
        y[1] = 1.0;
        let opts = BinningOptions { min_bin_share: min_share, max_bins, prebins, trend };
        let field = Field::new("x", ColumnType::Float);
        let Some(b) = FeatureBinning::fit(&field, &ColumnData::Float(x.clone()), &y, &opts).unwrap() else {
            prop_assert!(x.iter().all(Option::is_none));
            return Ok(());
        };
        let n = y.len();
        let min_count = (min_share * n as f64 - 1e-9).ceil() as usize;
        let total: usize = b.bins().iter().chain(b.missing()).map(|b| b.count()).sum();
        prop_assert_eq!(total, n);
        prop_assert!(b.bins().len() <= max_bins);
        if b.bins().len() > 1 {
            for bin in b.bins() {
                prop_assert!(bin.count() >= min_count, "{} < {}", bin.count(), min_count);
            }
        }
        let woe: Vec<f64> = b.bins().iter().map(|b| b.woe).collect();
        match b.trend() {
            Trend::Ascending => prop_assert!(woe.windows(2).all(|w| w[1] <= w[0]), "{:?}", woe),
            Trend::Descending => prop_assert!(woe.windows(2).all(|w| w[1] >= w[0]), "{:?}", woe),
            Trend::None => prop_assert_eq!(trend, Trend::None),
            Trend::Auto => prop_assert!(false, "auto is resolved"),
        }
        if trend != Trend::Auto {
            prop_assert_eq!(b.trend(), trend);
        }
        let iv: f64 = b.bins().iter().chain(b.missing()).map(|b| b.iv).sum();
        prop_assert!(b.iv() >= 0.0 && (b.iv() - iv).abs() < 1e-12);
        // Every training value lands in the bin that counted it.
        for (xi, yi) in x.iter().zip(&y).take(20) {
            let idx = b.bin_of_number(*xi);
            prop_assert!(b.bin(idx).is_some(), "{:?} {}", xi, yi);
        }
    }
}
