//! Lexical rules of the Prometheus text exposition format (version 0.0.4).
//!
//! Which metric and label names are valid, how label values and HELP text are escaped, and how
//! sample values are spelled. Everything here appends to a `String` so that rendering a whole
//! registry builds one buffer without intermediate allocations.

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(crate) fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, minus the `__` prefix that Prometheus reserves for itself.
pub(crate) fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && chars
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Label values escape backslash, double quote and line feed.
pub(crate) fn push_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
}

/// HELP text escapes backslash and line feed (a double quote stays as it is).
pub(crate) fn push_help(out: &mut String, help: &str) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
}

/// A float sample value or bucket bound: the shortest decimal that reads back to the same
/// `f64` (never an exponent), with the format's spellings of the non-finite values.
pub(crate) fn push_float(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        out.push_str(&value.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_follow_the_data_model() {
        for valid in ["a", "pond_lines_total", "_x", "ns:rate5m", "A9"] {
            assert!(is_metric_name(valid), "{valid}");
        }
        for invalid in ["", "9a", "a-b", "a b", "é", "a.b"] {
            assert!(!is_metric_name(invalid), "{invalid}");
        }
    }

    #[test]
    fn label_names_follow_the_data_model() {
        for valid in ["a", "factory", "_x", "le", "A9"] {
            assert!(is_label_name(valid), "{valid}");
        }
        for invalid in ["", "9a", "a:b", "a-b", "__name__", "__x"] {
            assert!(!is_label_name(invalid), "{invalid}");
        }
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        let mut out = String::new();
        push_label_value(&mut out, "C:\\logs\\\"a\"\nb\tc");
        assert_eq!(out, r#"C:\\logs\\\"a\"\nb	c"#);
    }

    #[test]
    fn help_escapes_backslash_and_newline_but_not_quotes() {
        let mut out = String::new();
        push_help(&mut out, "a \"b\"\\c\nd");
        assert_eq!(out, r#"a "b"\\c\nd"#);
    }

    #[test]
    fn floats_use_shortest_decimal_and_prometheus_spellings() {
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (0.005, "0.005"),
            (2.5, "2.5"),
            (-3.25, "-3.25"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1000000000000000000000"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for (value, expected) in cases {
            let mut out = String::new();
            push_float(&mut out, value);
            assert_eq!(out, expected, "{value:?}");
        }
    }
}
