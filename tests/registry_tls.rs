//! The schema registry over HTTPS: the test's registry stand-in behind a TLS-terminating proxy
//! with a certificate made for the test. Avro works with `registry_ca_file`; a CA that did not
//! sign the registry's certificate fails `validate` with a message about the certificate.

mod common;

use common::registry::{decode, raw, Registry};
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn avro_works_with_an_https_registry_and_a_wrong_ca_is_refused() {
    let registry = Registry::start().await;
    let plain: u16 = registry.url.rsplit(':').next().unwrap().parse().unwrap();
    let certs = test_certs();
    let port = free_port();
    let mut proxy = tls_proxy(&certs, port, plain);
    let db = TestDb::new("regtls").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'via https');")
        .await;
    let name = unique("regtls");
    let format = |ca: &str| {
        format!(
            "[format]\nvalue = \"avro\"\nregistry_url = \"https://localhost:{port}\"\nregistry_ca_file = \"{}\"\n",
            certs.join(ca).display()
        )
    };
    let wrong = Daemon::new(
        "",
        &[(
            "c.toml",
            pg_connector(&name, &name, &db, &["public.t"], "") + &format("other-ca.pem"),
        )],
    );
    let (status, out, err) = wrong.run_command(&["validate", "--config", "config/sluice.toml"]);
    let text = format!("{out}{err}");
    assert!(!status.success(), "{text}");
    assert!(
        text.contains("format.registry_url") && text.to_lowercase().contains("certificate"),
        "{text}"
    );

    let mut daemon = Daemon::new(
        "",
        &[(
            "c.toml",
            pg_connector(&name, &name, &db, &["public.t"], "") + &format("ca.pem"),
        )],
    );
    let (status, out, err) = daemon.run_command(&["validate", "--config", "config/sluice.toml"]);
    assert!(status.success(), "{out}{err}");
    daemon.start();
    let records = raw(&format!("{name}.public.t"), 1).await;
    assert!(daemon.stop().success());
    let values: Vec<Vec<u8>> = records.iter().map(|r| r.value.clone().unwrap()).collect();
    let decoded = decode(&registry, &values).await;
    assert_eq!(decoded.len(), 1, "{}", daemon.logs());
    assert_eq!(
        decoded[0].1["after"]["v"], "via https",
        "{:?}",
        decoded[0].1
    );
    let _ = proxy.kill();
    let _ = proxy.wait();
    let _ = std::fs::remove_dir_all(&certs);
}
