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

    /// Wire form, terminated by a blank line. Multi-line data (split at LF, CRLF or CR) becomes
    /// several `data:` lines; line breaks in `event` and `id`, which cannot carry them, are dropped
    /// so that no value can inject a field or end the event early.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Some(ev) = &self.event {
            out.push_str(&format!("event: {}\n", one_line(ev)));
        }
        if let Some(id) = &self.id {
            out.push_str(&format!("id: {}\n", one_line(id)));
        }
        if let Some(r) = self.retry {
            out.push_str(&format!("retry: {r}\n"));
        }
        for line in self.data.replace("\r\n", "\n").split(['\n', '\r']) {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        out
    }
}

fn one_line(v: &str) -> String {
    v.chars().filter(|c| !matches!(c, '\r' | '\n')).collect()
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

/// Upper bound on one buffered line or one event's data; beyond it the stream is treated as
/// garbage.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// Incremental parser: `push` bytes, get the events completed so far. Lines end in LF, CRLF or
/// a lone CR, as the SSE specification allows, wherever the chunk boundaries fall.
#[derive(Debug, Default)]
pub struct Parser {
    /// The current line, not terminated yet. Only the new bytes of each chunk are scanned, so
    /// a long line delivered in many small chunks costs linear time.
    line: Vec<u8>,
    current: Event,
    has_fields: bool,
    data_lines: usize,
    /// The last chunk ended in CR: an LF starting the next chunk belongs to that line ending.
    after_cr: bool,
    /// A line has been read (a byte-order mark is skipped on the first one only).
    started: bool,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk; returns completed events. Errors when a line or an event's data grows
    /// past `MAX_EVENT_BYTES`.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, String> {
        let mut events = Vec::new();
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&rest[..pos]);
            let cr = rest[pos] == b'\r';
            rest = &rest[pos + 1..];
            if cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            let line = std::mem::take(&mut self.line);
            if let Some(ev) = self.read_line(&line) {
                events.push(ev);
            }
            if self.current.data.len() > MAX_EVENT_BYTES {
                return Err("SSE event exceeds the size limit".into());
            }
        }
        self.line.extend_from_slice(rest);
        if self.line.len() + self.current.data.len() > MAX_EVENT_BYTES {
            return Err("SSE event exceeds the size limit".into());
        }
        Ok(events)
    }

    /// Completes a final event that was not followed by a blank line (stream ended).
    pub fn finish(&mut self) -> Option<Event> {
        self.after_cr = false;
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            if let Some(ev) = self.read_line(&line) {
                return Some(ev);
            }
        }
        self.dispatch()
    }

    fn read_line(&mut self, raw: &[u8]) -> Option<Event> {
        let line = String::from_utf8_lossy(raw);
        let line = if self.started {
            &line[..]
        } else {
            self.started = true;
            line.strip_prefix('\u{feff}').unwrap_or(&line)
        };
        self.line(line)
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
            // The specification ignores an id containing NUL and a retry that is not all digits.
            "id" if !value.contains('\0') => self.current.id = Some(value.to_string()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(r) = value.parse() {
                    self.current.retry = Some(r);
                }
            }
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
    fn lone_cr_ends_lines_wherever_the_chunks_split() {
        let stream = b"id: 1\rdata: {\"a\":1}\r\rdata: x\r\ndata: y\r";
        let whole = {
            let mut p = Parser::new();
            let mut out = p.push(stream).unwrap();
            out.extend(p.finish());
            out
        };
        assert_eq!(whole.len(), 2);
        assert_eq!(
            (whole[0].id.as_deref(), whole[0].data.as_str()),
            (Some("1"), "{\"a\":1}")
        );
        assert_eq!(whole[1].data, "x\ny");
        // A CR at the end of one chunk and an LF at the start of the next are one line ending.
        let mut p = Parser::new();
        let mut out = p.push(b"data: a\r").unwrap();
        out.extend(p.push(b"\n\r\n").unwrap());
        assert_eq!(out, vec![Event::message("a")]);
    }

    #[test]
    fn encoded_ids_and_names_cannot_add_fields() {
        let ev = Event {
            id: Some("1\ndata: injected\n".into()),
            event: Some("message\r\nid: 2".into()),
            data: "a\rb".into(),
            retry: None,
        };
        let mut p = Parser::new();
        let out = p.push(ev.encode().as_bytes()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id.as_deref(), Some("1data: injected"));
        assert_eq!(out[0].event.as_deref(), Some("messageid: 2"));
        assert_eq!(out[0].data, "a\nb");
    }

    #[test]
    fn byte_order_mark_and_malformed_retry_are_ignored() {
        let mut p = Parser::new();
        let out = p.push("\u{feff}retry: 100\nretry: 5x\ndata: d\n\n".as_bytes()).unwrap();
        assert_eq!(out[0].retry, Some(100));
        assert_eq!(out[0].data, "d");
    }

    #[test]
    fn oversized_event_is_an_error() {
        let mut p = Parser::new();
        let big = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert!(p.push(&big).is_err());
    }
}
