use aurum_reco::models::als::{Als, AlsParams};
use aurum_reco::models::blend::{Blend, BlendParams};
use aurum_reco::models::bpr::{Bpr, BprParams};
use aurum_reco::models::content::{Content, ContentParams};
use aurum_reco::models::ease::{Ease, EaseParams};
use aurum_reco::models::hybrid::{Hybrid, HybridParams};
use aurum_reco::models::item_knn::{ItemKnn, ItemKnnParams};
use aurum_reco::models::popularity::{Popularity, PopularityParams};
use aurum_reco::models::random_walk::{RandomWalk, RandomWalkParams};
use aurum_reco::{Filter, FitControl, Recommender};

use crate::common;

fn all_models() -> Vec<Box<dyn Recommender>> {
    let d = common::data();
    let c = FitControl::default();
    let small_als = AlsParams {
        factors: 2,
        regularization: 0.1,
        iterations: 10,
        ..Default::default()
    };
    let small_bpr = BprParams {
        factors: 8,
        iterations: 200,
        learning_rate: 0.05,
        ..Default::default()
    };
    let small_hybrid = HybridParams {
        components: 8,
        epochs: 5,
        ..Default::default()
    };
    vec![
        Box::new(Popularity::fit(&d, None, &PopularityParams::default(), &c).unwrap()),
        Box::new(ItemKnn::fit(&d, &ItemKnnParams::default(), &c).unwrap()),
        Box::new(Als::fit(&d, &small_als, &c).unwrap()),
        Box::new(Bpr::fit(&d, &small_bpr, &c).unwrap()),
        Box::new(
            Content::fit(
                &d,
                &common::item_attributes(),
                &ContentParams::default(),
                &c,
            )
            .unwrap(),
        ),
        Box::new(
            Hybrid::fit(
                &d,
                Some(&common::user_attributes()),
                Some(&common::item_attributes()),
                &small_hybrid,
                &c,
            )
            .unwrap(),
        ),
        Box::new(RandomWalk::fit(&d, &RandomWalkParams::default(), &c).unwrap()),
        Box::new(Ease::fit(&d, &EaseParams::default(), &c).unwrap()),
        Box::new(
            Blend::fit(
                &d,
                &BlendParams {
                    als: small_als.clone(),
                    ..Default::default()
                },
                &c,
            )
            .unwrap(),
        ),
    ]
}

#[test]
fn a_held_item_is_never_returned_when_excluded() {
    let d = common::data();
    for m in all_models() {
        for u in 0..d.users().len() {
            let user = d.users().id(u as u32);
            let held: Vec<&str> = d
                .user_items()
                .row(u)
                .0
                .iter()
                .map(|&i| d.items().id(i))
                .collect();
            // k larger than the catalogue: every allowed item comes back, no held one.
            let rec = m.recommend(user, 100, &Filter::new()).unwrap();
            assert_eq!(
                rec.len(),
                d.items().len() - held.len(),
                "{} {user}",
                m.kind()
            );
            assert!(
                rec.iter().all(|r| !held.contains(&r.item.as_str())),
                "{} returned a held item to {user}",
                m.kind()
            );
            let all = m
                .recommend(user, 100, &Filter::new().include_held())
                .unwrap();
            assert_eq!(all.len(), d.items().len(), "{}", m.kind());
        }
    }
}

#[test]
fn category_filters_and_allow_list() {
    let items = common::item_attributes();
    let only_pensions = Filter::new()
        .include_categories(&items, "category", &["pension"])
        .unwrap();
    let no_pensions = Filter::new()
        .exclude_categories(&items, "category", &["pension"])
        .unwrap();
    let allow = Filter::new().allow(|id| id.ends_with('4'));
    for m in all_models() {
        let rec = m.recommend("y0", 100, &only_pensions).unwrap();
        assert_eq!(rec.len(), 5, "{}", m.kind());
        assert!(
            rec.iter().all(|r| r.item.starts_with("pension")),
            "{}",
            m.kind()
        );
        let rec = m.recommend("y0", 100, &no_pensions).unwrap();
        assert!(
            rec.iter().all(|r| r.item.starts_with("save")),
            "{}",
            m.kind()
        );
        let rec = m.recommend("o3", 100, &allow).unwrap();
        assert!(rec.iter().all(|r| r.item.ends_with('4')), "{}", m.kind());
    }
    let e = Filter::new()
        .include_categories(&items, "colour", &["red"])
        .unwrap_err();
    assert!(e.to_string().contains("`colour`"), "{e}");
}

#[test]
fn personalised_models_recommend_within_the_users_family() {
    for m in all_models() {
        if matches!(m.kind(), "popularity") {
            continue;
        }
        let top = &m.recommend("y0", 1, &Filter::new()).unwrap()[0].item;
        assert!(
            common::is_young_product(top),
            "{} recommended {top} to a young customer",
            m.kind()
        );
        let top = &m.recommend("o0", 1, &Filter::new()).unwrap()[0].item;
        assert!(
            !common::is_young_product(top),
            "{} recommended {top} to an older customer",
            m.kind()
        );
    }
}

#[test]
fn unknown_users_and_items_are_named() {
    let m = &all_models()[2];
    let e = m.recommend("nobody", 3, &Filter::new()).unwrap_err();
    assert_eq!(e.to_string(), "unknown user id(s) `nobody`");
    let new = aurum_reco::NewUser {
        items: vec!["save0".into(), "ghost".into()],
        ..Default::default()
    };
    let e = m.recommend_new(&new, 3, &Filter::new()).unwrap_err();
    assert_eq!(e.to_string(), "unknown item id(s) `ghost`");
}
