//! Live fraud scoring with state: `POST /v1/models/{name}/events`, `POST
//! /v1/models/{name}/labels` and `GET /v1/models/{name}/events/state`, over
//! [`aurum_service::Platform::score_events`] and friends. The version answering is the one
//! named in the body, else the `champion` alias; the state is the model's, shared by its versions.

use aurum_service::{EventFields, FeatureValues, LabelInput, ModelRef, action_str};
use axum::Json;
use axum::extract::{FromRequest, Request, State};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Authorized, NoQuery, Path, perm};
use crate::middleware::{JsonBody, from_json_value, parse_json_value, read_body};

/// One event (`event`) or a batch in arrival order (`events`); fields as the model's feature
/// spec names them, e.g. `{"TRANSACTION_ID": 1, "TX_TIME_SECONDS": 634, "CUSTOMER_ID": 927,
/// "TERMINAL_ID": 9906, "TX_AMOUNT": 50.99}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsIn {
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub event: Option<EventFields>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub events: Option<Vec<EventFields>>,
    /// A version; default: the `champion` alias.
    #[serde(default)]
    pub version: Option<u32>,
}

/// The body of an events call, parsed as [`JsonBody`] parses any body (strict JSON, then the
/// typed shape with its field-naming errors), with one pass fewer for the usual shapes:
/// `{"event": {…}}` or `{"events": [{…}, …]}`, with or without an integer `version`, is taken
/// apart as parsed; any other body goes through the typed deserialisation, so its errors are
/// those of every other route.
pub struct EventsBody(pub EventsIn);

impl<S: Send + Sync> FromRequest<S> for EventsBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        let value = parse_json_value(&bytes)?;
        match EventsIn::from_usual(value) {
            Ok(body) => Ok(EventsBody(body)),
            Err(value) => from_json_value(value).map(EventsBody),
        }
    }
}

impl EventsIn {
    /// The body when it has one of the usual shapes (see [`EventsBody`]); the value back when not.
    fn from_usual(value: serde_json::Value) -> Result<EventsIn, serde_json::Value> {
        use serde_json::Value as V;
        let V::Object(mut map) = value else {
            return Err(value);
        };
        let usual = map.iter().all(|(k, v)| match (k.as_str(), v) {
            ("event", V::Object(_)) => true,
            ("events", V::Array(a)) => a.iter().all(V::is_object),
            ("version", V::Number(n)) => n.as_u64().is_some_and(|v| u32::try_from(v).is_ok()),
            _ => false,
        });
        if !usual {
            return Err(V::Object(map));
        }
        let object = |v: V| match v {
            V::Object(m) => Some(m),
            _ => None,
        };
        Ok(EventsIn {
            event: map.remove("event").and_then(object),
            events: map.remove("events").map(|v| match v {
                V::Array(a) => a.into_iter().filter_map(object).collect(),
                _ => Vec::new(),
            }),
            version: map
                .remove("version")
                .and_then(|v| v.as_u64())
                .and_then(|v| u32::try_from(v).ok()),
        })
    }
}

/// Why an event was reviewed or blocked (`type`: `score`, `feature`, `rule`, `deny_list`,
/// `allow_list`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReasonOut {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contribution: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    pub id: String,
    /// Fraud probability.
    pub score: f64,
    /// `allow`, `review` or `block`.
    pub decision: String,
    pub reasons: Vec<ReasonOut>,
    /// The features the score used (state strictly before the event), by name, in the order of
    /// the model's feature spec.
    #[schema(value_type = std::collections::BTreeMap<String, f64>)]
    #[serde(serialize_with = "feature_map")]
    pub features: FeatureValues,
}

