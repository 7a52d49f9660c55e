//! envd's `filesystem.Filesystem` service, less `WatchDir`: `Stat`, `MakeDir`, `ListDir`,
//! `Remove` and `Move`.

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::Json;
use mayfly_core::wire::e2b::{EntryInfo, EntryResponse, ListDirRequest, ListDirResponse, PathRequest, RpcError};

use super::fsinfo::{self, RawEntry};
use super::helper::{helper, EXISTS, LOOP, NOT_DIR, NOT_FOUND};
use super::{basic_user, empty, jail_path, refuse, unary, Sb, Unary};
use crate::jail::JailUser;
use crate::sandbox::Sandbox;

/// envd's entry for `path`, which is not followed if it is a link (docs/protocols/envd-rules.md,
/// "Entries").
pub(super) async fn stat_entry(sb: &Sandbox, user: JailUser, path: &str) -> Result<EntryInfo, RpcError> {
    let out = fsinfo::run(sb, user, "stat", &[path], None).await?;
    match out.code {
        0 => Ok(fsinfo::parse::<RawEntry>(&out)?.into_entry()),
        NOT_FOUND => Err(RpcError::new("not_found", format!("path '{path}' does not exist"))),
        _ => Err(RpcError::new("internal", format!("error stating '{path}': {}", out.stderr))),
    }
}

pub(super) async fn stat(axum::Extension(sb): Sb, headers: HeaderMap, body: Bytes) -> Unary<EntryResponse> {
    let req: PathRequest = unary(&body)?;
    let user = basic_user(&headers)?;
    let entry = stat_entry(&sb, user, &jail_path(user, &req.path)).await?;
    Ok(Json(EntryResponse { entry }))
}

pub(super) async fn make_dir(axum::Extension(sb): Sb, headers: HeaderMap, body: Bytes) -> Unary<EntryResponse> {
    let req: PathRequest = unary(&body)?;
    let user = basic_user(&headers)?;
    let path = jail_path(user, &req.path);
    let script = format!("[ -d \"$1\" ] && exit {EXISTS}; [ -e \"$1\" ] && exit {NOT_DIR}; exec mkdir -p -- \"$1\"");
    let out = helper(&sb, user, &script, &[&path], None).await?;
    match out.code {
        0 => Ok(Json(EntryResponse { entry: stat_entry(&sb, user, &path).await? })),
        EXISTS => refuse("already_exists", format!("directory '{path}' already exists")),
        NOT_DIR => refuse("invalid_argument", format!("path '{path}' exists but is not a directory")),
        _ => refuse("permission_denied", format!("error creating directory '{path}': {}", out.stderr)),
    }
}

pub(super) async fn list_dir(axum::Extension(sb): Sb, headers: HeaderMap, body: Bytes) -> Unary<ListDirResponse> {
    let req: ListDirRequest = unary(&body)?;
    let user = basic_user(&headers)?;
    let path = jail_path(user, &req.path);
    // Depth 0 is 1; the walk is depth-first with each directory's entries by name, links not
    // followed, and paths under the path asked for (docs/protocols/envd-rules.md, "Listing").
    let depth = req.depth.max(1).to_string();
    let out = fsinfo::run(&sb, user, "list", &[&path, &depth], None).await?;
    match out.code {
        0 => {
            let entries = fsinfo::parse::<Vec<RawEntry>>(&out)?.into_iter().map(RawEntry::into_entry).collect();
            Ok(Json(ListDirResponse { entries }))
        }
        NOT_FOUND => refuse("not_found", format!("path not found: '{path}'")),
        NOT_DIR => refuse("invalid_argument", format!("path is not a directory: {path}")),
        LOOP => refuse("failed_precondition", format!("cyclic symlink or chain >255 links at '{path}'")),
        _ => refuse("internal", format!("error listing '{path}': {}", out.stderr)),
    }
}

pub(super) async fn remove(axum::Extension(sb): Sb, headers: HeaderMap, body: Bytes) -> Unary<serde_json::Value> {
    let req: PathRequest = unary(&body)?;
    let user = basic_user(&headers)?;
    let path = jail_path(user, &req.path);
    let out = helper(&sb, user, "exec rm -rf -- \"$1\"", &[&path], None).await?;
    if out.code != 0 {
        return refuse("permission_denied", format!("error removing '{path}': {}", out.stderr));
    }
    Ok(empty())
}

#[derive(Debug, serde::Deserialize)]
struct MoveRequest {
    source: String,
    destination: String,
}

pub(super) async fn move_entry(axum::Extension(sb): Sb, headers: HeaderMap, body: Bytes) -> Unary<EntryResponse> {
    let req: MoveRequest = unary(&body)?;
    let user = basic_user(&headers)?;
    let (src, dst) = (jail_path(user, &req.source), jail_path(user, &req.destination));
    let script =
        format!("[ -e \"$1\" ] || exit {NOT_FOUND}; mkdir -p -- \"$(dirname -- \"$2\")\" && exec mv -- \"$1\" \"$2\"");
    let out = helper(&sb, user, &script, &[&src, &dst], None).await?;
    match out.code {
        0 => Ok(Json(EntryResponse { entry: stat_entry(&sb, user, &dst).await? })),
        NOT_FOUND => refuse("not_found", format!("path '{src}' does not exist")),
        _ => refuse("permission_denied", format!("error moving '{src}': {}", out.stderr)),
    }
}
