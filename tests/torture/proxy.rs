//! A TCP proxy on a loopback port in front of a server, whose connections can be cut: every
//! open connection is closed at once and new ones are refused until the cut ends.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    /// Bumped at each cut: connections of an older generation end.
    generation: Arc<AtomicU64>,
    changed: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: (String, u16)) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        let changed = Arc::new(tokio::sync::Notify::new());
        let task = {
            let (cut, generation, changed) = (cut.clone(), generation.clone(), changed.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    if cut.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let born = generation.load(Ordering::SeqCst);
                    let (generation, changed) = (generation.clone(), changed.clone());
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        let Ok(server) =
                            TcpStream::connect((upstream.0.as_str(), upstream.1)).await
                        else {
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
                        // Ends when either side closes, or at the next cut.
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = notified => {}
                        }
                    });
                }
            })
        };
        Proxy {
            port,
            cut,
            generation,
            changed,
            task,
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
        self.task.abort();
    }
}
