//! Pond paths: `/`-separated, absolute within the pond, validated once on entry.

use crate::error::{Result, StoreError};
use std::fmt;

/// A validated absolute pond path such as `/logs/hl/20250310/11`; `/` is the root.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PondPath {
    /// Components without separators; empty for the root.
    parts: Vec<String>,
}

impl PondPath {
    /// The root directory.
    pub fn root() -> Self {
        Self { parts: Vec::new() }
    }

    /// Parses `text`; a leading `/` is optional. Rejects empty components, `.`, `..` and NUL.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |reason| StoreError::InvalidPath {
            path: text.to_string(),
            reason,
        };
        if text.is_empty() {
            return Err(invalid("empty path"));
        }
        if text.contains('\0') {
            return Err(invalid("contains a NUL byte"));
        }
        let body = text.strip_prefix('/').unwrap_or(text);
        if body.is_empty() {
            return Ok(Self::root());
        }
        let mut parts = Vec::new();
        for part in body.split('/') {
            match part {
                "" => return Err(invalid("empty component (`//` or a trailing `/`)")),
                "." => return Err(invalid("`.` components are not allowed")),
                ".." => return Err(invalid("`..` components are not allowed")),
                _ => parts.push(part.to_string()),
            }
        }
        Ok(Self { parts })
    }

    /// The components, root first.
    pub fn components(&self) -> &[String] {
        &self.parts
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        self.parts.is_empty()
    }

    /// The last component; `None` for the root.
    pub fn name(&self) -> Option<&str> {
        self.parts.last().map(String::as_str)
    }

    /// The containing directory; `None` for the root.
    pub fn parent(&self) -> Option<PondPath> {
        let (_, head) = self.parts.split_last()?;
        Some(Self {
            parts: head.to_vec(),
        })
    }

    /// This path with one more component, validated like any other.
    pub fn join(&self, name: &str) -> Result<PondPath> {
        let joined = PondPath::parse(name)?;
        let mut parts = self.parts.clone();
        parts.extend(joined.parts);
        Ok(Self { parts })
    }

    /// True when `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &PondPath) -> bool {
        self.parts.starts_with(&other.parts)
    }
}

impl fmt::Display for PondPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.parts.is_empty() {
            return f.write_str("/");
        }
        for part in &self.parts {
            write!(f, "/{part}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for PondPath {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_and_displays_normalised_paths() {
        assert_eq!(PondPath::parse("/").unwrap().to_string(), "/");
        assert_eq!(PondPath::parse("a/b").unwrap().to_string(), "/a/b");
        assert_eq!(
            PondPath::parse("/logs/hl/20250310/11")
                .unwrap()
                .components()
                .len(),
            4
        );
        let path = PondPath::parse("/a/b/c").unwrap();
        assert_eq!(path.parent().unwrap().to_string(), "/a/b");
        assert_eq!(path.name(), Some("c"));
        assert!(path.starts_with(&PondPath::parse("/a").unwrap()));
    }

    #[test]
    fn rejects_dot_dot_empty_components_and_nul() {
        for bad in ["", "/a/../b", "a//b", "/a/", "/a/./b", "a\0b"] {
            assert!(PondPath::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
