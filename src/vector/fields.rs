//! OGR fields read into typed MVT attribute values.

use gdal::vector::{Defn, Feature, FieldValue, OGRFieldType};

use super::FieldType;
use crate::gdal_ffi::ogr as ogr_ffi;

/// An attribute value in the types that MVT stores.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PropertyValue {
    String(String),
    Int(i64),
    Double(f64),
    Bool(bool),
}

/// The conversion that the values of a field go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    Integer,
    /// OFTInteger with the subtype OFSTBoolean.
    Boolean,
    Real,
    String,
    /// Date, time or date-time, stored as ISO 8601 text.
    Temporal,
    /// OGR lists, stored as their JSON text.
    IntegerList,
    Integer64List,
    RealList,
    StringList,
}

/// One OGR field of a layer and the attribute it becomes.
#[derive(Debug, Clone)]
pub(super) struct FieldReader {
    index: usize,
    name: String,
    kind: FieldKind,
}

impl FieldReader {
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Returns the type that TileJSON `vector_layers` lists for this field.
    pub(super) fn field_type(&self) -> FieldType {
        match self.kind {
            FieldKind::Integer | FieldKind::Real => FieldType::Number,
            FieldKind::Boolean => FieldType::Boolean,
            FieldKind::String
            | FieldKind::Temporal
            | FieldKind::IntegerList
            | FieldKind::Integer64List
            | FieldKind::RealList
            | FieldKind::StringList => FieldType::String,
        }
    }

    /// Reads the field of one feature. Nulls, unset fields and non-finite reals give `None`.
    pub(super) fn read(&self, feature: &Feature<'_>) -> Option<PropertyValue> {
        if !ogr_ffi::is_set_and_not_null(feature, self.index) {
            return None;
        }
        let index = self.index;
        let value = match self.kind {
            // OGR's own text keeps fractional seconds and an unknown time zone, which the
            // chrono value of `Feature::field` loses.
            FieldKind::Temporal => PropertyValue::String(ogr_datetime_to_iso(
                &feature.field_as_string(index).ok().flatten()?,
            )),
            FieldKind::Boolean => {
                PropertyValue::Bool(feature.field_as_integer(index).ok().flatten()? != 0)
            }
            FieldKind::IntegerList => json_text(&ogr_ffi::integer_list(feature, index, false)),
            FieldKind::Integer64List => json_text(&ogr_ffi::integer_list(feature, index, true)),
            // serde_json writes NaN and infinities as null.
            FieldKind::RealList => json_text(&ogr_ffi::real_list(feature, index)),
            FieldKind::StringList => json_text(&ogr_ffi::string_list(feature, index)),
            FieldKind::Integer | FieldKind::Real | FieldKind::String => {
                match feature.field(index) {
                    Ok(value) => convert_field_value(value?)?,
                    // gdal 0.19 reports types that it does not convert (such as
                    // OFTWideString) as errors, but OGR formats every type as text.
                    Err(_) => PropertyValue::String(feature.field_as_string(index).ok().flatten()?),
                }
            }
        };
        Some(value)
    }
}

/// Lists the fields of a layer that become attributes. Binary fields are left out, because
/// MVT has no type for them.
pub(super) fn field_readers(defn: &Defn) -> Vec<FieldReader> {
    defn.fields()
        .enumerate()
        .filter_map(|(index, field)| {
            let kind = match field.field_type() {
                OGRFieldType::OFTInteger if ogr_ffi::is_boolean_field(defn, index) => {
                    FieldKind::Boolean
                }
                OGRFieldType::OFTInteger | OGRFieldType::OFTInteger64 => FieldKind::Integer,
                OGRFieldType::OFTReal => FieldKind::Real,
                OGRFieldType::OFTDate | OGRFieldType::OFTTime | OGRFieldType::OFTDateTime => {
                    FieldKind::Temporal
                }
                OGRFieldType::OFTIntegerList => FieldKind::IntegerList,
                OGRFieldType::OFTInteger64List => FieldKind::Integer64List,
                OGRFieldType::OFTRealList => FieldKind::RealList,
                OGRFieldType::OFTStringList | OGRFieldType::OFTWideStringList => {
                    FieldKind::StringList
                }
                OGRFieldType::OFTBinary => {
                    tracing::debug!(field = field.name(), "binary field left out of MVT");
                    return None;
                }
                _ => FieldKind::String,
            };
            Some(FieldReader {
                index,
                name: field.name(),
                kind,
            })
        })
        .collect()
}

/// Returns the feature id from an integer `id` field when the layer has one and its value is
/// not negative, or else the OGR FID.
pub(super) fn feature_id(feature: &Feature<'_>, id_field: Option<usize>) -> Option<u64> {
    let from_field = id_field
        .filter(|&index| ogr_ffi::is_set_and_not_null(feature, index))
        .and_then(|index| match feature.field(index) {
            Ok(Some(FieldValue::IntegerValue(id))) => u64::try_from(id).ok(),
            Ok(Some(FieldValue::Integer64Value(id))) => u64::try_from(id).ok(),
            _ => None,
        });
    from_field.or_else(|| feature.fid())
}

