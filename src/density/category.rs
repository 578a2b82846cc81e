//! Category paths such as `Temporary Detention Facility::Office`, interned as small ids.
//!
//! A path's segments are trimmed, so `parent ::child` and `parent::child` are one category.
//! Each point stores the ids of its categories and of all their ancestors, so a filter on a
//! parent matches its children by a plain membership test.

use std::collections::HashMap;

/// Separator between the levels of a category path.
pub(super) const PATH_SEPARATOR: &str = "::";

/// Index of a category in its [`CategoryTable`].
pub(super) type CategoryId = u16;

/// Every category path of a source, with its parent and the weighted count of its points.
#[derive(Debug, Default, Clone)]
pub struct CategoryTable {
    paths: Vec<String>,
    parents: Vec<Option<CategoryId>>,
    counts: Vec<f64>,
    ids: HashMap<String, CategoryId>,
}

impl CategoryTable {
    /// Normalises a path: each segment trimmed, empty segments dropped, joined by `::`.
    pub fn normalise(path: &str) -> String {
        path.split(PATH_SEPARATOR)
            .map(str::trim)
            .filter(|segment| !segment.is_empty())
            .collect::<Vec<_>>()
            .join(PATH_SEPARATOR)
    }

    /// Interns `path` and its ancestors, and returns the ids of the path and every ancestor,
    /// the path itself first. An empty path gives no ids.
    pub fn intern_with_ancestors(&mut self, path: &str) -> Result<Vec<CategoryId>, String> {
        let path = Self::normalise(path);
        if path.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::new();
        let mut parent = None;
        let mut prefix = String::new();
        for segment in path.split(PATH_SEPARATOR) {
            if !prefix.is_empty() {
                prefix.push_str(PATH_SEPARATOR);
            }
            prefix.push_str(segment);
            let id = if let Some(&id) = self.ids.get(&prefix) {
                id
            } else {
                let id = CategoryId::try_from(self.paths.len()).map_err(|_| {
                    format!(
                        "category {prefix:?} is one too many: a source holds at most {} categories",
                        CategoryId::MAX
                    )
                })?;
                self.paths.push(prefix.clone());
                self.parents.push(parent);
                self.counts.push(0.0);
                self.ids.insert(prefix.clone(), id);
                id
            };
            ids.push(id);
            parent = Some(id);
        }
        ids.reverse();
        Ok(ids)
    }

    /// Returns the id of a path as written in a request, normalised, or `None` when the
    /// source has no such category.
    pub fn find(&self, path: &str) -> Option<CategoryId> {
        self.ids.get(&Self::normalise(path)).copied()
    }

    pub fn path(&self, id: CategoryId) -> &str {
        &self.paths[usize::from(id)]
    }

    pub fn parent(&self, id: CategoryId) -> Option<CategoryId> {
        self.parents[usize::from(id)]
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Adds `weight` to the count of each id.
    pub fn add_counts(&mut self, ids: &[CategoryId], weight: f64) {
        for &id in ids {
            self.counts[usize::from(id)] += weight;
        }
    }

    /// Returns the weighted number of points in a category, its descendants included.
    pub fn count(&self, id: CategoryId) -> f64 {
        self.counts[usize::from(id)]
    }

    /// Iterates over the ids in path order, so parents come right before their children.
    pub fn sorted_ids(&self) -> Vec<CategoryId> {
        let mut ids: Vec<CategoryId> = (0..self.paths.len() as CategoryId).collect();
        ids.sort_by(|a, b| self.path(*a).cmp(self.path(*b)));
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised() {
        let cases = [
            (
                "Ministry of People's Security ::MPS Detention Centre",
                "Ministry of People's Security::MPS Detention Centre",
            ),
            ("Re-education Camp ", "Re-education Camp"),
            ("  a ::  b :: ", "a::b"),
            ("", ""),
        ];
        for (raw, normalised) in cases {
            assert_eq!(CategoryTable::normalise(raw), normalised, "{raw:?}");
        }
    }

    #[test]
    fn ancestors_are_interned_once() {
        let mut table = CategoryTable::default();
        let office = table
            .intern_with_ancestors("Temporary Detention Facility::Office")
            .expect("intern");
        let other = table
            .intern_with_ancestors("Temporary Detention Facility ::Other")
            .expect("intern");
        assert_eq!(office.len(), 2);
        assert_eq!(other.len(), 2);
        assert_eq!(office[1], other[1], "one shared parent");
        assert_eq!(table.len(), 3);
        assert_eq!(table.parent(office[0]), Some(office[1]));
        assert_eq!(table.find("Temporary Detention Facility"), Some(office[1]));
        assert_eq!(
            table.find(" Temporary Detention Facility:: Office"),
            Some(office[0])
        );
        assert_eq!(table.find("Office"), None);
    }

    #[test]
    fn sorted_ids_put_parents_first() {
        let mut table = CategoryTable::default();
        for path in ["b::y", "a", "b::x"] {
            table.intern_with_ancestors(path).expect("intern");
        }
        let paths: Vec<&str> = table
            .sorted_ids()
            .into_iter()
            .map(|id| table.path(id))
            .collect();
        assert_eq!(paths, ["a", "b", "b::x", "b::y"]);
    }
}
