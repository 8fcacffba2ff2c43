//! Hive's naming rules, reproduced exactly where clients can tell the
//! difference: escaping of partition values in paths and partition names,
//! building and splitting partition names (`k1=v1/k2=v2`), the
//! `get_databases`/`get_tables`/`get_table_meta` name patterns, and the
//! lower-casing of identifiers.
//!
//! Everything here is pure (no I/O, no state). Each function names the Hive
//! source it follows; paths are in apache/hive unless said otherwise. Where
//! this module departs from Hive, the doc comment says so and why.

use std::fmt::Write as _;

use regex::Regex;

/// The value Hive stores, and writes into paths and partition names, for a
/// partition whose value is null or the empty string
/// (`hive.exec.default.partition.name`'s default). [`escape_path_name`]
/// does not substitute it; [`make_part_name`] does, as Hive's does.
pub const DEFAULT_PARTITION_NAME: &str = "__HIVE_DEFAULT_PARTITION__";

/// Why a name could not be built or read. Messages copy Hive's where Hive
/// has one, because they reach clients as `MetaException` messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Keys and values differ in number, or there are no keys
    /// (WarehouseUtils.makePartName).
    #[error("Invalid partition key & values; keys [{keys}], values [{values}]")]
    KeysValuesMismatch {
        /// The keys, each followed by ", " as Hive prints them.
        keys: String,
        /// The values, printed likewise.
        values: String,
    },
    /// A partition spec given for a path has an empty value
    /// (WarehouseUtils.makePartNameUtil); `spec` is printed like a Java map.
    #[error("Partition spec is incorrect. {spec}")]
    IncorrectSpec {
        /// The spec as `{k1=v1, k2=}`.
        spec: String,
    },
    /// An empty partition name (Warehouse.makeSpecFromName).
    #[error("Partition name is invalid. {name}")]
    InvalidPartName {
        /// The name as given.
        name: String,
    },
    /// A partition name with the wrong number of `/`-separated components
    /// (Warehouse.makeValsFromName).
    #[error("Expected {expected} components, got {found} ({name})")]
    ComponentCount {
        /// How many partition keys the table has.
        expected: usize,
        /// How many components the name has.
        found: usize,
        /// The name as given.
        name: String,
    },
    /// A component that is not `key=value` (Warehouse.makeValsFromName).
    #[error("Unexpected component {component}")]
    UnexpectedComponent {
        /// The component as given (still escaped).
        component: String,
    },
    /// A component names another key than the table's key at that position
    /// (inlet's check; Hive's makeValsFromName does not look at keys).
    #[error("Partition name {name} has key {found} where key {expected} was expected")]
    KeyMismatch {
        /// The table's key at that position.
        expected: String,
        /// The key found in the name, unescaped.
        found: String,
        /// The name as given.
        name: String,
    },
    /// A name pattern that is not a regular expression once `*` became `.*`.
    #[error("Invalid name pattern {pattern:?}: {message}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// What the regex compiler said.
        message: String,
    },
}

/// Whether Hive escapes `c` in a path or partition name.
///
/// The set is `charToEscape` in
/// standalone-metastore/metastore-common/src/main/java/org/apache/hadoop/hive/metastore/utils/FileUtils.java
/// (identical in common/src/java/org/apache/hadoop/hive/common/FileUtils.java):
/// U+0000..U+001F, `"`, `#`, `%`, `'`, `*`, `/`, `:`, `=`, `?`, `\`, U+007F,
/// `{`, `[`, `]`, `^`. The copy in `common` adds ` `, `<`, `>` and `|` when
/// Hive runs on Windows; the metastore's copy never does, and neither do we,
/// so names do not depend on the server's operating system. Characters at
/// or above U+0080 are never escaped.
fn needs_escaping(c: char) -> bool {
    matches!(
        c,
        '\u{0}'
            ..='\u{1F}'
                | '"'
                | '#'
                | '%'
                | '\''
                | '*'
                | '/'
                | ':'
                | '='
                | '?'
                | '\\'
                | '\u{7F}'
                | '{'
                | '['
                | ']'
                | '^'
    )
}

