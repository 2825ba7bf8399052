//! A password with URL- and TOML-significant characters works written percent-encoded in the
//! URL, through `${VAR}` in the `password` key and through `${file:...}`, against real
//! PostgreSQL and MariaDB servers (that check passwords), and appears in no output.

mod common;

use common::mysql::*;
use common::*;

const ODD: &str = "p@ss w/rd#1:%\"'\\ end";

/// `ODD` percent-encoded for a URL's password.
fn encoded() -> String {
    ODD.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Runs `validate` with one connector file; returns (success, output).
fn validate(connector: String, dir_setup: impl FnOnce(&Daemon)) -> (bool, String) {
    let daemon = Daemon::new("type = \"stdout\"", &[("c.toml", connector)]);
    dir_setup(&daemon);
    let (status, out, err) = daemon.run_command(&["validate", "--config", "config/sluice.toml"]);
    (status.success(), format!("{out}{err}{}", daemon.logs()))
}

fn forms(
    url_with_password: String,
    url_without: String,
    user_var: &str,
) -> Vec<(&'static str, String, bool)> {
    vec![
        ("url", format!("url = \"{url_with_password}\""), false),
        (
            "${VAR}",
            format!("url = \"{url_without}\"\npassword = \"${{{user_var}}}\""),
            false,
        ),
        (
            "${file:}",
            format!("url = \"{url_without}\"\npassword = \"${{file:../secret}}\""),
            true,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn an_odd_password_works_in_every_form_on_postgres_and_is_never_shown() {
    let db = TestDb::new("oddpw").await;
    let role = unique("oddpw");
    db.exec(&format!(
        "CREATE TABLE t (id int PRIMARY KEY);
         CREATE ROLE {role} LOGIN SUPERUSER REPLICATION PASSWORD '{}';",
        ODD.replace('\'', "''")
    ))
    .await;
    let var = format!("SLUICE_TEST_PW_{}", std::process::id());
    std::env::set_var(&var, ODD);
    let host = "127.0.0.1:15432";
    for (form, url_lines, file) in forms(
        format!("postgres://{role}:{}@{host}/{}", encoded(), db.name),
        format!("postgres://{role}@{host}/{}", db.name),
        &var,
    ) {
        let connector = format!(
            "name = \"c\"\nsource = \"postgres\"\ntopic_prefix = \"c\"\n[postgres]\n{url_lines}\nslot = \"{role}\"\npublication = \"{role}\"\ntables = [\"public.t\"]\n"
        );
        let (ok, out) = validate(connector, |d| {
            if file {
                std::fs::write(d.dir.join("secret"), format!("{ODD}\n")).unwrap();
            }
        });
        assert!(ok, "{form}: {out}");
        assert!(!out.contains(ODD) && !out.contains("w/rd"), "{form}: {out}");
    }
    // A wrong password fails, and is not shown either.
    let connector = format!(
        "name = \"c\"\nsource = \"postgres\"\ntopic_prefix = \"c\"\n[postgres]\nurl = \"postgres://{role}@{host}/{}\"\npassword = \"not-{}\"\nslot = \"s\"\npublication = \"p\"\ntables = [\"public.t\"]\n",
        db.name,
        encoded()
    );
    let (ok, out) = validate(connector, |_| {});
    assert!(
        !ok && out.contains("password authentication failed"),
        "{out}"
    );
    assert!(!out.contains("not-p"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_odd_password_works_in_every_form_on_mariadb_and_is_never_shown() {
    let mut db = MyDb::new("oddpw").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    let user = unique("oddpw");
    let quoted = ODD.replace('\\', "\\\\").replace('\'', "\\'");
    db.exec(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{quoted}'"
    ))
    .await;
    db.exec(&format!("GRANT ALL PRIVILEGES ON *.* TO '{user}'@'%'"))
        .await;
    let var = format!("SLUICE_TEST_MYPW_{}", std::process::id());
    std::env::set_var(&var, ODD);
    let host = "127.0.0.1:13306";
    for (form, url_lines, file) in forms(
        format!("mysql://{user}:{}@{host}", encoded()),
        format!("mysql://{user}@{host}"),
        &var,
    ) {
        let connector = format!(
            "name = \"c\"\nsource = \"mysql\"\ntopic_prefix = \"c\"\n[mysql]\n{url_lines}\nserver_id = {}\ntables = [\"{}.t\"]\n",
            server_id(),
            db.name
        );
        let (ok, out) = validate(connector, |d| {
            if file {
                std::fs::write(d.dir.join("secret"), format!("{ODD}\n")).unwrap();
            }
        });
        assert!(ok, "{form}: {out}");
        assert!(!out.contains(ODD) && !out.contains("w/rd"), "{form}: {out}");
    }
    let connector = format!(
        "name = \"c\"\nsource = \"mysql\"\ntopic_prefix = \"c\"\n[mysql]\nurl = \"mysql://{user}@{host}\"\npassword = \"not-{}\"\nserver_id = {}\ntables = [\"{}.t\"]\n",
        encoded(),
        server_id(),
        db.name
    );
    let (ok, out) = validate(connector, |_| {});
    assert!(!ok && out.contains("Access denied"), "{out}");
    assert!(!out.contains("not-p"), "{out}");
    db.exec(&format!("DROP USER '{user}'@'%'")).await;
}
