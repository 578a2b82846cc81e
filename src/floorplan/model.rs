//! Reading glTF 2.0 models (`.gltf` with its buffers, or `.glb`) into triangles in the
//! model's frame: node transforms applied, Y up, in model units.
//!
//! The JSON is parsed without the `gltf` crate's validation, because that validation rejects
//! Draco-compressed primitives, so every index and byte range is checked here before use.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use gltf::json;
use gltf::json::validation::Checked;

use super::error::FloorplanError;

/// A triangle in the model's frame, Y up.
pub(crate) type Triangle = [[f64; 3]; 3];

/// Nodes nested deeper than this are rejected, so a cyclic or hostile node tree ends.
const MAX_NODE_DEPTH: usize = 64;
/// Most node visits while walking the scene. Nodes that list the same child many times on
/// several levels multiply their visits, so depth alone does not bound the walk.
const MAX_NODE_VISITS: usize = 100_000;

/// Limits checked before the heavy work of reading buffers and decoding meshes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadLimits {
    pub(crate) max_bytes: u64,
    pub(crate) max_triangles: u64,
}

/// The triangles of one mesh instance: a node with a mesh, all its primitives.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    /// The node's name, else its mesh's name, else `node N`.
    pub(crate) name: String,
    /// `kind` from the node's or the mesh's `extras`, if any.
    pub(crate) kind: Option<String>,
    pub(crate) triangles: Vec<Triangle>,
}

/// A model read from a file.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) parts: Vec<Part>,
    /// The model as one GLB: the file as stored when it is already GLB.
    pub(crate) glb: Vec<u8>,
    /// Whether some primitives were Draco-compressed.
    pub(crate) draco: bool,
}

impl Model {
    pub(crate) fn triangle_count(&self) -> usize {
        self.parts.iter().map(|part| part.triangles.len()).sum()
    }
}

/// A node with a mesh and its transform to the model's frame.
struct Instance {
    node: usize,
    mesh: usize,
    matrix: Matrix,
}

/// A column-major 4 x 4 matrix, as glTF stores them.
type Matrix = [f64; 16];

const IDENTITY: Matrix = [
    1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0,
];

/// Reads the model at `path`, checking its size and triangle count against `limits`.
pub(crate) fn read(path: &Path, limits: ReadLimits) -> Result<Model, FloorplanError> {
    let read_error = |source| FloorplanError::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    check_size(path, size, limits)?;
    let bytes = std::fs::read(path).map_err(read_error)?;
    let invalid = |message: String| FloorplanError::Invalid {
        path: path.to_owned(),
        message,
    };
    let gltf = gltf::Gltf::from_slice_without_validation(&bytes)
        .map_err(|error| invalid(error.to_string()))?;
    let blob = gltf.blob.clone();
    let root = gltf.document.into_json();
    check_extensions(path, &root)?;

    let instances = instances(&root).map_err(invalid)?;
    let count = count_triangles(&root, &instances).map_err(invalid)?;
    if count > limits.max_triangles {
        return Err(FloorplanError::TooManyTriangles {
            path: path.to_owned(),
            count,
            max: limits.max_triangles,
        });
    }

    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let buffers = load_buffers(path, base, &root, blob, size, limits)?;
    let mut parts = Vec::new();
    let mut draco = false;
    // Triangles of each mesh in its own frame, read once however many nodes use the mesh.
    let mut meshes: HashMap<usize, Vec<Triangle>> = HashMap::new();
    let mut total = 0_u64;
    for instance in &instances {
        let node = &root.nodes[instance.node];
        let mesh = &root.meshes[instance.mesh];
        let local = match meshes.entry(instance.mesh) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let (triangles, compressed) = read_mesh(path, &root, &buffers, instance.mesh)?;
                draco |= compressed;
                entry.insert(triangles)
            }
        };
        // The count from the JSON was checked before reading; Draco data may hold more.
        total = total.saturating_add(local.len() as u64);
        if total > limits.max_triangles {
            return Err(FloorplanError::TooManyTriangles {
                path: path.to_owned(),
                count: total,
                max: limits.max_triangles,
            });
        }
        let triangles: Vec<Triangle> = local
            .iter()
            .map(|triangle| triangle.map(|p| transform(&instance.matrix, p)))
            .collect();
        let name = node
            .name
            .clone()
            .or_else(|| mesh.name.clone())
            .unwrap_or_else(|| format!("node {}", instance.node));
        let kind =
            extras_kind(node.extras.as_deref()).or_else(|| extras_kind(mesh.extras.as_deref()));
        parts.push(Part {
            name,
            kind,
            triangles,
        });
    }

    let glb = if bytes.starts_with(b"glTF") {
        bytes
    } else {
        super::glb::from_gltf(&bytes, &buffers, base, limits.max_bytes).map_err(invalid)?
    };
    Ok(Model { parts, glb, draco })
}

