//! Kafka over TLS and over SASL_SSL: a broker reachable only through a TLS-terminating proxy
//! (`stunnel4` in front of a second tansu that advertises the proxied address), with a
//! certificate made for the test. Records are published with `security.protocol = "ssl"` and
//! read back over TLS; a wrong CA fails `validate` with a message about the certificate.
//!
//! tansu has no SASL, so for SASL_SSL a SCRAM-SHA-256 gate written for these tests
//! (`tests/sasl_proxy.py`) sits between stunnel and tansu: it authenticates the client exactly
//! as a Kafka broker does (SaslHandshake, SaslAuthenticate, RFC 5802) and then passes bytes
//! through. A wrong password fails `validate` with librdkafka's authentication error, and the
//! password appears in no output.

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

const SASL_USER: &str = "sluice-test";
const SASL_PASSWORD: &str = "scr@m-Pa55-never-logged";

impl TlsBroker {
    /// tansu behind stunnel; with `sasl`, behind the SCRAM gate behind stunnel.
    fn start(sasl: bool) -> TlsBroker {
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
        let mut children = vec![tansu];
        let mut behind_tls = plain;
        if sasl {
            let gate = free_port();
            let mut child = Command::new("python3")
                .arg(format!(
                    "{}/tests/sasl_proxy.py",
                    env!("CARGO_MANIFEST_DIR")
                ))
                .args([
                    &gate.to_string(),
                    &plain.to_string(),
                    SASL_USER,
                    SASL_PASSWORD,
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("python3");
            let mut ready = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new(child.stdout.take().unwrap()),
                &mut ready,
            )
            .unwrap();
            assert_eq!(ready.trim(), "ready", "the SASL gate did not start");
            children.push(child);
            behind_tls = gate;
        }
        children.push(tls_proxy(&certs, port, behind_tls));
        TlsBroker {
            certs,
            port,
            children,
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

    fn sasl_properties(&self, password: &str) -> String {
        format!(
            "\"security.protocol\" = \"sasl_ssl\"\n\"ssl.ca.location\" = \"{}\"\n\"sasl.mechanisms\" = \"SCRAM-SHA-256\"\n\"sasl.username\" = \"{SASL_USER}\"\n\"sasl.password\" = \"{password}\"\n",
            self.cert("ca.pem")
        )
    }

    fn sasl_sink(&self, password: &str) -> String {
        format!(
            "type = \"kafka\"\nbootstrap_servers = \"localhost:{}\"\n[sink.properties]\n{}",
            self.port,
            self.sasl_properties(password)
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
    let broker = TlsBroker::start(false);
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
    let mut reader = ClientConfig::new();
    reader
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", broker.cert("ca.pem"));
    let value = first_value(&broker, reader, &format!("{name}.public.t"), &daemon).await;
    assert!(daemon.stop().success());
    assert_eq!(value["after"]["v"], "over tls", "{value}");
}

#[tokio::test(flavor = "multi_thread")]
async fn records_travel_over_sasl_ssl_with_scram_and_a_wrong_password_is_named() {
    let broker = TlsBroker::start(true);
    let db = TestDb::new("ksasl").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'over sasl');")
        .await;
    let name = unique("ksasl");
    let connector = pg_connector(
        &name,
        &name,
        &db,
        &["public.t"],
        "[format]\nschemas = false",
    );

    let wrong = Daemon::new(
        &broker.sasl_sink("not-the-password"),
        &[("c.toml", connector.clone())],
    );
    let (status, out, err) = wrong.run_command(&["validate", "--config", "config/sluice.toml"]);
    let text = format!("{out}{err}");
    assert!(!status.success(), "{text}");
    assert!(text.contains("Authentication failed"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");

    let mut daemon = Daemon::new(&broker.sasl_sink(SASL_PASSWORD), &[("c.toml", connector)]);
    let (status, out, err) = daemon.run_command(&["validate", "--config", "config/sluice.toml"]);
    assert!(status.success(), "{out}{err}");
    daemon.start();

    // Read back through the same gate: only an authenticated client gets anything.
    let mut reader = ClientConfig::new();
    reader
        .set("security.protocol", "sasl_ssl")
        .set("ssl.ca.location", broker.cert("ca.pem"))
        .set("sasl.mechanisms", "SCRAM-SHA-256")
        .set("sasl.username", SASL_USER)
        .set("sasl.password", SASL_PASSWORD);
    let value = first_value(&broker, reader, &format!("{name}.public.t"), &daemon).await;
    let status = daemon.run_command(&["status", "--config", "config/sluice.toml"]);
    assert!(daemon.stop().success());
    assert_eq!(value["after"]["v"], "over sasl", "{value}");
    let everything = format!("{}{}{}{out}{err}", daemon.logs(), status.1, status.2);
    assert!(
        !everything.contains(SASL_PASSWORD),
        "the SASL password was printed:\n{everything}"
    );
}

/// The first record of `topic` (partition 0), read with `config` plus the broker's address.
async fn first_value(
    broker: &TlsBroker,
    mut config: ClientConfig,
    topic: &str,
    daemon: &Daemon,
) -> serde_json::Value {
    let consumer: BaseConsumer = config
        .set("bootstrap.servers", format!("localhost:{}", broker.port))
        .set("group.id", unique("reader"))
        .create()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "nothing read; logs:\n{}",
            daemon.logs()
        );
        let exists = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
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
            tpl.add_partition_offset(topic, 0, Offset::Beginning)
                .unwrap();
            consumer.assign(&tpl).unwrap();
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            if let Some(p) = m.payload() {
                return serde_json::from_slice(p).unwrap();
            }
        }
    }
}
