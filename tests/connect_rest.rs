//! Kafka Connect's REST API as Connect tools use it: a real client from PyPI
//! (kafka-connect-py) creates, lists, pauses, resumes, stops, restarts, updates and deletes a
//! connector on Sluice's admin API, with what a consumer reads checked at each step; KIP-875
//! offsets read, refused while running, and altered while stopped (a MariaDB connector set
//! back re-publishes what followed); the config routes refused unless allowed.

mod common;

use std::time::{Duration, Instant};

use common::mysql::*;
use common::*;
use serde_json::{json, Value};

/// Calls one method of kafka-connect-py (tests/connect_client.py) and returns its result.
async fn client(api: &str, method: &str, args: Value) -> Value {
    let api = api.to_string();
    let method = method.to_string();
    tokio::task::spawn_blocking(move || {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/connect_client.py");
        let out = std::process::Command::new("python3")
            .args([script, &api, &method, &args.to_string()])
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{method}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{method}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    })
    .await
    .unwrap()
}

fn api_with_writes(daemon: &Daemon, writes: bool) -> String {
    let port = free_port();
    daemon.append_daemon_config(&format!(
        "[api]\nlisten = \"127.0.0.1:{port}\"\nallow_config_writes = {writes}\n"
    ));
    format!("http://127.0.0.1:{port}")
}

async fn read(topic: &str, n: usize) -> Vec<Msg> {
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || read_topic(&topic, n, Duration::from_secs(60)))
        .await
        .unwrap()
}

