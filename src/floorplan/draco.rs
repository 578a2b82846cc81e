//! Draco-compressed primitives (`KHR_draco_mesh_compression`), decoded with the pure-Rust
//! `draco-core` decoder.

use draco_core::{DataType, DecoderBuffer, FaceIndex, Mesh, MeshDecoder};
use gltf::json;

use super::model::Triangle;

/// Decodes the triangles of a primitive from its `KHR_draco_mesh_compression` object.
pub(crate) fn decode(
    root: &json::Root,
    buffers: &[Vec<u8>],
    extension: &serde_json::Value,
) -> Result<Vec<Triangle>, String> {
    let view_index = extension["bufferView"]
        .as_u64()
        .ok_or("the extension has no bufferView")? as usize;
    let position_id = extension["attributes"]["POSITION"]
        .as_u64()
        .and_then(|id| u32::try_from(id).ok())
        .ok_or("the extension maps no POSITION attribute")?;
    let view = root
        .buffer_views
        .get(view_index)
        .ok_or_else(|| format!("bufferView {view_index} does not exist"))?;
    let buffer = buffers
        .get(view.buffer.value())
        .ok_or_else(|| format!("buffer {} does not exist", view.buffer.value()))?;
    let offset = view.byte_offset.map_or(0, |o| o.0) as usize;
    let bytes = offset
        .checked_add(view.byte_length.0 as usize)
        .and_then(|end| buffer.get(offset..end))
        .ok_or_else(|| format!("bufferView {view_index} runs past the end of its buffer"))?;

    let mut mesh = Mesh::new();
    MeshDecoder::new()
        .decode(&mut DecoderBuffer::new(bytes), &mut mesh)
        .map_err(|error| error.to_string())?;
    let attribute = mesh
        .attribute_by_unique_id(position_id)
        .ok_or_else(|| format!("the Draco data has no attribute with id {position_id}"))?;
    if attribute.data_type() != DataType::Float32 || attribute.num_components() != 3 {
        return Err("the Draco POSITION attribute is not 3 x float32".to_owned());
    }
    let stride = usize::try_from(attribute.byte_stride()).map_err(|_| "negative stride")?;
    let position = |point| -> Result<[f64; 3], String> {
        let value = attribute.mapped_index(point).0 as usize;
        let mut raw = [0_u8; 12];
        let start = value.saturating_mul(stride);
        if !attribute.buffer().try_read(start, &mut raw) {
            return Err(format!("position {value} lies outside the decoded data"));
        }
        let component = |k: usize| {
            f64::from(f32::from_le_bytes([
                raw[k * 4],
                raw[k * 4 + 1],
                raw[k * 4 + 2],
                raw[k * 4 + 3],
            ]))
        };
        Ok([component(0), component(1), component(2)])
    };
    (0..mesh.num_faces())
        .map(|face| {
            let corners = mesh.face(FaceIndex(face as u32));
            Ok([
                position(corners[0])?,
                position(corners[1])?,
                position(corners[2])?,
            ])
        })
        .collect()
}
