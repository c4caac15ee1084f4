//! Popularity: rank items by how many users hold them, overall or within the user's segment.
//!
//! Why keep it: it is the baseline every personalised model must beat on the same split, and
//! the fallback for a customer about whom nothing is known. Segments (one categorical user
//! attribute, e.g. age band or job) give a cheap personalisation for new customers: a segment
//! too small to trust falls back to the overall ranking.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::recommender::{FitControl, NewUser, Recommender};
use crate::{AttributeTable, History, Interactions, RecoError};

#[derive(Clone, Debug, PartialEq)]
pub struct PopularityParams {
    /// A user attribute field to segment by; `None` ranks overall.
    pub segment_field: Option<String>,
    /// Segments with fewer users use the overall ranking.
    pub min_segment_users: usize,
}

impl Default for PopularityParams {
    fn default() -> Self {
        PopularityParams {
            segment_field: None,
            min_segment_users: 20,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Popularity {
    history: History,
    overall: Vec<f32>,
    segment_field: Option<String>,
    /// Segment value → item counts (only segments with enough users).
    segments: BTreeMap<String, Vec<f32>>,
    /// The segment of each known user, if any.
    user_segment: Vec<Option<String>>,
}

impl Popularity {
    pub fn fit(
        data: &Interactions,
        users: Option<&AttributeTable>,
        params: &PopularityParams,
        ctl: &FitControl,
    ) -> Result<Self, RecoError> {
        ctl.step("popularity", 0.0)?;
        let n_items = data.items().len();
        let counts = |rows: &mut dyn Iterator<Item = usize>| {
            let mut c = vec![0f32; n_items];
            for u in rows {
                for &i in data.user_items().row(u).0 {
                    c[i as usize] += 1.0;
                }
            }
            c
        };
        let overall = counts(&mut (0..data.users().len()));
        let mut segments = BTreeMap::new();
        let mut user_segment = vec![None; data.users().len()];
        if let Some(field) = &params.segment_field {
            let table = users.ok_or_else(|| {
                RecoError::param(
                    "segment_field",
                    format!("`{field}` needs a user attribute table"),
                )
            })?;
            if !table.has_field(field) {
                return Err(RecoError::param(
                    "segment_field",
                    format!("no user attribute row has the field `{field}`"),
                ));
            }
            let mut members: HashMap<String, Vec<usize>> = HashMap::new();
            for (u, id) in data.users().ids().iter().enumerate() {
                if let Some(v) = table.value(id, field) {
                    members.entry(v.to_string()).or_default().push(u);
                    user_segment[u] = Some(v.to_string());
                }
            }
            for (value, us) in members {
                if us.len() >= params.min_segment_users.max(1) {
                    segments.insert(value, counts(&mut us.into_iter()));
                }
            }
        }
        ctl.step("popularity", 1.0)?;
        Ok(Popularity {
            history: data.history(),
            overall,
            segment_field: params.segment_field.clone(),
            segments,
            user_segment,
        })
    }

    /// Segment counts plus the overall count scaled below one segment count, as a tie-breaker.
    fn scores_for(&self, segment: Option<&str>) -> Vec<f32> {
        let max = self.overall.iter().copied().fold(0.0, f32::max) + 1.0;
        match segment.and_then(|s| self.segments.get(s)) {
            Some(seg) => seg
                .iter()
                .zip(&self.overall)
                .map(|(s, o)| s + o / max)
                .collect(),
            None => self.overall.clone(),
        }
    }
}

impl Recommender for Popularity {
    fn kind(&self) -> &'static str {
        "popularity"
    }
    fn history(&self) -> &History {
        &self.history
    }
    fn score_user(&self, user: u32) -> Vec<f32> {
        self.scores_for(
            self.user_segment
                .get(user as usize)
                .and_then(|s| s.as_deref()),
        )
    }
    fn score_new_user(&self, user: &NewUser) -> Result<Vec<f32>, RecoError> {
        let seg = self
            .segment_field
            .as_ref()
            .and_then(|f| user.attributes.iter().find(|(k, _)| k == f))
            .map(|(_, v)| v.as_str());
        Ok(self.scores_for(seg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AttributeRow, Filter, InteractionOptions, InteractionRecord};

    #[test]
    fn segments_change_the_ranking_and_small_ones_fall_back() {
        let mut r = Vec::new();
        for u in 0..3 {
            r.push(InteractionRecord::new(format!("y{u}"), "savings"));
        }
        for u in 0..2 {
            r.push(InteractionRecord::new(format!("o{u}"), "pension"));
        }
        let data = Interactions::build(&r, &InteractionOptions::default()).unwrap();
        let rows = (0..3)
            .map(|u| AttributeRow::new(format!("y{u}")).with("age", "young"))
            .chain((0..2).map(|u| AttributeRow::new(format!("o{u}")).with("age", "old")))
            .collect();
        let users = AttributeTable::users(rows).unwrap();
        let p = PopularityParams {
            segment_field: Some("age".into()),
            min_segment_users: 2,
        };
        let m = Popularity::fit(&data, Some(&users), &p, &FitControl::default()).unwrap();
        let old = NewUser {
            attributes: vec![("age".into(), "old".into())],
            ..Default::default()
        };
        assert_eq!(
            m.recommend_new(&old, 1, &Filter::new()).unwrap()[0].item,
            "pension"
        );
        let nobody = NewUser::default();
        assert_eq!(
            m.recommend_new(&nobody, 1, &Filter::new()).unwrap()[0].item,
            "savings"
        );
        let e = Popularity::fit(&data, None, &p, &FitControl::default()).unwrap_err();
        assert!(e.to_string().contains("segment_field"));
    }
}
