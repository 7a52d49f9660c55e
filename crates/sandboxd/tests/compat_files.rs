//! envd's file rules (docs/protocols/envd-rules.md, "Files"): gzip on `/files`, a listing's
//! order and depth, what a symlink's entry says, and file metadata kept as extended attributes.

mod common;

use std::io::{Read, Write};

use common::{Sbx, Server};
use serde_json::{json, Value};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data).read_to_end(&mut out).unwrap();
    out
}

async fn upload(sb: &Sbx, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> reqwest::Response {
    let mut r = sb
        .envd(reqwest::Method::POST, &format!("/files?path={path}"))
        .header("content-type", "application/octet-stream");
    for (k, v) in headers {
        // From bytes: a test must be able to send what a well-behaved client would not.
        r = r.header(*k, reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap());
    }
    r.body(body).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_uploads_and_downloads() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 120})).await;
    let text = b"written with gzip, read without".repeat(20);
    let r = upload(&sb, "gz.txt", &[("content-encoding", "gzip")], gzip(&text)).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let r = sb.read("gz.txt").await;
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.bytes().await.unwrap().as_ref(), &text[..]);
    // Asked for gzip, the download is gzip.
    let r = sb.envd(reqwest::Method::GET, "/files?path=gz.txt").header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["vary"], "Accept-Encoding");
    assert_eq!(gunzip(&r.bytes().await.unwrap()), text);
    // Preferred by quality; identity when gzip is refused; 406 when nothing is acceptable.
    let r = sb
        .envd(reqwest::Method::GET, "/files?path=gz.txt")
        .header("accept-encoding", "gzip;q=0, identity")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.bytes().await.unwrap().as_ref(), &text[..]);
    let r = sb
        .envd(reqwest::Method::GET, "/files?path=gz.txt")
        .header("accept-encoding", "br, identity;q=0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);
    // Multipart bodies are decoded the same way.
    let form =
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.txt\"\r\n\r\nmulti\r\n--XyZ--\r\n";
    let r = sb
        .envd(reqwest::Method::POST, "/files")
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .header("content-encoding", "gzip")
        .body(gzip(form))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(sb.read("m.txt").await.bytes().await.unwrap().as_ref(), b"multi");
    // Clear refusals: an unknown encoding, and a body that is not gzip.
    let r = upload(&sb, "x.txt", &[("content-encoding", "br")], b"x".to_vec()).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("unsupported Content-Encoding"));
    let r = upload(&sb, "x.txt", &[("content-encoding", "gzip")], b"not gzip".to_vec()).await;
    assert_eq!(r.status(), 400);
    assert_eq!(sb.read("x.txt").await.status(), 404, "a refused upload writes nothing");
    s.finish().await;
}

