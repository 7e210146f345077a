//! A TCP fault proxy between a rotation function and its database.
//!
//! Production databases refuse connections, drop them half-way through a statement, answer
//! slowly or not at all; a rotation function has to survive all of that without breaking the
//! rotation contract. The runner gives every test case its own [`FaultProxy`] in front of the
//! real server and points the function at [`FaultProxy::addr`] instead of the server, so that:
//!
//! * a schedule can fault "the k-th database connection": the [`ProxyMode`] is switched between
//!   connections, and each connection keeps the mode it was accepted with, so the fault hits
//!   exactly the connection the schedule means, on every run;
//! * the runner can watch connections open and close ([`FaultProxy::subscribe`]), and after it
//!   kills a function it can cut the function's connections ([`FaultProxy::drop_all`]) and wait
//!   until the server side is quiet ([`FaultProxy::wait_until_idle`]) before it observes the
//!   database, so a dying process cannot change what is observed.
//!
//! Faults end connections with a TCP reset (`SO_LINGER` 0), never a clean close: a clean EOF
//! would look like an orderly shutdown to a database driver, which is not the failure we mean.
//! Unix only (half-closes go through `libc::shutdown`).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio::task::{AbortHandle, JoinHandle};

/// Events a subscriber may fall behind by before it sees `RecvError::Lagged`.
const EVENT_CAPACITY: usize = 1024;
/// Bytes read from one side before they are forwarded to the other.
const CHUNK: usize = 16 * 1024;

/// What the proxy does with a connection. A connection keeps the mode that was set when it was
/// accepted, so switching modes between two connections faults exactly the second one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward bytes both ways, unchanged.
    #[default]
    Pass,
    /// Accept, then reset at once: the client's first read or write fails, no byte reaches the
    /// server. What a database that is down or out of connection slots looks like to a driver.
    Refuse,
    /// Forward until `bytes` bytes in total (both directions together) have passed, then reset
    /// both sides: a connection lost in the middle of a statement.
    CloseAfter {
        /// Bytes forwarded, client to server plus server to client, before the reset.
        bytes: u64,
    },
    /// Wait this long before connecting to the server, and again before forwarding each chunk:
    /// a slow network, to push an invocation past its deadline.
    Delay(Duration),
    /// Accept and never forward anything (the server is never contacted); the connection stays
    /// open until the client gives up or the proxy drops it: a server that hangs.
    Blackhole,
}

/// Something that happened to a connection, in the order it happened to that connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyEvent {
    /// Connection `id` (1 for the proxy's first connection, then 2, ...) was accepted.
    Opened {
        /// The connection's id.
        id: u64,
    },
    /// Connection `id` ended, however it ended (either side closed, fault, `drop_all`, proxy
    /// dropped). Sent exactly once per connection, always after its `Opened`.
    Closed {
        /// The connection's id.
        id: u64,
        /// Bytes forwarded from the client to the server.
        bytes_up: u64,
        /// Bytes forwarded from the server to the client.
        bytes_down: u64,
    },
}

