//! A picture to check a demo set by eye: for each filmed person, the middle frame of their first
//! FAKE beside the same frame of its REAL, as decoded from the written files (what the detectors
//! will see), one row per person.

use std::collections::BTreeSet;
use std::path::Path;

use dfd_capture::Property;
use dfd_codecs::{encode_png, ChannelOrder, Pixels};
use opencv::core::{self, Mat, Point, Scalar, Size, Vector};
use opencv::imgproc;
use opencv::prelude::*;
use tracing::info;

use crate::error::{cv, DemoError, Result};
use crate::read_metadata;
use crate::source::SequentialReader;

/// Height every frame is shown at.
const ROW_HEIGHT: i32 = 240;

pub fn write(dataset: &Path, sheet: &Path) -> Result<()> {
    let meta = read_metadata(dataset)?;
    let mut seen = BTreeSet::new();
    let mut rows = Vec::new();
    for (fake, entry) in &meta {
        let person = entry["group"].as_str().unwrap_or_default();
        if entry["label"].as_str() != Some("FAKE") || !seen.insert(person.to_string()) {
            continue;
        }
        let original = entry["original"]
            .as_str()
            .ok_or_else(|| DemoError::Invalid(format!("{fake} has no original")))?;
        let real = shown(&middle_frame(&dataset.join(original))?, original)?;
        let swapped = shown(&middle_frame(&dataset.join(fake))?, fake)?;
        let mut pair = Vector::<Mat>::new();
        pair.push(real);
        pair.push(swapped);
        let mut row = Mat::default();
        core::hconcat(&pair, &mut row).map_err(cv("hconcat"))?;
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(DemoError::Invalid(format!(
            "no FAKE in {}, no contact sheet",
            dataset.display()
        )));
    }
    let width = rows.iter().map(|r| r.cols()).max().unwrap_or(0);
    let mut padded = Vector::<Mat>::new();
    for row in rows {
        let mut out = Mat::default();
        let right = width - row.cols();
        core::copy_make_border(
            &row,
            &mut out,
            0,
            0,
            0,
            right,
            core::BORDER_CONSTANT,
            Scalar::all(0.0),
        )
        .map_err(cv("pad"))?;
        padded.push(out);
    }
    let mut sheet_image = Mat::default();
    core::vconcat(&padded, &mut sheet_image).map_err(cv("vconcat"))?;
    let bgr = sheet_image.data_bytes().map_err(cv("reading the sheet"))?;
    let (width, height) = (sheet_image.cols() as u32, sheet_image.rows() as u32);
    let pixels = Pixels::packed(bgr, width, height, 3, ChannelOrder::Bgr);
    let png = encode_png(&pixels, 1).map_err(|e| DemoError::Encode {
        path: sheet.to_path_buf(),
        message: e.to_string(),
    })?;
    std::fs::write(sheet, png).map_err(|source| DemoError::Io {
        what: format!("cannot write the contact sheet {}", sheet.display()),
        source,
    })?;
    info!(path = %sheet.display(), people = seen.len(), "contact sheet written");
    Ok(())
}

/// `frame` scaled to [`ROW_HEIGHT`] with its file name written in a corner.
fn shown(frame: &Mat, name: &str) -> Result<Mat> {
    let scale = f64::from(ROW_HEIGHT) / f64::from(frame.rows().max(1));
    let width = ((f64::from(frame.cols()) * scale).round() as i32).max(1);
    let mut out = Mat::default();
    imgproc::resize(
        frame,
        &mut out,
        Size::new(width, ROW_HEIGHT),
        0.0,
        0.0,
        imgproc::INTER_LINEAR,
    )
    .map_err(cv("resize"))?;
    imgproc::put_text(
        &mut out,
        name,
        Point::new(6, 18),
        imgproc::FONT_HERSHEY_SIMPLEX,
        0.5,
        Scalar::new(255.0, 255.0, 255.0, 0.0),
        1,
        imgproc::LINE_AA,
        false,
    )
    .map_err(cv("put_text"))?;
    Ok(out)
}

fn middle_frame(path: &Path) -> Result<Mat> {
    let capture = crate::source::open(path)?;
    let count = capture.get(Property::FrameCount).unwrap_or(0.0);
    drop(capture);
    let middle = if count.is_finite() && count >= 2.0 {
        (count / 2.0) as usize
    } else {
        0
    };
    SequentialReader::open(path)?
        .frame(middle)?
        .ok_or_else(|| DemoError::Media {
            path: path.to_path_buf(),
            message: format!("no frame {middle} decoded"),
        })
}
