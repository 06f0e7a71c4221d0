//! The `logfile` config: one log source per node, validated once into [`Settings`].

use globset::{GlobBuilder, GlobMatcher};
use pond_factory::ConfigError;
use pond_store::PondPath;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The config file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name of the source, used in summaries and logs.
    pub name: String,
    /// Absolute glob of the immutable archives, e.g. `/var/log/app-*.json` (optional).
    #[serde(default)]
    pub archived_pattern: Option<String>,
    /// Absolute glob of the append-only active file(s), e.g. `/var/log/app.json` or
    /// `/home/hl/data/node_trades/hourly/*/*`.
    pub active_pattern: String,
    /// Pond directory the mirrored files go to (created when missing).
    pub pond_path: String,
    /// How a grown file's old bytes are checked before new ones are appended: `sample` (the
    /// first block, the block holding the old end and two sampled blocks, against the stored
    /// outboard; bounded cost) or `full` (re-hash the whole old prefix).
    #[serde(default)]
    pub verify: VerifyMode,
    /// What to do when the active file was truncated or rewritten and no archive holds its old
    /// bytes: `keep` (default: keep the old node as `NAME@TXN`, store the new content as a new
    /// node, warn) or `fail` (an error that changes nothing).
    #[serde(default)]
    pub on_truncate: OnTruncate,
    /// Factory nodes to run after each committed sync (e.g. a `mongo` node).
    #[serde(default)]
    pub downstream: Vec<String>,
    /// How long to keep a mirrored file once its host file is gone, e.g. `30d` (unset, the
    /// default: keep everything). A file is removed only when every factory node of the pond
    /// has read all of it; `pond maintain` (and `follow`'s periodic maintenance) removes it in
    /// a recorded transaction and then frees its space.
    #[serde(default)]
    pub retain: Option<String>,
    /// How `follow` notices changes (see [`FollowConfig`]).
    #[serde(default)]
    pub follow: FollowConfig,
}

/// The `follow:` section: how the long-running `follow` command notices host changes.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FollowConfig {
    /// Seconds between scans when polling instead of watching (for NFS and other file systems
    /// without change events); unset (the default) watches with inotify.
    pub poll_interval: Option<f64>,
    /// Seconds between reconcile scans while watching, so a missed event delays a change by at
    /// most this much (default 5).
    pub rescan_interval: f64,
    /// Seconds to wait after a change event before syncing, so one step takes a burst of writes
    /// together (default 0.01).
    pub settle: f64,
    /// Least seconds from the start of one step to the start of the next (default 0.1): under a
    /// steady stream of writes this bounds the transactions per second (each one a catalog
    /// row per changed file) at the cost of at most this much latency.
    pub min_interval: f64,
    /// Seconds between periodic maintenance passes (default 60; 0 turns it off): compaction
    /// of what changed (re-framing the many small versions that frequent steps make), folding
    /// of old history, removal of retired data, and this node's retention.
    pub compact_interval: f64,
}

impl Default for FollowConfig {
    fn default() -> Self {
        Self {
            poll_interval: None,
            rescan_interval: 5.0,
            settle: 0.01,
            min_interval: 0.1,
            compact_interval: 60.0,
        }
    }
}

/// [`FollowConfig`] validated into durations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follow {
    pub poll_interval: Option<Duration>,
    pub rescan_interval: Duration,
    pub settle: Duration,
    pub min_interval: Duration,
    pub compact_interval: Option<Duration>,
}

impl FollowConfig {
    fn validate(&self, source_name: &str) -> Result<Follow, ConfigError> {
        let seconds = |field: &str, value: f64, min: f64| {
            if value.is_finite() && value >= min && value <= 86_400.0 {
                Ok(Duration::from_secs_f64(value))
            } else {
                Err(ConfigError::Invalid {
                    source_name: source_name.to_string(),
                    field: format!("follow.{field}"),
                    reason: format!("{value} is not a number of seconds from {min} to 86400"),
                })
            }
        };
        Ok(Follow {
            poll_interval: self
                .poll_interval
                .map(|p| seconds("poll_interval", p, 0.01))
                .transpose()?,
            rescan_interval: seconds("rescan_interval", self.rescan_interval, 0.1)?,
            settle: seconds("settle", self.settle, 0.0)?,
            min_interval: seconds("min_interval", self.min_interval, 0.0)?,
            compact_interval: Some(seconds("compact_interval", self.compact_interval, 0.0)?)
                .filter(|d| !d.is_zero()),
        })
    }
}

/// See [`Config::verify`].
#[derive(Debug, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    #[default]
    Sample,
    Full,
}

/// See [`Config::on_truncate`].
#[derive(Debug, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnTruncate {
    #[default]
    Keep,
    Fail,
}

/// A host glob split into its fixed base directory and the pattern below it.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub text: String,
    /// The longest leading directory without glob characters.
    pub base: PathBuf,
    /// Matches paths relative to `base`, `/`-separated.
    pub matcher: GlobMatcher,
    /// How many components below `base` a match has; `None` when the pattern has `**`.
    pub depth: Option<usize>,
}

