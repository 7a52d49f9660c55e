//! envd's `/files`: download one file, upload one (raw body) or several (multipart), with gzip
//! either way and `X-Metadata-*` headers kept as the uploaded files' metadata
//! (docs/protocols/envd-rules.md, "gzip" and "File metadata").
//!
//! A file streams between the client and the jail and is never whole in sandboxd's memory, which
//! every sandbox shares: a tenant's large, endless or highly compressed file costs sandboxd a
//! buffer, not the file (docs/security.md).

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Query, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use mayfly_core::wire::e2b::{RpcError, StringMap, WriteInfo};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::{ReaderStream, StreamReader};

use super::direct::{self, Opened, WriteError, METADATA_PREFIX};
use super::encoding::{self, Coding};
use super::helper::{self, IS_DIR, NOT_FOUND, NO_SPACE};
use super::{fsinfo, jail_path, query_user, Sb};
use crate::jail::JailUser;
use crate::sandbox::Sandbox;

/// The largest file `/files` accepts in one request (as the jail's own file size limit).
const MAX_FILE: usize = 256 << 20;
/// envd's limits on metadata: a key fits an xattr name after `user.e2b.`, and the whole set fits
/// one ext4 block.
const MAX_METADATA_KEY: usize = 255 - METADATA_PREFIX.len();
const MAX_METADATA_TOTAL: usize = 4096;

#[derive(Debug, serde::Deserialize)]
pub(super) struct FileQuery {
    path: Option<String>,
    username: Option<String>,
}

fn file_error(status: StatusCode, message: impl Into<String>) -> Response {
    crate::control::error(status, message)
}

