//! Cluster mode on the second test broker (nisshi: tansu 0.6's group coordinator can keep a
//! dead member as the group's leader, and the group then never forms): three daemons share six connectors (PostgreSQL and
//! MariaDB) through a Kafka consumer group, with positions in a Kafka offsets topic and
//! writers running throughout. Every connector runs on exactly one daemon; `kill -9` of one
//! moves its connectors to the others; a daemon frozen past its session (SIGSTOP) loses its
//! connectors and, thawed, stops them without writing; a rolling restart of all three loses
//! nothing; at the end every table's rows are all in its topic.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::mysql::*;
use common::*;
use serde_json::Value;

/// The tests of this file run one at a time: each runs several daemons whose group
/// sessions are timed, and two such groups at once on two cores starve the test broker's
/// coordinator (members evicted while they rejoin).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SESSION_MS: u64 = 8000;

struct Node {
    daemon: Daemon,
    api: String,
    name: String,
    group: String,
}

/// The test broker's log lines about consumer group `group` (its coordinator's decisions),
/// the last 80 of them; empty when the log is not where the project's scripts put it.
fn coordinator_log(group: &str) -> String {
    let dir = std::env::var("SLUICE_STATE_DIR").unwrap_or_else(|_| "/tmp/sluice-dev".into());
    let text = std::fs::read_to_string(format!("{dir}/nisshi.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(group)).collect();
    let tail = lines[lines.len().saturating_sub(80)..].join("\n");
    // Without the terminal colours.
    let mut out = String::with_capacity(tail.len());
    let mut in_escape = false;
    for c in tail.chars() {
        match (in_escape, c) {
            (false, '\u{1b}') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

fn node(group: &str, offsets_topic: &str, instance: &str, files: &[(&str, String)]) -> Node {
    let daemon = Daemon::new(
        &format!(
            "type = \"kafka\"\nbootstrap_servers = \"{}\"",
            txn_brokers()
        ),
        files,
    );
    let path = daemon.dir.join("config/sluice.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "store = \"file\"",
        &format!("store = \"kafka\"\ntopic = \"{offsets_topic}\"\ntopic_partitions = 3\ntopic_replication_factor = 1"),
    );
    std::fs::write(&path, text).unwrap();
    let port = free_port();
    daemon.append_daemon_config(&format!(
        "[cluster]\ngroup_id = \"{group}\"\nsession_timeout_ms = {SESSION_MS}\nassignment_partitions = 6\nhandoff_delay_ms = 2000\n[api]\nlisten = \"127.0.0.1:{port}\"\n"
    ));
    Node {
        daemon,
        api: format!("http://127.0.0.1:{port}"),
        name: instance.to_string(),
        group: group.to_string(),
    }
}

/// connector → state, as one daemon reports them (empty when it does not answer).
async fn states(api: &str) -> BTreeMap<String, (String, Option<String>)> {
    let (status, body) = http("GET", &format!("{api}/sluice/connectors"), None).await;
    if status != 200 {
        return BTreeMap::new();
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    v["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                (
                    c["state"].as_str().unwrap().to_string(),
                    c["owner"].as_str().map(str::to_string),
                ),
            )
        })
        .collect()
}

fn running(state: &str) -> bool {
    matches!(state, "starting" | "snapshotting" | "streaming")
}

/// Waits until every connector runs on exactly one of the answering daemons (`alive`), and
/// the others show it unassigned; returns connector → daemon.
async fn settled(
    nodes: &[Node],
    alive: &[usize],
    connectors: &[String],
    timeout: Duration,
) -> BTreeMap<String, usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut owner: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut all_unassigned_elsewhere = true;
        let mut seen = Vec::new();
        for &i in alive {
            let s = states(&nodes[i].api).await;
            seen.push((i, s.clone()));
            for c in connectors {
                match s.get(c) {
                    Some((state, _)) if running(state) => {
                        owner.entry(c.clone()).or_default().push(i)
                    }
                    Some((state, _)) if state == "unassigned" => {}
                    _ => all_unassigned_elsewhere = false,
                }
            }
        }
        let exact = connectors
            .iter()
            .all(|c| owner.get(c).is_some_and(|o| o.len() == 1));
        if exact && all_unassigned_elsewhere {
            return owner.into_iter().map(|(c, o)| (c, o[0])).collect();
        }
        if Instant::now() > deadline {
            let mut logs = String::new();
            for &i in alive {
                logs.push_str(&format!(
                    "--- {}:\n{}\n",
                    nodes[i].name,
                    nodes[i].daemon.logs()
                ));
            }
            panic!(
                "connectors not settled: {owner:?}\nstates: {seen:#?}\n{logs}\n--- the broker's group coordinator:\n{}",
                coordinator_log(&nodes[alive[0]].group)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn six_connectors_on_three_daemons_survive_kill_freeze_and_rolling_restart() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let pg = TestDb::new("clus").await;
    let mut my = MyDb::new("clus").await;
    let mut files: Vec<(String, String)> = Vec::new();
    let mut connectors = Vec::new();
    let mut topics = Vec::new();
    for i in 0..4 {
        pg.exec(&format!("CREATE TABLE t{i} (id int PRIMARY KEY)"))
            .await;
        let name = unique(&format!("cpg{i}"));
        files.push((
            format!("{name}.toml"),
            // A frozen or killed owner's walsender is ended at once, not after
            // wal_sender_timeout.
            pg_connector(&name, &name, &pg, &[&format!("public.t{i}")], "").replace(
                "[postgres]\n",
                "[postgres]\nterminate_stale_walsender = true\n",
            ),
        ));
        topics.push((format!("{name}.public.t{i}"), format!("t{i}")));
        connectors.push(name);
    }
    for i in 0..2 {
        my.exec(&format!("CREATE TABLE m{i} (id INT PRIMARY KEY)"))
            .await;
        let name = unique(&format!("cmy{i}"));
        files.push((
            format!("{name}.toml"),
            my_connector(
                &name,
                &name,
                &my.base,
                &[format!("{}.m{i}", my.name)],
                server_id(),
                "",
            ),
        ));
        topics.push((format!("{name}.{}.m{i}", my.name), format!("m{i}")));
        connectors.push(name);
    }
    let group = unique("sluice-cluster");
    let offsets_topic = unique("sluice-offsets");
    let file_refs: Vec<(&str, String)> =
        files.iter().map(|(f, t)| (f.as_str(), t.clone())).collect();
    let mut nodes: Vec<Node> = (0..3)
        .map(|i| node(&group, &offsets_topic, &format!("node{i}"), &file_refs))
        .collect();
    for n in nodes.iter_mut() {
        n.daemon.start();
    }
    let owners = settled(&nodes, &[0, 1, 2], &connectors, Duration::from_secs(150)).await;
    // Every daemon lists the whole cluster's connectors, naming the owner of the others.
    let view = states(&nodes[0].api).await;
    assert_eq!(view.len(), connectors.len(), "{view:?}");
    // (The group may still move partitions: the owner is read again on each try.)
    let c = owners.keys().next().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let viewer = loop {
        let now = settled(&nodes, &[0, 1, 2], &connectors, Duration::from_secs(60)).await;
        let o = now[&c];
        let viewer = (o + 1) % 3;
        let owner_name = states(&nodes[o].api)
            .await
            .get(&c)
            .and_then(|s| s.1.clone());
        let seen = states(&nodes[viewer].api).await.get(&c).cloned();
        if owner_name.is_some() && seen == Some(("unassigned".to_string(), owner_name.clone())) {
            break viewer;
        }
        assert!(
            Instant::now() < deadline,
            "{c} on node{viewer}: {seen:?}, owner {owner_name:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // Positions of a running connector are not changed under it. (Right after the daemons
    // start, the group may still move partitions, and a connector between two owners may be
    // changed: the attempt sets a PostgreSQL connector to 0/0, which resumes at its slot's
    // confirmed position, so nothing is lost either way.)
    let pg_connector = owners.keys().find(|c| c.starts_with("cpg")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, err) = nodes[viewer].daemon.run_command(&[
            "offsets",
            "set",
            "--config",
            "config/sluice.toml",
            pg_connector,
            "--lsn",
            "0/0",
        ]);
        if !status.success() {
            assert!(err.contains("runs on"), "{err}");
            break;
        }
        assert!(Instant::now() < deadline, "offsets set was never refused");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Writers run throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicI64::new(1));
    let writer = {
        let (stop, next) = (stop.clone(), next.clone());
        let pg_url = pg.url();
        let my_base = my.base.clone();
        let my_name = my.name.clone();
        tokio::spawn(async move {
            let (client, conn) = tokio_postgres::connect(&pg_url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let mut myc = my_connect(&my_base).await;
            use mysql_async::prelude::Queryable;
            myc.query_drop(format!("USE `{my_name}`")).await.unwrap();
            while !stop.load(Ordering::SeqCst) {
                let id = next.fetch_add(1, Ordering::SeqCst);
                for i in 0..4 {
                    client
                        .execute(&format!("INSERT INTO t{i} VALUES ({id})"), &[])
                        .await
                        .unwrap();
                }
                for i in 0..2 {
                    myc.query_drop(format!("INSERT INTO m{i} VALUES ({id})"))
                        .await
                        .unwrap();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;

    // kill -9 one daemon that runs something: its connectors move within 30 s.
    let victim = *owners.values().next().unwrap();
    nodes[victim].daemon.kill9();
    let alive: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    let started = Instant::now();
    let owners = settled(&nodes, &alive, &connectors, Duration::from_secs(90)).await;
    let moved_in = started.elapsed();
    assert!(
        moved_in < Duration::from_secs(30) + Duration::from_millis(SESSION_MS),
        "moved in {moved_in:?}"
    );

    // Freeze another daemon past its session: the others take its connectors; thawed, it
    // stops them (its assignment is lost) and shows them unassigned.
    let frozen = *owners.values().next().unwrap();
    let others: Vec<usize> = alive.iter().copied().filter(|&i| i != frozen).collect();
    nodes[frozen].daemon.signal("STOP");
    tokio::time::sleep(Duration::from_millis(SESSION_MS + 2000)).await;
    // (Generous: on the test broker a group sometimes takes a member's rejoin, once a
    // minute, to form again after a member froze.)
    settled(&nodes, &others, &connectors, Duration::from_secs(240)).await;
    nodes[frozen].daemon.signal("CONT");
    settled(&nodes, &alive, &connectors, Duration::from_secs(240)).await;
    assert!(
        nodes[frozen].daemon.logs().contains("assignment lost"),
        "the thawed daemon stopped its connectors without committing:\n{}",
        nodes[frozen].daemon.logs()
    );

    // Rolling restart of all three.
    nodes[victim].daemon.start();
    settled(&nodes, &[0, 1, 2], &connectors, Duration::from_secs(150)).await;
    for i in 0..3 {
        assert!(
            nodes[i].daemon.stop().success(),
            "{}",
            nodes[i].daemon.logs()
        );
        let rest: Vec<usize> = (0..3).filter(|&j| j != i).collect();
        settled(&nodes, &rest, &connectors, Duration::from_secs(120)).await;
        nodes[i].daemon.start();
        settled(&nodes, &[0, 1, 2], &connectors, Duration::from_secs(150)).await;
    }

    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let last = next.load(Ordering::SeqCst) - 1;
    assert!(last > 20, "the writers wrote {last} rows per table");
    // Every table's rows are all in its topic (at least once).
    for (topic, table) in &topics {
        let want: BTreeSet<i64> = (1..=last).collect();
        let msgs = read_topic_until_on(&txn_brokers(), topic, Duration::from_secs(90), |m| {
            let ids: BTreeSet<i64> = m
                .iter()
                .filter_map(|m| payload(m.value.as_ref()?)["after"]["id"].as_i64())
                .collect();
            ids.is_superset(&want)
        });
        let ids: BTreeSet<i64> = msgs
            .iter()
            .filter_map(|m| payload(m.value.as_ref()?)["after"]["id"].as_i64())
            .collect();
        let missing: Vec<&i64> = want.difference(&ids).collect();
        assert!(missing.is_empty(), "{table}: missing {missing:?}");
    }
    for n in nodes.iter_mut() {
        assert!(n.daemon.stop().success(), "{}", n.daemon.logs());
    }
}

/// A daemon that took a connector over without a clean handoff waits `handoff_delay_ms`
/// before publishing; a stop meanwhile (here: the connector file removed) must end that
/// wait at once — it used to hold the runtime's loop (and so every revocation and rescan)
/// for the whole delay.
#[tokio::test(flavor = "multi_thread")]
async fn a_stop_during_an_unclean_take_over_does_not_wait_out_the_handoff_delay() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let pg = TestDb::new("clusgate").await;
    pg.exec("CREATE TABLE g (id int PRIMARY KEY)").await;
    let name = unique("cgate");
    let file = (
        "c.toml",
        pg_connector(&name, &name, &pg, &["public.g"], "").replace(
            "[postgres]\n",
            "[postgres]\nterminate_stale_walsender = true\n",
        ),
    );
    let group = unique("sluice-gate");
    let offsets_topic = unique("sluice-offsets");
    let mut nodes: Vec<Node> = (0..2)
        .map(|i| {
            node(
                &group,
                &offsets_topic,
                &format!("gate{i}"),
                std::slice::from_ref(&file),
            )
        })
        .collect();
    for n in &nodes {
        let path = n.daemon.dir.join("config/sluice.toml");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("handoff_delay_ms = 2000", "handoff_delay_ms = 600000");
        std::fs::write(&path, text).unwrap();
    }
    nodes[0].daemon.start();
    settled(
        &nodes,
        &[0],
        std::slice::from_ref(&name),
        Duration::from_secs(90),
    )
    .await;
    nodes[1].daemon.start();
    settled(
        &nodes,
        &[0, 1],
        std::slice::from_ref(&name),
        Duration::from_secs(90),
    )
    .await;
    // The owner: the daemon streaming it, twice in a row (not one still taking it over: its
    // ownership record may not say `running` yet).
    let deadline = Instant::now() + Duration::from_secs(60);
    let owner = loop {
        let mut streaming = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            if states(&n.api).await.get(&name).map(|s| s.0.as_str()) == Some("streaming") {
                streaming.push(i);
            }
        }
        if let [i] = streaming[..] {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            if states(&nodes[i].api).await.get(&name).map(|s| s.0.as_str()) == Some("streaming") {
                break i;
            }
        }
        assert!(Instant::now() < deadline, "no single owner streaming");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let other = 1 - owner;
    nodes[owner].daemon.kill9();
    // The other daemon takes the connector over after the session and waits.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !nodes[other]
        .daemon
        .logs()
        .contains("took the connector over without a clean handoff")
    {
        assert!(
            Instant::now() < deadline,
            "--- taking over:\n{}\n--- killed owner:\n{}",
            nodes[other].daemon.logs(),
            nodes[owner].daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    std::fs::remove_file(nodes[other].daemon.dir.join("connectors/c.toml")).unwrap();
    let removed = Instant::now();
    loop {
        let logs = nodes[other].daemon.logs();
        if logs.contains("stopped while waiting to take the connector over") {
            break;
        }
        assert!(
            removed.elapsed() < Duration::from_secs(30),
            "the stop waited for the handoff delay:\n{logs}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The daemon still answers and stops cleanly.
    assert_eq!(
        http("GET", &format!("{}/health", nodes[other].api), None)
            .await
            .0,
        200
    );
    assert!(nodes[other].daemon.stop().success());
}
