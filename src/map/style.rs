//! MapLibre style documents read for static rendering: layers, their filters and the
//! expressions of their layout and paint properties, evaluated per feature.
//!
//! The evaluator covers the expressions our styles and common styles use: `get`, `has`,
//! comparisons, `in`, `all`/`any`/`none`/`!`, `match`, `case`, `coalesce`, `interpolate` and
//! `step` on `zoom`, `to-string`, `concat`, `literal`, `geometry-type`, legacy filters and
//! zoom functions (`stops`). Anything else is logged once and treated as absent, so the
//! layer falls back to the property's default.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value, json};

use super::scene::Rgba;

/// The geometry kind that filters compare with `$type` and `geometry-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometryKind {
    Point,
    LineString,
    Polygon,
}

impl GeometryKind {
    fn name(self) -> &'static str {
        match self {
            GeometryKind::Point => "Point",
            GeometryKind::LineString => "LineString",
            GeometryKind::Polygon => "Polygon",
        }
    }
}

/// The input of an expression: a feature's attributes and kind, and the zoom.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub properties: &'a Map<String, Value>,
    pub geometry: Option<GeometryKind>,
    pub zoom: f64,
}

/// One layer of a style, as drawn by the static renderer.
#[derive(Debug, Clone)]
pub struct Layer {
    pub id: String,
    /// `background`, `raster`, `fill`, `line`, `circle`, `symbol`, or another type, which is
    /// skipped.
    pub kind: String,
    pub source: Option<String>,
    pub source_layer: Option<String>,
    pub minzoom: f64,
    pub maxzoom: f64,
    pub filter: Option<Value>,
    pub layout: Map<String, Value>,
    pub paint: Map<String, Value>,
    pub visible: bool,
}

/// A style source: its name in the style and the Tessera source id its URL points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StyleSource {
    pub kind: String,
    /// The id of the served source (`/tiles/{id}.json` or `/tiles/{id}/{z}/{x}/{y}.ext`), or
    /// `None` for a URL that is not one of ours.
    pub source_id: Option<String>,
    pub attribution: Option<String>,
}

/// A style document reduced to what the renderer needs.
#[derive(Debug, Clone)]
pub struct Style {
    pub id: String,
    pub name: Option<String>,
    pub sources: BTreeMap<String, StyleSource>,
    pub layers: Vec<Layer>,
}

impl Style {
    /// Reads a style document. Layers without an id or type are skipped with a warning.
    pub fn parse(id: &str, document: &Value) -> Style {
        let sources = document
            .get("sources")
            .and_then(Value::as_object)
            .map(|sources| {
                sources
                    .iter()
                    .map(|(name, source)| (name.clone(), read_source(source)))
                    .collect()
            })
            .unwrap_or_default();
        let layers = document
            .get("layers")
            .and_then(Value::as_array)
            .map(|layers| {
                layers
                    .iter()
                    .filter_map(|layer| read_layer(id, layer))
                    .collect()
            })
            .unwrap_or_default();
        Style {
            id: id.to_owned(),
            name: document
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            sources,
            layers,
        }
    }

    /// Returns the served source id behind a layer's style source.
    pub fn source_id(&self, layer: &Layer) -> Option<&str> {
        let name = layer.source.as_deref()?;
        self.sources.get(name)?.source_id.as_deref()
    }
}

