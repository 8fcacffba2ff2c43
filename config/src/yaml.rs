//! A YAML document as a tree that remembers where every node came from.
//!
//! serde's YAML front ends forget positions once a value is built, and stop at
//! the first error. inlet wants every config error to name its key path, line
//! and column, all in one run, so the document is parsed once into [`Node`]s
//! that carry a [`Span`], `${ENV}` references are expanded in place, and the
//! tree is then handed to serde as plain JSON while positions stay available
//! for error reports through [`Node::locate`].

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::error::{ConfigError, Span};

/// One YAML node with its position.
#[derive(Debug, Clone)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

/// The value of a [`Node`]; scalars are already resolved with the YAML 1.2
/// core schema (so `port: 80` is a number and `name: "80"` a string).
#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    /// Keys keep their own spans so that an unknown key can be pointed at.
    Map(Vec<(Node, Node)>),
}

/// One step of a key path: `pipelines[2].flush.max_rows`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

/// Renders a key path the way errors show it.
pub fn render_path(path: &[PathSegment]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSegment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathSegment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() { "(document)".to_string() } else { out }
}

impl Node {
    /// Parses one YAML document. `env` resolves `${NAME}` references; every
    /// reference that cannot be resolved is reported, not just the first.
    pub fn parse(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Node, Vec<ConfigError>> {
        let mut builder = TreeBuilder { stack: Vec::new(), anchors: HashMap::new(), root: None, errors: Vec::new(), env };
        let mut parser = Parser::new_from_str(text);
        if let Err(e) = parser.load(&mut builder, false) {
            let m = e.marker();
            return Err(vec![ConfigError::new(
                Vec::new(),
                Some(Span { line: m.line(), column: m.col() + 1 }),
                format!("invalid YAML: {}", e.info()),
            )]);
        }
        if !builder.errors.is_empty() {
            return Err(builder.errors);
        }
        Ok(builder.root.unwrap_or(Node { span: Span { line: 1, column: 1 }, value: Value::Null }))
    }

    /// The plain JSON value handed to serde and to the schema check.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => serde_json::Value::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => serde_json::Value::Object(
                entries.iter().map(|(k, v)| (k.key_string(), v.to_json())).collect(),
            ),
        }
    }

    fn key_string(&self) -> String {
        match &self.value {
            Value::String(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".to_string(),
            Value::Seq(_) | Value::Map(_) => "<complex key>".to_string(),
        }
    }

    /// The span of the node at `path`, or of the deepest node on the way
    /// there (a missing field is reported at the map that lacks it).
    /// `key_of_last` points at the key instead of the value of the last step,
    /// which is where an unknown key should be shown.
    pub fn locate(&self, path: &[PathSegment], key_of_last: bool) -> Span {
        let mut node = self;
        for (i, seg) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            let next = match (seg, &node.value) {
                (PathSegment::Key(k), Value::Map(entries)) => {
                    match entries.iter().find(|(key, _)| key.key_string() == *k) {
                        Some((key, _)) if last && key_of_last => return key.span,
                        Some((_, value)) => value,
                        None => return node.span,
                    }
                }
                (PathSegment::Index(idx), Value::Seq(items)) => match items.get(*idx) {
                    Some(item) => item,
                    None => return node.span,
                },
                _ => return node.span,
            };
            node = next;
        }
        node.span
    }
}

struct TreeBuilder<'e> {
    /// Open collections: the node being filled, for maps a pending key, and
    /// the collection's anchor id (0 for none).
    stack: Vec<(Node, Option<Node>, usize)>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    errors: Vec<ConfigError>,
    env: &'e dyn Fn(&str) -> Option<String>,
}

impl TreeBuilder<'_> {
    fn insert(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some((parent, pending_key, _)) => match &mut parent.value {
                Value::Seq(items) => items.push(node),
                Value::Map(entries) => match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(key) => {
                        let name = key.key_string();
                        if entries.iter().any(|(k, _)| k.key_string() == name) {
                            self.errors.push(ConfigError::new(
                                Vec::new(),
                                Some(key.span),
                                format!("duplicate key `{name}`"),
                            ));
                        }
                        entries.push((key, node));
                    }
                },
                _ => unreachable!("only collections are pushed on the stack"),
            },
        }
    }

    fn scalar(&mut self, text: String, style: TScalarStyle, span: Span) -> Value {
        let text = match interpolate(&text, self.env) {
            Ok(t) => t,
            Err(msg) => {
                self.errors.push(ConfigError::new(Vec::new(), Some(span), msg));
                text
            }
        };
        if style != TScalarStyle::Plain {
            return Value::String(text);
        }
        resolve_plain(&text)
    }
}

