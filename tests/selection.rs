//! Table selection with `re:` entries and `exclude_tables` (Debezium's `table.include.list`
//! regexes — anchored, case-sensitive — and `table.exclude.list`, which wins), on PostgreSQL
//! and MariaDB, in the snapshot and the stream; bad patterns are errors naming the key.

mod common;

use std::time::Duration;

use common::mysql::*;
use common::*;

fn ids(msgs: &[Msg]) -> Vec<i64> {
    msgs.iter()
        .map(|m| {
            payload(m.value.as_ref().unwrap())["after"]["id"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_regex_tables_and_exclusions() {
    let db = TestDb::new("sel").await;
    db.exec(
        "CREATE TABLE orders (id int PRIMARY KEY); CREATE TABLE orders_eu (id int PRIMARY KEY);
         CREATE TABLE orders_archive (id int PRIMARY KEY); CREATE TABLE other (id int PRIMARY KEY);
         CREATE TABLE \"Orders\" (id int PRIMARY KEY);
         INSERT INTO orders VALUES (1); INSERT INTO orders_eu VALUES (1);
         INSERT INTO orders_archive VALUES (1); INSERT INTO other VALUES (1); INSERT INTO \"Orders\" VALUES (1);",
    )
    .await;
    let name = unique("sel");
    let mut daemon = Daemon::new(
        "",
        &[(
            "c.toml",
            pg_connector(&name, &name, &db, &["re:public\\\\.orders.*"], "").replace(
                "tables = [",
                "exclude_tables = [\"public.orders_archive\"]\ntables = [",
            ),
        )],
    );
    daemon.start();
    let topic = |t: &str| format!("{name}.public.{t}");
    assert_eq!(
        ids(&read_topic(&topic("orders"), 1, Duration::from_secs(60))),
        [1],
        "logs:\n{}",
        daemon.logs()
    );
    db.exec("INSERT INTO orders VALUES (2); INSERT INTO orders_eu VALUES (2); INSERT INTO orders_archive VALUES (2); INSERT INTO other VALUES (2); INSERT INTO \"Orders\" VALUES (2);")
        .await;
    assert_eq!(
        ids(&read_topic(&topic("orders"), 2, Duration::from_secs(60))),
        [1, 2]
    );
    assert_eq!(
        ids(&read_topic(&topic("orders_eu"), 2, Duration::from_secs(60))),
        [1, 2]
    );
    // Excluded, not matched, and matched only case-insensitively: nothing.
    for t in ["orders_archive", "other", "Orders"] {
        assert!(
            read_topic(&topic(t), 1, Duration::from_secs(2)).is_empty(),
            "{t} was published"
        );
    }
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_regex_tables_and_exclusions() {
    let mut db = MyDb::new("mysel").await;
    db.exec(
        "CREATE TABLE m1 (id INT PRIMARY KEY); CREATE TABLE m2 (id INT PRIMARY KEY); CREATE TABLE m_skip (id INT PRIMARY KEY); CREATE TABLE n1 (id INT PRIMARY KEY);
         INSERT INTO m1 VALUES (1); INSERT INTO m2 VALUES (1); INSERT INTO m_skip VALUES (1); INSERT INTO n1 VALUES (1)",
    )
    .await;
    let name = unique("mysel");
    let text = my_connector(
        &name,
        &name,
        &db.base,
        &[format!("re:{}\\\\.m.*", db.name)],
        server_id(),
        "",
    )
    .replace(
        "tables = [",
        &format!("exclude_tables = [\"{}.m_skip\"]\ntables = [", db.name),
    );
    let mut daemon = Daemon::new("", &[("c.toml", text)]);
    daemon.start();
    let dbname = db.name.clone();
    let topic = |t: &str| format!("{name}.{dbname}.{t}");
    assert_eq!(
        ids(&read_topic(&topic("m1"), 1, Duration::from_secs(60))),
        [1],
        "logs:\n{}",
        daemon.logs()
    );
    db.exec("INSERT INTO m1 VALUES (2); INSERT INTO m2 VALUES (2); INSERT INTO m_skip VALUES (2); INSERT INTO n1 VALUES (2)")
        .await;
    assert_eq!(
        ids(&read_topic(&topic("m1"), 2, Duration::from_secs(60))),
        [1, 2]
    );
    assert_eq!(
        ids(&read_topic(&topic("m2"), 2, Duration::from_secs(60))),
        [1, 2]
    );
    for t in ["m_skip", "n1"] {
        assert!(
            read_topic(&topic(t), 1, Duration::from_secs(2)).is_empty(),
            "{t} was published"
        );
    }
    assert!(daemon.stop().success());
}

#[test]
fn an_invalid_regex_is_an_error_naming_the_key() {
    let dir = std::env::temp_dir().join(unique("badre"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.toml");
    std::fs::write(
        &file,
        "name = \"c\"\nsource = \"postgres\"\ntopic_prefix = \"c\"\n[postgres]\nurl = \"postgres://u@localhost/db\"\nslot = \"c\"\npublication = \"c\"\ntables = [\"public.t\"]\nexclude_tables = [\"re:public\\\\.(\"]\n",
    )
    .unwrap();
    let err = sluice::config::ConnectorConfig::load(&file)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("postgres.exclude_tables") && err.contains("regular expression"),
        "{err}"
    );
}
