//! Structural validation of a configuration tree against the JSON Schema that
//! `schemars` derives from the typed config structs.
//!
//! serde stops at the first error; this walk reports every unknown key, wrong
//! type and missing field in one pass, each with its key path. It implements
//! the subset of JSON Schema that `schemars` emits for inlet's structs
//! (objects, arrays, `$ref`, `enum`/`const`, `oneOf`/`anyOf` for enums and
//! options, integer bounds); the typed deserialisation that follows remains
//! the authority on anything this walk does not cover.

use serde_json::{Map, Value as Json};

use crate::yaml::PathSegment;

/// A structural problem found at `path`. `at_key` says whether the error is
/// best shown at the key (unknown field) rather than at its value.
#[derive(Debug, Clone)]
pub struct SchemaViolation {
    pub path: Vec<PathSegment>,
    pub at_key: bool,
    pub message: String,
}

pub fn check(root_schema: &Json, value: &Json) -> Vec<SchemaViolation> {
    let mut walker = Walker { root: root_schema, out: Vec::new() };
    walker.check(root_schema, value, &mut Vec::new());
    walker.out
}

struct Walker<'a> {
    root: &'a Json,
    out: Vec<SchemaViolation>,
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "a map",
    }
}

fn short(v: &Json) -> String {
    let s = v.to_string();
    if s.len() > 40 { format!("{}...", &s[..37]) } else { s }
}

