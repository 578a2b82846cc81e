//! Access keys: stored only as SHA-256 hashes in a keys file, looked up per request, and
//! reloaded when the file changes, so a key is revoked by deleting its line.
//!
//! SHA-256 suffices because every key is 256 random bits from the operating system: a slow
//! password hash such as argon2 defends guessable secrets, and guessing one of 2^256 keys is
//! out of reach at any hashing speed.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use thiserror::Error;

/// The prefix of every key, so that a key pasted into a log or a chat is recognisable.
const KEY_PREFIX: &str = "tsk_";

/// The prefix of a hash in the keys file.
const HASH_PREFIX: &str = "sha256:";

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("no keys file is configured: set `keys_file` under [access] in {0}")]
    NoKeysFile(PathBuf),
    #[error("invalid group name {0:?}: use letters, digits, '.', '_' and '-'")]
    InvalidGroup(String),
    #[error("no group given: name at least one with --groups")]
    NoGroups,
    #[error("writing the keys file {path} failed: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// Returns the SHA-256 of `key` as it is written in the keys file: `sha256:` and 64 hex digits.
pub fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("{HASH_PREFIX}{}", to_hex(&digest))
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Returns a new key: `tsk_` and 64 hex digits of 32 random bytes.
pub fn new_key() -> Result<String, KeyError> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| KeyError::Random(error.to_string()))?;
    Ok(format!("{KEY_PREFIX}{}", to_hex(&bytes)))
}

