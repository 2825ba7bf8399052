//! Account statements carry passwords: whatever comments surround their keywords, they are
//! never published on the schema-change topic nor logged, and the DDL that is published
//! and logged never carries a secret literal.

mod common;

use std::time::Duration;

use common::mysql::*;
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn account_statements_with_comments_never_leak_their_passwords() {
    let mut db = MyDb::new("mysecret").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    let name = unique("mysecret");
    let mut daemon = my_daemon(&name, &db, &["*"], "[format]\nschemas = false");
    daemon.start();
    assert_eq!(
        read_topic(&format!("{name}.{}.t", db.name), 0, Duration::from_secs(5)).len(),
        0
    );
    let user = unique("u");
    // Each statement runs with the captured database as its default database, so each
    // would be published if it were taken for DDL.
    for (i, sql) in [
        format!("CREATE /*c*/ USER '{user}1'@'%' IDENTIFIED BY 'pw-secret-1'"),
        format!("ALTER /*!100000 */ USER '{user}1'@'%' IDENTIFIED BY 'pw-secret-2'"),
        format!("CREATE OR /*x*/ REPLACE USER '{user}2'@'%' IDENTIFIED BY 'pw-secret-3'"),
        format!("GRANT SELECT ON *.* TO '{user}2'@'%' IDENTIFIED BY 'pw-secret-4'"),
        format!("SET PASSWORD FOR '{user}2'@'%' = PASSWORD('pw-secret-5')"),
    ]
    .iter()
    .enumerate()
    {
        db.exec(sql).await;
        // A table DDL after each, so the topic shows that the stream went past it.
        db.exec(&format!("CREATE TABLE after_{i} (id INT)")).await;
    }
    let msgs = read_topic_until(&name, Duration::from_secs(60), |m| {
        m.iter().any(|m| {
            m.value
                .as_ref()
                .is_some_and(|v| v["ddl"].as_str().is_some_and(|d| d.contains("after_4")))
        })
    });
    let ddls: Vec<String> = msgs
        .iter()
        .filter_map(|m| m.value.as_ref())
        .filter_map(|v| v["ddl"].as_str().map(str::to_string))
        .collect();
    assert!(ddls.iter().any(|d| d.contains("after_4")), "{ddls:?}");
    for d in &ddls {
        assert!(
            !d.to_ascii_uppercase().contains("USER") && !d.contains("pw-secret"),
            "published: {d}"
        );
    }
    let logs = daemon.logs();
    assert!(!logs.contains("pw-secret"), "{logs}");
    assert!(daemon.stop().success());
    for u in [format!("{user}1"), format!("{user}2")] {
        db.exec(&format!("DROP USER IF EXISTS '{u}'@'%'")).await;
    }
}
