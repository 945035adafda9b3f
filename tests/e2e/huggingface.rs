//! Our tables as Hugging Face `datasets` reads them: `load_dataset("parquet", data_files=...)` on
//! the Parquet files `dfd run` wrote gives the image columns (`faces.image`, `ssim_maps.map`,
//! `frames.image`) as the `Image` feature, so a row's image is a decoded PIL picture, with no code
//! of ours. Checked with the library itself (pinned, installed by `scripts/setup.sh` into
//! `vendor/python-datasets`); without it this test fails and says so rather than passing untested.
//!
//! A control in the same script loads a copy of the `faces` file stripped of its `huggingface`
//! metadata and finds no `Image` feature there: the metadata, not some guess of the library's, is
//! what makes the pictures.

use std::path::PathBuf;
use std::process::Command;

use dfd_schemas::{FaceRow, TableRow};
use dfd_tests::{repo_root, Dataset, Dfd};
use serde_json::Value;

/// The Python of the virtual environment that holds `datasets`.
fn datasets_python() -> PathBuf {
    let python = repo_root().join("vendor/python-datasets/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: this test loads our tables with Hugging Face `datasets`; run \
         `bash scripts/setup.sh` (or `make test`), which installs it",
        python.display()
    );
    python
}

/// Loads each table given in `argv[1]` (JSON: table, column, files) with `load_dataset` and prints
/// what it found, as JSON: the column's feature, the first row's image (PIL or not, size, mode),
/// the dtypes of the plain columns, the row count and the Parquet file's key-value metadata keys.
/// Then the control: the first `faces` file without its `huggingface` metadata.
const SCRIPT: &str = r#"
import json, sys, tempfile
import PIL.Image
import pyarrow.parquet as pq
from datasets import load_dataset

def load(files, cache):
    ds = load_dataset("parquet", data_files=files, split="train", cache_dir=cache)
    return ds

checks, cache = json.loads(sys.argv[1]), sys.argv[2]
out = {}
for check in checks:
    files, column = check["files"], check["column"]
    ds = load(files, cache)
    first = ds[0]
    picture = first[column]
    out[check["table"]] = {
        "file_metadata": sorted(k.decode() for k in (pq.ParquetFile(files[0]).metadata.metadata or {})),
        "feature": type(ds.features[column]).__name__,
        "is_pil": isinstance(picture, PIL.Image.Image),
        "size": list(picture.size) if isinstance(picture, PIL.Image.Image) else None,
        "mode": picture.mode if isinstance(picture, PIL.Image.Image) else None,
        "dtypes": {n: f.dtype for n, f in ds.features.items() if type(f).__name__ == "Value"},
        "rows": ds.num_rows,
        "first": {"video_id": first["video_id"], "sample_index": first["sample_index"]},
    }
faces = next(c for c in checks if c["table"] == "faces")
stripped = tempfile.mkdtemp() + "/faces.parquet"
pq.write_table(pq.read_table(faces["files"][0]).replace_schema_metadata(None), stripped)
control = load([stripped], cache)
out["control"] = {
    "feature": type(control.features[faces["column"]]).__name__,
    "is_pil": isinstance(control[0][faces["column"]], PIL.Image.Image),
}
print(json.dumps(out))
"#;

#[test]
fn load_dataset_reads_our_image_columns_as_pictures() {
    let python = datasets_python();
    let data = Dataset::new()
        .clip("talking.mp4", "WolfgangLanger_Pexels.mp4", "REAL")
        .write();
    let dfd = Dfd::new();
    dfd.ok(&[
        "run",
        "--dataset",
        data.path().to_str().unwrap(),
        "--until",
        "ssim",
        "--set",
        "decode.frames_per_video=3",
    ]);
    let files = |stage: &str, table: &str| {
        let files: Vec<String> = dfd
            .table_files(stage, table)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert!(!files.is_empty(), "no {stage}/{table} file");
        files
    };
    let checks = serde_json::json!([
        {"table": "faces", "column": "image", "files": files("crop", "faces")},
        {"table": "ssim_maps", "column": "map", "files": files("ssim", "ssim_maps")},
        {"table": "frames", "column": "image", "files": files("decode", "frames")},
    ]);
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(&python)
        .args(["-c", SCRIPT, &checks.to_string()])
        .arg(home.path().join("datasets-cache"))
        // Nothing from the network, nothing written outside the temporary folder.
        .env("HF_HOME", home.path())
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "datasets failed:\n{stderr}");
    let found: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}\n{stderr}", out.stdout));

    let faces = dfd.rows("crop", "faces", FaceRow::from_batch);
    let shown = &found["faces"];
    assert_eq!(shown["feature"], "Image", "{found}");
    assert_eq!(shown["is_pil"], true, "{found}");
    assert_eq!(shown["size"], serde_json::json!([224, 224]), "{found}");
    assert_eq!(shown["mode"], "RGB", "{found}");
    assert_eq!(shown["rows"], faces.len(), "{found}");
    assert_eq!(shown["first"]["video_id"], faces[0].video_id, "{found}");
    assert_eq!(
        shown["first"]["sample_index"], faces[0].sample_index,
        "{found}"
    );
    // The plain columns keep their exact types (unsigned stays unsigned, f32 stays f32).
    assert_eq!(shown["dtypes"]["sample_index"], "uint32", "{found}");
    assert_eq!(shown["dtypes"]["frame_index"], "uint64", "{found}");
    assert_eq!(shown["dtypes"]["confidence"], "float32", "{found}");
    assert_eq!(shown["dtypes"]["video_id"], "string", "{found}");
    // The features are in the Parquet footer itself, beside the Arrow schema.
    assert_eq!(
        shown["file_metadata"],
        serde_json::json!(["ARROW:schema", "huggingface"]),
        "{found}"
    );

    let maps = &found["ssim_maps"];
    assert_eq!(maps["feature"], "Image", "{found}");
    assert_eq!(maps["is_pil"], true, "{found}");
    assert_eq!(maps["mode"], "L", "an SSIM map is grey: {found}");

    let frames = &found["frames"];
    assert_eq!(frames["feature"], "Image", "{found}");
    assert_eq!(frames["is_pil"], true, "{found}");
    // The default stored frame is a preview: the longer side 256 pixels.
    let size = frames["size"].as_array().unwrap();
    assert_eq!(
        size.iter().filter_map(Value::as_u64).max(),
        Some(256),
        "{found}"
    );

    // Without the metadata the same column is a plain struct of bytes and path.
    assert_ne!(found["control"]["feature"], "Image", "{found}");
    assert_eq!(found["control"]["is_pil"], false, "{found}");
}
