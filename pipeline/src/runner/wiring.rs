//! The check that every stage input names a table some earlier stage writes, run when a
//! [`Pipeline`](super::Pipeline) is assembled. Without it a misnamed input resolves to no parent and
//! reads no files, and the stage quietly gets an empty table; with it the mistake stops `dfd` at
//! start-up with the names involved.

use std::collections::BTreeSet;
use std::sync::Arc;

use dfd_stages::{InputDef, Stage};

/// How a stage's inputs fail to match the stages before it.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("two stages are named `{0}`")]
    DuplicateStage(&'static str),
    #[error(
        "stage `{stage}` reads `{from}.{table}`, but there is no stage `{from}`; \
         the stages are: {stages}"
    )]
    UnknownStage {
        stage: &'static str,
        from: &'static str,
        table: &'static str,
        stages: String,
    },
    #[error(
        "stage `{stage}` reads `{from}.{table}`, but stage `{from}` writes no table `{table}`; \
         it writes: {written}"
    )]
    UndeclaredTable {
        stage: &'static str,
        from: &'static str,
        table: &'static str,
        written: String,
    },
    #[error(
        "stage `{stage}` reads `{from}.{table}`, but stage `{from}` does not come before it; \
         stages are listed producers first"
    )]
    OutOfOrder {
        stage: &'static str,
        from: &'static str,
        table: &'static str,
    },
}

/// The direct parents (indices into `stages`) of every stage, or the first input that names a
/// stage that is not in `stages`, a table that stage does not declare in `outputs()`, or a stage
/// that does not come earlier.
pub fn resolve_parents(stages: &[Arc<dyn Stage>]) -> Result<Vec<BTreeSet<usize>>, WiringError> {
    for (i, stage) in stages.iter().enumerate() {
        if stages[..i].iter().any(|s| s.name() == stage.name()) {
            return Err(WiringError::DuplicateStage(stage.name()));
        }
    }
    stages
        .iter()
        .enumerate()
        .map(|(index, stage)| {
            stage
                .inputs()
                .iter()
                .map(|input| producer_of(stages, index, input))
                .collect()
        })
        .collect()
}

/// The index of the stage that writes `input` for stage `index`.
fn producer_of(
    stages: &[Arc<dyn Stage>],
    index: usize,
    input: &InputDef,
) -> Result<usize, WiringError> {
    let stage = stages[index].name();
    let (from, table) = (input.stage, input.table.name);
    let Some(producer) = stages.iter().position(|s| s.name() == from) else {
        return Err(WiringError::UnknownStage {
            stage,
            from,
            table,
            stages: names(stages.iter().map(|s| s.name())),
        });
    };
    let outputs = stages[producer].outputs();
    if !outputs.iter().any(|t| t.name == table) {
        return Err(WiringError::UndeclaredTable {
            stage,
            from,
            table,
            written: names(outputs.iter().map(|t| t.name)),
        });
    }
    if producer >= index {
        return Err(WiringError::OutOfOrder { stage, from, table });
    }
    Ok(producer)
}

fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "nothing".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use dfd_schemas::{FaceRow, FrameRow, TableDef, TableRow, VideoRow};
    use dfd_stages::{Sharding, StageContext, StageError, StageInput, StageOutput, StageSpec};

    use super::*;

    /// A stage that only declares its wiring.
    struct Wired(StageSpec);

    /// A stage named `name` that reads `inputs` and writes `outputs`.
    fn wired(
        name: &'static str,
        inputs: &'static [InputDef],
        outputs: &'static [TableDef],
    ) -> Arc<dyn Stage> {
        Arc::new(Wired(StageSpec {
            name,
            version: 1,
            inputs,
            outputs,
            sharding: Sharding::Whole,
            streams: false,
        }))
    }

    impl Stage for Wired {
        fn spec(&self) -> &StageSpec {
            &self.0
        }
        fn params(&self) -> Result<serde_json::Value, StageError> {
            Ok(serde_json::Value::Null)
        }
        fn run(&self, _: &StageInput, _: &StageContext) -> Result<StageOutput, StageError> {
            Ok(StageOutput::default())
        }
    }

    const LIST: &[InputDef] = &[];
    const VIDEOS: &[TableDef] = &[VideoRow::TABLE];
    const FRAMES: &[TableDef] = &[FrameRow::TABLE];

    /// `list` writes videos, `decode` reads them and writes frames, then `reader` reads `reads`.
    fn pipeline(reads: &'static [InputDef]) -> Vec<Arc<dyn Stage>> {
        const DECODE_READS: &[InputDef] = &[InputDef::of::<VideoRow>("list")];
        vec![
            wired("list", LIST, VIDEOS),
            wired("decode", DECODE_READS, FRAMES),
            wired("reader", reads, &[]),
        ]
    }

    fn error(reads: &'static [InputDef]) -> String {
        match resolve_parents(&pipeline(reads)) {
            Ok(parents) => panic!("accepted, parents {parents:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn inputs_resolve_to_their_producers() {
        const READS: &[InputDef] = &[
            InputDef::of::<FrameRow>("decode"),
            InputDef::of::<VideoRow>("list"),
        ];
        let parents = resolve_parents(&pipeline(READS)).unwrap();
        assert_eq!(parents, vec![[].into(), [0].into(), [0, 1].into()]);
    }

    #[test]
    fn a_table_the_stage_does_not_write_is_named() {
        const READS: &[InputDef] = &[InputDef::of::<FaceRow>("decode")];
        let err = error(READS);
        assert_eq!(
            err,
            "stage `reader` reads `decode.faces`, but stage `decode` writes no table `faces`; \
             it writes: frames"
        );
    }

    #[test]
    fn a_missing_stage_is_named_with_the_stages_there_are() {
        const READS: &[InputDef] = &[InputDef::of::<FaceRow>("crop")];
        let err = error(READS);
        assert!(
            err.contains("`reader` reads `crop.faces`")
                && err.contains("no stage `crop`")
                && err.contains("list, decode, reader"),
            "{err}"
        );
    }

    #[test]
    fn reading_a_later_stage_is_refused() {
        let mut stages = pipeline(&[]);
        stages.swap(0, 1);
        let err = resolve_parents(&stages).unwrap_err().to_string();
        assert!(err.contains("`decode` reads `list.videos`"), "{err}");
        assert!(err.contains("does not come before it"), "{err}");
    }

    #[test]
    fn two_stages_of_one_name_are_refused() {
        let mut stages = pipeline(&[]);
        stages.push(stages[0].clone());
        let err = resolve_parents(&stages).unwrap_err().to_string();
        assert_eq!(err, "two stages are named `list`");
    }
}
