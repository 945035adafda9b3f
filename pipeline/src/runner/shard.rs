//! One shard of a stage: what its key is made of, and how its tables are written.
//!
//! Shared by the plain path (one `run` call per shard, [`super::executor`]) and the streamed one
//! (a few videos at a time through several stages, [`super::stream`]), so that a shard computed
//! either way has the same key and the same bytes.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;
use dfd_schemas::TableDef;
use dfd_stages::{InputDef, Stage, StageOutput};

use crate::cache::parquet_io::{digest_of_rows, write_parquet};
use crate::cache::shard_store::{shard_key, ShardKeyInput};
use crate::cache::{FileRecord, Manifest, ShardRecord};

/// What a stage's output depends on besides its inputs: its parameters as keyed, the state it
/// reads from outside the pipeline, and its output schemas.
pub struct Recipe {
    pub params: serde_json::Value,
    pub external: Option<String>,
    pub output_schemas: Vec<String>,
}

impl Recipe {
    pub fn of(stage: &dyn Stage) -> Result<Recipe> {
        let output_schemas = stage
            .outputs()
            .iter()
            .map(|t| t.stable_description())
            .collect::<Result<Vec<String>, _>>()
            .with_context(|| format!("the output schemas of stage {}", stage.name()))?;
        Ok(Recipe {
            params: stage.params()?,
            external: stage.external_state()?,
            output_schemas,
        })
    }
}

/// The digest of one per-video input table as the shard `shard` of it holds it: its files'
/// sha256s, with the shard's own key when the table is kept reduced (see [`Manifest::input_hash`]).
pub fn shard_input_digest(shard: &ShardRecord, table: &str, reduced: bool) -> String {
    let content = shard.table_digest(table);
    if reduced {
        format!("{}:{content}", shard.key.as_deref().unwrap_or_default())
    } else {
        content
    }
}

/// The digest of a whole-table input restricted to a shard's videos (`rows`): the rows
/// themselves where the table has a `video_id` column, else the whole table's hash (a table not
/// about videos, such as trained models, is read whole by every shard).
pub fn filtered_input_digest(
    input: &InputDef,
    rows: &[RecordBatch],
    manifest: &Manifest,
) -> Result<String> {
    let schema = input.table.schema_ref();
    Ok(if schema.field_with_name("video_id").is_ok() {
        digest_of_rows(schema, rows)?
    } else {
        manifest.input_hash(input.table.name)
    })
}

/// The digest of `input` as shard `index` reads it from the finished output `manifest`: the
/// files of that output's own shard `index` when it is per video, else `rows`, the rows of the
/// shard's videos (the caller has them: it loads them to run the shard anyway).
pub fn finished_input_digest(
    input: &InputDef,
    manifest: &Manifest,
    index: usize,
    rows: &dyn Fn() -> Result<Vec<RecordBatch>>,
) -> Result<String> {
    let table = input.table.name;
    if manifest.videos_per_shard.is_some() {
        let shard = manifest.shards.get(index).with_context(|| {
            format!(
                "{} has no shard {index} (sharded differently?)",
                input.stage
            )
        })?;
        Ok(shard_input_digest(shard, table, manifest.is_reduced(table)))
    } else {
        filtered_input_digest(input, &rows()?, manifest)
    }
}

/// The key of one shard of `stage`: its recipe, its videos and the digests of what it reads.
pub fn key_of(
    stage: &dyn Stage,
    recipe: &Recipe,
    videos: &[String],
    digests: &BTreeMap<String, String>,
) -> String {
    shard_key(&ShardKeyInput {
        stage: stage.name(),
        version: stage.version(),
        params: &recipe.params,
        external: recipe.external.as_deref(),
        output_schemas: &recipe.output_schemas,
        videos,
        inputs: digests,
    })
}

/// The shards of one streamed pass so far, by stage, each with the stage that wrote it (which
/// says whether a table is kept reduced).
pub type PassShards<'a> = BTreeMap<&'a str, (ShardRecord, &'a dyn Stage)>;

/// The key of `stage`'s shard of `videos` within a streamed pass: an input an earlier stage of
/// the pass wrote (`pass`) enters by that shard's files, any other by `finished(input, name)`,
/// the digest of its finished table's rows for these videos. One rule for a plain run's pass and
/// an array task's, so both file a shard under the same key.
pub fn pass_key(
    stage: &dyn Stage,
    videos: &[String],
    pass: &PassShards,
    mut finished: impl FnMut(&InputDef, &str) -> Result<String>,
) -> Result<String> {
    let mut digests = BTreeMap::new();
    for input in stage.inputs() {
        let name = input_name(input);
        let digest = match pass.get(input.stage) {
            Some((shard, writer)) => shard_input_digest(
                shard,
                input.table.name,
                !writer.stored_in_full(&input.table),
            ),
            None => finished(input, &name)?,
        };
        digests.insert(name, digest);
    }
    Ok(key_of(stage, &Recipe::of(stage)?, videos, &digests))
}

/// The name under which a key records an input table.
pub fn input_name(input: &InputDef) -> String {
    format!("{}/{}", input.stage, input.table.name)
}

/// Checks that `output` holds only tables `stage` declares.
pub fn check_declared(stage: &dyn Stage, output: &StageOutput) -> Result<()> {
    if let Some(extra) = output
        .table_names()
        .find(|n| !stage.outputs().iter().any(|t| t.name == **n))
    {
        bail!("stage {} produced undeclared table `{extra}`", stage.name());
    }
    Ok(())
}

/// The batches of `table` that `run` produced, checked against the table's contract and turned
/// into their stored form ([`Stage::stored`]): what [`write_tables`] writes.
pub fn stored_form(
    stage: &dyn Stage,
    table: &TableDef,
    batches: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>> {
    let mut stored = Vec::with_capacity(batches.len());
    for batch in batches {
        table.validate(&batch)?;
        stored.push(stage.stored(table, batch)?);
    }
    Ok(stored)
}

/// Writes every declared table of `stage` for shard `index` into `dir`, one Parquet file per
/// table, from `tables` (table name -> batches in stored form, see [`stored_form`]). Several
/// batches of a table (a shard computed a few videos at a time) are joined into one first, so
/// that the file's bytes do not depend on how the work was split.
pub fn write_tables(
    stage: &dyn Stage,
    dir: &Path,
    index: usize,
    mut tables: BTreeMap<&'static str, Vec<RecordBatch>>,
) -> Result<Vec<FileRecord>> {
    let mut files = Vec::new();
    for table in stage.outputs() {
        let mut stored = tables.remove(table.name).unwrap_or_default();
        if stored.len() > 1 {
            stored = vec![concat_batches(&table.schema_ref(), &stored)
                .with_context(|| format!("joining the batches of {}", table.name))?];
        }
        let relative = format!("{}/part-{index:05}.parquet", table.name);
        files.push(write_parquet(dir, &relative, table.schema_ref(), &stored)?);
    }
    Ok(files)
}
