//! The `[access]` table of `tessera.toml` and the access options of one source.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Whether a source is listed and served without a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Public,
    Private,
}

/// The server-wide access settings: `[access]` in `tessera.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    /// Visibility of the sources that set no `access` of their own.
    pub default: Visibility,
    /// File of key hashes that `tessera key new` appends to; relative to the configuration's
    /// folder. Without it no key is valid.
    pub keys_file: Option<PathBuf>,
    /// Minimum time between two checks of the keys file for changes, in seconds.
    pub keys_reload_seconds: f64,
    /// Groups of sources: a key of group `name` opens every source listed under it.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Zoom from which sensitive points are left out of tiles without a key; below it they are
    /// moved to the centre of their grid cell.
    pub sensitive_zoom: u8,
    /// Size of the grid cells that sensitive points are snapped to, in metres on the ground.
    pub sensitive_cell_m: f64,
    /// Whether served styles may name hosts other than this server (tiles, glyphs, sprites).
    /// When false such sources are removed from styles, so the viewer contacts no other host.
    pub third_party_urls: bool,
    /// Requests per second per client address and per key.
    pub rate_limit: RateLimit,
    /// Whether the client address is taken from the last `X-Forwarded-For` entry, as a
    /// reverse proxy in front of Tessera appends it. Only set this behind such a proxy: a
    /// direct client could otherwise name any address.
    pub trust_forwarded_for: bool,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            default: Visibility::Public,
            keys_file: None,
            keys_reload_seconds: 2.0,
            groups: BTreeMap::new(),
            sensitive_zoom: 12,
            sensitive_cell_m: 2000.0,
            third_party_urls: false,
            rate_limit: RateLimit::default(),
            trust_forwarded_for: false,
        }
    }
}

impl AccessConfig {
    /// Checks the values that parse but cannot work; the error names the option and the fix.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.keys_reload_seconds.is_finite() && self.keys_reload_seconds >= 0.0) {
            return Err(format!(
                "invalid access.keys_reload_seconds = {}: use 0 or more seconds",
                self.keys_reload_seconds
            ));
        }
        if !(self.sensitive_cell_m.is_finite() && self.sensitive_cell_m >= 1.0) {
            return Err(format!(
                "invalid access.sensitive_cell_m = {}: use at least 1 metre",
                self.sensitive_cell_m
            ));
        }
        if self.sensitive_zoom > crate::tile::MAX_ZOOM {
            return Err(format!(
                "invalid access.sensitive_zoom = {}: use 0 to {}",
                self.sensitive_zoom,
                crate::tile::MAX_ZOOM
            ));
        }
        self.rate_limit.validate()
    }
}

/// Token-bucket rate limits; a rate of 0 turns that limit off.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per second that one client address may make on average.
    pub per_address: f64,
    /// Requests one address may make at once before the average applies.
    pub address_burst: u32,
    /// Requests per second that one key may make on average, from all addresses together.
    pub per_key: f64,
    /// Requests one key may make at once before the average applies.
    pub key_burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_address: 0.0,
            address_burst: 200,
            per_key: 0.0,
            key_burst: 400,
        }
    }
}

impl RateLimit {
    fn validate(&self) -> Result<(), String> {
        for (name, rate) in [("per_address", self.per_address), ("per_key", self.per_key)] {
            if !(rate.is_finite() && rate >= 0.0) {
                return Err(format!(
                    "invalid access.rate_limit.{name} = {rate}: use requests per second, 0 for no limit"
                ));
            }
        }
        for (name, burst) in [
            ("address_burst", self.address_burst),
            ("key_burst", self.key_burst),
        ] {
            if burst == 0 {
                return Err(format!(
                    "invalid access.rate_limit.{name} = 0: use at least 1 request"
                ));
            }
        }
        Ok(())
    }
}

/// The sensitive points of a source: `sensitive = true` (all of them) or
/// `sensitive = "ATTRIBUTE"` (features whose attribute is true, a non-zero number or a
/// non-empty string other than `false`, `no` and `0`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Sensitive {
    All(bool),
    Attribute(String),
}

/// The access options of one source, from its entry in `tessera.toml` or its side file.
#[derive(Debug, Clone, Default)]
pub struct SourceAccess {
    /// `None` follows the server's default.
    pub visibility: Option<Visibility>,
    /// Key groups that open this source, besides its own id.
    pub groups: Vec<String>,
    /// Attributes left out of every response without a key for this source.
    pub private_attributes: Vec<String>,
    pub sensitive: Option<Sensitive>,
    /// The source whose keys also open this one: the imagery a coverage layer describes.
    pub parent: Option<String>,
}

impl SourceAccess {
    pub fn new(
        visibility: Option<Visibility>,
        groups: Vec<String>,
        private_attributes: Vec<String>,
        sensitive: Option<Sensitive>,
    ) -> Self {
        Self {
            visibility,
            groups,
            private_attributes,
            sensitive: sensitive.filter(|s| *s != Sensitive::All(false)),
            parent: None,
        }
    }

