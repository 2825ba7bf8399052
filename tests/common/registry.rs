//! A small in-process stand-in for a Confluent-compatible schema registry: the REST endpoints
//! Sluice uses (register, look up by id, subject versions, compatibility config), with a
//! BACKWARD check that is simple but strict enough for the tests, and an outage switch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Default)]
struct State {
    schemas: Vec<String>,
    subjects: HashMap<String, Vec<u32>>,
    compatibility: String,
    down: bool,
}

/// The running stand-in.
pub struct Registry {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Registry {
    pub async fn start() -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            compatibility: "BACKWARD".into(),
            ..Default::default()
        }));
        let s = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head_end, len) = loop {
                        let n = conn.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    l.strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            break (i + 4, len);
                        }
                    };
                    while buf.len() < head_end + len {
                        let n = conn.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
                    let mut parts = head.split_whitespace();
                    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                    let (status, reply) = handle(&s, method, path, &body);
                    let text = reply.to_string();
                    let response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    );
                    let _ = conn.write_all(response.as_bytes()).await;
                });
            }
        });
        Registry { url, state }
    }

    /// Makes every request fail with 503 (true) or work again (false).
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Schema ids registered under a subject, in version order.
    pub fn versions(&self, subject: &str) -> Vec<u32> {
        self.state
            .lock()
            .unwrap()
            .subjects
            .get(subject)
            .cloned()
            .unwrap_or_default()
    }
}

fn handle(state: &Mutex<State>, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut st = state.lock().unwrap();
    if st.down {
        return (
            503,
            json!({"error_code": 50301, "message": "registry is down for the test"}),
        );
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("POST", ["subjects", subject, "versions"]) => {
            let subject = subject.replace("%2F", "/");
            let req: Value = serde_json::from_str(body).unwrap_or_default();
            let Some(schema) = req["schema"].as_str() else {
                return (422, json!({"error_code": 42201, "message": "no schema"}));
            };
            let existing = st
                .schemas
                .iter()
                .position(|s| s == schema)
                .map(|i| i as u32 + 1);
            let versions = st.subjects.get(&subject).cloned().unwrap_or_default();
            if let Some(id) = existing {
                if versions.contains(&id) {
                    return (200, json!({"id": id}));
                }
            }
            if st.compatibility == "BACKWARD" {
                if let Some(last) = versions.last() {
                    let old: Value = serde_json::from_str(&st.schemas[*last as usize - 1]).unwrap();
                    let new: Value = serde_json::from_str(schema).unwrap();
                    if let Err(why) = backward_compatible(&old, &new) {
                        return (
                            409,
                            json!({"error_code": 409, "message": format!("Schema being registered is incompatible with an earlier schema for subject \"{subject}\": {why}")}),
                        );
                    }
                }
            }
            let id = existing.unwrap_or_else(|| {
                st.schemas.push(schema.to_string());
                st.schemas.len() as u32
            });
            st.subjects.entry(subject).or_default().push(id);
            (200, json!({"id": id}))
        }
        ("GET", ["schemas", "ids", id]) => match id
            .parse::<usize>()
            .ok()
            .and_then(|i| st.schemas.get(i.wrapping_sub(1)))
        {
            Some(s) => (200, json!({"schema": s})),
            None => (
                404,
                json!({"error_code": 40403, "message": "Schema not found"}),
            ),
        },
        ("GET", ["subjects", subject, "versions"]) => match st.subjects.get(*subject) {
            Some(v) => (200, json!((1..=v.len()).collect::<Vec<_>>())),
            None => (
                404,
                json!({"error_code": 40401, "message": "Subject not found"}),
            ),
        },
        ("PUT", ["config", ..]) => {
            let req: Value = serde_json::from_str(body).unwrap_or_default();
            st.compatibility = req["compatibility"]
                .as_str()
                .unwrap_or("BACKWARD")
                .to_string();
            (200, json!({"compatibility": st.compatibility}))
        }
        ("GET", ["subjects"]) => (200, json!(st.subjects.keys().collect::<Vec<_>>())),
        ("GET", ["config", ..]) => (200, json!({"compatibilityLevel": st.compatibility})),
        _ => (
            404,
            json!({"error_code": 404, "message": format!("no route {method} {path}")}),
        ),
    }
}

