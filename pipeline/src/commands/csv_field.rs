//! RFC 4180 quoting for the CSV files `dfd` writes (`predict --csv`, `export faces`'s
//! `metadata.csv`): one rule, so that every file a user opens quotes the same way.

use std::borrow::Cow;

/// A field quoted by RFC 4180: in double quotes, with each quote doubled, when it holds a comma,
/// a quote or a line break (video ids, file names and error messages can hold all three); as it
/// is otherwise.
pub fn csv_field(text: &str) -> Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", text.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_they_must_be() {
        assert_eq!(csv_field("a.mp4"), "a.mp4");
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_field("a,b.mp4"), "\"a,b.mp4\"");
        assert_eq!(csv_field("say \"hi\".mp4"), "\"say \"\"hi\"\".mp4\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\r"), "\"cr\r\"");
    }
}
