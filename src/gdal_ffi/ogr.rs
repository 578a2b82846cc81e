//! Safe wrappers for the OGR functions that the vector module needs and the `gdal` crate 0.19
//! lacks or gets wrong.
//!
//! gdal 0.19's `Feature::field` checks `OGR_F_IsFieldNull` but not whether a field is set, so a
//! property missing from one GeoJSON feature reads as `""` or `0`, and an unset or empty list
//! makes it call `slice::from_raw_parts` on a null pointer. The crate also has no accessor for
//! field subtypes (booleans) and no wrapper for `OGR_G_GetLinearGeometry`.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_int};

use gdal::vector::{Defn, Feature, Geometry};
use gdal_sys::{OGRErr, OGRFieldSubType, OGRwkbByteOrder};

/// Returns whether field `index` of the feature has a value: set and not null.
pub(crate) fn is_set_and_not_null(feature: &Feature<'_>, index: usize) -> bool {
    let Ok(index) = c_int::try_from(index) else {
        return false;
    };
    // SAFETY: the feature handle is valid while `feature` lives, and OGR rejects an index
    // outside the feature's fields by returning FALSE.
    unsafe { gdal_sys::OGR_F_IsFieldSetAndNotNull(feature.c_feature(), index) != 0 }
}

/// Returns whether field `index` of the layer definition has the subtype OFSTBoolean.
pub(crate) fn is_boolean_field(defn: &Defn, index: usize) -> bool {
    let Ok(index) = c_int::try_from(index) else {
        return false;
    };
    // SAFETY: the definition handle is valid while `defn` lives. OGR returns NULL for an
    // index outside the definition, which is checked before the field handle is used.
    unsafe {
        let field = gdal_sys::OGR_FD_GetFieldDefn(defn.c_defn(), index);
        !field.is_null() && gdal_sys::OGR_Fld_GetSubType(field) == OGRFieldSubType::OFSTBoolean
    }
}

/// Reads an IntegerList or Integer64List field. An unset, null or empty list gives an empty
/// vector.
pub(crate) fn integer_list(feature: &Feature<'_>, index: usize, wide: bool) -> Vec<i64> {
    let Ok(index) = c_int::try_from(index) else {
        return Vec::new();
    };
    let mut length: c_int = 0;
    // SAFETY: the feature handle is valid while `feature` lives. OGR returns a pointer to
    // `length` values owned by the feature, or NULL, and the slice is copied before the
    // feature can change.
    unsafe {
        if wide {
            let values = gdal_sys::OGR_F_GetFieldAsInteger64List(
                feature.c_feature(),
                index,
                &raw mut length,
            );
            copy_values(values, length)
        } else {
            let values =
                gdal_sys::OGR_F_GetFieldAsIntegerList(feature.c_feature(), index, &raw mut length);
            copy_values(values, length)
                .into_iter()
                .map(i64::from)
                .collect()
        }
    }
}

/// Reads a RealList field. An unset, null or empty list gives an empty vector.
pub(crate) fn real_list(feature: &Feature<'_>, index: usize) -> Vec<f64> {
    let Ok(index) = c_int::try_from(index) else {
        return Vec::new();
    };
    let mut length: c_int = 0;
    // SAFETY: as in `integer_list`.
    unsafe {
        let values =
            gdal_sys::OGR_F_GetFieldAsDoubleList(feature.c_feature(), index, &raw mut length);
        copy_values(values, length)
    }
}

/// Copies `length` values from an OGR-owned array, or returns an empty vector for NULL.
///
/// # Safety
///
/// `values` must be NULL or point to at least `length` initialised values.
unsafe fn copy_values<T: Copy>(values: *const T, length: c_int) -> Vec<T> {
    let Ok(length) = usize::try_from(length) else {
        return Vec::new();
    };
    if values.is_null() || length == 0 {
        return Vec::new();
    }
    // SAFETY: the caller guarantees `length` values at a non-null `values`.
    unsafe { std::slice::from_raw_parts(values, length) }.to_vec()
}

/// Reads a StringList field. An unset, null or empty list gives an empty vector.
pub(crate) fn string_list(feature: &Feature<'_>, index: usize) -> Vec<String> {
    let Ok(index) = c_int::try_from(index) else {
        return Vec::new();
    };
    let mut strings = Vec::new();
    // SAFETY: the feature handle is valid while `feature` lives. OGR returns NULL or a
    // NULL-terminated array of NUL-terminated strings owned by the feature, which are copied
    // before the feature can change.
    unsafe {
        let list = gdal_sys::OGR_F_GetFieldAsStringList(feature.c_feature(), index);
        if list.is_null() {
            return strings;
        }
        let mut item = list;
        while !(*item).is_null() {
            strings.push(CStr::from_ptr(*item).to_string_lossy().into_owned());
            item = item.add(1);
        }
    }
    strings
}

/// Returns the geometry with its curves approximated by line segments (OGR's default step of
/// 4 degrees of arc), or `None` when OGR fails.
pub(crate) fn linear_geometry(geometry: &Geometry) -> Option<Geometry> {
    // SAFETY: the geometry handle is valid while `geometry` lives. OGR_G_GetLinearGeometry
    // returns a new geometry owned here, which is exported to a buffer of exactly
    // OGR_G_WkbSize bytes and then destroyed on every path.
    let wkb = unsafe {
        let linear =
            gdal_sys::OGR_G_GetLinearGeometry(geometry.c_geometry(), 0.0, std::ptr::null_mut());
        if linear.is_null() {
            return None;
        }
        let size = usize::try_from(gdal_sys::OGR_G_WkbSize(linear)).unwrap_or(0);
        let mut wkb = vec![0_u8; size];
        let result = gdal_sys::OGR_G_ExportToWkb(linear, OGRwkbByteOrder::wkbNDR, wkb.as_mut_ptr());
        gdal_sys::OGR_G_DestroyGeometry(linear);
        if result != OGRErr::OGRERR_NONE || size == 0 {
            return None;
        }
        wkb
    };
    Geometry::from_wkb(&wkb).ok()
}
