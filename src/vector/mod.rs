//! Vector sources: OGR datasets in an R-tree, encoded as Mapbox Vector Tiles.
