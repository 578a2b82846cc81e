//! Static maps: a whole extent rendered at once from a MapLibre style into a display list
//! (`scene`), with furniture, and rasterised to PNG, JPEG or GeoTIFF.

pub mod scene;
pub mod pdf;
