use aurum_reco::models::als::{Als, AlsParams};
use aurum_reco::models::content::{Content, ContentParams};
use aurum_reco::models::hybrid::{Hybrid, HybridLoss, HybridParams};
use aurum_reco::models::item_knn::{ItemKnn, ItemKnnParams};
use aurum_reco::models::popularity::{Popularity, PopularityParams};
use aurum_reco::{AttributeRow, AttributeTable, Filter, FitControl, NewUser, Recommender};

use crate::common;

fn young_stranger() -> NewUser {
    NewUser {
        items: vec![],
        attributes: vec![
            ("age".into(), "18-29".into()),
            ("job".into(), "student".into()),
        ],
    }
}

fn hybrid(loss: HybridLoss) -> Hybrid {
    let p = HybridParams {
        components: 8,
        epochs: 20,
        loss,
        ..Default::default()
    };
    Hybrid::fit(
        &common::data(),
        Some(&common::user_attributes()),
        Some(&common::item_attributes()),
        &p,
        &FitControl::default(),
    )
    .unwrap()
}

#[test]
fn hybrid_new_user_with_only_attributes_gets_their_segments_products() {
    for loss in [HybridLoss::Warp, HybridLoss::Bpr] {
        let m = hybrid(loss);
        let rec = m
            .recommend_new(&young_stranger(), 5, &Filter::new())
            .unwrap();
        assert!(
            rec.iter().all(|r| common::is_young_product(&r.item)),
            "{loss:?}: {rec:?}"
        );
        let old = NewUser {
            items: vec![],
            attributes: vec![("age".into(), "60-69".into())],
        };
        let rec = m.recommend_new(&old, 5, &Filter::new()).unwrap();
        assert!(
            rec.iter().all(|r| !common::is_young_product(&r.item)),
            "{loss:?}: {rec:?}"
        );
    }
    let e = hybrid(HybridLoss::Warp)
        .recommend_new(&NewUser::default(), 5, &Filter::new())
        .unwrap_err();
    assert_eq!(e.code(), "reco_unsupported");
}

#[test]
fn hybrid_new_item_with_only_attributes_reaches_the_right_customers() {
    let mut m = hybrid(HybridLoss::Warp);
    let new = AttributeTable::items(vec![
        AttributeRow::new("junior_saver")
            .with("category", "savings")
            .text("savings account for students"),
    ])
    .unwrap();
    m.add_items(&new).unwrap();
    let young = m.recommend("y0", 3, &Filter::new()).unwrap();
    assert!(young.iter().any(|r| r.item == "junior_saver"), "{young:?}");
    let old = m.recommend("o0", 3, &Filter::new()).unwrap();
    assert!(old.iter().all(|r| r.item != "junior_saver"), "{old:?}");
    // A second add of the same id, or an item with nothing the model knows, is refused by name.
    let e = m.add_items(&new).unwrap_err();
    assert!(e.to_string().contains("junior_saver"), "{e}");
    let alien = AttributeTable::items(vec![AttributeRow::new("crypto").with("category", "crypto")])
        .unwrap();
    assert!(
        m.add_items(&alien)
            .unwrap_err()
            .to_string()
            .contains("no attribute")
    );
}

#[test]
fn new_users_with_held_items_fold_in() {
    let d = common::data();
    let c = FitControl::default();
    let user = NewUser {
        items: vec!["pension1".into()],
        attributes: vec![],
    };
    let models: Vec<Box<dyn Recommender>> = vec![
        Box::new(
            Als::fit(
                &d,
                &AlsParams {
                    factors: 2,
                    regularization: 0.1,
                    iterations: 10,
                    ..Default::default()
                },
                &c,
            )
            .unwrap(),
        ),
        Box::new(ItemKnn::fit(&d, &ItemKnnParams::default(), &c).unwrap()),
        Box::new(
            Content::fit(
                &d,
                &common::item_attributes(),
                &ContentParams::default(),
                &c,
            )
            .unwrap(),
        ),
    ];
    for m in models {
        let rec = m.recommend_new(&user, 3, &Filter::new()).unwrap();
        assert!(
            rec.iter()
                .all(|r| r.item.starts_with("pension") && r.item != "pension1"),
            "{}: {rec:?}",
            m.kind()
        );
    }
}

#[test]
fn segment_popularity_for_a_new_customer() {
    let d = common::data();
    let p = PopularityParams {
        segment_field: Some("age".into()),
        min_segment_users: 5,
    };
    let m = Popularity::fit(
        &d,
        Some(&common::user_attributes()),
        &p,
        &FitControl::default(),
    )
    .unwrap();
    let rec = m
        .recommend_new(&young_stranger(), 5, &Filter::new())
        .unwrap();
    assert!(
        rec.iter().all(|r| common::is_young_product(&r.item)),
        "{rec:?}"
    );
}