/// A TCP proxy in front of one database server that can refuse, cut, slow down or swallow
/// connections, and reports every connection it sees.
///
/// Dropping it (or [`FaultProxy::stop`]) stops accepting, resets every open connection and ends
/// every task it started.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on an ephemeral loopback port that forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        FaultProxy::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), upstream).await
    }

    /// Starts a proxy listening on `bind` (e.g. `0.0.0.0:0`, so that a function running in a
    /// container can reach it through the host's address) that forwards to `upstream`.
    pub async fn start_on(bind: SocketAddr, upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            mode: Mutex::new(ProxyMode::Pass),
            hold_after: Mutex::new(None),
            state: Mutex::new(State::default()),
            open: watch::channel(Open::default()).0,
            events: broadcast::channel(EVENT_CAPACITY).0,
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(FaultProxy { addr, shared, accept: Some(accept) })
    }

    /// The address clients connect to (with the unspecified IP if bound to one).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// The mode new connections get.
    pub fn mode(&self) -> ProxyMode {
        *lock(&self.shared.mode)
    }

    /// Sets the mode of connections accepted from now on; open connections keep theirs.
    pub fn set_mode(&self, mode: ProxyMode) {
        *lock(&self.shared.mode) = mode;
    }

    /// Holds every connection after connection `id` (accepted, never forwarded, as in
    /// [`ProxyMode::Blackhole`]); `None` ends the hold for connections accepted from now on.
    /// A crash point "when connection n closes" sets it to n: the process is being killed,
    /// and a connection it opens in the moment before the kill lands must not reach the server
    /// (whether it would is a matter of scheduling, and a schedule must replay the same way).
    pub fn hold_after(&self, id: Option<u64>) {
        *lock(&self.shared.hold_after) = id;
    }

    /// Resets every open connection, both to the client and to the server: what the network
    /// does to the connections of a function process that was killed. Each gets its `Closed`.
    pub fn drop_all(&self) {
        self.shared.kill_all(false);
    }

    /// How many connections are open now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.borrow().count
    }

    /// How many connections were accepted since the proxy started (the id of the latest one).
    pub fn total_connections(&self) -> u64 {
        lock(&self.shared.state).total
    }

    /// Waits until no connection is open; false if `timeout` passed first. (After a kill the
    /// runner waits only for the step's connections: [`FaultProxy::wait_until_closed_after`].)
    pub async fn wait_until_idle(&self, timeout: Duration) -> bool {
        self.wait_until_closed_after(0, timeout).await
    }

    /// Waits until every connection accepted after connection `id` has closed (`id` as
    /// [`FaultProxy::total_connections`] gave it); false if `timeout` passed first. Unlike
    /// [`FaultProxy::wait_until_idle`] it ignores older connections: a warm process may hold
    /// one open for good (a socket that timed out against a blackhole and was never closed),
    /// and a step must not wait for that.
    pub async fn wait_until_closed_after(&self, id: u64, timeout: Duration) -> bool {
        let mut open = self.shared.open.subscribe();
        matches!(tokio::time::timeout(timeout, open.wait_for(|o| o.newest <= id)).await, Ok(Ok(_)))
    }

    /// Events of the connections accepted from now on (and the `Closed` of those open now).
    /// The stream ends once the proxy is gone and all its connections are closed.
    pub fn subscribe(&self) -> broadcast::Receiver<ProxyEvent> {
        self.shared.events.subscribe()
    }

    /// Like dropping the proxy, but returns only once the port is free and every connection
    /// has been closed.
    pub async fn stop(mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        self.shared.kill_all(true);
        let mut open = self.shared.open.subscribe();
        let _ = open.wait_for(|o| o.count == 0).await;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        self.shared.kill_all(true);
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("mode", &self.mode())
            .field("open", &self.open_connections())
            .finish()
    }
}

/// What the proxy and its tasks share.
struct Shared {
    upstream: SocketAddr,
    mode: Mutex<ProxyMode>,
    hold_after: Mutex<Option<u64>>,
    state: Mutex<State>,
    /// The open connections, for `wait_until_idle` and `wait_until_closed_after`.
    open: watch::Sender<Open>,
    events: broadcast::Sender<ProxyEvent>,
}

/// How many connections are open, and the id of the newest of them (0: none).
#[derive(Clone, Copy, Debug, Default)]
struct Open {
    count: usize,
    newest: u64,
}

impl State {
    fn open(&self) -> Open {
        Open { count: self.conns.len(), newest: self.conns.keys().copied().max().unwrap_or(0) }
    }
}

#[derive(Default)]
struct State {
    total: u64,
    stopped: bool,
    conns: HashMap<u64, Conn>,
}

/// An open connection, as `drop_all` needs it: its sockets (to set `SO_LINGER` 0 on them from
/// outside its task) and its task (to end it).
struct Conn {
    sockets: Vec<Arc<TcpStream>>,
    task: Option<AbortHandle>,
    killed: bool,
}

