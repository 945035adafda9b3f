//! The `huggingface` schema metadata: what Hugging Face `datasets` reads to know each column's
//! feature. With it, `load_dataset("parquet", data_files=...)` on one of our tables gives
//! decoded PIL images for the image columns ([`crate::EncodedImage`]) with no code of ours; without
//! it the same struct column would come back as a plain dict of bytes.
//!
//! The value is the JSON that `datasets` itself writes (`ArrowWriter` in its `arrow_writer.py`):
//! `{"info": {"features": {"<column>": {"dtype": "uint32", "_type": "Value"}, "<image column>":
//! {"_type": "Image"}, ...}}}`, columns in table order.

use std::collections::HashMap;

use arrow::datatypes::Schema;

/// The schema metadata key `datasets` reads its features from.
pub const METADATA_KEY: &str = "huggingface";

/// The `datasets` feature of one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// `Value(dtype)`: a plain value; `dtype` is `datasets`' name of the Arrow type (`string`,
    /// `uint32`, `float64`, `bool`, `binary`, ...).
    Value(&'static str),
    /// `Image()`: a `{bytes, path}` struct whose bytes are an encoded image, decoded to a PIL image
    /// when read.
    Image,
}

impl Feature {
    /// The feature as the JSON object `datasets` writes for it, its keys in `datasets`' order.
    fn to_json(self) -> String {
        match self {
            Feature::Value(dtype) => format!(
                "{{\"dtype\": {}, \"_type\": \"Value\"}}",
                serde_json::Value::String(dtype.to_string())
            ),
            Feature::Image => "{\"_type\": \"Image\"}".to_string(),
        }
    }
}

/// The `huggingface` metadata entry declaring `columns`' features, in the order given.
///
/// Built as text rather than through a `serde_json::Map`, which (without serde_json's
/// `preserve_order`) would sort the columns by name; `datasets` takes the features' order as the
/// column order of what it loads.
pub fn metadata(columns: &[(&str, Feature)]) -> HashMap<String, String> {
    let features = columns
        .iter()
        .map(|(name, feature)| {
            format!(
                "{}: {}",
                serde_json::Value::String((*name).to_string()),
                feature.to_json()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let value = format!("{{\"info\": {{\"features\": {{{features}}}}}}}");
    HashMap::from([(METADATA_KEY.to_string(), value)])
}

/// The names of `schema`'s columns that the `huggingface` metadata declares as images: what a
/// reader of the Parquet file (HF `datasets`) will decode to pictures. Empty when there is no such
/// metadata or it is not the JSON `datasets` writes.
pub fn image_columns(schema: &Schema) -> Vec<String> {
    let Some(text) = schema.metadata().get(METADATA_KEY) else {
        return Vec::new();
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let Some(features) = value
        .get("info")
        .and_then(|i| i.get("features"))
        .and_then(|f| f.as_object())
    else {
        return Vec::new();
    };
    features
        .iter()
        .filter(|(_, f)| f.get("_type").and_then(|t| t.as_str()) == Some("Image"))
        .map(|(name, _)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_is_the_json_datasets_writes_in_column_order() {
        let meta = metadata(&[
            ("video_id", Feature::Value("string")),
            ("image", Feature::Image),
            ("a_score", Feature::Value("float64")),
        ]);
        // What `datasets` 5.2.0 wrote for the same three features (Dataset.to_parquet).
        assert_eq!(
            meta[METADATA_KEY],
            r#"{"info": {"features": {"video_id": {"dtype": "string", "_type": "Value"}, "image": {"_type": "Image"}, "a_score": {"dtype": "float64", "_type": "Value"}}}}"#
        );
        let schema = Schema::empty().with_metadata(meta);
        assert_eq!(image_columns(&schema), vec!["image".to_string()]);
        assert!(image_columns(&Schema::empty()).is_empty());
    }
}
