//! A tiny HTTP server with no dependencies: `GET /` answers "hello from cargo oci".
//!
//! It stops on SIGINT (Ctrl-C) and SIGTERM (`podman stop`, Kubernetes) itself: as a container's
//! PID 1, a process gets no default handlers from the kernel, and would ignore both. A real
//! service does this with its runtime (`tokio::signal`, the `ctrlc` crate).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
}

extern "C" fn stop(signum: i32) {
    std::process::exit(128 + signum);
}

fn main() -> std::io::Result<()> {
    // SIGINT and SIGTERM; the handler only exits, which is all this server needs.
    unsafe {
        signal(2, stop);
        signal(15, stop);
    }
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let listener = TcpListener::bind(("0.0.0.0", port.parse().unwrap_or(8080)))?;
    eprintln!("listening on :{port}");
    for stream in listener.incoming() {
        let mut stream = stream?;
        let mut request_line = String::new();
        BufReader::new(&stream).read_line(&mut request_line)?;
        let body = "hello from cargo oci\n";
        write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n\r\n{body}",
            body.len()
        )?;
    }
    Ok(())
}
