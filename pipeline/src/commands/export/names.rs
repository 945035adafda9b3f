//! The names an export writes: video ids and splits made safe as file names, frame numbers padded
//! so that a video's files sort in time order.

use sha2::{Digest, Sha256};

/// Longest safe name kept whole, in bytes. File systems allow 255 bytes a name; a face file adds
/// `_`, the frame number (at most 20 digits) and `.png` to it.
const MAX_NAME_BYTES: usize = 200;

/// Hex digits of the sha256 that stand for the cut end of a name longer than `MAX_NAME_BYTES`.
const HASH_DIGITS: usize = 16;

/// Frame numbers get at least this many digits: a frame past 999,999 (9 hours at 30 fps) is rare
/// enough that the usual width can be the same in every export.
const MIN_FRAME_DIGITS: usize = 6;

/// `text` as one file-name component that names nothing else:
///
/// - ASCII letters, digits, `-`, `_` and `.` stay as they are (`abc.mp4` stays `abc.mp4`);
/// - every other byte of the UTF-8 text, `%` itself included, becomes `%XX` (upper-case hex), as
///   in a URL: `clips/a b.mp4` becomes `clips%2Fa%20b.mp4`, and Python's
///   `urllib.parse.unquote` gives the id back. A leading `.` is encoded too (`%2E`), so that no
///   file of an export is hidden and none is `.` or `..`;
/// - a result over 200 bytes keeps its first bytes (never half of a `%XX`) and ends in `~` and 16
///   hex digits of the sha256 of `text`; `~` is otherwise always encoded, so a cut name cannot
///   equal an uncut one.
///
/// Encoding rather than replacing (`/` by `_`, say) keeps the mapping one to one: `a/b.mp4` and
/// `a_b.mp4` must not be written to the same file.
pub fn safe_name(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, byte) in text.bytes().enumerate() {
        let keep = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.');
        if keep && !(i == 0 && byte == b'.') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    if out.len() <= MAX_NAME_BYTES {
        return out;
    }
    let bytes = out.as_bytes();
    let mut cut = MAX_NAME_BYTES - HASH_DIGITS - 1;
    // `%` is followed by two hex digits, never by another `%`: step back over a split escape.
    if bytes[cut - 1] == b'%' {
        cut -= 1;
    } else if bytes[cut - 2] == b'%' {
        cut -= 2;
    }
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    format!("{}~{}", &out[..cut], &digest[..HASH_DIGITS])
}

/// Digits every frame number of an export is padded to: enough for the largest, at least 6, so
/// that the files of one video list in time order in `ls`, a file browser and `sorted(glob(...))`.
pub fn frame_digits(max_frame_index: u64) -> usize {
    max_frame_index.to_string().len().max(MIN_FRAME_DIGITS)
}

/// `<video>_<frame>.png`, the name of a face file (and of its SSIM map, in the `ssim/` tree). The
/// frame number follows the last `_`, so a video id holding `_` and digits cannot be confused
/// with another.
pub fn face_file_name(video_id: &str, frame_index: u64, digits: usize) -> String {
    format!("{}_{frame_index:0digits$}.png", safe_name(video_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_stay_and_the_rest_is_percent_encoded() {
        assert_eq!(safe_name("abc.mp4"), "abc.mp4");
        assert_eq!(safe_name("A-b_c.9.MOV"), "A-b_c.9.MOV");
        assert_eq!(safe_name("clips/a b.mp4"), "clips%2Fa%20b.mp4");
        assert_eq!(safe_name("100%.mp4"), "100%25.mp4");
        assert_eq!(safe_name("a\\b:c*?.mp4"), "a%5Cb%3Ac%2A%3F.mp4");
        assert_eq!(safe_name("é.mp4"), "%C3%A9.mp4");
        assert_eq!(safe_name(".hidden.mp4"), "%2Ehidden.mp4");
        assert_eq!(safe_name(".."), "%2E.");
        assert_eq!(safe_name("~x"), "%7Ex");
    }

    #[test]
    fn different_ids_never_share_a_name() {
        let ids = [
            "a/b.mp4",
            "a_b.mp4",
            "a%2Fb.mp4",
            "a b.mp4",
            "a%20b.mp4",
            ".a",
            "%2Ea",
        ];
        let names: std::collections::BTreeSet<String> = ids.iter().map(|i| safe_name(i)).collect();
        assert_eq!(names.len(), ids.len(), "{names:?}");
    }

    #[test]
    fn long_ids_are_cut_with_a_hash_and_stay_distinct() {
        let long_a = format!("{}a.mp4", "x/".repeat(150));
        let long_b = format!("{}b.mp4", "x/".repeat(150));
        let (a, b) = (safe_name(&long_a), safe_name(&long_b));
        assert!(a.len() <= MAX_NAME_BYTES, "{} bytes", a.len());
        assert_ne!(a, b);
        assert!(a.contains('~'));
        // The cut never leaves half an escape before the `~`.
        let head = a.split('~').next().unwrap();
        let tail = &head[head.len() - 3..];
        assert!(!tail[1..].contains('%'), "{tail}");
        for shift in 0..3 {
            let id = format!("{}{}", "y".repeat(shift), "/".repeat(100));
            let name = safe_name(&id);
            let head = name.split('~').next().unwrap();
            assert!(head.len() % 3 == shift, "{name}");
        }
    }

    #[test]
    fn frame_numbers_are_padded_to_one_width() {
        assert_eq!(frame_digits(0), 6);
        assert_eq!(frame_digits(999_999), 6);
        assert_eq!(frame_digits(1_000_000), 7);
        assert_eq!(face_file_name("a.mp4", 12, 6), "a.mp4_000012.png");
        assert_eq!(face_file_name("a_1.mp4", 7, 7), "a_1.mp4_0000007.png");
        let mut names = vec![
            face_file_name("v", 120, 6),
            face_file_name("v", 15, 6),
            face_file_name("v", 0, 6),
        ];
        names.sort();
        assert_eq!(
            names,
            ["v_000000.png", "v_000015.png", "v_000120.png"],
            "time order"
        );
    }
}
