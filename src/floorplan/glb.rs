//! Packing a `.gltf` with external or embedded buffers into one GLB for `/models/{id}.glb`.

use std::path::Path;

use serde_json::{Value, json};

/// Builds a GLB from the JSON text of a `.gltf` and its loaded buffers. All buffers become
/// the GLB's binary chunk. Images stored as files beside the model are embedded too, and data
/// URIs of images stay as they are.
pub(crate) fn from_gltf(
    json_text: &[u8],
    buffers: &[Vec<u8>],
    base: &Path,
    max_bytes: u64,
) -> Result<Vec<u8>, String> {
    let mut document: Value =
        serde_json::from_slice(json_text).map_err(|error| format!("invalid JSON: {error}"))?;
    let mut binary = merge_buffers(&mut document, buffers);
    embed_images(&mut document, &mut binary, base, max_bytes)?;
    pad(&mut binary, 0);

    let object = document
        .as_object_mut()
        .ok_or("the glTF JSON is not an object")?;
    if binary.is_empty() {
        // glTF requires at least one entry in `buffers` when the key is present.
        object.remove("buffers");
    } else {
        object.insert(
            "buffers".to_owned(),
            json!([{ "byteLength": binary.len() }]),
        );
    }
    Ok(write_glb(&document, &binary))
}

/// Concatenates the buffers, each at a 4-byte boundary, and points every buffer view into
/// the result as buffer 0.
fn merge_buffers(document: &mut Value, buffers: &[Vec<u8>]) -> Vec<u8> {
    let mut binary = Vec::new();
    let mut offsets = Vec::with_capacity(buffers.len());
    for buffer in buffers {
        pad(&mut binary, 0);
        offsets.push(binary.len() as u64);
        binary.extend_from_slice(buffer);
    }
    if let Some(views) = document
        .get_mut("bufferViews")
        .and_then(Value::as_array_mut)
    {
        for view in views {
            let buffer = view["buffer"].as_u64().unwrap_or(0) as usize;
            let offset = view["byteOffset"].as_u64().unwrap_or(0);
            let shift = offsets.get(buffer).copied().unwrap_or(0);
            view["buffer"] = json!(0);
            view["byteOffset"] = json!(offset + shift);
        }
    }
    binary
}

/// Moves images stored as files beside the model into `binary`, each behind a new buffer
/// view.
fn embed_images(
    document: &mut Value,
    binary: &mut Vec<u8>,
    base: &Path,
    max_bytes: u64,
) -> Result<(), String> {
    let views_before = document
        .get("bufferViews")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut added_views = Vec::new();
    let images = document.get_mut("images").and_then(Value::as_array_mut);
    for image in images.into_iter().flatten() {
        let Some(uri) = image["uri"].as_str() else {
            continue;
        };
        if uri.starts_with("data:") {
            continue;
        }
        let file = super::model::buffer_file(base, uri)?;
        let read_error = |error| format!("cannot read image {}: {error}", file.display());
        let size = std::fs::metadata(&file).map_err(read_error)?.len();
        if binary.len() as u64 + size > max_bytes {
            return Err(format!(
                "the model with its images is more than {max_bytes} bytes"
            ));
        }
        let bytes = std::fs::read(&file).map_err(read_error)?;
        let mime = if bytes.starts_with(b"\x89PNG") {
            "image/png"
        } else {
            "image/jpeg"
        };

        pad(binary, 0);
        added_views.push(json!({
            "buffer": 0,
            "byteOffset": binary.len(),
            "byteLength": bytes.len(),
        }));
        binary.extend_from_slice(&bytes);
        let object = image.as_object_mut().ok_or("an image is not an object")?;
        object.remove("uri");
        object.insert("mimeType".to_owned(), json!(mime));
        object.insert(
            "bufferView".to_owned(),
            json!(views_before + added_views.len() - 1),
        );
    }
    if !added_views.is_empty() {
        match document
            .get_mut("bufferViews")
            .and_then(Value::as_array_mut)
        {
            Some(existing) => existing.extend(added_views),
            None => document["bufferViews"] = Value::Array(added_views),
        }
    }
    Ok(())
}

fn pad(bytes: &mut Vec<u8>, filler: u8) {
    while !bytes.len().is_multiple_of(4) {
        bytes.push(filler);
    }
}

/// Writes a GLB container: a 12-byte header, the JSON chunk padded with spaces and the binary
/// chunk padded with zeros, as glTF 2.0 section 4.4 lays them out.
pub(crate) fn write_glb(document: &Value, binary: &[u8]) -> Vec<u8> {
    let mut json_chunk = document.to_string().into_bytes();
    pad(&mut json_chunk, b' ');
    let mut binary_chunk = binary.to_vec();
    pad(&mut binary_chunk, 0);
    let mut length = 12 + 8 + json_chunk.len();
    if !binary_chunk.is_empty() {
        length += 8 + binary_chunk.len();
    }
    let mut out = Vec::with_capacity(length);
    out.extend_from_slice(b"glTF");
    out.extend_from_slice(&2_u32.to_le_bytes());
    out.extend_from_slice(&(length as u32).to_le_bytes());
    out.extend_from_slice(&(json_chunk.len() as u32).to_le_bytes());
    out.extend_from_slice(b"JSON");
    out.extend_from_slice(&json_chunk);
    if !binary_chunk.is_empty() {
        out.extend_from_slice(&(binary_chunk.len() as u32).to_le_bytes());
        out.extend_from_slice(b"BIN\0");
        out.extend_from_slice(&binary_chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gltf_with_image(uri: &str) -> Vec<u8> {
        json!({
            "asset": { "version": "2.0" },
            "buffers": [{ "byteLength": 4, "uri": "a.bin" }, { "byteLength": 4, "uri": "b.bin" }],
            "bufferViews": [
                { "buffer": 0, "byteOffset": 0, "byteLength": 4 },
                { "buffer": 1, "byteOffset": 0, "byteLength": 4 },
            ],
            "images": [{ "uri": uri }],
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn buffers_and_image_files_are_embedded() {
        let folder = tempfile::tempdir().expect("tempdir");
        let png = b"\x89PNG\r\n\x1a\nrest of the image";
        std::fs::write(folder.path().join("texture.png"), png).expect("write image");
        let buffers = vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]];
        let glb = from_gltf(
            &gltf_with_image("texture.png"),
            &buffers,
            folder.path(),
            1 << 20,
        )
        .expect("packs");
        let parsed = gltf::Gltf::from_slice(&glb).expect("a valid GLB");
        let binary = parsed.blob.clone().expect("binary chunk");
        let views: Vec<_> = parsed.document.views().collect();
        assert_eq!(views.len(), 3);
        assert_eq!(views[1].offset(), 4, "the second buffer follows the first");
        assert_eq!(&binary[4..8], &[5, 6, 7, 8]);
        let image = parsed.document.images().next().expect("image");
        let gltf::image::Source::View { view, mime_type } = image.source() else {
            panic!("the image is not embedded");
        };
        assert_eq!(mime_type, "image/png");
        assert_eq!(&binary[view.offset()..view.offset() + view.length()], png);
    }

    #[test]
    fn image_outside_the_folder_is_rejected() {
        let folder = tempfile::tempdir().expect("tempdir");
        let buffers = vec![vec![0; 4], vec![0; 4]];
        let error = from_gltf(
            &gltf_with_image("../x.png"),
            &buffers,
            folder.path(),
            1 << 20,
        )
        .expect_err("escapes");
        assert!(error.contains("not a relative path"), "{error}");
    }
}
