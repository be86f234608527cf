//! A YAML tree that remembers where each node came from, so that every error and
//! warning about a GOST file can name the line (serde_yaml's `Value` forgets it).
//! Built from yaml-rust2's event stream; JSON files go through the same parser
//! (JSON is YAML), falling back to serde_json when a JSON file is not valid YAML.

use serde_yaml::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

#[derive(Debug, Clone, PartialEq)]
pub enum SKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<SNode>),
    /// Keys in file order, with the line each key is on.
    Map(Vec<(String, usize, SNode)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SNode {
    pub kind: SKind,
    /// 1-based; 0 when unknown (JSON fallback).
    pub line: usize,
    pub col: usize,
}

impl SNode {
    pub fn to_value(&self) -> Value {
        match &self.kind {
            SKind::Null => Value::Null,
            SKind::Bool(b) => Value::Bool(*b),
            SKind::Int(i) => Value::Number((*i).into()),
            SKind::Float(f) => Value::Number((*f).into()),
            SKind::Str(s) => Value::String(s.clone()),
            SKind::Seq(items) => Value::Sequence(items.iter().map(|n| n.to_value()).collect()),
            SKind::Map(entries) => {
                let mut m = serde_yaml::Mapping::new();
                for (k, _, v) in entries {
                    m.insert(Value::String(k.clone()), v.to_value());
                }
                Value::Mapping(m)
            }
        }
    }

    pub fn from_json(v: &serde_json::Value) -> SNode {
        let kind = match v {
            serde_json::Value::Null => SKind::Null,
            serde_json::Value::Bool(b) => SKind::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => SKind::Int(i),
                None => SKind::Float(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => SKind::Str(s.clone()),
            serde_json::Value::Array(a) => SKind::Seq(a.iter().map(SNode::from_json).collect()),
            serde_json::Value::Object(o) => {
                SKind::Map(o.iter().map(|(k, v)| (k.clone(), 0, SNode::from_json(v))).collect())
            }
        };
        SNode { kind, line: 0, col: 0 }
    }

    pub fn describe(&self) -> &'static str {
        match self.kind {
            SKind::Null => "nothing",
            SKind::Bool(_) => "a boolean",
            SKind::Int(_) | SKind::Float(_) => "a number",
            SKind::Str(_) => "a string",
            SKind::Seq(_) => "a list",
            SKind::Map(_) => "a mapping",
        }
    }
}

/// A syntax error with its 1-based position.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub line: usize,
    pub col: usize,
    /// Key path of the mapping entry or list item being read when the error
    /// struck (`bypasses[2].matchers`), empty at the top level.
    pub path: String,
    pub message: String,
}

/// The key a plain `<<` becomes while its mapping is being built (a quoted `"<<"` is
/// an ordinary key). yaml.v3, which GOST reads files with, merges such entries.
const MERGE_KEY: &str = "\u{0}<<";

enum Frame {
    Seq(Vec<SNode>, Marker, usize),
    Map(Vec<(String, usize, SNode)>, Option<(String, usize)>, Marker, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<SNode>,
    anchors: std::collections::HashMap<usize, SNode>,
    error: Option<SyntaxError>,
}

fn resolve_plain(s: &str) -> SKind {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return SKind::Null,
        "true" | "True" | "TRUE" => return SKind::Bool(true),
        "false" | "False" | "FALSE" => return SKind::Bool(false),
        _ => {}
    }
    if let Ok(i) = s.parse::<i64>() {
        return SKind::Int(i);
    }
    if let Some(hex) = s.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return SKind::Int(i);
        }
    }
    if let Some(oct) = s.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return SKind::Int(i);
        }
    }
    let looks_numeric = s.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '+' || c == '.');
    if looks_numeric && s.chars().any(|c| c.is_ascii_digit()) {
        if let Ok(f) = s.parse::<f64>() {
            if f.is_finite() {
                return SKind::Float(f);
            }
        }
    }
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" => SKind::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => SKind::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => SKind::Float(f64::NAN),
        _ => SKind::Str(s.to_string()),
    }
}

