//! `dfd inspect STAGE|FILE`: what is in a stage's output or a Parquet file: schema, rows, per-column
//! min / max / nulls (from the Parquet footers, so it costs no scan of the data), and the first rows
//! with encoded images shown as `WxH png, 12.3 KB` instead of bytes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::array::{Array, ArrayRef, BinaryArray};
use arrow::compute::{concat, sort_to_indices, SortOptions};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use dfd_schemas::EncodedImage;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::cache::{Manifest, Workspace};
use crate::runs::latest_fingerprint;

/// Statistics of one column across all files of a table.
#[derive(Debug, Serialize)]
pub struct ColumnStats {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
    pub min: Option<String>,
    pub max: Option<String>,
    pub nulls: u64,
}

/// One table as `dfd inspect` shows it.
#[derive(Debug, Serialize)]
pub struct TableView {
    pub name: String,
    pub files: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
    pub columns: Vec<ColumnStats>,
    /// The first rows, each cell rendered as text (images as `WxH format, size`).
    pub head: Head,
}

/// Rows as a small table, columns in schema order.
#[derive(Debug, Default, Serialize)]
pub struct Head {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub source: String,
    pub note: Option<String>,
    pub tables: Vec<TableView>,
}

/// Inspects a stage's latest output (by stage name) or a Parquet file or folder (by path).
pub fn inspect(
    workspace: &Workspace,
    target: &str,
    table: Option<&str>,
    head: usize,
) -> Result<Inspection> {
    let path = Path::new(target);
    if path.exists() {
        let files = parquet_files(path)?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(Inspection {
            source: path.display().to_string(),
            note: None,
            tables: vec![view_table(&name, &files, head)?],
        });
    }
    // A table name (`faces`) stands for the stage that writes it, restricted to that table.
    let (stage, table) = match stage_of_table(workspace, target) {
        Some(stage) if table.is_none() => (stage, Some(target)),
        _ => (target.to_string(), table),
    };
    let target = stage.as_str();
    let (dir, manifest, note) = stage_output(workspace, target)?;
    let mut tables = Vec::new();
    for name in manifest.table_totals().keys() {
        if table.is_some_and(|t| t != name) {
            continue;
        }
        let files: Vec<PathBuf> = manifest.files_of(name).map(|f| dir.join(&f.path)).collect();
        tables.push(view_table(name, &files, head)?);
    }
    if let (Some(wanted), true) = (table, tables.is_empty()) {
        bail!(
            "stage {target} has no table `{wanted}`; it has: {}",
            manifest
                .table_totals()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(Inspection {
        source: dir.display().to_string(),
        note,
        tables,
    })
}

/// The cached stage whose outputs include a table named `table` (and which is not itself a stage of
/// that name).
fn stage_of_table(workspace: &Workspace, table: &str) -> Option<String> {
    let stages = workspace.cached_stages();
    if stages.iter().any(|s| s == table) {
        return None;
    }
    stages.into_iter().find(|stage| {
        stage_output(workspace, stage)
            .map(|(_, manifest, _)| manifest.table_totals().contains_key(table))
            .unwrap_or(false)
    })
}

/// The output of `stage` the latest run used, else the newest finished one.
pub(crate) fn stage_output(
    workspace: &Workspace,
    stage: &str,
) -> Result<(PathBuf, Manifest, Option<String>)> {
    if let Some(fingerprint) = latest_fingerprint(workspace, stage) {
        let dir = workspace.output_dir(stage, &fingerprint);
        if let Ok(manifest) = Manifest::read(&dir) {
            return Ok((dir, manifest, None));
        }
    }
    match workspace.finished_outputs(stage).into_iter().next() {
        Some((dir, manifest)) => Ok((
            dir,
            manifest,
            Some("not from the latest run: the newest output on disk".into()),
        )),
        None => bail!(
            "no output of stage `{stage}` in workspace {} (and no file of that name); run `dfd run` first",
            workspace.root().display()
        ),
    }
}

fn parquet_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot list {}", path.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{} holds no .parquet file", path.display());
    }
    Ok(files)
}

fn view_table(name: &str, files: &[PathBuf], head: usize) -> Result<TableView> {
    let mut rows = 0;
    let mut bytes = 0;
    let mut schema: Option<Arc<Schema>> = None;
    let mut mins: Vec<Vec<ArrayRef>> = Vec::new();
    let mut maxes: Vec<Vec<ArrayRef>> = Vec::new();
    let mut nulls: Vec<u64> = Vec::new();
    let mut head_batches = Vec::new();
    let mut head_rows = 0;
    for path in files {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        bytes += file.metadata().map(|m| m.len()).unwrap_or(0);
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
        let metadata = builder.metadata().clone();
        let file_schema = builder.schema().clone();
        rows += metadata.file_metadata().num_rows() as u64;
        let fields = file_schema.fields().len();
        if schema.is_none() {
            mins = vec![Vec::new(); fields];
            maxes = vec![Vec::new(); fields];
            nulls = vec![0; fields];
            schema = Some(file_schema.clone());
        }
        for (i, field) in file_schema.fields().iter().enumerate().take(mins.len()) {
            let converter = StatisticsConverter::try_new(
                field.name(),
                &file_schema,
                metadata.file_metadata().schema_descr(),
            )?;
            let groups = metadata.row_groups();
            // Min and max of encoded images say nothing (and an image column, a struct, has
            // no statistics of its own).
            if !matches!(field.data_type(), DataType::Binary | DataType::LargeBinary)
                && !EncodedImage::is_image_type(field.data_type())
            {
                mins[i].push(converter.row_group_mins(groups.iter())?);
                maxes[i].push(converter.row_group_maxes(groups.iter())?);
            }
            nulls[i] += converter
                .row_group_null_counts(groups.iter())?
                .iter()
                .flatten()
                .sum::<u64>();
        }
        if head_rows < head {
            let reader = builder.with_limit(head - head_rows).build()?;
            for batch in reader {
                let batch = batch?;
                head_rows += batch.num_rows();
                head_batches.push(batch);
            }
        }
    }
    let schema = schema.context("no file to inspect")?;
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| column_stats(field, &mins[i], &maxes[i], nulls[i]))
        .collect::<Result<Vec<_>>>()?;
    Ok(TableView {
        name: name.to_string(),
        files: files.iter().map(|p| p.display().to_string()).collect(),
        rows,
        bytes,
        columns,
        head: render_rows(&head_batches)?,
    })
}

