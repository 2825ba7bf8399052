//! Kafka over TLS: a broker reachable only through a TLS-terminating proxy (`stunnel4` in front
//! of a second tansu that advertises the proxied address), with a certificate made for the
//! test. Records are published with `security.protocol = "ssl"` and read back over TLS; a
//! wrong CA fails `validate` with a message about the certificate.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// tansu behind stunnel; both stopped on drop.
struct TlsBroker {
    certs: PathBuf,
    port: u16,
    children: Vec<Child>,
}

impl TlsBroker {
    fn start() -> TlsBroker {
        let certs = test_certs();
        let (plain, port) = (free_port(), free_port());
        let tansu = Command::new("tansu")
            .args([
                "broker",
                "--kafka-listener-url",
                &format!("tcp://127.0.0.1:{plain}"),
                "--kafka-advertised-listener-url",
                &format!("tcp://localhost:{port}"),
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu (scripts/setup installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", plain)).is_err() {
            assert!(Instant::now() < deadline, "tansu never listened");
            std::thread::sleep(Duration::from_millis(100));
        }
        let stunnel = tls_proxy(&certs, port, plain);
        TlsBroker {
            certs,
            port,
            children: vec![tansu, stunnel],
        }
    }

    fn cert(&self, name: &str) -> String {
        self.certs.join(name).display().to_string()
    }

    fn sink(&self, ca: &str) -> String {
        format!(
            "type = \"kafka\"\nbootstrap_servers = \"localhost:{}\"\n[sink.properties]\n\"security.protocol\" = \"ssl\"\n\"ssl.ca.location\" = \"{ca}\"\n",
            self.port
        )
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.certs);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn records_travel_over_tls_and_a_wrong_ca_is_named() {
    let broker = TlsBroker::start();
    let db = TestDb::new("ktls").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'over tls');")
        .await;
    let name = unique("ktls");
    let connector = pg_connector(
        &name,
        &name,
        &db,
        &["public.t"],
        "[format]\nschemas = false",
    );

    let wrong = Daemon::new(
        &broker.sink(&broker.cert("other-ca.pem")),
        &[("c.toml", connector.clone())],
    );
    let (status, out, err) = wrong.run_command(&["validate", "--config", "config/sluice.toml"]);
    let text = format!("{out}{err}");
    assert!(!status.success(), "{text}");
    assert!(text.to_lowercase().contains("certificate"), "{text}");

    let mut daemon = Daemon::new(
        &broker.sink(&broker.cert("ca.pem")),
        &[("c.toml", connector)],
    );
    let (status, out, err) = daemon.run_command(&["validate", "--config", "config/sluice.toml"]);
    assert!(status.success(), "{out}{err}");
    daemon.start();

    // Read back over TLS.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", format!("localhost:{}", broker.port))
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", broker.cert("ca.pem"))
        .set("group.id", unique("reader"))
        .create()
        .unwrap();
    let topic = format!("{name}.public.t");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut value = None;
    while value.is_none() {
        assert!(
            Instant::now() < deadline,
            "nothing read; logs:\n{}",
            daemon.logs()
        );
        let exists = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(5))
            .map(|md| {
                md.topics()
                    .iter()
                    .any(|t| t.name() == topic && t.error().is_none())
            })
            .unwrap_or(false);
        if !exists {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        if consumer.assignment().map(|a| a.count()).unwrap_or(0) == 0 {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, 0, Offset::Beginning)
                .unwrap();
            consumer.assign(&tpl).unwrap();
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            value = m
                .payload()
                .map(|p| serde_json::from_slice::<serde_json::Value>(p).unwrap());
        }
    }
    assert!(daemon.stop().success());
    let value = value.unwrap();
    assert_eq!(value["after"]["v"], "over tls", "{value}");
}
