//! A small JSON Schema checker for the subset `docs/schema/*.schema.json` use (`type`,
//! `required`, `properties`, `additionalProperties: false`, `const`, `enum`, `items`,
//! `minimum`/`maximum`, `maxItems`, `uniqueItems`), so the end-to-end tests can hold EVE
//! lines to the published schemas without a schema crate. Unknown keywords are ignored
//! (`pattern`, `description`...).

use serde_json::Value;

/// Loads `docs/schema/<name>`.
pub fn load(name: &str) -> Value {
    let p = crate::harness::workspace_root()
        .join("docs/schema")
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Where `v` breaks `schema` (empty = valid), each as `path: problem`.
pub fn check(schema: &Value, v: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    walk(schema, v, "$", &mut errs);
    errs
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "null" => v.is_null(),
        _ => true,
    }
}

fn walk(s: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let mut err = |m: String| errs.push(format!("{at}: {m}"));
    match &s["type"] {
        Value::String(t) if !type_ok(t, v) => err(format!("not {t}: {v}")),
        Value::Array(ts) if !ts.iter().any(|t| t.as_str().is_some_and(|t| type_ok(t, v))) => {
            err(format!("not any of {s}: {v}", s = s["type"]))
        }
        _ => {}
    }
    if let Some(c) = s.get("const") {
        if c != v {
            err(format!("{v} is not {c}"));
        }
    }
    if let Some(e) = s["enum"].as_array() {
        if !e.contains(v) {
            err(format!("{v} not in {}", s["enum"]));
        }
    }
    if let (Some(min), Some(x)) = (s["minimum"].as_f64(), v.as_f64()) {
        if x < min {
            err(format!("{x} < {min}"));
        }
    }
    if let (Some(max), Some(x)) = (s["maximum"].as_f64(), v.as_f64()) {
        if x > max {
            err(format!("{x} > {max}"));
        }
    }
    if let Some(a) = v.as_array() {
        if let Some(max) = s["maxItems"].as_u64() {
            if a.len() as u64 > max {
                err(format!("{} items > {max}", a.len()));
            }
        }
        if s["uniqueItems"] == true && (1..a.len()).any(|i| a[..i].contains(&a[i])) {
            err("items not unique".into());
        }
        if s["items"].is_object() {
            for (i, x) in a.iter().enumerate() {
                walk(&s["items"], x, &format!("{at}[{i}]"), errs);
            }
        }
    }
    if let Some(o) = v.as_object() {
        for r in s["required"].as_array().into_iter().flatten() {
            if let Some(k) = r.as_str() {
                if !o.contains_key(k) {
                    errs.push(format!("{at}: missing {k}"));
                }
            }
        }
        let props = s["properties"].as_object();
        for (k, x) in o {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => walk(ps, x, &format!("{at}.{k}"), errs),
                None if s["additionalProperties"] == false => {
                    errs.push(format!("{at}: unexpected {k}"))
                }
                None => {}
            }
        }
    }
}

/// Checks every line of `events` whose `event_type` has a schema file among `types`
/// (`eve-<type>.schema.json`); returns the problems, naming the line.
pub fn check_lines(events: &[Value], types: &[&str]) -> Vec<String> {
    let schemas: Vec<(&str, Value)> = types
        .iter()
        .map(|t| (*t, load(&format!("eve-{t}.schema.json"))))
        .collect();
    let mut errs = Vec::new();
    for (n, e) in events.iter().enumerate() {
        for (t, s) in &schemas {
            if e["event_type"] == *t {
                errs.extend(
                    check(s, e)
                        .into_iter()
                        .map(|m| format!("line {}: {m}", n + 1)),
                );
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn catches_what_it_claims() {
        let s = json!({
            "type": "object", "required": ["a"], "additionalProperties": false,
            "properties": {
                "a": {"enum": ["x", "y"]},
                "b": {"type": "array", "maxItems": 2, "uniqueItems": true,
                      "items": {"type": "integer", "minimum": 0}}
            }
        });
        assert!(check(&s, &json!({"a": "x", "b": [1, 2]})).is_empty());
        assert_eq!(check(&s, &json!({"b": []})).len(), 1, "missing a");
        assert_eq!(check(&s, &json!({"a": "z"})).len(), 1, "enum");
        assert_eq!(check(&s, &json!({"a": "x", "c": 1})).len(), 1, "extra key");
        assert_eq!(check(&s, &json!({"a": "x", "b": [1, 1, -1]})).len(), 3);
        assert_eq!(check(&s, &json!([])).len(), 1, "type");
    }
}
