//! Random and mutated model files: always an error value or a model, never a panic.

use aurum_trees::TreeModel;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::read_fixture;

/// Exercise a model that did parse: it must predict and explain without panicking.
fn exercise(model: &TreeModel) {
    let n = model.n_features();
    for row in [
        vec![0.0; n],
        vec![f64::NAN; n],
        vec![1e300; n],
        vec![-3.5; n],
    ] {
        let _ = model.predict(&row).unwrap();
        let _ = model.contributions(&row).unwrap();
    }
    let back = TreeModel::from_bytes(&model.to_bytes().unwrap()).unwrap();
    assert_eq!(&back, model);
}

fn mutate_lines(text: &str, rng: &mut ChaCha8Rng, edits: usize) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for _ in 0..edits {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let i = rng.random_range(0..lines.len());
        match rng.random_range(0..7) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let j = rng.random_range(0..lines.len());
                lines.swap(i, j);
            }
            2 => {
                // Replace one token of the line.
                let mut toks: Vec<String> = lines[i].split(' ').map(str::to_owned).collect();
                let k = rng.random_range(0..toks.len());
                toks[k] = [
                    "-1",
                    "0",
                    "1",
                    "99999",
                    "nan",
                    "inf",
                    "-2147483648",
                    "x",
                    "",
                    "3.5",
                ][rng.random_range(0..10)]
                .to_string();
                lines[i] = toks.join(" ");
            }
            3 => {
                let cut = rng.random_range(0..=lines[i].len());
                let cut = lines[i].floor_char_boundary(cut);
                lines[i].truncate(cut);
            }
            4 => {
                let j = rng.random_range(0..lines.len());
                let dup = lines[j].clone();
                lines.insert(i, dup);
            }
            5 => {
                // Perturb a number somewhere in the line.
                lines[i] = lines[i].replacen('1', "-", 1);
            }
            _ => {
                lines.truncate(i);
                if lines.is_empty() {
                    lines.push(String::new());
                }
            }
        }
    }
    lines.join("\n")
}

fn lightgbm_seed() -> String {
    // The categorical fixture cut to 3 trees keeps cases fast and exercises every field.
    let full = read_fixture("lgb_german.txt");
    let cut = full.find("Tree=3").unwrap();
    let rest = full.find("end of trees").unwrap();
    format!("{}{}", &full[..cut], &full[rest..])
}

#[test]
fn lightgbm_seed_parses() {
    exercise(&TreeModel::from_lightgbm_text(&lightgbm_seed()).unwrap());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_lightgbm_text_never_panics(seed in any::<u64>(), edits in 1_usize..6) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let text = mutate_lines(&lightgbm_seed(), &mut rng, edits);
        if let Ok(model) = TreeModel::from_lightgbm_text(&text) {
            exercise(&model);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = TreeModel::from_lightgbm_text(&text);
        let _ = TreeModel::from_xgboost_json(text.as_bytes());
        let _ = TreeModel::from_bytes(text.as_bytes());
    }

    #[test]
    fn header_shaped_text_never_panics(
        leaves in 0_usize..5,
        feats in proptest::collection::vec(-3_i64..5, 0..6),
        children in proptest::collection::vec(-5_i64..5, 0..8),
        dts in proptest::collection::vec(0_u8..16, 0..5),
    ) {
        let join = |v: &[i64]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
        let half = children.len() / 2;
        let text = format!(
            "tree\nnum_class=1\nnum_tree_per_iteration=1\nmax_feature_idx=2\n\
             objective=regression\nfeature_names=a b c\n\nTree=0\nnum_leaves={leaves}\n\
             num_cat=1\nsplit_feature={}\nthreshold=0 1 2 3\ndecision_type={}\n\
             left_child={}\nright_child={}\nleaf_value=1 2 3 4 5\nleaf_count=1 1 1 1 1\n\
             internal_count=2 2 2 2\ncat_boundaries=0 1\ncat_threshold=5\n\nend of trees\n",
            join(&feats),
            dts.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
            join(&children[..half]),
            join(&children[half..]),
        );
        if let Ok(model) = TreeModel::from_lightgbm_text(&text) {
            exercise(&model);
        }
    }

    #[test]
    fn mutated_xgboost_json_never_panics(seed in any::<u64>(), edits in 1_usize..5) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut v: serde_json::Value = serde_json::from_str(&xgboost_seed()).unwrap();
        for _ in 0..edits {
            mutate_json(&mut v, &mut rng);
        }
        if let Ok(model) = TreeModel::from_xgboost_json(&serde_json::to_vec(&v).unwrap()) {
            exercise(&model);
        }
    }

    #[test]
    fn truncated_or_flipped_bytes_never_panic(seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut bytes = xgboost_seed().into_bytes();
        let cut = rng.random_range(0..bytes.len());
        if rng.random_bool(0.5) {
            bytes.truncate(cut);
        } else {
            bytes[cut] = rng.random();
        }
        if let Ok(model) = TreeModel::from_xgboost_json(&bytes) {
            exercise(&model);
        }
    }
}

fn xgboost_seed() -> String {
    let mut v: serde_json::Value = serde_json::from_str(&read_fixture("xgb_german.json")).unwrap();
    let model = &mut v["learner"]["gradient_booster"]["model"];
    model["trees"].as_array_mut().unwrap().truncate(3);
    model["tree_info"].as_array_mut().unwrap().truncate(3);
    v.to_string()
}

/// Change one random leaf of the JSON tree to a hostile value (or drop a key / element).
fn mutate_json(v: &mut serde_json::Value, rng: &mut ChaCha8Rng) {
    use serde_json::{Value, json};
    match v {
        Value::Object(map) if !map.is_empty() => {
            let i = rng.random_range(0..map.len());
            let key = map.keys().nth(i).cloned().unwrap();
            if rng.random_bool(0.1) {
                map.remove(&key);
            } else {
                mutate_json(map.get_mut(&key).unwrap(), rng);
            }
        }
        Value::Array(arr) if !arr.is_empty() => {
            let i = rng.random_range(0..arr.len());
            if rng.random_bool(0.05) {
                arr.remove(i);
            } else {
                mutate_json(&mut arr[i], rng);
            }
        }
        _ => {
            let hostile = [
                json!(-1),
                json!(0),
                json!(1),
                json!(2147483647),
                json!(-2147483648_i64),
                json!(1e308),
                json!("x"),
                json!(null),
                json!([]),
                json!({}),
                json!(16777216),
                json!(0.5),
            ];
            *v = hostile[rng.random_range(0..hostile.len())].clone();
        }
    }
}

#[test]
fn regression_mutated_lightgbm_round_trips() {
    let mut rng = ChaCha8Rng::seed_from_u64(10308825610346476293);
    let text = mutate_lines(&lightgbm_seed(), &mut rng, 4);
    if let Ok(model) = TreeModel::from_lightgbm_text(&text) {
        let bytes = model.to_bytes().unwrap();
        match TreeModel::from_bytes(&bytes) {
            Ok(back) => assert_eq!(&back, &model),
            Err(e) => panic!("stored form does not load back: {e}\n{text}"),
        }
    }
}