/// Reads the triangles of every primitive of a mesh in the mesh's frame, and whether any was
/// Draco-compressed.
fn read_mesh(
    path: &Path,
    root: &json::Root,
    buffers: &[Vec<u8>],
    index: usize,
) -> Result<(Vec<Triangle>, bool), FloorplanError> {
    let mesh = &root.meshes[index];
    let mesh_name = mesh.name.clone().unwrap_or_else(|| format!("mesh {index}"));
    let mut triangles = Vec::new();
    let mut draco = false;
    for (number, primitive) in mesh.primitives.iter().enumerate() {
        if let Some(compressed) = draco_extension(primitive) {
            draco = true;
            let decoded = super::draco::decode(root, buffers, compressed).map_err(|message| {
                FloorplanError::Draco {
                    path: path.to_owned(),
                    mesh: mesh_name.clone(),
                    message,
                }
            })?;
            triangles.extend(decoded);
        } else {
            let read = super::accessor::primitive_triangles(root, buffers, primitive).map_err(
                |message| FloorplanError::Invalid {
                    path: path.to_owned(),
                    message: format!("mesh {mesh_name:?}, primitive {number}: {message}"),
                },
            )?;
            triangles.extend(read);
        }
    }
    Ok((triangles, draco))
}

fn check_size(path: &Path, size: u64, limits: ReadLimits) -> Result<(), FloorplanError> {
    if size > limits.max_bytes {
        return Err(FloorplanError::TooLarge {
            path: path.to_owned(),
            size,
            max_mb: limits.max_bytes >> 20,
        });
    }
    Ok(())
}

/// Rejects required extensions that change how geometry is stored, except Draco, which is
/// decoded. Extensions of materials, textures and lights do not affect floorplans.
fn check_extensions(path: &Path, root: &json::Root) -> Result<(), FloorplanError> {
    for extension in &root.extensions_required {
        let harmless = extension == "KHR_draco_mesh_compression"
            || extension.starts_with("KHR_materials_")
            || extension.starts_with("KHR_texture_")
            || extension.starts_with("EXT_texture_")
            || extension == "KHR_lights_punctual";
        if !harmless {
            return Err(FloorplanError::UnsupportedExtension {
                path: path.to_owned(),
                extension: extension.clone(),
            });
        }
    }
    Ok(())
}

/// Lists the nodes with a mesh in the default scene (or the first, or every root node when
/// the file has no scene), with their transforms.
fn instances(root: &json::Root) -> Result<Vec<Instance>, String> {
    let scene = root
        .scene
        .map(|scene| scene.value())
        .or((!root.scenes.is_empty()).then_some(0));
    let roots: Vec<usize> = if let Some(scene) = scene {
        let scene = root
            .scenes
            .get(scene)
            .ok_or_else(|| format!("scene {scene} does not exist"))?;
        scene.nodes.iter().map(json::Index::value).collect()
    } else {
        let children: HashSet<usize> = root
            .nodes
            .iter()
            .flat_map(|node| node.children.iter().flatten().map(json::Index::value))
            .collect();
        (0..root.nodes.len())
            .filter(|n| !children.contains(n))
            .collect()
    };
    let mut found = Vec::new();
    let mut pending: Vec<(usize, Matrix, usize)> =
        roots.into_iter().map(|n| (n, IDENTITY, 0)).collect();
    let mut visits = 0;
    while let Some((index, parent, depth)) = pending.pop() {
        visits += 1;
        if visits > MAX_NODE_VISITS {
            return Err(format!(
                "the scene visits more than {MAX_NODE_VISITS} nodes: flatten repeated instances"
            ));
        }
        if depth > MAX_NODE_DEPTH {
            return Err(format!(
                "nodes are nested more than {MAX_NODE_DEPTH} deep (a cycle?)"
            ));
        }
        let node = root
            .nodes
            .get(index)
            .ok_or_else(|| format!("node {index} does not exist"))?;
        let matrix = multiply(&parent, &node_matrix(node));
        if let Some(mesh) = node.mesh {
            let mesh = mesh.value();
            if mesh >= root.meshes.len() {
                return Err(format!(
                    "node {index} names mesh {mesh}, which does not exist"
                ));
            }
            found.push(Instance {
                node: index,
                mesh,
                matrix,
            });
        }
        for child in node.children.iter().flatten() {
            pending.push((child.value(), matrix, depth + 1));
        }
    }
    found.sort_by_key(|instance| instance.node);
    Ok(found)
}

