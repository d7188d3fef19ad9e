//! Settings: built-in defaults, then a TOML file, then `SAFEGATE_*` environment
//! variables, then command-line flags, each overriding the one before. Every value is
//! validated at start; a bad one is reported with its key and where it came from.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The configuration keys, with their defaults where one exists. A key's environment
/// variable is `SAFEGATE_` followed by the key in upper case.
pub const KEYS: &[(&str, Option<&str>)] = &[
    ("listen_addr", Some("127.0.0.1:50051")),
    ("console_listen_addr", None),
    ("data_dir", Some("safegate-data")),
    ("database_url", None),
    ("database_max_connections", Some("8")),
    ("registry", Some("policies/registry.toml")),
    ("policy_dir", Some("policies")),
    ("pki_dir", None),
    ("tls_cert", None),
    ("tls_key", None),
    ("checkpoint_key", None),
    ("checkpoint_key_previous", None),
    ("log_origin", Some("safegate.local/disclosure-log")),
    ("witness_policy", None),
    ("log_format", Some("pretty")),
    ("log_filter", Some("info")),
    ("health_interval_ms", Some("2000")),
    ("shutdown_grace_secs", Some("15")),
    ("break_glass_review_days", Some("7")),
];

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("the default"),
            Source::File(path) => write!(f, "config file {}", path.display()),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::Flag => f.write_str("the command line"),
        }
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("configuration key `{key}` (from {origin}): {reason}")]
pub struct ConfigError {
    pub key: String,
    pub origin: Source,
    pub reason: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Validated settings for the gateway.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_addr: SocketAddr,
    /// Where the IG officers' web console listens (HTTPS); unset: no console.
    pub console_listen_addr: Option<SocketAddr>,
    pub data_dir: PathBuf,
    /// `sqlite:` or `postgres:` URL; defaults to a SQLite file in `data_dir`.
    pub database_url: String,
    pub database_max_connections: u32,
    /// The agency registry file.
    pub registry: PathBuf,
    /// Directory holding the sharing policy (`sharing.conf`, `sharing.csv`).
    pub policy_dir: PathBuf,
    /// Directory of the PKI; relative registry authority paths resolve against it.
    pub pki_dir: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Ed25519 PKCS#8 PEM key that signs disclosure-log checkpoints.
    pub checkpoint_key: PathBuf,
    /// The key `checkpoint_key` replaces: while the log's latest checkpoint is still
    /// this key's, start-up records the change in the log (under this key) before the
    /// new key signs anything.
    pub checkpoint_key_previous: Option<PathBuf>,
    /// The disclosure log's name: its checkpoints' origin line and the key name of
    /// their signature (C2SP tlog-checkpoint), which witnesses know it by.
    pub log_origin: String,
    /// The witness policy file (witnesses, quorum, lag bound); unset: no witnesses.
    pub witness_policy: Option<PathBuf>,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub health_interval: Duration,
    pub shutdown_grace: Duration,
    /// How long a break-glass entry may wait for its IG review before it counts as
    /// overdue in the metrics.
    pub break_glass_review_due: Duration,
}

/// Raw values by key, each with its source, before validation.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    values: BTreeMap<String, (String, Source)>,
}

impl Layers {
    /// Starts from the built-in defaults.
    pub fn defaults() -> Self {
        let mut layers = Layers::default();
        for (key, default) in KEYS {
            if let Some(value) = default {
                layers.set(key, value.to_string(), Source::Default);
            }
        }
        layers
    }

    fn set(&mut self, key: &str, value: String, source: Source) {
        self.values.insert(key.to_owned(), (value, source));
    }