fn key_text(n: &SNode) -> String {
    match &n.kind {
        SKind::Str(s) => s.clone(),
        SKind::Null => String::new(),
        SKind::Bool(b) => b.to_string(),
        SKind::Int(i) => i.to_string(),
        SKind::Float(f) => f.to_string(),
        SKind::Seq(_) | SKind::Map(_) => "<complex key>".into(),
    }
}

impl Builder {
    /// Where the parser is: the key whose value (or the list item) is being read.
    fn path(&self) -> String {
        let mut p = String::new();
        for f in &self.stack {
            match f {
                Frame::Seq(items, _, _) => p.push_str(&format!("[{}]", items.len())),
                Frame::Map(entries, pending, _, _) => {
                    let key = pending.as_ref().map(|(k, _)| k.as_str()).or_else(|| entries.last().map(|e| e.0.as_str()));
                    if let Some(k) = key {
                        if !p.is_empty() {
                            p.push('.');
                        }
                        p.push_str(if k == MERGE_KEY { "<<" } else { k });
                    }
                }
            }
        }
        p
    }

    fn push_node(&mut self, node: SNode, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(items, _, _)) => items.push(node),
            Some(Frame::Map(entries, pending, _, _)) => match pending.take() {
                None => *pending = Some((key_text(&node), node.line)),
                Some((k, line)) => entries.push((k, line, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let (line, col) = (mark.line(), mark.col() + 1);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == TScalarStyle::Plain && tag.is_none();
                let is_key = matches!(self.stack.last(), Some(Frame::Map(_, None, _, _)));
                let kind = if plain && is_key && text == "<<" {
                    SKind::Str(MERGE_KEY.to_string())
                } else if plain {
                    resolve_plain(&text)
                } else {
                    SKind::Str(text)
                };
                self.push_node(SNode { kind, line, col }, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(Vec::new(), mark, anchor)),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map(Vec::new(), None, mark, anchor)),
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Frame::Seq(items, m, a)) => {
                        (SNode { kind: SKind::Seq(items), line: m.line(), col: m.col() + 1 }, a)
                    }
                    Some(Frame::Map(entries, _, m, a)) => {
                        let entries = match resolve_merges(entries) {
                            Ok(e) => e,
                            Err(e) => {
                                self.error = Some(e);
                                return;
                            }
                        };
                        (SNode { kind: SKind::Map(entries), line: m.line(), col: m.col() + 1 }, a)
                    }
                    None => return,
                };
                self.push_node(node.0, node.1);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut n) => {
                    n.line = line;
                    n.col = col;
                    self.push_node(n, 0)
                }
                None => {
                    let path = self.path();
                    self.error = Some(SyntaxError { line, col, path, message: "alias to an unknown anchor".into() })
                }
            },
            _ => {}
        }
    }
}

/// Applies YAML merge keys (`<<: *base`, `<<: [*a, *b]`) as yaml.v3 does: keys written
/// in the mapping win over merged ones, and earlier merged mappings over later ones.
fn resolve_merges(entries: Vec<(String, usize, SNode)>) -> Result<Vec<(String, usize, SNode)>, SyntaxError> {
    if !entries.iter().any(|e| e.0 == MERGE_KEY) {
        return Ok(entries);
    }
    let (merges, mut out): (Vec<_>, Vec<_>) = entries.into_iter().partition(|e| e.0 == MERGE_KEY);
    for (_, line, v) in merges {
        let sources: Vec<&Vec<(String, usize, SNode)>> = match &v.kind {
            SKind::Map(m) => vec![m],
            SKind::Seq(items) => {
                let mut maps = Vec::new();
                for it in items {
                    match &it.kind {
                        SKind::Map(m) => maps.push(m),
                        _ => {
                            return Err(SyntaxError {
                                line: it.line,
                                col: it.col,
                                path: "<<".into(),
                                message: format!("a merge key `<<` takes mappings, found {}", it.describe()),
                            })
                        }
                    }
                }
                maps
            }
            // `<<: text` merges nothing: keep it as an ordinary key (serde_yaml writes
            // a metadata key "<<" unquoted, and our own output must read back).
            _ => {
                out.push(("<<".to_string(), line, v.clone()));
                continue;
            }
        };
        for m in sources {
            for (k, l, n) in m {
                if !out.iter().any(|e| &e.0 == k) {
                    out.push((k.clone(), *l, n.clone()));
                }
            }
        }
    }
    Ok(out)
}