impl MarkedEventReceiver for TreeBuilder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let span = Span { line: mark.line(), column: mark.col() + 1 };
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let value = self.scalar(text, style, span);
                self.insert(Node { span, value }, anchor);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push((Node { span, value: Value::Seq(Vec::new()) }, None, anchor));
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push((Node { span, value: Value::Map(Vec::new()) }, None, anchor));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((mut node, _, anchor)) = self.stack.pop() {
                    // A block mapping's start mark lies past its first key;
                    // the first key is where users see the mapping begin.
                    if let Value::Map(entries) = &node.value {
                        if let Some((k, _)) = entries.first() {
                            node.span = k.span.min_by(node.span);
                        }
                    }
                    self.insert(node, anchor);
                }
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().unwrap_or(Node { span, value: Value::Null });
                self.insert(Node { span, value: node.value }, 0);
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = text.parse::<i64>() {
            return Value::Int(i);
        }
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::Int(i);
        }
    }
    let looks_float = unsigned.bytes().any(|b| b.is_ascii_digit())
        && unsigned.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if looks_float {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    }
    match text {
        ".inf" | "+.inf" | ".Inf" => Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" => Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" => Value::Float(f64::NAN),
        _ => Value::String(text.to_string()),
    }
}

/// Expands `${NAME}` and `${NAME:-default}`; `$$` is a literal `$`.
pub fn interpolate(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut missing = Vec::new();
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Err(format!("unterminated `${{` in {text:?}"));
            };
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("invalid environment variable name `{name}` in {text:?}"));
            }
            match (env(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => missing.push(name.to_string()),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "environment variable{} {} not set (use `${{NAME:-default}}` for a default)",
            if missing.len() > 1 { "s" } else { "" },
            missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn spans_point_at_values_and_keys() {
        let doc = "a: 1\nb:\n  c: [x, \"7\"]\n";
        let node = Node::parse(doc, &no_env).unwrap();
        let path = [PathSegment::Key("b".into()), PathSegment::Key("c".into()), PathSegment::Index(1)];
        assert_eq!(node.locate(&path, false), Span { line: 3, column: 10 });
        let key = [PathSegment::Key("b".into())];
        assert_eq!(node.locate(&key, true), Span { line: 2, column: 1 });
        assert_eq!(node.to_json(), serde_json::json!({"a": 1, "b": {"c": ["x", "7"]}}));
    }

    #[test]
    fn env_interpolation_types_after_expansion() {
        let env = |n: &str| (n == "PORT").then(|| "9092".to_string());
        let node = Node::parse("port: ${PORT}\nhost: ${HOST:-localhost}\nlit: $$x\n", &env).unwrap();
        assert_eq!(node.to_json(), serde_json::json!({"port": 9092, "host": "localhost", "lit": "$x"}));
    }

    #[test]
    fn missing_env_is_located() {
        let errs = Node::parse("a: 1\nsecret: ${NOPE}\n", &no_env).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].span, Some(Span { line: 2, column: 9 }));
        assert!(errs[0].message.contains("`NOPE`"), "{}", errs[0].message);
    }

    #[test]
    fn anchors_and_aliases_expand() {
        let node = Node::parse("base: &b {x: 1}\nother: *b\n", &no_env).unwrap();
        assert_eq!(node.to_json(), serde_json::json!({"base": {"x": 1}, "other": {"x": 1}}));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let errs = Node::parse("a: 1\na: 2\n", &no_env).unwrap_err();
        assert_eq!(errs[0].span, Some(Span { line: 2, column: 1 }));
    }

    #[test]
    fn core_schema_scalars() {
        let node = Node::parse("[1, -2, 1.5, true, ~, '1', abc, 1e3]", &no_env).unwrap();
        assert_eq!(node.to_json(), serde_json::json!([1, -2, 1.5, true, null, "1", "abc", 1000.0]));
    }
}
