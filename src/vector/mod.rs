//! TEMP stub
use crate::tile::{Bbox, TileCoord};
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default)]
pub struct VectorOptions { pub minzoom: u8, pub maxzoom: u8, pub buffer: u32, pub extent: u32, pub simplify: bool }
impl Default for VectorOptions { fn default() -> Self { Self { minzoom: 0, maxzoom: 22, buffer: 64, extent: 4096, simplify: true } } }
#[derive(Debug)]
pub enum FieldType { String, Number, Boolean }
#[derive(Debug)]
pub struct LayerInfo { pub name: String, pub fields: std::collections::BTreeMap<String, FieldType>, pub geometry_type: String, pub feature_count: usize, pub skipped: usize, pub repaired: usize }
#[derive(Debug)]
pub struct VectorSource { o: VectorOptions }
#[derive(Debug, thiserror::Error)]
#[error("stub")]
pub struct VectorError;
impl VectorSource {
    pub fn open(_p: &std::path::Path, _o: VectorOptions) -> Result<VectorSource, VectorError> { Err(VectorError) }
    pub fn layers(&self) -> &[LayerInfo] { &[] }
    pub fn bounds_lonlat(&self) -> Bbox { Bbox { min_x: 0.0, min_y: 0.0, max_x: 0.0, max_y: 0.0 } }
    pub fn options(&self) -> &VectorOptions { &self.o }
    pub fn tile(&self, _t: TileCoord) -> Result<Option<Vec<u8>>, VectorError> { Ok(None) }
}
pub fn gzip(b: &[u8]) -> Vec<u8> { b.to_vec() }