fn node_matrix(node: &json::Node) -> Matrix {
    if let Some(matrix) = node.matrix {
        return matrix.map(f64::from);
    }
    let [tx, ty, tz] = node.translation.unwrap_or([0.0; 3]).map(f64::from);
    let [qx, qy, qz, qw] = node
        .rotation
        .map_or([0.0, 0.0, 0.0, 1.0], |q| q.0.map(f64::from));
    let [sx, sy, sz] = node.scale.unwrap_or([1.0; 3]).map(f64::from);
    // T * R * S, column-major.
    let rotation = [
        1.0 - 2.0 * (qy * qy + qz * qz),
        2.0 * (qx * qy + qz * qw),
        2.0 * (qx * qz - qy * qw),
        2.0 * (qx * qy - qz * qw),
        1.0 - 2.0 * (qx * qx + qz * qz),
        2.0 * (qy * qz + qx * qw),
        2.0 * (qx * qz + qy * qw),
        2.0 * (qy * qz - qx * qw),
        1.0 - 2.0 * (qx * qx + qy * qy),
    ];
    [
        rotation[0] * sx,
        rotation[1] * sx,
        rotation[2] * sx,
        0.0,
        rotation[3] * sy,
        rotation[4] * sy,
        rotation[5] * sy,
        0.0,
        rotation[6] * sz,
        rotation[7] * sz,
        rotation[8] * sz,
        0.0,
        tx,
        ty,
        tz,
        1.0,
    ]
}

fn multiply(a: &Matrix, b: &Matrix) -> Matrix {
    let mut out = [0.0; 16];
    for column in 0..4 {
        for row in 0..4 {
            out[column * 4 + row] = (0..4).map(|k| a[k * 4 + row] * b[column * 4 + k]).sum();
        }
    }
    out
}

fn transform(m: &Matrix, p: [f64; 3]) -> [f64; 3] {
    [
        m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12],
        m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13],
        m[2] * p[0] + m[6] * p[1] + m[10] * p[2] + m[14],
    ]
}

/// Counts the triangles that the instances draw, from the accessor counts in the JSON alone.
fn count_triangles(root: &json::Root, instances: &[Instance]) -> Result<u64, String> {
    let mut total = 0_u64;
    for instance in instances {
        for primitive in &root.meshes[instance.mesh].primitives {
            let accessor = primitive
                .indices
                .or_else(|| position_accessor(primitive))
                .map(|index| index.value());
            let Some(accessor) = accessor else { continue };
            let count = root
                .accessors
                .get(accessor)
                .ok_or_else(|| format!("accessor {accessor} does not exist"))?
                .count
                .0;
            total = total.saturating_add(count / 3);
        }
    }
    Ok(total)
}

pub(super) fn position_accessor(
    primitive: &json::mesh::Primitive,
) -> Option<json::Index<json::Accessor>> {
    primitive
        .attributes
        .get(&Checked::Valid(json::mesh::Semantic::Positions))
        .copied()
}

fn draco_extension(primitive: &json::mesh::Primitive) -> Option<&serde_json::Value> {
    primitive
        .extensions
        .as_ref()?
        .others
        .get("KHR_draco_mesh_compression")
}

fn extras_kind(extras: Option<&serde_json::value::RawValue>) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(extras?.get()).ok()?;
    value.get("kind")?.as_str().map(str::to_owned)
}