/// Makes a key for `groups`, appends its hash to `keys_file` and returns the key, which is
/// stored nowhere else.
pub fn append_new_key(
    keys_file: &Path,
    groups: &[String],
    label: Option<&str>,
) -> Result<String, KeyError> {
    if groups.is_empty() {
        return Err(KeyError::NoGroups);
    }
    for group in groups {
        crate::config::validate_id(group).map_err(|_| KeyError::InvalidGroup(group.clone()))?;
    }
    let key = new_key()?;
    let label = label
        .map(|label| label.replace(['\n', '\r'], " "))
        .unwrap_or_default();
    let line = format!("{} {} {label}\n", hash_key(&key), groups.join(","));
    let write = |source| KeyError::Write {
        path: keys_file.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(keys_file)
        .map_err(write)?;
    file.write_all(line.as_bytes()).map_err(write)?;
    file.sync_all().map_err(write)?;
    Ok(key)
}

/// `tessera key new`: makes an access key.
#[derive(Debug, clap::Args)]
pub struct KeyCommand {
    #[command(subcommand)]
    action: KeyAction,
}

#[derive(Debug, clap::Subcommand)]
enum KeyAction {
    /// Make a key, append its hash to the keys file and print the key once.
    New {
        /// Groups or source ids that the key opens, separated by commas.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// A note stored beside the hash, such as the key's owner.
        #[arg(long)]
        label: Option<String>,
        /// Configuration file whose `[access] keys_file` receives the hash.
        #[arg(long, short, default_value = "tessera.toml")]
        config: PathBuf,
    },
}

/// Runs `tessera key …` and prints the new key on standard output.
pub fn run_key_command(command: KeyCommand) -> anyhow::Result<()> {
    let KeyAction::New {
        groups,
        label,
        config,
    } = command.action;
    let loaded = crate::config::Config::load(&config)?;
    let keys_file = loaded
        .access
        .keys_file
        .ok_or_else(|| KeyError::NoKeysFile(config.clone()))?;
    let key = append_new_key(&keys_file, &groups, label.as_deref())?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{key}")?;
    writeln!(
        stdout,
        "# the hash is in {}; this key is shown only now",
        keys_file.display()
    )?;
    Ok(())
}

/// The keys of a running server, reloaded from the keys file when it changes.
#[derive(Debug)]
pub struct KeyStore {
    path: Option<PathBuf>,
    reload_every: Duration,
    loaded: Mutex<Loaded>,
}

#[derive(Debug, Default)]
struct Loaded {
    /// Groups of each key, by hash.
    keys: HashMap<String, Vec<String>>,
    /// Modification time and length of the file when it was read.
    stamp: Option<(SystemTime, u64)>,
    checked: Option<Instant>,
}

impl KeyStore {
    /// A store over `path` (no key is valid without one), checked for changes at most every
    /// `reload_every`.
    pub fn new(path: Option<PathBuf>, reload_every: Duration) -> Self {
        let store = Self {
            path,
            reload_every,
            loaded: Mutex::new(Loaded::default()),
        };
        store.refresh(true);
        store
    }

    /// Returns the groups that `key` opens, or `None` when it is not a valid key.
    pub fn groups(&self, key: &str) -> Option<Vec<String>> {
        self.refresh(false);
        let hash = hash_key(key);
        let loaded = self.loaded.lock().expect("the keys lock is not poisoned");
        loaded.keys.get(&hash).cloned()
    }

    /// Rereads the file when it changed and `reload_every` has passed since the last check.
    fn refresh(&self, force: bool) {
        let Some(path) = &self.path else {
            return;
        };
        let mut loaded = self.loaded.lock().expect("the keys lock is not poisoned");
        let due = loaded
            .checked
            .is_none_or(|checked| checked.elapsed() >= self.reload_every);
        if !(force || due) {
            return;
        }
        loaded.checked = Some(Instant::now());
        let stamp = std::fs::metadata(path)
            .ok()
            .and_then(|meta| Some((meta.modified().ok()?, meta.len())));
        if !force && stamp == loaded.stamp {
            return;
        }
        loaded.stamp = stamp;
        match std::fs::read_to_string(path) {
            Ok(text) => {
                loaded.keys = parse_keys(&text, path);
                tracing::info!(path = %path.display(), keys = loaded.keys.len(), "keys loaded");
            }
            Err(error) => {
                // A missing or unreadable file revokes every key: failing closed.
                loaded.keys.clear();
                tracing::warn!(path = %path.display(), %error, "keys file cannot be read: no key is valid");
            }
        }
    }
}

/// Parses the keys file: one key a line, `sha256:HEX GROUP[,GROUP…] [LABEL]`; `#` starts a
/// comment line. Invalid lines are logged by line number and skipped.
fn parse_keys(text: &str, path: &Path) -> HashMap<String, Vec<String>> {
    let mut keys = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let hash = fields.next().unwrap_or_default();
        let groups: Vec<String> = fields
            .next()
            .unwrap_or_default()
            .split(',')
            .filter(|group| !group.is_empty())
            .map(str::to_owned)
            .collect();
        let hex = hash.strip_prefix(HASH_PREFIX).unwrap_or_default();
        let valid_hash = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid_hash || groups.is_empty() {
            tracing::warn!(path = %path.display(), line = index + 1, "invalid line in the keys file skipped: use `sha256:HEX GROUP[,GROUP] [LABEL]`");
            continue;
        }
        keys.insert(hash.to_ascii_lowercase(), groups);
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_known_digest() {
        // SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        assert_eq!(
            hash_key("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn new_keys_differ_and_have_the_prefix() {
        let a = new_key().expect("random");
        let b = new_key().expect("random");
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 64);
    }

    #[test]
    fn keys_file_lines_parse() {
        let text = format!(
            "# comment\n{} camps,witnesses Alice\nnot-a-hash group\n{}\n",
            hash_key("one"),
            hash_key("two")
        );
        let keys = parse_keys(&text, Path::new("keys.txt"));
        assert_eq!(keys.len(), 1, "the line without groups is skipped too");
        assert_eq!(keys[&hash_key("one")], ["camps", "witnesses"]);
    }

    #[test]
    fn store_reloads_a_changed_file() {
        let folder = tempfile::tempdir().expect("tempdir");
        let path = folder.path().join("keys.txt");
        let key = append_new_key(&path, &["camps".to_owned()], Some("test")).expect("append");
        let store = KeyStore::new(Some(path.clone()), Duration::ZERO);
        assert_eq!(store.groups(&key), Some(vec!["camps".to_owned()]));
        assert_eq!(store.groups("tsk_wrong"), None);
        std::fs::write(&path, "# every key revoked\n").expect("rewrite");
        assert_eq!(store.groups(&key), None, "revoked without a restart");
        std::fs::remove_file(&path).expect("remove");
        assert_eq!(store.groups(&key), None, "a missing file opens nothing");
    }

    #[test]
    fn groups_are_checked_before_writing() {
        let folder = tempfile::tempdir().expect("tempdir");
        let path = folder.path().join("keys.txt");
        assert!(matches!(
            append_new_key(&path, &[], None),
            Err(KeyError::NoGroups)
        ));
        assert!(matches!(
            append_new_key(&path, &["a b".to_owned()], None),
            Err(KeyError::InvalidGroup(_))
        ));
        assert!(!path.exists());
    }
}
