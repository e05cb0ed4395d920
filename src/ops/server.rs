//! `--listen`: `GET /healthz` and `GET /metrics`, served by hyper (HTTP/1.1)
//! on the ops thread's runtime, never the trading loop's.
//!
//! A limit on everything a client can hold: at most `CONNECTIONS_MAX`
//! connections at once (one more is closed at once), `HEADER_READ_TIMEOUT`
//! to send a request's head, `CONNECTION_TIMEOUT` for a whole connection.
//! A body is never read. A client that connects and says nothing, or reads
//! its answer a byte a minute, holds one slot until its timeout – and the
//! trading loop, on another thread, never knows.

use super::Board;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;

const CONNECTIONS_MAX: usize = 64;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves until `stop` turns true.
pub async fn serve(
    listener: std::net::TcpListener,
    board: Arc<Board>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!("--listen: cannot serve: {error}");
            return;
        }
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let (stream, _) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, say: wait, do not spin.
                tracing::warn!("--listen: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream); // every slot held: closed at once
            continue;
        };
        let board = board.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let board = board.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&board, &request)) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                // One request a connection: a scraper's reused connection
                // is never cut by the connection timeout mid-scrape.
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            drop(slot);
        });
    }
}

/// The answer to one request.
fn answer<B>(board: &Board, request: &Request<B>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match request.uri().path() {
        "/healthz" => {
            let (verdict, doc) = board.now();
            let status = if verdict.healthy {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let mut body = doc.to_string();
            body.push('\n');
            respond(status, "application/json", body)
        }
        "/metrics" => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            board.metrics_text(),
        ),
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found: GET /healthz or /metrics\n",
        ),
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", text.to_string())
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}
