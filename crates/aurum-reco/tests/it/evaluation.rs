use aurum_reco::metrics::evaluate;
use aurum_reco::models::als::{Als, AlsParams};
use aurum_reco::models::item_knn::{ItemKnn, ItemKnnParams};
use aurum_reco::models::popularity::{Popularity, PopularityParams};
use aurum_reco::split::{leave_k_out, time_split};
use aurum_reco::{Filter, FitControl, Recommender};

use crate::common;

#[test]
fn evaluate_excludes_train_items_and_beats_popularity() {
    let d = common::data();
    let s = time_split(&d, 0.34).unwrap();
    let c = FitControl::default();
    let pop = Popularity::fit(&s.train, None, &PopularityParams::default(), &c).unwrap();
    let knn = ItemKnn::fit(&s.train, &ItemKnnParams::default(), &c).unwrap();
    let e_pop = evaluate(&pop, &s.train, &s.test, 2).unwrap();
    let e_knn = evaluate(&knn, &s.train, &s.test, 2).unwrap();
    assert_eq!(e_knn.users, 2 * common::PER_GROUP);
    assert!(
        e_knn.ndcg > e_pop.ndcg,
        "item-item {} vs popularity {}",
        e_knn.ndcg,
        e_pop.ndcg
    );
    // Each user holds 2 in train and 1 in test from a family of 5: with train items excluded the
    // in-family neighbours fill the top 2, so recall@2 is 1 for item-item.
    assert!((e_knn.recall - 1.0).abs() < 1e-12, "{e_knn:?}");
    assert!((e_knn.precision - 0.5).abs() < 1e-12, "{e_knn:?}");
}

#[test]
fn evaluate_refuses_mismatched_data() {
    let d = common::data();
    let a = leave_k_out(&d, 1, 1).unwrap();
    let other = aurum_reco::Interactions::build(
        &common::records()[..30],
        &aurum_reco::InteractionOptions::default(),
    )
    .unwrap();
    let m = Popularity::fit(
        &other,
        None,
        &PopularityParams::default(),
        &FitControl::default(),
    )
    .unwrap();
    assert_eq!(
        evaluate(&m, &a.train, &a.test, 5).unwrap_err().code(),
        "reco_mismatched_data"
    );
    let m = Popularity::fit(
        &a.train,
        None,
        &PopularityParams::default(),
        &FitControl::default(),
    )
    .unwrap();
    assert!(
        evaluate(&m, &a.train, &a.test, 0)
            .unwrap_err()
            .to_string()
            .contains("`k`")
    );
}

#[test]
fn als_explanations_add_up_to_the_score_and_similar_items_stay_in_family() {
    let d = common::data();
    let m = Als::fit(
        &d,
        &AlsParams {
            factors: 2,
            regularization: 0.1,
            iterations: 10,
            ..Default::default()
        },
        &FitControl::default(),
    )
    .unwrap();
    let rec = m.recommend("y0", 1, &Filter::new()).unwrap();
    let why = m.explain("y0", &rec[0].item, 10).unwrap();
    assert!(!why.is_empty());
    let held: Vec<&str> = ["save0", "save1", "save2"].to_vec();
    assert!(
        why.iter().all(|r| held.contains(&r.because.as_str())),
        "{why:?}"
    );
    // The shares of all held items add up to the score.
    let total: f32 = why.iter().map(|r| r.contribution).sum();
    assert!(
        (total - rec[0].score).abs() < 1e-3 * rec[0].score.abs().max(1.0),
        "{total} vs {}",
        rec[0].score
    );
    let sim = m.similar_items("pension0", 3).unwrap();
    assert!(sim.iter().all(|r| r.item.starts_with("pension")), "{sim:?}");
    let knn = ItemKnn::fit(&d, &ItemKnnParams::default(), &FitControl::default()).unwrap();
    let sim = knn.similar_items("save3", 2).unwrap();
    assert!(sim.iter().all(|r| r.item.starts_with("save")), "{sim:?}");
    assert_eq!(knn.kind(), "item_knn");
}
