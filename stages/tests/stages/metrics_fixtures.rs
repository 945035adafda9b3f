//! The video-level metrics against values computed by scikit-learn; `tests/fixtures/make_fixtures.py`
//! made them, and the `_about` key of `tests/fixtures/metrics/cases.json` says how. Every expectation is a number from the
//! fixture, never one from this crate. A metric the fixture leaves out (or gives as null) is one
//! scikit-learn has no value for, and must come back `None`; the one exception, `log_loss` with a
//! single class, is explained at [`check_log_loss_without_reference`].

use std::collections::BTreeSet;
use std::path::PathBuf;

use dfd_stages::aggregate::{binary_metrics, BinaryMetrics, LOG_LOSS_EPS};
use serde_json::Value;

/// Every value is a short sum of exactly representable counts or ratios of them, so only the order
/// of floating-point additions can differ from numpy's (pairwise) sums: a few ulps at most.
const TOLERANCE: f64 = 1e-12;

const CASES: &[&str] = &[
    "typical",
    "ties",
    "all_fake_predicted",
    "perfect",
    "inverted",
    "one_class_only",
    "at_threshold",
];

const KEYS: &[&str] = &[
    "y_true",
    "y_score",
    "threshold",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "confusion_matrix_tn_fp_fn_tp",
    "roc_auc",
    "average_precision",
    "log_loss",
    "eer_approx",
];

fn cases() -> Value {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/metrics/cases.json"
    ));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Compares one optional metric and returns the absolute difference (0 when both are undefined).
fn check(name: &str, key: &str, want: Option<&Value>, got: Option<f64>) -> f64 {
    let want = want.filter(|v| !v.is_null()).map(|v| {
        v.as_f64()
            .unwrap_or_else(|| panic!("{name}: {key} is not a number"))
    });
    match (want, got) {
        (Some(w), Some(g)) => {
            let diff = (w - g).abs();
            assert!(diff <= TOLERANCE, "{name}: {key} = {g}, scikit-learn {w}");
            diff
        }
        (None, None) => 0.0,
        (w, g) => panic!("{name}: {key} = {g:?}, scikit-learn {w:?}"),
    }
}

/// scikit-learn's `log_loss` refuses a `y_true` with a single class unless told the labels, so the
/// fixture has no value there. The loss is still defined, and is checked against its definition,
/// written out here independently of the crate.
fn check_log_loss_without_reference(name: &str, y_true: &[bool], y_score: &[f64], got: f64) -> f64 {
    let classes: BTreeSet<bool> = y_true.iter().copied().collect();
    assert_eq!(
        classes.len(),
        1,
        "{name}: log_loss missing from a two-class case"
    );
    let terms: Vec<f64> = y_true
        .iter()
        .zip(y_score)
        .map(|(&t, &s)| {
            let p = s.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            if t {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .collect();
    let want = terms.iter().sum::<f64>() / terms.len() as f64;
    let diff = (want - got).abs();
    assert!(
        diff <= TOLERANCE,
        "{name}: log_loss = {got}, definition {want}"
    );
    diff
}

/// Checks every metric of one case; returns the largest difference from the reference.
fn check_case(name: &str) -> f64 {
    let all = cases();
    let case = all[name]
        .as_object()
        .unwrap_or_else(|| panic!("no case {name}"));
    for key in case.keys() {
        assert!(KEYS.contains(&key.as_str()), "{name}: unknown key {key}");
    }
    let y_true: Vec<bool> = case["y_true"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| match v.as_u64() {
            Some(0) => false,
            Some(1) => true,
            _ => panic!("{name}: label {v}"),
        })
        .collect();
    let y_score: Vec<f64> = case["y_score"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let threshold = case["threshold"].as_f64().unwrap();

    let m: BinaryMetrics = binary_metrics(&y_true, &y_score, threshold).unwrap();

    let want_confusion: Vec<u64> = case["confusion_matrix_tn_fp_fn_tp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let c = m.confusion;
    assert_eq!(
        vec![c.tn, c.fp, c.fn_, c.tp],
        want_confusion,
        "{name}: confusion tn fp fn tp"
    );

    let diffs = [
        check(name, "accuracy", case.get("accuracy"), Some(m.accuracy)),
        check(name, "precision", case.get("precision"), m.precision),
        check(name, "recall", case.get("recall"), m.recall),
        check(name, "f1", case.get("f1"), m.f1),
        check(name, "roc_auc", case.get("roc_auc"), m.roc_auc),
        check(
            name,
            "average_precision",
            case.get("average_precision"),
            m.average_precision,
        ),
        check(name, "eer_approx", case.get("eer_approx"), m.eer),
        match case.get("log_loss") {
            Some(_) => check(name, "log_loss", case.get("log_loss"), Some(m.log_loss)),
            None => check_log_loss_without_reference(name, &y_true, &y_score, m.log_loss),
        },
    ];
    let largest = diffs.into_iter().fold(0.0, f64::max);
    eprintln!("{name}: largest difference from scikit-learn {largest:e}");
    largest
}

#[test]
fn every_fixture_case_is_tested() {
    let all = cases();
    let in_fixture: BTreeSet<&str> = all
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "_about")
        .collect();
    let known: BTreeSet<&str> = CASES.iter().copied().collect();
    assert_eq!(in_fixture, known, "fixture cases vs cases tested here");
}

macro_rules! case_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check_case(stringify!($name));
            }
        )*

        /// Keeps [`CASES`] and the test functions from drifting apart.
        #[test]
        fn case_list_matches_tests() {
            assert_eq!(CASES, &[$(stringify!($name)),*]);
        }
    };
}

case_tests!(
    typical,
    ties,
    all_fake_predicted,
    perfect,
    inverted,
    one_class_only,
    at_threshold,
);
