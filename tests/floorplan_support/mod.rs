//! Models that the floorplan tests generate.

pub mod block;