/// The features as one JSON object, written straight from the values.
fn feature_map<S: Serializer>(f: &FeatureValues, s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(f.iter().len()))?;
    for (name, value) in f.iter() {
        map.serialize_entry(name, &value)?;
    }
    map.end()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventsOut {
    pub model: String,
    pub version: u32,
    pub results: Vec<EventOut>,
    pub audit_seq: Option<u64>,
    pub input_sha256: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelIn {
    /// The event's id, as sent.
    #[schema(value_type = Object)]
    pub event_id: serde_json::Value,
    pub fraud: bool,
    /// When the label became known (Unix seconds); default the latest event time in the state.
    #[serde(default)]
    pub known_at: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelsIn {
    pub labels: Vec<LabelIn>,
    #[serde(default)]
    pub version: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LabelsOut {
    pub model: String,
    /// Per label: `true` when an event in the state took it.
    pub applied: Vec<bool>,
    pub audit_seq: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventStateOut {
    pub model: String,
    pub events_applied: u64,
    pub labels_applied: u64,
    pub labels_unmatched: u64,
    pub entities: usize,
    pub events_held: usize,
    pub bytes_per_entity: f64,
    pub watermark: Option<i64>,
    /// Where the state lives: `local` (this process), or `redis <host>:<port>/<db>` shared by
    /// replicas.
    pub backend: String,
}

fn target(name: &str, version: Option<u32>) -> ModelRef {
    match version {
        Some(v) => ModelRef::version(name, v),
        None => ModelRef::champion(name),
    }
}

fn reason_out(r: aurum_service::FraudReason) -> ReasonOut {
    use aurum_service::FraudReason as R;
    let mut o = ReasonOut {
        kind: String::new(),
        feature: None,
        contribution: None,
        score: None,
        threshold: None,
        name: None,
        entity: None,
        value: None,
    };
    match r {
        R::Score {
            score, threshold, ..
        } => {
            o.kind = "score".into();
            o.score = Some(score);
            o.threshold = Some(threshold);
        }
        R::Feature {
            feature,
            contribution,
        } => {
            o.kind = "feature".into();
            o.feature = Some(feature);
            o.contribution = Some(contribution);
        }
        R::Rule {
            name,
            feature,
            value,
            ..
        } => {
            o.kind = "rule".into();
            o.name = Some(name);
            o.feature = Some(feature);
            o.score = Some(value);
        }
        R::DenyList { entity, value } => {
            o.kind = "deny_list".into();
            o.entity = Some(entity);
            o.value = Some(value);
        }
        R::AllowList { entity, value } => {
            o.kind = "allow_list".into();
            o.entity = Some(entity);
            o.value = Some(value);
        }
    }
    o
}

/// Score events with state: each event is scored from the card's and terminal's history before
/// it, decided (`allow` / `review` / `block`), and added to that history; acknowledged events are
/// on disk. A bad event fails the whole call (400 naming `events[i].<field>`) and changes nothing.
#[utoipa::path(post, path = "/v1/models/{name}/events", tag = "predict", params(("name" = String, Path)),
    request_body = EventsIn,
    responses((status = 200, body = EventsOut), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<AppState>,
    caller: Authorized<perm::Predict>,
    Path(name): Path<String>,
    EventsBody(body): EventsBody,
) -> ApiResult<Json<EventsOut>> {
    let batch = match (body.event, body.events) {
        (Some(e), None) => vec![e],
        (None, Some(es)) => es,
        _ => {
            return Err(ApiError::invalid(
                "invalid_field",
                Some("events"),
                "send exactly one of `event` (one event) or `events` (a batch)",
            ));
        }
    };
    let model = state.platform.resolve(&target(&name, body.version)).await?;
    let out = state
        .platform
        .score_events(&caller.ctx(), model, batch)
        .await?;
    Ok(Json(EventsOut {
        model: out.model,
        version: out.version,
        results: out
            .outcomes
            .into_iter()
            .map(|o| EventOut {
                id: o.id,
                score: o.score,
                decision: action_str(o.action).into(),
                reasons: o.reasons.into_iter().map(reason_out).collect(),
                features: o.features,
            })
            .collect(),
        audit_seq: out.audit_seq,
        input_sha256: out.input_sha256,
    }))
}

/// Feed confirmed fraud (or confirmed genuine) labels back: they count in the label features of
/// later events once `known_at` is reached.
#[utoipa::path(post, path = "/v1/models/{name}/labels", tag = "predict", params(("name" = String, Path)),
    request_body = LabelsIn,
    responses((status = 200, body = LabelsOut), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn labels(
    State(state): State<AppState>,
    caller: Authorized<perm::Predict>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<LabelsIn>,
) -> ApiResult<Json<LabelsOut>> {
    let labels = body
        .labels
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let event_id = match l.event_id {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                _ => {
                    return Err(ApiError::invalid(
                        "invalid_field",
                        Some(&format!("labels[{i}].event_id")),
                        format!("labels[{i}].event_id must be a string or an integer"),
                    ));
                }
            };
            Ok(LabelInput {
                event_id,
                fraud: l.fraud,
                known_at: l.known_at,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let model = state.platform.resolve(&target(&name, body.version)).await?;
    let out = state
        .platform
        .add_labels(&caller.ctx(), model, labels)
        .await?;
    Ok(Json(LabelsOut {
        model: out.model,
        applied: out.applied,
        audit_seq: out.audit_seq,
    }))
}

/// Counts and memory of the model's event state.
#[utoipa::path(get, path = "/v1/models/{name}/events/state", tag = "predict", params(("name" = String, Path)),
    responses((status = 200, body = EventStateOut), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn event_state(
    State(state): State<AppState>,
    _caller: Authorized<perm::Predict>,
    _query: NoQuery,
    Path(name): Path<String>,
) -> ApiResult<Json<EventStateOut>> {
    let model = state.platform.resolve(&ModelRef::champion(&name)).await?;
    let s = state.platform.event_state(model).await?;
    Ok(Json(EventStateOut {
        model: s.model,
        events_applied: s.events_applied,
        labels_applied: s.labels_applied,
        labels_unmatched: s.labels_unmatched,
        entities: s.entities,
        events_held: s.events_held,
        bytes_per_entity: s.bytes_per_entity,
        watermark: s.watermark,
        backend: s.backend,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(body: &serde_json::Value) -> Result<EventsIn, String> {
        from_json_value::<EventsIn>(body.clone()).map_err(|e| format!("{e:?}"))
    }

    /// The usual shapes come apart exactly as the typed deserialisation reads them; every other
    /// body is handed back whole, for the typed deserialisation and its errors.
    #[test]
    fn the_usual_shapes_match_the_typed_reading_and_others_go_to_it() {
        let usual = [
            serde_json::json!({"event": {"id": 1, "amount": 2.5}}),
            serde_json::json!({"events": [{"id": 1}, {"id": "2", "k": null}], "version": 3}),
            serde_json::json!({"events": []}),
            serde_json::json!({"event": {}, "events": [{}]}),
            serde_json::json!({}),
        ];
        for body in usual {
            let fast = EventsIn::from_usual(body.clone()).expect("usual");
            let slow = typed(&body).unwrap();
            assert_eq!(fast.event, slow.event, "{body}");
            assert_eq!(fast.events, slow.events, "{body}");
            assert_eq!(fast.version, slow.version, "{body}");
        }
        let others = [
            serde_json::json!([{"id": 1}]),
            serde_json::json!({"event": {"id": 1}, "extra": 1}),
            serde_json::json!({"events": [{"id": 1}, 5]}),
            serde_json::json!({"event": null}),
            serde_json::json!({"events": [{}], "version": -1}),
            serde_json::json!({"events": [{}], "version": 4294967296u64}),
            serde_json::json!({"events": [{}], "version": 1.5}),
        ];
        for body in others {
            assert_eq!(EventsIn::from_usual(body.clone()).unwrap_err(), body);
        }
        assert!(typed(&serde_json::json!({"event": {"id": 1}, "extra": 1})).is_err());
    }
}
