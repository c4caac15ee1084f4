//! Two customer segments with disjoint product families, so every sensible model separates them.

use aurum_reco::{
    AttributeRow, AttributeTable, InteractionOptions, InteractionRecord, Interactions, Weighting,
};

pub const PER_GROUP: usize = 20;

/// Young customers (`y0…`) hold 3 of the 5 `save*` products, older ones (`o0…`) 3 of the 5
/// `pension*` products, in a rotating pattern; timestamps increase along each user's list.
pub fn records() -> Vec<InteractionRecord> {
    let mut r = Vec::new();
    for (prefix, family) in [("y", "save"), ("o", "pension")] {
        for u in 0..PER_GROUP {
            for j in 0..3 {
                let item = format!("{family}{}", (u + j) % 5);
                r.push(
                    InteractionRecord::new(format!("{prefix}{u}"), item)
                        .weight(1.0)
                        .at((u * 10 + j) as i64),
                );
            }
        }
    }
    r
}

pub fn data() -> Interactions {
    Interactions::build(
        &records(),
        &InteractionOptions {
            weighting: Weighting::Linear { alpha: 5.0 },
            rating_threshold: None,
        },
    )
    .unwrap()
}

pub fn user_attributes() -> AttributeTable {
    let rows = (0..PER_GROUP)
        .flat_map(|u| {
            [
                AttributeRow::new(format!("y{u}"))
                    .with("age", "18-29")
                    .with("job", if u % 2 == 0 { "student" } else { "services" }),
                AttributeRow::new(format!("o{u}"))
                    .with("age", "60-69")
                    .with("job", if u % 2 == 0 { "retired" } else { "services" }),
            ]
        })
        .collect();
    AttributeTable::users(rows).unwrap()
}

pub fn item_attributes() -> AttributeTable {
    let rows = (0..5)
        .flat_map(|i| {
            [
                AttributeRow::new(format!("save{i}"))
                    .with("category", "savings")
                    .text("instant access savings account"),
                AttributeRow::new(format!("pension{i}"))
                    .with("category", "pension")
                    .text("retirement pension plan"),
            ]
        })
        .collect();
    AttributeTable::items(rows).unwrap()
}

pub fn is_young_product(id: &str) -> bool {
    id.starts_with("save")
}
