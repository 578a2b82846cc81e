//! Errors of reading, georeferencing and slicing a model.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum FloorplanError {
    #[error("cannot read model {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "model {path} is {size} bytes, more than max_file_mb = {max_mb} MiB: raise max_file_mb or simplify the model"
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        max_mb: u64,
    },
    #[error(
        "model {path} has {count} triangles, more than max_triangles = {max}: raise max_triangles or decimate the model (for example `npx gltf-transform simplify in.glb out.glb`)"
    )]
    TooManyTriangles { path: PathBuf, count: u64, max: u64 },
    #[error("invalid glTF in {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "model {path} requires the glTF extension {extension}, which Tessera cannot read: export the model without it (glTF tools such as glTF-Transform can undo mesh quantization and meshopt compression) and serve that file"
    )]
    UnsupportedExtension { path: PathBuf, extension: String },
    #[error(
        "cannot decode the KHR_draco_mesh_compression data of mesh {mesh:?} in {path}: {message}. Export the model again without Draco compression and serve that file"
    )]
    Draco {
        path: PathBuf,
        mesh: String,
        message: String,
    },
    #[error("invalid buffer {index} of {path}: {message}")]
    Buffer {
        path: PathBuf,
        index: usize,
        message: String,
    },
    #[error("cannot read the buffers of {path}: {message}")]
    Buffers { path: PathBuf, message: String },
    #[error(
        "model {path} has no georeference: set `anchor = [longitude, latitude]` (and `rotation`, `scale`, `floors` if needed) in its [sources.ID] table or in a side file {side}"
    )]
    MissingGeoreference { path: PathBuf, side: PathBuf },
    #[error("invalid option {option} = {value} for model {path}: {reason}")]
    InvalidOption {
        path: PathBuf,
        option: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid room side file {path}: {message}")]
    RoomFile { path: PathBuf, message: String },
    #[error(
        "model {path} has no floor to slice: no horizontal surface of at least {min_area} m² was found; set `floors = [heights in metres]`"
    )]
    NoFloors { path: PathBuf, min_area: f64 },
    #[error(
        "model {path} gives no walls, rooms or openings at the cut heights: check `floors`, `cut_height` and `scale`"
    )]
    Empty { path: PathBuf },
    #[error(transparent)]
    Vector(#[from] crate::vector::VectorError),
}
