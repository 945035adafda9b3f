//! Typed access to the columns of a record batch, with errors that say which table and column failed.

use arrow::array::{Array, ArrayRef};
use arrow::record_batch::RecordBatch;

/// Why a batch does not satisfy a table's contract.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("table `{table}`: schema mismatch\n  expected: {expected}\n  found:    {found}")]
    SchemaMismatch {
        table: &'static str,
        expected: String,
        found: String,
    },
    #[error(
        "table `{table}`: column `{column}` has type {data_type}, which has no stable name for \
         cache keys yet (TableDef::stable_description)"
    )]
    Unnamed {
        table: &'static str,
        column: String,
        data_type: String,
    },
    #[error("table `{table}`: column `{column}` is missing")]
    MissingColumn {
        table: &'static str,
        column: &'static str,
    },
    #[error("table `{table}`: column `{column}` is {found}, expected {expected}")]
    WrongType {
        table: &'static str,
        column: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("table `{table}`, row {row}: column `{column}`: {message}")]
    InvalidValue {
        table: &'static str,
        column: &'static str,
        row: usize,
        message: String,
    },
    #[error("table `{table}`: cannot build batch: {source}")]
    Build {
        table: &'static str,
        #[source]
        source: arrow::error::ArrowError,
    },
}

/// Downcasts column `column` of `batch` to the concrete array type `A`.
pub(crate) fn column<'a, A: Array + 'static>(
    table: &'static str,
    batch: &'a RecordBatch,
    column: &'static str,
    expected: &'static str,
) -> Result<&'a A, SchemaError> {
    let array: &ArrayRef = batch
        .column_by_name(column)
        .ok_or(SchemaError::MissingColumn { table, column })?;
    array
        .as_any()
        .downcast_ref::<A>()
        .ok_or_else(|| SchemaError::WrongType {
            table,
            column,
            expected,
            found: array.data_type().to_string(),
        })
}

/// The bytes of image column `column` of `batch` ([`crate::EncodedImage`]), borrowed: for code that
/// looks at every image of a batch in place rather than copying each into a row.
pub(crate) fn image_bytes<'a>(
    table: &'static str,
    batch: &'a RecordBatch,
    column: &'static str,
) -> Result<&'a arrow::array::BinaryArray, SchemaError> {
    let array: &ArrayRef = batch
        .column_by_name(column)
        .ok_or(SchemaError::MissingColumn { table, column })?;
    let wrong_type = |_| SchemaError::WrongType {
        table,
        column,
        expected: "image (struct of bytes and path)",
        found: array.data_type().to_string(),
    };
    let bytes = crate::EncodedImage::bytes_of(array.as_ref()).map_err(wrong_type)?;
    match crate::EncodedImage::first_without_bytes(array.as_ref()).map_err(wrong_type)? {
        Some(row) => Err(SchemaError::InvalidValue {
            table,
            column,
            row,
            message: "an image without bytes (only a path, or null)".into(),
        }),
        None => Ok(bytes),
    }
}

/// Fails when a non-nullable string column holds an empty string (an id nobody can look up).
pub(crate) fn require_non_empty(
    table: &'static str,
    column: &'static str,
    array: &arrow::array::StringArray,
) -> Result<(), SchemaError> {
    match (0..array.len()).find(|&i| array.value(i).is_empty()) {
        Some(row) => Err(SchemaError::InvalidValue {
            table,
            column,
            row,
            message: "empty string".into(),
        }),
        None => Ok(()),
    }
}

/// Fails when a table's `video_id` column (if it has one) holds an empty string.
pub(crate) fn require_video_ids(
    table: &'static str,
    batch: &RecordBatch,
) -> Result<(), SchemaError> {
    match batch
        .column_by_name("video_id")
        .and_then(|c| c.as_any().downcast_ref::<arrow::array::StringArray>())
    {
        Some(ids) => require_non_empty(table, "video_id", ids),
        None => Ok(()),
    }
}

/// Accepts any `video_id`: for a table whose rows may name an input that has no usable id (`errors`
/// records a `metadata.json` entry with an empty name under that name).
pub(crate) fn allow_empty_video_ids(
    _table: &'static str,
    _batch: &RecordBatch,
) -> Result<(), SchemaError> {
    Ok(())
}

/// Fails when any `float64` column holds NaN: an undefined number is stored as null, because a NaN
/// passes through every mean and sort it enters and comes out as a plausible-looking figure.
pub(crate) fn require_no_nan(table: &'static str, batch: &RecordBatch) -> Result<(), SchemaError> {
    let schema = batch.schema();
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let Some(values) = array.as_any().downcast_ref::<arrow::array::Float64Array>() else {
            continue;
        };
        if let Some(row) =
            (0..values.len()).find(|&i| values.is_valid(i) && values.value(i).is_nan())
        {
            return Err(SchemaError::InvalidValue {
                table,
                column: "float64",
                row,
                message: format!("`{}` is NaN; an undefined value must be null", field.name()),
            });
        }
    }
    Ok(())
}