fn read_source(source: &Value) -> StyleSource {
    let url = source.get("url").and_then(Value::as_str).or_else(|| {
        source
            .get("tiles")
            .and_then(Value::as_array)
            .and_then(|tiles| tiles.first())
            .and_then(Value::as_str)
    });
    StyleSource {
        kind: source
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        source_id: url.and_then(source_id_of_url),
        attribution: source
            .get("attribution")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

/// Finds the source id in a TileJSON or tile URL of this server.
fn source_id_of_url(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("/tiles/")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let first = &rest[..end];
    let id = if end == rest.len() {
        first.strip_suffix(".json")?
    } else {
        first
    };
    (!id.is_empty()).then(|| id.to_owned())
}

fn read_layer(style: &str, layer: &Value) -> Option<Layer> {
    let id = layer.get("id").and_then(Value::as_str);
    let kind = layer.get("type").and_then(Value::as_str);
    let (Some(id), Some(kind)) = (id, kind) else {
        tracing::warn!(
            style,
            ?layer,
            "style layer without an id or type is skipped"
        );
        return None;
    };
    let object = |name: &str| {
        layer
            .get(name)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let layout = object("layout");
    let visible = layout.get("visibility").and_then(Value::as_str) != Some("none");
    Some(Layer {
        id: id.to_owned(),
        kind: kind.to_owned(),
        source: layer
            .get("source")
            .and_then(Value::as_str)
            .map(str::to_owned),
        source_layer: layer
            .get("source-layer")
            .and_then(Value::as_str)
            .map(str::to_owned),
        minzoom: layer.get("minzoom").and_then(Value::as_f64).unwrap_or(0.0),
        maxzoom: layer.get("maxzoom").and_then(Value::as_f64).unwrap_or(24.0),
        filter: layer.get("filter").cloned(),
        layout,
        paint: object("paint"),
        visible,
    })
}

/// Logs an unsupported expression operator once per process.
fn unsupported(operator: &str) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(|| Mutex::new(HashSet::new()));
    let mut seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if seen.insert(operator.to_owned()) {
        tracing::warn!(
            operator,
            "style expression not supported by static maps: the property takes its default"
        );
    }
}

/// Returns whether a feature passes a layer's filter. A filter that cannot be evaluated
/// passes nothing.
pub fn passes(filter: Option<&Value>, context: &Context<'_>) -> bool {
    filter.is_none_or(|filter| evaluate(filter, context).is_some_and(|value| truthy(&value)))
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        _ => true,
    }
}

/// Evaluates a property value: a literal, a legacy zoom function (`{"stops": ...}`) or an
/// expression. Returns `None` when the value is absent or cannot be evaluated.
pub fn evaluate(value: &Value, context: &Context<'_>) -> Option<Value> {
    match value {
        Value::Array(items) => {
            let Some(Value::String(operator)) = items.first() else {
                return Some(value.clone());
            };
            evaluate_call(operator, &items[1..], context)
        }
        Value::Object(function) if function.contains_key("stops") => {
            evaluate_function(function, context)
        }
        Value::Null => None,
        other => Some(other.clone()),
    }
}

/// Reads a legacy filter's property: an attribute, `$type` or `$id`.
fn legacy_property(key: &str, context: &Context<'_>) -> Option<Value> {
    match key {
        "$type" => context.geometry.map(|kind| json!(kind.name())),
        "$id" => context.properties.get("$id").cloned(),
        _ => context.properties.get(key).cloned(),
    }
}

#[allow(
    clippy::too_many_lines,
    reason = "one arm per operator reads best as one table"
)]
fn evaluate_call(operator: &str, arguments: &[Value], context: &Context<'_>) -> Option<Value> {
    let argument = |index: usize| {
        arguments
            .get(index)
            .and_then(|value| evaluate(value, context))
    };
    // Legacy filters name the property as a bare string in the first argument.
    let legacy_key = arguments.first().and_then(Value::as_str);
    match operator {
        "literal" => arguments.first().cloned(),
        "get" => {
            let key = argument(0)?;
            context.properties.get(key.as_str()?).cloned()
        }
        "has" => {
            let key = legacy_key
                .map(str::to_owned)
                .or_else(|| argument(0).and_then(|value| value.as_str().map(str::to_owned)))?;
            Some(json!(legacy_property(&key, context).is_some()))
        }
        "!has" => Some(json!(
            legacy_key.is_some_and(|key| legacy_property(key, context).is_none())
        )),
        "geometry-type" => context.geometry.map(|kind| json!(kind.name())),
        "zoom" => Some(json!(context.zoom)),
        "==" | "!=" | "<" | "<=" | ">" | ">=" => {
            let (left, right) = match legacy_key {
                Some(key) if arguments.len() == 2 => {
                    (legacy_property(key, context), arguments.get(1).cloned())
                }
                _ => (argument(0), argument(1)),
            };
            Some(json!(compare(operator, left.as_ref(), right.as_ref())))
        }
        "in" | "!in" => {
            let found = if let Some(key) = legacy_key {
                let value = legacy_property(key, context);
                value.is_some_and(|value| arguments[1..].contains(&value))
            } else {
                let needle = argument(0)?;
                match argument(1)? {
                    Value::Array(haystack) => haystack.contains(&needle),
                    Value::String(text) => needle.as_str().is_some_and(|n| text.contains(n)),
                    _ => false,
                }
            };
            Some(json!(found == (operator == "in")))
        }
        "all" => Some(json!(arguments.iter().all(|value| {
            evaluate(value, context).is_some_and(|v| truthy(&v))
        }))),
        "any" => Some(json!(arguments.iter().any(|value| {
            evaluate(value, context).is_some_and(|v| truthy(&v))
        }))),
        "none" => {
            Some(json!(!arguments.iter().any(|value| {
                evaluate(value, context).is_some_and(|v| truthy(&v))
            })))
        }
        "!" => Some(json!(!argument(0).is_some_and(|value| truthy(&value)))),
        "match" => {
            let input = argument(0);
            let mut index = 1;
            while index + 1 < arguments.len() {
                let labels = &arguments[index];
                let hit = match labels {
                    Value::Array(labels) => input.as_ref().is_some_and(|v| labels.contains(v)),
                    label => input.as_ref() == Some(label),
                };
                if hit {
                    return argument(index + 1);
                }
                index += 2;
            }
            argument(arguments.len().checked_sub(1)?)
        }
        "case" => {
            let mut index = 0;
            while index + 1 < arguments.len() {
                if argument(index).is_some_and(|value| truthy(&value)) {
                    return argument(index + 1);
                }
                index += 2;
            }
            argument(arguments.len().checked_sub(1)?)
        }
        "coalesce" => {
            (0..arguments.len()).find_map(|index| argument(index).filter(|value| !value.is_null()))
        }
        "to-string" => argument(0).map(|value| json!(to_text(&value))),
        "to-number" => argument(0).and_then(|value| match value {
            Value::Number(_) => Some(value),
            Value::String(text) => text.trim().parse::<f64>().ok().map(|n| json!(n)),
            Value::Bool(flag) => Some(json!(u8::from(flag))),
            _ => None,
        }),
        "concat" => Some(json!(
            (0..arguments.len())
                .map(|index| argument(index)
                    .map(|value| to_text(&value))
                    .unwrap_or_default())
                .collect::<String>()
        )),
        "interpolate" => interpolate(arguments, context),
        "step" => {
            let input = argument(0)?.as_f64()?;
            let mut output = argument(1);
            let mut index = 2;
            while index + 1 < arguments.len() {
                if input >= arguments[index].as_f64()? {
                    output = argument(index + 1);
                } else {
                    break;
                }
                index += 2;
            }
            output
        }
        _ => {
            unsupported(operator);
            None
        }
    }
}

