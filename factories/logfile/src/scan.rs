//! Listing host files: walk each pattern's base directory and stat what matches.
//!
//! A file is identified by `(device, inode)` plus its size and mtime; content checks against
//! the pond's outboards decide the rest (see `plan.rs`). Only regular files are matched
//! (symlinks are followed). Problems reading a directory or stat-ing a file are collected and
//! reported; the rest of the scan goes on.

use crate::config::{Pattern, Settings};
use crate::state::Role;
use pond_factory::Problem;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What identifies a host file and tells cheaply whether it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
}

impl Identity {
    /// The identity in `meta`.
    pub fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
        }
    }

    /// Same device and inode: the same file, whatever its name or content now.
    pub fn same_file(&self, other: &Identity) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// One matched host file, as listed at the start of the run.
#[derive(Debug, Clone)]
pub struct HostFile {
    pub path: PathBuf,
    /// Path relative to the pattern's base: the mirrored name.
    pub name: String,
    pub role: Role,
    pub id: Identity,
}

/// Lists every file the source's patterns match, sorted by path. Errors name the host path.
/// Each error comes with the path it is about (a directory that could not be listed, or a file
/// that could not be stat-ed), so that files below it are not taken for gone.
pub fn scan(source: &Settings) -> (Vec<HostFile>, Vec<(PathBuf, Problem)>) {
    let mut found: BTreeMap<PathBuf, Vec<HostFile>> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut patterns = vec![(&source.active, Role::Active)];
    if let Some(archived) = &source.archived {
        patterns.push((archived, Role::Archive));
    }
    for (pattern, role) in patterns {
        if let Err(e) = std::fs::metadata(&pattern.base) {
            errors.push((
                pattern.base.clone(),
                Problem::new(
                    pattern.base.display(),
                    format!("base directory of {:?}: {e}", pattern.text),
                ),
            ));
            continue;
        }
        let mut visit = |path: &Path, meta: &std::fs::Metadata| {
            if let Some(name) = pattern.name_of(path) {
                found.entry(path.to_path_buf()).or_default().push(HostFile {
                    path: path.to_path_buf(),
                    name,
                    role,
                    id: Identity::of(meta),
                });
            }
        };
        walk(pattern, &pattern.base, 0, &mut visit, &mut errors);
    }
    let mut files = Vec::with_capacity(found.len());
    for (path, mut matches) in found {
        // Each pattern visits a path once, so two matches mean both roles: refuse to guess.
        if matches.len() > 1 {
            let problem = Problem::new(
                path.display(),
                "matched by both active_pattern and archived_pattern",
            );
            errors.push((path, problem));
        } else if let Some(file) = matches.pop() {
            files.push(file);
        }
    }
    (files, errors)
}

fn walk(
    pattern: &Pattern,
    dir: &Path,
    depth: usize,
    visit: &mut dyn FnMut(&Path, &std::fs::Metadata),
    errors: &mut Vec<(PathBuf, Problem)>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push((
                dir.to_path_buf(),
                Problem::new(dir.display(), format!("cannot list: {e}")),
            ));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            // Vanished between listing and stat: not there for this run.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                let problem = Problem::new(path.display(), format!("cannot stat: {e}"));
                errors.push((path, problem));
                continue;
            }
        };
        let here = depth + 1;
        if meta.is_dir() {
            if pattern.depth.is_none_or(|max| here < max) {
                walk(pattern, &path, here, visit, errors);
            }
        } else if meta.is_file() && pattern.depth.is_none_or(|max| here == max) {
            visit(&path, &meta);
        }
    }
}