const GLOB_CHARS: &[char] = &['*', '?', '[', '{'];

impl Pattern {
    /// Parses an absolute host glob; `field` names it in errors.
    pub fn parse(text: &str, field: &str, source_name: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            source_name: source_name.to_string(),
            field: field.to_string(),
            reason,
        };
        if !text.starts_with('/') {
            return Err(invalid(format!("{text:?} is not an absolute path")));
        }
        let parts: Vec<&str> = text.trim_start_matches('/').split('/').collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
        {
            return Err(invalid(format!(
                "{text:?} has an empty, `.` or `..` component"
            )));
        }
        let fixed = parts
            .iter()
            .take_while(|p| !p.contains(GLOB_CHARS))
            .count()
            .min(parts.len() - 1);
        let base = PathBuf::from(format!("/{}", parts[..fixed].join("/")));
        let relative = parts[fixed..].join("/");
        let matcher = GlobBuilder::new(&relative)
            .literal_separator(true)
            .build()
            .map_err(|e| invalid(format!("{text:?} is not a valid glob: {e}")))?
            .compile_matcher();
        let depth = (!relative.contains("**")).then(|| parts.len() - fixed);
        Ok(Self {
            text: text.to_string(),
            base,
            matcher,
            depth,
        })
    }

    /// The mirrored name of `path` (relative to the base), if the pattern matches it.
    pub fn name_of(&self, path: &Path) -> Option<String> {
        let relative = path.strip_prefix(&self.base).ok()?;
        let name = relative.to_str()?.to_string();
        self.matcher.is_match(&name).then_some(name)
    }
}

/// A validated config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: String,
    pub active: Pattern,
    pub archived: Option<Pattern>,
    pub pond_path: PondPath,
    pub verify: VerifyMode,
    pub on_truncate: OnTruncate,
    pub downstream: Vec<String>,
    pub follow: Follow,
    pub retain: Option<Duration>,
}

impl Settings {
    /// Validates `config`.
    pub fn from_config(config: &Config, source_name: &str) -> Result<Self, ConfigError> {
        let invalid = |field: &str, reason: String| ConfigError::Invalid {
            source_name: source_name.to_string(),
            field: field.to_string(),
            reason,
        };
        if config.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty".to_string()));
        }
        let active = Pattern::parse(&config.active_pattern, "active_pattern", source_name)?;
        let archived = config
            .archived_pattern
            .as_deref()
            .map(|p| Pattern::parse(p, "archived_pattern", source_name))
            .transpose()?;
        if archived.as_ref().is_some_and(|a| a.text == active.text) {
            return Err(invalid(
                "archived_pattern",
                "is the same as active_pattern".to_string(),
            ));
        }
        let pond_path =
            PondPath::parse(&config.pond_path).map_err(|e| invalid("pond_path", e.to_string()))?;
        for target in &config.downstream {
            PondPath::parse(target).map_err(|e| invalid("downstream", e.to_string()))?;
        }
        Ok(Self {
            name: config.name.clone(),
            active,
            archived,
            pond_path,
            verify: config.verify,
            on_truncate: config.on_truncate,
            downstream: config.downstream.clone(),
            follow: config.follow.validate(source_name)?,
            retain: config
                .retain
                .as_deref()
                .map(|text| pond_factory::config::parse_duration(text, "retain", source_name))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flat_pattern_base_is_the_parent_directory() {
        let p = Pattern::parse("/var/log/casparwater-*.json", "f", "c").unwrap();
        assert_eq!(p.base, PathBuf::from("/var/log"));
        assert_eq!(
            p.name_of(Path::new(
                "/var/log/casparwater-2025-10-20T08-18-50.905.json"
            )),
            Some("casparwater-2025-10-20T08-18-50.905.json".to_string())
        );
        assert_eq!(p.name_of(Path::new("/var/log/other.json")), None);
        let literal = Pattern::parse("/var/log/casparwater.json", "f", "c").unwrap();
        assert_eq!(literal.base, PathBuf::from("/var/log"));
        assert_eq!(literal.depth, Some(1));
    }

    #[test]
    fn node_layout_names_are_nested() {
        let p = Pattern::parse("/home/hl/data/node_trades/hourly/*/*", "f", "c").unwrap();
        assert_eq!(p.base, PathBuf::from("/home/hl/data/node_trades/hourly"));
        assert_eq!(p.depth, Some(2));
        assert_eq!(
            p.name_of(Path::new("/home/hl/data/node_trades/hourly/20250310/11")),
            Some("20250310/11".to_string())
        );
    }

    #[test]
    fn relative_or_malformed_patterns_are_rejected() {
        assert!(Pattern::parse("var/log/x", "active_pattern", "c").is_err());
        assert!(Pattern::parse("/var/../x", "active_pattern", "c").is_err());
        let err = Pattern::parse("/var/log/[x", "active_pattern", "cfg.yaml").unwrap_err();
        assert!(
            err.to_string().contains("cfg.yaml: active_pattern"),
            "{err}"
        );
    }
}