#[allow(
    clippy::float_cmp,
    reason = "style expressions compare numbers exactly, as MapLibre does"
)]
fn compare(operator: &str, left: Option<&Value>, right: Option<&Value>) -> bool {
    let numbers = left
        .and_then(Value::as_f64)
        .zip(right.and_then(Value::as_f64));
    match operator {
        "==" => match numbers {
            Some((a, b)) => a == b,
            None => left == right,
        },
        "!=" => match numbers {
            Some((a, b)) => a != b,
            None => left != right,
        },
        _ => {
            let ordering = match numbers {
                Some((a, b)) => a.partial_cmp(&b),
                None => match (left.and_then(Value::as_str), right.and_then(Value::as_str)) {
                    (Some(a), Some(b)) => Some(a.cmp(b)),
                    _ => None,
                },
            };
            ordering.is_some_and(|ordering| match operator {
                "<" => ordering.is_lt(),
                "<=" => ordering.is_le(),
                ">" => ordering.is_gt(),
                _ => ordering.is_ge(),
            })
        }
    }
}

fn to_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `["interpolate", ["linear"] | ["exponential", base], input, stop, output, ...]` over
/// numbers and colours.
fn interpolate(arguments: &[Value], context: &Context<'_>) -> Option<Value> {
    let base = match arguments.first()?.as_array()?.as_slice() {
        [kind] if kind == "linear" => 1.0,
        [kind, base] if kind == "exponential" => base.as_f64()?,
        other => {
            unsupported(&format!("interpolate {other:?}"));
            return None;
        }
    };
    let input = evaluate(arguments.get(1)?, context)?.as_f64()?;
    let stops: Vec<(f64, Value)> = arguments[2..]
        .chunks(2)
        .filter_map(|pair| match pair {
            [stop, output] => Some((stop.as_f64()?, evaluate(output, context)?)),
            _ => None,
        })
        .collect();
    interpolate_stops(&stops, input, base)
}

