//! Resuming an output folder (`<fingerprint>.partial/`) that an interrupted run left: only shards
//! whose record was written, and whose files are all there at their recorded sizes, are kept;
//! everything else in the folder (a temporary file of a writer killed before its rename, the
//! tables of a shard killed before its record, a record whose files are gone) is removed, so that
//! the finished folder holds exactly the files its manifest lists.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::manifest::ShardRecord;
use super::verify::files_under;
use super::CacheError;

/// The folder of shard records inside an output folder.
pub const SHARDS: &str = "_shards";

/// The record file of shard `index`, relative to the output folder.
pub fn record_path(index: usize) -> String {
    format!("{SHARDS}/{index:05}.json")
}

/// Keeps the finished shards of `partial` (by index) and removes every other file in it.
pub fn sweep(partial: &Path) -> Result<BTreeMap<usize, ShardRecord>, CacheError> {
    let mut shards = BTreeMap::new();
    let records = partial.join(SHARDS);
    if let Ok(read) = fs::read_dir(&records) {
        for entry in read.flatten() {
            let path = entry.path();
            let Ok(record) = ShardRecord::read(&path) else {
                continue;
            };
            let named_right =
                entry.file_name().to_string_lossy() == format!("{:05}.json", record.index);
            let whole = record.files.iter().all(|f| {
                fs::symlink_metadata(partial.join(&f.path))
                    .is_ok_and(|m| m.is_file() && m.len() == f.bytes)
            });
            if named_right && whole {
                shards.insert(record.index, record);
            }
        }
    }
    let mut keep: Vec<String> = Vec::new();
    for (index, record) in &shards {
        keep.push(record_path(*index));
        keep.extend(record.files.iter().map(|f| f.path.clone()));
    }
    keep.sort();
    for relative in files_under(partial)? {
        if keep.binary_search(&relative).is_err() {
            let path = partial.join(&relative);
            tracing::debug!("removing {}: not part of a finished shard", path.display());
            fs::remove_file(&path).map_err(|e| CacheError::io(&path, e))?;
        }
    }
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::manifest::FileRecord;

    fn record(index: usize, path: &str, bytes: u64) -> ShardRecord {
        ShardRecord {
            index,
            videos: 1,
            files: vec![FileRecord {
                path: path.into(),
                rows: 1,
                bytes,
                sha256: String::new(),
            }],
            seconds: 0.0,
            key: None,
        }
    }

    #[test]
    fn only_recorded_whole_shards_survive() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        fs::create_dir_all(p.join("frames")).unwrap();
        fs::create_dir_all(p.join(SHARDS)).unwrap();
        // Shard 0: recorded and whole.
        fs::write(p.join("frames/part-00000.parquet"), b"12345").unwrap();
        record(0, "frames/part-00000.parquet", 5)
            .write(&p.join(record_path(0)))
            .unwrap();
        // Shard 1: its table written, killed before the record; and a temporary of shard 2.
        fs::write(p.join("frames/part-00001.parquet"), b"123").unwrap();
        fs::write(p.join("frames/part-00002.parquet.tmp-99"), b"1").unwrap();
        // Shard 3: recorded, but its file is short.
        fs::write(p.join("frames/part-00003.parquet"), b"1").unwrap();
        record(3, "frames/part-00003.parquet", 9)
            .write(&p.join(record_path(3)))
            .unwrap();
        fs::write(p.join("_shards/00004.json.tmp-99"), b"{").unwrap();

        let kept = sweep(p).unwrap();
        assert_eq!(kept.keys().copied().collect::<Vec<_>>(), [0]);
        assert_eq!(
            files_under(p).unwrap(),
            ["_shards/00000.json", "frames/part-00000.parquet"]
        );
    }
}