    /// Removes the access options from a source's option table and returns them, so that the
    /// rest goes to the options of the source's kind.
    pub fn take_from(options: &mut toml::Table) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Options {
            access: Option<Visibility>,
            #[serde(default)]
            groups: Vec<String>,
            #[serde(default)]
            private_attributes: Vec<String>,
            sensitive: Option<Sensitive>,
        }
        let mut taken = toml::Table::new();
        for name in ["access", "groups", "private_attributes", "sensitive"] {
            if let Some(value) = options.remove(name) {
                taken.insert(name.to_owned(), value);
            }
        }
        let parsed = Options::deserialize(toml::Value::Table(taken)).map_err(|error| {
            format!("{error}; use access = \"public\" or \"private\", groups and private_attributes as lists of names, sensitive = true or an attribute name")
        })?;
        Ok(Self::new(
            parsed.access,
            parsed.groups,
            parsed.private_attributes,
            parsed.sensitive,
        ))
    }

    /// Returns the access of a source derived from `parent` (a coverage layer): the same
    /// options, and `parent`'s keys open it.
    #[must_use]
    pub fn derived(&self, parent: &str) -> Self {
        Self {
            parent: Some(parent.to_owned()),
            ..self.clone()
        }
    }

    /// Returns whether a response without a key needs any change for this source.
    pub fn restricts(&self) -> bool {
        !self.private_attributes.is_empty() || self.sensitive.is_some()
    }

    pub fn is_private_attribute(&self, name: &str) -> bool {
        self.private_attributes
            .iter()
            .any(|private| private == name)
    }
}

/// Returns whether an attribute value marks a feature as sensitive.
pub(super) fn is_truthy(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Bool(flag) => *flag,
        serde_json::Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        serde_json::Value::String(text) => {
            let text = text.trim().to_ascii_lowercase();
            !(text.is_empty() || text == "false" || text == "no" || text == "0")
        }
        serde_json::Value::Null => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truthy_values_mark_sensitive() {
        let cases = [
            (json!(true), true),
            (json!(false), false),
            (json!(1), true),
            (json!(0), false),
            (json!("yes"), true),
            (json!("No"), false),
            (json!("0"), false),
            (json!(""), false),
            (json!(null), false),
        ];
        for (value, expected) in cases {
            assert_eq!(is_truthy(&value), expected, "{value}");
        }
    }

    #[test]
    fn access_table_parses() {
        let config: AccessConfig = toml::from_str(
            r#"
            default = "private"
            keys_file = "keys.txt"
            sensitive_zoom = 10
            [groups]
            investigators = ["camps", "witnesses"]
            [rate_limit]
            per_address = 5.0
            "#,
        )
        .expect("valid table");
        assert_eq!(config.default, Visibility::Private);
        assert_eq!(config.sensitive_zoom, 10);
        assert_eq!(config.groups["investigators"].len(), 2);
        assert!((config.rate_limit.per_address - 5.0).abs() < f64::EPSILON);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn impossible_values_are_rejected() {
        let cases = [
            "sensitive_cell_m = 0.5",
            "keys_reload_seconds = -1.0",
            "sensitive_zoom = 30",
            "rate_limit = { per_key = -2.0 }",
            "rate_limit = { address_burst = 0 }",
        ];
        for text in cases {
            let config: AccessConfig = toml::from_str(text).expect(text);
            assert!(config.validate().is_err(), "{text}");
        }
    }

    #[test]
    fn access_options_leave_the_kind_options() {
        let mut options: toml::Table = toml::from_str(
            r#"
            access = "private"
            private_attributes = ["witness"]
            sensitive = "exact"
            layer = "camps"
            "#,
        )
        .expect("TOML");
        let access = SourceAccess::take_from(&mut options).expect("valid");
        assert_eq!(access.visibility, Some(Visibility::Private));
        assert_eq!(access.private_attributes, ["witness"]);
        assert_eq!(
            access.sensitive,
            Some(Sensitive::Attribute("exact".to_owned()))
        );
        assert_eq!(options.keys().collect::<Vec<_>>(), ["layer"]);

        let mut wrong: toml::Table = toml::from_str("access = \"secret\"").expect("TOML");
        assert!(SourceAccess::take_from(&mut wrong).is_err());
    }

    #[test]
    fn sensitive_setting_parses_both_forms() {
        #[derive(Deserialize)]
        struct Holder {
            sensitive: Sensitive,
        }
        let all: Holder = toml::from_str("sensitive = true").expect("bool");
        assert_eq!(all.sensitive, Sensitive::All(true));
        let attribute: Holder = toml::from_str("sensitive = \"witness\"").expect("string");
        assert_eq!(
            attribute.sensitive,
            Sensitive::Attribute("witness".to_owned())
        );
    }
}
