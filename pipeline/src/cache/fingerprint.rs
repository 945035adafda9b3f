//! The cache key of a stage output.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Everything a stage's output depends on. Serialised as JSON with sorted keys, so the key is stable
/// across runs, machines and field order.
#[derive(Debug, Serialize)]
pub struct FingerprintInput<'a> {
    pub stage: &'a str,
    pub version: u32,
    pub params: &'a serde_json::Value,
    /// Upstream stage -> content hash of its output.
    pub inputs: &'a BTreeMap<String, String>,
    pub external: Option<&'a str>,
    /// Part of the key because it decides which rows share a file.
    pub videos_per_shard: Option<usize>,
    /// The output tables' schemas: a schema change invalidates old outputs even if someone forgot
    /// to bump the stage version.
    pub output_schemas: &'a [String],
}

/// 20 hex digits (80 bits) of sha256 over the canonical JSON of `input`: short enough for a folder
/// name, far beyond collisions for any number of outputs one workspace will hold.
pub fn fingerprint(input: &FingerprintInput) -> String {
    canonical_digest(input)
}

/// 20 hex digits of sha256 over the canonical JSON of `input` (fingerprints and shard keys).
pub fn canonical_digest<T: Serialize>(input: &T) -> String {
    // serde_json's Value keeps object keys sorted (no preserve_order feature), so this is canonical.
    let canonical = serde_json::to_value(input)
        .map(|v| v.to_string())
        .unwrap_or_default();
    let digest = Sha256::digest(canonical.as_bytes());
    hex::encode(digest)[..20].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(params: serde_json::Value, upstream: &str) -> String {
        let inputs = BTreeMap::from([("ingest".to_string(), upstream.to_string())]);
        fingerprint(&FingerprintInput {
            stage: "decode",
            version: 1,
            params: &params,
            inputs: &inputs,
            external: None,
            videos_per_shard: Some(8),
            output_schemas: &[],
        })
    }

    #[test]
    fn key_depends_on_params_and_inputs_but_not_key_order() {
        let a = key(json!({"frames": 20, "interval": 0.5}), "h1");
        assert_eq!(a, key(json!({"interval": 0.5, "frames": 20}), "h1"));
        assert_ne!(a, key(json!({"frames": 10, "interval": 0.5}), "h1"));
        assert_ne!(a, key(json!({"frames": 20, "interval": 0.5}), "h2"));
        assert_eq!(a.len(), 20);
    }
}