/// yaml-rust2's terse scanner messages, said the way a GOST user needs to hear them.
fn explain(msg: &str) -> String {
    let hint = match msg {
        m if m.contains("simple key expect ':'") || m.contains("could not find expected ':'") => {
            " — a line here is neither `key: value` nor `- item`: check its indentation, or add the missing `- ` or `:`"
        }
        m if m.contains("mapping values are not allowed") => {
            " — a value holds an unquoted `: `; quote the value, or fix the indentation of the line"
        }
        m if m.contains("tab") => " — YAML indentation must use spaces, not tabs",
        m if m.contains("did not find expected key") || m.contains("block mapping") => {
            " — the indentation of this line does not match the lines above it"
        }
        _ => "",
    };
    format!("{msg}{hint}")
}

/// Parses one YAML (or JSON) document into a spanned tree. An empty file is `Null`.
pub fn parse(src: &str) -> Result<SNode, SyntaxError> {
    let mut b = Builder::default();
    let mut p = Parser::new_from_str(src);
    if let Err(e) = p.load(&mut b, true) {
        let m = e.marker();
        let path = b.path();
        let (mut line, mut col) = (m.line(), m.col() + 1);
        if e.info().contains("tab") {
            // The scanner reports the token before the tab; point at the tab itself.
            if let Some((i, l)) = src.lines().enumerate().skip(line.saturating_sub(1)).find(|(_, l)| {
                l.trim_start_matches(' ').starts_with('\t')
            }) {
                line = i + 1;
                col = l.find('\t').map(|c| c + 1).unwrap_or(1);
            }
        }
        return Err(SyntaxError { line, col, path, message: explain(e.info()) });
    }
    if let Some(e) = b.error {
        return Err(e);
    }
    if b.docs.len() > 1 {
        return Err(SyntaxError {
            line: b.docs[1].line,
            col: 1,
            path: String::new(),
            message: "more than one YAML document (---); a GOST config is one document (GOST would read only the first and drop the rest silently)".into(),
        });
    }
    Ok(b.docs.pop().unwrap_or(SNode { kind: SKind::Null, line: 1, col: 1 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based_and_scalars_typed() {
        let n = parse("a: 1\nb:\n  - x\n  - 'true'\n  - true\nc: {d: 5s}\n").unwrap();
        let SKind::Map(e) = &n.kind else { panic!("not a map") };
        assert_eq!(e[0].0, "a");
        assert_eq!(e[0].1, 1);
        assert_eq!(e[0].2.kind, SKind::Int(1));
        assert_eq!(e[1].1, 2);
        let SKind::Seq(items) = &e[1].2.kind else { panic!("not a seq") };
        assert_eq!(items[0].line, 3);
        assert_eq!(items[1].kind, SKind::Str("true".into()));
        assert_eq!(items[2].kind, SKind::Bool(true));
        assert_eq!(e[2].1, 6);
    }

    #[test]
    fn syntax_errors_carry_position() {
        let e = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(e.line >= 1, "{e:?}");
        assert!(!e.message.is_empty());
    }

    #[test]
    fn anchors_and_aliases_resolve() {
        let n = parse("x: &a {k: v}\ny: *a\n").unwrap();
        let SKind::Map(e) = &n.kind else { panic!() };
        assert_eq!(e[0].2.to_value(), e[1].2.to_value());
    }
}