/// A legacy zoom function: `{"base": b, "stops": [[zoom, value], ...]}`.
fn evaluate_function(function: &Map<String, Value>, context: &Context<'_>) -> Option<Value> {
    if function.contains_key("property") {
        unsupported("property function");
        return None;
    }
    let base = function.get("base").and_then(Value::as_f64).unwrap_or(1.0);
    let stops: Vec<(f64, Value)> = function
        .get("stops")?
        .as_array()?
        .iter()
        .filter_map(|stop| {
            let pair = stop.as_array()?;
            Some((pair.first()?.as_f64()?, pair.get(1)?.clone()))
        })
        .collect();
    interpolate_stops(&stops, context.zoom, base)
}

fn interpolate_stops(stops: &[(f64, Value)], input: f64, base: f64) -> Option<Value> {
    let first = stops.first()?;
    if input <= first.0 {
        return Some(first.1.clone());
    }
    for pair in stops.windows(2) {
        let ((z0, v0), (z1, v1)) = (&pair[0], &pair[1]);
        if input <= *z1 {
            let t = interpolation_factor(input, *z0, *z1, base);
            return Some(mix(v0, v1, t));
        }
    }
    stops.last().map(|(_, value)| value.clone())
}

fn interpolation_factor(input: f64, lower: f64, upper: f64, base: f64) -> f64 {
    let span = upper - lower;
    if span <= 0.0 {
        return 0.0;
    }
    let progress = input - lower;
    if (base - 1.0).abs() < f64::EPSILON {
        progress / span
    } else {
        (base.powf(progress) - 1.0) / (base.powf(span) - 1.0)
    }
}

/// Mixes two numbers or two colours; anything else steps at the end of the span.
fn mix(from: &Value, to: &Value, t: f64) -> Value {
    if let (Some(a), Some(b)) = (from.as_f64(), to.as_f64()) {
        return json!(a + (b - a) * t);
    }
    if let (Some(a), Some(b)) = (
        from.as_str().and_then(parse_colour),
        to.as_str().and_then(parse_colour),
    ) {
        let channel = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * t).round();
        return json!(format!(
            "rgba({}, {}, {}, {})",
            channel(a.r, b.r),
            channel(a.g, b.g),
            channel(a.b, b.b),
            channel(a.a, b.a) / 255.0
        ));
    }
    if t < 1.0 { from.clone() } else { to.clone() }
}