impl<'a> Walker<'a> {
    fn resolve(&self, schema: &'a Json) -> &'a Json {
        let mut s = schema;
        for _ in 0..32 {
            match s.get("$ref").and_then(Json::as_str) {
                Some(r) => {
                    let ptr = r.trim_start_matches('#');
                    match self.root.pointer(ptr) {
                        Some(target) => s = target,
                        None => return s,
                    }
                }
                None => return s,
            }
        }
        s
    }

    fn push(&mut self, path: &[PathSegment], at_key: bool, message: String) {
        self.out.push(SchemaViolation { path: path.to_vec(), at_key, message });
    }

    /// Returns true when `value` satisfies `schema`, recording violations.
    fn check(&mut self, schema: &'a Json, value: &Json, path: &mut Vec<PathSegment>) -> bool {
        let schema = self.resolve(schema);
        let Some(obj) = schema.as_object() else { return true };
        if let Some(Json::Bool(false)) = Some(schema) {
            self.push(path, false, "no value is allowed here".into());
            return false;
        }
        if let Some(alts) = obj.get("oneOf").or_else(|| obj.get("anyOf")).and_then(Json::as_array) {
            return self.check_alternatives(alts, value, path);
        }
        if let Some(allowed) = obj.get("enum").and_then(Json::as_array) {
            if !allowed.contains(value) {
                let names: Vec<String> = allowed.iter().map(|a| match a {
                    Json::String(s) => format!("`{s}`"),
                    other => other.to_string(),
                }).collect();
                self.push(path, false, format!("unknown variant {}, expected one of {}", short(value), names.join(", ")));
                return false;
            }
            return true;
        }
        if let Some(c) = obj.get("const") {
            if c != value {
                self.push(path, false, format!("expected {}, found {}", short(c), short(value)));
                return false;
            }
            return true;
        }
        if let Some(types) = obj.get("type") {
            let types: Vec<&str> = match types {
                Json::String(s) => vec![s.as_str()],
                Json::Array(a) => a.iter().filter_map(Json::as_str).collect(),
                _ => vec![],
            };
            let matches = types.iter().any(|t| match (*t, value) {
                ("null", Json::Null) => true,
                ("boolean", Json::Bool(_)) => true,
                ("integer", Json::Number(n)) => n.is_i64() || n.is_u64(),
                ("number", Json::Number(_)) => true,
                ("string", Json::String(_)) => true,
                ("array", Json::Array(_)) => true,
                ("object", Json::Object(_)) => true,
                _ => false,
            });
            if !matches && !types.is_empty() {
                let want: Vec<String> = types.iter().filter(|t| **t != "null").map(|t| match *t {
                    "integer" => "an integer".to_string(),
                    "number" => "a number".to_string(),
                    "string" => "a string".to_string(),
                    "boolean" => "a boolean".to_string(),
                    "array" => "a list".to_string(),
                    "object" => "a map".to_string(),
                    other => other.to_string(),
                }).collect();
                let found = match value {
                    Json::Null => "nothing (null)".to_string(),
                    Json::String(_) | Json::Number(_) | Json::Bool(_) => format!("{} {}", type_name(value), short(value)),
                    _ => type_name(value).to_string(),
                };
                self.push(path, false, format!("expected {}, found {found}", want.join(" or ")));
                return false;
            }
        }
        let mut ok = true;
        match value {
            Json::Number(n) => {
                if let (Some(min), Some(v)) = (obj.get("minimum").and_then(Json::as_f64), n.as_f64()) {
                    if v < min {
                        self.push(path, false, format!("must be at least {min}, found {n}"));
                        ok = false;
                    }
                }
                if let (Some(max), Some(v)) = (obj.get("maximum").and_then(Json::as_f64), n.as_f64()) {
                    if v > max {
                        self.push(path, false, format!("must be at most {max}, found {n}"));
                        ok = false;
                    }
                }
            }
            Json::Array(items) => {
                if let Some(item_schema) = obj.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        path.push(PathSegment::Index(i));
                        ok &= self.check(item_schema, item, path);
                        path.pop();
                    }
                }
            }
            Json::Object(map) => ok &= self.check_object(obj, map, path),
            _ => {}
        }
        ok
    }

    fn check_object(&mut self, obj: &'a Map<String, Json>, map: &Map<String, Json>, path: &mut Vec<PathSegment>) -> bool {
        let mut ok = true;
        let props = obj.get("properties").and_then(Json::as_object);
        let additional = obj.get("additionalProperties");
        if let Some(required) = obj.get("required").and_then(Json::as_array) {
            for r in required.iter().filter_map(Json::as_str) {
                if !map.contains_key(r) {
                    // Shown at the key that holds the incomplete map.
                    let at_key = matches!(path.last(), Some(PathSegment::Key(_)));
                    self.push(path, at_key, format!("missing field `{r}`"));
                    ok = false;
                }
            }
        }
        for (key, v) in map {
            path.push(PathSegment::Key(key.clone()));
            match props.and_then(|p| p.get(key)) {
                Some(s) => ok &= self.check(s, v, path),
                None => match additional {
                    Some(Json::Bool(false)) => {
                        let expected: Vec<String> = props
                            .map(|p| p.keys().map(|k| format!("`{k}`")).collect())
                            .unwrap_or_default();
                        let hint = closest(key, props.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default());
                        let msg = match hint {
                            Some(h) => format!("unknown field `{key}` (did you mean `{h}`?), expected one of {}", expected.join(", ")),
                            None => format!("unknown field `{key}`, expected one of {}", expected.join(", ")),
                        };
                        self.push(path, true, msg);
                        ok = false;
                    }
                    Some(s @ Json::Object(_)) => ok &= self.check(s, v, path),
                    _ => {}
                },
            }
            path.pop();
        }
        ok
    }

    /// Enums and options: pick the alternative the value evidently means
    /// (the one whose `type`/tag constant matches, or the only non-null one)
    /// so the error speaks about that alternative rather than "matches none".
    fn check_alternatives(&mut self, alts: &'a [Json], value: &Json, path: &mut Vec<PathSegment>) -> bool {
        let alts: Vec<&'a Json> = alts.iter().map(|a| self.resolve(a)).collect();
        // Trial run: does any alternative accept the value cleanly?
        for alt in &alts {
            let mut trial = Walker { root: self.root, out: Vec::new() };
            if trial.check(alt, value, &mut path.clone()) && trial.out.is_empty() {
                return true;
            }
        }
        let non_null: Vec<&&'a Json> = alts.iter().filter(|a| a.get("type").and_then(Json::as_str) != Some("null")).collect();
        if value.is_null() && non_null.len() < alts.len() {
            return true;
        }
        // Internally tagged enum: find the tag property whose const matches.
        if let Json::Object(map) = value {
            for alt in &alts {
                if let Some(props) = alt.get("properties").and_then(Json::as_object) {
                    let tag_match = props.iter().any(|(k, p)| {
                        let p = self.resolve(p);
                        let c = p.get("const").or_else(|| p.get("enum").and_then(|e| e.as_array()).filter(|e| e.len() == 1).and_then(|e| e.first()));
                        c.is_some() && map.get(k) == c
                    });
                    if tag_match {
                        return self.check(alt, value, path);
                    }
                }
            }
            // Externally tagged enum: one key naming the variant.
            if map.len() == 1 {
                let (k, _) = map.iter().next().expect("len 1");
                for alt in &alts {
                    if alt.get("required").and_then(Json::as_array).is_some_and(|r| r.len() == 1 && r[0] == *k) {
                        return self.check(alt, value, path);
                    }
                }
            }
        }
        if non_null.len() == 1 {
            return self.check(non_null[0], value, path);
        }
        // Prefer the alternative of the same JSON type.
        let same_type: Vec<&&'a Json> = non_null
            .iter()
            .copied()
            .filter(|a| match (a.get("type").and_then(Json::as_str), value) {
                (Some("object"), Json::Object(_)) | (Some("string"), Json::String(_)) | (Some("array"), Json::Array(_)) => true,
                (Some("integer"), Json::Number(_)) | (Some("boolean"), Json::Bool(_)) => true,
                _ => a.get("enum").is_some() && value.is_string(),
            })
            .collect();
        if same_type.len() == 1 {
            return self.check(same_type[0], value, path);
        }
        let options: Vec<String> = alts.iter().filter_map(|a| describe(a)).collect();
        self.push(path, false, if options.is_empty() {
            format!("{} matches none of the accepted forms", short(value))
        } else {
            format!("expected {}, found {}", options.join(" or "), short(value))
        });
        false
    }
}

fn describe(schema: &Json) -> Option<String> {
    if let Some(e) = schema.get("enum").and_then(Json::as_array) {
        return Some(e.iter().map(short).collect::<Vec<_>>().join(", "));
    }
    if let Some(c) = schema.get("const") {
        return Some(short(c));
    }
    if let Some(r) = schema.get("required").and_then(Json::as_array).filter(|r| r.len() == 1) {
        return Some(format!("a map with `{}`", r[0].as_str().unwrap_or("?")));
    }
    schema.get("type").and_then(Json::as_str).filter(|t| *t != "null").map(|t| format!("a {t}"))
}

/// The known key nearest to a misspelt one, when it is plausibly a typo.
fn closest<'k>(key: &str, known: Vec<&'k str>) -> Option<&'k str> {
    known
        .into_iter()
        .map(|k| (levenshtein(key, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_hint() {
        assert_eq!(closest("max_rowz", vec!["max_rows", "max_bytes"]), Some("max_rows"));
        assert_eq!(closest("zzzz", vec!["max_rows"]), None);
    }
}
