//! Recommendation over the router: training a ranking model, recommend, similar items, cold
//! start, filters, bad input, and a credit decision gating lending offers.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::common::{Fixture, call, fixture, get, import_german, post_json, train, train_with};

const LENDING: [&str; 2] = ["loan_small", "loan_home"];

/// Bank-like holdings: students and retired customers hold different products; loans are the
/// `lending` category. Returns the CSV and each customer's products.
fn holdings() -> (String, Vec<(String, Vec<&'static str>)>) {
    let mut csv = String::from("customer,product,category,job,period\n");
    let mut held = Vec::new();
    for u in 0..60 {
        let (job, products): (&str, &[&'static str]) = if u % 2 == 0 {
            ("student", &["current", "card", "loan_small", "isa"])
        } else {
            ("retired", &["current", "pension", "bond", "loan_home"])
        };
        let n = 2 + u % 3;
        for (t, p) in products.iter().take(n).enumerate() {
            let cat = if p.starts_with("loan") {
                "lending"
            } else {
                "deposits"
            };
            csv.push_str(&format!("c{u},{p},{cat},{job},{t}\n"));
        }
        held.push((format!("c{u}"), products[..n].to_vec()));
    }
    (csv, held)
}

async fn trained(f: &Fixture, kind: &str) -> serde_json::Value {
    let (csv, _) = holdings();
    let r = call(
        &f.app,
        Method::POST,
        "/v1/datasets?name=holdings",
        Some(&f.analyst),
        Body::from(csv),
        "text/csv",
    )
    .await;
    assert!(r.status.is_success(), "{}", r.json);
    let mut body = json!({
            "dataset": "holdings", "target": "product", "kind": kind, "model": "offers",
            "alias": "champion",
            "params": {
                "user_column": "customer", "item_column": "product", "time_column": "period",
                "item_attributes": "category", "user_attributes": "job",
                "min_segment_users": "5",
            },
    });
    if kind == "als" {
        body["params"]["factors"] = json!("8");
    }
    let job = train_with(f, &body).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    job
}

#[tokio::test]
async fn a_ranking_model_trains_with_ranking_metrics_and_recommends_with_reasons() {
    let f = fixture().await;
    trained(&f, "als").await;
    let v = get(&f.app, "/v1/models/offers/versions/1", Some(&f.client)).await;
    for key in [
        "ndcg_at_10",
        "map_at_10",
        "popularity_ndcg_at_10",
        "coverage_at_10",
    ] {
        assert!(v.json["metrics"][key].is_number(), "{key}: {}", v.json);
    }
    let r = post_json(
        &f.app,
        "/v1/models/offers/recommend",
        Some(&f.client),
        &json!({"user": "c0", "k": 3, "explain": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let items = r.json["items"].as_array().unwrap();
    assert!(!items.is_empty() && items.len() <= 3);
    assert!(items.iter().all(|i| i["reasons"].is_array()));
    assert_eq!(r.json["source"], "als");
    assert!(r.json["audit_seq"].is_number());
    let audit = get(&f.app, "/v1/audit?limit=1000", Some(&f.admin)).await;
    let records = audit.json["records"].as_array().unwrap();
    assert!(
        records
            .iter()
            .any(|x| x["event"] == "recommendation" && x["input_sha256"] == r.json["input_sha256"]),
        "{}",
        audit.json
    );

    let s = post_json(
        &f.app,
        "/v1/models/offers/similar-items",
        Some(&f.client),
        &json!({"item": "pension", "k": 2, "alias": "champion"}),
    )
    .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.json);
    assert!(
        s.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["item"] != "pension")
    );
}

#[tokio::test]
async fn a_held_product_is_never_recommended_when_excluded() {
    let f = fixture().await;
    trained(&f, "reco_item_knn").await;
    let (_, held) = holdings();
    for (user, products) in &held {
        let r = post_json(
            &f.app,
            "/v1/models/offers/recommend",
            Some(&f.client),
            &json!({"user": user, "k": 10, "filters": {"exclude_categories": {"category": ["lending"]}}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        for i in r.json["items"].as_array().unwrap() {
            let item = i["item"].as_str().unwrap();
            assert!(!products.contains(&item), "{user} holds {item}");
            assert!(!LENDING.contains(&item), "{user} was offered {item}");
        }
    }
    let r = post_json(
        &f.app,
        "/v1/models/offers/recommend",
        Some(&f.client),
        &json!({"user": "c0", "k": 10, "filters": {"exclude_held": false}}),
    )
    .await;
    let items: Vec<&str> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_str().unwrap())
        .collect();
    assert!(items.contains(&"current"), "{items:?}");
}

#[tokio::test]
async fn a_new_customer_with_attributes_gets_their_segments_products() {
    let f = fixture().await;
    trained(&f, "reco_hybrid").await;
    let r = post_json(
        &f.app,
        "/v1/models/offers/recommend",
        Some(&f.client),
        &json!({"user": "newcomer", "attributes": {"job": "retired"}, "k": 3, "explain": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["cold_start"], true);
    let items: Vec<&str> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_str().unwrap())
        .collect();
    assert_eq!(items.len(), 3, "{}", r.json);
    assert!(
        items
            .iter()
            .all(|i| !["card", "isa", "loan_small"].contains(i)),
        "{items:?}"
    );
}

#[tokio::test]
async fn bad_recommendation_input_is_a_400_naming_the_field() {
    let f = fixture().await;
    trained(&f, "reco_popularity").await;
    let cases = [
        (json!({"user": "nobody"}), "user", "unknown_user"),
        (json!({"user": "c0", "k": 0}), "k", "invalid_field"),
        (json!({"user": "c0", "k": 101}), "k", "invalid_field"),
        (
            json!({"user": "c0", "filters": {"colour": ["red"]}}),
            "filters",
            "unknown_field",
        ),
        (
            json!({"user": "c0", "filters": {"include_categories": {"colour": ["red"]}}}),
            "include_categories.colour",
            "invalid_field",
        ),
        (
            json!({"user": "c0", "filters": {"exclude_items": ["yacht"]}}),
            "exclude_items",
            "unknown_item",
        ),
        (
            json!({"attributes": {"age": "40"}}),
            "attributes.age",
            "invalid_field",
        ),
        (json!({}), "user", "invalid_field"),
    ];
    for (body, field, code) in cases {
        let r = post_json(
            &f.app,
            "/v1/models/offers/recommend",
            Some(&f.client),
            &body,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.json);
        let got = r.json["details"]["field"].as_str().unwrap_or_default();
        assert!(got.starts_with(field), "{body}: {}", r.json);
        assert_eq!(r.json["code"], code, "{body}: {}", r.json);
    }
    let r = post_json(
        &f.app,
        "/v1/models/offers/similar-items",
        Some(&f.client),
        &json!({"item": "yacht"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["details"]["field"], "item");
    // Scoring records with a recommender says which endpoint to use before it reads them (it
    // first asked for columns of the interaction file).
    let r = post_json(
        &f.app,
        "/v1/models/offers/predict",
        Some(&f.client),
        &json!({"records": [{"age": 40}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert_eq!(r.json["code"], "wrong_task", "{}", r.json);
}

/// The decision flow: an applicant the credit model declines is offered no lending product.
#[tokio::test]
async fn an_applicant_declined_by_the_credit_model_is_never_offered_lending() {
    let f = fixture().await;
    trained(&f, "als").await;
    import_german(&f).await;
    let job = train(&f, "credit", json!({}), Some("champion")).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let schema = get(&f.app, "/v1/models/credit/versions/1", Some(&f.client)).await;
    assert!(schema.status.is_success());
    // Score every applicant of the demo file; pair each with a customer of the holdings.
    let csv = crate::common::GERMAN;
    let text = std::str::from_utf8(csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut declined = 0;
    for (n, line) in lines.filter(|l| !l.contains('"')).take(60).enumerate() {
        let record: serde_json::Map<String, serde_json::Value> = header
            .iter()
            .zip(line.split(','))
            .filter(|(h, _)| **h != "creditability")
            .map(|(h, v)| {
                let v = v.parse::<f64>().map_or_else(|_| json!(v), |x| json!(x));
                (h.to_string(), v)
            })
            .collect();
        let p = post_json(
            &f.app,
            "/v1/models/credit/predict",
            Some(&f.client),
            &json!({"records": [record]}),
        )
        .await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.json);
        let decision = p.json["predictions"][0]["decision"]
            .as_str()
            .unwrap()
            .to_string();
        let mut filters = json!({});
        if decision != "approve" {
            declined += 1;
            filters["exclude_categories"] = json!({"category": ["lending"]});
        }
        let r = post_json(
            &f.app,
            "/v1/models/offers/recommend",
            Some(&f.client),
            &json!({"user": format!("c{n}"), "k": 10, "filters": filters}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        if decision != "approve" {
            for i in r.json["items"].as_array().unwrap() {
                assert!(
                    !LENDING.contains(&i["item"].as_str().unwrap()),
                    "{decision}: {}",
                    r.json
                );
            }
        }
    }
    assert!(declined > 0, "the sample has declined applicants");
}

/// The same rule as a server-side flow: `POST /v1/flows/{name}/run` scores the applicant and
/// withholds lending products unless the credit decision is `approve`.
#[tokio::test]
async fn a_decision_flow_never_offers_lending_to_a_declined_applicant() {
    let f = fixture().await;
    trained(&f, "als").await;
    import_german(&f).await;
    let job = train(&f, "credit", json!({}), Some("champion")).await;
    assert_eq!(job["state"], "succeeded", "{job}");

    // Definitions are checked: the recommender must rank, lending products must be named.
    let bad = crate::common::put_json(
        &f.app,
        "/v1/flows/cross-sell",
        Some(&f.analyst),
        &json!({"credit_model": "credit", "recommender": "credit", "lending_items": ["loan_home"]}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.json);
    assert_eq!(bad.json["details"]["field"], "recommender", "{}", bad.json);
    let bad = crate::common::put_json(
        &f.app,
        "/v1/flows/cross-sell",
        Some(&f.analyst),
        &json!({"credit_model": "credit", "recommender": "offers"}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.json);
    // Lending products must exist in the recommender's catalogue: a misspelt category once
    // excluded nothing, and declined applicants were offered loans.
    for (def, field, code) in [
        (
            json!({"lending_categories": {"category": ["Lending"]}}),
            "lending_categories.category[0]",
            "invalid_field",
        ),
        (
            json!({"lending_categories": {"Category": ["lending"]}}),
            "lending_categories.Category",
            "invalid_field",
        ),
        (
            json!({"lending_categories": {"category": []}}),
            "lending_categories.category",
            "invalid_field",
        ),
        (
            json!({"lending_items": [LENDING[0], "Loan_home"]}),
            "lending_items[1]",
            "unknown_item",
        ),
    ] {
        let mut body = json!({"credit_model": "credit", "recommender": "offers"});
        body.as_object_mut()
            .unwrap()
            .extend(def.as_object().unwrap().clone());
        let bad =
            crate::common::put_json(&f.app, "/v1/flows/cross-sell", Some(&f.analyst), &body).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{def}: {}", bad.json);
        assert_eq!(bad.json["code"], code, "{def}: {}", bad.json);
        assert_eq!(bad.json["details"]["field"], field, "{def}: {}", bad.json);
    }
    let missing = get(&f.app, "/v1/flows/cross-sell", Some(&f.client)).await;
    assert_eq!(
        missing.status,
        StatusCode::NOT_FOUND,
        "nothing was saved: {}",
        missing.json
    );
    let put = crate::common::put_json(
        &f.app,
        "/v1/flows/cross-sell",
        Some(&f.analyst),
        &json!({"credit_model": "credit", "recommender": "offers",
                "lending_categories": {"category": ["lending"]}}),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.json);
    let got = get(&f.app, "/v1/flows/cross-sell", Some(&f.client)).await;
    assert_eq!(
        got.json["offer_lending_on"],
        json!(["approve"]),
        "{}",
        got.json
    );

    let text = std::str::from_utf8(crate::common::GERMAN).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let (mut declined, mut approved_with_lending) = (0, 0);
    for (n, line) in lines.filter(|l| !l.contains('"')).take(60).enumerate() {
        let applicant: serde_json::Map<String, serde_json::Value> = header
            .iter()
            .zip(line.split(','))
            .filter(|(h, _)| **h != "creditability")
            .map(|(h, v)| {
                let v = v.parse::<f64>().map_or_else(|_| json!(v), |x| json!(x));
                (h.to_string(), v)
            })
            .collect();
        // Asking for lending explicitly cannot bring it back for a declined applicant.
        let r = post_json(
            &f.app,
            "/v1/flows/cross-sell/run",
            Some(&f.client),
            &json!({"applicant": applicant, "user": format!("c{n}"), "k": 10,
                    "filters": {"include_categories": {"category": ["lending", "deposits"]}}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        let decision = r.json["credit"]["decision"].as_str().unwrap();
        let lending: Vec<&str> = r.json["offers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["item"].as_str().unwrap())
            .filter(|i| LENDING.contains(i))
            .collect();
        if decision == "approve" {
            assert_eq!(r.json["lending_offered"], true, "{}", r.json);
            approved_with_lending += usize::from(!lending.is_empty());
        } else {
            declined += 1;
            assert_eq!(r.json["lending_offered"], false, "{}", r.json);
            assert!(lending.is_empty(), "{decision}: {}", r.json);
        }
        // Both steps are in the audit log under the flow's request id.
        if n == 0 {
            let audit = get(&f.app, "/v1/audit?limit=1000", Some(&f.admin)).await;
            let id = r.json["request_id"].as_str().unwrap();
            let events: Vec<&str> = audit.json["records"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["request_id"] == id)
                .map(|a| a["event"].as_str().unwrap())
                .collect();
            assert_eq!(events, ["prediction", "recommendation"], "{}", audit.json);
        }
    }
    assert!(declined > 0, "the sample has declined applicants");
    assert!(
        approved_with_lending > 0,
        "approved applicants are offered lending"
    );

    // Bad runs name the field.
    let r = post_json(
        &f.app,
        "/v1/flows/cross-sell/run",
        Some(&f.client),
        &json!({"applicant": {"age_in_years": 30}, "user": "c1"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    assert!(
        r.json["details"]["field"]
            .as_str()
            .unwrap()
            .starts_with("applicant."),
        "{}",
        r.json
    );
    let r = post_json(
        &f.app,
        "/v1/flows/nope/run",
        Some(&f.client),
        &json!({"applicant": {}, "user": "c1"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.json);
    assert_eq!(r.json["code"], "flow_not_found", "{}", r.json);
}