    /// Overlays a TOML file whose top-level keys are configuration keys. An unknown key
    /// is an error, so a misspelt key is caught rather than silently ignored.
    pub fn file(mut self, path: &Path) -> Result<Self, ConfigError> {
        let source = Source::File(path.to_owned());
        let error = |key: &str, reason: String| ConfigError {
            key: key.to_owned(),
            origin: source.clone(),
            reason,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| error("config", format!("cannot read the file: {e}")))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| error("config", format!("not valid TOML: {e}")))?;
        for (key, value) in table {
            if !KEYS.iter().any(|(k, _)| *k == key) {
                return Err(error(
                    &key,
                    format!("unknown key; known keys: {}", key_list()),
                ));
            }
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                other => {
                    return Err(error(
                        &key,
                        format!("expected a string or integer, found {}", other.type_str()),
                    ));
                }
            };
            self.set(&key, text, source.clone());
        }
        Ok(self)
    }

    /// Overlays `SAFEGATE_<KEY>` variables from the given environment.
    pub fn env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars: BTreeMap<String, String> = vars.into_iter().collect();
        for (key, _) in KEYS {
            let name = format!("SAFEGATE_{}", key.to_uppercase());
            if let Some(value) = vars.get(&name) {
                self.set(key, value.clone(), Source::Env(name));
            }
        }
        self
    }

    /// Overlays a value given on the command line.
    pub fn flag(mut self, key: &str, value: Option<String>) -> Self {
        if let Some(value) = value {
            self.set(key, value, Source::Flag);
        }
        self
    }

    /// Sets `key` to `value` as a default when no layer has set it (e.g. the demo's
    /// console address, which production leaves unset).
    pub fn default_for(mut self, key: &str, value: &str) -> Self {
        if !self.values.contains_key(key) {
            self.set(key, value.to_owned(), Source::Default);
        }
        self
    }

    fn get(&self, key: &str) -> Option<(&str, &Source)> {
        self.values.get(key).map(|(v, s)| (v.as_str(), s))
    }

    /// Validates every value and derives the unset paths.
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let listen_addr = self.parse("listen_addr", |v| {
            v.parse::<SocketAddr>()
                .map_err(|_| "expected a socket address such as 127.0.0.1:50051".into())
        })?;
        let console_listen_addr = self.optional("console_listen_addr", |v| {
            v.parse::<SocketAddr>()
                .map_err(|_| "expected a socket address such as 127.0.0.1:8443".into())
        })?;
        let data_dir = self.parse("data_dir", non_empty_path)?;
        let database_url = match self.get("database_url") {
            Some(_) => self.parse("database_url", database_url)?,
            None => format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("safegate.db").display()
            ),
        };
        let database_max_connections = self.parse("database_max_connections", |v| {
            bounded(v, 1, 1000).map(|n| n as u32)
        })?;
        let registry = self.parse("registry", non_empty_path)?;
        let policy_dir = self.parse("policy_dir", non_empty_path)?;
        let pki_dir = self
            .optional("pki_dir", non_empty_path)?
            .unwrap_or_else(|| data_dir.join("pki"));
        let tls_cert = self
            .optional("tls_cert", non_empty_path)?
            .unwrap_or_else(|| pki_dir.join("server.pem"));
        let tls_key = self
            .optional("tls_key", non_empty_path)?
            .unwrap_or_else(|| pki_dir.join("server.key"));
        let checkpoint_key = self
            .optional("checkpoint_key", non_empty_path)?
            .unwrap_or_else(|| pki_dir.join("checkpoint.key"));
        let checkpoint_key_previous = self.optional("checkpoint_key_previous", non_empty_path)?;
        let log_origin = self.parse("log_origin", |v| {
            if crate::domain::ledger::note::valid_name(v) {
                Ok(v.to_owned())
            } else {
                Err("expected a name without spaces or `+`, such as county.example/safegate".into())
            }
        })?;
        let witness_policy = self.optional("witness_policy", non_empty_path)?;
        let log_format = self.parse("log_format", |v| match v {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected `pretty` or `json`".into()),
        })?;
        let log_filter = self.parse("log_filter", |v| {
            tracing_subscriber::EnvFilter::try_new(v)
                .map(|_| v.to_owned())
                .map_err(|e| format!("not a tracing filter: {e}"))
        })?;
        let health_interval = self.parse("health_interval_ms", |v| {
            bounded(v, 50, 60_000).map(Duration::from_millis)
        })?;
        let shutdown_grace = self.parse("shutdown_grace_secs", |v| {
            bounded(v, 0, 3600).map(Duration::from_secs)
        })?;
        let break_glass_review_due = self.parse("break_glass_review_days", |v| {
            bounded(v, 1, 365).map(|days| Duration::from_secs(days * 86_400))
        })?;
        Ok(Settings {
            listen_addr,
            console_listen_addr,
            data_dir,
            database_url,
            database_max_connections,
            registry,
            policy_dir,
            pki_dir,
            tls_cert,
            tls_key,
            checkpoint_key,
            checkpoint_key_previous,
            log_origin,
            witness_policy,
            log_format,
            log_filter,
            health_interval,
            shutdown_grace,
            break_glass_review_due,
        })
    }

    fn parse<T>(
        &self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.optional(key, parse)? {
            Some(value) => Ok(value),
            None => Err(ConfigError {
                key: key.to_owned(),
                origin: Source::Default,
                reason: "must be set".into(),
            }),
        }
    }

    fn optional<T>(
        &self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some((value, source)) = self.get(key) else {
            return Ok(None);
        };
        parse(value.trim()).map(Some).map_err(|reason| ConfigError {
            key: key.to_owned(),
            origin: source.clone(),
            reason,
        })
    }
}

