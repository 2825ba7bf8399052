//! A TCP proxy on a loopback port in front of a server, whose connections can be cut: every
//! open connection is closed at once and new ones are refused until the cut ends.
//!
//! It runs on a thread and runtime of its own: the harness calls blocking helpers (a
//! daemon's SIGTERM-and-wait) from its async tasks, and a proxy sharing their runtime would
//! stop forwarding meanwhile — the daemon's last connections (closing the replication
//! session, confirming the slot) would hang on it and the stop with them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    /// Bumped at each cut: connections of an older generation end.
    generation: Arc<AtomicU64>,
    changed: Arc<tokio::sync::Notify>,
    /// Ends the accept loop when set to `true` (and the proxy's runtime with it).
    stop: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: (String, u16)) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let changed = Arc::new(tokio::sync::Notify::new());
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let (cut2, generation2, changed2) = (cut.clone(), generation.clone(), changed.clone());
        std::thread::Builder::new()
            .name(format!("proxy-{port}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener).unwrap();
                    loop {
                        let accepted = tokio::select! {
                            a = listener.accept() => a,
                            _ = stopped.changed() => return,
                        };
                        let Ok((client, _)) = accepted else {
                            continue;
                        };
                        if cut2.load(Ordering::SeqCst) {
                            drop(client);
                            continue;
                        }
                        let born = generation2.load(Ordering::SeqCst);
                        let (generation, changed) = (generation2.clone(), changed2.clone());
                        let upstream = upstream.clone();
                        tokio::spawn(forward(client, upstream, born, generation, changed));
                    }
                });
            })
            .unwrap();
        Proxy {
            port,
            cut,
            generation,
            changed,
            stop,
        }
    }

    /// `true`: closes every connection and refuses new ones; `false`: accepts again.
    pub fn cut(&self, on: bool) {
        self.cut.store(on, Ordering::SeqCst);
        if on {
            self.generation.fetch_add(1, Ordering::SeqCst);
            self.changed.notify_waiters();
        }
    }

    pub fn close(&self) {
        self.cut(true);
        let _ = self.stop.send(true);
    }
}

/// Copies both ways between a client and a new connection to `upstream`, until either side
/// closes or the next cut.
async fn forward(
    client: TcpStream,
    upstream: (String, u16),
    born: u64,
    generation: Arc<AtomicU64>,
    changed: Arc<tokio::sync::Notify>,
) {
    let Ok(server) = TcpStream::connect((upstream.0.as_str(), upstream.1)).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client, mut server) = (client, server);
    let notified = changed.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    if generation.load(Ordering::SeqCst) != born {
        return;
    }
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = notified => {}
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
