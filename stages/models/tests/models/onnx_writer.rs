//! The ONNX writer against ONNX Runtime on a graph small enough to check by hand.

use crate::common;

use dfd_models::onnx::{Attr, Dim, OnnxGraph};
use ndarray::{arr2, ArrayD};

#[test]
fn a_dense_layer_and_sigmoid_give_what_arithmetic_gives() {
    let mut g = OnnxGraph::new("dense");
    g.add_input("x", &[Dim::Batch, Dim::Fixed(3)]);
    let w = g.weight_f32("w", &[3, 2], &[1.0, -1.0, 0.5, 2.0, -0.25, 0.0]);
    let b = g.weight_f32("b", &[2], &[0.1, -0.2]);
    let z = g.op("Gemm", &["x", &w, &b], &[Attr::Float("alpha", 1.0)]);
    g.op_into("Sigmoid", &[&z], &[], "y");
    g.add_output("y", &[Dim::Batch, Dim::Fixed(2)]);

    let x: ArrayD<f32> = arr2(&[[1.0f32, 2.0, 3.0], [0.0, -1.0, 4.0]]).into_dyn();
    let out = common::run_onnx(&g.to_model_bytes(), &[("x", x.clone())]);
    let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
    let expected = [
        [
            sigmoid(1.0 + 1.0 - 0.75 + 0.1),
            sigmoid(-1.0 + 4.0 + 0.0 - 0.2),
        ],
        [sigmoid(-0.5 - 1.0 + 0.1), sigmoid(-2.0 - 0.2)],
    ];
    let expected: ArrayD<f32> = arr2(&expected).into_dyn();
    assert!(
        common::max_abs_diff(&out[0], &expected) < 1e-6,
        "{:?}",
        out[0]
    );
}

#[test]
fn int64_constants_and_int_attributes_reach_the_runtime() {
    // Reshape takes its target shape from an int64 initializer; Transpose takes `perm` ints.
    let mut g = OnnxGraph::new("reshape");
    g.add_input("x", &[Dim::Batch, Dim::Fixed(6)]);
    let shape = g.const_i64("shape", &[-1, 2, 3]);
    let r = g.op("Reshape", &["x", &shape], &[]);
    g.op_into(
        "Transpose",
        &[&r],
        &[Attr::Ints("perm", vec![0, 2, 1])],
        "y",
    );
    g.add_output("y", &[Dim::Batch, Dim::Fixed(3), Dim::Fixed(2)]);

    let x: ArrayD<f32> = arr2(&[[0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0]]).into_dyn();
    let out = common::run_onnx(&g.to_model_bytes(), &[("x", x)]);
    assert_eq!(out[0].shape(), &[1, 3, 2]);
    let flat: Vec<f32> = out[0].iter().copied().collect();
    assert_eq!(flat, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
}