/// Parses a CSS colour: `#rgb`, `#rrggbb`, `#rrggbbaa`, `rgb()`, `rgba()`, `hsl()`, `hsla()`
/// or one of a few names.
pub fn parse_colour(text: &str) -> Option<Rgba> {
    let text = text.trim().to_ascii_lowercase();
    if let Some(hex) = text.strip_prefix('#') {
        let digit = |index: usize, width: usize| {
            let part = hex.get(index..index + width)?;
            let value = u8::from_str_radix(part, 16).ok()?;
            Some(if width == 1 { value * 17 } else { value })
        };
        return match hex.len() {
            3 => Some(Rgba::new(digit(0, 1)?, digit(1, 1)?, digit(2, 1)?, 255)),
            6 => Some(Rgba::new(digit(0, 2)?, digit(2, 2)?, digit(4, 2)?, 255)),
            8 => Some(Rgba::new(
                digit(0, 2)?,
                digit(2, 2)?,
                digit(4, 2)?,
                digit(6, 2)?,
            )),
            _ => None,
        };
    }
    if let Some((function, rest)) = text.split_once('(') {
        let numbers: Vec<f64> = rest
            .trim_end_matches(')')
            .split([',', ' ', '/'])
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.strip_suffix('%')
                    .map_or_else(|| part.parse().ok(), |p| p.parse::<f64>().ok())
            })
            .collect::<Option<Vec<f64>>>()?;
        let alpha = numbers.get(3).copied().unwrap_or(1.0);
        let byte = |value: f64| value.round().clamp(0.0, 255.0) as u8;
        return match (function, numbers.as_slice()) {
            ("rgb" | "rgba", [r, g, b, ..]) => {
                Some(Rgba::new(byte(*r), byte(*g), byte(*b), byte(alpha * 255.0)))
            }
            ("hsl" | "hsla", [hue, saturation, lightness, ..]) => {
                let (red, green, blue) = hsl_to_rgb(*hue, saturation / 100.0, lightness / 100.0);
                Some(Rgba::new(
                    byte(red * 255.0),
                    byte(green * 255.0),
                    byte(blue * 255.0),
                    byte(alpha * 255.0),
                ))
            }
            _ => None,
        };
    }
    let named = match text.as_str() {
        "black" => Rgba::BLACK,
        "white" => Rgba::WHITE,
        "red" => Rgba::new(255, 0, 0, 255),
        "green" => Rgba::new(0, 128, 0, 255),
        "blue" => Rgba::new(0, 0, 255, 255),
        "yellow" => Rgba::new(255, 255, 0, 255),
        "orange" => Rgba::new(255, 165, 0, 255),
        "gray" | "grey" => Rgba::new(128, 128, 128, 255),
        "transparent" => Rgba::new(0, 0, 0, 0),
        _ => return None,
    };
    Some(named)
}

fn hsl_to_rgb(hue: f64, saturation: f64, lightness: f64) -> (f64, f64, f64) {
    let chroma = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let sector = hue.rem_euclid(360.0) / 60.0;
    let second = chroma * (1.0 - (sector % 2.0 - 1.0).abs());
    let (red, green, blue) = match sector as u32 {
        0 => (chroma, second, 0.0),
        1 => (second, chroma, 0.0),
        2 => (0.0, chroma, second),
        3 => (0.0, second, chroma),
        4 => (second, 0.0, chroma),
        _ => (chroma, 0.0, second),
    };
    let lift = lightness - chroma / 2.0;
    (red + lift, green + lift, blue + lift)
}