/// Reads every buffer: the GLB's binary chunk, data URIs, and files beside the model. A file
/// URI must be a relative path inside the model's folder.
fn load_buffers(
    path: &Path,
    base: &Path,
    root: &json::Root,
    blob: Option<Vec<u8>>,
    model_size: u64,
    limits: ReadLimits,
) -> Result<Vec<Vec<u8>>, FloorplanError> {
    let buffer_error = |index, message: String| FloorplanError::Buffer {
        path: path.to_owned(),
        index,
        message,
    };
    // External files count towards the size limit with the model file itself.
    let mut total = model_size;
    for (index, buffer) in root.buffers.iter().enumerate() {
        let Some(uri) = buffer
            .uri
            .as_deref()
            .filter(|uri| !uri.starts_with("data:"))
        else {
            continue;
        };
        let file = buffer_file(base, uri).map_err(|message| buffer_error(index, message))?;
        let size = std::fs::metadata(&file)
            .map_err(|error| {
                buffer_error(index, format!("cannot read {}: {error}", file.display()))
            })?
            .len();
        total = total.saturating_add(size);
    }
    check_size(path, total, limits)?;
    let document = gltf::Document::from_json_without_validation(root.clone());
    let data = gltf::import_buffers(&document, Some(base), blob).map_err(|error| {
        let hint = "check that every buffer file exists and is as long as its byteLength";
        match error {
            gltf::Error::BufferLength {
                buffer,
                expected,
                actual,
            } => buffer_error(
                buffer,
                format!("expected {expected} bytes but found {actual}; {hint}"),
            ),
            other => FloorplanError::Buffers {
                path: path.to_owned(),
                message: format!("{other}; {hint}"),
            },
        }
    })?;
    Ok(data.into_iter().map(|data| data.0).collect())
}

/// Resolves a buffer or image URI to a file in `base`. Absolute paths, `..`, URIs with a
/// scheme and symbolic links to files outside `base` are rejected, so a model cannot read
/// other files of the server.
pub(crate) fn buffer_file(base: &Path, uri: &str) -> Result<PathBuf, String> {
    let decoded = percent_decode(uri);
    let relative = Path::new(&decoded);
    let escapes = relative.is_absolute()
        || decoded.contains(':')
        || relative
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)));
    if escapes || decoded.is_empty() {
        return Err(format!(
            "URI {uri:?} is not a relative path inside the model's folder"
        ));
    }
    let file = base.join(relative);
    // A file that does not exist yet is reported when it is read.
    if let (Ok(real), Ok(real_base)) = (file.canonicalize(), base.canonicalize())
        && !real.starts_with(&real_base)
    {
        return Err(format!(
            "URI {uri:?} leads through a symbolic link to a file outside the model's folder: copy the file into the folder"
        ));
    }
    Ok(file)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(value) = escaped {
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_matrix_composes_translation_rotation_scale() {
        let node = json::Node {
            translation: Some([1.0, 2.0, 3.0]),
            // 90 degrees about Y: +X goes to -Z.
            rotation: Some(json::scene::UnitQuaternion([
                0.0,
                std::f32::consts::FRAC_1_SQRT_2,
                0.0,
                std::f32::consts::FRAC_1_SQRT_2,
            ])),
            scale: Some([2.0, 2.0, 2.0]),
            ..json::Node::default()
        };
        let p = transform(&node_matrix(&node), [1.0, 0.0, 0.0]);
        let expected = [1.0, 2.0, 1.0];
        for (got, want) in p.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{p:?} against {expected:?}");
        }
    }

    #[test]
    fn buffer_uris_stay_in_the_model_folder() {
        let base = Path::new("/data/models");
        assert_eq!(
            buffer_file(base, "block%20a.bin").expect("relative"),
            base.join("block a.bin")
        );
        assert_eq!(
            buffer_file(base, "bin/block.bin").expect("relative"),
            base.join("bin/block.bin")
        );
        for bad in [
            "../secret.bin",
            "/etc/passwd",
            "file:///etc/passwd",
            "a/../../b",
            "%2e%2e/x",
            "",
        ] {
            assert!(buffer_file(base, bad).is_err(), "{bad}");
        }
    }
}
