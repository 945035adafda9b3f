//! The scoring-time rewrite that runs a narrow first convolution on two crops at once
//! (`onnx::pair_first_conv`): the rewritten MesoNet-4 gives the plain graph's scores, in both forms
//! and with its BatchNorms folded or kept, and graphs it does not fit are left alone.

use crate::common;

use burn::module::Module;
use burn::tensor::Device;
use common::parity::{batch, prepared_detector, NegateGamma, TOLERANCE};
use common::{max_abs_diff, run_onnx, to_ndarray};
use dfd_models::arch::baseline::Baseline;
use dfd_models::arch::mesoinception4::MesoInception4;
use dfd_models::arch::mesonet4::MesoNet4;
use dfd_models::onnx::pair_first_conv;
use dfd_models::ArchitectureBackbone;
use dfd_models::{Detector, Form};

/// The width ONNX Runtime computes output channels in on AVX-512.
const BLOCK: usize = 16;

/// A random batch of four (even, as the paired graph needs) with the inputs `form` takes.
fn feeds(form: Form) -> Vec<(&'static str, ndarray::ArrayD<f32>)> {
    let input = batch(form, 4, &Device::flex());
    let mut feeds = vec![("face", to_ndarray(&input.face))];
    if let (Some(map), Some(stats)) = (&input.ssim_map, &input.ssim_stats) {
        feeds.push(("ssim_map", to_ndarray(map)));
        feeds.push(("ssim_stats", to_ndarray(stats)));
    }
    feeds
}

/// The largest difference between the paired and the plain graph of `detector` on one batch.
fn paired_vs_plain<M: Detector>(name: &str, detector: &M) -> f32 {
    let plain = detector.export_onnx().expect("export");
    let paired = pair_first_conv(&plain, "face", BLOCK)
        .expect("our own export reads back")
        .expect("MesoNet-4's 8-channel first convolution is paired");
    assert!(
        paired.windows(6).any(|w| w == b"_pairs"),
        "{name}: rewritten"
    );
    let feeds = feeds(detector.form());
    let expected = run_onnx(&plain, &feeds).remove(0);
    let got = run_onnx(&paired, &feeds).remove(0);
    let diff = max_abs_diff(&expected, &got);
    eprintln!("{name}: plain {expected:?} paired {got:?}, max abs diff {diff:e}");
    diff
}

#[test]
fn paired_mesonet4_scores_what_the_plain_graph_scores() {
    let single = prepared_detector(MesoNet4::single, true);
    assert!(paired_vs_plain("MesoNet-4 single", &single) <= TOLERANCE / 100.0);
    let multi = prepared_detector(MesoNet4::multi, true);
    assert!(paired_vs_plain("MesoNet-4 multi", &multi) <= TOLERANCE / 100.0);
    // Negative BatchNorm scales keep the BatchNormalization node inside the paired block.
    let unfolded = single.map(&mut NegateGamma::default());
    assert!(paired_vs_plain("MesoNet-4 single, BatchNorm kept", &unfolded) <= TOLERANCE / 100.0);
}

#[test]
fn graphs_the_pairing_does_not_fit_are_left_alone() {
    let device = Device::flex();
    let mesonet = MesoNet4::single(&device).export_onnx().expect("export");
    assert!(
        pair_first_conv(&mesonet, "face", 8)
            .expect("reads")
            .is_none(),
        "8 channels fill an 8-wide block"
    );
    assert!(
        pair_first_conv(&mesonet, "image", BLOCK)
            .expect("reads")
            .is_none(),
        "no such input"
    );
    let baseline = Baseline::single(&device).export_onnx().expect("export");
    assert!(
        pair_first_conv(&baseline, "face", BLOCK)
            .expect("reads")
            .is_none(),
        "32 channels"
    );
    let inception = MesoInception4::single(&device)
        .export_onnx()
        .expect("export");
    assert!(
        pair_first_conv(&inception, "face", BLOCK)
            .expect("reads")
            .is_none(),
        "the face feeds four branches"
    );
    let cut = &mesonet[..mesonet.len() / 2];
    assert!(
        pair_first_conv(cut, "face", BLOCK).is_err(),
        "truncated bytes"
    );
}
