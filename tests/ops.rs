//! Operations: the admin API (routes, pause/resume/restart, token), Prometheus metrics checked
//! with the Prometheus project's parser against what the broker holds, heartbeats, transaction
//! metadata, and the live connectors folder.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const TOKEN: &str = "t0ken-for-tests";

fn api_daemon(daemon: &Daemon) -> String {
    let port = free_port();
    std::env::set_var("SLUICE_TEST_API_TOKEN", TOKEN);
    daemon.append_daemon_config(&format!(
        "[api]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"${{SLUICE_TEST_API_TOKEN}}\"\n"
    ));
    format!("http://127.0.0.1:{port}")
}

async fn count(topic: &str, n: usize) -> Vec<Msg> {
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || read_topic(&topic, n, Duration::from_secs(60)))
        .await
        .unwrap()
}

/// Everything the topic holds now (reads for 3 s).
async fn held(topic: &str) -> usize {
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        read_topic_until(&topic, Duration::from_secs(3), |_| false).len()
    })
    .await
    .unwrap()
}

fn parse_metrics(text: &str) -> Vec<Value> {
    let out = run_python("prom_parse.py", text, "not the Prometheus text format");
    serde_json::from_str(&out).unwrap()
}

fn sample(samples: &[Value], name: &str, labels: Value) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s["name"] == name
                && labels
                    .as_object()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| &s["labels"][k] == v)
        })
        .and_then(|s| s["value"].as_f64())
}

