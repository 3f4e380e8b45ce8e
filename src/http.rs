//! Platform-neutral HTTP request/response types, so the core never touches the Workers runtime.
use futures_util::stream::LocalBoxStream;

/// A streamed body: chunks of bytes, or an error text that ends the stream.
pub type ByteStream = LocalBoxStream<'static, Result<Vec<u8>, String>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }
}

/// Header list with case-insensitive lookup; order and duplicates are kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.0.push((name.to_string(), value.into()));
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// An incoming request, body already read (bodies are bounded by `MAX_BODY_BYTES` before this).
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: Headers,
    pub body: Vec<u8>,
}

pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    Stream(ByteStream),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Empty => write!(f, "Empty"),
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Body::Stream(_) => write!(f, "Stream"),
        }
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Headers,
    pub body: Body,
}

impl HttpResponse {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Headers::new(),
            body: Body::Empty,
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::typed(status, "application/json", value.to_string().into_bytes())
    }

    pub fn typed(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: Headers::new().with("content-type", content_type),
            body: Body::Bytes(body),
        }
    }

    pub fn sse(stream: ByteStream) -> Self {
        Self {
            status: 200,
            headers: Headers::new()
                .with("content-type", "text/event-stream")
                .with("cache-control", "no-cache")
                // Tells buffering proxies to pass events through as they come.
                .with("x-accel-buffering", "no"),
            body: Body::Stream(stream),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.set(name, value);
        self
    }

    /// The body as bytes when it is not streamed (tests and small responses).
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Bytes(b) => Some(b),
            Body::Empty => Some(&[]),
            Body::Stream(_) => None,
        }
    }
}