fn column_stats(
    field: &Field,
    mins: &[ArrayRef],
    maxes: &[ArrayRef],
    nulls: u64,
) -> Result<ColumnStats> {
    let pick = |arrays: &[ArrayRef], descending: bool| -> Result<Option<String>> {
        if arrays.is_empty() {
            return Ok(None);
        }
        let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
        let all = concat(&refs)?;
        let order = sort_to_indices(
            &all,
            Some(SortOptions {
                descending,
                nulls_first: false,
            }),
            Some(1),
        )?;
        match order.iter().flatten().next() {
            Some(i) if !all.is_null(i as usize) => {
                let formatter = ArrayFormatter::try_new(all.as_ref(), &FormatOptions::default())?;
                Ok(Some(formatter.value(i as usize).to_string()))
            }
            _ => Ok(None),
        }
    };
    Ok(ColumnStats {
        name: field.name().clone(),
        // An image column by the name Hugging Face `datasets` gives its feature, rather than
        // Arrow's spelling of the `{bytes, path}` struct behind it.
        data_type: if EncodedImage::is_image_type(field.data_type()) {
            "Image".to_string()
        } else {
            field.data_type().to_string()
        },
        nullable: field.is_nullable(),
        min: pick(mins, false)?,
        max: pick(maxes, true)?,
        nulls,
    })
}

/// Renders rows as text; binary cells and image columns that hold an image become
/// `WxH format, size`.
fn render_rows(batches: &[RecordBatch]) -> Result<Head> {
    let mut head = Head::default();
    for batch in batches {
        let schema = batch.schema();
        head.columns = schema.fields().iter().map(|f| f.name().clone()).collect();
        for row in 0..batch.num_rows() {
            let mut cells = Vec::with_capacity(batch.num_columns());
            for column in batch.columns() {
                cells.push(if column.is_null(row) {
                    None
                } else if let Some(binary) = column.as_any().downcast_ref::<BinaryArray>() {
                    Some(describe_blob(binary.value(row)))
                } else if let Ok(images) = EncodedImage::bytes_of(column.as_ref()) {
                    // An image column (`{bytes, path}`): the picture, not the struct.
                    Some(describe_blob(images.value(row)))
                } else {
                    let formatter =
                        ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default())?;
                    Some(formatter.value(row).to_string())
                });
            }
            head.rows.push(cells);
        }
    }
    Ok(head)
}

/// `640x360 png, 312.4 KB` for an encoded image, `N bytes` for anything else.
pub fn describe_blob(bytes: &[u8]) -> String {
    let kind = match imagesize::image_type(bytes) {
        Ok(imagesize::ImageType::Png) => Some("png"),
        Ok(imagesize::ImageType::Jpeg) => Some("jpeg"),
        Ok(_) => Some("image"),
        Err(_) => None,
    };
    match (kind, imagesize::blob_size(bytes)) {
        (Some(kind), Ok(size)) => {
            format!(
                "{}x{} {kind}, {}",
                size.width,
                size.height,
                human_bytes(bytes.len() as u64)
            )
        }
        _ => format!("{} bytes", bytes.len()),
    }
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The inspection as text for a terminal.
pub fn print_text(inspection: &Inspection) {
    println!("source: {}", inspection.source);
    if let Some(note) = &inspection.note {
        println!("note:   {note}");
    }
    for table in &inspection.tables {
        println!(
            "\n== {}: {} rows, {} file(s), {}",
            table.name,
            table.rows,
            table.files.len(),
            human_bytes(table.bytes)
        );
        let width = table
            .columns
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(0);
        println!(
            "{:width$}  {:<10} {:>7}  {:<24} {:<24}",
            "column", "type", "nulls", "min", "max"
        );
        for c in &table.columns {
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            let ty = format!("{}{}", c.data_type, if c.nullable { "?" } else { "" });
            println!(
                "{:width$}  {:<10} {:>7}  {:<24} {:<24}",
                c.name,
                ty,
                c.nulls,
                clip(&show(&c.min), 24),
                clip(&show(&c.max), 24)
            );
        }
        if !table.head.rows.is_empty() {
            println!("first {} row(s):", table.head.rows.len());
            for row in &table.head.rows {
                let cells: Vec<String> = table
                    .head
                    .columns
                    .iter()
                    .zip(row)
                    .map(|(k, v)| format!("{k}={}", clip(v.as_deref().unwrap_or("null"), 60)))
                    .collect();
                println!("  {}", cells.join("  "));
            }
        }
    }
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}