/// Collects record definitions (full name → fields) of an Avro schema.
fn records(schema: &Value, namespace: &str, out: &mut HashMap<String, Vec<Value>>) {
    match schema {
        Value::Array(branches) => branches.iter().for_each(|b| records(b, namespace, out)),
        Value::Object(o) => {
            let ns = o
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or(namespace)
                .to_string();
            match o.get("type").and_then(Value::as_str) {
                Some("record") => {
                    // Matched by unqualified name, as Avro's schema resolution (and so the
                    // registry's compatibility check) matches named types.
                    let name = o["name"].as_str().unwrap_or("").to_string();
                    let fields = o["fields"].as_array().cloned().unwrap_or_default();
                    for f in &fields {
                        records(&f["type"], &ns, out);
                    }
                    out.insert(name, fields);
                }
                Some("array") => records(&o["items"], &ns, out),
                _ => {}
            }
        }
        _ => {}
    }
}

/// A field type with nested record definitions replaced by their unqualified names (records
/// are compared by name, their fields separately).
fn shape(t: &Value) -> Value {
    match t {
        Value::Array(branches) => Value::Array(branches.iter().map(shape).collect()),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("record") => {
            json!(o["name"].as_str().unwrap_or(""))
        }
        // A reference to a named type by its full name.
        Value::String(s) if s.contains('.') => json!(s.rsplit('.').next().unwrap_or(s)),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("array") => {
            json!({"type": "array", "items": shape(&o["items"])})
        }
        other => other.clone(),
    }
}

/// BACKWARD: a reader with the new schema can read data written with the old one: every
/// field the new schema adds has a default, and fields in both keep their type.
fn backward_compatible(old: &Value, new: &Value) -> Result<(), String> {
    let (mut o, mut n) = (HashMap::new(), HashMap::new());
    records(old, "", &mut o);
    records(new, "", &mut n);
    for (name, new_fields) in &n {
        let Some(old_fields) = o.get(name) else {
            continue;
        };
        for f in new_fields {
            let fname = f["name"].as_str().unwrap_or("");
            match old_fields.iter().find(|of| of["name"] == f["name"]) {
                None if f.get("default").is_none() => {
                    return Err(format!("field {name}.{fname} was added without a default"))
                }
                Some(of) if shape(&of["type"]) != shape(&f["type"]) => {
                    return Err(format!("field {name}.{fname} changed its type"))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// GET over plain HTTP (what a consumer does to fetch a schema by id).
pub async fn http_get_json(url: &str) -> Value {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let mut conn = tokio::net::TcpStream::connect(authority).await.unwrap();
    conn.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    conn.read_to_end(&mut buf).await.unwrap();
    let i = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    serde_json::from_slice(&buf[i + 4..]).unwrap()
}

/// Decodes the values of raw records (see [`decode`]).
pub async fn decode_values(registry: &Registry, msgs: &[super::RawMsg]) -> Vec<(u32, Value)> {
    let values: Vec<Vec<u8>> = msgs.iter().filter_map(|m| m.value.clone()).collect();
    decode(registry, &values).await
}

/// Decodes framed Avro records: fetches each schema from the registry by id, then decodes
/// with fastavro. Returns (schema id, decoded value) per record.
pub async fn decode(registry: &Registry, records: &[Vec<u8>]) -> Vec<(u32, Value)> {
    let mut input = String::new();
    for r in records {
        assert_eq!(r[0], 0, "Confluent magic byte");
        let id = u32::from_be_bytes([r[1], r[2], r[3], r[4]]);
        let schema = http_get_json(&format!("{}/schemas/ids/{id}", registry.url)).await;
        let line = json!({"schema": schema["schema"], "data": base64::engine::general_purpose::STANDARD.encode(r)});
        input.push_str(&line.to_string());
        input.push('\n');
    }
    super::run_python(
        "avro_decode.py",
        &input,
        "fastavro failed (scripts/setup installs it)",
    )
    .lines()
    .map(|l| {
        let v: Value = serde_json::from_str(l).unwrap();
        (v["schema_id"].as_u64().unwrap() as u32, v["value"].clone())
    })
    .collect()
}

pub fn avro_format(registry: &Registry) -> String {
    format!(
        "[format]\nvalue = \"avro\"\nregistry_url = \"{}\"\n",
        registry.url
    )
}

pub async fn raw(topic: &str, n: usize) -> Vec<super::RawMsg> {
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || super::read_raw(&topic, n, Duration::from_secs(60)))
        .await
        .unwrap()
}
