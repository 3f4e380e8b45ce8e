//! Evaluating a block rule's condition against a call: its tool, the tool's annotations, its
//! arguments.
//!
//! Annotations are claims of the upstream, which the gateway does not trust, so they can only
//! ever make a policy stricter than the rule's own condition says: each hint a condition names
//! is read on its own (a tool's `readOnlyHint: true` says nothing here about its
//! `destructiveHint`, although the spec calls that hint meaningless for read-only tools), a
//! hint the tool does not state — or states as anything but a boolean — takes the MCP default,
//! which is the pessimistic one (`readOnlyHint` false, `destructiveHint` true, `idempotentHint`
//! false, `openWorldHint` true), and a tool whose annotations are unknown has all four
//! defaults. The only way a claim lets a call through is a rule that itself asks for that
//! claim (`{"not": {"annotation": {"readOnlyHint": true}}}` trusts `readOnlyHint`).
use serde_json::Value;

use super::model::{ArgCond, Cond, Hints};

/// What a condition is evaluated against.
#[derive(Clone, Copy)]
pub(crate) struct Facts<'a> {
    pub tool: Option<&'a str>,
    pub annotations: Option<&'a Value>,
    pub args: &'a Value,
}

pub(crate) fn holds(c: &Cond, f: &Facts<'_>) -> bool {
    match c {
        Cond::All { all } => all.iter().all(|c| holds(c, f)),
        Cond::Any { any } => any.iter().any(|c| holds(c, f)),
        Cond::Not { not } => !holds(not, f),
        Cond::Tool { tool } => f.tool.is_some_and(|t| tool.matches(t)),
        Cond::Annotation { annotation } => hints_hold(annotation, f.annotations),
        Cond::Arg(a) => arg_holds(a, f.args),
    }
}

/// The MCP defaults of the four hints (schema `ToolAnnotations`).
pub(crate) const READ_ONLY_DEFAULT: bool = false;
pub(crate) const DESTRUCTIVE_DEFAULT: bool = true;
pub(crate) const IDEMPOTENT_DEFAULT: bool = false;
pub(crate) const OPEN_WORLD_DEFAULT: bool = true;

/// The tool's value of one hint: what it states if it is a boolean, else the default.
pub(crate) fn hint(annotations: Option<&Value>, name: &str, default: bool) -> bool {
    annotations
        .and_then(|a| a.get(name))
        .and_then(Value::as_bool)
        .unwrap_or(default)
}

fn hints_hold(want: &Hints, annotations: Option<&Value>) -> bool {
    let check =
        |wanted: Option<bool>, name: &str, default: bool| wanted.is_none_or(|w| hint(annotations, name, default) == w);
    check(want.read_only, "readOnlyHint", READ_ONLY_DEFAULT)
        && check(want.destructive, "destructiveHint", DESTRUCTIVE_DEFAULT)
        && check(want.idempotent, "idempotentHint", IDEMPOTENT_DEFAULT)
        && check(want.open_world, "openWorldHint", OPEN_WORLD_DEFAULT)
}

/// Every test given holds for the value at the pointer. A missing value fails every test but
/// `exists: false`; absent arguments are `null`.
fn arg_holds(a: &ArgCond, args: &Value) -> bool {
    let found = args.pointer(&a.arg);
    if let Some(want) = a.exists {
        if found.is_some() != want {
            return false;
        }
    }
    let needs_value =
        a.equals.is_some() || a.one_of.is_some() || a.matches.is_some() || a.lt.is_some() || a.gt.is_some();
    let Some(v) = found else {
        return !needs_value;
    };
    if a.equals.as_ref().is_some_and(|e| !same(v, e)) {
        return false;
    }
    if a.one_of.as_ref().is_some_and(|list| !list.iter().any(|e| same(v, e))) {
        return false;
    }
    if let Some(p) = &a.matches {
        let text = match v {
            Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
            Value::Number(_) | Value::Bool(_) => std::borrow::Cow::Owned(v.to_string()),
            _ => return false,
        };
        if !p.regex().is_match(&text) {
            return false;
        }
    }
    let num = v.as_f64();
    if let Some(lt) = &a.lt {
        if !num.zip(lt.as_f64()).is_some_and(|(x, y)| x < y) {
            return false;
        }
    }
    if let Some(gt) = &a.gt {
        if !num.zip(gt.as_f64()).is_some_and(|(x, y)| x > y) {
            return false;
        }
    }
    true
}

/// JSON equality, with numbers equal by value (`1` equals `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64().zip(y.as_f64()).is_some_and(|(x, y)| x == y),
        _ => a == b,
    }
}
