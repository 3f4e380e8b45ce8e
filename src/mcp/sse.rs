//! Server-Sent Events: an incremental parser (chunks may split anywhere) and an encoder.

/// One SSE event. Comments and keep-alives are dropped by the parser.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
}

impl Event {
    pub fn message(data: impl Into<String>) -> Self {
        Self {
            data: data.into(),
            ..Default::default()
        }
    }

    /// Wire form, terminated by a blank line. Multi-line data is split into several `data:` lines.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Some(ev) = &self.event {
            out.push_str(&format!("event: {ev}\n"));
        }
        if let Some(id) = &self.id {
            out.push_str(&format!("id: {id}\n"));
        }
        if let Some(r) = self.retry {
            out.push_str(&format!("retry: {r}\n"));
        }
        for line in self.data.split('\n') {
            out.push_str("data: ");
            out.push_str(line.strip_suffix('\r').unwrap_or(line));
            out.push('\n');
        }
        out.push('\n');
        out
    }
}

/// The JSON messages in a complete SSE body (events whose data is not JSON are skipped).
pub fn json_messages(bytes: &[u8]) -> Vec<serde_json::Value> {
    let mut p = Parser::new();
    let mut events = p.push(bytes).unwrap_or_default();
    events.extend(p.finish());
    events
        .iter()
        .filter_map(|e| serde_json::from_str(&e.data).ok())
        .collect()
}

/// Upper bound on one buffered, unterminated event; beyond it the stream is treated as garbage.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// Incremental parser: `push` bytes, get the events completed so far.
#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
    current: Event,
    has_fields: bool,
    data_lines: usize,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk; returns completed events. Errors when an event grows past `MAX_EVENT_BYTES`.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, String> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            let mut line = &self.buf[start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line).into_owned();
            start = end + 1;
            if let Some(ev) = self.line(&line) {
                events.push(ev);
            }
        }
        self.buf.drain(..start);
        if self.buf.len() + self.current.data.len() > MAX_EVENT_BYTES {
            return Err("SSE event exceeds the size limit".into());
        }
        Ok(events)
    }

    /// Completes a final event that was not followed by a blank line (stream ended).
    pub fn finish(&mut self) -> Option<Event> {
        if !self.buf.is_empty() {
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
            self.line(line.trim_end_matches('\r'));
        }
        self.dispatch()
    }

    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line, ""),
        };
        self.has_fields = true;
        match field {
            "data" => {
                if self.data_lines > 0 {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.data_lines += 1;
            }
            "event" => self.current.event = Some(value.to_string()),
            "id" => self.current.id = Some(value.to_string()),
            "retry" => self.current.retry = value.parse().ok(),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<Event> {
        if !self.has_fields {
            return None;
        }
        self.has_fields = false;
        self.data_lines = 0;
        Some(std::mem::take(&mut self.current))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_across_chunks() {
        let mut p = Parser::new();
        let mut out = p
            .push(
                b"id: 1
event: message
da",
            )
            .unwrap();
        assert!(out.is_empty());
        out.extend(
            p.push(b"ta: {\"a\":1}\r\n\r\n: keepalive\n\ndata: x\ndata: y\n\n")
                .unwrap(),
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].id.as_deref(), Some("1"));
        assert_eq!(out[0].event.as_deref(), Some("message"));
        assert_eq!(out[0].data, "{\"a\":1}");
        assert_eq!(out[1].data, "x\ny");
    }

    #[test]
    fn priming_event_with_empty_data_and_final_unterminated_event() {
        let mut p = Parser::new();
        let out = p.push(b"id: abc\ndata:\n\ndata: tail").unwrap();
        assert_eq!(
            out,
            vec![Event {
                id: Some("abc".into()),
                ..Default::default()
            }]
        );
        assert_eq!(p.finish().unwrap().data, "tail");
        assert!(p.finish().is_none());
    }

    #[test]
    fn encode_round_trips() {
        let ev = Event {
            id: Some("s-3".into()),
            event: None,
            data: "a\nb".into(),
            retry: Some(5),
        };
        let mut p = Parser::new();
        let out = p.push(ev.encode().as_bytes()).unwrap();
        assert_eq!(out, vec![ev]);
    }

    #[test]
    fn oversized_event_is_an_error() {
        let mut p = Parser::new();
        let big = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert!(p.push(&big).is_err());
    }
}
