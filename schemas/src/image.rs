//! Image columns: encoded image bytes (PNG, JPEG) stored the way Hugging Face `datasets` stores an
//! `Image` feature, a `{bytes: binary, path: string}` struct, so that a table read by `datasets`
//! (with the `huggingface` schema metadata, [`crate::huggingface`]) yields pictures.
//!
//! We always fill `bytes` and leave `path` null: the picture lives in the table, not beside it.

use std::ops::Deref;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BinaryArray, StringArray, StructArray};
use arrow::datatypes::{DataType, Field, Fields};

use crate::cell::{Cell, CellError};
use crate::huggingface::Feature;

/// The struct field holding the encoded image.
pub const BYTES: &str = "bytes";
/// The struct field `datasets` reads a file path from when `bytes` is null; always null here.
pub const PATH: &str = "path";

/// One encoded image (PNG or JPEG bytes; `frames` also holds raw BGR frames in memory, never on
/// disk). Derefs to its bytes, so code that decodes it reads `&row.image` as a `&[u8]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EncodedImage(pub Vec<u8>);

impl EncodedImage {
    /// The image's bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The fields of the struct, as `datasets`' `Image().pa_type` has them (both nullable).
    fn fields() -> Fields {
        Fields::from(vec![
            Field::new(BYTES, DataType::Binary, true),
            Field::new(PATH, DataType::Utf8, true),
        ])
    }

    /// The Arrow type of an image column.
    pub fn data_type() -> DataType {
        DataType::Struct(Self::fields())
    }

    /// An image column holding `bytes` (one image per row; no row null) and null paths.
    pub fn column(bytes: BinaryArray) -> StructArray {
        let paths = StringArray::new_null(bytes.len());
        StructArray::new(
            Self::fields(),
            vec![Arc::new(bytes) as ArrayRef, Arc::new(paths) as ArrayRef],
            None,
        )
    }

    /// The `bytes` child of an image column, borrowed, or [`CellError::WrongType`] when `array` is
    /// not an image column. A row without bytes (an image by path only, which `datasets` allows
    /// and we never write) reads as empty here: see [`EncodedImage::first_without_bytes`].
    pub fn bytes_of(array: &dyn Array) -> Result<&BinaryArray, CellError> {
        parts(array).map(|(_, bytes)| bytes)
    }

    /// The first row of image column `array` that has no bytes (null, or a path only), if any.
    pub fn first_without_bytes(array: &dyn Array) -> Result<Option<usize>, CellError> {
        let (parts, bytes) = parts(array)?;
        Ok((0..parts.len()).find(|&i| parts.is_null(i) || bytes.is_null(i)))
    }

    /// Whether `data_type` is that of an image column.
    pub fn is_image_type(data_type: &DataType) -> bool {
        *data_type == Self::data_type()
    }
}

/// An image column as its struct and the struct's `bytes` child.
fn parts(array: &dyn Array) -> Result<(&StructArray, &BinaryArray), CellError> {
    let parts = array
        .as_any()
        .downcast_ref::<StructArray>()
        .ok_or(CellError::WrongType)?;
    let bytes = parts
        .column_by_name(BYTES)
        .and_then(|c| c.as_any().downcast_ref::<BinaryArray>())
        .ok_or(CellError::WrongType)?;
    Ok((parts, bytes))
}

impl Deref for EncodedImage {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for EncodedImage {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for EncodedImage {
    fn from(bytes: Vec<u8>) -> Self {
        EncodedImage(bytes)
    }
}

impl PartialEq<Vec<u8>> for EncodedImage {
    fn eq(&self, other: &Vec<u8>) -> bool {
        &self.0 == other
    }
}

impl PartialEq<EncodedImage> for Vec<u8> {
    fn eq(&self, other: &EncodedImage) -> bool {
        self == &other.0
    }
}

impl Cell for EncodedImage {
    fn data_type() -> DataType {
        EncodedImage::data_type()
    }
    /// Declared nullable though no row is ever null (one without bytes is refused on read):
    /// `datasets` applies the metadata's `Image` feature only to a field equal to the one it
    /// would make itself (`Features.from_arrow_schema`), nullability included, and its own
    /// fields are nullable. A non-null image column loads as a plain `{bytes, path}` dict.
    const NULLABLE: bool = true;
    const FEATURE: Feature = Feature::Image;
    fn build(values: Vec<&Self>) -> ArrayRef {
        let bytes = BinaryArray::from_iter_values(values.into_iter().map(|v| &v.0));
        Arc::new(EncodedImage::column(bytes))
    }
    fn read(array: &dyn Array, row: usize) -> Result<Self, CellError> {
        let (parts, bytes) = parts(array)?;
        if parts.is_null(row) || bytes.is_null(row) {
            return Err(CellError::Invalid(
                "an image without bytes (only a path, or null)".into(),
            ));
        }
        Ok(EncodedImage(bytes.value(row).to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_column_round_trips_and_a_path_only_image_is_refused() {
        let images = [EncodedImage(vec![1, 2]), EncodedImage(vec![])];
        let column = <EncodedImage as Cell>::build(images.iter().collect());
        assert!(EncodedImage::is_image_type(column.data_type()));
        assert_eq!(
            EncodedImage::bytes_of(column.as_ref()).unwrap().value(0),
            &[1, 2]
        );
        for (row, image) in images.iter().enumerate() {
            assert_eq!(&EncodedImage::read(column.as_ref(), row).unwrap(), image);
        }

        let path_only = StructArray::new(
            EncodedImage::fields(),
            vec![
                Arc::new(BinaryArray::from(vec![None::<&[u8]>])) as ArrayRef,
                Arc::new(StringArray::from(vec!["a.png"])) as ArrayRef,
            ],
            None,
        );
        assert!(matches!(
            EncodedImage::read(&path_only, 0),
            Err(CellError::Invalid(_))
        ));
        assert_eq!(EncodedImage::first_without_bytes(&path_only), Ok(Some(0)));
        assert_eq!(EncodedImage::first_without_bytes(column.as_ref()), Ok(None));
        let binary = BinaryArray::from(vec![&[1u8][..]]);
        assert_eq!(EncodedImage::read(&binary, 0), Err(CellError::WrongType));
    }
}