/// Replaces `{name}` tokens of a legacy `text-field` with the feature's attributes.
pub fn substitute_tokens(text: &str, properties: &Map<String, Value>) -> String {
    let mut output = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        output.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            output.push_str(&rest[open..]);
            return output;
        };
        if let Some(value) = properties.get(&after[..close]) {
            output.push_str(&to_text(value));
        }
        rest = &after[close + 1..];
    }
    output.push_str(rest);
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(properties: &Map<String, Value>, zoom: f64) -> Context<'_> {
        Context {
            properties,
            geometry: Some(GeometryKind::Point),
            zoom,
        }
    }

    #[test]
    fn filters_and_expressions_evaluate() {
        let properties = json!({"kind": "Prison (kyohwaso)", "name": "Camp 15", "size": 4})
            .as_object()
            .cloned()
            .expect("an object");
        let cases = [
            (json!(["==", "$type", "Point"]), json!(true)),
            (json!(["==", "kind", "Prison (kyohwaso)"]), json!(true)),
            (
                json!(["!in", "kind", "a", "Prison (kyohwaso)"]),
                json!(false),
            ),
            (json!(["has", "name_ko"]), json!(false)),
            (json!(["!has", "name_ko"]), json!(true)),
            (json!(["==", ["get", "size"], 4]), json!(true)),
            (
                json!(["all", ["has", "name"], [">", ["get", "size"], 3]]),
                json!(true),
            ),
            (
                json!(["any", ["==", ["get", "size"], 1], false]),
                json!(false),
            ),
            (
                json!(["match", ["get", "size"], [3, 4], "big", "small"]),
                json!("big"),
            ),
            (
                json!(["case", ["==", ["get", "size"], 1], "one", "many"]),
                json!("many"),
            ),
            (
                json!(["coalesce", ["get", "name_ko"], ["get", "name"]]),
                json!("Camp 15"),
            ),
            (
                json!([
                    "concat",
                    ["get", "name"],
                    " (",
                    ["to-string", ["get", "size"]],
                    ")"
                ]),
                json!("Camp 15 (4)"),
            ),
            (
                json!(["interpolate", ["linear"], ["zoom"], 10, 2, 14, 6]),
                json!(4.0),
            ),
            (json!(["step", ["zoom"], "a", 11, "b", 13, "c"]), json!("b")),
            (json!({"stops": [[10, 1], [14, 5]]}), json!(3.0)),
            (
                json!(["in", ["get", "name"], ["literal", ["Camp 15", "Camp 16"]]]),
                json!(true),
            ),
        ];
        let context = context(&properties, 12.0);
        for (expression, expected) in cases {
            assert_eq!(
                evaluate(&expression, &context),
                Some(expected),
                "{expression}"
            );
        }
    }

    #[test]
    fn unsupported_operator_is_absent() {
        let properties = Map::new();
        let context = context(&properties, 3.0);
        assert_eq!(evaluate(&json!(["distance", "x"]), &context), None);
        assert!(!passes(Some(&json!(["within", {}])), &context));
    }

    #[test]
    fn colours_parse() {
        let cases = [
            ("#fff", Rgba::WHITE),
            ("#dde3e8", Rgba::new(0xdd, 0xe3, 0xe8, 255)),
            ("#00000080", Rgba::new(0, 0, 0, 128)),
            ("rgba(255, 0, 0, 0.5)", Rgba::new(255, 0, 0, 128)),
            ("hsl(120, 100%, 50%)", Rgba::new(0, 255, 0, 255)),
            ("white", Rgba::WHITE),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_colour(text), Some(expected), "{text}");
        }
        assert_eq!(parse_colour("#12"), None);
    }

    #[test]
    fn source_ids_come_from_urls() {
        let cases = [
            ("/tiles/TCI.json", Some("TCI")),
            ("http://127.0.0.1:3000/tiles/camps.json", Some("camps")),
            (
                "/tiles/missile-tests/{z}/{x}/{y}.png",
                Some("missile-tests"),
            ),
            ("https://example.org/other.json", None),
        ];
        for (url, expected) in cases {
            assert_eq!(source_id_of_url(url).as_deref(), expected, "{url}");
        }
    }

    #[test]
    fn tokens_are_substituted() {
        let properties = json!({"name": "Camp", "name_ko": "수용소"})
            .as_object()
            .cloned()
            .expect("an object");
        assert_eq!(
            substitute_tokens("{name_ko}\n{name}{missing}", &properties),
            "수용소\nCamp"
        );
    }
}
