//! Parquet shards on disk: ordinary files that pyarrow, DuckDB or `dfd inspect` can open.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use arrow::array::{Array, BooleanArray, StringArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use dfd_schemas::{image, EncodedImage};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use super::atomic::{create_fresh, fsync_dir, temp_path, HashingWriter};
use super::manifest::FileRecord;
use super::CacheError;

/// Rows per row group: small enough that a reader can stream a table of full-size frames.
const ROW_GROUP_ROWS: usize = 256;

/// Writes `batches` as one Parquet file at `dir/relative`, atomically, and describes it.
pub fn write_parquet(
    dir: &Path,
    relative: &str,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<FileRecord, CacheError> {
    let path = dir.join(relative);
    let parent = path.parent().unwrap_or(dir);
    fs::create_dir_all(parent).map_err(|e| CacheError::io(parent, e))?;
    let temp = temp_path(&path);
    let file = create_fresh(&temp).map_err(|e| CacheError::io(&temp, e))?;
    let sink = HashingWriter::new(BufWriter::new(file));
    let (sink, rows) = encode(sink, schema, batches).map_err(|e| CacheError::parquet(&temp, e))?;
    let (buffered, bytes, sha256) = sink.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| CacheError::io(&temp, e.into_error()))?;
    file.sync_all().map_err(|e| CacheError::io(&temp, e))?;
    fs::rename(&temp, &path).map_err(|e| CacheError::io(&path, e))?;
    fsync_dir(parent).map_err(|e| CacheError::io(parent, e))?;
    Ok(FileRecord {
        path: relative.to_string(),
        rows,
        bytes,
        sha256,
    })
}

/// Writes `batches` as Parquet into `sink` (the cache's one set of writer properties); returns the
/// sink and the row count.
fn encode<W: Write + Send>(
    sink: W,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<(W, u64), ParquetError> {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        // The schema's own metadata (the `huggingface` features) as the file's key-value
        // metadata too, beside the `ARROW:schema` that holds it for Arrow readers: readers that
        // go by the Parquet footer alone (`datasets`, DuckDB) find it there.
        .set_key_value_metadata(file_metadata(&schema));
    // Encoded images do not repeat; a dictionary only costs memory.
    for field in schema.fields() {
        if EncodedImage::is_image_type(field.data_type()) {
            let bytes = ColumnPath::new(vec![field.name().clone(), image::BYTES.to_string()]);
            props = props.set_column_dictionary_enabled(bytes, false);
        }
    }
    let props = props.build();
    let mut writer = ArrowWriter::try_new(sink, schema, Some(props))?;
    let mut rows = 0;
    for batch in batches {
        rows += batch.num_rows() as u64;
        writer.write(batch)?;
    }
    Ok((writer.into_inner()?, rows))
}

/// `schema`'s metadata as Parquet key-value pairs, in a stable order (by key), so that the same
/// table is the same bytes on every run; `None` when it has none.
fn file_metadata(schema: &Schema) -> Option<Vec<KeyValue>> {
    let mut pairs: Vec<KeyValue> = schema
        .metadata()
        .iter()
        .map(|(key, value)| KeyValue::new(key.clone(), value.clone()))
        .collect();
    pairs.sort_by(|a, b| a.key.cmp(&b.key));
    (!pairs.is_empty()).then_some(pairs)
}

/// sha256 of `batches` as the cache would write them (nothing is written): a digest of rows that
/// are a part of a stored table (a shard's share of a whole-table input), for shard keys.
pub fn digest_of_rows(schema: SchemaRef, batches: &[RecordBatch]) -> Result<String, CacheError> {
    let sink = HashingWriter::new(std::io::sink());
    let (sink, _) = encode(sink, schema, batches).map_err(|e| CacheError::Parquet {
        path: "(rows being keyed)".into(),
        source: e,
    })?;
    Ok(sink.finish().2)
}

/// Reads every row of a Parquet file.
pub fn read_parquet(path: &Path) -> Result<Vec<RecordBatch>, CacheError> {
    let file = File::open(path).map_err(|e| CacheError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| CacheError::parquet(path, e))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CacheError::Arrow {
            path: path.display().to_string(),
            source: e,
        })
}

/// Keeps the rows whose `video_id` is in `keep`; batches without that column pass unchanged.
pub fn filter_videos(
    batches: Vec<RecordBatch>,
    keep: &std::collections::HashSet<&str>,
) -> Result<Vec<RecordBatch>, arrow::error::ArrowError> {
    batches
        .into_iter()
        .map(|batch| {
            let Some(ids) = batch
                .column_by_name("video_id")
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            else {
                return Ok(batch);
            };
            let mask: BooleanArray = (0..ids.len())
                .map(|i| Some(!ids.is_null(i) && keep.contains(ids.value(i))))
                .collect();
            filter_record_batch(&batch, &mask)
        })
        .collect()
}
