//! The per-worker `awc` client every upstream call goes through.

use std::time::Duration;

use actix_rt::net::TcpStream;
use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, ConnectorService};
use awc::http::Uri;
use futures_util::future::LocalBoxFuture;

/// The upstream response body stream (awc's boxed payload).
pub type UpstreamPayload = actix_http::Payload<actix_http::BoxedPayloadStream>;

/// Sets TCP_NODELAY on every upstream connection: without it the first stream frame can wait
/// for a delayed ACK (tens of milliseconds).
#[derive(Clone, Default)]
struct NoDelay(ConnectorService);

impl Service<ConnectInfo<Uri>> for NoDelay {
    type Response = Connection<Uri, TcpStream>;
    type Error = ConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_service::always_ready!();

    fn call(&self, req: ConnectInfo<Uri>) -> Self::Future {
        let fut = self.0.call(req);
        Box::pin(async move {
            let conn = fut.await?;
            let _ = conn.io_ref().set_nodelay(true);
            Ok(conn)
        })
    }
}

/// Installs the TLS crypto provider once per process (awc's rustls connector needs one).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One client per worker (`awc::Client` is `!Send`). No connection cap, no client-wide timeout
/// (each request sets its own), no redirects, no decompression (bytes pass through untouched),
/// no default headers (nothing of the client's request is forwarded but what the relay writes).
pub fn build_client() -> awc::Client {
    install_crypto();
    let connector = awc::Connector::new()
        .connector(NoDelay::default())
        .limit(0)
        .timeout(Duration::from_secs(10))
        .conn_keep_alive(Duration::from_secs(60));
    awc::Client::builder()
        .connector(connector)
        .disable_timeout()
        .disable_redirects()
        .no_default_headers()
        .finish()
}
