//! The room side file `STEM.rooms.toml` (or `STEM.rooms.json`) beside a model: kinds and
//! names of parts by node or mesh name, and names of rooms by a point inside them.
//!
//! ```toml
//! [parts."Cube.003"]
//! kind = "room"        # wall, room, opening or ignore
//! name = "Cell 3"
//!
//! [[rooms]]
//! level = 0            # index of the level, from 0 at the lowest
//! point = [2.0, -3.5]  # model units: glTF X, and -Z (north)
//! name = "Cell 1"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use geo::{Contains, Point, Polygon};
use serde::Deserialize;

use super::error::FloorplanError;
use super::model::Part;
use super::plan::Kind;

/// Settings for one part, by its node or mesh name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PartNames {
    pub kind: Option<Kind>,
    pub name: Option<String>,
}

/// A room name placed by a point inside the room.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoomPoint {
    pub level: usize,
    pub point: [f64; 2],
    pub name: String,
}

/// The contents of a room side file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoomNames {
    #[serde(default)]
    pub parts: BTreeMap<String, PartNames>,
    #[serde(default)]
    pub rooms: Vec<RoomPoint>,
}

impl RoomNames {
    /// Reads the side file beside `model`, or returns empty names when there is none. Part
    /// names that none of `parts` has are logged as warnings.
    pub(crate) fn load(model: &Path, parts: &[Part]) -> Result<Self, FloorplanError> {
        let (names, side_file) = Self::read(model)?;
        if let Some(side_file) = side_file {
            tracing::info!(model = %model.display(), side_file = %side_file.display(), "room names read");
            for name in names.parts.keys() {
                if !parts.iter().any(|part| part.name == *name) {
                    tracing::warn!(
                        model = %model.display(),
                        side_file = %side_file.display(),
                        part = %name,
                        "the side file names a part that the model does not have: check the node or mesh name"
                    );
                }
            }
        }
        Ok(names)
    }

    fn read(model: &Path) -> Result<(Self, Option<PathBuf>), FloorplanError> {
        let stem = model
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        for extension in ["rooms.toml", "rooms.json"] {
            let path = model.with_file_name(format!("{stem}.{extension}"));
            if !path.is_file() {
                continue;
            }
            let invalid = |message: String| FloorplanError::RoomFile {
                path: path.clone(),
                message,
            };
            let text = std::fs::read_to_string(&path).map_err(|e| invalid(e.to_string()))?;
            let names = if extension.ends_with("toml") {
                toml::from_str(&text).map_err(|e| invalid(e.to_string()))?
            } else {
                serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?
            };
            return Ok((names, Some(path)));
        }
        Ok((Self::default(), None))
    }

    /// Returns the name of the room point on `level` that lies in `room`, if any.
    pub(crate) fn name_for(&self, level: usize, room: &Polygon<f64>) -> Option<String> {
        self.rooms
            .iter()
            .find(|r| r.level == level && room.contains(&Point::new(r.point[0], r.point[1])))
            .map(|r| r.name.clone())
    }
}
