//! TCP connections of the command port, both ways: `Session` is one
//! incoming connection (read one line, answer, close); `Call` is one
//! outgoing command to another host (connect, write a line, read the answer
//! until the peer closes). Both are phase enums moved on by readiness
//! events; neither ever blocks.

use crate::command::{self, MAX_LINE, MAX_PAYLOAD_LINE};
use mio::net::TcpStream;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};

/// What the loop should do with a connection after an event.
#[derive(Debug, PartialEq)]
pub enum Next {
    Continue,
    /// A whole request line arrived: dispatch it.
    Request(Vec<u8>),
    Close,
}

#[derive(Debug, PartialEq, Clone, Copy)]
pub enum Phase {
    Reading,
    /// The answer depends on other hosts (ALLPING, RELAY): nothing to do.
    Waiting,
    Writing,
    /// Answer sent and write side shut: read and discard until the peer
    /// closes, so unread input does not turn our close into a reset that
    /// would destroy the answer in flight.
    Draining,
}

pub struct Session {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub phase: Phase,
    /// Monotonic time after which the connection is closed.
    pub deadline: f64,
    /// The verb being answered (for error frames).
    pub verb: String,
    /// Set when the session refused its input by itself (too long), for
    /// the loop to count.
    pub refusal: Option<String>,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// An answer shared with other sessions (BINARY), written instead of `out`.
    shared: Option<std::sync::Arc<Vec<u8>>>,
    pos: usize,
}

const READ_CHUNK: usize = 16 * 1024;

impl Session {
    pub fn new(stream: TcpStream, peer: SocketAddr, deadline: f64) -> Session {
        Session {
            stream,
            peer,
            phase: Phase::Reading,
            deadline,
            verb: String::new(),
            refusal: None,
            buf: Vec::new(),
            out: Vec::new(),
            shared: None,
            pos: 0,
        }
    }

    /// The line limit that applies, judged from the verb read so far.
    fn limit(&self) -> usize {
        let verb_end = self.buf.iter().position(|b| b.is_ascii_whitespace());
        match verb_end {
            Some(i) if command::is_payload_verb(&self.buf[..i]) => MAX_PAYLOAD_LINE,
            _ => MAX_LINE,
        }
    }

    /// Reads what is there. Returns a request once a line is complete (or
    /// the peer closed after sending one without a newline).
    pub fn on_readable(&mut self) -> Next {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return match self.phase {
                        Phase::Reading if !self.buf.is_empty() => {
                            Next::Request(std::mem::take(&mut self.buf))
                        }
                        Phase::Waiting | Phase::Writing => Next::Continue,
                        _ => Next::Close,
                    };
                }
                Ok(n) => {
                    if self.phase != Phase::Reading {
                        continue; // discard: one command per connection
                    }
                    let start = self.buf.len();
                    self.buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = self.buf[start..].iter().position(|&b| b == b'\n') {
                        let mut line = std::mem::take(&mut self.buf);
                        line.truncate(start + i + 1);
                        return Next::Request(line);
                    }
                    let limit = self.limit();
                    if self.buf.len() > limit {
                        self.verb = verb_of(&self.buf);
                        self.buf = Vec::new();
                        let reason = format!("too long (limit {limit} bytes)");
                        self.refusal = Some("too long".into());
                        return self.answer(command::frame_err(&self.verb.clone(), &reason));
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::Continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Next::Close,
            }
        }
    }

    /// Queues the whole answer and starts writing it.
    pub fn answer(&mut self, text: String) -> Next {
        self.out = text.into_bytes();
        self.pos = 0;
        self.phase = Phase::Writing;
        self.on_writable()
    }

    /// Queues a shared answer (no copy) and starts writing it.
    pub fn answer_shared(&mut self, data: std::sync::Arc<Vec<u8>>) -> Next {
        self.out = Vec::new();
        self.shared = Some(data);
        self.pos = 0;
        self.phase = Phase::Writing;
        self.on_writable()
    }

    /// Writes what the socket takes; when all is written, shuts the write side.
    pub fn on_writable(&mut self) -> Next {
        if self.phase != Phase::Writing {
            return Next::Continue;
        }
        let out: &[u8] = match &self.shared {
            Some(s) => s,
            None => &self.out,
        };
        while self.pos < out.len() {
            match self.stream.write(&out[self.pos..]) {
                Ok(0) => return Next::Close,
                Ok(n) => self.pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::Continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Next::Close,
            }
        }
        let _ = self.stream.flush();
        let _ = self.stream.shutdown(Shutdown::Write);
        self.out = Vec::new();
        self.shared = None;
        self.phase = Phase::Draining;
        Next::Continue
    }

    pub fn wants_write(&self) -> bool {
        self.phase == Phase::Writing
    }
}