fn key_list() -> String {
    KEYS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
}

fn non_empty_path(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(PathBuf::from(value))
    }
}

fn bounded(value: &str, min: u64, max: u64) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from {min} to {max}")),
    }
}

fn database_url(value: &str) -> Result<String, String> {
    if value.starts_with("sqlite:")
        || value.starts_with("postgres://")
        || value.starts_with("postgresql://")
    {
        Ok(value.to_owned())
    } else {
        Err("expected a sqlite: or postgres:// URL".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_work_with_no_file() {
        let settings = Layers::defaults().resolve().expect("defaults resolve");
        assert_eq!(settings.listen_addr.port(), 50051);
        assert_eq!(
            settings.console_listen_addr, None,
            "no console unless asked for"
        );
        assert_eq!(settings.pki_dir, PathBuf::from("safegate-data/pki"));
        assert_eq!(
            settings.tls_cert,
            PathBuf::from("safegate-data/pki/server.pem")
        );
        assert_eq!(
            settings.database_url,
            "sqlite://safegate-data/safegate.db?mode=rwc"
        );
    }

    #[test]
    fn environment_overrides_file_and_flags_override_environment() {
        let dir = std::env::temp_dir().join(format!("safegate-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("safegate.toml");
        std::fs::write(
            &file,
            "listen_addr = \"127.0.0.1:6000\"\nhealth_interval_ms = 500\ndata_dir = \"/srv/sg\"\n",
        )
        .expect("write");
        let layers = Layers::defaults()
            .file(&file)
            .expect("file loads")
            .env(env(&[("SAFEGATE_LISTEN_ADDR", "127.0.0.1:7000")]));
        let settings = layers.clone().resolve().expect("resolves");
        assert_eq!(settings.listen_addr.port(), 7000);
        assert_eq!(settings.health_interval, Duration::from_millis(500));
        assert_eq!(settings.pki_dir, PathBuf::from("/srv/sg/pki"));
        let settings = layers
            .flag("listen_addr", Some("127.0.0.1:8000".into()))
            .resolve()
            .expect("resolves");
        assert_eq!(settings.listen_addr.port(), 8000);
    }

    #[test]
    fn a_bad_value_names_its_key_and_source() {
        let err = Layers::defaults()
            .env(env(&[("SAFEGATE_HEALTH_INTERVAL_MS", "soon")]))
            .resolve()
            .expect_err("rejected");
        assert_eq!(err.key, "health_interval_ms");
        assert_eq!(
            err.origin,
            Source::Env("SAFEGATE_HEALTH_INTERVAL_MS".into())
        );
        let message = err.to_string();
        assert!(message.contains("health_interval_ms"), "{message}");
        assert!(message.contains("SAFEGATE_HEALTH_INTERVAL_MS"), "{message}");
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = std::env::temp_dir().join(format!("safegate-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("safegate.toml");
        std::fs::write(&file, "listen_adr = \"127.0.0.1:1\"\n").expect("write");
        let err = Layers::defaults().file(&file).expect_err("rejected");
        assert_eq!(err.key, "listen_adr");
        assert!(err.reason.contains("listen_addr"), "{}", err.reason);
    }

    #[test]
    fn a_log_origin_must_be_a_valid_key_name() {
        let err = Layers::defaults()
            .flag("log_origin", Some("county council log".into()))
            .resolve()
            .expect_err("rejected");
        assert_eq!(err.key, "log_origin");
        let settings = Layers::defaults()
            .flag("log_origin", Some("county.example/safegate".into()))
            .resolve()
            .expect("resolves");
        assert_eq!(settings.log_origin, "county.example/safegate");
        assert_eq!(settings.witness_policy, None);
    }

    #[test]
    fn database_urls_must_name_a_supported_backend() {
        let err = Layers::defaults()
            .flag("database_url", Some("mysql://localhost/db".into()))
            .resolve()
            .expect_err("rejected");
        assert_eq!(err.key, "database_url");
        assert_eq!(err.origin, Source::Flag);
    }
}