/// Returns the index of the layer's `id` field if it is an integer field.
pub(super) fn integer_id_field(defn: &Defn) -> Option<usize> {
    defn.fields().position(|field| {
        field.name() == "id"
            && matches!(
                field.field_type(),
                OGRFieldType::OFTInteger | OGRFieldType::OFTInteger64
            )
    })
}

fn convert_field_value(value: FieldValue) -> Option<PropertyValue> {
    let converted = match value {
        FieldValue::IntegerValue(value) => PropertyValue::Int(i64::from(value)),
        FieldValue::Integer64Value(value) => PropertyValue::Int(value),
        FieldValue::RealValue(value) if value.is_finite() => PropertyValue::Double(value),
        FieldValue::RealValue(_) => return None,
        FieldValue::StringValue(value) => PropertyValue::String(value),
        FieldValue::IntegerListValue(values) => json_text(&values),
        FieldValue::Integer64ListValue(values) => json_text(&values),
        FieldValue::RealListValue(values) => json_text(&values),
        FieldValue::StringListValue(values) => json_text(&values),
        FieldValue::DateValue(date) => PropertyValue::String(date.to_string()),
        // chrono's Debug output of a date-time is ISO 8601, `2020-01-02T03:04:05+02:00`, and
        // its `to_rfc3339` needs a chrono feature that gdal does not enable.
        FieldValue::DateTimeValue(datetime) => PropertyValue::String(format!("{datetime:?}")),
    };
    Some(converted)
}

fn json_text<T: serde::Serialize>(values: &[T]) -> PropertyValue {
    PropertyValue::String(serde_json::to_string(values).unwrap_or_default())
}

/// Converts OGR's text for a date, time or date-time (`2020/01/02 03:04:05.250+0130`) to
/// ISO 8601 (`2020-01-02T03:04:05.250+01:30`). A time without a zone stays without one.
pub(super) fn ogr_datetime_to_iso(text: &str) -> String {
    let text = text.trim();
    let (date, time) = match text.split_once(' ') {
        Some((date, time)) => (Some(date), Some(time)),
        None if text.contains('/') => (Some(text), None),
        None => (None, Some(text)),
    };
    let mut iso = date.map(|date| date.replace('/', "-")).unwrap_or_default();
    if let Some(time) = time {
        if date.is_some() {
            iso.push('T');
        }
        // A zone starts with the first sign after the clock time, which has no sign.
        let (clock, zone) = match time.find(['+', '-']) {
            Some(at) => time.split_at(at),
            None => (time, ""),
        };
        iso.push_str(clock);
        iso.push_str(&iso_zone(zone));
    }
    iso
}

/// Converts OGR's zone suffix (`+01`, `+0130`, `-05`, `Z`) to `±HH:MM`.
fn iso_zone(zone: &str) -> String {
    let Some(sign) = zone.chars().next().filter(|c| matches!(c, '+' | '-')) else {
        return zone.to_owned();
    };
    let digits: String = zone[1..].chars().filter(char::is_ascii_digit).collect();
    match digits.len() {
        2 => format!("{sign}{digits}:00"),
        4 => format!("{sign}{}:{}", &digits[..2], &digits[2..]),
        _ => zone.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ogr_datetime_to_iso_cases() {
        let cases = [
            ("2020/01/02", "2020-01-02"),
            ("2020/01/02 03:04:05", "2020-01-02T03:04:05"),
            ("2020/01/02 03:04:05+00", "2020-01-02T03:04:05+00:00"),
            (
                "2020/01/02 03:04:05.250+0130",
                "2020-01-02T03:04:05.250+01:30",
            ),
            ("2020/01/02 03:04:05-05", "2020-01-02T03:04:05-05:00"),
            ("03:04:05", "03:04:05"),
        ];
        for (ogr, expected) in cases {
            assert_eq!(ogr_datetime_to_iso(ogr), expected, "OGR text {ogr}");
        }
    }

    #[test]
    fn lists_become_json_text() {
        let cases = [
            (FieldValue::IntegerListValue(vec![1, 2]), "[1,2]"),
            (FieldValue::RealListValue(vec![0.5, f64::NAN]), "[0.5,null]"),
            (
                FieldValue::StringListValue(vec!["a".into(), "b\"c".into()]),
                r#"["a","b\"c"]"#,
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(
                convert_field_value(value),
                Some(PropertyValue::String(expected.to_owned()))
            );
        }
    }

    #[test]
    fn non_finite_reals_are_omitted() {
        assert_eq!(convert_field_value(FieldValue::RealValue(f64::NAN)), None);
        assert_eq!(
            convert_field_value(FieldValue::RealValue(2.5)),
            Some(PropertyValue::Double(2.5))
        );
    }
}