pub(super) async fn download(axum::Extension(sb): Sb, Query(q): Query<FileQuery>, headers: HeaderMap) -> Response {
    let user = match query_user(q.username.as_deref()) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Some(path) = q.path.as_deref().filter(|p| !p.is_empty()) else {
        return file_error(StatusCode::BAD_REQUEST, "path query parameter is required");
    };
    let path = jail_path(user, path);
    let coding = match encoding::accept_encoding(&headers) {
        Ok(c) => c,
        Err(e) => return file_error(StatusCode::NOT_ACCEPTABLE, format!("error parsing Accept-Encoding: {e}")),
    };
    let script = format!(
        "[ -e \"$1\" ] || exit {NOT_FOUND}; [ -d \"$1\" ] && exit {IS_DIR}; exec {} -- \"$1\"",
        encoding::download_program(coding)
    );
    let mut child = match helper::spawn(&sb, user, helper::script_argv(&script, &[&path]), false).await {
        Ok(child) => child,
        Err(e) => return helper_error(e),
    };
    // The first bytes say the file could be read; until then a refusal can still be an answer.
    let Some(mut stdout) = child.stdout.take() else { return helper_error(RpcError::new("internal", "no stdout")) };
    let mut first = vec![0u8; 64 << 10];
    let read = match stdout.read(&mut first).await {
        Ok(read) => read,
        Err(e) => return file_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if read == 0 {
        let out = match helper::finish(child).await {
            Ok(out) => out,
            Err(e) => return helper_error(e),
        };
        return match out.code {
            0 => file_response(Body::empty(), coding),
            NOT_FOUND => file_error(StatusCode::NOT_FOUND, format!("path '{path}' does not exist")),
            IS_DIR => file_error(StatusCode::BAD_REQUEST, format!("path '{path}' is a directory")),
            _ => file_error(StatusCode::FORBIDDEN, format!("error reading '{path}': {}", out.stderr)),
        };
    }
    first.truncate(read);
    // The helper lives as long as the body: a client that stops reading ends it.
    let content = ReaderStream::new(std::io::Cursor::new(first).chain(stdout)).map(move |chunk| {
        let _helper = &child;
        chunk
    });
    file_response(Body::from_stream(content), coding)
}

fn file_response(body: Body, coding: Coding) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if coding == Coding::Gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// A helper that could not run: the client's mistake, too big an answer, or sandboxd's failure.
fn helper_error(e: RpcError) -> Response {
    let status = match e.code.as_str() {
        "invalid_argument" => StatusCode::BAD_REQUEST,
        "resource_exhausted" => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    file_error(status, e.message)
}

/// The `X-Metadata-*` headers: prefix stripped, keys lowercased, checked as envd checks them.
fn metadata(headers: &HeaderMap) -> Result<StringMap, String> {
    let mut found = StringMap::new();
    for (name, value) in headers {
        let Some(key) = name.as_str().strip_prefix("x-metadata-").filter(|k| !k.is_empty()) else { continue };
        if found.contains_key(key) {
            continue;
        }
        let printable = |s: &[u8]| s.iter().all(|b| (0x20..=0x7e).contains(b));
        if key.len() > MAX_METADATA_KEY {
            return Err(format!("metadata key {key:?} exceeds {MAX_METADATA_KEY} bytes"));
        }
        if !printable(key.as_bytes()) || !printable(value.as_bytes()) {
            return Err(format!("metadata key {key:?} or its value is not printable ASCII"));
        }
        found.insert(key.to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let total: usize = found.iter().map(|(k, v)| METADATA_PREFIX.len() + k.len() + v.len()).sum();
    if total > MAX_METADATA_TOTAL {
        return Err(format!("total metadata size {total} exceeds {MAX_METADATA_TOTAL} bytes"));
    }
    Ok(found)
}

/// Writes what `data` reads (at most [`MAX_FILE`] bytes) to `path` as it arrives, then its
/// metadata: straight into the sandbox's directory where `direct` may, else by a jailed helper.
async fn write_file(
    sb: &Sandbox,
    user: JailUser,
    path: &str,
    data: impl AsyncRead + Unpin,
    meta: &StringMap,
) -> Result<WriteInfo, Response> {
    match direct::open(sb.file_root().await, path).await {
        Opened::File(target) => write_direct(sb, target, path, data, meta).await,
        Opened::IsDir => Err(is_dir(path)),
        Opened::Jailed => write_jailed(sb, user, path, data, meta).await,
    }
}

fn is_dir(path: &str) -> Response {
    file_error(StatusCode::BAD_REQUEST, format!("path '{path}' is a directory"))
}

fn no_space(path: &str) -> Response {
    file_error(StatusCode::INSUFFICIENT_STORAGE, format!("not enough space to write '{path}'"))
}

fn written(path: &str, metadata: Option<StringMap>) -> WriteInfo {
    WriteInfo {
        path: path.to_owned(),
        name: path.rsplit('/').next().unwrap_or_default().to_owned(),
        kind: "file".into(),
        metadata,
    }
}

async fn write_direct(
    sb: &Sandbox,
    target: direct::Target,
    path: &str,
    data: impl AsyncRead + Unpin,
    meta: &StringMap,
) -> Result<WriteInfo, Response> {
    let refused = |e: WriteError| match e {
        WriteError::Body(e) => file_error(StatusCode::BAD_REQUEST, format!("error reading the request body: {e}")),
        WriteError::TooLarge => file_error(StatusCode::PAYLOAD_TOO_LARGE, "file is too large"),
        WriteError::NoSpace => no_space(path),
        WriteError::Io(e) => file_error(StatusCode::INTERNAL_SERVER_ERROR, format!("error writing '{path}': {e}")),
    };
    // No part of a file that did not arrive whole stays.
    if let Err(e) = target.write(data, MAX_FILE as u64, || sb.is_gone()).await {
        target.remove().await;
        return Err(refused(e));
    }
    let stored = if meta.is_empty() && !target.existed {
        None
    } else {
        target.set_metadata(meta.clone()).await.map_err(|e| match e {
            WriteError::NoSpace => file_error(StatusCode::INSUFFICIENT_STORAGE, "not enough space for file metadata"),
            e => refused(e),
        })?
    };
    Ok(written(path, stored))
}

async fn write_jailed(
    sb: &Sandbox,
    user: JailUser,
    path: &str,
    data: impl AsyncRead + Unpin,
    meta: &StringMap,
) -> Result<WriteInfo, Response> {
    // `e` on stdout says the file was there before: its old metadata must then be replaced.
    let script = format!(
        "[ -d \"$1\" ] && exit {IS_DIR}; [ -e \"$1\" ] && printf e; mkdir -p -- \"$(dirname -- \"$1\")\" && exec cat > \"$1\""
    );
    let limited = data.take(MAX_FILE as u64 + 1);
    let (out, fed) =
        helper::run_fed(sb, user, helper::script_argv(&script, &[path]), limited).await.map_err(helper_error)?;
    match out.code {
        0 => {}
        IS_DIR => return Err(is_dir(path)),
        _ if out.stderr.contains("No space left") || out.stderr.contains("File too large") => {
            return Err(no_space(path))
        }
        _ => return Err(file_error(StatusCode::FORBIDDEN, format!("error writing '{path}': {}", out.stderr))),
    }
    // The helper wrote what came; if that was not the whole file, no part of it stays.
    let refused = match fed {
        Ok(n) if n > MAX_FILE as u64 => Some(file_error(StatusCode::PAYLOAD_TOO_LARGE, "file is too large")),
        Ok(_) => None,
        Err(e) => Some(file_error(StatusCode::BAD_REQUEST, format!("error reading the request body: {e}"))),
    };
    if let Some(refused) = refused {
        let _ = helper::helper(sb, user, "exec rm -f -- \"$1\"", &[path], None).await;
        return Err(refused);
    }
    let existed = out.stdout == b"e";
    let stored = if meta.is_empty() && !existed {
        None
    } else {
        let input = serde_json::to_vec(meta).map(Bytes::from).unwrap_or_default();
        let out = fsinfo::run(sb, user, "setmeta", &[path], Some(input))
            .await
            .map_err(|e| file_error(StatusCode::INTERNAL_SERVER_ERROR, e.message))?;
        match out.code {
            0 => fsinfo::parse::<Option<StringMap>>(&out)
                .map_err(|e| file_error(StatusCode::INTERNAL_SERVER_ERROR, e.message))?,
            NO_SPACE => {
                return Err(file_error(StatusCode::INSUFFICIENT_STORAGE, "not enough space for file metadata"));
            }
            _ => {
                return Err(file_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("error writing metadata of '{path}': {}", out.stderr),
                ))
            }
        }
    };
    Ok(written(path, stored))
}

pub(super) async fn upload(axum::Extension(sb): Sb, Query(q): Query<FileQuery>, req: Request) -> Response {
    let coding = match encoding::content_encoding(req.headers()) {
        Ok(c) => c,
        Err(e) => return file_error(StatusCode::BAD_REQUEST, e),
    };
    let meta = match metadata(req.headers()) {
        Ok(m) => m,
        Err(e) => return file_error(StatusCode::BAD_REQUEST, format!("invalid metadata: {e}")),
    };
    let user = match query_user(q.username.as_deref()) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let (mut parts, body) = req.into_parts();
    // The body streams through, decoded on the way; nothing of it is held whole. A raw body past
    // the limit ends early, which the decoder or the size check refuses.
    let raw = StreamReader::new(body.into_data_stream().map(|chunk| chunk.map_err(std::io::Error::other)))
        .take(MAX_FILE as u64 + 1);
    let body = encoding::decoded(raw, coding);
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.remove(header::CONTENT_LENGTH);
    let ct = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let query_path = q.path.filter(|p| !p.is_empty()).map(|p| jail_path(user, &p));
    let mut written = Vec::new();
    if ct.starts_with("application/octet-stream") {
        let Some(path) = query_path else {
            return file_error(StatusCode::BAD_REQUEST, "path query parameter is required for raw body upload");
        };
        match write_file(&sb, user, &path, body, &meta).await {
            Ok(w) => written.push(w),
            Err(r) => return r,
        }
    } else if ct.starts_with("multipart/form-data") {
        let req = Request::from_parts(parts, Body::from_stream(ReaderStream::new(body)));
        let mut mp = match Multipart::from_request(req, &()).await {
            Ok(m) => m,
            Err(e) => return file_error(StatusCode::BAD_REQUEST, e.body_text()),
        };
        loop {
            let field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return file_error(StatusCode::BAD_REQUEST, e.body_text()),
            };
            if field.name() != Some("file") {
                continue;
            }
            let path = match (&query_path, field.file_name()) {
                (Some(p), _) => p.clone(),
                (None, Some(f)) if !f.is_empty() => jail_path(user, f),
                _ => return file_error(StatusCode::BAD_REQUEST, "path is required"),
            };
            if written.iter().any(|w: &WriteInfo| w.path == path) {
                return file_error(StatusCode::BAD_REQUEST, format!("path '{path}' is given more than once"));
            }
            let data = StreamReader::new(field.map(|chunk| chunk.map_err(std::io::Error::other)));
            match write_file(&sb, user, &path, data, &meta).await {
                Ok(w) => written.push(w),
                Err(r) => return r,
            }
        }
    } else {
        return file_error(StatusCode::BAD_REQUEST, "unsupported content type");
    }
    Json(written).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-metadata-Author", "mish".parse().unwrap());
        h.insert("x-other", "no".parse().unwrap());
        assert_eq!(metadata(&h).unwrap(), StringMap::from([("author".into(), "mish".into())]));
        h.insert("x-metadata-bad", HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        assert!(metadata(&h).is_err());
        let mut h = HeaderMap::new();
        h.insert("x-metadata-a", "v".repeat(4090).parse().unwrap());
        assert!(metadata(&h).unwrap_err().contains("exceeds 4096"));
    }
}
