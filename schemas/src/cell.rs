//! The Rust types a table column can hold, and how each maps to an Arrow array. With these, a table is
//! declared once (the `table!` macro) and its schema, batch builder and batch reader follow.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float32Array, Float64Array, Int64Array,
    StringArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::DataType;

use crate::huggingface::Feature;
use crate::SchemaError;

/// A Rust type stored in one Arrow column.
pub trait Cell: Sized {
    /// The column's Arrow type (a function, not a constant: a struct type holds its fields in an
    /// `Arc`, which no constant can build).
    fn data_type() -> DataType;
    const NULLABLE: bool;
    /// How Hugging Face `datasets` is told to read the column (the `huggingface` schema metadata).
    const FEATURE: Feature;
    fn build(values: Vec<&Self>) -> ArrayRef;
    /// Reads row `row` of `array`.
    fn read(array: &dyn Array, row: usize) -> Result<Self, CellError>;
}

/// Why a cell could not be read; [`read_cell`] adds the table, column and row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellError {
    /// The array is not of the type the schema promises.
    WrongType,
    /// The array has the right type but the value is not one this cell can hold (an unknown label).
    Invalid(String),
}

/// Downcasts `array` to `A`, or says it is of another type.
fn typed<A: Array + 'static>(array: &dyn Array) -> Result<&A, CellError> {
    array
        .as_any()
        .downcast_ref::<A>()
        .ok_or(CellError::WrongType)
}

macro_rules! primitive_cell {
    ($rust:ty, $arrow:ty, $dt:expr, $hf:literal) => {
        impl Cell for $rust {
            fn data_type() -> DataType {
                $dt
            }
            const NULLABLE: bool = false;
            const FEATURE: Feature = Feature::Value($hf);
            fn build(values: Vec<&Self>) -> ArrayRef {
                Arc::new(<$arrow>::from_iter_values(values.into_iter().copied()))
            }
            fn read(array: &dyn Array, row: usize) -> Result<Self, CellError> {
                Ok(typed::<$arrow>(array)?.value(row))
            }
        }

        impl Cell for Option<$rust> {
            fn data_type() -> DataType {
                $dt
            }
            const NULLABLE: bool = true;
            const FEATURE: Feature = Feature::Value($hf);
            fn build(values: Vec<&Self>) -> ArrayRef {
                Arc::new(values.into_iter().copied().collect::<$arrow>())
            }
            fn read(array: &dyn Array, row: usize) -> Result<Self, CellError> {
                let typed = typed::<$arrow>(array)?;
                Ok((!typed.is_null(row)).then(|| typed.value(row)))
            }
        }
    };
}

primitive_cell!(u32, UInt32Array, DataType::UInt32, "uint32");
primitive_cell!(u64, UInt64Array, DataType::UInt64, "uint64");
primitive_cell!(i64, Int64Array, DataType::Int64, "int64");
primitive_cell!(f32, Float32Array, DataType::Float32, "float32");
primitive_cell!(f64, Float64Array, DataType::Float64, "float64");

impl Cell for bool {
    fn data_type() -> DataType {
        DataType::Boolean
    }
    const NULLABLE: bool = false;
    const FEATURE: Feature = Feature::Value("bool");
    fn build(values: Vec<&Self>) -> ArrayRef {
        Arc::new(
            values
                .into_iter()
                .map(|v| Some(*v))
                .collect::<BooleanArray>(),
        )
    }
    fn read(array: &dyn Array, row: usize) -> Result<Self, CellError> {
        Ok(typed::<BooleanArray>(array)?.value(row))
    }
}

impl Cell for String {
    fn data_type() -> DataType {
        DataType::Utf8
    }
    const NULLABLE: bool = false;
    const FEATURE: Feature = Feature::Value("string");
    fn build(values: Vec<&Self>) -> ArrayRef {
        Arc::new(StringArray::from_iter_values(values))
    }
    fn read(array: &dyn Array, row: usize) -> Result<Self, CellError> {
        Ok(typed::<StringArray>(array)?.value(row).to_string())
    }
}

impl Cell for Option<String> {
    fn data_type() -> DataType {
        DataType::Utf8
    }
    const NULLABLE: bool = true;
    const FEATURE: Feature = Feature::Value("string");
    fn build(values: Vec<&Self>) -> ArrayRef {
        Arc::new(
            values
                .into_iter()
                .map(Option::as_deref)
                .collect::<StringArray>(),
        )
    }
    fn read(array: &dyn Array, row: usize) -> Result<Self, CellError> {
        let typed = typed::<StringArray>(array)?;
        Ok((!typed.is_null(row)).then(|| typed.value(row).to_string()))
    }
}