impl Shared {
    /// Registers a just-accepted connection and announces it; `None` once the proxy is stopping.
    fn open(self: &Arc<Self>, client: &Arc<TcpStream>) -> Option<ConnGuard> {
        let mut state = lock(&self.state);
        if state.stopped {
            return None;
        }
        state.total += 1;
        let id = state.total;
        let conn = Conn { sockets: vec![Arc::clone(client)], task: None, killed: false };
        state.conns.insert(id, conn);
        self.open.send_replace(state.open());
        drop(state);
        let _ = self.events.send(ProxyEvent::Opened { id });
        Some(ConnGuard {
            id,
            shared: Arc::clone(self),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
        })
    }

    /// Records the task of connection `id`, or ends it if `drop_all` came first.
    fn attach(&self, id: u64, task: AbortHandle) {
        let mut state = lock(&self.state);
        match state.conns.get_mut(&id) {
            Some(conn) if !conn.killed => conn.task = Some(task),
            Some(_) => {
                drop(state);
                task.abort();
            }
            None => {}
        }
    }

    /// Adds the server-side socket of connection `id`; false if the connection was killed.
    fn add_socket(&self, id: u64, socket: &Arc<TcpStream>) -> bool {
        match lock(&self.state).conns.get_mut(&id) {
            Some(conn) if !conn.killed => {
                conn.sockets.push(Arc::clone(socket));
                true
            }
            _ => false,
        }
    }

    /// Resets every open connection and ends its task; with `stop`, accepts no more.
    fn kill_all(&self, stop: bool) {
        let mut state = lock(&self.state);
        state.stopped |= stop;
        let mut tasks = Vec::new();
        for conn in state.conns.values_mut() {
            conn.killed = true;
            conn.sockets.iter().for_each(|s| reset(s));
            tasks.extend(conn.task.clone());
        }
        // Aborting drops a task's guard, which takes the lock: not while we hold it.
        drop(state);
        tasks.iter().for_each(AbortHandle::abort);
    }

    /// Forgets connection `id`, closes its sockets and announces it.
    fn close(&self, id: u64, bytes_up: u64, bytes_down: u64) {
        let mut state = lock(&self.state);
        let conn = state.conns.remove(&id);
        self.open.send_replace(state.open());
        drop(state);
        drop(conn);
        let _ = self.events.send(ProxyEvent::Closed { id, bytes_up, bytes_down });
        tracing::debug!(id, bytes_up, bytes_down, "fault proxy: connection closed");
    }
}

/// Owned by a connection's task; dropping it (task done or aborted) closes the connection's
/// books, which is what makes `Closed` exactly-once.
struct ConnGuard {
    id: u64,
    shared: Arc<Shared>,
    up: AtomicU64,
    down: AtomicU64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let (up, down) = (self.up.load(Ordering::Relaxed), self.down.load(Ordering::Relaxed));
        self.shared.close(self.id, up, down);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => Arc::new(client),
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!("fault proxy: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(guard) = shared.open(&client) else {
            reset(&client);
            continue;
        };
        let id = guard.id;
        let mode = match *lock(&shared.hold_after) {
            Some(h) if id > h => ProxyMode::Blackhole,
            _ => *lock(&shared.mode),
        };
        tracing::debug!(id, ?mode, "fault proxy: connection opened");
        let task = tokio::spawn(run_connection(guard, client, mode));
        shared.attach(id, task.abort_handle());
    }
}

async fn run_connection(guard: ConnGuard, client: Arc<TcpStream>, mode: ProxyMode) {
    let result = match mode {
        ProxyMode::Refuse => Err(io::Error::other("refused")),
        ProxyMode::Blackhole => {
            swallow(&client).await;
            Ok(())
        }
        ProxyMode::Pass => forward(&guard, &client, None, None).await,
        ProxyMode::CloseAfter { bytes } => forward(&guard, &client, Some(bytes), None).await,
        ProxyMode::Delay(delay) => forward(&guard, &client, None, Some(delay)).await,
    };
    if let Err(e) = result {
        tracing::debug!(id = guard.id, "fault proxy: resetting connection: {e}");
        reset(&client);
    }
    // Close the sockets before `Closed` is announced.
    drop(client);
    drop(guard);
}

