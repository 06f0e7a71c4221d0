//! Factory config text: `${env:...}` expansion and typed YAML parsing with located errors.
//!
//! The raw text is what `pond mknod` stores, so a secret written as `${env:VAR}` never lands in
//! the pond expanded. Expansion happens on the text before YAML parsing, so error positions
//! still point at the lines the operator wrote; quote a placeholder whose value may contain YAML
//! syntax (`uri: "${env:MONGODB_URI}"`).

use serde::de::DeserializeOwned;

/// A config problem, always naming where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{source_name}: line {line}: environment variable {var} is not set (write ${{env:{var}:-default}} for a default)"
    )]
    UnsetVar {
        source_name: String,
        line: usize,
        var: String,
    },
    #[error("{source_name}: line {line}: {reason}")]
    BadSubstitution {
        source_name: String,
        line: usize,
        reason: String,
    },
    #[error("{source_name}: {message}")]
    Yaml {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: {field}: {reason}")]
    Invalid {
        source_name: String,
        field: String,
        reason: String,
    },
}

/// Parses a duration such as `30d`, `12h`, `90min`, `45s` or `1h 30m` (humantime's syntax);
/// `field` and `source_name` name it in the error.
pub fn parse_duration(
    text: &str,
    field: &str,
    source_name: &str,
) -> Result<std::time::Duration, ConfigError> {
    humantime::parse_duration(text.trim()).map_err(|e| ConfigError::Invalid {
        source_name: source_name.to_string(),
        field: field.to_string(),
        reason: format!("{text:?} is not a duration such as 30d, 12h or 90min: {e}"),
    })
}

/// Expands `${env:VAR}` and `${env:VAR:-default}` with `lookup`; `$$` is a literal `$`, and any
/// other `$` is kept as written.
pub fn expand_env(
    text: &str,
    source_name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // The line of the `$` that starts `from` (a suffix of `text`).
    let line_of = |from: &str| text[..text.len() - from.len()].matches('\n').count() + 1;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let line = line_of(&rest[at..]);
            let bad = |reason: String| ConfigError::BadSubstitution {
                source_name: source_name.to_string(),
                line,
                reason,
            };
            let end = body
                .find('}')
                .filter(|&end| !body[..end].contains('\n'))
                .ok_or_else(|| bad("`${` without a closing `}`".to_string()))?;
            let inner = &body[..end];
            let spec = inner.strip_prefix("env:").ok_or_else(|| {
                bad(format!(
                    "unknown substitution `${{{inner}}}`: only ${{env:VAR}} is supported"
                ))
            })?;
            let (var, default) = match spec.split_once(":-") {
                Some((var, default)) => (var, Some(default)),
                None => (spec, None),
            };
            if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(bad(format!("`{var}` is not an environment variable name")));
            }
            match (lookup(var), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(ConfigError::UnsetVar {
                        source_name: source_name.to_string(),
                        line,
                        var: var.to_string(),
                    });
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses expanded config text into `T`, naming the source, line and column of any error.
/// `T` should use `#[serde(deny_unknown_fields)]`.
pub fn parse_yaml<T: DeserializeOwned>(text: &str, source_name: &str) -> Result<T, ConfigError> {
    serde_yaml_ng::from_str(text).map_err(|e| {
        let message = match e.location() {
            Some(loc) if !e.to_string().contains("line ") => {
                format!("line {} column {}: {e}", loc.line(), loc.column())
            }
            _ => e.to_string(),
        };
        ConfigError::Yaml {
            source_name: source_name.to_string(),
            message,
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(var: &str) -> Option<String> {
        match var {
            "URI" => Some("mongodb://h:1/?a=b".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_defaults_and_dollar_escapes() {
        let out = expand_env(
            "uri: ${env:URI}\nx: ${env:NOPE:-fallback}\ncost: $$5 and $HOME\ne: '${env:EMPTY}'",
            "cfg.yaml",
            &env,
        )
        .unwrap();
        assert_eq!(
            out,
            "uri: mongodb://h:1/?a=b\nx: fallback\ncost: $5 and $HOME\ne: ''"
        );
    }

    #[test]
    fn unset_variable_without_default_names_variable_and_line() {
        let err = expand_env("a: 1\nb: ${env:MISSING}\n", "cfg.yaml", &env).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("cfg.yaml: line 2"), "{text}");
        assert!(text.contains("MISSING"), "{text}");
    }

    #[test]
    fn malformed_substitutions_are_errors() {
        for bad in ["${env:A", "${home}", "${env:}", "${env:A B}"] {
            assert!(expand_env(bad, "c", &env).is_err(), "{bad}");
        }
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
    }

    #[test]
    fn yaml_errors_name_source_field_and_line() {
        let err = parse_yaml::<Sample>("name: a\nnmae: b\n", "cfg.yaml").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("cfg.yaml: "), "{text}");
        assert!(text.contains("nmae"), "{text}");
        assert!(text.contains("line 2"), "{text}");
    }
}
