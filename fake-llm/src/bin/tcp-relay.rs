//! A byte-for-byte TCP relay: the cheapest possible hop between a client and a server.
//!
//! `scripts/bench.sh` measures it alongside the router, so the latency any extra hop costs on this
//! machine (an extra process, two extra sockets, scheduling) can be told apart from the router's
//! own work. It parses nothing and buffers nothing beyond one read.

use tokio::net::{TcpListener, TcpStream};

const USAGE: &str = "tcp-relay --port PORT --to HOST:PORT";

fn main() {
    let mut port = None;
    let mut to = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next();
        match (flag.as_str(), value) {
            ("--port", Some(v)) => port = Some(v.parse::<u16>().expect("--port: a port number")),
            ("--to", Some(v)) => to = Some(v),
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let (Some(port), Some(to)) = (port, to) else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    actix_rt::System::new().block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("cannot listen");
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            let to = to.clone();
            actix_rt::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(&to).await else {
                    return;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
}