impl Cell for Vec<u8> {
    fn data_type() -> DataType {
        DataType::Binary
    }
    const NULLABLE: bool = false;
    const FEATURE: Feature = Feature::Value("binary");
    fn build(values: Vec<&Self>) -> ArrayRef {
        Arc::new(BinaryArray::from_iter_values(values))
    }
    fn read(array: &dyn Array, row: usize) -> Result<Self, CellError> {
        Ok(typed::<BinaryArray>(array)?.value(row).to_vec())
    }
}

/// A closed set of values stored by name in a Utf8 column (a label, a frame encoding). The column
/// holds exactly what `as_str` writes, so a row type can hold the enum instead of an unchecked
/// string, and a name that `parse` does not know is an error naming table, column and row.
pub trait TextEnum: Copy + 'static {
    /// The names the column may hold, for error messages (`REAL, FAKE`).
    const NAMES: &'static str;
    fn as_str(self) -> &'static str;
    fn parse(text: &str) -> Option<Self>;
}

/// Parses one name, or says what was found instead.
fn parse_name<T: TextEnum>(text: &str) -> Result<T, CellError> {
    T::parse(text).ok_or_else(|| CellError::Invalid(format!("`{text}` is not one of {}", T::NAMES)))
}

impl<T: TextEnum> Cell for T {
    fn data_type() -> DataType {
        DataType::Utf8
    }
    const NULLABLE: bool = false;
    const FEATURE: Feature = Feature::Value("string");
    fn build(values: Vec<&Self>) -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            values.into_iter().map(|v| v.as_str()),
        ))
    }
    fn read(array: &dyn Array, row: usize) -> Result<Self, CellError> {
        parse_name(typed::<StringArray>(array)?.value(row))
    }
}

impl<T: TextEnum> Cell for Option<T> {
    fn data_type() -> DataType {
        DataType::Utf8
    }
    const NULLABLE: bool = true;
    const FEATURE: Feature = Feature::Value("string");
    fn build(values: Vec<&Self>) -> ArrayRef {
        Arc::new(
            values
                .into_iter()
                .map(|v| v.map(T::as_str))
                .collect::<StringArray>(),
        )
    }
    fn read(array: &dyn Array, row: usize) -> Result<Self, CellError> {
        let typed = typed::<StringArray>(array)?;
        if typed.is_null(row) {
            return Ok(None);
        }
        parse_name(typed.value(row)).map(Some)
    }
}

/// Reads one cell, or says which column of which table (and which row, for a value the cell type
/// cannot hold) is not what the schema promises.
pub fn read_cell<T: Cell>(
    table: &'static str,
    batch: &arrow::record_batch::RecordBatch,
    column: &'static str,
    row: usize,
) -> Result<T, SchemaError> {
    let array = batch
        .column_by_name(column)
        .ok_or(SchemaError::MissingColumn { table, column })?;
    T::read(array.as_ref(), row).map_err(|e| match e {
        CellError::WrongType => SchemaError::WrongType {
            table,
            column,
            expected: "the type of the schema",
            found: array.data_type().to_string(),
        },
        CellError::Invalid(message) => SchemaError::InvalidValue {
            table,
            column,
            row,
            message,
        },
    })
}

