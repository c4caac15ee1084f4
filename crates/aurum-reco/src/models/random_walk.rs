//! Graph candidates: random walk with restart on the user–item bipartite graph.
//!
//! From the user, a walker steps to an item (probability proportional to the interaction
//! weight), back to a user, and so on; after each return to the user side it restarts at the
//! query user with probability `restart`. An item's score is how often the walker stands on it.
//! We compute the visiting distribution exactly by power iteration for `steps` round trips
//! instead of simulating walks, so the result has no sampling noise and needs no seed.
//!
//! Why: it reaches items two, three or more hops away (holders of holders of what you hold),
//! which catches products a one-hop neighbourhood misses, and is a cheap candidate generator
//! for a re-ranking stage.

use serde::{Deserialize, Serialize};

use crate::interactions::Csr;
use crate::recommender::{FitControl, NewUser, Recommender};
use crate::{History, Interactions, RecoError};

#[derive(Clone, Debug, PartialEq)]
pub struct RandomWalkParams {
    /// Probability of jumping back to the query user after each round trip.
    pub restart: f32,
    /// Round trips (user → item → user) of the power iteration.
    pub steps: usize,
}

impl Default for RandomWalkParams {
    fn default() -> Self {
        RandomWalkParams {
            restart: 0.3,
            steps: 10,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RandomWalk {
    history: History,
    item_users: Csr,
    restart: f32,
    steps: usize,
}

impl RandomWalk {
    pub fn fit(
        data: &Interactions,
        params: &RandomWalkParams,
        ctl: &FitControl,
    ) -> Result<Self, RecoError> {
        crate::error::check_range("restart", params.restart, 1e-6, 1.0)?;
        crate::error::check_count("steps", params.steps, 1, 1000)?;
        ctl.step("random_walk", 1.0)?;
        Ok(RandomWalk {
            history: data.history(),
            item_users: data.item_users().clone(),
            restart: params.restart,
            steps: params.steps,
        })
    }

    /// Item visiting mass for a walk restarting at the distribution `start` over users, or at
    /// the held items of a new user.
    fn walk(&self, start_users: &[f32], start_items: Option<&[f32]>) -> Vec<f32> {
        let ui = &self.history.user_items;
        let iu = &self.item_users;
        let row_sum = |m: &Csr, r: usize| m.row(r).1.iter().sum::<f32>();
        let user_deg: Vec<f32> = (0..ui.rows()).map(|u| row_sum(ui, u)).collect();
        let item_deg: Vec<f32> = (0..iu.rows()).map(|i| row_sum(iu, i)).collect();
        let mut users = start_users.to_vec();
        let mut visits = vec![0f32; iu.rows()];
        let mut items = vec![0f32; iu.rows()];
        for step in 0..self.steps {
            items.iter_mut().for_each(|x| *x = 0.0);
            for (u, &p) in users.iter().enumerate() {
                if p > 0.0 && user_deg[u] > 0.0 {
                    let (cols, w) = ui.row(u);
                    for (&i, &w) in cols.iter().zip(w) {
                        items[i as usize] += p * w / user_deg[u];
                    }
                }
            }
            if step == 0
                && let Some(extra) = start_items
            {
                items.iter_mut().zip(extra).for_each(|(x, e)| *x += e);
            }
            visits.iter_mut().zip(&items).for_each(|(v, x)| *v += x);
            users.iter_mut().for_each(|x| *x = 0.0);
            for (i, &p) in items.iter().enumerate() {
                if p > 0.0 && item_deg[i] > 0.0 {
                    let (rows, w) = iu.row(i);
                    for (&u, &w) in rows.iter().zip(w) {
                        users[u as usize] += (1.0 - self.restart) * p * w / item_deg[i];
                    }
                }
            }
            users
                .iter_mut()
                .zip(start_users)
                .for_each(|(x, s)| *x += self.restart * s);
        }
        visits
    }
}

impl Recommender for RandomWalk {
    fn kind(&self) -> &'static str {
        "random_walk"
    }
    fn history(&self) -> &History {
        &self.history
    }
    fn score_user(&self, user: u32) -> Vec<f32> {
        let mut start = vec![0f32; self.history.users.len()];
        if let Some(s) = start.get_mut(user as usize) {
            *s = 1.0;
        }
        self.walk(&start, None)
    }
    fn score_new_user(&self, user: &NewUser) -> Result<Vec<f32>, RecoError> {
        let held = self.history.items.resolve("item", &user.items)?;
        if held.is_empty() {
            return Err(RecoError::Unsupported {
                model: "random_walk",
                what: "score a new user who holds no known item",
            });
        }
        // The new user is not a node: start from their held items instead, with no restart mass.
        let mut items = vec![0f32; self.history.items.len()];
        for &i in &held {
            items[i as usize] += 1.0 / held.len() as f32;
        }
        Ok(self.walk(&vec![0f32; self.history.users.len()], Some(&items)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Filter, InteractionOptions, InteractionRecord, Weighting};

    #[test]
    fn reaches_items_two_hops_away() {
        // a–x, b–x, b–y, c–y, c–z: from a, y is 3 hops, z is 5 hops; both reachable, y first.
        let pairs = [("a", "x"), ("b", "x"), ("b", "y"), ("c", "y"), ("c", "z")];
        let r: Vec<_> = pairs
            .iter()
            .map(|(u, i)| InteractionRecord::new(*u, *i))
            .collect();
        let d = Interactions::build(
            &r,
            &InteractionOptions {
                weighting: Weighting::Binary,
                rating_threshold: None,
            },
        )
        .unwrap();
        let m = RandomWalk::fit(&d, &RandomWalkParams::default(), &FitControl::default()).unwrap();
        let rec = m.recommend("a", 5, &Filter::new()).unwrap();
        let ids: Vec<&str> = rec.iter().map(|r| r.item.as_str()).collect();
        assert_eq!(ids, vec!["y", "z"]);
        let e = RandomWalk::fit(
            &d,
            &RandomWalkParams {
                restart: 0.0,
                steps: 3,
            },
            &FitControl::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("`restart`"));
    }
}
