//! The Rust types a table column can hold, and how each maps to an Arrow array. With these, a table is
//! declared once (the `table!` macro) and its schema, batch builder and batch reader follow.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float32Array, Float64Array, StringArray,
    UInt32Array, UInt64Array,
};
use arrow::datatypes::DataType;

use crate::SchemaError;

/// A Rust type stored in one Arrow column.
pub trait Cell: Sized {
    const DATA_TYPE: DataType;
    const NULLABLE: bool;
    fn build(values: Vec<&Self>) -> ArrayRef;
    /// Reads row `row` of `array`; `None` when the array is of another type.
    fn read(array: &dyn Array, row: usize) -> Option<Self>;
}

macro_rules! primitive_cell {
    ($rust:ty, $arrow:ty, $dt:expr) => {
        impl Cell for $rust {
            const DATA_TYPE: DataType = $dt;
            const NULLABLE: bool = false;
            fn build(values: Vec<&Self>) -> ArrayRef {
                Arc::new(<$arrow>::from_iter_values(values.into_iter().copied()))
            }
            fn read(array: &dyn Array, row: usize) -> Option<Self> {
                Some(array.as_any().downcast_ref::<$arrow>()?.value(row))
            }
        }

        impl Cell for Option<$rust> {
            const DATA_TYPE: DataType = $dt;
            const NULLABLE: bool = true;
            fn build(values: Vec<&Self>) -> ArrayRef {
                Arc::new(values.into_iter().copied().collect::<$arrow>())
            }
            fn read(array: &dyn Array, row: usize) -> Option<Self> {
                let typed = array.as_any().downcast_ref::<$arrow>()?;
                Some((!typed.is_null(row)).then(|| typed.value(row)))
            }
        }
    };
}

primitive_cell!(u32, UInt32Array, DataType::UInt32);
primitive_cell!(u64, UInt64Array, DataType::UInt64);
primitive_cell!(f32, Float32Array, DataType::Float32);
primitive_cell!(f64, Float64Array, DataType::Float64);

impl Cell for bool {
    const DATA_TYPE: DataType = DataType::Boolean;
    const NULLABLE: bool = false;
    fn build(values: Vec<&Self>) -> ArrayRef {
        Arc::new(
            values
                .into_iter()
                .map(|v| Some(*v))
                .collect::<BooleanArray>(),
        )
    }
    fn read(array: &dyn Array, row: usize) -> Option<Self> {
        Some(array.as_any().downcast_ref::<BooleanArray>()?.value(row))
    }
}

impl Cell for String {
    const DATA_TYPE: DataType = DataType::Utf8;
    const NULLABLE: bool = false;
    fn build(values: Vec<&Self>) -> ArrayRef {
        Arc::new(StringArray::from_iter_values(values))
    }
    fn read(array: &dyn Array, row: usize) -> Option<Self> {
        Some(
            array
                .as_any()
                .downcast_ref::<StringArray>()?
                .value(row)
                .to_string(),
        )
    }
}

impl Cell for Option<String> {
    const DATA_TYPE: DataType = DataType::Utf8;
    const NULLABLE: bool = true;
    fn build(values: Vec<&Self>) -> ArrayRef {
        Arc::new(
            values
                .into_iter()
                .map(Option::as_deref)
                .collect::<StringArray>(),
        )
    }
    fn read(array: &dyn Array, row: usize) -> Option<Self> {
        let typed = array.as_any().downcast_ref::<StringArray>()?;
        Some((!typed.is_null(row)).then(|| typed.value(row).to_string()))
    }
}

impl Cell for Vec<u8> {
    const DATA_TYPE: DataType = DataType::Binary;
    const NULLABLE: bool = false;
    fn build(values: Vec<&Self>) -> ArrayRef {
        Arc::new(BinaryArray::from_iter_values(values))
    }
    fn read(array: &dyn Array, row: usize) -> Option<Self> {
        Some(
            array
                .as_any()
                .downcast_ref::<BinaryArray>()?
                .value(row)
                .to_vec(),
        )
    }
}

/// Reads one cell, or says which column of which table is not what the schema promises.
pub fn read_cell<T: Cell>(
    table: &'static str,
    batch: &arrow::record_batch::RecordBatch,
    column: &'static str,
    row: usize,
) -> Result<T, SchemaError> {
    let array = batch
        .column_by_name(column)
        .ok_or(SchemaError::MissingColumn { table, column })?;
    T::read(array.as_ref(), row).ok_or_else(|| SchemaError::WrongType {
        table,
        column,
        expected: "the type of the schema",
        found: array.data_type().to_string(),
    })
}

/// Declares a table: a row struct, its Arrow schema, and batch conversion both ways. Column order is
/// field order; the doc comment of each field is the column's documentation. Validation checks that
/// no `video_id` is empty, then runs `validate` for the table's own rules.
#[macro_export]
macro_rules! table {
    (
        $(#[$meta:meta])*
        pub struct $row:ident in $name:literal {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty ),+ $(,)?
        }
        validate = $validate:expr;
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $row {
            $( $(#[$fmeta])* pub $field: $ty ),+
        }

        pub const TABLE: $crate::TableDef = $crate::TableDef {
            name: $name,
            schema,
            validate_values: validate_table,
        };

        fn validate_table(
            batch: &arrow::record_batch::RecordBatch,
        ) -> Result<(), $crate::SchemaError> {
            $crate::column::require_video_ids($name, batch)?;
            let own_rules: fn(&arrow::record_batch::RecordBatch) -> Result<(), $crate::SchemaError> =
                $validate;
            own_rules(batch)
        }

        pub fn schema() -> arrow::datatypes::Schema {
            arrow::datatypes::Schema::new(vec![
                $( arrow::datatypes::Field::new(
                    stringify!($field),
                    <$ty as $crate::cell::Cell>::DATA_TYPE,
                    <$ty as $crate::cell::Cell>::NULLABLE,
                ) ),+
            ])
        }

        impl $row {
            pub fn to_batch(rows: &[$row]) -> Result<arrow::record_batch::RecordBatch, $crate::SchemaError> {
                arrow::record_batch::RecordBatch::try_new(
                    std::sync::Arc::new(schema()),
                    vec![ $( <$ty as $crate::cell::Cell>::build(rows.iter().map(|r| &r.$field).collect()) ),+ ],
                )
                .map_err(|source| $crate::SchemaError::Build { table: $name, source })
            }

            pub fn from_batch(batch: &arrow::record_batch::RecordBatch) -> Result<Vec<$row>, $crate::SchemaError> {
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
                flag: bool,
            }
            validate = |_| Ok(());
        }
    }

    #[test]
    fn every_cell_type_round_trips() {
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
                flag: true,
            },
            ExampleRow {
                id: "b".into(),
                note: Some("n".into()),
                count: 2,
                big: 0,
                ratio: -1.0,
                precise: None,
                blob: vec![],
                flag: false,
            },
        ];
        let batch = ExampleRow::to_batch(&rows).unwrap();
        TABLE.validate(&batch).unwrap();
        assert_eq!(ExampleRow::from_batch(&batch).unwrap(), rows);
        assert!(batch.schema().field(1).is_nullable());
        assert!(!batch.schema().field(2).is_nullable());
    }
}