async fn list(sb: &Sbx, path: &str, depth: u32) -> Vec<Value> {
    let (st, v) = sb.rpc("/filesystem.Filesystem/ListDir", json!({"path": path, "depth": depth})).await;
    assert_eq!(st, 200, "{v}");
    v["entries"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_order_depth_and_symlinks() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 120})).await;
    // Made in an order that is neither the names' nor the reverse.
    let run = sb
        .run("mkdir -p t/b/b2 t/a/a2 t/b/b1 t/a/a1/deep && echo hi > t/file.txt && echo x > t/a/z.txt && ln -s file.txt t/link && ln -s gone t/dangling && ln -s a t/dirlink")
        .await;
    assert_eq!(run.exit_code(), 0, "{}", run.stderr());
    let names = |entries: &[Value]| entries.iter().map(|e| e["path"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let one = list(&sb, "t", 1).await;
    assert_eq!(names(&one), ["a", "b", "dangling", "dirlink", "file.txt", "link"].map(|n| format!("/home/user/t/{n}")));
    let two = list(&sb, "t", 2).await;
    let want: Vec<String> =
        ["a", "a/a1", "a/a2", "a/z.txt", "b", "b/b1", "b/b2", "dangling", "dirlink", "file.txt", "link"]
            .iter()
            .map(|n| format!("/home/user/t/{n}"))
            .collect();
    assert_eq!(names(&two), want, "depth-first, each directory's entries by name");
    assert_eq!(list(&sb, "t", 3).await.len(), 12, "depth 3 reaches a/a1/deep");
    assert_eq!(names(&list(&sb, "t", 0).await), names(&one), "depth 0 is 1");
    // A listing through a link names the path asked for.
    assert_eq!(
        names(&list(&sb, "t/dirlink", 1).await),
        ["a1", "a2", "z.txt"].map(|n| format!("/home/user/t/dirlink/{n}"))
    );

    // A symlink's entry: the target's type and mode, `L` permissions, the resolved absolute target.
    let (st, v) = sb.rpc("/filesystem.Filesystem/Stat", json!({"path": "t/link"})).await;
    assert_eq!(st, 200);
    let e = &v["entry"];
    assert_eq!(e["type"], "FILE_TYPE_FILE");
    assert_eq!(e["symlinkTarget"], "/home/user/t/file.txt");
    assert_eq!(e["mode"], 0o644);
    assert_eq!(e["permissions"], "Lrwxrwxrwx");
    assert_eq!(e["name"], "link");
    assert_eq!(e["path"], "/home/user/t/link");
    let (_, v) = sb.rpc("/filesystem.Filesystem/Stat", json!({"path": "t/dirlink"})).await;
    assert_eq!(v["entry"]["type"], "FILE_TYPE_DIRECTORY");
    assert_eq!(v["entry"]["symlinkTarget"], "/home/user/t/a");
    // A dangling link: unknown type, and the target is the link's own path.
    let (_, v) = sb.rpc("/filesystem.Filesystem/Stat", json!({"path": "t/dangling"})).await;
    assert_eq!(v["entry"]["type"], "FILE_TYPE_UNSPECIFIED");
    assert_eq!(v["entry"]["symlinkTarget"], "/home/user/t/dangling");
    // Plain entries: Go's mode string, no target, an RFC 3339 time.
    let (_, v) = sb.rpc("/filesystem.Filesystem/Stat", json!({"path": "t/a"})).await;
    assert_eq!(v["entry"]["permissions"], "drwxr-xr-x");
    assert_eq!(v["entry"]["mode"], 0o755);
    assert!(v["entry"].get("symlinkTarget").is_none());
    assert!(humantime::parse_rfc3339(v["entry"]["modifiedTime"].as_str().unwrap()).is_ok());
    let (st, _) = sb.rpc("/filesystem.Filesystem/ListDir", json!({"path": "t/file.txt"})).await;
    assert_eq!(st, 400, "a file is not a directory");
    let (st, _) = sb.rpc("/filesystem.Filesystem/ListDir", json!({"path": "t/nope"})).await;
    assert_eq!(st, 404);
    s.finish().await;
}

fn meta(e: &Value) -> Value {
    e.get("metadata").cloned().unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_metadata_as_xattrs() {
    let s = Server::start().await;
    let sb = s.create(json!({"templateID": "base", "timeout": 120})).await;
    let r =
        upload(&sb, "m.txt", &[("x-metadata-Author", "mish"), ("x-metadata-purpose", "upload")], b"x".to_vec()).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let info: Value = r.json().await.unwrap();
    assert_eq!(meta(&info[0]), json!({"author": "mish", "purpose": "upload"}), "keys are lowercased");
    let (_, v) = sb.rpc("/filesystem.Filesystem/Stat", json!({"path": "m.txt"})).await;
    assert_eq!(meta(&v["entry"]), json!({"author": "mish", "purpose": "upload"}));
    // The same metadata on every file of a multipart upload, and in a listing.
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"1".to_vec()).file_name("d/one.txt"))
        .part("file", reqwest::multipart::Part::bytes(b"2".to_vec()).file_name("d/two.txt"));
    let r = sb
        .envd(reqwest::Method::POST, "/files")
        .header("x-metadata-source", "suite")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let infos: Value = r.json().await.unwrap();
    assert!(infos.as_array().unwrap().iter().all(|i| meta(i) == json!({"source": "suite"})), "{infos}");
    let entries = list(&sb, "d", 1).await;
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| meta(e) == json!({"source": "suite"})));
    // Kept by a move; cleared by an overwrite without metadata.
    let (_, v) = sb.rpc("/filesystem.Filesystem/Move", json!({"source": "m.txt", "destination": "n.txt"})).await;
    assert_eq!(meta(&v["entry"]), json!({"author": "mish", "purpose": "upload"}));
    let r = upload(&sb, "n.txt", &[], b"second".to_vec()).await;
    assert_eq!(meta(&r.json::<Value>().await.unwrap()[0]), Value::Null);
    let (_, v) = sb.rpc("/filesystem.Filesystem/Stat", json!({"path": "n.txt"})).await;
    assert_eq!(meta(&v["entry"]), Value::Null);
    // Set from inside the sandbox, it shows too.
    let run = sb.run("python3 -c \"import os; os.setxattr('n.txt', 'user.e2b.author', b'inside')\"").await;
    assert_eq!(run.exit_code(), 0, "{}", run.stderr());
    let (_, v) = sb.rpc("/filesystem.Filesystem/Stat", json!({"path": "n.txt"})).await;
    assert_eq!(meta(&v["entry"]), json!({"author": "inside"}));
    // Refused before anything is written: a bad key or value, or too much.
    for (k, v) in [("x-metadata-good", "caf\u{e9}"), ("x-metadata-good", "a\tb")] {
        let r = upload(&sb, "bad.txt", &[(k, v)], b"x".to_vec()).await;
        assert_eq!(r.status(), 400, "{k}: {v:?}");
    }
    // 9 + 1 + 4080 and 9 + 1 + 1 bytes: past the 4096 a file's attributes may take.
    let big = "v".repeat(4080);
    let r = upload(&sb, "bad.txt", &[("x-metadata-a", big.as_str()), ("x-metadata-b", "v")], b"x".to_vec()).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("invalid metadata"));
    assert_eq!(sb.read("bad.txt").await.status(), 404);
    s.finish().await;
}