/// Escapes a partition key or value for use in a path or partition name:
/// each character Hive escapes becomes `%XX` (two upper-case hex digits),
/// everything else is kept (FileUtils.escapePathName).
///
/// Unlike Hive's, this returns `""` for `""`: substituting
/// [`DEFAULT_PARTITION_NAME`] for a null or empty value is the caller's
/// decision ([`make_part_name`] makes it the way Hive does).
pub fn escape_path_name(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if needs_escaping(c) {
            // Every escaped character is below U+0080, so two digits suffice.
            let _ = write!(out, "%{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverses [`escape_path_name`] the way Hive does
/// (FileUtils.unescapePathName): `%` followed by two characters that
/// `Integer.parseInt(_, 16)` accepts as a non-negative number becomes the
/// character with that code (U+0000..U+00FF); anything else is kept as it
/// is. Like Hive, this accepts lower-case hex digits, decodes `%` + `+F`
/// (parseInt takes a leading plus sign) to U+000F, decodes characters that
/// were never escaped (`%41` is `A`), and decodes each `%XX` to one
/// character, so `%C3%A9` is `Ã©`, not `é`. One difference: Java's parseInt
/// also takes non-ASCII digits (`%٣٣`); this only takes ASCII ones.
pub fn unescape_path_name(path: &str) -> String {
    let chars: Vec<char> = path.chars().collect();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // Hive: `c == '%' && i + 2 < path.length()`.
        if c == '%'
            && i + 2 < chars.len()
            && let Some(code) = parse_hex_pair(chars[i + 1], chars[i + 2])
        {
            out.push(char::from(code));
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// `Integer.parseInt(a + b, 16)` when it succeeds with a non-negative result.
fn parse_hex_pair(a: char, b: char) -> Option<u8> {
    let low = b.to_digit(16)?;
    if a == '+' {
        // "+F": a sign and one digit.
        return u8::try_from(low).ok();
    }
    let high = a.to_digit(16)?;
    u8::try_from(high * 16 + low).ok()
}

/// Java's `String.trim()`: strips every character at or below U+0020 from
/// both ends (not Unicode white space, which Rust's `trim` strips).
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// Hive's identifier normalisation for database, table, column and
/// partition-key names: trimmed as Java trims and lower-cased
/// (StringUtils.normalizeIdentifier in
/// standalone-metastore/metastore-common/src/main/java/org/apache/hadoop/hive/metastore/utils/StringUtils.java).
pub fn normalize_identifier(identifier: &str) -> String {
    java_trim(identifier).to_lowercase()
}

/// `escapePathName` with Hive's default: null or empty becomes
/// [`DEFAULT_PARTITION_NAME`].
fn escape_or_default(s: &str) -> String {
    if s.is_empty() {
        DEFAULT_PARTITION_NAME.to_string()
    } else {
        escape_path_name(s)
    }
}

/// Builds a partition name `k1=v1/k2=v2` from the table's partition keys
/// and one partition's values, as Hive's Warehouse.makePartName(List
/// FieldSchema, List String) does (WarehouseUtils.makePartName and
/// FileUtils.makePartName in standalone-metastore/metastore-common):
/// keys are lower-cased, keys and values escaped, and an empty value (or
/// key) becomes [`DEFAULT_PARTITION_NAME`]. Fails when there are no keys or
/// keys and values differ in number.
pub fn make_part_name(keys: &[&str], values: &[&str]) -> Result<String, NameError> {
    if keys.is_empty() || keys.len() != values.len() {
        return Err(NameError::KeysValuesMismatch {
            keys: keys.iter().map(|k| format!("{k}, ")).collect(),
            values: values.iter().map(|v| format!("{v}, ")).collect(),
        });
    }
    let mut name = String::new();
    for (i, (key, value)) in keys.iter().zip(values).enumerate() {
        if i > 0 {
            name.push('/');
        }
        name.push_str(&escape_or_default(&key.to_lowercase()));
        name.push('=');
        name.push_str(&escape_or_default(value));
    }
    Ok(name)
}

/// Builds the relative directory of a partition from its spec, with a
/// trailing `/` (`ds=2024-01-01/hr=3/`), as Warehouse.makePartPath does
/// (WarehouseUtils.makePartPath): keys keep their case, keys and values are
/// escaped, and an empty value is an error, not the default partition.
pub fn make_part_path(spec: &[(&str, &str)]) -> Result<String, NameError> {
    let mut path = String::new();
    for (key, value) in spec {
        if value.is_empty() {
            let entries: Vec<String> = spec.iter().map(|(k, v)| format!("{k}={v}")).collect();
            return Err(NameError::IncorrectSpec {
                spec: format!("{{{}}}", entries.join(", ")),
            });
        }
        path.push_str(&escape_or_default(key));
        path.push('=');
        path.push_str(&escape_path_name(value));
        path.push('/');
    }
    Ok(path)
}

/// Splits a partition name (or a path ending in partition directories) into
/// unescaped `(key, value)` pairs, in order, as Warehouse.makeSpecFromName
/// does (standalone-metastore/metastore-server/src/main/java/org/apache/hadoop/hive/metastore/Warehouse.java):
///
/// - an empty name is an error;
/// - components that are not `key=value` with both sides non-empty (say
///   `warehouse` or `t.db` in a full path) are skipped, not errors;
/// - a component is split at its last `=` that has something after it,
///   which is what Hive's greedy `([^/]+)=([^/]+)` does (escaped names
///   never contain a raw `=`, so this only matters for hand-made names);
/// - a key given twice keeps its first position and its last value, as
///   Hive's LinkedHashMap does.
///
/// Keys are returned as written (Hive does not lower-case them here).
pub fn parse_part_name(name: &str) -> Result<Vec<(String, String)>, NameError> {
    if name.is_empty() {
        return Err(NameError::InvalidPartName {
            name: name.to_string(),
        });
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for component in name.split('/') {
        let Some((key, value)) = split_component_greedy(component) else {
            continue;
        };
        let key = unescape_path_name(key);
        let value = unescape_path_name(value);
        match pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(pair) => pair.1 = value,
            None => pairs.push((key, value)),
        }
    }
    Ok(pairs)
}

/// `([^/]+)=([^/]+)` matched against one component (which has no `/`).
fn split_component_greedy(component: &str) -> Option<(&str, &str)> {
    component
        .rmatch_indices('=')
        .map(|(pos, _)| pos)
        .find(|&pos| pos > 0 && pos + 1 < component.len())
        .map(|pos| (&component[..pos], &component[pos + 1..]))
}

/// The unescaped values of a partition name, checked against the table's
/// partition keys: one `key=value` component per key, in the keys' order.
///
/// Hive's Warehouse.makeValsFromName checks the number of components and
/// that each has a key (a `=` past its first character), splitting at the
/// first `=`, and errors with the same messages; it does not compare keys.
/// This also requires each component's unescaped key to equal the table's
/// key at that position, ignoring case, so a name for another table or with
/// keys out of order is refused instead of silently misread.
pub fn values_from_part_name(keys: &[&str], name: &str) -> Result<Vec<String>, NameError> {
    // Java's split("/") drops trailing empty strings, keeps leading ones.
    let mut components: Vec<&str> = name.split('/').collect();
    while components.last().is_some_and(|c| c.is_empty()) {
        components.pop();
    }
    if components.len() != keys.len() {
        return Err(NameError::ComponentCount {
            expected: keys.len(),
            found: components.len(),
            name: name.to_string(),
        });
    }
    let mut values = Vec::with_capacity(keys.len());
    for (component, expected) in components.iter().zip(keys) {
        let eq = match component.find('=') {
            Some(eq) if eq > 0 => eq,
            _ => {
                return Err(NameError::UnexpectedComponent {
                    component: component.to_string(),
                });
            }
        };
        let found = unescape_path_name(&component[..eq]);
        if found.to_lowercase() != expected.to_lowercase() {
            return Err(NameError::KeyMismatch {
                expected: expected.to_string(),
                found,
                name: name.to_string(),
            });
        }
        values.push(unescape_path_name(&component[eq + 1..]));
    }
    Ok(values)
}

/// A database or table name pattern as clients send it to `get_databases`,
/// `get_tables`, `get_table_meta` and friends, for example `sales_*|tmp`.
///
/// Hive's ObjectStore (appendPatternCondition/appendCondition and
/// getDatabases in
/// standalone-metastore/metastore-server/src/main/java/org/apache/hadoop/hive/metastore/ObjectStore.java,
/// the same since Hive 2.x) reads a pattern so:
///
/// 1. the pattern is trimmed and split on `|` into alternatives (Java's
///    `split`, so trailing empty alternatives are dropped);
/// 2. each alternative is normalised (trimmed, lower-cased);
/// 3. every `*` becomes `.*` and the result is a Java regular expression,
///    prefixed `(?i)`, that must match the whole name.
///
/// So `*` is any sequence, and the other regex characters keep their regex
/// meaning: `.` is any one character (`db.x` matches `db_x`), `tbl.*`
/// becomes `tbl..*` (it does not match `tbl` itself), `[ab]*` is a class.
/// We follow that literally with the `regex` crate, which reads these the
/// same way; a pattern Java would reject, or that uses Java-only syntax
/// (back-references, look-around), is an [`NameError::InvalidPattern`].
///
/// Departures, all deliberate: newer Hive normalises the whole pattern
/// before splitting, so `a | b` keeps spaces inside alternatives and
/// matches nothing; we trim each alternative, as Hive 2.x and 3.x do.
/// Hive's CachedStore (CacheUtils.matches) reads `?` as one character and
/// `^`/`$` literally; we follow ObjectStore, which is what answers when the
/// cache is off (the default). DataNucleus may turn simple patterns into
/// SQL `LIKE`; for `*`, `.` and literal names both readings agree.
#[derive(Debug, Clone)]
pub struct NamePattern {
    /// `None` matches every name (`*`, as Hive's shortcut for it).
    alternatives: Option<Vec<Regex>>,
}

impl NamePattern {
    /// Reads a pattern; see the type's documentation for the syntax.
    pub fn parse(pattern: &str) -> Result<Self, NameError> {
        if pattern == "*" {
            return Ok(Self::any());
        }
        let mut parts: Vec<&str> = java_trim(pattern).split('|').collect();
        // Java's split: an empty input gives [""], otherwise trailing empty
        // strings are removed (so "|" gives no alternatives at all).
        if !(parts.len() == 1 && parts[0].is_empty()) {
            while parts.last().is_some_and(|p| p.is_empty()) {
                parts.pop();
            }
        }
        let mut alternatives = Vec::with_capacity(parts.len());
        for part in parts {
            let normalized = normalize_identifier(part);
            let regex = format!("(?i)^(?:{})$", normalized.replace('*', ".*"));
            let compiled = Regex::new(&regex).map_err(|e| NameError::InvalidPattern {
                pattern: pattern.to_string(),
                message: e.to_string(),
            })?;
            alternatives.push(compiled);
        }
        Ok(Self {
            alternatives: Some(alternatives),
        })
    }

    /// The pattern that matches every name.
    pub fn any() -> Self {
        Self { alternatives: None }
    }

    /// Whether `name` matches one of the alternatives, as a whole and
    /// ignoring case.
    pub fn matches(&self, name: &str) -> bool {
        match &self.alternatives {
            None => true,
            Some(alternatives) => alternatives.iter().any(|re| re.is_match(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_known_hive_examples() {
        // Expected strings as FileUtils.escapePathName produces them.
        let cases = [
            ("2024-01-01", "2024-01-01"),
            ("a b", "a b"),
            ("a/b", "a%2Fb"),
            ("a:b", "a%3Ab"),
            ("a=b", "a%3Db"),
            ("100%", "100%25"),
            ("x#y?z", "x%23y%3Fz"),
            ("'quoted\"", "%27quoted%22"),
            ("back\\slash", "back%5Cslash"),
            ("star*", "star%2A"),
            ("{[^]}", "%7B%5B%5E%5D}"), // '}' is not in the set
            ("tab\there", "tab%09here"),
            ("nl\n", "nl%0A"),
            ("\u{7F}", "%7F"),
            ("\u{0}", "%00"),
            // Not escaped: Windows-only characters, other punctuation, non-ASCII.
            ("<>|", "<>|"),
            (
                "a-b_c.d,e;f!g@h$i&j(k)l+m~n`o",
                "a-b_c.d,e;f!g@h$i&j(k)l+m~n`o",
            ),
            ("é中😀", "é中😀"),
            ("\u{80}\u{FF}", "\u{80}\u{FF}"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(escape_path_name(input), expected, "escape {input:?}");
            assert_eq!(unescape_path_name(expected), input, "unescape {expected:?}");
        }
    }

    #[test]
    fn escaped_set_is_exactly_hives() {
        let escaped: String = (0u8..=127)
            .map(char::from)
            .filter(|&c| needs_escaping(c))
            .filter(|&c| c >= ' ')
            .collect();
        assert_eq!(escaped, "\"#%'*/:=?[\\]^{\u{7F}");
        assert!((0u8..0x20).all(|b| needs_escaping(char::from(b))));
    }

    #[test]
    fn every_byte_value_round_trips() {
        for b in 0u8..=255 {
            let c = char::from(b);
            let s = format!("a{c}b");
            let escaped = escape_path_name(&s);
            assert_eq!(unescape_path_name(&escaped), s, "byte {b:#04x}");
            if needs_escaping(c) {
                assert_eq!(escaped, format!("a%{b:02X}b"));
            } else {
                assert_eq!(escaped, s);
            }
            // Escaped text never contains the separators of a name.
            assert!(!escaped[1..escaped.len() - 1].contains(['/', '=']));
        }
        let all: String = (0u8..=255).map(char::from).collect();
        assert_eq!(unescape_path_name(&escape_path_name(&all)), all);
    }

    #[test]
    fn unescape_matches_hives_quirks() {
        let cases = [
            ("%2f", "/"),     // lower-case hex accepted
            ("%41", "A"),     // never-escaped characters still decode
            ("%C3%A9", "Ã©"), // one character per %XX, not UTF-8
            ("%+F", "\u{F}"), // Integer.parseInt accepts "+F"
            ("%-1", "%-1"),   // negative: kept
            ("%zz", "%zz"),   // not hex: kept
            ("%4", "%4"),     // too short: kept
            ("%", "%"),       // too short: kept
            ("a%", "a%"),     // too short: kept
            ("%%41", "%A"),   // "%%4" is not hex, then "%41"
            ("%252F", "%2F"), // decoded once only
            ("%2F%2", "/%2"), // the tail is too short
        ];
        for (input, expected) in cases {
            assert_eq!(unescape_path_name(input), expected, "unescape {input:?}");
        }
    }

    #[test]
    fn part_names() {
        let cases: &[(&[&str], &[&str], &str)] = &[
            (&["ds"], &["2024-01-01"], "ds=2024-01-01"),
            (&["ds", "hr"], &["2024-01-01", "3"], "ds=2024-01-01/hr=3"),
            (&["DS", "Hr"], &["X", "y"], "ds=X/hr=y"), // keys lower-cased, values not
            (&["p"], &["a/b=c"], "p=a%2Fb%3Dc"),
            (&["p"], &[""], "p=__HIVE_DEFAULT_PARTITION__"),
            (&["p:1"], &["v"], "p%3A1=v"),
        ];
        for (keys, values, expected) in cases {
            assert_eq!(make_part_name(keys, values).unwrap(), *expected);
            let parsed = parse_part_name(expected).unwrap();
            let lowered: Vec<String> = keys.iter().map(|k| k.to_lowercase()).collect();
            let back_keys: Vec<&str> = parsed.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(back_keys, lowered);
            let expected_values: Vec<&str> = values
                .iter()
                .map(|v| {
                    if v.is_empty() {
                        DEFAULT_PARTITION_NAME
                    } else {
                        v
                    }
                })
                .collect();
            let back_values: Vec<&str> = parsed.iter().map(|(_, v)| v.as_str()).collect();
            assert_eq!(back_values, expected_values);
            let key_refs: Vec<&str> = lowered.iter().map(String::as_str).collect();
            assert_eq!(
                values_from_part_name(&key_refs, expected).unwrap(),
                expected_values
            );
        }
    }

    #[test]
    fn part_name_errors_copy_hive() {
        assert_eq!(
            make_part_name(&["a", "b"], &["1"]).unwrap_err().to_string(),
            "Invalid partition key & values; keys [a, b, ], values [1, ]"
        );
        assert_eq!(
            make_part_name(&[], &[]).unwrap_err().to_string(),
            "Invalid partition key & values; keys [], values []"
        );
        assert_eq!(
            parse_part_name("").unwrap_err().to_string(),
            "Partition name is invalid. "
        );
        assert_eq!(
            values_from_part_name(&["ds", "hr"], "ds=1")
                .unwrap_err()
                .to_string(),
            "Expected 2 components, got 1 (ds=1)"
        );
        assert_eq!(
            values_from_part_name(&["ds"], "=1")
                .unwrap_err()
                .to_string(),
            "Unexpected component =1"
        );
        assert_eq!(
            values_from_part_name(&["ds"], "ds")
                .unwrap_err()
                .to_string(),
            "Unexpected component ds"
        );
        assert_eq!(
            values_from_part_name(&["ds", "hr"], "hr=1/ds=2").unwrap_err(),
            NameError::KeyMismatch {
                expected: "ds".into(),
                found: "hr".into(),
                name: "hr=1/ds=2".into()
            }
        );
    }

    #[test]
    fn values_from_part_name_cases() {
        let keys = ["ds", "hr"];
        // Key case is ignored; values are unescaped; split at the first '='.
        assert_eq!(
            values_from_part_name(&keys, "DS=2024%2F01/hr=a=b").unwrap(),
            vec!["2024/01", "a=b"]
        );
        // A trailing '/' is dropped (Java split), empty values are kept.
        assert_eq!(
            values_from_part_name(&keys, "ds=1/hr=/").unwrap(),
            vec!["1", ""]
        );
        // A leading '/' makes an empty first component.
        assert!(matches!(
            values_from_part_name(&keys, "/ds=1/hr=2"),
            Err(NameError::ComponentCount { found: 3, .. })
        ));
    }

    #[test]
    fn parse_part_name_follows_make_spec_from_name() {
        let pairs = |name: &str| parse_part_name(name).unwrap();
        let owned = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, w)| (k.to_string(), w.to_string()))
                .collect()
        };
        // Full paths: components without '=' are skipped.
        assert_eq!(
            pairs("/warehouse/db.db/t/ds=1/hr=2"),
            owned(&[("ds", "1"), ("hr", "2")])
        );
        assert_eq!(pairs("ds=1//hr=2/"), owned(&[("ds", "1"), ("hr", "2")]));
        // Greedy split at the last '=' that has a value after it.
        assert_eq!(pairs("a=b=c"), owned(&[("a=b", "c")]));
        assert_eq!(pairs("a=b="), owned(&[("a", "b=")]));
        assert_eq!(pairs("=a/b=/c"), owned(&[]));
        // Keys keep their case; duplicates keep the first position, last value.
        assert_eq!(pairs("DS=1/hr=2/DS=3"), owned(&[("DS", "3"), ("hr", "2")]));
        assert_eq!(
            pairs("p=__HIVE_DEFAULT_PARTITION__"),
            owned(&[("p", DEFAULT_PARTITION_NAME)])
        );
    }

    #[test]
    fn part_paths() {
        assert_eq!(
            make_part_path(&[("ds", "1"), ("Hr", "a/b")]).unwrap(),
            "ds=1/Hr=a%2Fb/"
        );
        assert_eq!(make_part_path(&[]).unwrap(), "");
        assert_eq!(
            make_part_path(&[("ds", ""), ("hr", "1")])
                .unwrap_err()
                .to_string(),
            "Partition spec is incorrect. {ds=, hr=1}"
        );
    }

    #[test]
    fn identifiers() {
        assert_eq!(normalize_identifier("  Sales_DB\t"), "sales_db");
        assert_eq!(normalize_identifier("\u{1}x\u{1F}"), "x");
        // Java's trim leaves non-ASCII white space alone.
        assert_eq!(normalize_identifier("\u{A0}X"), "\u{A0}x");
        assert_eq!(normalize_identifier("ÉTÉ"), "été");
    }

    #[test]
    fn name_patterns() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("*", &["", "anything", "A.B"], &[]),
            (
                "sales",
                &["sales", "SALES", "Sales"],
                &["sales2", "xsales", "sale"],
            ),
            ("sales*", &["sales", "sales_2024"], &["presales"]),
            ("*_tmp", &["a_tmp", "_tmp"], &["a_tmpx"]),
            ("a*|b*", &["alpha", "beta"], &["gamma"]),
            ("a | b", &["a", "b"], &["a ", " b"]),
            ("  Web_Logs  ", &["web_logs"], &["web_logs  "]),
            // '.' keeps its regex meaning, as in Hive.
            ("db.x", &["db.x", "db_x"], &["dbx"]),
            ("tbl.*", &["tbl1", "tbl.x"], &["tbl"]),
            ("t[12]", &["t1", "t2"], &["t3", "t[12]"]),
            // Java's split drops trailing empty alternatives but keeps inner ones.
            ("a||b", &["a", "b", ""], &["c"]),
            ("a|", &["a"], &[""]),
            ("", &[""], &["a"]),
            ("|", &[], &["", "a"]),
        ];
        for (pattern, yes, no) in cases {
            let p = NamePattern::parse(pattern).unwrap();
            for name in *yes {
                assert!(p.matches(name), "{pattern:?} should match {name:?}");
            }
            for name in *no {
                assert!(!p.matches(name), "{pattern:?} should not match {name:?}");
            }
        }
        assert!(NamePattern::any().matches("x"));
        for bad in ["a(", "+*", "a[b"] {
            assert!(
                matches!(
                    NamePattern::parse(bad),
                    Err(NameError::InvalidPattern { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
