//! What of a call's arguments an event keeps: nothing, the argument names (the default), or the
//! arguments as sent. Set per organization and per server (the server's setting wins).
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMode {
    None,
    #[default]
    Keys,
    Full,
}

impl CaptureMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "keys" => Some(Self::Keys),
            "full" => Some(Self::Full),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Keys => "keys",
            Self::Full => "full",
        }
    }

    /// The effective mode: the server's setting, else the organization's, else `keys`.
    pub fn resolve(server: Option<Self>, org: Option<Self>) -> Self {
        server.or(org).unwrap_or_default()
    }

    /// What an event records of `arguments` under this mode (`None`: nothing is recorded).
    pub fn capture(self, arguments: Option<&Value>) -> Option<Value> {
        let args = arguments?;
        match self {
            Self::None => None,
            Self::Keys => Some(match args {
                Value::Object(m) => Value::Array(m.keys().map(|k| Value::String(k.clone())).collect()),
                _ => Value::Array(vec![]),
            }),
            Self::Full => Some(args.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn modes_keep_nothing_names_or_everything() {
        let args = json!({"b": 1, "a": {"secret": "x"}});
        assert_eq!(CaptureMode::None.capture(Some(&args)), None);
        assert_eq!(CaptureMode::Keys.capture(Some(&args)), Some(json!(["a", "b"])));
        assert_eq!(CaptureMode::Full.capture(Some(&args)), Some(args.clone()));
        assert_eq!(CaptureMode::Full.capture(None), None);
        assert_eq!(CaptureMode::resolve(None, Some(CaptureMode::Full)), CaptureMode::Full);
        assert_eq!(
            CaptureMode::resolve(Some(CaptureMode::None), Some(CaptureMode::Full)),
            CaptureMode::None
        );
        assert_eq!(CaptureMode::resolve(None, None), CaptureMode::Keys);
    }
}
