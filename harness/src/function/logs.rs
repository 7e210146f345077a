//! What a function prints, captured per invocation: bounded (the first and the last 32 KiB
//! are kept, so a function printing megabytes costs no memory), redacted, and scanned for
//! secret values as it streams in, so a leak in a dropped middle part is still reported (P8).

use crate::redact::Redactor;
use std::collections::{BTreeSet, VecDeque};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::net::unix::pipe;

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
    /// The pipes read by [`LogSink::read_from`] (gone once a pipe reached its end).
    pipes: Mutex<Vec<Weak<PipeSource>>>,
    /// Whether output also came through [`LogSink::append`] from a source the sink cannot
    /// see into (a container's log stream): then settling waits for quiet instead.
    untracked: AtomicBool,
}

/// One pipe a reader task drains into the sink.
struct PipeSource {
    pipe: pipe::Receiver,
    /// Held from taking bytes out of the pipe until they are appended, so that "the pipe is
    /// empty" seen under it means "every byte written so far is in the sink".
    reading: Mutex<()>,
}

impl PipeSource {
    /// Bytes written to the pipe and not read yet.
    fn unread(&self) -> usize {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int; the descriptor is open while `self` lives.
        let r = unsafe { libc::ioctl(self.pipe.as_raw_fd(), libc::FIONREAD, &mut n) };
        if r == 0 { n.max(0) as usize } else { 0 }
    }
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
        Arc::new(LogSink { redactor, inner: Mutex::new(Capture::default()), pipes: Mutex::new(Vec::new()), untracked: AtomicBool::new(false) })
    }

    /// Drains the read end of a pipe (a process's stdout or stderr) into the sink until the
    /// pipe ends, on a task of its own. Output that arrives this way settles exactly: see
    /// [`LogSink::settle`].
    pub fn read_from(self: &Arc<Self>, fd: OwnedFd) -> std::io::Result<()> {
        let source = Arc::new(PipeSource { pipe: pipe::Receiver::from_owned_fd(fd)?, reading: Mutex::new(()) });
        self.pipes.lock().expect("pipes lock").push(Arc::downgrade(&source));
        let sink = Arc::clone(self);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                if source.pipe.readable().await.is_err() {
                    break;
                }
                let _reading = source.reading.lock().expect("pipe lock");
                match source.pipe.try_read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => sink.take_in(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => break,
                }
            }
        });
        Ok(())
    }

    /// Appends output from a source the sink does not read itself.
    pub fn append(&self, bytes: &[u8]) {
        self.untracked.store(true, Ordering::Relaxed);
        self.take_in(bytes);
    }

    fn take_in(&self, bytes: &[u8]) {
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

    /// Waits until what the function wrote before its result reached rotcheck is in the sink:
    /// it wrote its last lines before answering, but the readers may not have drained them.
    /// For pipes that is exact and usually immediate: every pipe is empty with no read in
    /// progress. Output from elsewhere (a container's log stream) settles once it has been
    /// quiet for 10 ms. Either way at most 200 ms.
    pub async fn settle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(200);
        if self.untracked.load(Ordering::Relaxed) {
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
        while !self.drained() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// Whether every pipe still open is empty and not being read from.
    fn drained(&self) -> bool {
        let mut pipes = self.pipes.lock().expect("pipes lock");
        pipes.retain(|p| p.strong_count() > 0);
        pipes.iter().filter_map(Weak::upgrade).all(|p| {
            let _reading = p.reading.lock().expect("pipe lock");
            p.unread() == 0
        })
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

    /// What a process wrote to its pipe before settling is in the sink after it, every time,
    /// however the reader task was scheduled.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn settling_takes_in_everything_written_to_a_pipe() {
        let sink = LogSink::new(Redactor::new());
        let (reader, writer) = std::io::pipe().unwrap();
        sink.read_from(OwnedFd::from(reader)).unwrap();
        let mut writer = Some(writer);
        for round in 0..200 {
            use std::io::Write;
            // Mostly small lines, sometimes more than a pipe holds (the writer then waits for
            // the reader, as a chatty function does).
            let len = if round % 50 == 49 { 200_000 } else { 1 + round * 7 };
            let letter = b'A' + (round % 26) as u8; // not in the "left out" marker
            let line = vec![letter; len];
            let mut w = writer.take().unwrap();
            let w_back = tokio::task::spawn_blocking(move || {
                w.write_all(&line).unwrap();
                w
            })
            .await
            .unwrap();
            writer = Some(w_back);
            sink.settle().await;
            let c = sink.take();
            let kept = c.text.bytes().filter(|b| *b == letter).count() as u64;
            assert_eq!(kept + c.dropped, len as u64, "round {round}");
        }
        drop(writer);
    }

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
