//! What a function prints, captured per invocation: bounded (the first and the last 32 KiB
//! are kept, so a function printing megabytes costs no memory), redacted, and scanned for
//! secret values as it streams in, so a leak in a dropped middle part is still reported (P8).

use crate::redact::Redactor;
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

/// Bytes kept from the start of an invocation's output.
pub const HEAD_BYTES: usize = 32 * 1024;
/// Bytes kept from the end of it.
pub const TAIL_BYTES: usize = 32 * 1024;
/// How much of the previous chunk a leak scan overlaps, so a value split across two reads is
/// still found.
const SCAN_OVERLAP: usize = 16 * 1024;

/// The output of one function process, split into invocations.
pub struct LogSink {
    redactor: Arc<Redactor>,
    inner: Mutex<Capture>,
}

#[derive(Default)]
struct Capture {
    /// Bytes appended since the sink was made (for [`LogSink::settle`]).
    appended: u64,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    dropped: u64,
    overlap: Vec<u8>,
    leaked: BTreeSet<String>,
}

/// One invocation's output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captured {
    /// The output, bounded and redacted.
    pub text: String,
    /// Aliases of the secret values that appeared.
    pub leaked: Vec<String>,
    /// Bytes left out of `text` (between head and tail).
    pub dropped: u64,
}

impl LogSink {
    /// A sink that redacts with `redactor`.
    pub fn new(redactor: Arc<Redactor>) -> Arc<LogSink> {
        Arc::new(LogSink { redactor, inner: Mutex::new(Capture::default()) })
    }

    /// Appends output.
    pub fn append(&self, bytes: &[u8]) {
        let mut c = self.inner.lock().expect("log lock");
        c.appended += bytes.len() as u64;
        // Scan for leaks over the overlap and the new bytes.
        let mut window = std::mem::take(&mut c.overlap);
        window.extend_from_slice(bytes);
        let found = self.redactor.aliases_in(&String::from_utf8_lossy(&window));
        c.leaked.extend(found);
        let keep_from = window.len().saturating_sub(SCAN_OVERLAP);
        c.overlap = window[keep_from..].to_vec();
        // Bound the text.
        let room = HEAD_BYTES.saturating_sub(c.head.len());
        let (to_head, rest) = bytes.split_at(room.min(bytes.len()));
        c.head.extend_from_slice(to_head);
        for &b in rest {
            if c.tail.len() == TAIL_BYTES {
                c.tail.pop_front();
                c.dropped += 1;
            }
            c.tail.push_back(b);
        }
    }

    /// Waits until the output has been quiet for 10 ms (at most 200 ms): a function's last
    /// lines are in the pipe before its result reaches rotcheck, but the readers may not have
    /// drained them yet.
    pub async fn settle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(200);
        let mut seen = self.inner.lock().expect("log lock").appended;
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            let now = self.inner.lock().expect("log lock").appended;
            if now == seen || std::time::Instant::now() > deadline {
                return;
            }
            seen = now;
        }
    }

    /// Returns what was captured since the last call and starts a new capture.
    pub fn take(&self) -> Captured {
        let mut guard = self.inner.lock().expect("log lock");
        let appended = guard.appended;
        let c = std::mem::take(&mut *guard);
        guard.appended = appended;
        drop(guard);
        let mut text = String::from_utf8_lossy(&c.head).into_owned();
        if c.dropped > 0 {
            text.push_str(&format!("\n[... {} bytes of output left out ...]\n", c.dropped));
        }
        let tail: Vec<u8> = c.tail.into_iter().collect();
        text.push_str(&String::from_utf8_lossy(&tail));
        Captured { text: self.redactor.redact(&text), leaked: c.leaked.into_iter().collect(), dropped: c.dropped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SecretValue;

    #[test]
    fn megabytes_are_bounded_and_leaks_in_the_middle_are_found() {
        let r = Redactor::new();
        r.register_value("s", 1, &SecretValue::String(r#"{"password":"middle-secret-9"}"#.into()));
        let sink = LogSink::new(r);
        let line = vec![b'x'; 1000];
        for i in 0..5000 {
            sink.append(&line);
            if i == 2500 {
                sink.append(b"oops middle-");
                sink.append(b"secret-9 printed");
            }
        }
        let c = sink.take();
        assert!(c.text.len() < HEAD_BYTES + TAIL_BYTES + 200);
        assert!(c.dropped > 4_000_000);
        assert_eq!(c.leaked, vec!["<password of s:v1>".to_string()]);
        assert!(!c.text.contains("middle-secret-9"));
        // The next capture starts empty.
        assert_eq!(sink.take(), Captured::default());
    }

    #[test]
    fn small_output_is_kept_whole_and_redacted() {
        let r = Redactor::new();
        r.register_value("s", 2, &SecretValue::String(r#"{"password":"pw-visible-1"}"#.into()));
        let sink = LogSink::new(r);
        sink.append(b"starting\nusing pw-visible-1\n");
        let c = sink.take();
        assert_eq!(c.text, "starting\nusing <password of s:v2>\n");
        assert_eq!(c.leaked.len(), 1);
    }
}