/// The verb of a (possibly partial) request, upper-cased, for error frames.
pub fn verb_of(buf: &[u8]) -> String {
    let end = buf.iter().position(|b| b.is_ascii_whitespace()).unwrap_or(buf.len()).min(32);
    let v = String::from_utf8_lossy(&buf[..end]).to_ascii_uppercase();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        "?".into()
    } else {
        v
    }
}

#[derive(Debug, PartialEq, Clone, Copy)]
pub enum CallPhase {
    Connecting,
    Writing,
    Reading,
}

/// One outgoing command: connect, send one line, read until the peer closes.
pub struct Call {
    pub stream: TcpStream,
    pub addr: SocketAddr,
    pub phase: CallPhase,
    pub deadline: f64,
    out: Vec<u8>,
    pos: usize,
    inbuf: Vec<u8>,
    max_answer: usize,
}

/// How a call ended: the answer text, or why there is none.
pub type CallResult = Result<String, String>;

impl Call {
    /// Starts a non-blocking connect.
    pub fn start_with(
        stream: TcpStream,
        addr: SocketAddr,
        line: &str,
        deadline: f64,
        max_answer: usize,
    ) -> std::io::Result<Call> {
        // An empty line makes a connect-only call (a `tcp:` probe).
        let mut out = line.as_bytes().to_vec();
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        Ok(Call {
            stream,
            addr,
            phase: CallPhase::Connecting,
            deadline,
            out,
            pos: 0,
            inbuf: Vec::new(),
            max_answer,
        })
    }

    /// Moves the call on after a readiness event. `Some` when it is over.
    pub fn on_event(&mut self) -> Option<CallResult> {
        if self.phase == CallPhase::Connecting {
            match self.stream.take_error() {
                Ok(Some(e)) | Err(e) => return Some(Err(format!("connect: {e}"))),
                Ok(None) => {}
            }
            match self.stream.peer_addr() {
                Ok(_) if self.out.is_empty() => return Some(Ok(String::new())),
                Ok(_) => self.phase = CallPhase::Writing,
                Err(e) if e.kind() == ErrorKind::NotConnected => return None,
                Err(e) => return Some(Err(format!("connect: {e}"))),
            }
        }
        if self.phase == CallPhase::Writing {
            while self.pos < self.out.len() {
                match self.stream.write(&self.out[self.pos..]) {
                    Ok(0) => return Some(Err("peer closed while sending".into())),
                    Ok(n) => self.pos += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Some(Err(format!("send: {e}"))),
                }
            }
            let _ = self.stream.shutdown(Shutdown::Write);
            self.out = Vec::new();
            self.phase = CallPhase::Reading;
        }
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Some(
                        String::from_utf8(std::mem::take(&mut self.inbuf))
                            .map_err(|_| "answer is not UTF-8".to_string()),
                    )
                }
                Ok(n) => {
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    if self.inbuf.len() > self.max_answer {
                        return Some(Err("answer too long".into()));
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Some(Err(format!("receive: {e}"))),
            }
        }
    }

    pub fn wants_write(&self) -> bool {
        self.phase != CallPhase::Reading
    }
}
