//! MBTiles and PMTiles archives, served as they are.
