//! Builds the product-holding data set from the UCI Bank Marketing file and shows what the
//! models recommend: segment popularity and the cold-start hybrid for a prospect (a customer who
//! holds no product yet), and item-item for a customer who holds one.
//!
//! ```sh
//! cargo run -p aurum-reco --example bank_products -- data/bank/bank_marketing.csv
//! ```

use std::io::Write;

use aurum_reco::bank::{bank_products, parse_bank_csv};
use aurum_reco::models::hybrid::{Hybrid, HybridParams};
use aurum_reco::models::item_knn::{ItemKnn, ItemKnnParams};
use aurum_reco::models::popularity::{Popularity, PopularityParams};
use aurum_reco::{Filter, FitControl, NewUser, Recommender};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "data/bank/bank_marketing.csv".into());
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let b = bank_products(&parse_bank_csv(&text)?)?;
    let mut out = std::io::stdout().lock();
    let d = &b.interactions;
    writeln!(
        out,
        "{} customers hold {} products ({} holdings); {} prospects hold none",
        d.users().len(),
        d.items().len(),
        d.nnz(),
        b.prospects.len()
    )?;
    for i in 0..d.items().len() {
        writeln!(
            out,
            "  {:<14} {} holders",
            d.items().id(i as u32),
            d.item_users().row(i).0.len()
        )?;
    }
    let ctl = FitControl::default();
    let pop = Popularity::fit(
        d,
        Some(&b.users),
        &PopularityParams {
            segment_field: Some("age".into()),
            min_segment_users: 20,
        },
        &ctl,
    )?;
    let hybrid = Hybrid::fit(
        d,
        Some(&b.users),
        Some(&b.items),
        &HybridParams {
            components: 8,
            ..Default::default()
        },
        &ctl,
    )?;
    for p in b.prospects.iter().take(3) {
        let user = NewUser {
            items: vec![],
            attributes: p.categorical.clone(),
        };
        let by_segment = pop.recommend_new(&user, 3, &Filter::new())?;
        let by_hybrid = hybrid.recommend_new(&user, 3, &Filter::new())?;
        let names = |r: &[aurum_reco::Recommendation]| {
            r.iter()
                .map(|r| r.item.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(
            out,
            "prospect {} {:?}: segment popularity [{}], hybrid [{}]",
            p.id,
            p.categorical,
            names(&by_segment),
            names(&by_hybrid)
        )?;
    }
    let knn = ItemKnn::fit(d, &ItemKnnParams::default(), &ctl)?;
    let one = d
        .users()
        .ids()
        .iter()
        .find(|u| {
            d.user_items()
                .row(d.users().get(u).unwrap_or(0) as usize)
                .0
                .len()
                == 1
        })
        .cloned();
    if let Some(u) = one {
        let rec = knn.recommend(&u, 2, &Filter::new())?;
        for r in &rec {
            let why = knn.explain(&u, &r.item, 1)?;
            writeln!(
                out,
                "customer {u}: {} ({:.3}) because they hold {:?}",
                r.item,
                r.score,
                why.first().map(|w| &w.because)
            )?;
        }
    }
    Ok(())
}
