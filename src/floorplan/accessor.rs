//! Triangles of plain (not Draco-compressed) primitives, read from their accessors with
//! every index and byte range checked.

use gltf::json;
use gltf::json::validation::Checked;

use super::model::{Triangle, position_accessor};

/// Reads a primitive's triangles in its mesh's frame.
pub(super) fn primitive_triangles(
    root: &json::Root,
    buffers: &[Vec<u8>],
    primitive: &json::mesh::Primitive,
) -> Result<Vec<Triangle>, String> {
    use json::mesh::Mode;
    let mode = match primitive.mode {
        Checked::Valid(mode) => mode,
        Checked::Invalid => return Err("invalid primitive mode".to_owned()),
    };
    if !matches!(
        mode,
        Mode::Triangles | Mode::TriangleStrip | Mode::TriangleFan
    ) {
        // Points and lines have no surface to cut.
        return Ok(Vec::new());
    }
    let positions = position_accessor(primitive).ok_or("no POSITION attribute")?;
    let positions = read_positions(root, buffers, positions.value())?;
    let indices = match primitive.indices {
        Some(indices) => read_indices(root, buffers, indices.value())?,
        None => (0..positions.len() as u32).collect(),
    };
    let corner = |i: u32| {
        positions
            .get(i as usize)
            .copied()
            .ok_or_else(|| format!("index {i} is beyond the {} positions", positions.len()))
    };
    let mut triangles = Vec::with_capacity(indices.len() / 3);
    let mut push = |a: u32, b: u32, c: u32| -> Result<(), String> {
        triangles.push([corner(a)?, corner(b)?, corner(c)?]);
        Ok(())
    };
    match mode {
        Mode::TriangleStrip => {
            for (i, w) in indices.windows(3).enumerate() {
                if i % 2 == 0 {
                    push(w[0], w[1], w[2])?;
                } else {
                    push(w[1], w[0], w[2])?;
                }
            }
        }
        Mode::TriangleFan => {
            for w in indices.get(1..).unwrap_or_default().windows(2) {
                push(indices[0], w[0], w[1])?;
            }
        }
        _ => {
            for chunk in indices.chunks_exact(3) {
                push(chunk[0], chunk[1], chunk[2])?;
            }
        }
    }
    Ok(triangles)
}

fn read_positions(
    root: &json::Root,
    buffers: &[Vec<u8>],
    index: usize,
) -> Result<Vec<[f64; 3]>, String> {
    use json::accessor::{ComponentType, Type};
    let accessor = root
        .accessors
        .get(index)
        .ok_or_else(|| format!("accessor {index} does not exist"))?;
    if accessor.type_ != Checked::Valid(Type::Vec3)
        || !matches!(
            accessor.component_type,
            Checked::Valid(json::accessor::GenericComponentType(ComponentType::F32))
        )
    {
        return Err(format!(
            "POSITION accessor {index} is not VEC3 of FLOAT (quantized positions need KHR_mesh_quantization, which is not read)"
        ));
    }
    let elements = elements(root, buffers, accessor, index, 12)?;
    Ok(elements
        .into_iter()
        .map(|bytes| {
            let value = |k: usize| {
                let word: [u8; 4] = bytes[k * 4..k * 4 + 4].try_into().expect("12-byte element");
                f64::from(f32::from_le_bytes(word))
            };
            [value(0), value(1), value(2)]
        })
        .collect())
}

fn read_indices(root: &json::Root, buffers: &[Vec<u8>], index: usize) -> Result<Vec<u32>, String> {
    use json::accessor::{ComponentType, Type};
    let accessor = root
        .accessors
        .get(index)
        .ok_or_else(|| format!("accessor {index} does not exist"))?;
    if accessor.type_ != Checked::Valid(Type::Scalar) {
        return Err(format!("index accessor {index} is not SCALAR"));
    }
    let size = match accessor.component_type {
        Checked::Valid(json::accessor::GenericComponentType(ComponentType::U8)) => 1,
        Checked::Valid(json::accessor::GenericComponentType(ComponentType::U16)) => 2,
        Checked::Valid(json::accessor::GenericComponentType(ComponentType::U32)) => 4,
        _ => {
            return Err(format!(
                "index accessor {index} is not UNSIGNED_BYTE, UNSIGNED_SHORT or UNSIGNED_INT"
            ));
        }
    };
    let elements = elements(root, buffers, accessor, index, size)?;
    Ok(elements
        .into_iter()
        .map(|bytes| match size {
            1 => u32::from(bytes[0]),
            2 => u32::from(u16::from_le_bytes([bytes[0], bytes[1]])),
            _ => u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
        })
        .collect())
}

/// Returns the `count` elements of an accessor, each `size` bytes, after checking that they
/// all lie inside the buffer view and the buffer. Sparse accessors are rejected.
fn elements<'a>(
    root: &json::Root,
    buffers: &'a [Vec<u8>],
    accessor: &json::Accessor,
    index: usize,
    size: usize,
) -> Result<Vec<&'a [u8]>, String> {
    if accessor.sparse.is_some() {
        return Err(format!(
            "accessor {index} is sparse, which is not read: write the model without sparse accessors"
        ));
    }

    let count = usize::try_from(accessor.count.0).map_err(|_| "count too large".to_owned())?;
    let Some(view_index) = accessor.buffer_view else {
        return Err(format!("accessor {index} has no bufferView"));
    };
    let view = root
        .buffer_views
        .get(view_index.value())
        .ok_or_else(|| format!("bufferView {} does not exist", view_index.value()))?;
    let buffer = buffers
        .get(view.buffer.value())
        .ok_or_else(|| format!("buffer {} does not exist", view.buffer.value()))?;

    let view_offset = view.byte_offset.map_or(0, |o| o.0) as usize;
    let view_length = view.byte_length.0 as usize;
    let view_end = view_offset
        .checked_add(view_length)
        .filter(|&end| end <= buffer.len())
        .ok_or_else(|| {
            format!(
                "bufferView {} (bytes {view_offset} + {view_length}) runs past the end of buffer {} ({} bytes)",
                view_index.value(),
                view.buffer.value(),
                buffer.len()
            )
        })?;
    let view_bytes = &buffer[view_offset..view_end];

    let stride = view.byte_stride.map_or(size, |s| s.0);
    if stride < size {
        return Err(format!(
            "bufferView {} has a byteStride below the element size",
            view_index.value()
        ));
    }

    let start = accessor.byte_offset.map_or(0, |o| o.0) as usize;
    let needed = if count == 0 {
        0
    } else {
        (count - 1)
            .checked_mul(stride)
            .and_then(|n| n.checked_add(start + size))
            .ok_or("accessor size overflows")?
    };
    if needed > view_bytes.len() {
        return Err(format!(
            "accessor {index} needs {needed} bytes but its bufferView has {}",
            view_bytes.len()
        ));
    }
    Ok((0..count)
        .map(|i| &view_bytes[start + i * stride..start + i * stride + size])
        .collect())
}
