//! A file transfer is never held in sandboxd's memory: `/files` streams between the client and
//! the jail both ways, with gzip undone or done on the way, so no tenant can grow sandboxd (which
//! every sandbox shares) by uploading or reading a large file, or one that never ends.
//!
//! One test in this binary on purpose: it judges the process's peak memory, which sandboxd (run
//! in-process) and the test share.

mod common;

use std::io::Write;
use std::time::Duration;

use common::Server;
use serde_json::json;

const MIB: usize = 1 << 20;

/// The process's peak resident memory, in MiB.
fn peak_rss_mib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() / 1024
}

/// `mib` MiB of zeros, gzipped a MiB at a time (so the test itself never holds them).
fn gzipped_zeros(mib: usize) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let chunk = vec![0u8; MIB];
    for _ in 0..mib {
        encoder.write_all(&chunk).unwrap();
    }
    encoder.finish().unwrap()
}

/// Reads a response to its end, a chunk at a time; how many bytes it had.
async fn drain(mut response: reqwest::Response) -> usize {
    let mut total = 0;
    while let Some(chunk) = response.chunk().await.unwrap() {
        total += chunk.len();
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_stream_through_sandboxd_without_being_held_in_memory() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 120})).await;
    let packed = gzipped_zeros(200);
    let before = peak_rss_mib();

    let r = sb
        .envd(reqwest::Method::POST, "/files?path=big")
        .header("content-type", "application/octet-stream")
        .header("content-encoding", "gzip")
        .body(packed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(sb.run("stat -c %s big").await.stdout(), format!("{}\n", 200 * MIB));

    let r = sb.envd(reqwest::Method::GET, "/files?path=big").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(drain(r).await, 200 * MIB);
    let r = sb.envd(reqwest::Method::GET, "/files?path=big").header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let packed = drain(r).await;
    assert!(packed < MIB, "200 MiB of zeros gzip to {packed} bytes");

    let grown = peak_rss_mib().saturating_sub(before);
    assert!(grown < 64, "sandboxd's peak memory grew by {grown} MiB moving a 200 MiB file");

    // A file that never ends answers at once, and stops when the reader does.
    let r =
        tokio::time::timeout(Duration::from_secs(30), sb.envd(reqwest::Method::GET, "/files?path=/dev/zero").send())
            .await
            .expect("a download starts before the file has ended")
            .unwrap();
    assert_eq!(r.status(), 200);
    let mut r = r;
    let mut read = 0;
    while read < 8 * MIB {
        read += r.chunk().await.unwrap().expect("/dev/zero never ends").len();
    }
    drop(r);
    assert_eq!(s.kill(&sb.id).await, 204);
    s.finish().await;
}