#[tokio::test(flavor = "multi_thread")]
async fn api_routes_pause_resume_restart_metrics_and_token() {
    let db = TestDb::new("api").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY, v text)").await;
    let name = unique("api");
    let mut daemon = Daemon::single(&name, &db, &["public.t"], "[format]\nschemas = false");
    let api = api_daemon(&daemon);
    daemon.start();
    let tok = Some(TOKEN);
    let status = wait_state(&api, tok, &name, "streaming", Duration::from_secs(60)).await;
    assert_eq!(status["name"], name.as_str());
    assert_eq!(status["file"], "connectors/c.toml");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, body) = http("GET", &format!("{api}/sluice/connectors/{name}"), tok).await;
    let status: Value = serde_json::from_str(&body).unwrap();
    assert!(
        status["committed_offset"]
            .as_str()
            .is_some_and(|p| p.contains("resume_lsn") && p.contains("snapshot=done")),
        "{status}"
    );
    // The same positions as structured JSON.
    assert_eq!(status["committed_position"]["kind"], "postgres", "{status}");
    assert!(status["committed_position"]["resume_lsn"].as_u64().unwrap() > 0);
    assert_eq!(status["committed_position"]["snapshot"], "done");

    // Token: every route but /health refuses without it or with a wrong one.
    assert_eq!(
        http("GET", &format!("{api}/health"), None).await,
        (200, json!({"status": "ok"}).to_string())
    );
    // /ready is a probe: no token needed.
    let (s, body) = http("GET", &format!("{api}/ready"), None).await;
    assert_eq!(s, 200, "{body}");
    for route in [
        "/connectors",
        "/sluice/connectors",
        "/metrics",
        "/",
        "/connector-plugins",
        &format!("/connectors/{name}"),
        &format!("/connectors/{name}/status"),
    ] {
        let (s, body) = http("GET", &format!("{api}{route}"), None).await;
        assert_eq!(s, 401, "{route}");
        assert_eq!(body, json!({"error": "unauthorized"}).to_string());
        assert_eq!(
            http("GET", &format!("{api}{route}"), Some("wrong")).await.0,
            401,
            "{route}"
        );
    }
    assert_eq!(
        http("POST", &format!("{api}/connectors/{name}/pause"), None)
            .await
            .0,
        401
    );
    // Kafka Connect's shapes.
    let (s, body) = http("GET", &format!("{api}/connectors/{name}/status"), tok).await;
    assert_eq!(s, 200);
    let worker = api.strip_prefix("http://").unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({
            "name": name,
            "connector": {"state": "RUNNING", "worker_id": worker},
            "tasks": [{"id": 0, "state": "RUNNING", "worker_id": worker}],
            "type": "source"
        })
    );
    let (s, body) = http("GET", &format!("{api}/connectors/{name}/config"), tok).await;
    assert_eq!(s, 200);
    let config: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(config["connector.class"], "postgres");
    assert_eq!(config["name"], name.as_str());
    assert_eq!(config["postgres.tables"], "public.t");
    let url = config["postgres.url"].as_str().unwrap();
    assert!(
        url.contains(":********@") && !url.contains(":sluice@"),
        "{url}"
    );
    let (_, body) = http("GET", &format!("{api}/connectors/{name}/tasks"), tok).await;
    let tasks: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(tasks[0]["id"], json!({"connector": name, "task": 0}));
    assert_eq!(tasks[0]["config"], config);
    let (s, body) = http("GET", &format!("{api}/"), tok).await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["version"],
        env!("CARGO_PKG_VERSION")
    );
    let (_, body) = http("GET", &format!("{api}/connector-plugins"), tok).await;
    let plugins: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(plugins[0]["type"], "source");
    assert_eq!(plugins.as_array().unwrap().len(), 2);
    let (s, body) = http("GET", &format!("{api}/connectors/nosuch/status"), tok).await;
    assert_eq!(s, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"error_code": 404, "message": "Connector nosuch not found"})
    );
    let (s, body) = http("PUT", &format!("{api}/connectors/{name}/pause"), tok).await;
    assert_eq!((s, body.as_str()), (202, ""));
    let (_, body) = http("GET", &format!("{api}/connectors/{name}/status"), tok).await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["connector"]["state"],
        "PAUSED"
    );
    assert_eq!(
        http("PUT", &format!("{api}/connectors/{name}/resume"), tok)
            .await
            .0,
        202
    );
    wait_state(&api, tok, &name, "streaming", Duration::from_secs(10)).await;
    let (s, body) = http("GET", &format!("{api}/ready"), tok).await;
    assert_eq!(s, 200);
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["connectors"][&name], "streaming");
    let (probe, out, err) = daemon.run_command(&["probe", &format!("{api}/ready")]);
    assert!(probe.success(), "{err}");
    assert!(out.contains("\"ready\":true"), "{out}");
    let (s, body) = http("GET", &format!("{api}/sluice/connectors"), tok).await;
    assert_eq!(s, 200);
    let all: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(all["connectors"][0]["name"], name.as_str());
    assert_eq!(all["file_errors"], json!([]));
    assert_eq!(
        http("GET", &format!("{api}/sluice/connectors/nosuch"), tok)
            .await
            .0,
        404
    );

    let topic = format!("{name}.public.t");
    db.exec("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        .await;
    assert_eq!(count(&topic, 3).await.len(), 3);

    // Pause: nothing new is published, the changes wait in the slot.
    let (s, _) = http("POST", &format!("{api}/connectors/{name}/pause"), tok).await;
    assert_eq!(s, 202);
    wait_state(&api, tok, &name, "paused", Duration::from_secs(10)).await;
    db.exec("INSERT INTO t VALUES (4, 'd'), (5, 'e')").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(held(&topic).await, 3, "nothing published while paused");
    let (s, _) = http("POST", &format!("{api}/connectors/{name}/resume"), tok).await;
    assert_eq!(s, 202);
    assert_eq!(
        count(&topic, 5).await.len(),
        5,
        "resume delivers what was captured meanwhile"
    );
    wait_state(&api, tok, &name, "streaming", Duration::from_secs(10)).await;

    // Restart: from the committed position, nothing lost.
    // Connect's plain restart: 204.
    let (s, _) = http("POST", &format!("{api}/connectors/{name}/restart"), tok).await;
    assert_eq!(s, 204);
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_state(&api, tok, &name, "streaming", Duration::from_secs(30)).await;
    db.exec("INSERT INTO t VALUES (6, 'f')").await;
    let msgs = count(&topic, 6).await;
    let ids: std::collections::BTreeSet<i64> = msgs
        .iter()
        .map(|m| m.value.as_ref().unwrap()["after"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, (1..=6).collect(), "logs:\n{}", daemon.logs());
    // events_read counts across the restart (since the daemon started).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = http("GET", &format!("{api}/sluice/connectors/{name}"), tok).await;
        let read = serde_json::from_str::<Value>(&body).unwrap()["events_read"]
            .as_u64()
            .unwrap();
        if read >= 6 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "events_read {read} after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Metrics: valid Prometheus text; published records equal what the broker holds.
    let (s, text) = http("GET", &format!("{api}/metrics"), tok).await;
    assert_eq!(s, 200);
    let samples = parse_metrics(&text);
    let held = held(&topic).await as f64;
    assert_eq!(
        sample(
            &samples,
            "sluice_records_published_total",
            json!({"connector": name, "table": "public.t"})
        ),
        Some(held),
        "{text}"
    );
    assert_eq!(
        sample(
            &samples,
            "sluice_events_read_total",
            json!({"connector": name, "table": "public.t"})
        ),
        Some(held)
    );
    assert!(
        sample(
            &samples,
            "sluice_offset_commits_total",
            json!({"connector": name})
        )
        .unwrap()
            >= 1.0
    );
    assert!(sample(&samples, "sluice_process_resident_memory_bytes", json!({})).unwrap() > 1e6);
    assert!(
        sample(
            &samples,
            "sluice_published_bytes_total",
            json!({"connector": name})
        )
        .unwrap()
            > 0.0
    );
    assert!(
        text.contains("sluice_source_lag_milliseconds")
            && text.contains("sluice_broker_queue_depth_records")
    );
    // State gauges: 1 for the current state only; connected; snapshot done.
    let c = json!({"connector": name});
    for state in [
        "starting",
        "snapshotting",
        "streaming",
        "paused",
        "failed",
        "finished",
        "stopped",
        "unassigned",
    ] {
        assert_eq!(
            sample(
                &samples,
                "sluice_connector_state",
                json!({"connector": name, "state": state})
            ),
            Some(if state == "streaming" { 1.0 } else { 0.0 }),
            "{state}: {text}"
        );
    }
    assert_eq!(sample(&samples, "sluice_connected", c.clone()), Some(1.0));
    assert_eq!(
        sample(&samples, "sluice_snapshot_completed", c.clone()),
        Some(1.0)
    );
    // An event was read moments ago; everything read is acknowledged, so no lag.
    let since = sample(&samples, "sluice_milliseconds_since_last_event", c.clone()).unwrap();
    assert!((0.0..600_000.0).contains(&since), "{since}");
    assert_eq!(
        sample(&samples, "sluice_source_lag_seconds", c.clone()),
        Some(0.0)
    );
    // Counters are exported from the start, at 0 when nothing happened.
    assert_eq!(
        sample(&samples, "sluice_records_failed_total", c.clone()),
        Some(0.0)
    );
    // Standard process metrics and the build.
    assert!(sample(&samples, "process_resident_memory_bytes", json!({})).unwrap() > 1e6);
    assert!(sample(&samples, "process_cpu_seconds_total", json!({})).unwrap() > 0.0);
    assert!(sample(&samples, "process_open_fds", json!({})).unwrap() > 3.0);
    let started = sample(&samples, "process_start_time_seconds", json!({})).unwrap();
    assert!(started > 1.7e9, "{started}");
    assert_eq!(
        sample(
            &samples,
            "sluice_build_info",
            json!({"version": env!("CARGO_PKG_VERSION")})
        ),
        Some(1.0),
        "{text}"
    );
    assert!(text.contains("librdkafka=\"2."), "{text}");
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_and_transaction_metadata() {
    let db = TestDb::new("hb").await;
    db.exec(
        "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);
         CREATE TABLE other (id serial PRIMARY KEY, v text); CREATE TABLE hb (ts timestamptz);",
    )
    .await;
    let name = unique("hb");
    let extra = "heartbeat_interval_ms = 500\nprovide_transaction_metadata = true\n[format]\nschemas = false";
    let connector = pg_connector(&name, &name, &db, &["public.a", "public.b"], extra).replace(
        "tables = [",
        "heartbeat_action_query = \"INSERT INTO hb VALUES (now())\"\ntables = [",
    );
    let mut daemon = Daemon::new("", &[("c.toml", connector)]);
    daemon.start();

    // Heartbeats: records keyed by the server name, the action query runs, and with writes
    // only outside the publication the slot and the stored offset advance.
    // (Heartbeats keep coming, so read a fixed number rather than until the topic settles.)
    let hb_topic = format!("__debezium-heartbeat.{name}");
    let hb = tokio::task::spawn_blocking(move || read_raw(&hb_topic, 2, Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(hb.len() >= 2, "logs:\n{}", daemon.logs());
    let parse = |b: &Option<Vec<u8>>| serde_json::from_slice::<Value>(b.as_ref().unwrap()).unwrap();
    assert_eq!(parse(&hb[0].key), json!({"serverName": name}));
    assert!(parse(&hb[0].value)["ts_ms"].as_i64().unwrap() > 1_700_000_000_000);
    let before = db.confirmed_flush(&name).await.unwrap();
    db.exec("INSERT INTO other (v) SELECT 'x' FROM generate_series(1, 1000)")
        .await;
    let target = db.current_lsn().await;
    assert!(target > before);
    wait_slot_and_offset(&db, &daemon, &name, target, Duration::from_secs(30)).await;
    let runs: i64 = db
        .client
        .query_one("SELECT count(*) FROM hb", &[])
        .await
        .unwrap()
        .get(0);
    assert!(runs >= 2, "heartbeat_action_query ran {runs} times");

    // Transaction metadata: BEGIN, the events with consecutive total_order, END with counts.
    db.exec("BEGIN; INSERT INTO a VALUES (1), (2); INSERT INTO b VALUES (10); COMMIT;")
        .await;
    let tx = count(&format!("{name}.transaction"), 2).await;
    assert_eq!(tx.len(), 2, "logs:\n{}", daemon.logs());
    let begin = tx[0].value.as_ref().unwrap();
    let end = tx[1].value.as_ref().unwrap();
    assert_eq!(begin["status"], "BEGIN");
    assert_eq!(begin["event_count"], Value::Null);
    let id = begin["id"].as_str().unwrap().to_string();
    assert!(id.contains(':'), "txId:LSN, got {id}");
    assert_eq!(tx[0].key, Some(json!({"id": id})));
    assert_eq!(end["status"], "END");
    assert_eq!(end["id"], id.as_str());
    assert_eq!(end["event_count"], 3);
    assert_eq!(
        end["data_collections"],
        json!([{"data_collection": "public.a", "event_count": 2}, {"data_collection": "public.b", "event_count": 1}])
    );
    let a = count(&format!("{name}.public.a"), 2).await;
    let b = count(&format!("{name}.public.b"), 1).await;
    let block = |m: &Msg| m.value.as_ref().unwrap()["transaction"].clone();
    assert_eq!(
        block(&a[0]),
        json!({"id": id, "total_order": 1, "data_collection_order": 1})
    );
    assert_eq!(
        block(&a[1]),
        json!({"id": id, "total_order": 2, "data_collection_order": 2})
    );
    assert_eq!(
        block(&b[0]),
        json!({"id": id, "total_order": 3, "data_collection_order": 1})
    );
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn live_connectors_folder() {
    let db = TestDb::new("live").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE u (id int PRIMARY KEY);")
        .await;
    let first = unique("live");
    let mut daemon = Daemon::single(&first, &db, &["public.t"], "[format]\nschemas = false");
    let api = api_daemon(&daemon);
    daemon.start();
    let tok = Some(TOKEN);
    wait_state(&api, tok, &first, "streaming", Duration::from_secs(60)).await;

    // A new file starts its connector within 5 s.
    let second = unique("live");
    let dropped_at = Instant::now();
    std::fs::write(
        daemon.dir.join("connectors/second.toml"),
        pg_connector(
            &second,
            &second,
            &db,
            &["public.u"],
            "[format]\nschemas = false",
        ),
    )
    .unwrap();
    loop {
        let (s, _) = http("GET", &format!("{api}/connectors/{second}"), tok).await;
        if s == 200 {
            break;
        }
        assert!(
            dropped_at.elapsed() < Duration::from_secs(5),
            "not started within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_state(&api, tok, &second, "streaming", Duration::from_secs(60)).await;
    db.exec("INSERT INTO u VALUES (1)").await;
    assert_eq!(count(&format!("{second}.public.u"), 1).await.len(), 1);

    // A broken file is reported and changes nothing else.
    std::fs::write(
        daemon.dir.join("connectors/broken.toml"),
        "name = \"x\"\nbogus = 1\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let errors = loop {
        let (_, body) = http("GET", &format!("{api}/sluice/connectors"), tok).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["file_errors"].as_array().is_some_and(|e| !e.is_empty()) {
            break v["file_errors"].clone();
        }
        assert!(Instant::now() < deadline, "broken file not reported");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(errors[0]["file"].as_str().unwrap().ends_with("broken.toml"));
    assert!(
        errors[0]["error"].as_str().unwrap().contains("bogus"),
        "{errors}"
    );
    assert!(daemon.logs().contains("connector file is not valid"));
    db.exec("INSERT INTO t VALUES (1)").await;
    assert_eq!(
        count(&format!("{first}.public.t"), 1).await.len(),
        1,
        "the first connector is untouched"
    );

    // Deleting a file stops its connector; the other keeps running.
    std::fs::remove_file(daemon.dir.join("connectors/second.toml")).unwrap();
    let removed_at = Instant::now();
    loop {
        let (s, _) = http("GET", &format!("{api}/connectors/{second}"), tok).await;
        if s == 404 {
            break;
        }
        assert!(
            removed_at.elapsed() < Duration::from_secs(10),
            "not stopped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    db.exec("INSERT INTO u VALUES (2); INSERT INTO t VALUES (2);")
        .await;
    assert_eq!(count(&format!("{first}.public.t"), 2).await.len(), 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        held(&format!("{second}.public.u")).await,
        1,
        "a stopped connector publishes nothing"
    );
    wait_state(&api, tok, &first, "streaming", Duration::from_secs(5)).await;

    // Changing a file restarts its connector with the new settings, from its committed position.
    let path = daemon.dir.join("connectors/c.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("schemas = false", "schemas = true")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !daemon
        .logs()
        .contains("connector file changed: restarting the connector")
    {
        assert!(Instant::now() < deadline, "change not noticed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_state(&api, tok, &first, "streaming", Duration::from_secs(30)).await;
    db.exec("INSERT INTO t VALUES (3)").await;
    let msgs = count(&format!("{first}.public.t"), 3).await;
    assert_eq!(
        msgs.len(),
        3,
        "no redelivery of committed changes, the new one arrives"
    );
    assert!(
        msgs[2].value.as_ref().unwrap().get("schema").is_some(),
        "the new setting applies"
    );
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_connector_shows_its_error_and_restarts_when_fixed() {
    let db = TestDb::new("failed").await;
    let name = unique("failed");
    let mut daemon = Daemon::single(&name, &db, &["public.later"], "[format]\nschemas = false");
    let api = api_daemon(&daemon);
    daemon.start();
    let tok = Some(TOKEN);
    let status = wait_state(&api, tok, &name, "failed", Duration::from_secs(60)).await;
    let error = status["error"].as_str().unwrap();
    assert!(
        error.contains("public.later") && error.contains("no such table"),
        "{status}"
    );
    let (s, body) = http("GET", &format!("{api}/ready"), tok).await;
    assert_eq!(s, 503, "{body}");
    // The container healthcheck says the same.
    let (probe, _, err) = daemon.run_command(&["probe", &format!("{api}/ready")]);
    assert_eq!(probe.code(), Some(1), "{err}");
    assert!(err.starts_with("503 {"), "{err}");
    assert!(
        daemon.try_status().is_none(),
        "with the API on, the daemon stays up"
    );

    db.exec("CREATE TABLE later (id int PRIMARY KEY); INSERT INTO later VALUES (1);")
        .await;
    assert_eq!(
        http("POST", &format!("{api}/connectors/{name}/restart"), tok)
            .await
            .0,
        204
    );
    wait_state(&api, tok, &name, "streaming", Duration::from_secs(60)).await;
    let msgs = count(&format!("{name}.public.later"), 1).await;
    assert_eq!(
        msgs[0].value.as_ref().unwrap()["op"],
        "r",
        "the snapshot runs once the table exists"
    );
    assert_eq!(http("GET", &format!("{api}/ready"), tok).await.0, 200);
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_file_at_start_is_listed_when_the_api_runs_and_refused_without_it() {
    let db = TestDb::new("badstart").await;
    db.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);")
        .await;
    let name = unique("badstart");
    let broken = "name = \"broken\"\nsource = \"postgres\"\n";
    // Without the admin API: exit 2, the problem printed.
    let mut plain = Daemon::new(
        "",
        &[
            (
                "good.toml",
                pg_connector(&name, &name, &db, &["public.t"], ""),
            ),
            ("broken.toml", broken.to_string()),
        ],
    );
    let (status, _, err) = plain.run_command(&["run"]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("broken.toml"), "{err}");
    // With it: the valid connector runs and the file error is listed.
    let port = free_port();
    plain.append_daemon_config(&format!("[api]\nlisten = \"127.0.0.1:{port}\"\n"));
    plain.start();
    let api = format!("http://127.0.0.1:{port}");
    wait_state(&api, None, &name, "streaming", Duration::from_secs(60)).await;
    // (The folder is rescanned every second.)
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let (body, errors) = loop {
        let (_, body) = http("GET", &format!("{api}/sluice/connectors"), None).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        let errors = v["file_errors"].as_array().unwrap().clone();
        if !errors.is_empty() || std::time::Instant::now() > deadline {
            break (body, errors);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(errors.len(), 1, "{body}");
    assert!(
        errors[0]["file"].as_str().unwrap().ends_with("broken.toml"),
        "{body}"
    );
    assert_eq!(
        count(&format!("{name}.public.t"), 1).await.len(),
        1,
        "logs:\n{}",
        plain.logs()
    );
    assert!(plain.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_binlog_lag_and_state_metrics() {
    let mut db = common::mysql::MyDb::new("mylag").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await;
    let name = unique("mylag");
    let mut daemon = common::mysql::my_daemon(&name, &db, &["t"], "");
    let port = free_port();
    daemon.append_daemon_config(&format!("[api]\nlisten = \"127.0.0.1:{port}\"\n"));
    daemon.start();
    let api = format!("http://127.0.0.1:{port}");
    wait_state(&api, None, &name, "streaming", Duration::from_secs(60)).await;
    db.exec("INSERT INTO t VALUES (2)").await;
    assert_eq!(
        count(&format!("{name}.{}.t", db.name), 2).await.len(),
        2,
        "logs:\n{}",
        daemon.logs()
    );
    // Sampled every 5 s: caught up, the lag is small (what the server wrote since, if any).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let lag = loop {
        let (_, text) = http("GET", &format!("{api}/metrics"), None).await;
        let samples = parse_metrics(&text);
        let c = json!({"connector": name});
        assert_eq!(
            sample(
                &samples,
                "sluice_connector_state",
                json!({"connector": name, "state": "streaming"})
            ),
            Some(1.0)
        );
        if let Some(lag) = sample(&samples, "sluice_binlog_lag_bytes", c) {
            break lag;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no binlog lag sample:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!((0.0..1_000_000.0).contains(&lag), "{lag}");
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_estimates_count_a_table_without_statistics() {
    let db = TestDb::new("estimate").await;
    // Never analyzed (autovacuum off for it): reltuples is -1, which read as 0 before.
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY) WITH (autovacuum_enabled = false);
         INSERT INTO t SELECT generate_series(1, 1500);",
    )
    .await;
    let name = unique("estimate");
    let mut daemon = Daemon::single(&name, &db, &["public.t"], "[format]\nschemas = false");
    let api = api_daemon(&daemon);
    daemon.start();
    wait_state(
        &api,
        Some(TOKEN),
        &name,
        "streaming",
        Duration::from_secs(60),
    )
    .await;
    let (_, text) = http("GET", &format!("{api}/metrics"), Some(TOKEN)).await;
    let samples = parse_metrics(&text);
    assert_eq!(
        sample(
            &samples,
            "sluice_snapshot_rows_estimated",
            json!({"connector": name, "table": "public.t"})
        ),
        Some(1500.0)
    );
    assert_eq!(
        sample(
            &samples,
            "sluice_snapshot_rows_total",
            json!({"connector": name, "table": "public.t"})
        ),
        Some(1500.0)
    );
    assert!(daemon.stop().success());
}
