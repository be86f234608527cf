//! YAML text in the layout GOST's encoder (yaml.v3, indent 2) writes: sequences
//! indented under their key (`services:\n  - name: …`), strings double-quoted only
//! when a plain scalar would read as something else. serde_yaml's own layout puts
//! `- ` at the key's column; both mean the same, but users diff our `-O yaml`
//! against GOST's.

use serde_yaml::Value;
use std::fmt::Write as _;

/// A scalar as it should appear: plain when serde_yaml would write it plain,
/// otherwise as a double-quoted string (JSON's escaping is valid YAML).
fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let plain = serde_yaml::to_string(s).unwrap_or_default();
            let plain = plain.strip_suffix('\n').unwrap_or(&plain);
            if plain == s && !s.is_empty() && !s.contains('\n') {
                s.clone()
            } else {
                serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
            }
        }
        Value::Tagged(t) => scalar(&t.value),
        Value::Sequence(_) | Value::Mapping(_) => String::new(),
    }
}

fn is_empty_collection(v: &Value) -> Option<&'static str> {
    match v {
        Value::Sequence(s) if s.is_empty() => Some("[]"),
        Value::Mapping(m) if m.is_empty() => Some("{}"),
        _ => None,
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(_) | Value::Bool(_) | Value::Number(_) | Value::Null => scalar(k),
        other => serde_json::to_string(&serde_json::to_value(other).unwrap_or_default()).unwrap_or_default(),
    }
}

fn mapping(out: &mut String, m: &serde_yaml::Mapping, indent: usize, first_inline: bool) {
    for (i, (k, v)) in m.iter().enumerate() {
        if !(first_inline && i == 0) {
            out.push_str(&" ".repeat(indent));
        }
        let _ = write!(out, "{}:", key_text(k));
        value_after_key(out, v, indent);
    }
}

fn value_after_key(out: &mut String, v: &Value, indent: usize) {
    if let Some(e) = is_empty_collection(v) {
        let _ = writeln!(out, " {e}");
        return;
    }
    match v {
        Value::Mapping(m) => {
            out.push('\n');
            mapping(out, m, indent + 2, false);
        }
        Value::Sequence(s) => {
            out.push('\n');
            sequence(out, s, indent + 2);
        }
        Value::Tagged(t) => value_after_key(out, &t.value, indent),
        other => {
            let _ = writeln!(out, " {}", scalar(other));
        }
    }
}

fn sequence(out: &mut String, s: &[Value], indent: usize) {
    for item in s {
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        if let Some(e) = is_empty_collection(item) {
            let _ = writeln!(out, "{e}");
            continue;
        }
        match item {
            Value::Mapping(m) => mapping(out, m, indent + 2, true),
            Value::Sequence(inner) => {
                out.push('\n');
                sequence(out, inner, indent + 2);
            }
            other => {
                let _ = writeln!(out, "{}", scalar(other));
            }
        }
    }
}

/// Writes `v` (a mapping at the top, as a GOST config is) in yaml.v3's layout.
pub fn to_gost_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Mapping(m) if !m.is_empty() => mapping(&mut out, m, 0, false),
        Value::Mapping(_) => out.push_str("{}\n"),
        other => {
            let _ = writeln!(out, "{}", scalar(other));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_indent_under_keys_and_ambiguous_strings_are_quoted() {
        let v: Value = serde_yaml::from_str(
            "services:\n- name: service-0\n  addr: ':8080'\n  handler:\n    type: udp\n    metadata: {keepAlive: 'true', ttl: 5s, n: '60', e: ''}\n  forwarder:\n    nodes:\n    - {name: target-0, addr: '1.2.3.4:53'}\n",
        )
        .expect("yaml");
        let out = to_gost_yaml(&v);
        let want = "services:\n  - name: service-0\n    addr: :8080\n    handler:\n      type: udp\n      metadata:\n        keepAlive: \"true\"\n        ttl: 5s\n        n: \"60\"\n        e: \"\"\n    forwarder:\n      nodes:\n        - name: target-0\n          addr: 1.2.3.4:53\n";
        assert_eq!(out, want);
        let back: Value = serde_yaml::from_str(&out).expect("reparses");
        assert_eq!(back, v);
    }

    #[test]
    fn odd_strings_survive() {
        let v: Value = serde_yaml::from_str("a: \"line1\\nline2\"\nb: '# not a comment'\nc: '- x'\nd: []\ne: {}\nf: null\n").expect("yaml");
        let back: Value = serde_yaml::from_str(&to_gost_yaml(&v)).expect("reparses");
        assert_eq!(back, v);
    }
}
