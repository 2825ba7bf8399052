//! MySQL 8's default authentication, `caching_sha2_password`, through Sluice's own connection
//! path ([`ConnInfo`]): a scripted server on loopback speaks the server side of the exchange
//! and checks what the client proves. Both paths are covered: the fast one (the server has
//! the password's hash cached: a SHA-256 scramble of the nonce) and the full one (a cold
//! cache on a connection without TLS: the client asks for the server's RSA public key and
//! sends the password encrypted with it, which the server decrypts — here with the
//! `openssl` command line). MariaDB has no `caching_sha2_password` to test against; MySQL
//! 8.4 (docker-compose.yml) uses it by default.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::ConnInfo;

const PASSWORD: &str = "s3cret-Pw";
const NONCE: &[u8; 20] = b"0123456789abcdefghij";

async fn read_packet(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await.unwrap();
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    let mut body = vec![0; len];
    s.read_exact(&mut body).await.unwrap();
    (head[3], body)
}

async fn write_packet(s: &mut TcpStream, seq: u8, body: &[u8]) {
    let len = (body.len() as u32).to_le_bytes();
    let mut out = vec![len[0], len[1], len[2], seq];
    out.extend_from_slice(body);
    s.write_all(&out).await.unwrap();
}

/// Protocol::HandshakeV10 announcing `caching_sha2_password`, without TLS.
fn greeting() -> Vec<u8> {
    const CAPS: u32 = 0x1 // LONG_PASSWORD
        | 0x200 // PROTOCOL_41
        | 0x2000 // TRANSACTIONS
        | 0x8000 // SECURE_CONNECTION
        | 0x80000 // PLUGIN_AUTH
        | 0x200000; // PLUGIN_AUTH_LENENC_CLIENT_DATA
    let mut g = vec![10];
    g.extend_from_slice(b"8.4.3\0");
    g.extend_from_slice(&7u32.to_le_bytes());
    g.extend_from_slice(&NONCE[..8]);
    g.push(0);
    g.extend_from_slice(&(CAPS as u16).to_le_bytes());
    g.push(255); // utf8mb4
    g.extend_from_slice(&2u16.to_le_bytes()); // autocommit
    g.extend_from_slice(&((CAPS >> 16) as u16).to_le_bytes());
    g.push(21);
    g.extend_from_slice(&[0; 10]);
    g.extend_from_slice(&NONCE[8..]);
    g.push(0);
    g.extend_from_slice(b"caching_sha2_password\0");
    g
}

/// The user name and auth response of a HandshakeResponse41.
fn credentials(response: &[u8]) -> (String, Vec<u8>) {
    let rest = &response[32..];
    let end = rest.iter().position(|&b| b == 0).unwrap();
    let user = String::from_utf8(rest[..end].to_vec()).unwrap();
    let rest = &rest[end + 1..];
    let len = rest[0] as usize;
    (user, rest[1..1 + len].to_vec())
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish().as_ref().try_into().unwrap()
}

/// What the client must send on the fast path: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)), nonce).
fn expected_scramble() -> Vec<u8> {
    let once = sha256(&[PASSWORD.as_bytes()]);
    let twice = sha256(&[&once]);
    let mix = sha256(&[&twice, NONCE]);
    once.iter().zip(mix).map(|(a, b)| a ^ b).collect()
}

const OK: &[u8] = &[0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00];

/// Runs `openssl` with these arguments; its standard output.
fn openssl(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An RSA key pair made with `openssl`: (private key file, public key PEM).
fn rsa_key(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>) {
    let key = dir.join("key.pem");
    let file = key.to_str().unwrap();
    openssl(&["genrsa", "-out", file, "2048"]);
    let public = openssl(&["rsa", "-in", file, "-pubout"]);
    (key, public)
}

/// Decrypts what the client sent with the private key (RSA-OAEP, SHA-1, as MySQL).
fn rsa_decrypt(key: &std::path::Path, data: &[u8]) -> Vec<u8> {
    let input = key.with_extension("in");
    std::fs::write(&input, data).unwrap();
    openssl(&[
        "pkeyutl",
        "-decrypt",
        "-inkey",
        key.to_str().unwrap(),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-in",
        input.to_str().unwrap(),
    ])
}

/// Serves one connection: the handshake (fast or full path), then OK to every query until
/// the client quits. Returns the user, what the client proved, and the queries it sent.
async fn serve(
    listener: TcpListener,
    full: Option<(std::path::PathBuf, Vec<u8>)>,
) -> (String, bool, Vec<String>) {
    let (mut s, _) = listener.accept().await.unwrap();
    write_packet(&mut s, 0, &greeting()).await;
    let (seq, response) = read_packet(&mut s).await;
    let (user, scramble) = credentials(&response);
    let mut seq = seq + 1;
    let proved = match &full {
        None => {
            let ok = scramble == expected_scramble();
            write_packet(&mut s, seq, &[0x01, 0x03]).await;
            seq += 1;
            ok
        }
        Some((key, public)) => {
            // Cold cache: perform full authentication.
            write_packet(&mut s, seq, &[0x01, 0x04]).await;
            let (n, request) = read_packet(&mut s).await;
            assert_eq!(request, [0x02], "the client asks for the public key");
            let mut body = vec![0x01];
            body.extend_from_slice(public);
            write_packet(&mut s, n + 1, &body).await;
            let (n, encrypted) = read_packet(&mut s).await;
            seq = n + 1;
            let xored = rsa_decrypt(key, &encrypted);
            let clear: Vec<u8> = xored
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ NONCE[i % NONCE.len()])
                .collect();
            clear == [PASSWORD.as_bytes(), b"\0"].concat()
        }
    };
    write_packet(&mut s, seq, OK).await;
    let mut queries = Vec::new();
    loop {
        let mut head = [0u8; 4];
        if s.read_exact(&mut head).await.is_err() {
            break;
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
        let mut body = vec![0; len];
        s.read_exact(&mut body).await.unwrap();
        match body.first() {
            Some(0x03) => {
                queries.push(String::from_utf8_lossy(&body[1..]).into_owned());
                write_packet(&mut s, 1, OK).await;
            }
            _ => break, // COM_QUIT
        }
    }
    (user, proved, queries)
}

async fn connect_through_sluice(port: u16) -> Result<(), super::MyError> {
    // The session settings are given so the client asks the server for nothing else.
    let url = format!(
        "mysql://cdc:{PASSWORD}@127.0.0.1:{port}?ssl-mode=DISABLED&max_allowed_packet=16777216&wait_timeout=28800"
    );
    let info = ConnInfo::parse(&url, None)?;
    let conn = info.connect().await?;
    conn.disconnect().await.map_err(super::MyError::query)?;
    Ok(())
}

#[tokio::test]
async fn caching_sha2_password_fast_path() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve(listener, None));
    connect_through_sluice(port).await.unwrap();
    let (user, proved, queries) = server.await.unwrap();
    assert_eq!(user, "cdc");
    assert!(proved, "the scramble proves the password");
    assert_eq!(queries, ["SET time_zone = '+00:00', NAMES utf8mb4"]);
}

#[tokio::test]
async fn caching_sha2_password_full_authentication_with_the_servers_rsa_key() {
    let dir = std::env::temp_dir().join(format!("sluice-sha2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rsa_key(&dir);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve(listener, Some(key)));
    connect_through_sluice(port).await.unwrap();
    let (user, proved, queries) = server.await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(user, "cdc");
    assert!(
        proved,
        "the password arrives encrypted with the server's key"
    );
    assert_eq!(queries.len(), 1);
}
