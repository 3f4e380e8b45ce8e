//! SSE framing (`mcp::sse`): a stream split into chunks anywhere parses to the same events as
//! the whole stream; LF, CRLF and lone-CR line endings are equivalent; arbitrary bytes never
//! panic; what the encoder writes parses back to the same events, comments and keep-alives
//! between them notwithstanding.
use mcp_gateway::mcp::sse::{self, Event, Parser};
use proptest::prelude::*;

use crate::support::check;

/// Parses `chunks` in order, then ends the stream.
fn parse(chunks: &[&[u8]]) -> Result<Vec<Event>, String> {
    let mut p = Parser::new();
    let mut out = Vec::new();
    for c in chunks {
        out.extend(p.push(c)?);
    }
    out.extend(p.finish());
    Ok(out)
}

/// `bytes` cut at the given (unordered, possibly repeated or empty-chunk-making) positions.
fn split<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut chunks = Vec::new();
    let mut prev = 0;
    for c in at.into_iter().chain([bytes.len()]) {
        chunks.push(&bytes[prev..c]);
        prev = c;
    }
    chunks
}

/// One line of a stream, before its line ending is chosen.
fn line() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("data".to_string()),
        Just("id".to_string()),
        Just("event".to_string()),
        Just("retry".to_string()),
        Just(String::new()),
        "[a-z:]{1,6}",
    ];
    // Any text but a line break (which would end the line).
    let value = prop_oneof!["[^\r\n]{0,12}", "[0-9]{1,4}", Just("{\"jsonrpc\":\"2.0\"}".to_string())];
    prop_oneof![
        4 => (name, prop::option::of(prop_oneof![Just(":"), Just(": "), Just(":  ")]), value)
            .prop_map(|(n, colon, v)| match colon { Some(c) => format!("{n}{c}{v}"), None => n }),
        1 => Just(String::new()),
        1 => "[^\r\n]{0,10}".prop_map(|c| format!(":{c}")),
    ]
}

const ENDINGS: [&str; 3] = ["\n", "\r\n", "\r"];

/// A stream of lines, each with its own ending, optionally after a byte-order mark; raw bytes
/// (invalid UTF-8, NULs) are mixed in.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        6 => (line(), 0..3usize).prop_map(|(l, e)| format!("{l}{}", ENDINGS[e]).into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..6),
    ];
    (any::<bool>(), prop::collection::vec(piece, 0..24)).prop_map(|(bom, pieces)| {
        let mut out = if bom {
            "\u{feff}".as_bytes().to_vec()
        } else {
            Vec::new()
        };
        out.extend(pieces.concat());
        out
    })
}

/// An event the encoder can represent: `id` without NUL (the specification ignores such ids),
/// data with line breaks normalized to LF (every break becomes one `data:` line).
fn event() -> impl Strategy<Value = Event> {
    (
        prop::option::of("[^\u{0}]{0,12}"),
        prop::option::of(".{0,8}"),
        prop::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(id, event, data, retry)| Event { id, event, data, retry })
}

/// The event as the parser must return it from the encoder's output.
fn as_parsed(e: &Event) -> Event {
    let strip = |v: &String| v.chars().filter(|c| !matches!(c, '\r' | '\n')).collect::<String>();
    Event {
        id: e.id.as_ref().map(strip),
        event: e.event.as_ref().map(strip),
        data: e.data.replace("\r\n", "\n").replace('\r', "\n"),
        retry: e.retry,
    }
}

#[test]
fn chunk_boundaries_are_invisible() {
    let cuts = prop::collection::vec(any::<usize>(), 0..12);
    check("sse/chunking", (stream(), cuts), |(bytes, cuts)| {
        let whole = parse(&[&bytes]);
        let chunked = parse(&split(&bytes, &cuts));
        prop_assert_eq!(&whole, &chunked);
        // One byte at a time is the most hostile chunking.
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(whole, parse(&bytewise));
        Ok(())
    });
}

#[test]
fn line_endings_are_equivalent() {
    let lines = prop::collection::vec(line(), 0..16);
    check(
        "sse/line-endings",
        (lines, prop::collection::vec(0..3usize, 16)),
        |(lines, mixed)| {
            let render = |ending: &dyn Fn(usize) -> &'static str| {
                lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("{l}{}", ending(i)))
                    .collect::<String>()
            };
            let lf = parse(&[render(&|_| "\n").as_bytes()]);
            prop_assert_eq!(&lf, &parse(&[render(&|_| "\r\n").as_bytes()]));
            prop_assert_eq!(&lf, &parse(&[render(&|_| "\r").as_bytes()]));
            // A CR followed by an empty line ending in LF would read as one CRLF: the one mix
            // that is not the same stream.
            let mix = |i: usize| match ENDINGS[mixed[i]] {
                "\r" if lines.get(i + 1).is_some_and(|l| l.is_empty()) && ENDINGS[mixed[i + 1]] != "\r" => "\r\n",
                e => e,
            };
            prop_assert_eq!(&lf, &parse(&[render(&mix).as_bytes()]));
            Ok(())
        },
    );
}

#[test]
fn arbitrary_bytes() {
    let cuts = prop::collection::vec(any::<usize>(), 0..8);
    check(
        "sse/arbitrary-bytes",
        (prop::collection::vec(any::<u8>(), 0..512), cuts),
        |(bytes, cuts)| {
            let events = parse(&split(&bytes, &cuts)).expect("small streams are within the limit");
            prop_assert_eq!(Ok(events), parse(&[&bytes]));
            let _ = sse::json_messages(&bytes);
            Ok(())
        },
    );
}

#[test]
fn encoded_events_round_trip_through_any_chunking() {
    let noise = prop_oneof![Just(": keep-alive\n\n"), Just(":\n"), Just("\n"), Just("")];
    let items = prop::collection::vec((event(), noise), 0..8);
    check(
        "sse/encode-round-trip",
        (items, prop::collection::vec(any::<usize>(), 0..12)),
        |(items, cuts)| {
            let wire: String = items.iter().map(|(e, n)| format!("{n}{}", e.encode())).collect();
            let want: Vec<Event> = items.iter().map(|(e, _)| as_parsed(e)).collect();
            prop_assert_eq!(parse(&split(wire.as_bytes(), &cuts)), Ok(want.clone()));
            prop_assert_eq!(
                sse::json_messages(wire.as_bytes()).len(),
                want.iter()
                    .filter(|e| serde_json::from_str::<serde_json::Value>(&e.data).is_ok())
                    .count()
            );
            Ok(())
        },
    );
}
