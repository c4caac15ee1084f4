use aurum_core::CancelToken;
use aurum_reco::models::als::{Als, AlsParams};
use aurum_reco::models::bpr::{Bpr, BprParams};
use aurum_reco::models::hybrid::{Hybrid, HybridParams};
use aurum_reco::models::item_knn::{ItemKnn, ItemKnnParams};
use aurum_reco::{FitControl, Recommender, decode, encode};

use crate::common;

fn all_scores(m: &dyn Recommender) -> Vec<Vec<f32>> {
    (0..m.history().users.len() as u32)
        .map(|u| m.score_user(u))
        .collect()
}

#[test]
fn als_is_identical_for_a_seed_whatever_the_thread_count() {
    let d = common::data();
    let fit = |threads, seed| {
        let p = AlsParams {
            factors: 6,
            iterations: 4,
            threads,
            seed,
            ..Default::default()
        };
        all_scores(&Als::fit(&d, &p, &FitControl::default()).unwrap())
    };
    let one = fit(1, 3);
    assert_eq!(one, fit(1, 3));
    assert_eq!(one, fit(2, 3), "thread count changed the fit");
    assert_ne!(one, fit(1, 4), "the seed is not used");
}

#[test]
fn bpr_and_hybrid_are_seeded() {
    let d = common::data();
    let c = FitControl::default();
    let bpr = |seed| {
        all_scores(
            &Bpr::fit(
                &d,
                &BprParams {
                    factors: 4,
                    iterations: 5,
                    seed,
                    ..Default::default()
                },
                &c,
            )
            .unwrap(),
        )
    };
    assert_eq!(bpr(1), bpr(1));
    assert_ne!(bpr(1), bpr(2));
    let hy = |seed| {
        let p = HybridParams {
            components: 4,
            epochs: 3,
            seed,
            ..Default::default()
        };
        all_scores(&Hybrid::fit(&d, None, None, &p, &c).unwrap())
    };
    assert_eq!(hy(1), hy(1));
}

#[test]
fn models_round_trip_through_their_stored_form() {
    let d = common::data();
    let c = FitControl::default();
    let als = Als::fit(
        &d,
        &AlsParams {
            factors: 4,
            iterations: 2,
            ..Default::default()
        },
        &c,
    )
    .unwrap();
    let back: Als = decode(&encode(&als).unwrap()).unwrap();
    assert_eq!(all_scores(&als), all_scores(&back));
    let knn = ItemKnn::fit(&d, &ItemKnnParams::default(), &c).unwrap();
    let bytes = encode(&knn).unwrap();
    let back: ItemKnn = decode(&bytes).unwrap();
    assert_eq!(all_scores(&knn), all_scores(&back));
    // Wrong kind, newer format, garbage: all refused with reco_bad_artifact.
    let e = decode::<Als>(&bytes).unwrap_err();
    assert_eq!(e.code(), "reco_bad_artifact");
    let mut v: serde_json::Value = serde_json::from_slice(&encode(&als).unwrap()).unwrap();
    v["format_version"] = 99.into();
    let e = decode::<Als>(&serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert!(e.to_string().contains("format_version 99"), "{e}");
    assert_eq!(decode::<Als>(b"{").unwrap_err().code(), "reco_bad_artifact");
}

#[test]
fn fitting_stops_on_cancel() {
    let d = common::data();
    let token = CancelToken::new();
    token.cancel();
    let ctl = FitControl {
        cancel: Some(&token),
        ..Default::default()
    };
    assert_eq!(
        Als::fit(&d, &AlsParams::default(), &ctl)
            .unwrap_err()
            .code(),
        "reco_cancelled"
    );
    assert_eq!(
        Bpr::fit(&d, &BprParams::default(), &ctl)
            .unwrap_err()
            .code(),
        "reco_cancelled"
    );
}
