//! Renders the configuration reference (`docs/configuration.md`) from the
//! schema derived from the typed structs, so docs and code cannot drift.

use std::fmt::Write;

use serde_json::Value as Json;

const INTRO: &str = "# Configuration reference

Generated from the config structs by `inlet config reference`; a test fails
when this file and the code disagree. Every key is checked by
`inlet validate --config FILE`: unknown keys, wrong types and missing fields
are errors reported with their key path, line and column, all in one run.

`${NAME}` anywhere in a value is replaced by the environment variable `NAME`
(`${NAME:-default}` gives a default, `$$` is a literal `$`). An unset variable
without a default is an error.

A complete example is `examples/quickstart.yaml`.
";

pub fn markdown() -> String {
    let schema = crate::json_schema();
    let mut out = String::from(INTRO);
    let mut seen = Vec::new();
    section(&schema, &schema, "", &mut out, &mut seen);
    out
}

fn resolve<'a>(root: &'a Json, s: &'a Json) -> (&'a Json, Option<String>) {
    if let Some(r) = s.get("$ref").and_then(Json::as_str) {
        let name = r.rsplit('/').next().map(str::to_string);
        return (root.pointer(r.trim_start_matches('#')).unwrap_or(s), name);
    }
    (s, None)
}

/// The alternatives of an `Option<T>` or enum, skipping `null`.
fn non_null_alternatives<'a>(root: &'a Json, s: &'a Json) -> Vec<&'a Json> {
    let alts = s.get("anyOf").or_else(|| s.get("oneOf")).and_then(Json::as_array);
    match alts {
        Some(a) => a.iter().map(|x| resolve(root, x).0).filter(|x| x.get("type").and_then(Json::as_str) != Some("null")).collect(),
        None => vec![s],
    }
}

fn type_label(root: &Json, s: &Json) -> String {
    let (s, _) = resolve(root, s);
    let alts = non_null_alternatives(root, s);
    if alts.len() > 1 || s.get("oneOf").is_some() {
        let labels: Vec<String> = alts
            .iter()
            .map(|a| {
                if let Some(e) = a.get("enum").and_then(Json::as_array) {
                    e.iter().map(|v| format!("`{}`", v.as_str().unwrap_or("?"))).collect::<Vec<_>>().join(" \\| ")
                } else if let Some(c) = a.get("const") {
                    format!("`{}`", c.as_str().unwrap_or("?"))
                } else if let Some(tag) = a.pointer("/properties/type/const").and_then(Json::as_str) {
                    format!("`type: {tag}`")
                } else if let Some(r) = a.get("required").and_then(Json::as_array).filter(|r| r.len() == 1) {
                    format!("`{{{}: ...}}`", r[0].as_str().unwrap_or("?"))
                } else {
                    type_label(root, a)
                }
            })
            .collect();
        return labels.join(" \\| ");
    }
    let s = alts.first().copied().unwrap_or(s);
    if let Some(e) = s.get("enum").and_then(Json::as_array) {
        return e.iter().map(|v| format!("`{}`", v.as_str().unwrap_or("?"))).collect::<Vec<_>>().join(" \\| ");
    }
    let t = match s.get("type") {
        Some(Json::String(t)) => t.clone(),
        Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).filter(|t| *t != "null").collect::<Vec<_>>().join("/"),
        _ => "map".to_string(),
    };
    match t.as_str() {
        "array" => format!("list of {}", s.get("items").map(|i| type_label(root, i)).unwrap_or_default()),
        "object" if s.get("properties").is_none() => "map of string".to_string(),
        "object" => "map".to_string(),
        "integer" => "integer".to_string(),
        other => other.to_string(),
    }
}

fn section(root: &Json, s: &Json, prefix: &str, out: &mut String, seen: &mut Vec<String>) {
    let (s, _) = resolve(root, s);
    let Some(props) = s.get("properties").and_then(Json::as_object) else { return };
    let required: Vec<&str> = s.get("required").and_then(Json::as_array).map(|r| r.iter().filter_map(Json::as_str).collect()).unwrap_or_default();
    let title = if prefix.is_empty() { "Top level".to_string() } else { format!("`{prefix}`") };
    let _ = writeln!(out, "\n## {title}\n");
    if let Some(d) = s.get("description").and_then(Json::as_str) {
        let _ = writeln!(out, "{}\n", d.replace('\n', " "));
    }
    let _ = writeln!(out, "| key | type | default | description |\n|---|---|---|---|");
    let mut nested = Vec::new();
    for (name, p) in props {
        let (pr, _) = resolve(root, p);
        let desc = p.get("description").or_else(|| pr.get("description")).and_then(Json::as_str).unwrap_or("").replace('\n', " ");
        let default = if required.contains(&name.as_str()) {
            "required".to_string()
        } else {
            match p.get("default") {
                Some(Json::Null) | None => "-".to_string(),
                Some(d) => format!("`{}`", d),
            }
        };
        let _ = writeln!(out, "| `{name}` | {} | {default} | {desc} |", type_label(root, p));
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        for alt in non_null_alternatives(root, pr) {
            if let Some(items) = alt.get("items") {
                let (it, _) = resolve(root, items);
                if it.get("properties").is_some() {
                    nested.push((format!("{path}[]"), it));
                }
            } else if alt.get("properties").is_some() {
                let label = match alt.pointer("/properties/type/const").and_then(Json::as_str) {
                    Some(tag) => format!("{path} (type: {tag})"),
                    None => path.clone(),
                };
                nested.push((label, alt));
            }
        }
    }
    for (path, n) in nested {
        if !seen.contains(&path) {
            seen.push(path.clone());
            section(root, n, &path, out, seen);
        }
    }
}
