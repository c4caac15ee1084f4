//! The family registry: every model family the process knows, keyed by name.
//!
//! Why a registry and not an enum: the set of families is open. A family crate exports one
//! `static` implementing [`ModelFamily`]; the application registers it with one line
//! ([`Families::with`]); the job runner, the registry, the model cache and the servers look
//! families up by the name stored on each version. Nothing else has to change to add one.

use std::collections::BTreeMap;
use std::sync::Arc;

use aurum_core::{Params, Task};

use crate::{ModelError, ModelFamily};

/// What a family is: its public name, the other spellings it answers to, its task and its
/// parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FamilySpec {
    /// The public name (`gbdt`), stored on every version; see [`aurum_core::FamilyName`].
    pub name: &'static str,
    /// Other spellings accepted on input (`gbm`, `gradient_boosting`); never stored.
    pub aliases: &'static [&'static str],
    pub task: Task,
    /// One line for listings.
    pub summary: &'static str,
    /// The parameter names [`ModelFamily::validate_params`] accepts.
    pub params: &'static [&'static str],
    /// Whether aurum trains this family (`false`: it is only imported).
    pub trainable: bool,
    /// Whether [`ModelFamily::import`] reads model files of this name (`aurum import --format`).
    pub importable: bool,
}

/// A family's description with its parameter defaults, for listings (`GET /v1/families`).
#[derive(Clone, Debug, PartialEq)]
pub struct FamilyInfo {
    pub spec: FamilySpec,
    /// The canonical parameters with nothing given (every default), or `None` when the family
    /// has required parameters.
    pub defaults: Option<serde_json::Value>,
}

/// Every family the process knows, keyed by name and alias.
#[derive(Clone, Default)]
pub struct Families {
    list: Vec<Arc<dyn ModelFamily>>,
    by_name: BTreeMap<&'static str, usize>,
}

impl std::fmt::Debug for Families {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl Families {
    pub fn new() -> Self {
        Self::default()
    }

    /// This registry with `family` added.
    ///
    /// # Panics
    /// When the family's name or one of its aliases is already taken, or its name is not a
    /// valid [`aurum_core::FamilyName`]: registration is code, not input, and a clash must stop
    /// the program at start-up (the built-in set is checked by a test).
    #[must_use]
    pub fn with(mut self, family: impl ModelFamily + 'static) -> Self {
        let spec = *family.spec();
        assert!(
            aurum_core::FamilyName::new(spec.name).is_ok(),
            "family name `{}` is not a valid family name",
            spec.name
        );
        let index = self.list.len();
        self.list.push(Arc::new(family));
        for name in std::iter::once(spec.name).chain(spec.aliases.iter().copied()) {
            let previous = self.by_name.insert(name, index);
            assert!(
                previous.is_none(),
                "model family name `{name}` is registered twice"
            );
        }
        self
    }

    /// The family answering to `name` (its name or an alias), or
    /// [`ModelError::UnknownFamily`] listing the known names.
    pub fn get(&self, name: &str) -> Result<&dyn ModelFamily, ModelError> {
        self.by_name
            .get(name)
            .map(|&i| self.list[i].as_ref())
            .ok_or_else(|| ModelError::UnknownFamily {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    /// The registered names (aliases excluded), in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.list.iter().map(|f| f.spec().name).collect()
    }

    /// Every family's spec, in registration order.
    pub fn specs(&self) -> impl Iterator<Item = &FamilySpec> {
        self.list.iter().map(|f| f.spec())
    }

    /// Every family with its parameter defaults, in registration order.
    pub fn describe(&self) -> Vec<FamilyInfo> {
        self.list
            .iter()
            .map(|f| FamilyInfo {
                spec: *f.spec(),
                defaults: f.validate_params(&Params::new()).ok(),
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}