/// Connects to the server and forwards both ways until both sides have closed (Ok) or
/// something failed or the byte budget is spent (Err, the server side already reset).
async fn forward(
    guard: &ConnGuard,
    client: &TcpStream,
    limit: Option<u64>,
    delay: Option<Duration>,
) -> io::Result<()> {
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let upstream = Arc::new(TcpStream::connect(guard.shared.upstream).await?);
    if !guard.shared.add_socket(guard.id, &upstream) {
        reset(&upstream);
        return Err(io::Error::other("dropped while connecting"));
    }
    // Database protocols are chatty with small messages; do not add Nagle's delay to ours.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let budget = Budget { limit, taken: AtomicU64::new(0) };
    let result = if limit == Some(0) {
        Err(io::Error::other("byte budget spent"))
    } else {
        tokio::try_join!(
            pump(client, &upstream, &guard.up, &budget, delay),
            pump(&upstream, client, &guard.down, &budget, delay),
        )
        .map(|_| ())
    };
    if result.is_err() {
        reset(&upstream);
    }
    result
}

/// The bytes a `CloseAfter` connection may still forward, shared by its two directions.
struct Budget {
    limit: Option<u64>,
    taken: AtomicU64,
}

impl Budget {
    /// How many of the `n` bytes just read may be forwarded, and whether the budget is spent
    /// once they are. Taken before the write, so the two directions never overshoot together.
    fn take(&self, n: usize) -> (usize, bool) {
        let Some(limit) = self.limit else { return (n, false) };
        let before = self.taken.fetch_add(n as u64, Ordering::Relaxed);
        let allowed = limit.saturating_sub(before).min(n as u64);
        (allowed as usize, before.saturating_add(allowed) >= limit)
    }
}

/// Forwards one direction until `from` reaches EOF (passed on as a half-close).
async fn pump(
    from: &TcpStream,
    to: &TcpStream,
    moved: &AtomicU64,
    budget: &Budget,
    delay: Option<Duration>,
) -> io::Result<()> {
    let mut buf = vec![0; CHUNK];
    loop {
        let n = read_some(from, &mut buf).await?;
        if n == 0 {
            return shutdown_write(to);
        }
        let (allowed, spent) = budget.take(n);
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        write_all(to, &buf[..allowed]).await?;
        moved.fetch_add(allowed as u64, Ordering::Relaxed);
        if spent {
            return Err(io::Error::other("byte budget spent"));
        }
    }
}

/// Reads and discards until the client closes (or fails): a blackhole still notices that.
async fn swallow(client: &TcpStream) {
    let mut buf = vec![0; CHUNK];
    while let Ok(1..) = read_some(client, &mut buf).await {}
}

// The sockets are shared with `drop_all` (`Arc<TcpStream>`), so they are driven through `&self`.

async fn read_some(socket: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        socket.readable().await?;
        match socket.try_read(buf) {
            Err(e) if retry(&e) => continue,
            result => return result,
        }
    }
}