fn ids(msgs: &[Msg]) -> Vec<(String, i64)> {
    msgs.iter()
        .map(|m| {
            let v = m.value.as_ref().unwrap();
            let row = if v["after"].is_null() {
                &v["before"]
            } else {
                &v["after"]
            };
            (
                v["op"].as_str().unwrap().to_string(),
                row["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Waits until Connect's status of `name` reads `state`.
async fn wait_connect_state(api: &str, name: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = client(api, "get_connector_status", json!([name])).await;
        if v["connector"]["state"] == state {
            return v;
        }
        assert!(Instant::now() < deadline, "never {state}: {v}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connect_rest_client_manages_a_connector() {
    let db = TestDb::new("crest").await;
    db.exec(
        "CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE u (id int PRIMARY KEY);
         INSERT INTO t VALUES (1, 'a'), (2, 'b');",
    )
    .await;
    let name = unique("crest");
    let mut daemon = Daemon::new("", &[]);
    let api = api_with_writes(&daemon, true);
    daemon.start();
    wait_http(&api).await;

    // Create, as `kcctl apply` / a deployment script would, with Debezium's class name.
    let config = json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "topic_prefix": name,
        "postgres.url": db.url(),
        "postgres.slot": name,
        "postgres.publication": name,
        "postgres.tables": "public.t",
        "format.schemas": "false",
    });
    let created = client(
        &api,
        "create_connector",
        json!([{"name": name, "config": config}]),
    )
    .await;
    assert_eq!(created["name"], name.as_str(), "{created}");
    assert_eq!(created["type"], "source");
    assert_eq!(created["config"]["postgres.tables"], "public.t");
    let file = daemon.dir.join(format!("connectors/{name}.toml"));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("tables = [\"public.t\"]"), "{text}");
    assert!(text.contains("schemas = false"), "{text}");
    // Creating it again conflicts.
    let again = client(
        &api,
        "create_connector",
        json!([{"name": name, "config": config}]),
    )
    .await;
    assert_eq!(again["http_error"], 409, "{again}");

    let topic = format!("{name}.public.t");
    assert_eq!(
        ids(&read(&topic, 2).await),
        [("r".into(), 1), ("r".into(), 2)]
    );
    let status = wait_connect_state(&api, &name, "RUNNING").await;
    assert_eq!(status["tasks"][0]["state"], "RUNNING");
    assert_eq!(status["type"], "source");

    // Listing, plain and expanded.
    assert_eq!(
        client(&api, "list_connectors", json!([])).await,
        json!([name])
    );
    let expanded = client(&api, "list_connectors", json!(["status"])).await;
    assert_eq!(expanded[&name]["status"]["connector"]["state"], "RUNNING");
    let info = client(&api, "list_connectors", json!(["info"])).await;
    assert_eq!(
        info[&name]["info"]["config"]["postgres.slot"],
        name.as_str()
    );
    let one = client(&api, "get_connector", json!([name])).await;
    assert_eq!(one["tasks"], json!([{"connector": name, "task": 0}]));
    let url = one["config"]["postgres.url"].as_str().unwrap();
    assert!(url.contains(":********@"), "password masked: {url}");
    let tasks = client(&api, "list_connector_tasks", json!([name])).await;
    assert_eq!(tasks[0]["config"], one["config"]);
    let plugins = client(&api, "list_connector_plugins", json!([])).await;
    assert_eq!(plugins[0]["class"], "postgres");
    let cluster = client(&api, "get_cluster_info", json!([])).await;
    assert_eq!(cluster["version"], env!("CARGO_PKG_VERSION"));

    // Pause: nothing published; resume: what waited arrives.
    client(&api, "pause_connector", json!([name])).await;
    wait_connect_state(&api, &name, "PAUSED").await;
    db.exec("INSERT INTO t VALUES (3, 'c')").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        read_topic_until(&topic, Duration::from_secs(2), |_| false).len(),
        2
    );
    client(&api, "resume_connector", json!([name])).await;
    assert_eq!(ids(&read(&topic, 3).await)[2], ("c".into(), 3));
    wait_connect_state(&api, &name, "RUNNING").await;

    // Offsets: readable while running, not alterable.
    let (s, body) = http("GET", &format!("{api}/connectors/{name}/offsets"), None).await;
    assert_eq!(s, 200, "{body}");
    let offsets: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(offsets["offsets"][0]["partition"], json!({"server": name}));
    assert!(
        offsets["offsets"][0]["offset"]["lsn"].as_u64().unwrap() > 0,
        "{offsets}"
    );
    let (s, body) = patch_offsets(&api, &name, &offsets).await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("STOPPED"), "{body}");

    // Stop: no pipeline runs (changes wait in the slot), offsets may be altered.
    client(&api, "stop_connector", json!([name])).await;
    let stopped = wait_connect_state(&api, &name, "STOPPED").await;
    assert_eq!(stopped["tasks"][0]["state"], "STOPPED");
    assert_eq!(http("GET", &format!("{api}/ready"), None).await.0, 200);
    db.exec("INSERT INTO t VALUES (4, 'd')").await;
    let (s, body) = patch_offsets(&api, &name, &offsets).await;
    assert_eq!(
        (s, serde_json::from_str::<Value>(&body).unwrap()),
        (
            200,
            json!({"message": "The offsets for this connector have been altered successfully"})
        )
    );
    let (s, body) = patch_offsets(
        &api,
        &name,
        &json!({"offsets": [{"partition": {"server": "other"}, "offset": null}]}),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    let message = serde_json::from_str::<Value>(&body).unwrap()["message"].clone();
    assert!(
        message
            .as_str()
            .unwrap()
            .contains(&format!("\"server\": \"{name}\"")),
        "{body}"
    );
    client(&api, "resume_connector", json!([name])).await;
    assert_eq!(ids(&read(&topic, 4).await)[3], ("c".into(), 4));

    // The one task, as Connect tools address it.
    let task = client(&api, "get_connector_task_status", json!([name, 0])).await;
    assert_eq!(task["id"], 0, "{task}");
    assert_eq!(task["state"], "RUNNING");
    let missing = client(&api, "get_connector_task_status", json!([name, 1])).await;
    assert_eq!(missing["http_error"], 404, "{missing}");
    // onlyFailed on a running connector restarts nothing.
    let (s, body) = http(
        "POST",
        &format!("{api}/connectors/{name}/restart?includeTasks=true&onlyFailed=true"),
        None,
    )
    .await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["connector"]["state"],
        "RUNNING"
    );
    client(&api, "restart_connector_task", json!([name, 0])).await;
    wait_connect_state(&api, &name, "RUNNING").await;
    db.exec("INSERT INTO t VALUES (5, 'e')").await;
    assert_eq!(ids(&read(&topic, 5).await)[4], ("c".into(), 5));

    // Restart with includeTasks: 202 and the status, RESTARTING.
    let restarted = client(&api, "restart_connector", json!([name, true, false])).await;
    assert_eq!(restarted["connector"]["state"], "RESTARTING", "{restarted}");
    wait_connect_state(&api, &name, "RUNNING").await;

    // Update the config: the file is rewritten and the connector restarted with it. The
    // masked URL sent back keeps the real password.
    let mut new_config = one["config"].clone();
    new_config["postgres.tables"] = json!("public.t,public.u");
    let updated = client(&api, "update_connector", json!([name, new_config])).await;
    assert_eq!(
        updated["config"]["postgres.tables"], "public.t,public.u",
        "{updated}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&db.url()), "the real URL is kept: {text}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !daemon
        .logs()
        .contains("connector file changed: restarting the connector")
    {
        assert!(
            Instant::now() < deadline,
            "not restarted: {}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_state(&api, None, &name, "streaming", Duration::from_secs(60)).await;
    db.exec("INSERT INTO u VALUES (7)").await;
    assert_eq!(
        ids(&read(&format!("{name}.public.u"), 1).await),
        [("c".into(), 7)]
    );
    // A bad config is refused with the reason and changes nothing.
    let mut bad = new_config.clone();
    bad["postgres.bogus"] = json!("1");
    let refused = client(&api, "update_connector", json!([name, bad])).await;
    assert_eq!(refused["http_error"], 400, "{refused}");
    assert!(
        refused["body"].as_str().unwrap().contains("bogus"),
        "{refused}"
    );
    assert!(!std::fs::read_to_string(&file).unwrap().contains("bogus"));

    // Delete: the file goes and the connector stops.
    let (s, _) = http("DELETE", &format!("{api}/connectors/{name}/offsets"), None).await;
    assert_eq!(s, 400, "offsets are reset only while stopped");
    client(&api, "delete_connector", json!([name])).await;
    assert!(!file.exists());
    let deadline = Instant::now() + Duration::from_secs(10);
    while client(&api, "list_connectors", json!([])).await != json!([]) {
        assert!(Instant::now() < deadline, "not removed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let gone = client(&api, "get_connector_status", json!([name])).await;
    assert_eq!(gone["http_error"], 404);

    // A connector file that failed validation is fixed through PUT .../config.
    let fixed = format!("{name}_fixed");
    let broken = daemon.dir.join(format!("connectors/{fixed}.toml"));
    std::fs::write(&broken, format!("name = \"{fixed}\"\nbogus = 1\n")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = http("GET", &format!("{api}/sluice/connectors"), None).await;
        if body.contains("bogus") {
            break;
        }
        assert!(Instant::now() < deadline, "the broken file is not reported");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut good = config.clone();
    good["postgres.slot"] = json!(fixed);
    good["postgres.publication"] = json!(fixed);
    good["topic_prefix"] = json!(fixed);
    let put = client(&api, "update_connector", json!([fixed, good])).await;
    assert_eq!(put["name"], fixed.as_str(), "{put}");
    assert!(!std::fs::read_to_string(&broken).unwrap().contains("bogus"));
    wait_connect_state(&api, &fixed, "RUNNING").await;

    // Hostile writes: a `${file:...}` or `${VAR}` sent by a client is never expanded (the
    // review read /etc/passwd through a validation error this way), and a kept (masked)
    // password does not follow the URL to another host.
    let mut probe = good.clone();
    probe["snapshot.mode"] = json!("${file:/etc/passwd}");
    let (status, body) = http_json(
        "PUT",
        &format!("{api}/connectors/{fixed}/config"),
        None,
        &probe,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        !body.contains("root:"),
        "a daemon file read through the API: {body}"
    );
    assert!(body.contains("${file:/etc/passwd}"), "{body}");
    let (_, shown) = http("GET", &format!("{api}/connectors/{fixed}/config"), None).await;
    let mut moved: Value = serde_json::from_str(&shown).unwrap();
    let url = moved["postgres.url"].as_str().unwrap().to_string();
    assert!(url.contains(":********@"), "{url}");
    moved["postgres.url"] = json!(url.replacen("@127.0.0.1", "@attacker.example", 1));
    let (status, body) = http_json(
        "PUT",
        &format!("{api}/connectors/{fixed}/config"),
        None,
        &moved,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("password is masked"), "{body}");
    assert!(daemon.stop().success(), "{}", daemon.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn offsets_set_back_while_stopped_republish_what_followed() {
    let mut db = MyDb::new("myoffs").await;
    db.exec("CREATE TABLE t (id INT PRIMARY KEY)").await;
    let name = unique("myoffs");
    let mut daemon = my_daemon(&name, &db, &["t"], "[format]\nschemas = false");
    let api = api_with_writes(&daemon, false);
    daemon.start();
    let topic = format!("{name}.{}.t", db.name);
    wait_state(&api, None, &name, "streaming", Duration::from_secs(60)).await;
    db.exec("INSERT INTO t VALUES (1)").await;
    read(&topic, 1).await;
    // The committed position after row 1 (committed within offset_flush_interval_ms).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, body) = http("GET", &format!("{api}/connectors/{name}/offsets"), None).await;
    let after_one: Value = serde_json::from_str(&body).unwrap();
    let offset = &after_one["offsets"][0]["offset"];
    assert!(
        offset["file"].is_string() && offset["pos"].as_u64().is_some(),
        "{after_one}"
    );
    db.exec("INSERT INTO t VALUES (2); INSERT INTO t VALUES (3)")
        .await;
    assert_eq!(read(&topic, 3).await.len(), 3);

    assert_eq!(
        http("PUT", &format!("{api}/connectors/{name}/stop"), None)
            .await
            .0,
        204
    );
    wait_state(&api, None, &name, "stopped", Duration::from_secs(30)).await;
    let (s, body) = patch_offsets(&api, &name, &after_one).await;
    assert_eq!(s, 200, "{body}");
    let (_, body) = http("GET", &format!("{api}/connectors/{name}/offsets"), None).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), after_one);
    assert_eq!(
        http("PUT", &format!("{api}/connectors/{name}/resume"), None)
            .await
            .0,
        202
    );
    // Rows 2 and 3 are published again after the position was set back.
    let all = ids(&read(&topic, 5).await);
    assert_eq!(
        all,
        [1, 2, 3, 2, 3].map(|i| ("c".to_string(), i)),
        "{}",
        daemon.logs()
    );

    // Config writes are refused unless allowed.
    let (s, body) = http("DELETE", &format!("{api}/connectors/{name}"), None).await;
    assert_eq!(s, 405, "{body}");
    assert!(body.contains("allow_config_writes"), "{body}");
    let (s, _) = http_json(
        "POST",
        &format!("{api}/connectors"),
        None,
        &json!({"name": "x", "config": {}}),
    )
    .await;
    assert_eq!(s, 405);
    assert!(daemon.stop().success());
}

/// `PATCH /connectors/{name}/offsets` with a body.
async fn patch_offsets(api: &str, name: &str, body: &Value) -> (u16, String) {
    http_json(
        "PATCH",
        &format!("{api}/connectors/{name}/offsets"),
        None,
        body,
    )
    .await
}

/// Waits until the API answers.
async fn wait_http(api: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while http("GET", &format!("{api}/health"), None).await.0 != 200 {
        assert!(Instant::now() < deadline, "the API never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
