//! A YAML request body read into the JSON value the JSON path takes (configuration documents):
//! one YAML 1.2 document, core schema, and nothing JSON cannot say (no NaN or infinity, no
//! keys other than strings, no application tags), each refusal naming its line and column.
use std::fmt;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};

/// Nodes that anchors and aliases may copy in all (an anchored node is kept as a copy, and each
/// alias copies it again): anchors are fine, a "billion laughs" document is not.
pub const MAX_ALIAS_NODES: usize = 10_000;
/// Deepest nesting of mappings and sequences (serde_json's own limit is 128).
pub const MAX_DEPTH: usize = 128;

/// Why a YAML body was refused, and where (line and column count from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

fn error(at: Marker, message: impl Into<String>) -> YamlError {
    YamlError {
        line: at.line(),
        column: at.col() + 1,
        message: message.into(),
    }
}

/// A collection being read: its items so far.
enum Frame {
    Seq(Vec<Value>),
    /// The entries so far, and the key read whose value comes next.
    Map(Map<String, Value>, Option<String>),
}

/// A collection being read, its anchor and where it starts.
struct Open {
    frame: Frame,
    anchor: usize,
    at: Marker,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    root: Option<Value>,
    /// Anchored nodes by the parser's anchor id (1, 2, ...), with their size in nodes.
    anchors: Vec<Option<(Value, usize)>>,
    /// Nodes copied so far by anchors and aliases.
    copied: usize,
}

impl Builder {
    /// Places a finished node in the collection being read (or as the document).
    fn push(&mut self, v: Value, anchor: usize, at: Marker) -> Result<(), YamlError> {
        if anchor != 0 {
            let n = size(&v);
            self.copy(n, at)?;
            if self.anchors.len() <= anchor {
                self.anchors.resize(anchor + 1, None);
            }
            self.anchors[anchor] = Some((v.clone(), n));
        }
        let Some(top) = self.stack.last_mut() else {
            self.root = Some(v);
            return Ok(());
        };
        match &mut top.frame {
            Frame::Seq(items) => items.push(v),
            Frame::Map(entries, key) => match (key.take(), v) {
                (Some(k), v) => {
                    entries.insert(k, v);
                }
                (None, Value::String(k)) if entries.contains_key(&k) => {
                    return Err(error(at, format!("duplicate key '{k}'")));
                }
                (None, Value::String(k)) => *key = Some(k),
                (None, other) => {
                    return Err(error(
                        at,
                        format!(
                            "a key must be a string (JSON has no other kind), not {}: quote it",
                            kind(&other)
                        ),
                    ));
                }
            },
        }
        Ok(())
    }

