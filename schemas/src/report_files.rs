//! `report_files`: the rendered report (Markdown, CSV, Parquet, PNG plots), written by `report`.
//! Holding the files as a table makes the report cached and content-hashed like any other output,
//! and inspectable with `dfd inspect report`; the pipeline copies them to the workspace's `report/`
//! folder for people to open.

crate::table! {
    /// One file of the report.
    pub struct ReportFileRow in "report_files" {
        /// File name, relative to the report folder (`summary.md`, `roc-test.png`, ...).
        name: String,
        /// MIME type, for tools that serve the table directly.
        media_type: String,
        bytes: Vec<u8>,
    }
    validate = |batch| {
        let rows = ReportFileRow::from_batch(batch)?;
        match rows.iter().position(|r| !is_plain_file_name(&r.name)) {
            Some(row) => Err(crate::SchemaError::InvalidValue {
                table: "report_files",
                column: "name",
                row,
                message: format!("`{}` is not a plain file name", rows[row].name),
            }),
            None => Ok(()),
        }
    };
}

/// A name that stays inside the report folder when joined to it: no separators, no `..`, not empty.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TableRow;

    #[test]
    fn names_that_leave_the_folder_are_refused() {
        for bad in ["", "..", "../x.md", "a/b.png", "/etc/passwd"] {
            let batch = ReportFileRow::to_batch(&[ReportFileRow {
                name: bad.into(),
                media_type: "text/plain".into(),
                bytes: vec![],
            }])
            .unwrap();
            assert!(
                ReportFileRow::TABLE.validate(&batch).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(is_plain_file_name("roc-test.png"));
    }
}
