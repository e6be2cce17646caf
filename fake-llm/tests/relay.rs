//! `tcp-relay` carries bytes both ways, unchanged, between a client and the server it points at.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn relays_bytes_both_ways_unchanged() {
    // The server answers each connection with its input reversed, then closes.
    let server = TcpListener::bind("127.0.0.1:0").expect("bind");
    let target = server.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in server.incoming().flatten() {
            let mut conn = conn;
            let mut buf = [0u8; 5];
            if conn.read_exact(&mut buf).is_ok() {
                buf.reverse();
                let _ = conn.write_all(&buf);
            }
        }
    });
    let port = free_port();
    let _relay = Relay(
        Command::new(env!("CARGO_BIN_EXE_tcp-relay"))
            .args(["--port", &port.to_string(), "--to", &target.to_string()])
            .spawn()
            .expect("start tcp-relay"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut client = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(c) => break c,
            Err(e) if Instant::now() > deadline => panic!("tcp-relay did not listen: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    client.write_all(b"hello").expect("write");
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).expect("read");
    assert_eq!(answer, b"olleh");
}
