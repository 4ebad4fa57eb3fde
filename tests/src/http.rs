//! A minimal HTTP/1.1 client (GET only) over any byte stream, and free loopback ports.
//!
//! Small on purpose: the tests need GET with a few headers over TCP and Unix sockets, keep-alive
//! for the benchmark, and bodies with `Content-Length` or chunked encoding. Nothing else.

use anyhow::{Context as _, Result, bail};
use std::io::{BufRead as _, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long any single read or write may block.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Larger bodies mean something is wrong; stop reading rather than fill memory.
const MAX_BODY: usize = 64 << 20;
/// What Prometheus 2.42 sends, so our scrapes negotiate like a real one.
pub const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
    application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// A response, body fully read.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Where a server answers: a TCP address or a Unix socket.
#[derive(Clone, Debug)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// One HTTP/1.1 connection, reused across requests (keep-alive).
#[derive(Debug)]
pub struct Connection<S> {
    stream: BufReader<S>,
}

// === impl Response ===

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

// === impl Endpoint ===

impl Endpoint {
    /// One GET on a fresh connection.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Response> {
        match self {
            Self::Tcp(addr) => Connection::tcp(*addr)?.get(path, headers),
            Self::Unix(socket) => Connection::unix(socket)?.get(path, headers),
        }
    }
}

// === impl Connection ===

impl Connection<TcpStream> {
    pub fn tcp(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Self::new(stream))
    }
}

impl Connection<UnixStream> {
    pub fn unix(path: &Path) -> Result<Self> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("cannot connect to {}", path.display()))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Self::new(stream))
    }
}

impl<S: Read + Write> Connection<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream: BufReader::new(stream),
        }
    }

    /// Sends `GET path` with `headers` and reads the whole response.
    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Response> {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .context("failed to send request")?;
        self.read_response()
    }

    fn read_response(&mut self) -> Result<Response> {
        let status_line = self.line()?;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("bad status line {status_line:?}"))?;
        let mut headers = Vec::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .with_context(|| format!("bad header {line:?}"))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        response.body = if response
            .header("transfer-encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
        {
            self.chunked_body()?
        } else if let Some(length) = response.header("content-length") {
            let length: usize = length.parse().context("bad content-length")?;
            self.exact(length)?
        } else {
            let mut body = Vec::new();
            (&mut self.stream)
                .take(MAX_BODY as u64)
                .read_to_end(&mut body)?;
            body
        };
        Ok(response)
    }

    fn chunked_body(&mut self) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let size_line = self.line()?;
            let size_hex = size_line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_hex, 16)
                .with_context(|| format!("bad chunk size {size_line:?}"))?;
            if size == 0 {
                // Trailers, then the empty line.
                while !self.line()?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.exact(size)?);
            self.line()?;
        }
    }

    fn exact(&mut self, length: usize) -> Result<Vec<u8>> {
        if length > MAX_BODY {
            bail!("body of {length} bytes is too large");
        }
        let mut body = vec![0; length];
        self.stream
            .read_exact(&mut body)
            .context("connection closed mid-body")?;
        Ok(body)
    }

    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        if self.stream.read_line(&mut line)? == 0 {
            bail!("connection closed");
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// One GET on a fresh TCP connection.
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<Response> {
    Connection::tcp(addr)?.get(path, headers)
}

/// A loopback port that was free a moment ago (the kernel hands out ephemeral ports in order,
/// so a reuse before the caller binds it is unlikely).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Percent-encodes a query-string value (RFC 3986 unreserved characters pass through).
pub fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