    /// Counts `n` more copied nodes against `MAX_ALIAS_NODES`.
    fn copy(&mut self, n: usize, at: Marker) -> Result<(), YamlError> {
        self.copied += n;
        if self.copied > MAX_ALIAS_NODES {
            return Err(error(
                at,
                format!("anchors and aliases copy more than {MAX_ALIAS_NODES} nodes"),
            ));
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame, anchor: usize, at: Marker) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(error(at, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.stack.push(Open { frame, anchor, at });
        Ok(())
    }

    fn close(&mut self) -> Result<(), YamlError> {
        let Some(open) = self.stack.pop() else {
            return Ok(());
        };
        let v = match open.frame {
            Frame::Seq(items) => Value::Array(items),
            Frame::Map(entries, _) => Value::Object(entries),
        };
        self.push(v, open.anchor, open.at)
    }

    fn alias(&mut self, id: usize, at: Marker) -> Result<(), YamlError> {
        let Some(Some((v, n))) = self.anchors.get(id) else {
            return Err(error(at, "an alias may only refer to a node that ends before it"));
        };
        let (v, n) = (v.clone(), *n);
        self.copy(n, at)?;
        self.push(v, 0, at)
    }
}

/// Reads `text` as one YAML document into a JSON value.
pub fn to_json(text: &str) -> Result<Value, YamlError> {
    let mut b = Builder::default();
    let mut documents = 0;
    // Over `chars()` rather than the `&str` input: the same events, ~3.5 KB less gzipped wasm.
    for event in Parser::new_from_iter(text.chars()) {
        let (event, span) = event.map_err(|e| error(*e.marker(), e.info()))?;
        let at = span.start;
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(error(at, "only one YAML document is accepted"));
                }
            }
            Event::Alias(id) => b.alias(id, at)?,
            Event::Scalar(text, style, anchor, tag) => {
                let v = scalar(&text, style, tag.as_deref(), at)?;
                b.push(v, anchor, at)?;
            }
            Event::SequenceStart(anchor, tag) => {
                collection_tag(tag.as_deref(), "seq", at)?;
                b.open(Frame::Seq(Vec::new()), anchor, at)?;
            }
            Event::MappingStart(anchor, tag) => {
                collection_tag(tag.as_deref(), "map", at)?;
                b.open(Frame::Map(Map::new(), None), anchor, at)?;
            }
            Event::SequenceEnd | Event::MappingEnd => b.close()?,
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    b.root
        .ok_or_else(|| error(Marker::new(0, 1, 0), "the body holds no YAML document"))
}

/// Nodes in a value (what an alias to it copies).
fn size(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(size).sum::<usize>(),
        Value::Object(o) => 1 + o.values().map(size).sum::<usize>(),
        _ => 1,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

/// The core-schema name of a tag (`!!int` → `int`); any other tag is refused.
fn core_tag(tag: &Tag, at: Marker) -> Result<&str, YamlError> {
    if tag.is_yaml_core_schema() {
        Ok(tag.suffix.as_str())
    } else {
        Err(error(
            at,
            format!("the tag {tag} is not accepted (only the core tags !!str, !!int, !!float, !!bool, !!null, !!seq, !!map)"),
        ))
    }
}

fn collection_tag(tag: Option<&Tag>, expected: &str, at: Marker) -> Result<(), YamlError> {
    match tag {
        None => Ok(()),
        Some(t) if core_tag(t, at)? == expected => Ok(()),
        Some(t) => Err(error(at, format!("the tag {t} does not fit a {expected}"))),
    }
}

/// A scalar's value: quoted and block scalars are strings; plain ones resolve as the YAML 1.2
/// core schema says (so `yes`, `on` and `NO` stay strings); a core tag asks for one kind.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>, at: Marker) -> Result<Value, YamlError> {
    let wanted = match tag {
        Some(t) => core_tag(t, at)?,
        None if style != ScalarStyle::Plain => return Ok(Value::String(text.to_string())),
        None => return plain(text, at),
    };
    let resolved = match wanted {
        "str" => Some(Value::String(text.to_string())),
        "null" => is_null(text).then_some(Value::Null),
        "bool" => bool(text).map(Value::Bool),
        "int" => number(text, at)?
            .filter(|n| !n.is_f64() || is_decimal_int(text))
            .map(Value::Number),
        "float" => number(text, at)?
            .and_then(|n| n.as_f64())
            .and_then(Number::from_f64)
            .map(Value::Number),
        other => {
            return Err(error(
                at,
                format!("the tag !!{other} is not accepted (only !!str, !!int, !!float, !!bool, !!null)"),
            ))
        }
    };
    resolved.ok_or_else(|| error(at, format!("'{text}' is not a valid !!{wanted}")))
}

fn plain(text: &str, at: Marker) -> Result<Value, YamlError> {
    if is_null(text) {
        return Ok(Value::Null);
    }
    if let Some(b) = bool(text) {
        return Ok(Value::Bool(b));
    }
    Ok(number(text, at)?.map_or_else(|| Value::String(text.to_string()), Value::Number))
}

fn is_null(t: &str) -> bool {
    matches!(t, "" | "~" | "null" | "Null" | "NULL")
}

fn bool(t: &str) -> Option<bool> {
    match t {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn digits(t: &str, radix: u32) -> bool {
    !t.is_empty() && t.chars().all(|c| c.is_digit(radix))
}

fn unsigned(t: &str) -> &str {
    t.strip_prefix(['-', '+']).unwrap_or(t)
}

fn is_decimal_int(t: &str) -> bool {
    digits(unsigned(t), 10)
}

/// A core-schema number (`12`, `-7`, `+3`, `0x1F`, `0o17`, `1.5`, `.5`, `1.`, `1e3`), or `None`
/// for text of another shape. Decimals are read by serde_json itself, once put in JSON's
/// spelling, so a YAML number is exactly the value the same JSON number is (an integer beyond
/// 64 bits becomes a float; Rust's own float parser would also cost ~14 KB of gzipped wasm).
/// `.inf` and `.nan` are refused: JSON has neither.
fn number(t: &str, at: Marker) -> Result<Option<Number>, YamlError> {
    for (prefix, radix) in [("0o", 8), ("0x", 16)] {
        if let Some(d) = t.strip_prefix(prefix).filter(|d| digits(d, radix)) {
            return u64::from_str_radix(d, radix)
                .map(|n| Some(n.into()))
                .map_err(|_| error(at, format!("the integer {t} does not fit in 64 bits")));
        }
    }
    let u = unsigned(t);
    if matches!(u, ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN") {
        return Err(error(
            at,
            format!("{t} has no JSON form: quote it if you mean the text"),
        ));
    }
    let (mantissa, exponent) = u.split_at(u.find(['e', 'E']).unwrap_or(u.len()));
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let shaped = (digits(whole, 10) || (whole.is_empty() && fraction.is_some_and(|f| digits(f, 10))))
        && fraction.is_none_or(|f| f.is_empty() || digits(f, 10))
        && (exponent.is_empty() || digits(unsigned(&exponent[1..]), 10));
    if !shaped {
        return Ok(None);
    }
    // JSON's spelling: no `+`, no leading zeros, digits on both sides of a point.
    let sign = if t.starts_with('-') { "-" } else { "" };
    let whole = match whole.trim_start_matches('0') {
        "" => "0",
        w => w,
    };
    let fraction = match fraction {
        Some("") => ".0",
        Some(f) => &format!(".{f}"),
        None => "",
    };
    serde_json::from_str::<Number>(&format!("{sign}{whole}{fraction}{exponent}"))
        .map(Some)
        .map_err(|_| error(at, format!("the number {t} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(y: &str) -> Value {
        to_json(y).unwrap_or_else(|e| panic!("{y:?}: {e}"))
    }
    fn err(y: &str) -> YamlError {
        to_json(y).expect_err(y)
    }

    #[test]
    fn scalars_resolve_as_the_core_schema() {
        let v = ok("a: 12\nb: -7\nc: +3\nd: 0x1F\ne: 0o17\nf: 1.5\ng: .5\nh: 1e3\ni: -2.5E-2\nj: true\nk: False\nl: null\nm: ~\nn:\no: hello world\np: yes\nq: NO\nr: 1.2.3\ns: 007\n");
        assert_eq!(
            v,
            json!({"a": 12, "b": -7, "c": 3, "d": 31, "e": 15, "f": 1.5, "g": 0.5, "h": 1000.0, "i": -0.025,
                "j": true, "k": false, "l": null, "m": null, "n": null, "o": "hello world", "p": "yes",
                "q": "NO", "r": "1.2.3", "s": 7})
        );
        // The same numbers as JSON reads them (same Number kinds, so documents compare equal).
        assert_eq!(v["a"], serde_json::from_str::<Value>("12").unwrap());
        assert_eq!(v["b"], serde_json::from_str::<Value>("-7").unwrap());
        assert_eq!(v["f"], serde_json::from_str::<Value>("1.5").unwrap());
    }

    #[test]
    fn spellings_json_lacks_are_numbers_all_the_same() {
        let v = ok("a: 1.\nb: +.5\nc: 1.e5\nd: 00.50\ne: 1e+3\nf: -0.0\ng: 0o0\nh: 0xff\n");
        assert_eq!(
            v,
            json!({"a": 1.0, "b": 0.5, "c": 100000.0, "d": 0.5, "e": 1000.0, "f": -0.0, "g": 0, "h": 255})
        );
        // Not numbers: strings.
        let v = ok("a: e5\nb: .\nc: '-'\nd: 1e\ne: 0x\nf: 0xg1\ng: 1_000\nh: 12abc\ni: +\n");
        assert_eq!(
            v,
            json!({"a": "e5", "b": ".", "c": "-", "d": "1e", "e": "0x", "f": "0xg1", "g": "1_000", "h": "12abc", "i": "+"})
        );
    }

    #[test]
    fn big_integers_become_floats_like_json() {
        assert_eq!(ok("18446744073709551615"), json!(u64::MAX));
        assert_eq!(ok("-9223372036854775808"), json!(i64::MIN));
        assert_eq!(
            ok("99999999999999999999"),
            serde_json::from_str::<Value>("99999999999999999999").unwrap()
        );
    }

    #[test]
    fn quoted_and_block_scalars_stay_strings() {
        let v = ok("a: '12'\nb: \"true\"\nc: 'null'\nd: \"1.5\"\ne: |\n  line one\n  42\nf: >-\n  folded\n  text\ng: !!str 12\n");
        assert_eq!(
            v,
            json!({"a": "12", "b": "true", "c": "null", "d": "1.5", "e": "line one\n42\n", "f": "folded text", "g": "12"})
        );
    }

    #[test]
    fn core_tags_ask_for_their_kind() {
        assert_eq!(
            ok("a: !!int '12'\nb: !!float '2'\nc: !!bool 'true'\nd: !!null ''"),
            json!({"a": 12, "b": 2.0, "c": true, "d": null})
        );
        assert!(err("a: !!int twelve").message.contains("'twelve' is not a valid !!int"));
        assert!(err("a: !!int 1.5").message.contains("not a valid !!int"));
        assert!(err("a: !!bool yes").message.contains("not a valid !!bool"));
        assert!(err("a: !!seq {b: 1}").message.contains("does not fit"));
    }

    #[test]
    fn nested_mappings_and_sequences() {
        let y = "org: o1\nservers:\n  - slug: a\n    url: https://a.example/mcp\n    tags: [x, 'y', 3]\n  - {slug: b, url: 'https://b.example'}\nempty_list: []\nempty_map: {}\n";
        assert_eq!(
            ok(y),
            json!({"org": "o1", "servers": [
                {"slug": "a", "url": "https://a.example/mcp", "tags": ["x", "y", 3]},
                {"slug": "b", "url": "https://b.example"}],
                "empty_list": [], "empty_map": {}})
        );
    }

    #[test]
    fn json_is_yaml() {
        let j = json!({"a": [1, -2, 2.5, "3", true, null, {"b": {}}], "c": "d\"e"});
        assert_eq!(ok(&j.to_string()), j);
    }

    #[test]
    fn anchors_and_aliases_are_copied() {
        assert_eq!(
            ok("a: &x {k: [1, 2]}\nb: *x\n"),
            json!({"a": {"k": [1, 2]}, "b": {"k": [1, 2]}})
        );
    }

    #[test]
    fn alias_expansion_is_capped() {
        let mut y = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i", "j"])
        {
            y.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let e = err(&y);
        assert!(e.message.contains("aliases copy more than"), "{e}");
    }

    #[test]
    fn nested_anchors_count_as_copies() {
        // Each anchor keeps a copy of its node: 100 nested anchors around 200 items would be
        // 20,000 copied nodes without a single alias.
        let items = vec!["x"; 200].join(", ");
        let y = (1..=100).map(|i| format!("&a{i} [")).collect::<String>() + &items + &"]".repeat(100);
        assert!(err(&y).message.contains("copy more than"));
    }

    #[test]
    fn what_json_cannot_say_is_refused_with_its_place() {
        let e = err("a: 1\nb: .nan\n");
        assert_eq!((e.line, e.column), (2, 4));
        assert!(e.message.contains("no JSON form"));
        assert!(err("a: -.inf").message.contains("no JSON form"));
        assert!(err("a: 1e999").message.contains("out of range"));
        let e = err("a: 1\n7: b\n");
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("a key must be a string"), "{e}");
        assert!(err("? [a, b]\n: c\n").message.contains("a key must be a string"));
        assert!(err("true: x").message.contains("a key must be a string"));
        assert!(err("a: !custom x").message.contains("tag !custom is not accepted"));
        assert!(err("a: !!binary aGk=").message.contains("!!binary is not accepted"));
        assert!(err("a: 0x10000000000000000").message.contains("64 bits"));
    }

    #[test]
    fn malformed_yaml_names_line_and_column() {
        let e = err("a: 1\nb: [1, 2\n");
        assert!(e.line >= 2, "{e}");
        let e = err("a: 1\n a: 2\n b\n");
        assert!(e.line >= 2, "{e}");
        assert!(err("a: 1\na: 2\n").message.contains("duplicate key 'a'"));
        assert!(err("a: *nowhere").to_string().starts_with("line 1, column"));
        assert!(err("a: &x [*x]").message.contains("alias"));
    }

    #[test]
    fn one_document_only() {
        assert!(err("a: 1\n---\nb: 2\n").message.contains("only one YAML document"));
        assert!(err("").message.contains("no YAML document"));
        assert!(err("# only a comment\n").message.contains("no YAML document"));
        assert_eq!(ok("---\na: 1\n...\n"), json!({"a": 1}));
    }

    #[test]
    fn depth_is_capped() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(err(&deep).message.contains("nested deeper"));
        let fine = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        ok(&fine);
    }

    #[test]
    fn garbage_never_panics() {
        for y in [
            "\u{0}",
            "[",
            "{",
            "a: [}",
            "&",
            "*",
            "!!",
            "? ",
            "- - -",
            ":",
            "'",
            "\"\\q\"",
            "%YAML 9.9\n---\na",
            "a: !<tag:yaml.org,2002:int> 3",
        ] {
            let _ = to_json(y);
        }
    }
}