/// Declares a table: a row struct and its [`TableRow`](crate::TableRow) impl, which holds the
/// table's name, Arrow schema and value checks ([`TableDef`](crate::TableDef)) and converts batches
/// both ways. Column order is field order; the doc comment of each field is the column's
/// documentation. Validation checks that no `video_id` is empty, then runs `validate` for the
/// table's own rules; a table whose `video_id` may legitimately be empty says so with
/// `video_id may be empty;` before `validate`.
#[macro_export]
macro_rules! table {
    (
        $(#[$meta:meta])*
        pub struct $row:ident in $name:literal {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),+ $(,)?
        }
        validate = $validate:expr;
    ) => {
        $crate::table! {
            @define [$crate::column::require_video_ids]
            $(#[$meta])*
            pub struct $row in $name {
                $( $(#[$fmeta])* $field : $ty ),+
            }
            validate = $validate;
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $row:ident in $name:literal {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),+ $(,)?
        }
        video_id may be empty;
        validate = $validate:expr;
    ) => {
        $crate::table! {
            @define [$crate::column::allow_empty_video_ids]
            $(#[$meta])*
            pub struct $row in $name {
                $( $(#[$fmeta])* $field : $ty ),+
            }
            validate = $validate;
        }
    };
    (
        @define [$video_ids:path]
        $(#[$meta:meta])*
        pub struct $row:ident in $name:literal {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),+
        }
        validate = $validate:expr;
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $row {
            $( $(#[$fmeta])* pub $field: $ty ),+
        }

        impl $crate::TableRow for $row {
            // Closures rather than named functions: a named item here would capture a `validate`
            // that names a function of the same name.
            const TABLE: $crate::TableDef = $crate::TableDef {
                name: $name,
                // The columns, and the `huggingface` metadata that tells HF `datasets` how to
                // read each (images as pictures).
                schema: || {
                    arrow::datatypes::Schema::new(vec![
                        $( arrow::datatypes::Field::new(
                            stringify!($field),
                            <$ty as $crate::cell::Cell>::data_type(),
                            <$ty as $crate::cell::Cell>::NULLABLE,
                        ) ),+
                    ])
                    .with_metadata($crate::huggingface::metadata(&[
                        $( (stringify!($field), <$ty as $crate::cell::Cell>::FEATURE) ),+
                    ]))
                },
                validate_values: |batch| {
                    $video_ids($name, batch)?;
                    let own_rules: fn(
                        &arrow::record_batch::RecordBatch,
                    ) -> Result<(), $crate::SchemaError> = $validate;
                    own_rules(batch)
                },
            };

            fn to_batch(
                rows: &[$row],
            ) -> Result<arrow::record_batch::RecordBatch, $crate::SchemaError> {
                arrow::record_batch::RecordBatch::try_new(
                    <$row as $crate::TableRow>::TABLE.schema_ref(),
                    vec![ $( <$ty as $crate::cell::Cell>::build(rows.iter().map(|r| &r.$field).collect()) ),+ ],
                )
                .map_err(|source| $crate::SchemaError::Build { table: $name, source })
            }

            fn from_batch(
                batch: &arrow::record_batch::RecordBatch,
            ) -> Result<Vec<$row>, $crate::SchemaError> {
                (0..batch.num_rows())
                    .map(|row| {
                        Ok($row {
                            $( $field: $crate::cell::read_cell::<$ty>($name, batch, stringify!($field), row)? ),+
                        })
                    })
                    .collect()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    mod example {
        crate::table! {
            /// A table with every cell type.
            pub struct ExampleRow in "example" {
                /// the id
                id: String,
                note: Option<String>,
                count: u32,
                big: u64,
                ratio: f32,
                precise: Option<f64>,
                blob: Vec<u8>,
                picture: crate::EncodedImage,
                flag: bool,
                signed: i64,
                maybe_signed: Option<i64>,
                label: crate::Label,
                maybe_label: Option<crate::Label>,
            }
            validate = |_| Ok(());
        }
    }

    #[test]
    fn every_cell_type_round_trips() {
        use crate::TableRow;
        use example::*;
        let rows = vec![
            ExampleRow {
                id: "a".into(),
                note: None,
                count: 1,
                big: u64::MAX,
                ratio: 0.5,
                precise: Some(1e-12),
                blob: vec![1, 2, 3],
                picture: vec![9, 8].into(),
                flag: true,
                signed: i64::MIN,
                maybe_signed: None,
                label: crate::Label::Fake,
                maybe_label: None,
            },
            ExampleRow {
                id: "b".into(),
                note: Some("n".into()),
                count: 2,
                big: 0,
                ratio: -1.0,
                precise: None,
                blob: vec![],
                picture: vec![7].into(),
                flag: false,
                signed: -1,
                maybe_signed: Some(7),
                label: crate::Label::Real,
                maybe_label: Some(crate::Label::Fake),
            },
        ];
        let batch = ExampleRow::to_batch(&rows).unwrap();
        ExampleRow::TABLE.validate(&batch).unwrap();
        assert_eq!(ExampleRow::from_batch(&batch).unwrap(), rows);
        assert!(batch.schema().field(1).is_nullable());
        assert!(!batch.schema().field(2).is_nullable());
    }

    #[test]
    fn an_unknown_label_names_table_column_and_row() {
        use std::sync::Arc;

        use arrow::array::StringArray;
        use arrow::datatypes::{DataType, Field, Schema};
        use arrow::record_batch::RecordBatch;

        let schema = Schema::new(vec![Field::new("label", DataType::Utf8, true)]);
        let labels = StringArray::from(vec![Some("REAL"), None, Some("fake"), Some("MAYBE")]);
        let batch = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(labels)]).unwrap();
        let read = |row| super::read_cell::<Option<crate::Label>>("t", &batch, "label", row);
        assert_eq!(read(0).unwrap(), Some(crate::Label::Real));
        assert_eq!(read(1).unwrap(), None);
        // The DFDC spelling is case-insensitive; it is written back upper-case.
        assert_eq!(read(2).unwrap(), Some(crate::Label::Fake));
        let err = read(3).unwrap_err();
        assert!(
            matches!(
                &err,
                crate::SchemaError::InvalidValue {
                    table: "t",
                    column: "label",
                    row: 3,
                    message,
                } if message.contains("MAYBE")
            ),
            "{err}"
        );
        let wrong = super::read_cell::<Option<u32>>("t", &batch, "label", 0).unwrap_err();
        assert!(
            matches!(wrong, crate::SchemaError::WrongType { .. }),
            "{wrong}"
        );
    }
}