async fn write_all(socket: &TcpStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        socket.writable().await?;
        match socket.try_write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if retry(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn retry(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

/// Sends FIN on `socket` (its peer reads EOF) while it can still send to us.
fn shutdown_write(socket: &TcpStream) -> io::Result<()> {
    // SAFETY: the descriptor belongs to `socket`, which is borrowed for the whole call;
    // shutdown(2) neither closes nor takes ownership of it.
    let rc = unsafe { libc::shutdown(socket.as_raw_fd(), libc::SHUT_WR) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Makes the socket's close a reset. Its last owner closes it.
fn reset(socket: &TcpStream) {
    if let Err(e) = socket.set_zero_linger() {
        tracing::debug!("fault proxy: cannot set SO_LINGER: {e}");
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data under these locks stays consistent at every step, so a poisoned lock is usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};

    /// Upper bound for anything that should happen promptly.
    const SOON: Duration = Duration::from_secs(5);

    /// An upstream that echoes every connection until EOF; counts the connections it accepted.
    fn echo_server_on(listener: TcpListener) -> (SocketAddr, Arc<AtomicUsize>) {
        let addr = listener.local_addr().expect("echo server address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let (mut r, mut w) = socket.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        (addr, accepted)
    }

    async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
        echo_server_on(TcpListener::bind("127.0.0.1:0").await.expect("bind echo server"))
    }

    /// An upstream that reads a 100-byte request, then streams `total` bytes back.
    async fn source_server(total: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind source server");
        let addr = listener.local_addr().expect("source server address");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0; 100];
                    if socket.read_exact(&mut request).await.is_err() {
                        return;
                    }
                    let chunk = vec![7u8; 8192];
                    let mut sent = 0;
                    while sent < total && socket.write_all(&chunk).await.is_ok() {
                        sent += chunk.len();
                    }
                });
            }
        });
        addr
    }

    async fn connect(proxy: &FaultProxy) -> TcpStream {
        TcpStream::connect(proxy.addr()).await.expect("connect to proxy")
    }

    async fn round_trip(client: &mut TcpStream, message: &[u8]) {
        client.write_all(message).await.expect("write through proxy");
        let mut answer = vec![0; message.len()];
        tokio::time::timeout(SOON, client.read_exact(&mut answer))
            .await
            .expect("answer in time")
            .expect("read through proxy");
        assert_eq!(answer, message);
    }

    /// The outcome of one read: the client must see an error, not data and not a clean EOF.
    async fn expect_reset(client: &mut TcpStream) {
        let mut buf = [0; 64];
        let read = tokio::time::timeout(SOON, client.read(&mut buf)).await.expect("read in time");
        match read {
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
            Ok(n) => panic!("expected a reset, read {n} bytes"),
        }
    }

    /// Connects and expects the proxy to reset the connection before any data; the reset may
    /// already surface from `connect` when it arrives before the handshake was reported.
    async fn expect_refused(proxy: &FaultProxy) {
        match TcpStream::connect(proxy.addr()).await {
            Ok(mut client) => expect_reset(&mut client).await,
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
        }
    }

    async fn next_event(events: &mut broadcast::Receiver<ProxyEvent>) -> ProxyEvent {
        tokio::time::timeout(SOON, events.recv()).await.expect("event in time").expect("event")
    }

    async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + SOON;
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pass_forwards_request_and_response() {
        let (upstream, accepted) = echo_server().await;
        let proxy = FaultProxy::start(upstream).await.expect("start proxy");
        assert_eq!(proxy.upstream(), upstream);
        assert!(proxy.addr().ip().is_loopback());
        let mut client = connect(&proxy).await;
        round_trip(&mut client, b"SELECT 1;").await;
        round_trip(&mut client, &vec![42; 200_000]).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!((proxy.open_connections(), proxy.total_connections()), (1, 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refuse_resets_without_data_and_never_reaches_upstream() {
        let (upstream, accepted) = echo_server().await;
        let proxy = FaultProxy::start(upstream).await.expect("start proxy");
        proxy.set_mode(ProxyMode::Refuse);
        expect_refused(&proxy).await;
        assert!(proxy.wait_until_idle(SOON).await);
        assert_eq!(proxy.total_connections(), 1);
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_after_cuts_a_long_transfer_after_the_budget() {
        let proxy = FaultProxy::start(source_server(1 << 20).await).await.expect("start proxy");
        proxy.set_mode(ProxyMode::CloseAfter { bytes: 10_000 });
        let mut events = proxy.subscribe();
        let mut client = connect(&proxy).await;
        client.write_all(&[1; 100]).await.expect("send request");
        let mut received = 0;
        let mut buf = vec![0; 4096];
        let end = loop {
            match tokio::time::timeout(SOON, client.read(&mut buf)).await.expect("read in time") {
                Ok(0) => break Ok(()),
                Ok(n) => received += n,
                Err(e) => break Err(e),
            }
        };
        assert!(end.is_err(), "the cut must be a reset, not a clean EOF");
        assert!(received <= 9_900, "received {received} bytes past the budget");
        assert_eq!(next_event(&mut events).await, ProxyEvent::Opened { id: 1 });
        let closed = ProxyEvent::Closed { id: 1, bytes_up: 100, bytes_down: 9_900 };
        assert_eq!(next_event(&mut events).await, closed);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delay_slows_connect_and_every_chunk() {
        let (upstream, _) = echo_server().await;
        let proxy = FaultProxy::start(upstream).await.expect("start proxy");
        let delay = Duration::from_millis(100);
        proxy.set_mode(ProxyMode::Delay(delay));
        let started = Instant::now();
        let mut client = connect(&proxy).await;
        round_trip(&mut client, b"ping").await;
        // Before connecting upstream, then once per direction.
        assert!(started.elapsed() >= 3 * delay, "took only {:?}", started.elapsed());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_for_newer_connections_ignores_one_left_open() {
        let (upstream, _) = echo_server().await;
        let proxy = FaultProxy::start(upstream).await.expect("start proxy");
        // A connection a warm process never closed (say, one that timed out in a blackhole).
        let _left_open = connect(&proxy).await;
        eventually("the first connection is open", || proxy.open_connections() == 1).await;
        let base = proxy.total_connections();
        let mut step = connect(&proxy).await;
        round_trip(&mut step, b"ping").await;
        assert!(!proxy.wait_until_closed_after(base, Duration::from_millis(200)).await, "the step's connection is open");
        drop(step);
        assert!(proxy.wait_until_closed_after(base, SOON).await, "only the step's connection counts");
        assert_eq!(proxy.open_connections(), 1);
        assert!(!proxy.wait_until_idle(Duration::from_millis(200)).await, "the old one is still open");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blackhole_holds_the_connection_until_the_client_leaves() {
        let (upstream, accepted) = echo_server().await;
        let proxy = FaultProxy::start(upstream).await.expect("start proxy");
        proxy.set_mode(ProxyMode::Blackhole);
        let mut client = connect(&proxy).await;
        client.write_all(b"SELECT 1;").await.expect("write into the blackhole");
        let mut buf = [0; 16];
        let read = tokio::time::timeout(Duration::from_millis(300), client.read(&mut buf)).await;
        assert!(read.is_err(), "a blackhole must not answer: {read:?}");
        assert_eq!(proxy.open_connections(), 1);
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
        drop(client);
        assert!(proxy.wait_until_idle(SOON).await);
        assert_eq!(proxy.open_connections(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drop_all_resets_established_connections() {
        let (upstream, _) = echo_server().await;
        let proxy = FaultProxy::start(upstream).await.expect("start proxy");
        let mut events = proxy.subscribe();
        let mut client = connect(&proxy).await;
        round_trip(&mut client, b"ping").await;
        proxy.drop_all();
        expect_reset(&mut client).await;
        assert_eq!(next_event(&mut events).await, ProxyEvent::Opened { id: 1 });
        let closed = ProxyEvent::Closed { id: 1, bytes_up: 4, bytes_down: 4 };
        assert_eq!(next_event(&mut events).await, closed);
        assert_eq!(proxy.open_connections(), 0);
        // The proxy itself keeps serving.
        let mut again = connect(&proxy).await;
        round_trip(&mut again, b"pong").await;
        assert_eq!(next_event(&mut events).await, ProxyEvent::Opened { id: 2 });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_come_opened_then_closed_once_with_byte_counts() {
        let (upstream, _) = echo_server().await;
        let proxy = FaultProxy::start(upstream).await.expect("start proxy");
        let mut events = proxy.subscribe();
        for (id, message) in [(1, &b"hello"[..]), (2, &b"a longer message"[..])] {
            let mut client = connect(&proxy).await;
            round_trip(&mut client, message).await;
            client.shutdown().await.expect("half-close");
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).await.expect("clean EOF passed through");
            assert!(rest.is_empty());
            let n = message.len() as u64;
            assert_eq!(next_event(&mut events).await, ProxyEvent::Opened { id });
            let closed = ProxyEvent::Closed { id, bytes_up: n, bytes_down: n };
            assert_eq!(next_event(&mut events).await, closed);
        }
        assert!(proxy.wait_until_idle(SOON).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(events.try_recv(), Err(TryRecvError::Empty), "a second Closed");
        assert_eq!(proxy.total_connections(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_mode_switch_only_affects_new_connections() {
        let (upstream, _) = echo_server().await;
        let proxy = FaultProxy::start(upstream).await.expect("start proxy");
        let mut first = connect(&proxy).await;
        round_trip(&mut first, b"one").await;
        proxy.set_mode(ProxyMode::Refuse);
        assert_eq!(proxy.mode(), ProxyMode::Refuse);
        expect_refused(&proxy).await;
        round_trip(&mut first, b"still here").await;
        proxy.set_mode(ProxyMode::Pass);
        let mut third = connect(&proxy).await;
        round_trip(&mut third, b"three").await;
        assert_eq!((proxy.open_connections(), proxy.total_connections()), (2, 3));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_upstream_resets_the_client_and_the_proxy_recovers() {
        // Bound but not listening: connections are refused, and no one else can take the port.
        let vacant = tokio::net::TcpSocket::new_v4().expect("socket");
        vacant.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("reserve a port");
        let upstream = vacant.local_addr().expect("reserved address");
        let proxy = FaultProxy::start(upstream).await.expect("start proxy");
        expect_refused(&proxy).await;
        assert!(proxy.wait_until_idle(SOON).await);
        echo_server_on(vacant.listen(16).expect("upstream comes back"));
        let mut client = connect(&proxy).await;
        round_trip(&mut client, b"back").await;
        assert_eq!(proxy.total_connections(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_proxy_frees_the_port_and_ends_its_tasks() {
        let (upstream, _) = echo_server().await;
        let proxy = FaultProxy::start(upstream).await.expect("start proxy");
        let mut events = proxy.subscribe();
        let mut passing = connect(&proxy).await;
        round_trip(&mut passing, b"ping").await;
        proxy.set_mode(ProxyMode::Blackhole);
        let mut swallowed = connect(&proxy).await;
        eventually("both connections are open", || proxy.open_connections() == 2).await;
        let (addr, shared) = (proxy.addr(), Arc::downgrade(&proxy.shared));
        drop(proxy);
        expect_reset(&mut passing).await;
        expect_reset(&mut swallowed).await;
        // The event stream ends only when every task (each holds the shared state) is gone.
        let mut closed = 0;
        loop {
            match tokio::time::timeout(SOON, events.recv()).await.expect("events end in time") {
                Ok(ProxyEvent::Closed { .. }) => closed += 1,
                Ok(ProxyEvent::Opened { .. }) => {}
                Err(RecvError::Closed) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(closed, 2);
        assert!(shared.upgrade().is_none());
        let deadline = Instant::now() + SOON;
        while let Err(e) = TcpListener::bind(addr).await {
            assert!(Instant::now() < deadline, "port still taken: {e}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_returns_with_the_port_free_and_connections_closed() {
        let (upstream, _) = echo_server().await;
        let proxy = FaultProxy::start(upstream).await.expect("start proxy");
        let mut client = connect(&proxy).await;
        round_trip(&mut client, b"ping").await;
        let (addr, shared) = (proxy.addr(), Arc::downgrade(&proxy.shared));
        proxy.stop().await;
        TcpListener::bind(addr).await.expect("port free right after stop");
        expect_reset(&mut client).await;
        eventually("every task is gone", || shared.upgrade().is_none()).await;
    }
}
